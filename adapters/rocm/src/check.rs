//! Cross-checks an AMD energy counter against the board's power reading.
//!
//! amdsmi's and ROCm SMI's energy accumulator has known anomalies on some boards and firmware
//! (jumps of many kilojoules in one read, a counter that stalls, a resolution off by an order of
//! magnitude). Each counter delta is compared with `power x elapsed time`; when the two are more
//! than [`DISAGREEMENT_FACTOR`] apart the reading is rejected. The comparison allows for the
//! counter's update period (a read may see one period more or less than the time elapsed) and
//! ignores differences below [`POWER_FLOOR_W`] x time, where idle noise and the power reading's
//! averaging dominate.

use ea2p_core::units::{secs, Nanos};

/// How far apart counter energy and power x time may be before a reading is rejected.
pub const DISAGREEMENT_FACTOR: f64 = 10.0;

/// Absolute tolerance, as a power: differences below this many watts x time are never judged.
pub const POWER_FLOOR_W: f64 = 10.0;

/// A counter delta that disagrees with power x time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Disagreement {
    /// Counter ticks added since the previous reading.
    pub counter_ticks: u64,
    /// The same in joules.
    pub counter_j: f64,
    /// Power x elapsed time, in joules.
    pub expected_j: f64,
    /// Time since the previous reading.
    pub elapsed_ns: Nanos,
}

/// Why a reading was not judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unchecked {
    /// Its time is not after the previous reading's.
    NotAfterPrevious,
    /// The counter went backwards (driver reload): left to core's reset handling.
    Backwards,
    /// No usable power reading to compare with.
    NoPower,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// The first reading: nothing to compare.
    Baseline,
    /// Counter and power x time agree within the factor.
    Consistent,
    /// Not judged.
    Unchecked(Unchecked),
    /// More than the factor apart: reject.
    Disagrees(Disagreement),
}

/// Compares successive counter readings with power x elapsed time.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterPowerCheck {
    factor: f64,
    floor_w: f64,
    update_period_ns: Nanos,
    last: Option<(Nanos, u64)>,
    rejected: u64,
}

impl CounterPowerCheck {
    /// A checker for a counter that updates every `update_period_ns`, with the default factor
    /// and floor.
    pub const fn new(update_period_ns: Nanos) -> Self {
        Self {
            factor: DISAGREEMENT_FACTOR,
            floor_w: POWER_FLOOR_W,
            update_period_ns,
            last: None,
            rejected: 0,
        }
    }

    /// Changes the factor (must be at least 1).
    pub fn with_factor(mut self, factor: f64) -> Self {
        self.factor = factor.max(1.0);
        self
    }

    /// Changes the absolute floor, in watts.
    pub fn with_floor_w(mut self, floor_w: f64) -> Self {
        self.floor_w = floor_w.max(0.0);
        self
    }

