//! Properties of the C API, through its public functions: sequences of readings give exactly
//! the core's results, and state bytes overwritten by C code give a status, never a panic.

use std::mem::MaybeUninit;
use std::ptr::null_mut;

use ea2p_capi::*;
use ea2p_core::counter::{CounterSpec, EnergyCounter};
use ea2p_core::integrate::{EnergyTrack, SeriesKind};
use proptest::prelude::*;

fn counter(spec: &Ea2pCounterSpec) -> Ea2pCounter {
    let mut c = MaybeUninit::uninit();
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { ea2p_counter_init(c.as_mut_ptr(), spec) },
        Ea2pStatus::Ok
    );
    // SAFETY: initialised on success.
    unsafe { c.assume_init() }
}

fn track(kind: Ea2pSeriesKind, gap_ns: u64) -> Ea2pTrack {
    let mut t = MaybeUninit::uninit();
    // SAFETY: valid pointer.
    assert_eq!(
        unsafe { ea2p_track_init(t.as_mut_ptr(), kind as u32, gap_ns) },
        Ea2pStatus::Ok
    );
    // SAFETY: initialised on success.
    unsafe { t.assume_init() }
}

fn spec_strategy() -> impl Strategy<Value = Ea2pCounterSpec> {
    (
        prop_oneof![Just(1e-6), Just(1e-3), Just(15.3e-6)],
        prop::option::of(1u64..=u64::MAX),
        prop::option::of(0.0f64..1000.0),
        0u64..10_000_000,
    )
        .prop_map(|(jpt, max, power, period)| Ea2pCounterSpec {
            joules_per_tick: jpt,
            max_ticks: max.unwrap_or(0),
            has_max_ticks: max.is_some(),
            max_power_w: power.unwrap_or(0.0),
            has_max_power: power.is_some(),
            update_period_ns: period,
        })
}

