//! Per-sample cost of the hot path of the sampler: one counter update, and one counter update
//! followed by the energy-track push that derives power from it.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ea2p_core::counter::{CounterSpec, EnergyCounter};
use ea2p_core::integrate::{EnergyTrack, SeriesKind};

fn counter_update(c: &mut Criterion) {
    // A RAPL package domain: uJ ticks, wraps at 2^38 - 1, 250 W bound, read every 1 ms with
    // ~50 W draw, so the counter wraps every ~1.5 hours of samples.
    let spec = CounterSpec::new(1e-6)
        .with_max_ticks((1u64 << 38) - 1)
        .with_max_power_w(250.0)
        .with_update_period_ns(1_000_000);
    c.bench_function("counter_update", |b| {
        let mut counter = EnergyCounter::new(spec);
        let (mut t, mut raw) = (0u64, 0u64);
        b.iter(|| {
            t += 1_000_000;
            raw = (raw + 50_000) & ((1 << 38) - 1);
            black_box(counter.update(black_box(t), black_box(raw)))
        })
    });
    c.bench_function("counter_update_and_track", |b| {
        let mut counter = EnergyCounter::new(spec);
        let mut track = EnergyTrack::new(SeriesKind::Counter, 10_000_000);
        let (mut t, mut raw) = (0u64, 0u64);
        b.iter(|| {
            t += 1_000_000;
            raw = (raw + 50_000) & ((1 << 38) - 1);
            counter.update(black_box(t), black_box(raw));
            black_box(track.push_energy(t, counter.total_j()))
        })
    });
}

criterion_group!(benches, counter_update);
criterion_main!(benches);
