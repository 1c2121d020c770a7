//! The few NVML queries this crate needs, behind a trait, so that the source logic (counter or
//! power, selection, attribution, a GPU that disappears) is tested against [`crate::fake`] without
//! hardware, and runs against [`NvmlBackend`] on a real machine.

use std::sync::Arc;

use nvml_wrapper::enums::device::{DeviceArchitecture, UsedGpuMemory};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

/// Why one backend query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The board or driver does not offer this query (e.g. the energy counter before Volta).
    #[error("not supported by this GPU or driver")]
    NotSupported,
    /// The GPU fell off the bus, was removed, or its index no longer exists.
    #[error("GPU gone: {0}")]
    Gone(String),
    /// The caller may not run this query.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Anything else the driver reported.
    #[error("{0}")]
    Other(String),
}

/// GPU generation, as far as the energy interface cares (what NVML's power reading means and
/// whether the energy counter exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Architecture {
    /// Kepler (2012).
    Kepler,
    /// Maxwell (2014).
    Maxwell,
    /// Pascal (2016).
    Pascal,
    /// Volta (2017): first with the total energy counter.
    Volta,
    /// Turing (2018).
    Turing,
    /// Ampere (2020).
    Ampere,
    /// Ada Lovelace (2022).
    Ada,
    /// Hopper (2022).
    Hopper,
    /// Blackwell (2024).
    Blackwell,
    /// Not known to this build (most likely newer than Blackwell), or the query failed.
    Unknown,
}

/// Power limits of a board, in milliwatts, when the driver reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PowerLimitsMw {
    /// The limit the driver currently enforces.
    pub enforced: Option<u32>,
    /// The highest limit the power-management limit may be set to.
    pub max_settable: Option<u32>,
}

/// Whether a process uses the GPU for compute (CUDA), graphics, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProcessKind {
    /// Listed by `nvmlDeviceGetComputeRunningProcesses`.
    Compute,
    /// Listed by `nvmlDeviceGetGraphicsRunningProcesses`.
    Graphics,
    /// Listed by both.
    ComputeAndGraphics,
}

/// A process running on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuProcess {
    /// Process id, in the host's pid namespace (NVML does not translate container pids).
    pub pid: u32,
    /// GPU memory it holds, in bytes, when the driver reports it.
    pub used_memory_bytes: Option<u64>,
    /// How it uses the GPU.
    pub kind: ProcessKind,
}

/// One per-process utilisation sample (`nvmlDeviceGetProcessUtilization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessUtilization {
    /// Process id (host namespace).
    pub pid: u32,
    /// The driver's CPU timestamp of the sample, in microseconds.
    pub timestamp_us: u64,
    /// Streaming-multiprocessor (compute/3D) utilisation, percent.
    pub sm_percent: u32,
    /// Frame-buffer memory utilisation, percent.
    pub mem_percent: u32,
}

/// The NVML queries used by this crate, by GPU index (NVML's enumeration order).
///
/// Implemented by [`NvmlBackend`] (the real library) and [`crate::fake::FakeBackend`] (tests).
pub trait GpuBackend: Send + Sync {
    /// Number of GPUs the driver sees.
    fn device_count(&self) -> Result<u32, BackendError>;
    /// Marketing name, e.g. `"NVIDIA H100 80GB HBM3"`.
    fn name(&self, index: u32) -> Result<String, BackendError>;
    /// `GPU-xxxxxxxx-...` UUID, as used by `CUDA_VISIBLE_DEVICES`.
    fn uuid(&self, index: u32) -> Result<String, BackendError>;
    /// Generation of the GPU.
    fn architecture(&self, index: u32) -> Result<Architecture, BackendError>;
    /// Energy since the driver was loaded, in millijoules (Volta and later).
    fn total_energy_mj(&self, index: u32) -> Result<u64, BackendError>;
    /// Board power in milliwatts (averaged or instantaneous: see [`crate::power_averaging`]).
    fn power_mw(&self, index: u32) -> Result<u32, BackendError>;
    /// Power limits.
    fn power_limits_mw(&self, index: u32) -> Result<PowerLimitsMw, BackendError>;
    /// Processes running on the GPU (compute and graphics, merged by pid, sorted by pid).
    fn processes(&self, index: u32) -> Result<Vec<GpuProcess>, BackendError>;
    /// Per-process utilisation samples newer than `since_us` (0: all buffered samples). An empty
    /// list means no process used the GPU in that period.
    fn process_utilization(
        &self,
        index: u32,
        since_us: u64,
    ) -> Result<Vec<ProcessUtilization>, BackendError>;
    /// Driver version, for the report.
    fn driver_version(&self) -> Option<String>;
}

