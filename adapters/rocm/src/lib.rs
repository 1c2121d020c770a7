//! AMD GPU energy for EA2P through amdsmi / ROCm SMI, loaded at run time.
//!
//! [`discover`] opens `libamd_smi.so` (amdsmi) and, failing that, `librocm_smi64.so` (ROCm SMI)
//! with `dlopen`: no link-time dependency, and a machine without ROCm gets a
//! [`RocmUnavailable`] naming each library tried and why it failed (not found, a missing symbol,
//! no GPU). Each GPU becomes a [`RocmSource`]:
//!
//! - the energy accumulator (`amdsmi_get_energy_count` / `rsmi_dev_energy_count_get`) as an
//!   [`ea2p_core::source::Quantity::EnergyCounter`] in ticks of the reported resolution (about
//!   15.3 uJ), cross-checked against average power x elapsed time by [`check::CounterPowerCheck`];
//! - average power (`rsmi_dev_power_ave_get`, or hwmon for amdsmi) when there is no counter.

#![warn(missing_docs)]

pub mod backend;
pub mod check;
pub mod fake;
pub mod ffi;
pub mod hwmon;

use std::path::Path;
use std::sync::Arc;

use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadError, ReadErrorKind, Source,
    SourceInfo,
};
use ea2p_core::units::{Nanos, NANOS_PER_MS, NANOS_PER_SEC};

pub use backend::{AmdBackend, BackendError, EnergyCount};
pub use check::{CounterPowerCheck, Disagreement, Verdict, DISAGREEMENT_FACTOR};
pub use ffi::{AmdSmiBackend, LoadError, RsmiBackend, AMDSMI_LIBRARY, RSMI_LIBRARY};

/// Update period declared for the energy accumulator. Not measured here (no AMD GPU was
/// available); chosen above the 1 ms SMU metrics interval of MI200/MI300 so that core's
/// impossible-delta bound and [`CounterPowerCheck`] allow for a read that sees one more update
/// than the time elapsed.
pub const COUNTER_UPDATE_PERIOD_NS: Nanos = 10 * NANOS_PER_MS;

/// Averaging window declared for the power fallback (amdgpu's `power1_average`, averaged by the
/// firmware over about a second).
pub const POWER_AVERAGING_NS: Nanos = NANOS_PER_SEC;

/// Factor applied to the power cap to get the most a board can draw over a sampling interval
/// (boards exceed their cap briefly before the firmware reacts).
pub const POWER_CAP_HEADROOM: f64 = 1.5;

/// Why AMD GPUs cannot be measured here. The message lists each library tried and why, then the
/// fix; the caller prefixes it with "AMD: not available: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RocmUnavailable {
    /// Neither library could be used.
    #[error(
        "{}; install ROCm's amd-smi or rocm-smi library, or add its directory (e.g. /opt/rocm/lib) \
         to LD_LIBRARY_PATH",
        .attempts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    NoLibrary {
        /// One failure per library, in the order tried.
        attempts: Vec<LoadError>,
    },
    /// A library works but no GPU offers a counter or a power reading.
    #[error("{library}: no GPU can be read: {reasons}")]
    NoReadableGpu {
        /// The library used.
        library: &'static str,
        /// One reason per GPU, `; `-separated.
        reasons: String,
    },
}

/// How a [`RocmSource`] reads its GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadMode {
    /// The energy accumulator, with the resolution seen at discovery.
    EnergyCounter {
        /// Micro-joules per tick.
        resolution_uj: f32,
    },
    /// Average power.
    AveragePower,
}

/// One AMD GPU as a measurement source.
///
/// In counter mode every reading is compared with average power x elapsed time (the caller's
/// `now`). A reading more than [`DISAGREEMENT_FACTOR`] apart is rejected: `read` returns a
/// [`ReadErrorKind::Malformed`] error saying so, and the energy of that interval is carried into
/// the counter value reported next as power x time instead of the counter's delta (the source
/// reports the raw counter minus the rejected excess, so the jump never reaches core's total).
#[derive(Debug)]
pub struct RocmSource {
    backend: Arc<dyn AmdBackend>,
    index: u32,
    mode: ReadMode,
    info: SourceInfo,
    check: CounterPowerCheck,
    /// Ticks removed from the raw counter (rejected excess), modulo 2^64.
    correction: u64,
    last_raw: Option<u64>,
}

