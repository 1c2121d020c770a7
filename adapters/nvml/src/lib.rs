//! NVIDIA GPU energy for EA2P through NVML.
//!
//! [`discover`] loads `libnvidia-ml.so.1` at run time (no link-time dependency: a machine without
//! the driver gets an [`NvmlUnavailable`] that says why), selects GPUs ([`Selection`]: all,
//! explicit indices, or `CUDA_VISIBLE_DEVICES`) and returns one [`GpuSource`] per usable GPU:
//!
//! - the total energy counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ, Volta and later) as an
//!   [`ea2p_core::source::Quantity::EnergyCounter`] when the board has it;
//! - board power (`nvmlDeviceGetPowerUsage`, mW) otherwise, with the averaging the board applies
//!   ([`power_averaging`]) stated in the quantity and the source's name.
//!
//! [`NvmlGpus::process_probe`] reads the processes running on the selected GPUs and their SM
//! utilisation, and [`attribution::energy_share`] turns that into the share of each GPU's energy
//! that belongs to a set of pids.

#![warn(missing_docs)]

pub mod attribution;
pub mod backend;
pub mod fake;
pub mod select;

use std::sync::Arc;

use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadError, ReadErrorKind, Source,
    SourceInfo,
};
use ea2p_core::units::{Nanos, NANOS_PER_MS, NANOS_PER_SEC};
use nvml_wrapper::error::NvmlError;

pub use attribution::{energy_share, ActivityTally, GpuActivity, ProcessProbe, Share, ShareBasis};
pub use backend::{
    Architecture, BackendError, GpuBackend, GpuProcess, NvmlBackend, PowerLimitsMw, ProcessKind,
    ProcessUtilization, NVML_LIBRARY,
};
pub use select::{
    parse_cuda_visible_devices, CudaEntry, CudaVisibleDevices, DeviceId, Resolution, SelectError,
    Selection,
};

/// Joules per tick of NVML's energy counter (it counts millijoules).
pub const JOULES_PER_MJ_TICK: f64 = 1e-3;

/// How often NVML's energy counter and power reading change. Declared to core as the update
/// period, which widens its impossible-delta bound by this much, so it must not be shorter than
/// the real period. Measured on an H100 80GB HBM3, driver 580.159.04: both change every 100 ms
/// (median 100.0 ms, range 99.5-100.5 ms; see the crate README). Reading faster gains nothing, and
/// `nvmlDeviceGetTotalEnergyConsumption` itself took about 4 ms per call there.
pub const UPDATE_PERIOD_NS: Nanos = 100 * NANOS_PER_MS;

/// Factor applied to the board's power limit to get the most it can draw over a sampling
/// interval: boards exceed their limit for tens of milliseconds (power excursions) before the
/// controller reacts, and core rejects counter deltas above this bound.
pub const POWER_LIMIT_HEADROOM: f64 = 1.5;

/// What NVML's power reading means on a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerAveraging {
    /// The board's averaging window (0: instantaneous).
    pub averaging_ns: Nanos,
    /// Short label used in the source name: `"power-1s-avg"` or `"power-instant"`.
    pub label: &'static str,
}

/// The averaging behind `nvmlDeviceGetPowerUsage`, per NVIDIA's NVML reference: on Ampere
/// (except GA100) and later it is the average over the last second; on GA100 (A100, A30, A800)
/// and all older generations it is instantaneous. Unknown architectures are taken to be newer
/// than Blackwell, hence averaged. Checked on an H100: after a step from 81 W to 372 W the
/// reading ramps linearly for 1.1 s while the energy counter steps within 100-200 ms.
pub fn power_averaging(architecture: Architecture, name: &str) -> PowerAveraging {
    const AVERAGED: PowerAveraging = PowerAveraging {
        averaging_ns: NANOS_PER_SEC,
        label: "power-1s-avg",
    };
    const INSTANT: PowerAveraging = PowerAveraging {
        averaging_ns: 0,
        label: "power-instant",
    };
    let is_ga100 = ["A100", "A30", "A800"].iter().any(|m| name.contains(m));
    match architecture {
        Architecture::Ampere if is_ga100 => INSTANT,
        Architecture::Ampere
        | Architecture::Ada
        | Architecture::Hopper
        | Architecture::Blackwell
        | Architecture::Unknown => AVERAGED,
        Architecture::Kepler
        | Architecture::Maxwell
        | Architecture::Pascal
        | Architecture::Volta
        | Architecture::Turing => INSTANT,
    }
}

