//! The ROCm adapter without AMD hardware: the real loader on a missing library and on a library
//! that lacks the symbols, and the source logic on a scripted backend.

use std::path::PathBuf;
use std::sync::Arc;

use ea2p_core::counter::{CounterEvent, EnergyCounter};
use ea2p_core::source::{Quantity, RawReading, ReadErrorKind, Source};
use ea2p_core::units::NANOS_PER_SEC;
use ea2p_rocm::fake::{FakeAmd, FakeAmdGpu};
use ea2p_rocm::{
    discover, discover_with, AmdSmiBackend, LoadError, ReadMode, RocmUnavailable, RsmiBackend,
    AMDSMI_LIBRARY, RSMI_LIBRARY,
};

const TICKS_PER_J: f64 = 1.0 / 15.3e-6;

fn ticks(joules: f64) -> u64 {
    (joules * TICKS_PER_J).round() as u64
}

#[test]
fn missing_library_is_not_found_with_the_paths_tried() {
    let paths = vec![PathBuf::from("libea2p-no-such-library.so.9")];
    let e = RsmiBackend::load_from(&paths).unwrap_err();
    let LoadError::NotFound {
        library,
        tried,
        detail,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(*library, RSMI_LIBRARY);
    assert!(tried.contains("libea2p-no-such-library.so.9"));
    assert!(!detail.is_empty());
    let e = AmdSmiBackend::load_from(&paths, std::path::Path::new("/sys")).unwrap_err();
    assert!(matches!(
        e,
        LoadError::NotFound {
            library: AMDSMI_LIBRARY,
            ..
        }
    ));
}

#[test]
fn a_library_without_the_symbols_is_rejected_by_name() {
    // libc loads fine but is neither ROCm SMI nor amdsmi.
    let libc = vec![PathBuf::from("libc.so.6")];
    let e = RsmiBackend::load_from(&libc).unwrap_err();
    assert_eq!(
        e,
        LoadError::MissingSymbol {
            library: RSMI_LIBRARY,
            path: "libc.so.6".into(),
            symbol: "rsmi_init",
        }
    );
    assert!(e.to_string().contains("lacks the symbol rsmi_init"), "{e}");
    let e = AmdSmiBackend::load_from(&libc, std::path::Path::new("/sys")).unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::MissingSymbol {
                symbol: "amdsmi_init",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn no_rocm_here_gives_the_reason_for_both_libraries() {
    match discover() {
        Err(RocmUnavailable::NoLibrary { attempts }) => {
            assert_eq!(attempts.len(), 2);
            let msg = RocmUnavailable::NoLibrary {
                attempts: attempts.clone(),
            }
            .to_string();
            assert!(
                msg.contains(AMDSMI_LIBRARY) && msg.contains(RSMI_LIBRARY),
                "{msg}"
            );
            assert!(msg.contains("LD_LIBRARY_PATH"));
        }
        // A machine with ROCm and an AMD GPU: the sources must be usable.
        Ok(gpus) => assert!(!gpus.sources.is_empty()),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn counter_for(source: &RocmSource) -> EnergyCounter {
    EnergyCounter::new(source.info().counter_spec().expect("not a counter"))
}

use ea2p_rocm::RocmSource;

#[test]
fn counter_first_power_fallback_and_skipped() {
    let mut no_counter = FakeAmdGpu::mi250x(0);
    no_counter.ticks = None;
    no_counter.name = None;
    let mut nothing = FakeAmdGpu::mi250x(0);
    nothing.ticks = None;
    nothing.power_uw = None;
    let fake = Arc::new(FakeAmd::new(vec![
        FakeAmdGpu::mi250x(7),
        no_counter,
        nothing,
    ]));
    let mut gpus = discover_with(fake, Vec::new()).unwrap();
    assert_eq!(gpus.library, "fake");
    assert_eq!(gpus.sources.len(), 2);
    assert_eq!(gpus.skipped.len(), 1);
    assert!(gpus.skipped[0]
        .reason
        .contains("energy counter: not supported"));

    let s0 = &mut gpus.sources[0];
    assert!(matches!(s0.mode(), ReadMode::EnergyCounter { .. }));
    let Quantity::EnergyCounter {
        joules_per_tick,
        max_ticks,
    } = s0.info().quantity
    else {
        panic!()
    };
    assert!((joules_per_tick - 15.3e-6).abs() < 1e-12);
    assert_eq!(max_ticks, None);
    assert_eq!(s0.info().max_power_w, Some(750.0));
    assert_eq!(s0.read(0), Ok(RawReading::Counter(7)));

    let s1 = &mut gpus.sources[1];
    assert_eq!(s1.mode(), ReadMode::AveragePower);
    assert_eq!(s1.info().name.as_str(), "fake 1 power-avg AMD GPU");
    assert_eq!(s1.read(0), Ok(RawReading::PowerMilliwatts(300_000)));
}

#[test]
fn nothing_readable_is_unavailable() {
    let mut g = FakeAmdGpu::mi250x(0);
    g.ticks = None;
    g.power_uw = None;
    let e = discover_with(Arc::new(FakeAmd::new(vec![g])), Vec::new()).unwrap_err();
    assert!(matches!(e, RocmUnavailable::NoReadableGpu { .. }));
    assert!(e.to_string().contains("GPU 0"));
}

#[test]
fn anomalous_jump_is_rejected_and_replaced_by_power_times_time() {
    let fake = Arc::new(FakeAmd::new(vec![FakeAmdGpu::mi250x(1_000)]));
    let mut gpus = discover_with(fake.clone(), Vec::new()).unwrap();
    let source = &mut gpus.sources[0];
    let mut counter = counter_for(source);
    let feed = |c: &mut EnergyCounter, t, r: RawReading| {
        let RawReading::Counter(v) = r else { panic!() };
        c.update(t, v)
    };

    let r = source.read(0).unwrap();
    assert_eq!(feed(&mut counter, 0, r).event, CounterEvent::Baseline);
    // 1 s at 300 W.
    fake.update(0, |g| g.ticks = Some(1_000 + ticks(300.0)));
    let r = source.read(NANOS_PER_SEC).unwrap();
    feed(&mut counter, NANOS_PER_SEC, r);
    // The next second the counter jumps by 50 kJ: rejected.
    fake.update(0, |g| {
        g.ticks = Some(1_000 + ticks(300.0) + ticks(50_000.0))
    });
    let e = source.read(2 * NANOS_PER_SEC).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Malformed);
    assert!(e.message.contains("rejected"), "{e}");
    assert_eq!(source.rejected(), 1);
    // The third second is normal again; its reading carries the rejected second as 300 J.
    fake.update(0, |g| {
        g.ticks = Some(1_000 + ticks(300.0) + ticks(50_000.0) + ticks(300.0))
    });
    let r = source.read(3 * NANOS_PER_SEC).unwrap();
    let u = feed(&mut counter, 3 * NANOS_PER_SEC, r);
    assert_eq!(u.event, CounterEvent::Advanced);
    assert!(
        (counter.total_j() - 900.0).abs() < 0.01,
        "{}",
        counter.total_j()
    );
}

#[test]
fn stalled_counter_is_rejected() {
    let fake = Arc::new(FakeAmd::new(vec![FakeAmdGpu::mi250x(5)]));
    let mut gpus = discover_with(fake, Vec::new()).unwrap();
    let s = &mut gpus.sources[0];
    s.read(0).unwrap();
    // Two seconds at 300 W and the counter has not moved.
    let e = s.read(2 * NANOS_PER_SEC).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Malformed);
}

#[test]
fn reset_passes_through_to_core() {
    let fake = Arc::new(FakeAmd::new(vec![FakeAmdGpu::mi250x(ticks(1_000.0))]));
    let mut gpus = discover_with(fake.clone(), Vec::new()).unwrap();
    let source = &mut gpus.sources[0];
    let mut counter = counter_for(source);
    let RawReading::Counter(v) = source.read(0).unwrap() else {
        panic!()
    };
    counter.update(0, v);
    // Driver reload: the accumulator restarts near zero.
    fake.update(0, |g| g.ticks = Some(ticks(1.0)));
    let RawReading::Counter(v) = source.read(NANOS_PER_SEC).unwrap() else {
        panic!()
    };
    assert_eq!(counter.update(NANOS_PER_SEC, v).event, CounterEvent::Reset);
}

#[test]
fn resolution_change_and_gone_gpu() {
    let fake = Arc::new(FakeAmd::new(vec![FakeAmdGpu::mi250x(0)]));
    let mut gpus = discover_with(fake.clone(), Vec::new()).unwrap();
    let s = &mut gpus.sources[0];
    fake.update(0, |g| g.resolution_uj = 1000.0);
    let e = s.read(0).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Malformed);
    assert!(e.message.contains("resolution"));
    fake.update(0, |g| {
        g.resolution_uj = 15.3;
        g.gone = true;
    });
    assert_eq!(s.read(1).unwrap_err().kind, ReadErrorKind::Gone);
}

#[test]
fn sources_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<RocmSource>();
    assert_send::<RsmiBackend>();
    assert_send::<AmdSmiBackend>();
}
