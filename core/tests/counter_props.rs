//! Property tests of the wrapping energy counter against a simulated true energy.

use ea2p_core::counter::{CounterEvent, CounterSpec, EnergyCounter};
use proptest::prelude::*;

const MS: u64 = 1_000_000;

/// A counter spec with modulus `max + 1` ticks of 1 uJ and a power bound in watts.
fn spec(max: u64, watts: f64) -> CounterSpec {
    CounterSpec::new(1e-6)
        .with_max_ticks(max)
        .with_max_power_w(watts)
}

proptest! {
    /// With at most one wrap between reads and energy within the power bound, the total equals
    /// the true energy exactly, whatever the read schedule.
    #[test]
    fn exact_with_at_most_one_wrap(
        max in 1_000u64..(1u64 << 40),
        start_frac in 0.0f64..1.0,
        watts in 1.0f64..500.0,
        steps in prop::collection::vec((1u64..2_000, 0.0f64..=1.0), 1..200),
    ) {
        let spec = spec(max, watts);
        let modulus = max as u128 + 1;
        let mut c = EnergyCounter::new(spec);
        let mut raw = ((modulus as f64 * start_frac) as u128 % modulus) as u64;
        let mut t = 0u64;
        c.update(t, raw);
        let mut truth: u128 = 0;
        for (dt_ms, frac) in steps {
            let dt = dt_ms * MS;
            let bound = spec.max_plausible_ticks(dt).unwrap().min(modulus - 1);
            let delta = (bound as f64 * frac) as u128;
            t += dt;
            raw = ((raw as u128 + delta) % modulus) as u64;
            truth += delta;
            let u = c.update(t, raw);
            prop_assert!(matches!(u.event, CounterEvent::Advanced | CounterEvent::Wrapped), "{u:?}");
        }
        prop_assert_eq!(c.total_ticks(), truth);
        prop_assert_eq!(c.stats().rejected + c.stats().resets, 0);
    }

    /// When a whole modulus of energy fits between two reads (several wraps possible), the
    /// reading is flagged ambiguous.
    #[test]
    fn several_wraps_are_flagged(
        max in 100u64..100_000,
        extra_wraps in 1u64..5,
        rest in 0u64..100,
    ) {
        let modulus = max + 1;
        let delta = extra_wraps * modulus + rest % modulus;
        // A power bound that makes `delta` plausible over one second.
        let watts = (delta as f64 + 1.0) * 1e-6;
        let mut c = EnergyCounter::new(spec(max, watts));
        c.update(0, 0);
        let u = c.update(1_000 * MS, delta % modulus);
        prop_assert!(u.ambiguous, "{u:?}");
        prop_assert_eq!(c.stats().ambiguous, 1);
    }

    /// A driver reload (counter back to a small value, not a plausible wrap) is flagged as a reset
    /// and adds nothing; counting resumes from the new value.
    #[test]
    fn resets_are_flagged(
        max in 1_000_000u64..(1u64 << 32),
        before_frac in 0.2f64..0.8,
        after in 0u64..1_000,
        then in 0u64..1_000,
    ) {
        // 1 W for 10 ms = 10_000 uJ at most: a wrap from mid-range is far above that.
        let mut c = EnergyCounter::new(spec(max, 1.0));
        let before = (max as f64 * before_frac) as u64;
        c.update(0, before);
        let u = c.update(10 * MS, after);
        prop_assert_eq!(u.event, CounterEvent::Reset);
        prop_assert_eq!(c.total_ticks(), 0);
        c.update(20 * MS, after + then);
        prop_assert_eq!(c.total_ticks(), then as u128);
        prop_assert_eq!(c.stats().resets, 1);
    }

    /// Without a known wrap point, a backwards step is always a reset, never a huge delta.
    #[test]
    fn unknown_max_never_adds_backwards_steps(
        reads in prop::collection::vec(0u64..u64::MAX, 2..50),
    ) {
        let mut c = EnergyCounter::new(CounterSpec::new(1e-3));
        let mut expected: u128 = 0;
        for (i, &r) in reads.iter().enumerate() {
            if i > 0 && r >= reads[i - 1] {
                expected += (r - reads[i - 1]) as u128;
            }
            c.update(i as u64 * MS + 1, r);
        }
        prop_assert_eq!(c.total_ticks(), expected);
    }
}
