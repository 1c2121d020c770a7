//! `ea2p estimate` and `ea2p run`'s estimators are one code path: on a fake /proc (no RAPL), the
//! CPU and RAM sources that discovery builds report the watts `estimate cpu` / `estimate ram`
//! print for the same CPU name, thread count, memory and utilisation, and name their model.

use std::fs;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use ea2p::discover::{discover, DiscoverOptions};
use ea2p::estimate_cmd;
use ea2p::{Devices, GpuPick, HwmonPick};
use ea2p_core::source::{Component, Provenance, RawReading};

fn fake_proc(dir: &std::path::Path, cpu: &str, threads: u32, vm: bool) {
    let mut info = String::new();
    let flags = if vm { "fpu sse hypervisor" } else { "fpu sse" };
    for i in 0..threads {
        info.push_str(&format!(
            "processor\t: {i}\nmodel name\t: {cpu}\nphysical id\t: {}\nflags\t\t: {flags}\n\n",
            i / 32
        ));
    }
    fs::write(dir.join("cpuinfo"), info).unwrap();
    fs::write(
        dir.join("meminfo"),
        "MemTotal:       67108864 kB\nMemAvailable:   33554432 kB\n",
    )
    .unwrap();
    fs::write(
        dir.join("stat"),
        "cpu  1000 0 0 9000 0 0 0 0\ncpu0 1 1 1 1\n",
    )
    .unwrap();
}

fn watts(r: RawReading) -> f64 {
    match r {
        RawReading::PowerMilliwatts(mw) => mw as f64 / 1e3,
        other => panic!("an estimator reads power, got {other:?}"),
    }
}

#[test]
fn run_and_estimate_agree_on_a_fake_proc() {
    let tmp = tempfile::tempdir().unwrap();
    let proc_root = tmp.path().join("proc");
    let sys_root = tmp.path().join("sys");
    fs::create_dir_all(&proc_root).unwrap();
    fs::create_dir_all(&sys_root).unwrap();
    let gold = "Intel(R) Xeon(R) Gold 5218 CPU @ 2.30GHz";
    let unknown_gold = "Intel(R) Xeon(R) Gold 6999 CPU @ 2.30GHz";
    // (CPU, threads, VM, --cpu-tdp, packages `estimate cpu` is given, what the name says)
    for (cpu, threads, vm, tdp, packages, says) in [
        (gold, 64u32, false, None, Some(2), "xeon gold 5218 TDP"),
        (gold, 6, true, None, None, "xeon gold 5218 TDP"),
        (gold, 6, false, Some(42.0), Some(1), "given"),
        (unknown_gold, 64, false, None, Some(2), "2 pkg x 64 thr"),
        (unknown_gold, 4, true, None, None, "W/thread x 4"),
        (
            "AMD EPYC 9999",
            4,
            false,
            None,
            Some(1),
            "generic curve, W/thread x 4",
        ),
    ] {
        fake_proc(&proc_root, cpu, threads, vm);
        let options = DiscoverOptions {
            sysfs_root: sys_root.clone(),
            procfs_root: proc_root.clone(),
            devices: Devices {
                cpu: true,
                ram: true,
                gpu: GpuPick::None,
                hwmon: HwmonPick::None,
            },
            cpu_tdp: tdp,
        };
        let mut found = discover(&options, Arc::new(AtomicU32::new(1)));
        assert_eq!(found.sources.len(), 2, "{:?}", found.notes);
        for s in &found.sources {
            assert_eq!(s.info().provenance, Provenance::Estimated);
        }
        for s in found.sources.iter_mut() {
            s.read(0).unwrap();
        }
        // 3000 busy ticks of 4000: utilisation 0.75.
        fs::write(proc_root.join("stat"), "cpu  4000 0 0 10000 0 0 0 0\n").unwrap();
        for s in found.sources.iter_mut() {
            let got = watts(s.read(1_000_000_000).unwrap());
            let info = s.info().clone();
            let want = match info.component {
                Component::CpuPackage => estimate_cmd::cpu(cpu, threads, packages, 0.75, tdp),
                Component::Dram => estimate_cmd::ram(64.0, 0.75),
                c => panic!("unexpected {c:?}"),
            };
            assert!(
                (got - want.watts).abs() <= 1e-3,
                "{:?} ({threads} threads, tdp {tdp:?}): run reads {got} W, estimate says {} W",
                info.component,
                want.watts
            );
            assert!(
                want.model.len() > 20,
                "the estimate names its model: {}",
                want.model
            );
            let name = info.name.as_str();
            match info.component {
                Component::CpuPackage => assert!(name.contains(says), "{name}"),
                _ => assert!(name.contains("DDR4"), "{name}"),
            }
        }
    }
}