/// Why NVIDIA GPUs cannot be measured on this machine. The message is the reason and, where one
/// exists, the fix; the caller prefixes it with "NVIDIA: not available: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NvmlUnavailable {
    /// The NVML library could not be loaded.
    #[error(
        "cannot load {library} ({detail}); install the NVIDIA driver, which provides it, or add \
         its directory to LD_LIBRARY_PATH"
    )]
    LibraryNotFound {
        /// The file name searched.
        library: &'static str,
        /// The loader's message.
        detail: String,
    },
    /// The library lacks an entry point (driver too old for this build).
    #[error("{library}: missing entry point ({symbol}); update the NVIDIA driver")]
    MissingSymbol {
        /// The file name loaded.
        library: &'static str,
        /// The symbol (or the loader's message about it).
        symbol: String,
    },
    /// The library is there but the kernel driver is not running.
    #[error("the NVIDIA kernel driver is not loaded; load it (`modprobe nvidia`) and check `nvidia-smi`")]
    DriverNotLoaded,
    /// The library and the kernel driver are of different versions.
    #[error(
        "the NVML library and the NVIDIA kernel driver have different versions (driver updated \
         without reboot); reload the nvidia module or reboot"
    )]
    VersionMismatch,
    /// NVML may not talk to the driver.
    #[error("no permission to talk to the NVIDIA driver; check access to /dev/nvidia*")]
    NoPermission,
    /// Any other initialisation failure.
    #[error("NVML initialisation failed: {0}")]
    Init(String),
    /// Counting the GPUs failed.
    #[error("NVML cannot list GPUs: {0}")]
    DeviceQuery(String),
    /// NVML works but sees no GPU.
    #[error("NVML sees no NVIDIA GPU")]
    NoDevices,
    /// An explicit selection names a GPU that does not exist.
    #[error("{0}")]
    Selection(#[from] SelectError),
    /// The selection (e.g. `CUDA_VISIBLE_DEVICES`) leaves no GPU.
    #[error("no GPU selected ({detail})")]
    NothingSelected {
        /// Which selection and why it is empty.
        detail: String,
    },
    /// Every selected GPU failed both the energy counter and the power reading.
    #[error("no selected GPU can be read: {reasons}")]
    NoReadableGpu {
        /// One reason per GPU, `; `-separated.
        reasons: String,
    },
}

impl NvmlUnavailable {
    /// Classifies an error from `nvmlInit`.
    pub fn from_init_error(e: NvmlError) -> Self {
        match e {
            NvmlError::LibloadingError(l) => NvmlUnavailable::LibraryNotFound {
                library: NVML_LIBRARY,
                detail: l.to_string(),
            },
            NvmlError::FailedToLoadSymbol(s) => NvmlUnavailable::MissingSymbol {
                library: NVML_LIBRARY,
                symbol: s,
            },
            NvmlError::LibraryNotFound => NvmlUnavailable::LibraryNotFound {
                library: NVML_LIBRARY,
                detail: "NVML reported LIBRARY_NOT_FOUND".to_owned(),
            },
            NvmlError::DriverNotLoaded => NvmlUnavailable::DriverNotLoaded,
            NvmlError::LibRmVersionMismatch => NvmlUnavailable::VersionMismatch,
            NvmlError::NoPermission => NvmlUnavailable::NoPermission,
            other => NvmlUnavailable::Init(other.to_string()),
        }
    }
}

/// How a [`GpuSource`] reads its GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// The total energy counter, in mJ.
    EnergyCounter,
    /// Board power in mW, with the board's averaging.
    Power(PowerAveraging),
}

/// One NVIDIA GPU as a measurement source. Holds the GPU's index, never an NVML `Device` borrow:
/// each read looks the device up again through the shared backend.
#[derive(Debug)]
pub struct GpuSource<B: GpuBackend = NvmlBackend> {
    backend: Arc<B>,
    index: u32,
    uuid: String,
    mode: ReadMode,
    info: SourceInfo,
}

impl<B: GpuBackend> GpuSource<B> {
    /// NVML index of the GPU.
    pub fn gpu_index(&self) -> u32 {
        self.index
    }
    /// The GPU's UUID (empty if the driver did not report one).
    pub fn uuid(&self) -> &str {
        &self.uuid
    }
    /// Counter or power.
    pub fn mode(&self) -> ReadMode {
        self.mode
    }
}

