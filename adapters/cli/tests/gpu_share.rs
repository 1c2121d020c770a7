//! The GPU lane with a scripted NVML backend: energy read off the fast lane, and the measured
//! process tree's share of a GPU that another process uses too.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ea2p::discover::Found;
use ea2p::{Monitor, MonitorOptions};
use ea2p_nvml::fake::{FakeBackend, FakeGpu};
use ea2p_nvml::{
    discover_with, Architecture, GpuProcess, ProcessKind, ProcessUtilization, Selection,
};

const GPU_W: f64 = 200.0;

#[test]
fn a_shared_gpu_is_split_by_sm_utilisation() {
    let me = std::process::id();
    let other = 4_000_000; // not in our tree
    let mut gpu = FakeGpu::with_counter("NVIDIA H100 80GB HBM3", "GPU-a", Architecture::Hopper, 0);
    gpu.processes = vec![
        GpuProcess {
            pid: me,
            used_memory_bytes: Some(1 << 30),
            kind: ProcessKind::Compute,
        },
        GpuProcess {
            pid: other,
            used_memory_bytes: Some(1 << 30),
            kind: ProcessKind::Compute,
        },
    ];
    gpu.utilization = vec![
        ProcessUtilization {
            pid: me,
            timestamp_us: 1,
            sm_percent: 60,
            mem_percent: 10,
        },
        ProcessUtilization {
            pid: other,
            timestamp_us: 2,
            sm_percent: 20,
            mem_percent: 10,
        },
    ];
    let backend = Arc::new(FakeBackend::new(vec![gpu]));
    let gpus = discover_with(Arc::clone(&backend), &Selection::All).unwrap();
    let mut probe = gpus.process_probe();
    let found = Found {
        sources: gpus
            .sources
            .into_iter()
            .map(|s| Box::new(s) as Box<dyn ea2p_core::source::Source + Send>)
            .collect(),
        notes: Vec::new(),
        gpu_probe: Some(Box::new(move || probe.sample())),
    };

    // The GPU's counter advances at 200 W (mJ), like the driver's, every millisecond.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, backend) = (Arc::clone(&stop), Arc::clone(&backend));
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let mj = (t0.elapsed().as_secs_f64() * GPU_W * 1e3) as u64;
                backend.update(0, |g| g.energy_mj = Some(mj));
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let monitor = Monitor::start_with(
        MonitorOptions::default(),
        found,
        Arc::new(AtomicU32::new(me)),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    monitor.begin("work").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let work = monitor.end("work").unwrap();
    let (summary, _) = monitor.finish(None);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let g = &summary.components[0];
    assert_eq!(g.name, "gpu-0");
    assert_eq!(g.kind, "measured");
    // The counter updates every 100 ms (NVML's period): the average is 200 W within 10 %.
    assert!((g.avg_w - GPU_W).abs() < 0.1 * GPU_W, "{summary:?}");
    let share = g.process_share.as_ref().expect("a share");
    assert!((share.fraction - 0.75).abs() < 1e-9, "{share:?}");
    assert_eq!(share.basis, "sm-utilisation");
    assert!((share.energy_j - 0.75 * g.energy_j).abs() < 1e-9);
    // A region on a 100 ms counter: within one update period's energy (20 J) of 200 W x 0.8 s.
    assert!(
        (work.total_j - GPU_W * work.duration_s).abs() < GPU_W * 0.1 + 1.0,
        "{work:?}"
    );
    assert!(summary.table().contains("of which this command"));
}
