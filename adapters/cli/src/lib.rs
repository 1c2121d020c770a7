//! EA2P, the energy profiler, as a library: the sampler behind the `ea2p` program, for programs
//! that measure themselves (regions around epochs or phases) and for bindings.
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

pub mod cpu_tdp;
pub mod devices;
pub mod discover;
pub mod estimate_cmd;
pub mod launcher;
pub mod merge;
pub mod monitor;
pub mod private_file;
pub mod prometheus;
pub mod regions;
pub mod report;
pub mod summary;

pub use devices::{Devices, GpuPick};
pub use discover::{sources, DiscoverOptions, SourceDescription, SourcesReport};
pub use monitor::{
    ComponentEnergy, LiveComponent, Measurement, Monitor, MonitorHandle, MonitorOptions,
    ProfileOutcome, RegionError, StartError,
};
pub use summary::{ComponentSummary, GpuShare, RegionSummary, Summary};

/// The README's Rust examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
