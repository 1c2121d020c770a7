//! The CPU and RAM power models ([`ea2p_core::estimate`]) for hardware without an energy sensor.
//! Every power they give is an estimate, never a measurement: label it so in reports.

use ea2p_core::estimate::{
    CpuModel, DramGeneration, FitError, RamActivity, RamModel, RamParams, UtilisationCurve,
};

use crate::{guard, input, input_slice, need, put, Ea2pStatus};

/// Idle power as a fraction of TDP when nothing better is known (Cloud Carbon Footprint's
/// 0.74 W / 3.5 W per vCPU; `ea2p_core::estimate::DEFAULT_IDLE_FRACTION_OF_TDP`).
pub const EA2P_DEFAULT_IDLE_FRACTION_OF_TDP: f64 = 0.21;

/// Exponent r of Fan, Weber and Barroso's curve `2u - u^r` (ISCA 2007;
/// `ea2p_core::estimate::FAN_BARROSO_EXPONENT`).
pub const EA2P_FAN_BARROSO_EXPONENT: f64 = 1.4;

/// The shape of CPU power between idle and full load (pass the value as `uint32_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ea2pCpuCurve {
    /// `f(u) = u`.
    Linear = 0,
    /// `f(u) = 2u - u^r` with `r` = `Ea2pCpuModel.fan_barroso_r`: concave, as measured on
    /// servers.
    FanBarroso = 1,
}

/// CPU power for machines without RAPL: `idle + (TDP - idle) x f(utilisation)`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pCpuModel {
    /// Thermal design power of the package(s) the measured share runs on, in watts.
    pub tdp_w: f64,
    /// Power at zero utilisation, in watts.
    pub idle_w: f64,
    /// An `Ea2pCpuCurve` value.
    pub curve: u32,
    /// The exponent r of the Fan-Barroso curve (ignored for a linear curve).
    pub fan_barroso_r: f64,
}

impl Ea2pCpuModel {
    fn to_core(self) -> Result<CpuModel, Ea2pStatus> {
        let curve = match self.curve {
            c if c == Ea2pCpuCurve::Linear as u32 => UtilisationCurve::Linear,
            c if c == Ea2pCpuCurve::FanBarroso as u32 => UtilisationCurve::FanBarroso {
                r: self.fan_barroso_r,
            },
            _ => return Err(Ea2pStatus::InvalidArgument),
        };
        Ok(CpuModel {
            tdp_w: self.tdp_w,
            idle_w: self.idle_w,
            curve,
        })
    }

    fn from_core(m: CpuModel) -> Self {
        let (curve, r) = match m.curve {
            UtilisationCurve::Linear => (Ea2pCpuCurve::Linear, 0.0),
            UtilisationCurve::FanBarroso { r } => (Ea2pCpuCurve::FanBarroso, r),
        };
        Self {
            tdp_w: m.tdp_w,
            idle_w: m.idle_w,
            curve: curve as u32,
            fan_barroso_r: r,
        }
    }
}

/// DRAM generations with datasheet-derived parameters (pass the value as `uint32_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ea2pDramGeneration {
    /// DDR4, from Micron's MT40A1G8 currents.
    Ddr4 = 0,
    /// DDR5, derived from DDR4 at 1.1 V.
    Ddr5 = 1,
}

/// DRAM power: background from the installed memory plus activity from the traffic.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pRamModel {
    /// Installed memory in bytes.
    pub installed_bytes: u64,
    /// Background power (standby + refresh) per GiB installed, in watts.
    pub background_w_per_gib: f64,
    /// Energy per byte moved to or from DRAM, in joules.
    pub activity_j_per_byte: f64,
}

impl Ea2pRamModel {
    fn to_core(self) -> RamModel {
        RamModel {
            installed_bytes: self.installed_bytes,
            params: RamParams {
                background_w_per_gib: self.background_w_per_gib,
                activity_j_per_byte: self.activity_j_per_byte,
            },
        }
    }

    fn from_core(m: RamModel) -> Self {
        Self {
            installed_bytes: m.installed_bytes,
            background_w_per_gib: m.params.background_w_per_gib,
            activity_j_per_byte: m.params.activity_j_per_byte,
        }
    }
}

/// Writes the default model of a CPU of `tdp_w` watts to `out`: idle at
/// `EA2P_DEFAULT_IDLE_FRACTION_OF_TDP`, Fan and Barroso's curve. `EA2P_STATUS_INVALID_ARGUMENT`
/// for a TDP that is not finite and non-negative.
///
/// # Safety
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_cpu_model_from_tdp(tdp_w: f64, out: *mut Ea2pCpuModel) -> Ea2pStatus {
    guard(|| {
        need(out)?;
        if !(tdp_w.is_finite() && tdp_w >= 0.0) {
            return Err(Ea2pStatus::InvalidArgument);
        }
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, Ea2pCpuModel::from_core(CpuModel::from_tdp(tdp_w))) }
    })
}