impl RocmSource {
    /// The library's device index.
    pub fn gpu_index(&self) -> u32 {
        self.index
    }
    /// Counter or power.
    pub fn mode(&self) -> ReadMode {
        self.mode
    }
    /// Readings rejected so far by the counter/power cross-check.
    pub fn rejected(&self) -> u64 {
        self.check.rejected()
    }

    fn read_counter(&mut self, now: Nanos, resolution_uj: f32) -> Result<RawReading, ReadError> {
        let e = self.backend.energy(self.index).map_err(read_error)?;
        if e.resolution_uj.is_nan()
            || e.resolution_uj <= 0.0
            || (e.resolution_uj - resolution_uj).abs() > 0.01 * resolution_uj
        {
            return Err(ReadError::new(
                ReadErrorKind::Malformed,
                &format!(
                    "rocm: counter resolution changed from {resolution_uj} to {} uJ",
                    e.resolution_uj
                ),
            ));
        }
        let joules_per_tick = f64::from(resolution_uj) * 1e-6;
        if self.last_raw.is_some_and(|prev| e.ticks < prev) {
            // Driver reload: report the raw value so core sees the reset.
            self.correction = 0;
        }
        self.last_raw = Some(e.ticks);
        let power_w = self
            .backend
            .average_power_uw(self.index)
            .ok()
            .map(|uw| uw as f64 / 1e6);
        match self.check.check(now, e.ticks, joules_per_tick, power_w) {
            Verdict::Disagrees(d) => {
                let replacement = (d.expected_j / joules_per_tick).round() as u64;
                self.correction = self
                    .correction
                    .wrapping_add(d.counter_ticks)
                    .wrapping_sub(replacement);
                Err(ReadError::new(
                    ReadErrorKind::Malformed,
                    &format!(
                        "rocm: counter +{:.1} J vs power*time {:.1} J in {} ms: >{}x off, rejected",
                        d.counter_j,
                        d.expected_j,
                        d.elapsed_ns / NANOS_PER_MS,
                        DISAGREEMENT_FACTOR
                    ),
                ))
            }
            _ => Ok(RawReading::Counter(e.ticks.wrapping_sub(self.correction))),
        }
    }
}

fn read_error(e: BackendError) -> ReadError {
    let kind = match &e {
        BackendError::Gone(_) => ReadErrorKind::Gone,
        BackendError::PermissionDenied(_) => ReadErrorKind::PermissionDenied,
        BackendError::NotSupported | BackendError::Other(_) => ReadErrorKind::Other,
    };
    ReadError::new(kind, &format!("rocm: {e}"))
}

impl Source for RocmSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn read(&mut self, now: Nanos) -> Result<RawReading, ReadError> {
        match self.mode {
            ReadMode::EnergyCounter { resolution_uj } => self.read_counter(now, resolution_uj),
            ReadMode::AveragePower => self
                .backend
                .average_power_uw(self.index)
                .map(|uw| RawReading::PowerMilliwatts(uw / 1000))
                .map_err(read_error),
        }
    }
}

/// A GPU that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedGpu {
    /// The library's device index.
    pub index: u32,
    /// Why (the counter's and the power reading's errors).
    pub reason: String,
}

/// The result of a discovery.
#[derive(Debug)]
pub struct RocmGpus {
    /// The library in use.
    pub library: &'static str,
    /// One source per readable GPU.
    pub sources: Vec<RocmSource>,
    /// GPUs that cannot be read.
    pub skipped: Vec<SkippedGpu>,
    /// Why the libraries tried before the one in use failed (e.g. amdsmi absent, ROCm SMI used).
    pub fallback_reasons: Vec<LoadError>,
}