impl<B: GpuBackend + ?Sized> GpuBackend for Arc<B> {
    fn device_count(&self) -> Result<u32, BackendError> {
        (**self).device_count()
    }
    fn name(&self, index: u32) -> Result<String, BackendError> {
        (**self).name(index)
    }
    fn uuid(&self, index: u32) -> Result<String, BackendError> {
        (**self).uuid(index)
    }
    fn architecture(&self, index: u32) -> Result<Architecture, BackendError> {
        (**self).architecture(index)
    }
    fn total_energy_mj(&self, index: u32) -> Result<u64, BackendError> {
        (**self).total_energy_mj(index)
    }
    fn power_mw(&self, index: u32) -> Result<u32, BackendError> {
        (**self).power_mw(index)
    }
    fn power_limits_mw(&self, index: u32) -> Result<PowerLimitsMw, BackendError> {
        (**self).power_limits_mw(index)
    }
    fn processes(&self, index: u32) -> Result<Vec<GpuProcess>, BackendError> {
        (**self).processes(index)
    }
    fn process_utilization(
        &self,
        index: u32,
        since_us: u64,
    ) -> Result<Vec<ProcessUtilization>, BackendError> {
        (**self).process_utilization(index, since_us)
    }
    fn driver_version(&self) -> Option<String> {
        (**self).driver_version()
    }
}

/// Merges the compute and graphics process lists: one entry per pid, sorted by pid, keeping the
/// larger memory figure when a pid appears in both.
pub fn merge_processes(compute: &[GpuProcess], graphics: &[GpuProcess]) -> Vec<GpuProcess> {
    let mut by_pid: std::collections::BTreeMap<u32, GpuProcess> = Default::default();
    for p in compute.iter().chain(graphics) {
        by_pid
            .entry(p.pid)
            .and_modify(|e| {
                if e.kind != p.kind {
                    e.kind = ProcessKind::ComputeAndGraphics;
                }
                e.used_memory_bytes = match (e.used_memory_bytes, p.used_memory_bytes) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            })
            .or_insert(*p);
    }
    by_pid.into_values().collect()
}

/// The real NVML library. Holds the library handle in an [`Arc`] and looks each device up again
/// on every query (NVML `Device` values borrow the library; keeping them would tie every source's
/// lifetime to it, and a lookup by index costs about a microsecond).
#[derive(Debug, Clone)]
pub struct NvmlBackend {
    nvml: Arc<Nvml>,
}

/// The library file NVML is loaded from (the driver installs it; the unversioned `.so` name
/// exists only with development packages).
pub const NVML_LIBRARY: &str = "libnvidia-ml.so.1";

impl NvmlBackend {
    /// Loads and initialises NVML from [`NVML_LIBRARY`]. Fails cleanly (no panic, no link-time
    /// dependency) when the library or the driver is missing.
    pub fn init() -> Result<Self, crate::NvmlUnavailable> {
        Self::init_from(std::ffi::OsStr::new(NVML_LIBRARY))
    }

    /// Loads and initialises NVML from `path` (a file name searched by the loader, or a path).
    /// Errors name [`NVML_LIBRARY`] as the library, whatever `path` is.
    pub fn init_from(path: &std::ffi::OsStr) -> Result<Self, crate::NvmlUnavailable> {
        let nvml = Nvml::builder()
            .lib_path(path)
            .init()
            .map_err(crate::NvmlUnavailable::from_init_error)?;
        Ok(Self {
            nvml: Arc::new(nvml),
        })
    }

    /// Wraps an already initialised library handle.
    pub fn from_nvml(nvml: Arc<Nvml>) -> Self {
        Self { nvml }
    }

    fn device(&self, index: u32) -> Result<nvml_wrapper::Device<'_>, BackendError> {
        self.nvml.device_by_index(index).map_err(map_error)
    }
}

/// Maps an NVML error to what the sampler needs to know.
pub(crate) fn map_error(e: NvmlError) -> BackendError {
    match e {
        NvmlError::NotSupported
        | NvmlError::FunctionNotFound
        | NvmlError::FailedToLoadSymbol(_) => BackendError::NotSupported,
        NvmlError::GpuLost
        | NvmlError::InvalidArg
        | NvmlError::NotFound
        | NvmlError::Uninitialized
        | NvmlError::DriverNotLoaded
        | NvmlError::ResetRequired => BackendError::Gone(e.to_string()),
        NvmlError::NoPermission => BackendError::PermissionDenied(e.to_string()),
        other => BackendError::Other(other.to_string()),
    }
}