/// Writes the estimated CPU power in watts at `utilisation` (clamped to [0, 1]; NaN counts as
/// idle) to `out_w`. `EA2P_STATUS_INVALID_ARGUMENT` for an unknown curve.
///
/// # Safety
/// `model` is null or points to an initialised `Ea2pCpuModel`; `out_w` is null or valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_cpu_power_w(
    model: *const Ea2pCpuModel,
    utilisation: f64,
    out_w: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        need(out_w)?;
        // SAFETY: forwarded from this function's contract.
        let m = unsafe { input(model) }?.to_core()?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_w, m.power(utilisation).watts) }
    })
}

/// Writes the datasheet model of `installed_bytes` of `generation` (an `Ea2pDramGeneration`
/// value) memory to `out`.
///
/// # Safety
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_ram_model_new(
    installed_bytes: u64,
    generation: u32,
    out: *mut Ea2pRamModel,
) -> Ea2pStatus {
    guard(|| {
        need(out)?;
        let generation = match generation {
            g if g == Ea2pDramGeneration::Ddr4 as u32 => DramGeneration::Ddr4,
            g if g == Ea2pDramGeneration::Ddr5 as u32 => DramGeneration::Ddr5,
            _ => return Err(Ea2pStatus::InvalidArgument),
        };
        let m = RamModel::new(installed_bytes, generation);
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, Ea2pRamModel::from_core(m)) }
    })
}

/// Writes the estimated DRAM power in watts for a measured traffic of `bytes_per_s` (from
/// memory-controller counters) to `out_w`.
///
/// # Safety
/// `model` is null or points to an initialised `Ea2pRamModel`; `out_w` is null or valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_ram_power_traffic_w(
    model: *const Ea2pRamModel,
    bytes_per_s: f64,
    out_w: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        need(out_w)?;
        // SAFETY: forwarded from this function's contract.
        let m = unsafe { input(model) }?.to_core();
        let w = m.power(RamActivity::Traffic { bytes_per_s }).watts;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_w, w) }
    })
}

/// Writes the estimated DRAM power in watts to `out_w` when no traffic counter is readable: the
/// traffic is guessed from the resident set and the busy CPUs (one sweep of the resident set
/// per busy CPU-second, a heuristic).
///
/// # Safety
/// `model` is null or points to an initialised `Ea2pRamModel`; `out_w` is null or valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_ram_power_resident_w(
    model: *const Ea2pRamModel,
    resident_bytes: f64,
    busy_cpus: f64,
    out_w: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        need(out_w)?;
        // SAFETY: forwarded from this function's contract.
        let m = unsafe { input(model) }?.to_core();
        let activity = RamActivity::ResidentSet {
            resident_bytes,
            busy_cpus,
        };
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_w, m.power(activity).watts) }
    })
}

