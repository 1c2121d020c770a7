//! Wrapping hardware energy counters turned into a monotonic total.
//!
//! RAPL's `energy_uj` wraps at `max_energy_range_uj`, NVML's millijoule counter and ROCm SMI's
//! tick counter are 64-bit, and any of them may be reset when a driver reloads. An
//! [`EnergyCounter`] follows one such counter through successive reads and keeps an exact total in
//! the counter's own integer ticks:
//!
//! - the wrap modulus is exact: a counter whose largest value is `max` goes `max -> 0`, so one wrap
//!   adds `max + 1 - last + now` ticks;
//! - the plausibility bound runs over the time since the baseline value was first read: a reading
//!   that repeats the previous value is no evidence that the counter updated, so a counter that
//!   stalls for 100 ms and then jumps is judged over those 100 ms, and the jump is energy spent
//!   during the stall ([`CounterUpdate::interval_ns`] says over how long to spread it);
//! - a delta larger than the component can physically produce over that whole interval (above
//!   its maximum power x interval) is rejected and counted, never added;
//! - a backwards step is a wrap only when it goes from near the top to near zero: the wrapped
//!   delta must be plausible for the interval or, without a power bound, below a quarter of the
//!   modulus. Anything else is a reset (driver reload): flagged, not added, and the counter
//!   re-bases on the new value;
//! - when the wrap point is unknown, a backwards step is always treated as a reset, never as a
//!   huge positive delta;
//! - when so much time passed that the counter may have wrapped more than once, the reading is
//!   flagged as ambiguous (the smallest consistent delta is added).
//!
//! ```
//! use ea2p_core::counter::{CounterSpec, EnergyCounter, CounterEvent};
//! // A RAPL package counter: micro-joules, wraps after 262143328850 uJ, TDP 125 W.
//! let spec = CounterSpec::new(1e-6).with_max_ticks(262_143_328_850).with_max_power_w(125.0);
//! let mut c = EnergyCounter::new(spec);
//! c.update(0, 262_143_328_000);
//! let u = c.update(1_000_000_000, 50_000_000); // 1 s later, the counter wrapped
//! assert_eq!(u.event, CounterEvent::Wrapped);
//! assert_eq!(c.total_ticks(), 850 + 1 + 50_000_000);
//! ```

use serde::{Deserialize, Serialize};

use crate::units::{secs, Nanos};

/// What is known about a counter: its tick size, its wrap point and the power bound of the
/// component it measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CounterSpec {
    /// Joules per counter tick (1e-6 for RAPL `energy_uj`, 1e-3 for NVML, ~15.3e-6 for ROCm).
    pub joules_per_tick: f64,
    /// Largest value before the counter wraps to zero, when known.
    pub max_ticks: Option<u64>,
    /// The component's maximum power in watts, when known: the bound for impossible deltas.
    pub max_power_w: Option<f64>,
    /// The counter's update period: a read may include up to this much energy accumulated before
    /// the previous read became visible, so the power bound is applied over `elapsed + period`.
    pub update_period_ns: Nanos,
}

impl CounterSpec {
    /// A counter of `joules_per_tick` with unknown wrap point and no power bound.
    pub const fn new(joules_per_tick: f64) -> Self {
        Self {
            joules_per_tick,
            max_ticks: None,
            max_power_w: None,
            update_period_ns: 0,
        }
    }

    /// Sets the largest counter value before it wraps (RAPL `max_energy_range_uj`).
    pub const fn with_max_ticks(mut self, max_ticks: u64) -> Self {
        self.max_ticks = Some(max_ticks);
        self
    }

    /// Sets the component's maximum power, enabling the impossible-delta check.
    pub const fn with_max_power_w(mut self, watts: f64) -> Self {
        self.max_power_w = Some(watts);
        self
    }

    /// Sets the counter's update period.
    pub const fn with_update_period_ns(mut self, period: Nanos) -> Self {
        self.update_period_ns = period;
        self
    }

    /// The wrap modulus `max + 1` in ticks (up to 2^64, hence `u128`).
    pub fn modulus(&self) -> Option<u128> {
        self.max_ticks.map(|m| m as u128 + 1)
    }

    /// The largest number of ticks the component can produce in `elapsed`, or `None` without a
    /// power bound.
    pub fn max_plausible_ticks(&self, elapsed: Nanos) -> Option<u128> {
        let watts = self.max_power_w?;
        let joules = watts * secs(elapsed.saturating_add(self.update_period_ns));
        let ticks = joules / self.joules_per_tick;
        if ticks.is_nan() || ticks < 0.0 {
            Some(0)
        } else if ticks >= u128::MAX as f64 {
            Some(u128::MAX)
        } else {
            Some(libm::ceil(ticks) as u128)
        }
    }
}

