//! Cost of the C boundary on the sampler's hot path: a counter update and a track push through
//! the C API (state decoded and re-encoded on every call) against the same calls on the core's
//! types (`ea2p-core/benches/counter.rs` measures those alone).

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr::null_mut;

use criterion::{criterion_group, criterion_main, Criterion};
use ea2p_capi::*;
use ea2p_core::counter::{CounterSpec, EnergyCounter};

/// A RAPL package domain, as in the core's bench: uJ ticks, wraps at 2^38 - 1, 250 W bound,
/// read every 1 ms at ~50 W.
const MAX_TICKS: u64 = (1 << 38) - 1;

fn spec() -> Ea2pCounterSpec {
    Ea2pCounterSpec {
        joules_per_tick: 1e-6,
        max_ticks: MAX_TICKS,
        has_max_ticks: true,
        max_power_w: 250.0,
        has_max_power: true,
        update_period_ns: 1_000_000,
    }
}

fn counter_update(c: &mut Criterion) {
    c.bench_function("core_counter_update", |b| {
        let spec = CounterSpec::new(1e-6)
            .with_max_ticks(MAX_TICKS)
            .with_max_power_w(250.0)
            .with_update_period_ns(1_000_000);
        let mut counter = EnergyCounter::new(spec);
        let (mut t, mut raw) = (0u64, 0u64);
        b.iter(|| {
            t += 1_000_000;
            raw = (raw + 50_000) & MAX_TICKS;
            black_box(counter.update(black_box(t), black_box(raw)))
        })
    });
    c.bench_function("capi_counter_update", |b| {
        let mut counter = MaybeUninit::uninit();
        // SAFETY: valid pointers.
        assert_eq!(
            unsafe { ea2p_counter_init(counter.as_mut_ptr(), &spec()) },
            Ea2pStatus::Ok
        );
        // SAFETY: initialised on success.
        let mut counter = unsafe { counter.assume_init() };
        let mut out = MaybeUninit::uninit();
        let (mut t, mut raw) = (0u64, 0u64);
        b.iter(|| {
            t += 1_000_000;
            raw = (raw + 50_000) & MAX_TICKS;
            // SAFETY: valid pointers.
            black_box(unsafe {
                ea2p_counter_update(&mut counter, black_box(t), black_box(raw), out.as_mut_ptr())
            })
        })
    });
    c.bench_function("capi_counter_update_and_track", |b| {
        let mut counter = MaybeUninit::uninit();
        let mut track = MaybeUninit::uninit();
        // SAFETY: valid pointers.
        unsafe {
            assert_eq!(
                ea2p_counter_init(counter.as_mut_ptr(), &spec()),
                Ea2pStatus::Ok
            );
            assert_eq!(
                ea2p_track_init(
                    track.as_mut_ptr(),
                    Ea2pSeriesKind::Counter as u32,
                    10_000_000
                ),
                Ea2pStatus::Ok
            );
        }
        // SAFETY: initialised on success.
        let (mut counter, mut track) = unsafe { (counter.assume_init(), track.assume_init()) };
        let (mut t, mut raw, mut j) = (0u64, 0u64, 0.0);
        b.iter(|| {
            t += 1_000_000;
            raw = (raw + 50_000) & MAX_TICKS;
            // SAFETY: valid pointers.
            unsafe {
                ea2p_counter_update(&mut counter, black_box(t), black_box(raw), null_mut());
                ea2p_counter_total_j(&counter, &mut j);
                black_box(ea2p_track_push_energy(&mut track, t, j, null_mut()))
            }
        })
    });
}

criterion_group!(benches, counter_update);
criterion_main!(benches);
