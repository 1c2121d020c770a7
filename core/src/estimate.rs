//! Power models for hardware without an energy sensor: RAM on most machines, CPUs inside VMs and
//! containers. Every value they return is labelled [`Provenance::Estimated`].

use serde::{Deserialize, Serialize};

use crate::source::Provenance;

/// A modelled power, always labelled estimated so that no report can present it as measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PowerEstimate {
    /// Modelled power in watts.
    pub watts: f64,
    /// Always [`Provenance::Estimated`].
    pub provenance: Provenance,
}

impl PowerEstimate {
    /// A modelled power in watts, labelled estimated.
    pub(crate) fn new(watts: f64) -> Self {
        Self {
            watts,
            provenance: Provenance::Estimated,
        }
    }
}

/// Clamps a utilisation to `[0, 1]` (NaN counts as idle).
fn unit_interval(u: f64) -> f64 {
    if u.is_nan() {
        0.0
    } else {
        u.clamp(0.0, 1.0)
    }
}

// ---------------------------------------------------------------------------------------------
// CPU
// ---------------------------------------------------------------------------------------------

/// Idle power as a fraction of TDP when nothing better is known.
///
/// Cloud Carbon Footprint's methodology (cloudcarbonfootprint.org, "Methodology", compute
/// coefficients) averages SPECpower results into 0.74 W per vCPU at idle and 3.5 W per vCPU at
/// full load; 0.74 / 3.5 = 0.21.
pub const DEFAULT_IDLE_FRACTION_OF_TDP: f64 = 0.21;

/// Exponent of Fan, Weber and Barroso's utilisation curve (ISCA 2007, "Power provisioning for a
/// warehouse-sized computer", §4.1: `P = P_idle + (P_busy - P_idle)(2u - u^r)`, r = 1.4 fitted on
/// Google servers).
pub const FAN_BARROSO_EXPONENT: f64 = 1.4;

/// The shape of power between idle and full load.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum UtilisationCurve {
    /// `f(u) = u`.
    Linear,
    /// `f(u) = 2u - u^r`: concave, as measured on real servers (power rises fast at low load).
    FanBarroso {
        /// The fitted exponent r (1.4 in the paper).
        r: f64,
    },
}

impl UtilisationCurve {
    /// `f(u)` for a utilisation in `[0, 1]`; `f(0) = 0`, `f(1) = 1`.
    pub fn fraction(self, utilisation: f64) -> f64 {
        let u = unit_interval(utilisation);
        match self {
            UtilisationCurve::Linear => u,
            UtilisationCurve::FanBarroso { r } => (2.0 * u - libm::pow(u, r)).clamp(0.0, 1.0),
        }
    }
}

/// CPU power for machines without RAPL: `idle + (TDP - idle) x f(utilisation)`. The previous
/// model, kept for the C ABI: `ea2p` now uses the measured family curves of
/// [`crate::cpu_power`], which are closer on held-out machines (the README's table has both).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuModel {
    /// Thermal design power of the CPU package(s) the measured share runs on, in watts.
    pub tdp_w: f64,
    /// Power at zero utilisation, in watts.
    pub idle_w: f64,
    /// Shape between idle and TDP.
    pub curve: UtilisationCurve,
}

impl CpuModel {
    /// The default model for a CPU of `tdp_w`: idle at [`DEFAULT_IDLE_FRACTION_OF_TDP`], Fan and
    /// Barroso's curve.
    pub fn from_tdp(tdp_w: f64) -> Self {
        Self {
            tdp_w,
            idle_w: tdp_w * DEFAULT_IDLE_FRACTION_OF_TDP,
            curve: UtilisationCurve::FanBarroso {
                r: FAN_BARROSO_EXPONENT,
            },
        }
    }

    /// Power at a utilisation in `[0, 1]` (values outside are clamped).
    pub fn power(&self, utilisation: f64) -> PowerEstimate {
        let span = (self.tdp_w - self.idle_w).max(0.0);
        PowerEstimate::new(self.idle_w + span * self.curve.fraction(utilisation))
    }
}

