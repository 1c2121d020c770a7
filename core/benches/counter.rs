//! Per-sample cost of the hot path of the sampler: one counter update, one counter update
//! followed by the energy-track push that derives power from it (the sampler's path before the
//! measuring session), and one reading through the session and the fold (the path since).

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

fn session_and_fold(c: &mut Criterion) {
    use ea2p_core::fold::Fold;
    use ea2p_core::session::Session;
    use ea2p_core::source::{truncated, Component, Provenance, Quantity, RawReading, SourceInfo};
    let info = SourceInfo {
        component: Component::CpuPackage,
        index: 0,
        provenance: Provenance::Measured,
        quantity: Quantity::EnergyCounter {
            joules_per_tick: 1e-6,
            max_ticks: Some((1u64 << 38) - 1),
        },
        update_period_ns: 1_000_000,
        max_power_w: Some(250.0),
        name: truncated("package-0"),
    };
    // The sampler's capacities (ea2p-sampler: 48 sources, 64 regions).
    c.bench_function("session_and_fold_reading", |b| {
        let mut session: Box<Session<48, 64>> = Box::new(Session::new());
        let mut fold: Box<Fold<48, 64>> = Box::default();
        session.add_source(0, info.clone()).unwrap();
        while let Some(r) = session.poll_record() {
            fold.handle(&r).unwrap();
        }
        let (mut t, mut raw) = (0u64, 0u64);
        b.iter(|| {
            t += 1_000_000;
            raw = (raw + 50_000) & ((1 << 38) - 1);
            session
                .handle_reading(0, black_box(t), RawReading::Counter(black_box(raw)))
                .unwrap();
            while let Some(r) = session.poll_record() {
                black_box(fold.handle(&r)).unwrap();
            }
        })
    });
}

criterion_group!(benches, counter_update, session_and_fold);
criterion_main!(benches);