fn read_error(e: BackendError) -> ReadError {
    let kind = match &e {
        BackendError::Gone(_) => ReadErrorKind::Gone,
        BackendError::PermissionDenied(_) => ReadErrorKind::PermissionDenied,
        BackendError::NotSupported | BackendError::Other(_) => ReadErrorKind::Other,
    };
    ReadError::new(kind, &format!("nvml: {e}"))
}

impl<B: GpuBackend> Source for GpuSource<B> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn read(&mut self, _now: Nanos) -> Result<RawReading, ReadError> {
        match self.mode {
            ReadMode::EnergyCounter => self
                .backend
                .total_energy_mj(self.index)
                .map(RawReading::Counter),
            ReadMode::Power(_) => self
                .backend
                .power_mw(self.index)
                .map(|mw| RawReading::PowerMilliwatts(u64::from(mw))),
        }
        .map_err(read_error)
    }
}

/// A GPU that was selected but cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedGpu {
    /// NVML index.
    pub index: u32,
    /// Why (both the counter's and the power reading's errors).
    pub reason: String,
}

/// The result of a discovery: the usable GPUs as sources, and what the user should know.
#[derive(Debug)]
pub struct NvmlGpus<B: GpuBackend = NvmlBackend> {
    /// One source per readable selected GPU, in selection order.
    pub sources: Vec<GpuSource<B>>,
    /// Selected GPUs that cannot be read.
    pub skipped: Vec<SkippedGpu>,
    /// Notes on the selection (ignored `CUDA_VISIBLE_DEVICES` entries, ordering caveats).
    pub notes: Vec<String>,
    /// The driver version, when NVML reports it.
    pub driver_version: Option<String>,
    backend: Arc<B>,
}

impl<B: GpuBackend> NvmlGpus<B> {
    /// A probe of the processes running on the GPUs that have a source, for attribution.
    pub fn process_probe(&self) -> ProcessProbe<B> {
        let indices: Vec<u32> = self.sources.iter().map(|s| s.index).collect();
        ProcessProbe::new(Arc::clone(&self.backend), &indices)
    }

    /// The shared backend.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }
}

/// Loads NVML and discovers the selected GPUs.
pub fn discover(selection: &Selection) -> Result<NvmlGpus<NvmlBackend>, NvmlUnavailable> {
    let backend = NvmlBackend::init()?;
    discover_with(Arc::new(backend), selection)
}

/// Discovers the selected GPUs of any backend (the real one or [`fake::FakeBackend`]).
pub fn discover_with<B: GpuBackend>(
    backend: Arc<B>,
    selection: &Selection,
) -> Result<NvmlGpus<B>, NvmlUnavailable> {
    let count = backend
        .device_count()
        .map_err(|e| NvmlUnavailable::DeviceQuery(e.to_string()))?;
    if count == 0 {
        return Err(NvmlUnavailable::NoDevices);
    }
    let devices: Vec<DeviceId> = (0..count)
        .map(|index| DeviceId {
            index,
            uuid: backend.uuid(index).unwrap_or_default(),
            name: backend.name(index).unwrap_or_default(),
        })
        .collect();
    let resolution = selection.resolve(&devices)?;
    if resolution.indices.is_empty() {
        let detail = match selection {
            Selection::CudaVisible { value, .. } => {
                let mut d = format!("CUDA_VISIBLE_DEVICES={value:?} selects none");
                for n in &resolution.notes {
                    d.push_str("; ");
                    d.push_str(n);
                }
                d
            }
            _ => "empty device list".to_owned(),
        };
        return Err(NvmlUnavailable::NothingSelected { detail });
    }
    let mut sources = Vec::new();
    let mut skipped = Vec::new();
    for &index in &resolution.indices {
        match build_source(&backend, &devices[index as usize]) {
            Ok(s) => sources.push(s),
            Err(reason) => skipped.push(SkippedGpu { index, reason }),
        }
    }
    if sources.is_empty() {
        let reasons = skipped
            .iter()
            .map(|s| format!("GPU {}: {}", s.index, s.reason))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(NvmlUnavailable::NoReadableGpu { reasons });
    }
    Ok(NvmlGpus {
        sources,
        skipped,
        notes: resolution.notes,
        driver_version: backend.driver_version(),
        backend,
    })
}