// ---------------------------------------------------------------------------------------------
// RAM
// ---------------------------------------------------------------------------------------------

/// DRAM generations with datasheet-derived parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DramGeneration {
    /// DDR4, from Micron's MT40A1G8 (8 Gb x8 DDR4-2400) currents.
    Ddr4,
    /// DDR5, derived from DDR4 (see [`RamParams::DDR5`]).
    Ddr5,
}

/// Parameters of the RAM model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RamParams {
    /// Background power (standby + refresh) per GiB installed, in watts.
    pub background_w_per_gib: f64,
    /// Energy per byte moved between the memory controller and the DRAM devices, in joules.
    pub activity_j_per_byte: f64,
}

impl RamParams {
    /// DDR4, derived from the currents of Micron's MT40A1G8 datasheet (8 Gb = 1 GiB x8 device,
    /// DDR4-2400, VDD 1.2 V, VPP 2.5 V; the values gem5's `DDR4_2400_8x8` interface also uses):
    /// IDD2N 34 mA, IDD3N 43 mA, IDD3N(VPP) 3 mA, IDD4R 135 mA, IDD0 48 mA, IDD5 250 mA,
    /// tRFC 350 ns, tREFI 7.8 us, tRAS 32 ns, tRP 14.16 ns.
    ///
    /// - Background per device: standby (mean of IDD2N and IDD3N) x VDD + VPP standby
    ///   = 38.5 mA x 1.2 V + 3 mA x 2.5 V = 53.7 mW; refresh (IDD5 - IDD3N) x VDD x tRFC/tREFI
    ///   = 207 mA x 1.2 V x 0.0449 = 11.1 mW; total 64.8 mW per GiB.
    /// - Activity: a read burst adds (IDD4R - IDD3N) x VDD = 110 mW while the x8 device moves
    ///   19.2 Gbit/s: 5.75 pJ/bit; a row activation costs (IDD0 tRC - IDD3N tRAS - IDD2N tRP) x
    ///   VDD = 0.43 nJ per device, 3.44 nJ per 8-device rank for a 64-byte line, 6.7 pJ/bit on a
    ///   row miss; with half the accesses missing, 5.75 + 3.36 = 9.1 pJ/bit = 72.9 pJ/byte.
    ///
    /// I/O termination on the bus and the registers of RDIMMs are not included: the estimate is a
    /// lower bound on those machines. Calibrate with [`RamModel::fit`] where a RAPL dram domain
    /// exists.
    pub const DDR4: RamParams = RamParams {
        background_w_per_gib: 0.0648,
        activity_j_per_byte: 72.9e-12,
    };

    /// DDR5, derived (no datasheet figures here): the DDR4 currents at DDR5's VDD of 1.1 V
    /// instead of 1.2 V, i.e. DDR4 x 1.1/1.2. Marked derived; calibrate where possible.
    pub const DDR5: RamParams = RamParams {
        background_w_per_gib: 0.0648 * (1.1 / 1.2),
        activity_j_per_byte: 72.9e-12 * (1.1 / 1.2),
    };

    /// The parameters of a generation.
    pub const fn of(generation: DramGeneration) -> RamParams {
        match generation {
            DramGeneration::Ddr4 => Self::DDR4,
            DramGeneration::Ddr5 => Self::DDR5,
        }
    }
}

/// What the RAM parameters rest on, for the outputs that name an estimate's source.
pub const RAM_MODEL_SOURCE: &str = "Micron MT40A1G8 (8 Gb x8 DDR4-2400) datasheet currents: \
     standby and refresh per GiB, read-burst and activation energy per byte";

/// Bytes in one GiB.
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Assumed sweeps of the resident set per second at full CPU utilisation, used only when no
/// memory-traffic counter is readable (see [`RamActivity::ResidentSet`]). A heuristic, not a
/// measurement: one full pass over the working set per second of busy CPU.
pub const RESIDENT_SWEEPS_PER_BUSY_SECOND: f64 = 1.0;

