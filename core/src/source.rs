//! The small interface that every measurement source implements (RAPL, perf, NVML, ROCm SMI, the
//! estimators), so that the sampler, the file format and the reports never know which vendor or
//! which kernel interface they read.
//!
//! A source is discovered by its adapter, describes itself once with a [`SourceInfo`], and is then
//! read repeatedly: each read returns a [`RawReading`], either a raw energy counter in the source's
//! own ticks (fed to [`crate::counter::EnergyCounter`]) or an instantaneous/averaged power (fed to
//! [`crate::integrate::EnergyTrack`]). The caller stamps each reading with its own clock.

use heapless::String;
use serde::{Deserialize, Serialize};

use crate::units::Nanos;

/// Maximum length of a source's display name, in bytes.
pub const NAME_LEN: usize = 64;

/// Which part of the machine a source measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Component {
    /// A CPU package (socket), RAPL `package-N`.
    CpuPackage,
    /// The cores of a package, RAPL `core` (PP0).
    CpuCores,
    /// The uncore / integrated GPU of a package, RAPL `uncore` (PP1).
    Uncore,
    /// DRAM attached to a package, RAPL `dram`, or the RAM estimator.
    Dram,
    /// The whole platform, RAPL `psys`.
    Platform,
    /// One GPU.
    Gpu,
    /// A power rail read from a board sensor (hwmon INA3221/INA226 and the like) that names no
    /// part of the machine: counted in totals, as the sensor is not known to sit inside another.
    Rail,
}

impl Component {
    /// Short lowercase name used in reports and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Component::CpuPackage => "cpu",
            Component::CpuCores => "cpu-cores",
            Component::Uncore => "uncore",
            Component::Dram => "ram",
            Component::Platform => "psys",
            Component::Gpu => "gpu",
            Component::Rail => "rail",
        }
    }

    /// True if this component's energy is already contained in another measured component
    /// (cores and uncore are inside the package; psys contains everything), so that totals must
    /// not add it again.
    pub const fn is_nested(self) -> bool {
        matches!(
            self,
            Component::CpuCores | Component::Uncore | Component::Platform
        )
    }
}

/// Whether a value comes from a sensor or from a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Provenance {
    /// Read from a hardware sensor or energy counter.
    Measured,
    /// Computed by a model (see [`crate::estimate`]).
    Estimated,
}

impl Provenance {
    /// `"measured"` or `"estimated"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provenance::Measured => "measured",
            Provenance::Estimated => "estimated",
        }
    }
}

/// What kind of value a source returns from each read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Quantity {
    /// A cumulative energy counter in integer ticks of `joules_per_tick` that wraps after
    /// `max_ticks` (`None` when the wrap point is unknown).
    EnergyCounter {
        /// Joules represented by one tick (1e-6 for RAPL, 1e-3 for NVML, 15.3e-6 for ROCm SMI).
        joules_per_tick: f64,
        /// The largest value the counter takes before it wraps to zero; the wrap modulus is
        /// `max_ticks + 1`.
        max_ticks: Option<u64>,
    },
    /// Power in milliwatts, either instantaneous or averaged over `averaging_ns` by the device.
    Power {
        /// The device's own averaging window (0 when the reading is instantaneous).
        averaging_ns: Nanos,
    },
}

/// How a source describes itself, once, when it is discovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Which part of the machine it measures.
    pub component: Component,
    /// Socket, package or GPU index within its component.
    pub index: u32,
    /// Sensor or model.
    pub provenance: Provenance,
    /// Counter or power reading.
    pub quantity: Quantity,
    /// How often the underlying value changes; reading faster than this gains nothing.
    pub update_period_ns: Nanos,
    /// The most this component can draw, in watts, used to reject impossible counter deltas.
    pub max_power_w: Option<f64>,
    /// Human-readable name, e.g. `"rapl intel-rapl:0 package-0"` or `"nvml 0 NVIDIA H100"`.
    pub name: String<NAME_LEN>,
}