/// The most the board can draw, in watts: its highest settable (else enforced) power limit times
/// [`POWER_LIMIT_HEADROOM`].
pub fn max_power_w(limits: PowerLimitsMw) -> Option<f64> {
    limits
        .max_settable
        .or(limits.enforced)
        .filter(|&mw| mw > 0)
        .map(|mw| f64::from(mw) / 1000.0 * POWER_LIMIT_HEADROOM)
}

fn build_source<B: GpuBackend>(
    backend: &Arc<B>,
    device: &DeviceId,
) -> Result<GpuSource<B>, String> {
    let index = device.index;
    let architecture = backend.architecture(index).unwrap_or(Architecture::Unknown);
    let mode = match backend.total_energy_mj(index) {
        Ok(_) => ReadMode::EnergyCounter,
        Err(counter_err) => match backend.power_mw(index) {
            Ok(_) => ReadMode::Power(power_averaging(architecture, &device.name)),
            Err(power_err) => {
                return Err(format!("energy counter: {counter_err}; power: {power_err}"))
            }
        },
    };
    let (quantity, label) = match mode {
        ReadMode::EnergyCounter => (
            Quantity::EnergyCounter {
                joules_per_tick: JOULES_PER_MJ_TICK,
                max_ticks: Some(u64::MAX),
            },
            "energy",
        ),
        ReadMode::Power(a) => (
            Quantity::Power {
                averaging_ns: a.averaging_ns,
            },
            a.label,
        ),
    };
    let name = if device.name.is_empty() {
        "NVIDIA GPU"
    } else {
        device.name.as_str()
    };
    let info = SourceInfo {
        component: Component::Gpu,
        index,
        provenance: Provenance::Measured,
        quantity,
        update_period_ns: UPDATE_PERIOD_NS,
        max_power_w: backend.power_limits_mw(index).ok().and_then(max_power_w),
        name: truncated(&format!("nvml {index} {label} {name}")),
    };
    Ok(GpuSource {
        backend: Arc::clone(backend),
        index,
        uuid: device.uuid.clone(),
        mode,
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averaging_follows_the_nvml_reference() {
        let a = |arch, name| power_averaging(arch, name).averaging_ns;
        assert_eq!(a(Architecture::Ampere, "NVIDIA A100-SXM4-80GB"), 0);
        assert_eq!(a(Architecture::Ampere, "NVIDIA A30"), 0);
        assert_eq!(a(Architecture::Ampere, "NVIDIA A10G"), NANOS_PER_SEC);
        assert_eq!(
            a(Architecture::Ampere, "NVIDIA GeForce RTX 3090"),
            NANOS_PER_SEC
        );
        assert_eq!(
            a(Architecture::Hopper, "NVIDIA H100 80GB HBM3"),
            NANOS_PER_SEC
        );
        assert_eq!(a(Architecture::Ada, "NVIDIA L4"), NANOS_PER_SEC);
        assert_eq!(a(Architecture::Unknown, "NVIDIA Next"), NANOS_PER_SEC);
        assert_eq!(a(Architecture::Pascal, "Tesla P100-PCIE-16GB"), 0);
        assert_eq!(a(Architecture::Turing, "Tesla T4"), 0);
    }

    #[test]
    fn max_power_prefers_the_settable_limit_with_headroom() {
        let l = PowerLimitsMw {
            enforced: Some(500_000),
            max_settable: Some(700_000),
        };
        assert_eq!(max_power_w(l), Some(700.0 * POWER_LIMIT_HEADROOM));
        let l = PowerLimitsMw {
            enforced: Some(300_000),
            max_settable: None,
        };
        assert_eq!(max_power_w(l), Some(300.0 * POWER_LIMIT_HEADROOM));
        assert_eq!(max_power_w(PowerLimitsMw::default()), None);
    }

    #[test]
    fn init_errors_say_why() {
        let e = NvmlUnavailable::from_init_error(NvmlError::DriverNotLoaded);
        assert!(e.to_string().contains("modprobe nvidia"));
        let e =
            NvmlUnavailable::from_init_error(NvmlError::FailedToLoadSymbol("nvmlInit_v2".into()));
        assert!(e.to_string().contains("nvmlInit_v2"));
    }
}

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