/// What is known about memory activity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum RamActivity {
    /// Bytes per second moved to and from DRAM, from hardware counters (e.g. uncore IMC CAS
    /// counts x 64 bytes).
    Traffic {
        /// Bytes per second.
        bytes_per_s: f64,
    },
    /// No traffic counter: a proxy from the measured processes' resident memory and their CPU
    /// utilisation (in CPUs, may exceed 1), assuming [`RESIDENT_SWEEPS_PER_BUSY_SECOND`].
    ResidentSet {
        /// Resident set size of the measured process tree, in bytes.
        resident_bytes: f64,
        /// CPU time per wall time of that tree (1.0 = one CPU busy).
        busy_cpus: f64,
    },
}

impl RamActivity {
    /// Estimated traffic in bytes per second.
    pub fn bytes_per_s(self) -> f64 {
        let v = match self {
            RamActivity::Traffic { bytes_per_s } => bytes_per_s,
            RamActivity::ResidentSet {
                resident_bytes,
                busy_cpus,
            } => resident_bytes * busy_cpus * RESIDENT_SWEEPS_PER_BUSY_SECOND,
        };
        if v.is_finite() && v > 0.0 {
            v
        } else {
            0.0
        }
    }
}

/// DRAM power: background from the installed memory plus activity from the memory traffic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RamModel {
    /// Installed memory in bytes.
    pub installed_bytes: u64,
    /// Model parameters.
    pub params: RamParams,
}

/// Why a calibration could not be fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FitError {
    /// Fewer than two samples, or all at the same traffic (the slope is undefined).
    Underdetermined,
    /// The fit gave a negative background or activity cost, which is not physical.
    Unphysical,
}

impl RamModel {
    /// A model of `installed_bytes` of `generation` memory with its datasheet parameters.
    pub fn new(installed_bytes: u64, generation: DramGeneration) -> Self {
        Self {
            installed_bytes,
            params: RamParams::of(generation),
        }
    }

    /// Background power in watts (independent of activity).
    pub fn background_w(&self) -> f64 {
        self.installed_bytes as f64 / GIB * self.params.background_w_per_gib
    }

    /// Power at a machine CPU utilisation in `[0, 1]` (clamped; NaN: idle), the proxy where no
    /// memory-traffic counter is readable: at full utilisation the installed memory is swept
    /// [`RESIDENT_SWEEPS_PER_BUSY_SECOND`] times a second, proportionally less below. The
    /// background is the datasheet's; the activity is that heuristic, not a measurement.
    pub fn power_at_utilisation(&self, utilisation: f64) -> PowerEstimate {
        let u = unit_interval(utilisation);
        self.power(RamActivity::Traffic {
            bytes_per_s: self.installed_bytes as f64 * u * RESIDENT_SWEEPS_PER_BUSY_SECOND,
        })
    }

    /// Power for the given activity.
    pub fn power(&self, activity: RamActivity) -> PowerEstimate {
        PowerEstimate::new(
            self.background_w() + activity.bytes_per_s() * self.params.activity_j_per_byte,
        )
    }