impl SourceInfo {
    /// The counter description of a counter source (tick size, wrap point, power bound and
    /// update period), or `None` for a power source: the one place where a source's
    /// description becomes the input of [`crate::counter::EnergyCounter`].
    pub fn counter_spec(&self) -> Option<crate::counter::CounterSpec> {
        let Quantity::EnergyCounter {
            joules_per_tick,
            max_ticks,
        } = self.quantity
        else {
            return None;
        };
        let mut spec = crate::counter::CounterSpec::new(joules_per_tick)
            .with_update_period_ns(self.update_period_ns);
        spec.max_ticks = max_ticks;
        spec.max_power_w = self.max_power_w;
        Some(spec)
    }
}

/// One raw value read from a source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum RawReading {
    /// The counter's value in ticks.
    Counter(u64),
    /// Power in milliwatts.
    PowerMilliwatts(u64),
}

/// Why a read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadErrorKind {
    /// The file or device is there but the caller may not read it.
    PermissionDenied,
    /// The file, device or library went away (GPU lost, driver unloaded).
    Gone,
    /// The value could not be parsed or was out of range.
    Malformed,
    /// Any other I/O or driver error.
    Other,
}

/// A failed read, with a short message for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// What went wrong.
    pub kind: ReadErrorKind,
    /// Details (truncated to fit).
    pub message: String<96>,
}

impl ReadError {
    /// Builds an error, truncating `message` to the capacity at a character boundary.
    pub fn new(kind: ReadErrorKind, message: &str) -> Self {
        Self {
            kind,
            message: truncated(message),
        }
    }
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

/// Copies `s` into a fixed-capacity string, cutting at the last character boundary that fits.
pub fn truncated<const N: usize>(s: &str) -> String<N> {
    let mut end = s.len().min(N);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::new();
    // Cannot fail: `end <= N` bytes.
    let _ = out.push_str(&s[..end]);
    out
}

/// A measurement source: describe once, then read repeatedly.
///
/// Implementations do the I/O (sysfs, perf, NVML, a model's inputs); everything they return is
/// plain data handled by core.
pub trait Source {
    /// How the source describes itself.
    fn info(&self) -> &SourceInfo;
    /// Reads the current value. `now` is the caller's timestamp for the read, which sources that
    /// model rather than measure (estimators) use as their time input.
    fn read(&mut self, now: Nanos) -> Result<RawReading, ReadError>;
}

impl core::error::Error for ReadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let s: String<5> = truncated("ab\u{e9}\u{e9}x");
        assert_eq!(s.as_str(), "ab\u{e9}");
        let s: String<8> = truncated("short");
        assert_eq!(s.as_str(), "short");
    }

    #[test]
    fn counter_spec_carries_the_whole_description() {
        let mut info = SourceInfo {
            component: Component::Gpu,
            index: 0,
            provenance: Provenance::Measured,
            quantity: Quantity::EnergyCounter {
                joules_per_tick: 1e-3,
                max_ticks: Some(u64::MAX),
            },
            update_period_ns: 100_000_000,
            max_power_w: Some(1050.0),
            name: truncated("nvml 0"),
        };
        let spec = info.counter_spec().unwrap();
        assert_eq!(spec.joules_per_tick, 1e-3);
        assert_eq!(spec.max_ticks, Some(u64::MAX));
        assert_eq!(spec.max_power_w, Some(1050.0));
        assert_eq!(spec.update_period_ns, 100_000_000);
        info.quantity = Quantity::Power { averaging_ns: 0 };
        assert!(info.counter_spec().is_none());
    }

    #[test]
    fn nested_components_are_not_summed() {
        assert!(Component::CpuCores.is_nested());
        assert!(!Component::CpuPackage.is_nested());
        assert!(!Component::Gpu.is_nested());
    }
}
