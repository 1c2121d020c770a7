//! EA2P, the energy profiler, as a library: the `ea2p` program's parts (report, merge, launcher,
//! Prometheus exporter, regions FIFO) and, re-exported from `ea2p-sampler`, the sampler behind
//! it, for programs that measure themselves (regions around epochs or phases).
//!
//! ```no_run
//! use ea2p::{Monitor, MonitorOptions};
//!
//! let monitor = Monitor::start(MonitorOptions::default())?;
//! monitor.begin("epoch-1")?;
//! // ... train ...
//! let m = monitor.end("epoch-1")?;
//! println!("epoch-1: {:.1} J in {:.2} s", m.total_j, m.duration_s);
//! let (summary, _profile) = monitor.finish(None);
//! print!("{}", summary.table());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod estimate_cmd;
pub mod launcher;
pub mod merge;
pub mod outputs;
pub mod prometheus;
pub mod regions;
pub mod report;
pub mod values;

// The sampler is its own crate (the Python module uses it without the CLI); re-exported so
// `ea2p::Monitor`, `ea2p::monitor::...` and `ea2p::summary::...` keep working.
pub use ea2p_sampler::{attribute, cpu_tdp, devices, discover, monitor, private_file, summary};
pub use ea2p_sampler::{
    sources, AttributeMode, ComponentEnergy, ComponentSummary, Devices, DiscoverOptions, GpuPick,
    GpuShare, HwmonPick, LiveComponent, Measurement, Monitor, MonitorHandle, MonitorOptions,
    ProfileOutcome, RegionError, RegionSummary, SourceDescription, SourcesReport, StartError,
    Summary,
};

/// The README's Rust examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
