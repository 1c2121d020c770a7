//! Energy, performance and fairness metrics ([`ea2p_core::metrics`]): the same formula as the
//! profiler's reports and the simulator's results. Functions whose value may be undefined
//! return `EA2P_STATUS_UNDEFINED` instead of a NaN or an infinity.

use ea2p_core::metrics;

use crate::{guard, input_slice, need, put, Ea2pStatus};

/// Default carbon intensity of electricity, in g CO2-eq per kWh: the IEA's 2019 world average
/// (`ea2p_core::metrics::DEFAULT_CARBON_INTENSITY_G_PER_KWH`). Pass your grid's own figure.
pub const EA2P_DEFAULT_CARBON_INTENSITY_G_PER_KWH: f64 = 475.0;

/// Energy-delay product `E x T`, in joule-seconds.
#[no_mangle]
pub extern "C" fn ea2p_edp(energy_j: f64, duration_s: f64) -> f64 {
    metrics::edp(energy_j, duration_s)
}

/// Energy-delay-squared product `E x T^2`, in joule-square-seconds.
#[no_mangle]
pub extern "C" fn ea2p_ed2p(energy_j: f64, duration_s: f64) -> f64 {
    metrics::ed2p(energy_j, duration_s)
}

/// Grams of CO2-equivalent emitted for `energy_j` at a grid intensity in g/kWh.
#[no_mangle]
pub extern "C" fn ea2p_co2_grams(energy_j: f64, intensity_g_per_kwh: f64) -> f64 {
    metrics::co2_grams(energy_j, intensity_g_per_kwh)
}

/// Writes energy per unit of work `energy_j / units` to `out`; `EA2P_STATUS_UNDEFINED` when no
/// work was done (`units` not finite and positive).
///
/// # Safety
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_energy_per_unit(
    energy_j: f64,
    units: f64,
    out: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        let v = metrics::energy_per_unit(energy_j, units).ok_or(Ea2pStatus::Undefined);
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, v?) }
    })
}

/// Writes the average power `energy_j / duration_s` in watts to `out`; `EA2P_STATUS_UNDEFINED`
/// for a duration that is not positive.
///
/// # Safety
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_average_power_w(
    energy_j: f64,
    duration_s: f64,
    out: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        let v = metrics::average_power_w(energy_j, duration_s).ok_or(Ea2pStatus::Undefined);
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, v?) }
    })
}

/// Writes Jain's fairness index `(sum x)^2 / (n sum x^2)` of `len` non-negative values to `out`
/// (1: all equal, 1/n: one takes everything); `EA2P_STATUS_UNDEFINED` for no value or all zero.
///
/// # Safety
/// `values` is null or points to `len` initialised doubles (may be null when `len` is 0); `out`
/// is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_jain_index(
    values: *const f64,
    len: usize,
    out: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        need(out)?;
        // SAFETY: forwarded from this function's contract.
        let values = unsafe { input_slice(values, len) }?;
        let v = metrics::jain_index(values).ok_or(Ea2pStatus::Undefined)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, v) }
    })
}

/// Writes Themis' finish-time fairness `shared_s / isolated_s` to `out` (1 is fair, above 1 the
/// job was slowed by sharing); `EA2P_STATUS_UNDEFINED` when `isolated_s` is not positive.
///
/// # Safety
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_finish_time_fairness(
    shared_s: f64,
    isolated_s: f64,
    out: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        let v = metrics::finish_time_fairness(shared_s, isolated_s).ok_or(Ea2pStatus::Undefined);
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, v?) }
    })
}

/// Writes the share of jobs with a deadline that missed it, in [0, 1], to `out`;
/// `EA2P_STATUS_UNDEFINED` when no job had a deadline.
///
/// # Safety
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_deadline_miss_rate(
    missed: u64,
    with_deadline: u64,
    out: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        let v = metrics::deadline_miss_rate(missed, with_deadline).ok_or(Ea2pStatus::Undefined);
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, v?) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr::{null, null_mut};

    #[test]
    fn same_values_as_the_core() {
        assert_eq!(
            EA2P_DEFAULT_CARBON_INTENSITY_G_PER_KWH,
            metrics::DEFAULT_CARBON_INTENSITY_G_PER_KWH
        );
        assert_eq!(ea2p_edp(641_000.0, 3852.0), metrics::edp(641_000.0, 3852.0));
        assert_eq!(ea2p_ed2p(2.0, 3.0), 18.0);
        assert_eq!(
            ea2p_co2_grams(3_600_000.0, 475.0),
            metrics::co2_grams(3_600_000.0, 475.0)
        );
        let mut v = 0.0;
        // SAFETY: valid pointers.
        unsafe {
            assert_eq!(
                ea2p_jain_index([1.0, 2.0].as_ptr(), 2, &mut v),
                Ea2pStatus::Ok
            );
            assert_eq!(v, metrics::jain_index(&[1.0, 2.0]).unwrap());
            assert_eq!(
                ea2p_finish_time_fairness(300.0, 100.0, &mut v),
                Ea2pStatus::Ok
            );
            assert_eq!(v, 3.0);
            assert_eq!(ea2p_deadline_miss_rate(1, 4, &mut v), Ea2pStatus::Ok);
            assert_eq!(v, 0.25);
            assert_eq!(ea2p_energy_per_unit(10.0, 4.0, &mut v), Ea2pStatus::Ok);
            assert_eq!(v, 2.5);
            assert_eq!(ea2p_average_power_w(10.0, 5.0, &mut v), Ea2pStatus::Ok);
            assert_eq!(v, 2.0);
        }
    }

    #[test]
    fn undefined_and_null_are_errors_and_leave_out_alone() {
        let mut v = -7.0;
        // SAFETY: valid pointers, and null ones where the contract allows.
        unsafe {
            assert_eq!(ea2p_jain_index(null(), 0, &mut v), Ea2pStatus::Undefined);
            assert_eq!(
                ea2p_jain_index([0.0, 0.0].as_ptr(), 2, &mut v),
                Ea2pStatus::Undefined
            );
            assert_eq!(ea2p_jain_index(null(), 2, &mut v), Ea2pStatus::NullPointer);
            assert_eq!(
                ea2p_jain_index([1.0].as_ptr(), 1, null_mut()),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_finish_time_fairness(1.0, 0.0, &mut v),
                Ea2pStatus::Undefined
            );
            assert_eq!(ea2p_deadline_miss_rate(0, 0, &mut v), Ea2pStatus::Undefined);
            assert_eq!(
                ea2p_energy_per_unit(1.0, 0.0, &mut v),
                Ea2pStatus::Undefined
            );
            assert_eq!(
                ea2p_average_power_w(1.0, 0.0, &mut v),
                Ea2pStatus::Undefined
            );
            assert_eq!(
                ea2p_average_power_w(1.0, 1.0, null_mut()),
                Ea2pStatus::NullPointer
            );
        }
        assert_eq!(v, -7.0);
    }
}