    /// Calibrates the parameters by least squares on `(traffic bytes/s, measured watts)` pairs,
    /// e.g. from a RAPL dram domain: `watts = background + j_per_byte x traffic`.
    pub fn fit(installed_bytes: u64, samples: &[(f64, f64)]) -> Result<RamModel, FitError> {
        let n = samples.len() as f64;
        if samples.len() < 2 || installed_bytes == 0 {
            return Err(FitError::Underdetermined);
        }
        let (mut sx, mut sy) = (0.0, 0.0);
        for &(x, y) in samples {
            sx += x;
            sy += y;
        }
        let (mx, my) = (sx / n, sy / n);
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for &(x, y) in samples {
            sxx += (x - mx) * (x - mx);
            sxy += (x - mx) * (y - my);
        }
        if sxx <= 0.0 || !sxx.is_finite() {
            return Err(FitError::Underdetermined);
        }
        let slope = sxy / sxx;
        let intercept = my - slope * mx;
        if slope < 0.0 || intercept < 0.0 {
            return Err(FitError::Unphysical);
        }
        Ok(RamModel {
            installed_bytes,
            params: RamParams {
                background_w_per_gib: intercept / (installed_bytes as f64 / GIB),
                activity_j_per_byte: slope,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_spans_idle_to_tdp() {
        let m = CpuModel::from_tdp(100.0);
        assert_eq!(m.power(0.0).watts, 21.0);
        assert_eq!(m.power(1.0).watts, 100.0);
        assert_eq!(m.power(7.0).watts, 100.0);
        assert_eq!(m.power(f64::NAN).watts, 21.0);
        // Concave: half load is above the linear midpoint.
        assert!(m.power(0.5).watts > 60.5);
        assert_eq!(m.power(0.5).provenance, Provenance::Estimated);
        let lin = CpuModel {
            curve: UtilisationCurve::Linear,
            ..m
        };
        assert_eq!(lin.power(0.5).watts, 60.5);
    }

    #[test]
    fn ram_model_background_and_activity() {
        let m = RamModel::new(16 * 1024 * 1024 * 1024, DramGeneration::Ddr4);
        assert!((m.background_w() - 16.0 * 0.0648).abs() < 1e-12);
        let busy = m.power(RamActivity::Traffic { bytes_per_s: 10e9 });
        assert!((busy.watts - (1.0368 + 0.729)).abs() < 1e-9);
        assert_eq!(busy.provenance, Provenance::Estimated);
        assert_eq!(
            m.power(RamActivity::Traffic {
                bytes_per_s: f64::NAN
            })
            .watts,
            m.background_w()
        );
        let proxy = RamActivity::ResidentSet {
            resident_bytes: 2e9,
            busy_cpus: 1.5,
        };
        assert_eq!(proxy.bytes_per_s(), 3e9);
        assert!(RamModel::new(1 << 30, DramGeneration::Ddr5).background_w() < 0.0648);
    }

    #[test]
    fn ram_power_at_utilisation() {
        let m = RamModel::new(64 << 30, DramGeneration::Ddr4);
        assert_eq!(m.power_at_utilisation(0.0).watts, m.background_w());
        assert_eq!(m.power_at_utilisation(f64::NAN).watts, m.background_w());
        let full = m.power_at_utilisation(1.0).watts;
        assert!((full - (64.0 * 0.0648 + 64.0 * 1073741824.0 * 72.9e-12)).abs() < 1e-9);
        assert_eq!(m.power_at_utilisation(2.0).watts, full);
    }

    #[test]
    fn fit_recovers_parameters() {
        let gib = 1u64 << 30;
        let truth = RamModel {
            installed_bytes: 64 * gib,
            params: RamParams {
                background_w_per_gib: 0.1,
                activity_j_per_byte: 1e-10,
            },
        };
        let mut samples = [(0.0, 0.0); 5];
        for (i, s) in samples.iter_mut().enumerate() {
            let x = i as f64 * 5e9;
            *s = (
                x,
                truth.power(RamActivity::Traffic { bytes_per_s: x }).watts,
            );
        }
        let fitted = RamModel::fit(64 * gib, &samples).unwrap();
        assert!((fitted.params.background_w_per_gib - 0.1).abs() < 1e-9);
        assert!((fitted.params.activity_j_per_byte - 1e-10).abs() < 1e-18);
        assert_eq!(
            RamModel::fit(gib, &[(1.0, 1.0)]),
            Err(FitError::Underdetermined)
        );
        assert_eq!(
            RamModel::fit(gib, &[(1.0, 2.0), (2.0, 1.0)]),
            Err(FitError::Unphysical)
        );
    }
}
