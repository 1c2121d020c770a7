//! The EA2P sampler as a library: [`Monitor`] discovers the sources, reads them on its own
//! threads, hands every reading to ea2p-core's measuring
//! [`Session`](ea2p_core::session::Session), streams the records to the profile and folds them
//! into the [`Summary`] with ea2p-core's [`Fold`](ea2p_core::fold::Fold). It keeps only threads,
//! the clock and the file; every number comes from the core.
//!
//! The `ea2p` command line and the Python module both depend on this crate (the CLI re-exports
//! it, so `ea2p::Monitor` is this crate's `Monitor`).
//!
//! ```no_run
//! use ea2p_sampler::{Monitor, MonitorOptions};
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

pub mod attribute;
pub mod cpu_tdp;
pub mod devices;
pub mod discover;
pub mod monitor;
pub mod private_file;
pub mod summary;

pub use attribute::AttributeMode;
pub use devices::{Devices, GpuPick, HwmonPick};
pub use discover::{sources, DiscoverOptions, SourceDescription, SourcesReport};
pub use monitor::{
    ComponentEnergy, LiveComponent, Measurement, Monitor, MonitorHandle, MonitorOptions,
    ProfileOutcome, RegionError, StartError,
};
pub use summary::{ComponentSummary, GpuShare, RegionSummary, Summary};
