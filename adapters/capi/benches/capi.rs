//! Cost of the C boundary on the sampler's hot path: a counter update and a track push through
//! the C API (state decoded and re-encoded on every call) against the same calls on the core's
//! types (`ea2p-core/benches/counter.rs` measures those alone); and one reading through the
//! session handle (`ea2p_session_reading`: session, fold, and with a sink the profile frame)
//! against the core's Session and Fold called from Rust with the same capacities.

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

/// The session's source: the RAPL package domain above.
fn session_info() -> ea2p_core::source::SourceInfo {
    use ea2p_core::source::{truncated, Component, Provenance, Quantity, SourceInfo};
    SourceInfo {
        component: Component::CpuPackage,
        index: 0,
        provenance: Provenance::Measured,
        quantity: Quantity::EnergyCounter {
            joules_per_tick: 1e-6,
            max_ticks: Some(MAX_TICKS),
        },
        update_period_ns: 1_000_000,
        max_power_w: Some(250.0),
        name: truncated("package-0"),
    }
}

/// A sink that only counts the bytes it is given (the frame is built either way).
unsafe extern "C" fn count_bytes(
    user: *mut core::ffi::c_void,
    _bytes: *const u8,
    len: usize,
) -> i32 {
    // SAFETY: the bench passes a pointer to its own `usize` as user data.
    unsafe { *user.cast::<usize>() += len };
    0
}

fn session_reading(c: &mut Criterion) {
    use ea2p_core::fold::Fold;
    use ea2p_core::format::{encode, MAX_FRAME_LEN};
    use ea2p_core::session::Session;
    use ea2p_core::source::RawReading;
    use std::ffi::c_void;

    for with_frame in [false, true] {
        let name = if with_frame {
            "core_session_fold_encode_reading"
        } else {
            "core_session_fold_reading"
        };
        c.bench_function(name, |b| {
            // The capacities of `Ea2pSession`.
            let mut session: Box<Session<EA2P_SESSION_SOURCES, EA2P_SESSION_OPEN_REGIONS>> =
                Box::new(Session::new());
            let mut fold: Box<Fold<EA2P_SESSION_SOURCES, 128>> = Box::default();
            let mut frame = [0u8; MAX_FRAME_LEN];
            let mut bytes = 0usize;
            session.add_source(0, session_info()).unwrap();
            while let Some(r) = session.poll_record() {
                fold.handle(&r).unwrap();
            }
            let (mut t, mut raw) = (0u64, 0u64);
            b.iter(|| {
                t += 1_000_000;
                raw = (raw + 50_000) & MAX_TICKS;
                session
                    .handle_reading(0, black_box(t), RawReading::Counter(black_box(raw)))
                    .unwrap();
                while let Some(r) = session.poll_record() {
                    if with_frame {
                        bytes += encode(&r, &mut frame).unwrap();
                    }
                    black_box(fold.handle(&r)).unwrap();
                    while let Some(reg) = fold.poll_region() {
                        black_box(reg);
                    }
                }
            });
            black_box(bytes);
        });
    }

    for with_sink in [false, true] {
        let name = if with_sink {
            "capi_session_reading_with_sink"
        } else {
            "capi_session_reading"
        };
        c.bench_function(name, |b| {
            let mut s = null_mut();
            let mut bytes = 0usize;
            let spec = Ea2pSourceSpec {
                component: Ea2pComponent::CpuPackage as u32,
                index: 0,
                name: c"package-0".as_ptr(),
                max_power_w: 250.0,
                update_period_ns: 1_000_000,
                estimated: false,
            };
            let info = Ea2pProfileInfo {
                start_unix_ns: 0,
                monotonic_origin_ns: 0,
                interval_ns: 1_000_000,
                hostname: core::ptr::null(),
                command: core::ptr::null(),
            };
            // SAFETY: valid pointers; `bytes` outlives the session, freed below.
            unsafe {
                assert_eq!(ea2p_session_new(0, &mut s), Ea2pStatus::Ok);
                if with_sink {
                    let user = (&mut bytes as *mut usize).cast::<c_void>();
                    let sink: Ea2pSink = Some(count_bytes);
                    assert_eq!(ea2p_session_set_sink(s, &info, sink, user), Ea2pStatus::Ok);
                }
                assert_eq!(
                    ea2p_session_add_counter(s, 0, &spec, 1e-6, MAX_TICKS),
                    Ea2pStatus::Ok
                );
            }
            let (mut t, mut raw) = (0u64, 0u64);
            b.iter(|| {
                t += 1_000_000;
                raw = (raw + 50_000) & MAX_TICKS;
                // SAFETY: a live handle.
                black_box(unsafe { ea2p_session_reading(s, 0, black_box(t), black_box(raw)) })
            });
            // SAFETY: made above, freed once.
            unsafe { ea2p_session_free(s) };
            black_box(bytes);
        });
    }
}

criterion_group!(benches, counter_update, session_reading);
criterion_main!(benches);