/// Loads amdsmi, else ROCm SMI, and discovers their GPUs; sysfs at `/sys`.
pub fn discover() -> Result<RocmGpus, RocmUnavailable> {
    discover_at(Path::new("/sys"))
}

/// [`discover`] with sysfs at `sys_root` (amdsmi's power comes from hwmon there).
pub fn discover_at(sys_root: &Path) -> Result<RocmGpus, RocmUnavailable> {
    let mut attempts = Vec::new();
    match AmdSmiBackend::load(sys_root) {
        Ok(b) => return discover_with(Arc::new(b), attempts),
        Err(e) => attempts.push(e),
    }
    match RsmiBackend::load() {
        Ok(b) => discover_with(Arc::new(b), attempts),
        Err(e) => {
            attempts.push(e);
            Err(RocmUnavailable::NoLibrary { attempts })
        }
    }
}

/// Builds the sources of an opened backend (real or [`fake::FakeAmd`]); `fallback_reasons` are
/// the failures of libraries tried before it, kept for the report.
pub fn discover_with(
    backend: Arc<dyn AmdBackend>,
    fallback_reasons: Vec<LoadError>,
) -> Result<RocmGpus, RocmUnavailable> {
    let mut sources = Vec::new();
    let mut skipped = Vec::new();
    for index in 0..backend.device_count() {
        match build_source(&backend, index) {
            Ok(s) => sources.push(s),
            Err(reason) => skipped.push(SkippedGpu { index, reason }),
        }
    }
    if sources.is_empty() {
        return Err(RocmUnavailable::NoReadableGpu {
            library: backend.library(),
            reasons: skipped
                .iter()
                .map(|s| format!("GPU {}: {}", s.index, s.reason))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(RocmGpus {
        library: backend.library(),
        sources,
        skipped,
        fallback_reasons,
    })
}

fn build_source(backend: &Arc<dyn AmdBackend>, index: u32) -> Result<RocmSource, String> {
    let counter = backend.energy(index);
    let (mode, quantity, update_period_ns, label) = match counter {
        Ok(e) if e.resolution_uj > 0.0 && e.resolution_uj.is_finite() => (
            ReadMode::EnergyCounter {
                resolution_uj: e.resolution_uj,
            },
            Quantity::EnergyCounter {
                joules_per_tick: f64::from(e.resolution_uj) * 1e-6,
                // The accumulator's width is not documented (64-bit in the API, narrower in
                // some firmware): a backwards step is treated as a reset by core.
                max_ticks: None,
            },
            COUNTER_UPDATE_PERIOD_NS,
            "energy",
        ),
        other => {
            let counter_reason = match other {
                Ok(e) => format!("counter resolution {} uJ is unusable", e.resolution_uj),
                Err(e) => e.to_string(),
            };
            match backend.average_power_uw(index) {
                Ok(_) => (
                    ReadMode::AveragePower,
                    Quantity::Power {
                        averaging_ns: POWER_AVERAGING_NS,
                    },
                    COUNTER_UPDATE_PERIOD_NS,
                    "power-avg",
                ),
                Err(p) => return Err(format!("energy counter: {counter_reason}; power: {p}")),
            }
        }
    };
    let name = backend.name(index).unwrap_or_else(|| "AMD GPU".to_owned());
    let info = SourceInfo {
        component: Component::Gpu,
        index,
        provenance: Provenance::Measured,
        quantity,
        update_period_ns,
        max_power_w: backend
            .power_cap_uw(index)
            .map(|uw| uw as f64 / 1e6 * POWER_CAP_HEADROOM),
        name: truncated(&format!("{} {index} {label} {name}", backend.short_name())),
    };
    Ok(RocmSource {
        backend: Arc::clone(backend),
        index,
        mode,
        info,
        check: CounterPowerCheck::new(update_period_ns),
        correction: 0,
        last_raw: None,
    })
}

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