/// Calibrates a RAM model by least squares on `n` pairs (`traffic_bytes_per_s[i]`,
/// `measured_w[i]`), e.g. from a RAPL dram domain, and writes it to `out`.
/// `EA2P_STATUS_UNDERDETERMINED` (fewer than two distinct traffics, or no memory installed) or
/// `EA2P_STATUS_UNPHYSICAL` (a negative fitted cost).
///
/// # Safety
/// `traffic_bytes_per_s` and `measured_w` are null or point to `n` initialised doubles each (may
/// be null when `n` is 0); `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_ram_model_fit(
    installed_bytes: u64,
    traffic_bytes_per_s: *const f64,
    measured_w: *const f64,
    n: usize,
    out: *mut Ea2pRamModel,
) -> Ea2pStatus {
    guard(|| {
        need(out)?;
        // SAFETY: forwarded from this function's contract.
        let xs = unsafe { input_slice(traffic_bytes_per_s, n) }?;
        // SAFETY: forwarded from this function's contract.
        let ys = unsafe { input_slice(measured_w, n) }?;
        let samples: Vec<(f64, f64)> = xs.iter().copied().zip(ys.iter().copied()).collect();
        let m = RamModel::fit(installed_bytes, &samples).map_err(|e| match e {
            FitError::Underdetermined => Ea2pStatus::Underdetermined,
            FitError::Unphysical => Ea2pStatus::Unphysical,
        })?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, Ea2pRamModel::from_core(m)) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::MaybeUninit;
    use core::ptr::{null, null_mut};
    use ea2p_core::estimate;

    #[test]
    fn constants_match_the_core() {
        assert_eq!(
            EA2P_DEFAULT_IDLE_FRACTION_OF_TDP,
            estimate::DEFAULT_IDLE_FRACTION_OF_TDP
        );
        assert_eq!(EA2P_FAN_BARROSO_EXPONENT, estimate::FAN_BARROSO_EXPONENT);
    }

    #[test]
    fn cpu_model_matches_the_core() {
        let mut m = MaybeUninit::uninit();
        // SAFETY: valid pointer.
        assert_eq!(
            unsafe { ea2p_cpu_model_from_tdp(125.0, m.as_mut_ptr()) },
            Ea2pStatus::Ok
        );
        // SAFETY: written on success.
        let mut m = unsafe { m.assume_init() };
        let core = CpuModel::from_tdp(125.0);
        for u in [0.0, 0.25, 0.5, 1.0, 3.0, f64::NAN] {
            let mut w = 0.0;
            // SAFETY: valid pointers.
            assert_eq!(unsafe { ea2p_cpu_power_w(&m, u, &mut w) }, Ea2pStatus::Ok);
            assert_eq!(w, core.power(u).watts);
        }
        m.curve = Ea2pCpuCurve::Linear as u32;
        let mut w = 0.0;
        // SAFETY: valid pointers.
        assert_eq!(unsafe { ea2p_cpu_power_w(&m, 0.5, &mut w) }, Ea2pStatus::Ok);
        assert_eq!(w, 26.25 + (125.0 - 26.25) * 0.5);
        m.curve = 9;
        // SAFETY: valid pointers, and null ones where the contract allows.
        unsafe {
            assert_eq!(
                ea2p_cpu_power_w(&m, 0.5, &mut w),
                Ea2pStatus::InvalidArgument
            );
            assert_eq!(
                ea2p_cpu_power_w(null(), 0.5, &mut w),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_cpu_model_from_tdp(f64::NAN, &mut m),
                Ea2pStatus::InvalidArgument
            );
        }
    }

    #[test]
    fn ram_model_and_fit_match_the_core() {
        let gib = 1u64 << 30;
        let mut m = MaybeUninit::uninit();
        // SAFETY: valid pointer.
        assert_eq!(
            unsafe {
                ea2p_ram_model_new(16 * gib, Ea2pDramGeneration::Ddr5 as u32, m.as_mut_ptr())
            },
            Ea2pStatus::Ok
        );
        // SAFETY: written on success.
        let m = unsafe { m.assume_init() };
        let core = RamModel::new(16 * gib, DramGeneration::Ddr5);
        let (mut a, mut b) = (0.0, 0.0);
        // SAFETY: valid pointers.
        unsafe {
            assert_eq!(ea2p_ram_power_traffic_w(&m, 1e10, &mut a), Ea2pStatus::Ok);
            assert_eq!(
                ea2p_ram_power_resident_w(&m, 2e9, 1.5, &mut b),
                Ea2pStatus::Ok
            );
        }
        assert_eq!(
            a,
            core.power(RamActivity::Traffic { bytes_per_s: 1e10 }).watts
        );
        assert_eq!(
            b,
            core.power(RamActivity::ResidentSet {
                resident_bytes: 2e9,
                busy_cpus: 1.5
            })
            .watts
        );

        let xs = [0.0, 5e9, 1e10, 2e10];
        let ys = [6.4, 6.9, 7.4, 8.4];
        let mut fitted = MaybeUninit::uninit();
        // SAFETY: valid pointers.
        let s = unsafe {
            ea2p_ram_model_fit(64 * gib, xs.as_ptr(), ys.as_ptr(), 4, fitted.as_mut_ptr())
        };
        assert_eq!(s, Ea2pStatus::Ok);
        let pairs: Vec<_> = xs.iter().copied().zip(ys).collect();
        let want = RamModel::fit(64 * gib, &pairs).unwrap();
        // SAFETY: written on success.
        assert_eq!(
            unsafe { fitted.assume_init() },
            Ea2pRamModel::from_core(want)
        );
        // SAFETY: valid pointers, and null ones where the contract allows.
        unsafe {
            assert_eq!(
                ea2p_ram_model_fit(gib, null(), null(), 0, fitted.as_mut_ptr()),
                Ea2pStatus::Underdetermined
            );
            assert_eq!(
                ea2p_ram_model_fit(
                    gib,
                    [1.0, 2.0].as_ptr(),
                    [2.0, 1.0].as_ptr(),
                    2,
                    fitted.as_mut_ptr()
                ),
                Ea2pStatus::Unphysical
            );
            assert_eq!(
                ea2p_ram_model_fit(gib, xs.as_ptr(), null(), 4, fitted.as_mut_ptr()),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_ram_model_new(gib, 2, fitted.as_mut_ptr()),
                Ea2pStatus::InvalidArgument
            );
            assert_eq!(
                ea2p_ram_model_new(gib, 0, null_mut()),
                Ea2pStatus::NullPointer
            );
        }
    }
}
