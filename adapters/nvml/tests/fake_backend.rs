//! The source logic against a scripted backend: counter or power, selection, a GPU that
//! disappears, a counter that wraps, attribution; and the real library's absence on a machine
//! without the driver.

use std::collections::BTreeSet;
use std::sync::Arc;

use ea2p_core::counter::{CounterEvent, EnergyCounter};
use ea2p_core::source::{Quantity, RawReading, ReadErrorKind, Source};
use ea2p_core::units::NANOS_PER_SEC;
use ea2p_nvml::fake::{FakeBackend, FakeGpu};
use ea2p_nvml::{
    discover, discover_with, Architecture, BackendError, GpuProcess, NvmlUnavailable, ProcessKind,
    ProcessUtilization, ReadMode, Selection, ShareBasis, NVML_LIBRARY,
};

fn h100(uuid: &str, mj: u64) -> FakeGpu {
    FakeGpu::with_counter("NVIDIA H100 80GB HBM3", uuid, Architecture::Hopper, mj)
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn counter_is_primary_and_power_the_fallback() {
    let backend = Arc::new(FakeBackend::new(vec![
        h100("GPU-aaaa", 1_000),
        FakeGpu::power_only(
            "Tesla P100-PCIE-16GB",
            "GPU-bbbb",
            Architecture::Pascal,
            42_000,
        ),
        FakeGpu::power_only("NVIDIA A10G", "GPU-cccc", Architecture::Ampere, 60_000),
    ]));
    let gpus = discover_with(backend, &Selection::All).unwrap();
    assert_eq!(gpus.sources.len(), 3);
    assert_eq!(gpus.driver_version.as_deref(), Some("fake-1.0"));

    let s0 = &gpus.sources[0];
    assert_send(s0);
    assert_eq!(s0.mode(), ReadMode::EnergyCounter);
    assert_eq!(
        s0.info().quantity,
        Quantity::EnergyCounter {
            joules_per_tick: 1e-3,
            max_ticks: Some(u64::MAX)
        }
    );
    assert_eq!(
        s0.info().name.as_str(),
        "nvml 0 energy NVIDIA H100 80GB HBM3"
    );
    assert_eq!(s0.info().max_power_w, Some(450.0));

    let s1 = &gpus.sources[1];
    assert_eq!(s1.info().quantity, Quantity::Power { averaging_ns: 0 });
    assert!(s1.info().name.contains("power-instant"));
    let s2 = &gpus.sources[2];
    assert_eq!(
        s2.info().quantity,
        Quantity::Power {
            averaging_ns: NANOS_PER_SEC
        }
    );
    assert!(s2.info().name.contains("power-1s-avg"));

    let mut sources = gpus.sources;
    assert_eq!(sources[0].read(0), Ok(RawReading::Counter(1_000)));
    assert_eq!(sources[1].read(0), Ok(RawReading::PowerMilliwatts(42_000)));
}

#[test]
fn unreadable_gpus_are_skipped_with_both_reasons() {
    let backend = Arc::new(FakeBackend::new(vec![
        h100("GPU-aaaa", 0),
        h100("GPU-bbbb", 0),
    ]));
    backend.update(1, |g| {
        g.energy_mj = None;
        g.power_mw = None;
    });
    let gpus = discover_with(Arc::clone(&backend), &Selection::All).unwrap();
    assert_eq!(gpus.sources.len(), 1);
    assert_eq!(gpus.skipped.len(), 1);
    assert_eq!(gpus.skipped[0].index, 1);
    assert!(gpus.skipped[0].reason.contains("energy counter"));
    assert!(gpus.skipped[0].reason.contains("power"));

    backend.update(0, |g| {
        g.energy_mj = None;
        g.power_mw = None;
    });
    let err = discover_with(backend, &Selection::All).unwrap_err();
    assert!(matches!(err, NvmlUnavailable::NoReadableGpu { .. }));
    assert!(err.to_string().contains("GPU 0"), "{err}");
}

#[test]
fn gpu_falling_off_the_bus_mid_run_is_gone() {
    let backend = Arc::new(FakeBackend::new(vec![h100("GPU-aaaa", 5)]));
    let mut gpus = discover_with(Arc::clone(&backend), &Selection::All).unwrap();
    let s = &mut gpus.sources[0];
    assert_eq!(s.read(0), Ok(RawReading::Counter(5)));
    backend.update(0, |g| g.gone = true);
    let e = s.read(1).unwrap_err();
    assert_eq!(e.kind, ReadErrorKind::Gone);
    assert!(e.message.starts_with("nvml:"), "{e}");
    // It comes back (driver recovered): reads work again.
    backend.update(0, |g| g.gone = false);
    assert_eq!(s.read(2), Ok(RawReading::Counter(5)));
}

#[test]
fn counter_that_wraps_is_followed_by_core() {
    let start = u64::MAX - 499;
    let backend = Arc::new(FakeBackend::new(vec![h100("GPU-aaaa", start)]));
    let mut gpus = discover_with(Arc::clone(&backend), &Selection::All).unwrap();
    let source = &mut gpus.sources[0];
    let info = source.info().clone();
    let spec = info.counter_spec().expect("expected a counter");
    let mut counter = EnergyCounter::new(spec);

    let RawReading::Counter(raw) = source.read(0).unwrap() else {
        panic!()
    };
    assert_eq!(counter.update(0, raw).event, CounterEvent::Baseline);
    // 100 J later (1 s at 100 W), the 64-bit millijoule counter has wrapped.
    backend.update(0, |g| g.energy_mj = Some(start.wrapping_add(100_000)));
    let RawReading::Counter(raw) = source.read(NANOS_PER_SEC).unwrap() else {
        panic!()
    };
    let u = counter.update(NANOS_PER_SEC, raw);
    assert_eq!(u.event, CounterEvent::Wrapped);
    assert!((counter.total_j() - 100.0).abs() < 1e-9);
}

#[test]
fn cuda_visible_devices_selects_by_index_and_uuid() {
    let backend = Arc::new(FakeBackend::new(vec![
        h100("GPU-11111111-aaaa", 0),
        h100("GPU-22222222-bbbb", 0),
        h100("GPU-33333333-cccc", 0),
    ]));
    let sel = Selection::CudaVisible {
        value: "GPU-3333,0,-1,1".into(),
        pci_bus_order: true,
    };
    let gpus = discover_with(Arc::clone(&backend), &sel).unwrap();
    let idx: Vec<u32> = gpus.sources.iter().map(|s| s.gpu_index()).collect();
    assert_eq!(idx, vec![2, 0]);
    assert_eq!(gpus.sources[0].uuid(), "GPU-33333333-cccc");
    assert_eq!(gpus.notes.len(), 1);
    assert!(gpus.notes[0].contains("\"-1\""));

    let none = Selection::CudaVisible {
        value: String::new(),
        pci_bus_order: false,
    };
    let err = discover_with(Arc::clone(&backend), &none).unwrap_err();
    assert!(matches!(err, NvmlUnavailable::NothingSelected { .. }));
    assert!(err.to_string().contains("CUDA_VISIBLE_DEVICES"));

    let err = discover_with(backend, &Selection::Indices(vec![7])).unwrap_err();
    assert!(err.to_string().contains("index 7"), "{err}");
}

#[test]
fn no_devices_and_failed_listing_are_reported() {
    let err = discover_with(Arc::new(FakeBackend::new(vec![])), &Selection::All).unwrap_err();
    assert_eq!(err, NvmlUnavailable::NoDevices);
    let b = FakeBackend::new(vec![h100("GPU-a", 0)]);
    b.fail_device_count(BackendError::Other("Unknown Error".into()));
    let err = discover_with(Arc::new(b), &Selection::All).unwrap_err();
    assert!(err.to_string().contains("cannot list GPUs"));
}

#[test]
fn process_probe_feeds_attribution() {
    let backend = Arc::new(FakeBackend::new(vec![h100("GPU-a", 0)]));
    backend.update(0, |g| {
        g.processes = vec![
            GpuProcess {
                pid: 100,
                used_memory_bytes: Some(1 << 30),
                kind: ProcessKind::Compute,
            },
            GpuProcess {
                pid: 200,
                used_memory_bytes: Some(3 << 30),
                kind: ProcessKind::Compute,
            },
        ];
        g.utilization = vec![
            ProcessUtilization {
                pid: 100,
                timestamp_us: 10,
                sm_percent: 75,
                mem_percent: 5,
            },
            ProcessUtilization {
                pid: 200,
                timestamp_us: 11,
                sm_percent: 25,
                mem_percent: 5,
            },
        ];
    });
    let gpus = discover_with(Arc::clone(&backend), &Selection::All).unwrap();
    let mut probe = gpus.process_probe();
    assert_eq!(probe.gpu_indices(), vec![0]);
    let pids: BTreeSet<u32> = [100].into_iter().collect();

    let first = probe.sample();
    let share = first[0].share(&pids).unwrap();
    assert_eq!(share.basis, ShareBasis::SmUtilization);
    assert!((share.fraction - 0.75).abs() < 1e-12);

    // The second probe sees no new samples (timestamps not newer): memory decides.
    let second = probe.sample();
    assert_eq!(second[0].utilization.as_ref().unwrap().len(), 0);
    let share = second[0].share(&pids).unwrap();
    assert_eq!(share.basis, ShareBasis::Memory);
    assert!((share.fraction - 0.25).abs() < 1e-12);

    backend.update(0, |g| g.gone = true);
    let third = probe.sample();
    assert!(matches!(third[0].processes, Err(BackendError::Gone(_))));
}

#[test]
fn a_library_without_nvml_symbols_is_rejected_by_name() {
    // libc loads fine but is not NVML: the first symbol NVML needs is missing.
    let e = ea2p_nvml::NvmlBackend::init_from(std::ffi::OsStr::new("libc.so.6")).unwrap_err();
    let NvmlUnavailable::MissingSymbol { symbol, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(symbol.contains("nvmlInit_v2"), "{symbol}");
    assert!(e.to_string().contains("update the NVIDIA driver"));
    let e =
        ea2p_nvml::NvmlBackend::init_from(std::ffi::OsStr::new("libea2p-none.so.3")).unwrap_err();
    assert!(
        matches!(e, NvmlUnavailable::LibraryNotFound { .. }),
        "{e:?}"
    );
}

#[test]
fn real_library_absence_is_an_error_value() {
    // SAFETY: loading the NVML library runs its initialisers, which NVIDIA documents as safe to
    // load in any process; no symbol is called here.
    let present = unsafe { libloading::Library::new(NVML_LIBRARY) }.is_ok();
    match discover(&Selection::All) {
        Err(e) if !present => {
            assert!(
                matches!(e, NvmlUnavailable::LibraryNotFound { .. }),
                "unexpected: {e:?}"
            );
            let msg = e.to_string();
            assert!(msg.contains(NVML_LIBRARY) && msg.contains("install the NVIDIA driver"));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
        Ok(gpus) => {
            assert!(present);
            assert!(!gpus.sources.is_empty());
        }
    }
}
