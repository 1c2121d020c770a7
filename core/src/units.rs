//! Units of time, energy and power, and the one place where they are converted.
//!
//! Time is integer nanoseconds (`u64`: 584 years of range). Hardware energy counters stay in their
//! own integer ticks (RAPL micro-joules, NVML milli-joules, ROCm counts of 15.3 µJ) until the very
//! end, so that sums are exact; derived energy is `f64` joules.

/// Nanoseconds since an arbitrary origin chosen by the caller (a monotonic clock, or the start of a
/// simulation).
pub type Nanos = u64;

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Nanoseconds in one millisecond.
pub const NANOS_PER_MS: u64 = 1_000_000;
/// Joules in one watt-hour.
pub const JOULES_PER_WH: f64 = 3_600.0;
/// Joules in one kilowatt-hour.
pub const JOULES_PER_KWH: f64 = 3_600_000.0;

/// Converts integer nanoseconds to seconds.
#[inline]
pub fn secs(ns: Nanos) -> f64 {
    ns as f64 / NANOS_PER_SEC as f64
}

/// Converts seconds to integer nanoseconds, rounding to the nearest nanosecond and saturating at
/// the ends of the range (negative and NaN become zero).
#[inline]
pub fn nanos_from_secs(s: f64) -> Nanos {
    if s.is_nan() || s <= 0.0 {
        0
    } else if s >= u64::MAX as f64 / NANOS_PER_SEC as f64 {
        u64::MAX
    } else {
        libm::round(s * NANOS_PER_SEC as f64) as u64
    }
}

/// Converts joules to watt-hours.
#[inline]
pub fn wh(joules: f64) -> f64 {
    joules / JOULES_PER_WH
}

/// Converts joules to kilowatt-hours.
#[inline]
pub fn kwh(joules: f64) -> f64 {
    joules / JOULES_PER_KWH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        assert_eq!(nanos_from_secs(1.5), 1_500_000_000);
        assert_eq!(secs(2_500_000_000), 2.5);
        assert_eq!(nanos_from_secs(-1.0), 0);
        assert_eq!(nanos_from_secs(f64::NAN), 0);
        assert_eq!(nanos_from_secs(1e300), u64::MAX);
        assert_eq!(kwh(3_600_000.0), 1.0);
        assert_eq!(wh(7_200.0), 2.0);
    }
}
