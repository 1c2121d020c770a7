//! Numbers printed with a fixed count of decimals, without core's float formatting.
//!
//! core's `{:.6}` on an `f64` links Grisu and Dragon (shortest, exact and exponential): about
//! 12 KiB of flash on the Cortex-M4F, more than a third of the firmware's 32 KiB budget. Scaling to
//! an integer and printing that costs a few hundred bytes.
use core::fmt;

/// `Fixed(x, d)` displays `x` rounded half away from zero to `d` decimals (at most 9); NaN as
/// `nan`, and infinities or values too large for 64-bit fixed point as `out-of-range`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fixed(pub f64, pub u32);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Fixed(x, decimals) = *self;
        let decimals = decimals.min(9);
        let scale = 10u64.pow(decimals);
        let scaled = x.abs() * scale as f64 + 0.5;
        if x.is_nan() {
            return f.write_str("nan");
        }
        // NaN is out above; u64::MAX as f64 rounds up to 2^64, so below it the cast cannot saturate.
        if scaled >= u64::MAX as f64 {
            return f.write_str("out-of-range");
        }
        let n = scaled as u64;
        let sign = if x < 0.0 && n != 0 { "-" } else { "" };
        if decimals == 0 {
            return write!(f, "{sign}{n}");
        }
        write!(
            f,
            "{sign}{}.{:0width$}",
            n / scale,
            n % scale,
            width = decimals as usize
        )
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::Fixed;
    use std::format;

    #[test]
    fn rounds_half_away_from_zero_and_pads() {
        assert_eq!(format!("{}", Fixed(63.2494904, 6)), "63.249490");
        assert_eq!(format!("{}", Fixed(0.0005, 3)), "0.001");
        assert_eq!(format!("{}", Fixed(-8.05, 1)), "-8.1");
        assert_eq!(format!("{}", Fixed(-0.04, 1)), "0.0", "no negative zero");
        assert_eq!(format!("{}", Fixed(1000.0, 0)), "1000");
        assert_eq!(
            format!("{}", Fixed(2.5, 12)),
            "2.500000000",
            "at most 9 decimals"
        );
    }

    #[test]
    fn nan_and_huge_values_are_named() {
        assert_eq!(format!("{}", Fixed(f64::NAN, 3)), "nan");
        assert_eq!(format!("{}", Fixed(f64::INFINITY, 3)), "out-of-range");
        assert_eq!(format!("{}", Fixed(-1e19, 3)), "out-of-range");
        assert_eq!(format!("{}", Fixed(1e13, 6)), "10000000000000.000000");
    }
}
