//! Drives the counter and the energy track with arbitrary reading sequences and checks their
//! invariants, not just the absence of panics.
#![no_main]

use arbitrary::Arbitrary;
use ea2p_core::counter::{CounterEvent, CounterSpec, EnergyCounter};
use ea2p_core::integrate::{window_energy, EnergyPoint, EnergyTrack, SeriesKind};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    max_ticks: Option<u64>,
    max_power_w: Option<u16>,
    update_period_ns: u32,
    reads: Vec<(u32, u64)>,
    powers: Vec<(u32, f64)>,
    windows: Vec<(u32, u32)>,
}

fuzz_target!(|input: Input| {
    // --- counter ---
    let mut spec = CounterSpec::new(1e-6).with_update_period_ns(input.update_period_ns as u64);
    if let Some(m) = input.max_ticks {
        spec = spec.with_max_ticks(m);
    }
    if let Some(w) = input.max_power_w {
        spec = spec.with_max_power_w(w as f64);
    }
    let mut counter = EnergyCounter::new(spec);
    let mut t = 0u64;
    let mut prev_total = 0u128;
    for (i, &(dt, raw)) in input.reads.iter().enumerate() {
        let before = counter.last_reading();
        let since = counter.baseline_since();
        t = t.saturating_add(dt as u64);
        let u = counter.update(t, raw);
        let total = counter.total_ticks();
        assert!(total >= prev_total, "total went down");
        assert_eq!(
            total - prev_total,
            u.added_ticks as u128,
            "added != total delta"
        );
        match u.event {
            CounterEvent::Baseline => assert!(before.is_none() && i < input.reads.len()),
            CounterEvent::Reset
            | CounterEvent::Rejected
            | CounterEvent::OutOfOrder
            | CounterEvent::OutOfRange => {
                assert_eq!(u.added_ticks, 0)
            }
            CounterEvent::Advanced | CounterEvent::Wrapped => {
                assert!(before.is_some(), "a baseline exists");
                // Judged over the time since the baseline value was first read.
                if let Some(bound) = spec.max_plausible_ticks(t - since) {
                    assert!(u.added_ticks as u128 <= bound, "implausible delta added");
                }
                if let Some(m) = spec.modulus() {
                    assert!((u.added_ticks as u128) < m, "delta beyond one modulus");
                }
            }
        }
        prev_total = total;
    }
    let s = counter.stats();
    let n = input.reads.len() as u64;
    let baseline = u64::from(counter.last_reading().is_some());
    assert_eq!(
        s.accepted + s.resets + s.rejected + s.out_of_order + s.out_of_range + baseline,
        n
    );

    // --- power track and windows ---
    let mut track = EnergyTrack::new(SeriesKind::PowerSamples, 5_000);
    let mut points: Vec<EnergyPoint> = Vec::new();
    let mut t = 0u64;
    for &(dt, w) in &input.powers {
        t = t.saturating_add(dt as u64);
        let before = track.clone();
        match track.push_power(t, w) {
            Ok(p) => {
                assert!(p.energy_j.is_finite() && p.energy_j >= 0.0);
                if let Some(last) = points.last() {
                    assert!(p.energy_j >= last.energy_j);
                }
                points.push(p);
            }
            Err(_) => assert_eq!(track, before, "a refused push changed the track"),
        }
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let whole = window_energy(&points, SeriesKind::PowerSamples, first.t, last.t, 0).unwrap();
        let total = track.total_j();
        assert!((whole.energy_j - total).abs() <= total * 1e-9 + 1e-9);
        for &(a, b) in &input.windows {
            let (a, b) = (first.t + a as u64, first.t + b as u64);
            if let Ok(w) =
                window_energy(&points, SeriesKind::PowerSamples, a.min(b), a.max(b), 1_000)
            {
                assert!(w.energy_j >= 0.0 && w.energy_j <= total * (1.0 + 1e-9) + 1e-9);
                assert!(w.error_bound_j >= 0.0);
            }
        }
    }
});