/// What one reading did to the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CounterEvent {
    /// The first reading: it sets the baseline and adds nothing.
    Baseline,
    /// The counter moved forward (or stayed) by a plausible amount, which was added.
    Advanced,
    /// The counter wrapped once; the wrapped delta was added.
    Wrapped,
    /// The counter went backwards in a way that is not a wrap (not from near the top to near
    /// zero: a driver reload), or the wrap point is unknown: nothing added, the baseline moved to
    /// the new value.
    Reset,
    /// The delta is above the component's maximum power x the interval since the baseline value
    /// was first read: not added, counted, and the baseline moved to the new value.
    Rejected,
    /// The reading's timestamp is not after the previous one: ignored entirely.
    OutOfOrder,
    /// The raw value is above the counter's declared largest value, so either the reading or the
    /// declared wrap point is wrong: ignored entirely.
    OutOfRange,
}

/// The outcome of [`EnergyCounter::update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterUpdate {
    /// What happened.
    pub event: CounterEvent,
    /// Ticks added to the total by this reading.
    pub added_ticks: u64,
    /// Ticks seen but not added (rejected delta); 0 otherwise.
    pub discarded_ticks: u64,
    /// The interval the added ticks were spent over: from the reading where the previous value
    /// was first seen to this one (longer than the read interval after a stall); 0 when nothing
    /// was added.
    pub interval_ns: Nanos,
    /// True when enough time passed for the counter to wrap more than once, so the added delta
    /// (the smallest one consistent with the reading) may be short by whole wraps.
    pub ambiguous: bool,
}

/// Counts of everything unusual seen by a counter, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterStats {
    /// Readings accepted (advanced or wrapped), baseline excluded.
    pub accepted: u64,
    /// Single wraps handled.
    pub wraps: u64,
    /// Resets detected.
    pub resets: u64,
    /// Impossible deltas rejected.
    pub rejected: u64,
    /// Readings where more than one wrap was possible.
    pub ambiguous: u64,
    /// Readings ignored because their time was not after the previous reading.
    pub out_of_order: u64,
    /// Readings ignored because their value was above the declared largest value.
    pub out_of_range: u64,
    /// True when a backwards step was seen on a counter whose wrap point is unknown.
    pub backwards_without_max: bool,
}

/// A wrapping energy counter followed through successive reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyCounter {
    spec: CounterSpec,
    last: Option<(Nanos, u64)>,
    /// When the baseline value (`last.1`) was first read.
    since: Nanos,
    total_ticks: u128,
    stats: CounterStats,
}

impl EnergyCounter {
    /// A counter with no reading yet.
    pub const fn new(spec: CounterSpec) -> Self {
        Self {
            spec,
            last: None,
            since: 0,
            total_ticks: 0,
            stats: CounterStats {
                accepted: 0,
                wraps: 0,
                resets: 0,
                rejected: 0,
                ambiguous: 0,
                out_of_order: 0,
                out_of_range: 0,
                backwards_without_max: false,
            },
        }
    }

    /// The counter's description.
    pub fn spec(&self) -> &CounterSpec {
        &self.spec
    }

    /// Feeds the raw value `raw` read at time `now`.
    pub fn update(&mut self, now: Nanos, raw: u64) -> CounterUpdate {
        if matches!(self.spec.max_ticks, Some(max) if raw > max) {
            self.stats.out_of_range += 1;
            return outcome(CounterEvent::OutOfRange, 0, 0, 0, false);
        }
        let Some((t_prev, prev)) = self.last else {
            self.last = Some((now, raw));
            self.since = now;
            return outcome(CounterEvent::Baseline, 0, 0, 0, false);
        };
        if now <= t_prev {
            self.stats.out_of_order += 1;
            return outcome(CounterEvent::OutOfOrder, 0, 0, 0, false);
        }
        self.last = Some((now, raw));
        if raw == prev {
            // A repeated value: nothing to add, and no evidence the counter updated, so the
            // interval of the next delta still starts where this value was first read. After
            // long enough, whole wraps may hide behind the same value.
            let ambiguous = matches!(
                (self.spec.max_plausible_ticks(now - self.since), self.spec.modulus()),
                (Some(p), Some(m)) if p >= m
            );
            self.stats.accepted += 1;
            self.stats.ambiguous += u64::from(ambiguous);
            return outcome(CounterEvent::Advanced, 0, 0, 0, ambiguous);
        }
        let interval = now - self.since;
        self.since = now;
        let plausible = self.spec.max_plausible_ticks(interval);
        let modulus = self.spec.modulus();
        // More than one wrap is possible when the component could produce a whole modulus.
        let ambiguous = matches!((plausible, modulus), (Some(p), Some(m)) if p >= m);

        let (event, delta) = if raw > prev {
            (CounterEvent::Advanced, (raw - prev) as u128)
        } else if let Some(m) = modulus {
            let wrapped = m - prev as u128 + raw as u128;
            // A wrap goes from near the top to near zero; any other backwards step is a reset.
            let near_top = match plausible {
                Some(p) => wrapped <= p,
                None => wrapped <= m / 4,
            };
            if !near_top {
                self.stats.resets += 1;
                return outcome(CounterEvent::Reset, 0, 0, 0, false);
            }
            (CounterEvent::Wrapped, wrapped)
        } else {
            self.stats.resets += 1;
            self.stats.backwards_without_max = true;
            return outcome(CounterEvent::Reset, 0, 0, 0, false);
        };

        if let Some(p) = plausible {
            if delta > p {
                self.stats.rejected += 1;
                return outcome(CounterEvent::Rejected, 0, clamp_u64(delta), 0, false);
            }
        }
        if ambiguous {
            self.stats.ambiguous += 1;
        }
        if event == CounterEvent::Wrapped {
            self.stats.wraps += 1;
        }
        self.stats.accepted += 1;
        self.total_ticks += delta;
        outcome(event, clamp_u64(delta), 0, interval, ambiguous)
    }