fn architecture_of(a: DeviceArchitecture) -> Architecture {
    match a {
        DeviceArchitecture::Kepler => Architecture::Kepler,
        DeviceArchitecture::Maxwell => Architecture::Maxwell,
        DeviceArchitecture::Pascal => Architecture::Pascal,
        DeviceArchitecture::Volta => Architecture::Volta,
        DeviceArchitecture::Turing => Architecture::Turing,
        DeviceArchitecture::Ampere => Architecture::Ampere,
        DeviceArchitecture::Ada => Architecture::Ada,
        DeviceArchitecture::Hopper => Architecture::Hopper,
        DeviceArchitecture::Blackwell => Architecture::Blackwell,
        DeviceArchitecture::Unknown => Architecture::Unknown,
    }
}

fn process_list(
    list: Result<Vec<nvml_wrapper::struct_wrappers::device::ProcessInfo>, NvmlError>,
    kind: ProcessKind,
) -> Result<Vec<GpuProcess>, BackendError> {
    match list {
        Ok(v) => Ok(v
            .into_iter()
            .map(|p| GpuProcess {
                pid: p.pid,
                used_memory_bytes: match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                },
                kind,
            })
            .collect()),
        // Graphics lists are not supported on compute-only boards (H100): treat as empty.
        Err(NvmlError::NotSupported) => Ok(Vec::new()),
        Err(e) => Err(map_error(e)),
    }
}

impl GpuBackend for NvmlBackend {
    fn device_count(&self) -> Result<u32, BackendError> {
        self.nvml.device_count().map_err(map_error)
    }

    fn name(&self, index: u32) -> Result<String, BackendError> {
        self.device(index)?.name().map_err(map_error)
    }

    fn uuid(&self, index: u32) -> Result<String, BackendError> {
        self.device(index)?.uuid().map_err(map_error)
    }

    fn architecture(&self, index: u32) -> Result<Architecture, BackendError> {
        self.device(index)?
            .architecture()
            .map(architecture_of)
            .map_err(map_error)
    }

    fn total_energy_mj(&self, index: u32) -> Result<u64, BackendError> {
        self.device(index)?
            .total_energy_consumption()
            .map_err(map_error)
    }

    fn power_mw(&self, index: u32) -> Result<u32, BackendError> {
        self.device(index)?.power_usage().map_err(map_error)
    }

    fn power_limits_mw(&self, index: u32) -> Result<PowerLimitsMw, BackendError> {
        let d = self.device(index)?;
        Ok(PowerLimitsMw {
            enforced: d.enforced_power_limit().ok(),
            max_settable: d
                .power_management_limit_constraints()
                .ok()
                .map(|c| c.max_limit),
        })
    }

    fn processes(&self, index: u32) -> Result<Vec<GpuProcess>, BackendError> {
        let d = self.device(index)?;
        let compute = process_list(d.running_compute_processes(), ProcessKind::Compute)?;
        let graphics = process_list(d.running_graphics_processes(), ProcessKind::Graphics)?;
        Ok(merge_processes(&compute, &graphics))
    }

    fn process_utilization(
        &self,
        index: u32,
        since_us: u64,
    ) -> Result<Vec<ProcessUtilization>, BackendError> {
        let d = self.device(index)?;
        match d.process_utilization_stats(since_us) {
            Ok(v) => Ok(v
                .into_iter()
                .map(|s| ProcessUtilization {
                    pid: s.pid,
                    timestamp_us: s.timestamp,
                    sm_percent: s.sm_util,
                    mem_percent: s.mem_util,
                })
                .collect()),
            // NVML answers NOT_FOUND when no process has a sample in the period.
            Err(NvmlError::NotFound) => Ok(Vec::new()),
            Err(e) => Err(map_error(e)),
        }
    }

    fn driver_version(&self) -> Option<String> {
        self.nvml.sys_driver_version().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_one_entry_per_pid_with_the_larger_memory() {
        let c = [
            GpuProcess {
                pid: 7,
                used_memory_bytes: Some(100),
                kind: ProcessKind::Compute,
            },
            GpuProcess {
                pid: 3,
                used_memory_bytes: None,
                kind: ProcessKind::Compute,
            },
        ];
        let g = [GpuProcess {
            pid: 7,
            used_memory_bytes: Some(300),
            kind: ProcessKind::Graphics,
        }];
        let m = merge_processes(&c, &g);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].pid, 3);
        assert_eq!(m[1].pid, 7);
        assert_eq!(m[1].used_memory_bytes, Some(300));
        assert_eq!(m[1].kind, ProcessKind::ComputeAndGraphics);
    }

    #[test]
    fn lost_gpus_map_to_gone_and_missing_features_to_not_supported() {
        assert!(matches!(
            map_error(NvmlError::GpuLost),
            BackendError::Gone(_)
        ));
        assert_eq!(
            map_error(NvmlError::NotSupported),
            BackendError::NotSupported
        );
        assert!(matches!(
            map_error(NvmlError::NoPermission),
            BackendError::PermissionDenied(_)
        ));
        assert!(matches!(
            map_error(NvmlError::Unknown),
            BackendError::Other(_)
        ));
    }
}