    /// Readings rejected so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Judges the counter value `ticks` read at `now`, given the board power `power_w` at about
    /// the same time. Every reading after the first becomes the next comparison's base, rejected
    /// or not, so that one anomaly is rejected once.
    pub fn check(
        &mut self,
        now: Nanos,
        ticks: u64,
        joules_per_tick: f64,
        power_w: Option<f64>,
    ) -> Verdict {
        let Some((t_prev, prev)) = self.last else {
            self.last = Some((now, ticks));
            return Verdict::Baseline;
        };
        if now <= t_prev {
            return Verdict::Unchecked(Unchecked::NotAfterPrevious);
        }
        self.last = Some((now, ticks));
        if ticks < prev {
            return Verdict::Unchecked(Unchecked::Backwards);
        }
        let Some(power_w) = power_w.filter(|p| p.is_finite() && *p >= 0.0) else {
            return Verdict::Unchecked(Unchecked::NoPower);
        };
        let elapsed_ns = now - t_prev;
        let dt = secs(elapsed_ns);
        let period = secs(self.update_period_ns);
        let counter_ticks = ticks - prev;
        let counter_j = counter_ticks as f64 * joules_per_tick;
        let expected_j = power_w * dt;
        let floor_j = self.floor_w * (dt + period);
        let most = self.factor * power_w * (dt + period) + floor_j;
        let least = power_w * (dt - period).max(0.0);
        if counter_j > most || counter_j * self.factor + floor_j < least {
            self.rejected += 1;
            Verdict::Disagrees(Disagreement {
                counter_ticks,
                counter_j,
                expected_j,
                elapsed_ns,
            })
        } else {
            Verdict::Consistent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;
    const JPT: f64 = 15.3e-6;

    fn ticks(joules: f64) -> u64 {
        (joules / JPT).round() as u64
    }

    #[test]
    fn agreeing_readings_pass() {
        let mut c = CounterPowerCheck::new(MS);
        assert_eq!(c.check(0, 1_000, JPT, Some(300.0)), Verdict::Baseline);
        // 300 W for 100 ms = 30 J.
        let v = c.check(100 * MS, 1_000 + ticks(30.0), JPT, Some(300.0));
        assert_eq!(v, Verdict::Consistent);
        // Within a factor 10 either way still passes (averaged power lags load changes).
        let v = c.check(
            200 * MS,
            1_000 + ticks(30.0) + ticks(250.0),
            JPT,
            Some(300.0),
        );
        assert_eq!(v, Verdict::Consistent);
        let v = c.check(300 * MS, 1_000 + ticks(283.5), JPT, Some(300.0));
        assert_eq!(v, Verdict::Consistent);
        assert_eq!(c.rejected(), 0);
    }

    #[test]
    fn a_jump_is_rejected_once() {
        let mut c = CounterPowerCheck::new(MS);
        c.check(0, 0, JPT, Some(300.0));
        // 30 kJ in 100 ms at 300 W: the known amdsmi jump.
        let v = c.check(100 * MS, ticks(30_000.0), JPT, Some(300.0));
        let Verdict::Disagrees(d) = v else {
            panic!("{v:?}")
        };
        assert!((d.counter_j - 30_000.0).abs() < 0.01);
        assert!((d.expected_j - 30.0).abs() < 1e-9);
        assert_eq!(d.elapsed_ns, 100 * MS);
        // The next reading is judged from the rejected one, not from before the jump.
        let v = c.check(200 * MS, ticks(30_000.0) + ticks(30.0), JPT, Some(300.0));
        assert_eq!(v, Verdict::Consistent);
        assert_eq!(c.rejected(), 1);
    }

    #[test]
    fn a_stalled_counter_is_rejected() {
        let mut c = CounterPowerCheck::new(MS);
        c.check(0, 500, JPT, Some(400.0));
        // One second at 400 W and the counter did not move.
        let v = c.check(1_000 * MS, 500, JPT, Some(400.0));
        assert!(matches!(v, Verdict::Disagrees(_)), "{v:?}");
    }

    #[test]
    fn a_resolution_off_by_more_than_ten_is_rejected() {
        let mut c = CounterPowerCheck::new(MS);
        c.check(0, 0, JPT, Some(200.0));
        // The device counts 15.3 uJ ticks but the library claims 1 mJ: 65x too much energy.
        let real_ticks = ticks(200.0);
        let v = c.check(1_000 * MS, real_ticks, 1e-3, Some(200.0));
        assert!(matches!(v, Verdict::Disagrees(_)), "{v:?}");
    }

    #[test]
    fn update_granularity_is_not_an_anomaly() {
        // A counter updated every 10 ms read every 1 ms: some reads see nothing, one sees 10 ms.
        let mut c = CounterPowerCheck::new(10 * MS);
        c.check(0, 0, JPT, Some(300.0));
        assert_eq!(c.check(MS, 0, JPT, Some(300.0)), Verdict::Consistent);
        let v = c.check(2 * MS, ticks(3.0), JPT, Some(300.0));
        assert_eq!(v, Verdict::Consistent);
    }

    #[test]
    fn idle_noise_below_the_floor_is_not_judged() {
        let mut c = CounterPowerCheck::new(MS);
        c.check(0, 0, JPT, Some(0.5));
        // 3 W of counter against a 0.5 W reading: far apart in ratio, tiny in absolute terms.
        let v = c.check(1_000 * MS, ticks(3.0), JPT, Some(0.5));
        assert_eq!(v, Verdict::Consistent);
    }

    #[test]
    fn unjudged_cases() {
        let mut c = CounterPowerCheck::new(MS);
        c.check(10, 100, JPT, Some(1.0));
        assert_eq!(
            c.check(10, 200, JPT, Some(1.0)),
            Verdict::Unchecked(Unchecked::NotAfterPrevious)
        );
        assert_eq!(
            c.check(20, 50, JPT, Some(1.0)),
            Verdict::Unchecked(Unchecked::Backwards)
        );
        assert_eq!(
            c.check(30, 60, JPT, None),
            Verdict::Unchecked(Unchecked::NoPower)
        );
        assert_eq!(
            c.check(40, 70, JPT, Some(f64::NAN)),
            Verdict::Unchecked(Unchecked::NoPower)
        );
    }

    #[test]
    fn factor_and_floor_are_adjustable() {
        let mut strict = CounterPowerCheck::new(0).with_factor(2.0).with_floor_w(0.0);
        strict.check(0, 0, JPT, Some(100.0));
        let v = strict.check(1_000 * MS, ticks(300.0), JPT, Some(100.0));
        assert!(matches!(v, Verdict::Disagrees(_)));
        let mut loose = CounterPowerCheck::new(0).with_factor(0.1);
        loose.check(0, 0, JPT, Some(100.0));
        // A factor below 1 is raised to 1: equal values agree.
        assert_eq!(
            loose.check(1_000 * MS, ticks(100.0), JPT, Some(100.0)),
            Verdict::Consistent
        );
    }
}