proptest! {
    #[test]
    fn counter_sequences_match_the_core(
        spec in spec_strategy(),
        reads in prop::collection::vec((0u64..2_000_000_000, any::<u64>()), 0..40),
    ) {
        let mut c = counter(&spec);
        let mut core_spec = CounterSpec::new(spec.joules_per_tick)
            .with_update_period_ns(spec.update_period_ns);
        if spec.has_max_ticks {
            core_spec = core_spec.with_max_ticks(spec.max_ticks);
        }
        if spec.has_max_power {
            core_spec = core_spec.with_max_power_w(spec.max_power_w);
        }
        let mut core = EnergyCounter::new(core_spec);
        let mut t = 0u64;
        for (dt, raw) in reads {
            // Small values often, so that advances and wraps happen, not only out-of-range.
            let raw = if spec.has_max_ticks { raw % spec.max_ticks.saturating_add(1).max(1) } else { raw % 1_000_000 };
            t = t.saturating_add(dt);
            let mut u = MaybeUninit::uninit();
            // SAFETY: valid pointers.
            prop_assert_eq!(unsafe { ea2p_counter_update(&mut c, t, raw, u.as_mut_ptr()) }, Ea2pStatus::Ok);
            let want = core.update(t, raw);
            // SAFETY: written on success.
            let u = unsafe { u.assume_init() };
            prop_assert_eq!((u.added_ticks, u.discarded_ticks, u.ambiguous),
                (want.added_ticks, want.discarded_ticks, want.ambiguous));
        }
        let (mut j, mut ticks) = (0.0, 0u64);
        // SAFETY: valid pointers.
        unsafe {
            prop_assert_eq!(ea2p_counter_total_j(&c, &mut j), Ea2pStatus::Ok);
            prop_assert_eq!(ea2p_counter_total_ticks(&c, &mut ticks), Ea2pStatus::Ok);
        }
        prop_assert_eq!(j.to_bits(), core.total_j().to_bits());
        prop_assert_eq!(u128::from(ticks), core.total_ticks().min(u128::from(u64::MAX)));
    }

    #[test]
    fn power_tracks_match_the_core(
        samples in prop::collection::vec((1u64..10_000_000_000, 0.0f64..2000.0), 1..40),
        gap_ns in 0u64..5_000_000_000,
    ) {
        let mut t = track(Ea2pSeriesKind::PowerSamples, gap_ns);
        let mut core = EnergyTrack::new(SeriesKind::PowerSamples, gap_ns);
        let mut now = 0u64;
        for (dt, w) in samples {
            now += dt;
            let mut p = MaybeUninit::uninit();
            // SAFETY: valid pointers.
            let s = unsafe { ea2p_track_push_power(&mut t, now, w, p.as_mut_ptr()) };
            prop_assert_eq!(s, Ea2pStatus::Ok);
            let want = core.push_power(now, w).unwrap();
            // SAFETY: written on success.
            let p = unsafe { p.assume_init() };
            prop_assert_eq!((p.t_ns, p.energy_j.to_bits(), p.power_w.to_bits(), p.after_gap),
                (want.t, want.energy_j.to_bits(), want.power_w.to_bits(), want.after_gap));
        }
        let mut sum = MaybeUninit::uninit();
        // SAFETY: valid pointers.
        prop_assert_eq!(unsafe { ea2p_track_summary(&t, sum.as_mut_ptr()) }, Ea2pStatus::Ok);
        // SAFETY: written on success.
        let sum = unsafe { sum.assume_init() };
        prop_assert_eq!(sum.total_j.to_bits(), core.total_j().to_bits());
        prop_assert_eq!(sum.peak_w.to_bits(), core.peak_w().to_bits());
        prop_assert_eq!(sum.has_average_w, core.average_w().is_some());
    }

    /// C code that scribbles over a counter or a track gets a status back (the state decodes to
    /// some other valid state, or does not decode), never a panic or undefined behaviour.
    #[test]
    fn overwritten_state_is_a_status_not_a_panic(
        bytes in prop::collection::vec(any::<u8>(), EA2P_COUNTER_STATE_LEN),
        len in 0u32..256,
        now in any::<u64>(),
        raw in any::<u64>(),
    ) {
        let mut c = counter(&Ea2pCounterSpec {
            joules_per_tick: 1e-6,
            max_ticks: 0,
            has_max_ticks: false,
            max_power_w: 0.0,
            has_max_power: false,
            update_period_ns: 0,
        });
        c.state.copy_from_slice(&bytes);
        c.state_len = len;
        let mut j = 0.0;
        // SAFETY: valid pointers.
        let statuses = unsafe {
            [
                ea2p_counter_update(&mut c, now, raw, null_mut()),
                ea2p_counter_total_j(&c, &mut j),
            ]
        };
        for s in statuses {
            prop_assert!(matches!(s, Ea2pStatus::Ok | Ea2pStatus::CorruptState), "{:?}", s);
        }

        let mut t = track(Ea2pSeriesKind::PowerSamples, 0);
        t.state.copy_from_slice(&bytes[..EA2P_TRACK_STATE_LEN]);
        t.state_len = len;
        let mut sum = MaybeUninit::uninit();
        // SAFETY: valid pointers.
        let statuses = unsafe {
            [
                ea2p_track_push_power(&mut t, now, 10.0, null_mut()),
                ea2p_track_push_energy(&mut t, now, 10.0, null_mut()),
                ea2p_track_summary(&t, sum.as_mut_ptr()),
            ]
        };
        for s in statuses {
            prop_assert!(
                !matches!(s, Ea2pStatus::Panicked | Ea2pStatus::NullPointer | Ea2pStatus::NotInitialized),
                "{:?}", s
            );
        }
    }

    /// Flipping a few bytes of a valid state mostly decodes to another valid state: the core
    /// then runs on arbitrary values (time going backwards, totals near the top of the range).
    #[test]
    fn flipped_state_bytes_are_a_status_not_a_panic(
        flips in prop::collection::vec((0usize..64, any::<u8>()), 1..4),
        now in any::<u64>(),
        raw in any::<u64>(),
    ) {
        let mut c = counter(&Ea2pCounterSpec {
            joules_per_tick: 1e-6,
            max_ticks: 1 << 32,
            has_max_ticks: true,
            max_power_w: 300.0,
            has_max_power: true,
            update_period_ns: 1_000_000,
        });
        let mut t = track(Ea2pSeriesKind::Counter, 1_000);
        // SAFETY: valid pointers.
        unsafe {
            for (i, r) in [5u64, 10_000, 30_000].into_iter().enumerate() {
                let when = (i as u64 + 1) * 1_000_000;
                ea2p_counter_update(&mut c, when, r, null_mut());
                ea2p_track_push_energy(&mut t, when, r as f64, null_mut());
            }
        }
        for (at, value) in &flips {
            c.state[*at % c.state_len as usize] ^= value | 1;
            t.state[*at % t.state_len as usize] ^= value | 1;
        }
        let (mut j, mut sum) = (0.0, MaybeUninit::uninit());
        // SAFETY: valid pointers.
        let statuses = unsafe {
            [
                ea2p_counter_update(&mut c, now, raw, null_mut()),
                ea2p_counter_total_j(&c, &mut j),
                ea2p_track_push_energy(&mut t, now, raw as f64, null_mut()),
                ea2p_track_summary(&t, sum.as_mut_ptr()),
                ea2p_track_average_w(&t, &mut j),
            ]
        };
        for s in statuses {
            prop_assert!(s != Ea2pStatus::Panicked, "{:?}", statuses);
        }
    }
}
