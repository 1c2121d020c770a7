//! Energy, performance and fairness metrics: one place for each formula, shared by the profiler's
//! reports, the simulator's results and the policies' scores.

/// Default carbon intensity of electricity, in grams of CO2-equivalent per kWh.
///
/// 475 g/kWh is the IEA's world-average emission factor of electricity generation
/// (IEA, *Global Energy & CO2 Status Report 2019*, "the global average CO2 intensity of power
/// generation ... 475 g CO2/kWh"), the default that the CodeCarbon and experiment-impact-tracker
/// tools also use where no regional figure is known. Users should pass their grid's own figure.
pub const DEFAULT_CARBON_INTENSITY_G_PER_KWH: f64 = 475.0;

/// Energy-delay product `E x T` in joule-seconds: rewards both saving energy and finishing early,
/// so that "slow but frugal" configurations do not win by default.
#[inline]
pub fn edp(energy_j: f64, duration_s: f64) -> f64 {
    energy_j * duration_s
}

/// Energy-delay-squared product `E x T^2` in joule-square-seconds: weights delay more than EDP,
/// for latency-sensitive comparisons.
#[inline]
pub fn ed2p(energy_j: f64, duration_s: f64) -> f64 {
    energy_j * duration_s * duration_s
}

/// Energy per unit of work (per sample, per token, per job): `E / units`, or `None` when no work
/// was done (a ratio over zero would be meaningless, not infinite).
#[inline]
pub fn energy_per_unit(energy_j: f64, units: f64) -> Option<f64> {
    if units > 0.0 && units.is_finite() {
        Some(energy_j / units)
    } else {
        None
    }
}

/// Grams of CO2-equivalent emitted for `energy_j` at a grid intensity in g/kWh.
#[inline]
pub fn co2_grams(energy_j: f64, intensity_g_per_kwh: f64) -> f64 {
    crate::units::kwh(energy_j) * intensity_g_per_kwh
}

/// Jain's fairness index `(sum x)^2 / (n * sum x^2)`: 1 when every value is equal, `1/n` when one
/// value takes everything. `None` for an empty slice or when every value is zero (undefined).
///
/// Values should be non-negative (throughputs, shares, normalised finish times).
pub fn jain_index(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    for &x in values {
        sum += x;
        sum_sq += x * x;
    }
    if sum_sq == 0.0 || !sum_sq.is_finite() {
        return None;
    }
    Some(sum * sum / (values.len() as f64 * sum_sq))
}

/// Themis' finish-time fairness `rho = T_shared / T_isolated`: how much longer a job (or a user's
/// jobs) took on the shared cluster than alone on its fair share. 1 is fair; above 1 the job was
/// slowed down. `None` when the isolated time is not positive.
#[inline]
pub fn finish_time_fairness(shared_s: f64, isolated_s: f64) -> Option<f64> {
    if isolated_s > 0.0 && isolated_s.is_finite() && shared_s.is_finite() {
        Some(shared_s / isolated_s)
    } else {
        None
    }
}

/// Share of jobs with a deadline that missed it, in `[0, 1]`; `None` when no job had a deadline.
#[inline]
pub fn deadline_miss_rate(missed: u64, with_deadline: u64) -> Option<f64> {
    if with_deadline == 0 {
        None
    } else {
        Some(missed.min(with_deadline) as f64 / with_deadline as f64)
    }
}

/// Average power in watts over a duration: `E / T`, or `None` for an empty duration.
#[inline]
pub fn average_power_w(energy_j: f64, duration_s: f64) -> Option<f64> {
    if duration_s > 0.0 {
        Some(energy_j / duration_s)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edp_family() {
        // ResNet-50 on V100 at 175 W (ml-energy/zeus artifact): 641 kJ in 3852 s -> 2.47e9 J s.
        let e = edp(641_000.0, 3852.0);
        assert!((e - 2.469e9).abs() < 1e6, "{e}");
        assert_eq!(ed2p(2.0, 3.0), 18.0);
        assert_eq!(energy_per_unit(10.0, 4.0), Some(2.5));
        assert_eq!(energy_per_unit(10.0, 0.0), None);
        assert_eq!(average_power_w(10.0, 0.0), None);
        assert_eq!(average_power_w(10.0, 5.0), Some(2.0));
    }

    #[test]
    fn co2_of_one_kwh_is_the_intensity() {
        assert!((co2_grams(3_600_000.0, DEFAULT_CARBON_INTENSITY_G_PER_KWH) - 475.0).abs() < 1e-9);
    }

    #[test]
    fn jain_bounds() {
        assert_eq!(jain_index(&[]), None);
        assert_eq!(jain_index(&[0.0, 0.0]), None);
        assert_eq!(jain_index(&[3.0, 3.0, 3.0]), Some(1.0));
        assert!((jain_index(&[1.0, 0.0, 0.0, 0.0]).unwrap() - 0.25).abs() < 1e-12);
        // Two users, one with twice the share of the other: (3)^2 / (2 * 5) = 0.9.
        assert!((jain_index(&[1.0, 2.0]).unwrap() - 0.9).abs() < 1e-12);
    }

    #[test]
    fn fairness_and_deadlines() {
        assert_eq!(finish_time_fairness(300.0, 100.0), Some(3.0));
        assert_eq!(finish_time_fairness(300.0, 0.0), None);
        assert_eq!(deadline_miss_rate(1, 4), Some(0.25));
        assert_eq!(deadline_miss_rate(0, 0), None);
        assert_eq!(deadline_miss_rate(9, 4), Some(1.0));
    }
}