    /// The accumulated total in ticks (exact).
    pub fn total_ticks(&self) -> u128 {
        self.total_ticks
    }

    /// The accumulated total in joules.
    pub fn total_j(&self) -> f64 {
        self.total_ticks as f64 * self.spec.joules_per_tick
    }

    /// The time and raw value of the last accepted-or-rebased reading.
    pub fn last_reading(&self) -> Option<(Nanos, u64)> {
        self.last
    }

    /// When the current baseline value was first read: the start of the interval the next delta
    /// is judged over and spread over.
    pub fn baseline_since(&self) -> Nanos {
        self.since
    }

    /// Everything unusual seen so far.
    pub fn stats(&self) -> &CounterStats {
        &self.stats
    }
}

fn outcome(
    event: CounterEvent,
    added: u64,
    discarded: u64,
    interval_ns: Nanos,
    ambiguous: bool,
) -> CounterUpdate {
    CounterUpdate {
        event,
        added_ticks: added,
        discarded_ticks: discarded,
        interval_ns,
        ambiguous,
    }
}

fn clamp_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    #[test]
    fn real_world_sequence_with_known_max() {
        // 10000, 10001, 12313, 8213, 0 on a counter that wraps after 16383 (modulus 16384),
        // read every 10 ms, component bound 1 W = 10000 uJ per 10 ms.
        let spec = CounterSpec::new(1e-6)
            .with_max_ticks(16_383)
            .with_max_power_w(1.0);
        let mut c = EnergyCounter::new(spec);
        let reads = [10_000u64, 10_001, 12_313, 8_213, 0];
        let events: [CounterEvent; 5] =
            core::array::from_fn(|i| c.update(i as u64 * 10 * MS, reads[i]).event);
        assert_eq!(
            events,
            [
                CounterEvent::Baseline,
                CounterEvent::Advanced,
                CounterEvent::Advanced,
                // 12313 -> 8213 wrapped: 16384 - 12313 + 8213 = 12284 uJ in 10 ms = 1.23 W > 1 W.
                CounterEvent::Reset,
                // 8213 -> 0: wrapped delta 16384 - 8213 = 8171 uJ in 10 ms = 0.82 W: plausible.
                CounterEvent::Wrapped,
            ]
        );
        assert_eq!(c.total_ticks(), 1 + 2312 + 8171);
        assert_eq!(c.stats().resets, 1);
        assert_eq!(c.stats().wraps, 1);
    }

    #[test]
    fn same_sequence_with_looser_bound_wraps_twice() {
        let spec = CounterSpec::new(1e-6)
            .with_max_ticks(16_383)
            .with_max_power_w(2.0);
        let mut c = EnergyCounter::new(spec);
        for (i, r) in [10_000u64, 10_001, 12_313, 8_213, 0]
            .into_iter()
            .enumerate()
        {
            c.update(i as u64 * 10 * MS, r);
        }
        assert_eq!(c.total_ticks(), 1 + 2312 + 12_284 + 8171);
        assert_eq!(c.stats().wraps, 2);
    }

    #[test]
    fn modulus_is_max_plus_one() {
        let spec = CounterSpec::new(1e-6).with_max_ticks(100);
        let mut c = EnergyCounter::new(spec);
        c.update(0, 100);
        let u = c.update(1, 0);
        assert_eq!(u.event, CounterEvent::Wrapped);
        assert_eq!(u.added_ticks, 1, "max -> 0 is one tick");
    }

    #[test]
    fn u64_counter_wraps_exactly() {
        let spec = CounterSpec::new(1e-3).with_max_ticks(u64::MAX);
        let mut c = EnergyCounter::new(spec);
        c.update(0, u64::MAX - 5);
        assert_eq!(c.update(MS, 4).added_ticks, 10);
    }

    #[test]
    fn unknown_max_backwards_is_reset_not_huge_delta() {
        let mut c = EnergyCounter::new(CounterSpec::new(1e-3));
        c.update(0, 1_000);
        let u = c.update(MS, 10);
        assert_eq!(u.event, CounterEvent::Reset);
        assert_eq!(c.total_ticks(), 0);
        assert!(c.stats().backwards_without_max);
        // Counting resumes from the new base.
        c.update(2 * MS, 25);
        assert_eq!(c.total_ticks(), 15);
    }

    #[test]
    fn impossible_delta_is_rejected_and_counted() {
        // 300 W GPU, 10 ms: at most 3 J = 3000 mJ.
        let spec = CounterSpec::new(1e-3).with_max_power_w(300.0);
        let mut c = EnergyCounter::new(spec);
        c.update(0, 0);
        let u = c.update(10 * MS, 3_001);
        assert_eq!(u.event, CounterEvent::Rejected);
        assert_eq!(u.discarded_ticks, 3_001);
        assert_eq!(c.total_ticks(), 0);
        assert_eq!(c.update(20 * MS, 5_000).added_ticks, 1_999);
        assert_eq!(c.stats().rejected, 1);
    }

    #[test]
    fn values_above_the_declared_max_are_ignored() {
        // Found by the counter_integration fuzz target: a value above max underflowed the wrap.
        let spec = CounterSpec::new(1e-6).with_max_ticks(1_000);
        let mut c = EnergyCounter::new(spec);
        assert_eq!(c.update(1, 5_000).event, CounterEvent::OutOfRange);
        assert_eq!(c.update(2, 990).event, CounterEvent::Baseline);
        assert_eq!(c.update(3, 2_000).event, CounterEvent::OutOfRange);
        assert_eq!(c.update(4, 5).added_ticks, 16);
        assert_eq!(c.stats().out_of_range, 2);
    }

    #[test]
    fn out_of_order_reads_are_ignored() {
        let mut c = EnergyCounter::new(CounterSpec::new(1e-6));
        c.update(10, 5);
        assert_eq!(c.update(10, 9).event, CounterEvent::OutOfOrder);
        assert_eq!(c.update(5, 9).event, CounterEvent::OutOfOrder);
        assert_eq!(c.update(11, 9).added_ticks, 4);
    }

    #[test]
    fn long_gap_is_flagged_ambiguous() {
        // Modulus 1000 uJ, 1 W: after 2 s the counter could have wrapped 2000 times.
        let spec = CounterSpec::new(1e-6)
            .with_max_ticks(999)
            .with_max_power_w(1.0);
        let mut c = EnergyCounter::new(spec);
        c.update(0, 0);
        let u = c.update(2_000 * MS, 10);
        assert!(u.ambiguous);
        assert_eq!(c.stats().ambiguous, 1);
    }

    #[test]
    fn a_stall_then_a_jump_is_energy_spread_over_the_stall() {
        // 100 W bound, 1 ms reads; the counter repeats its value for 100 ms, then catches up
        // with 50 W x 100 ms: plausible over 100 ms, far above the bound for 1 ms.
        let spec = CounterSpec::new(1e-6).with_max_power_w(100.0);
        let mut c = EnergyCounter::new(spec);
        c.update(0, 1_000);
        for i in 1..100 {
            assert_eq!(c.update(i * MS, 1_000).added_ticks, 0);
        }
        let u = c.update(100 * MS, 1_000 + 5_000_000);
        assert_eq!(u.event, CounterEvent::Advanced);
        assert_eq!(u.added_ticks, 5_000_000);
        assert_eq!(u.interval_ns, 100 * MS);
        assert_eq!(c.stats().rejected, 0);
        // The next delta's interval starts at the jump.
        assert_eq!(c.update(101 * MS, 5_051_000).interval_ns, MS);
    }

    #[test]
    fn backwards_without_power_bound_is_a_wrap_only_near_the_top() {
        let spec = CounterSpec::new(1e-6).with_max_ticks(999_999);
        let mut c = EnergyCounter::new(spec);
        c.update(0, 999_000);
        assert_eq!(c.update(MS, 500).event, CounterEvent::Wrapped);
        // From the middle back to near zero: a reset, nothing added.
        c.update(2 * MS, 600_000);
        let before = c.total_ticks();
        assert_eq!(c.update(3 * MS, 100).event, CounterEvent::Reset);
        assert_eq!(c.total_ticks(), before);
        assert_eq!(c.stats().resets, 1);
    }
}
