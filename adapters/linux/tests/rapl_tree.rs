//! RAPL discovery and reading against powercap trees built in a temporary directory.

use std::fs;
use std::path::Path;

use ea2p_core::counter::{CounterEvent, EnergyCounter};
use ea2p_core::source::{Component, Quantity, RawReading, ReadErrorKind, Source};
use ea2p_linux::rapl::{discover, RaplProblem, RaplUnavailable};

fn zone(root: &Path, dir: &str, name: &str, energy: &str, max: &str, limit_uw: Option<u64>) {
    let d = root.join("class/powercap").join(dir);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("name"), format!("{name}\n")).unwrap();
    fs::write(d.join("energy_uj"), format!("{energy}\n")).unwrap();
    fs::write(d.join("max_energy_range_uj"), format!("{max}\n")).unwrap();
    if let Some(uw) = limit_uw {
        fs::write(d.join("constraint_0_power_limit_uw"), format!("{uw}\n")).unwrap();
        fs::write(
            d.join("constraint_1_power_limit_uw"),
            format!("{}\n", uw * 2),
        )
        .unwrap();
    }
}

/// A two-socket server: packages with core and dram subzones, the control-type directory, and
/// the MMIO duplicates that must be skipped.
fn server(root: &Path) {
    fs::create_dir_all(root.join("class/powercap/intel-rapl")).unwrap();
    zone(
        root,
        "intel-rapl:0",
        "package-0",
        "1000",
        "262143328850",
        Some(125_000_000),
    );
    zone(root, "intel-rapl:0:0", "core", "400", "262143328850", None);
    zone(root, "intel-rapl:0:1", "dram", "50", "65712999613", None);
    zone(
        root,
        "intel-rapl:1",
        "package-1",
        "2000",
        "262143328850",
        Some(125_000_000),
    );
    zone(root, "intel-rapl:1:0", "dram", "60", "65712999613", None);
    zone(
        root,
        "intel-rapl-mmio:0",
        "package-0",
        "999",
        "262143328850",
        None,
    );
}

#[test]
fn discovers_zones_and_subzones_and_skips_mmio() {
    let tmp = tempfile::tempdir().unwrap();
    server(tmp.path());
    let found = discover(tmp.path()).unwrap();
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let names: Vec<_> = found.sources.iter().map(|s| s.zone().to_string()).collect();
    assert_eq!(
        names,
        [
            "intel-rapl:0",
            "intel-rapl:0:0",
            "intel-rapl:0:1",
            "intel-rapl:1",
            "intel-rapl:1:0"
        ]
    );
    let kinds: Vec<_> = found
        .sources
        .iter()
        .map(|s| (s.info().component, s.info().index))
        .collect();
    assert_eq!(
        kinds,
        [
            (Component::CpuPackage, 0),
            (Component::CpuCores, 0),
            (Component::Dram, 0),
            (Component::CpuPackage, 1),
            (Component::Dram, 1),
        ]
    );
    let pkg = found.sources[0].info();
    assert_eq!(
        pkg.quantity,
        Quantity::EnergyCounter {
            joules_per_tick: 1e-6,
            max_ticks: Some(262_143_328_850)
        }
    );
    // Largest constraint (250 W) x 1.5 headroom.
    assert_eq!(pkg.max_power_w, Some(375.0));
    assert_eq!(found.sources[2].info().max_power_w, None);
    assert_eq!(pkg.name.as_str(), "rapl intel-rapl:0 package-0");
}

#[test]
fn reads_follow_the_file_and_wraps_are_handled_by_core() {
    let tmp = tempfile::tempdir().unwrap();
    zone(
        tmp.path(),
        "intel-rapl:0",
        "package-0",
        "999990",
        "999999",
        Some(100_000_000),
    );
    let mut found = discover(tmp.path()).unwrap();
    let src = &mut found.sources[0];
    let spec = src.info().counter_spec().expect("a counter");
    let mut counter = EnergyCounter::new(spec);
    let energy = tmp.path().join("class/powercap/intel-rapl:0/energy_uj");
    let RawReading::Counter(v) = src.read(0).unwrap() else {
        panic!()
    };
    counter.update(0, v);
    fs::write(&energy, "40\n").unwrap(); // wrapped: 9 + 1 + 40 = 50 uJ
    let RawReading::Counter(v) = src.read(1_000_000).unwrap() else {
        panic!()
    };
    assert_eq!(counter.update(1_000_000, v).event, CounterEvent::Wrapped);
    assert_eq!(counter.total_ticks(), 50);

    fs::write(&energy, "garbage\n").unwrap();
    assert_eq!(
        src.read(2_000_000).unwrap_err().kind,
        ReadErrorKind::Malformed
    );
    // A zone that disappears (driver unloaded): the open file keeps the old inode here (sysfs
    // would fail the read instead), so check what a fresh discovery says.
    fs::remove_file(&energy).unwrap();
    let again = discover(tmp.path()).unwrap();
    assert!(again.sources.is_empty());
    assert!(
        again.problems[0].to_string().contains("energy_uj"),
        "{:?}",
        again.problems
    );
}

#[test]
fn broken_zones_are_problems_not_failures() {
    let tmp = tempfile::tempdir().unwrap();
    zone(tmp.path(), "intel-rapl:0", "package-0", "1", "100", None);
    zone(tmp.path(), "intel-rapl:1", "package-1", "x", "100", None);
    zone(tmp.path(), "intel-rapl:2", "gpu", "1", "100", None);
    let found = discover(tmp.path()).unwrap();
    assert_eq!(found.sources.len(), 1);
    assert_eq!(found.problems.len(), 2);
    assert!(
        matches!(&found.problems[0], RaplProblem::Malformed { reason, .. } if reason.contains("expected an integer"))
    );
    assert!(found.problems[1]
        .to_string()
        .contains("unknown RAPL domain \"gpu\""));
}

#[test]
fn no_powercap_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let err = discover(tmp.path()).unwrap_err();
    assert!(matches!(err, RaplUnavailable::NoPowercap(_)));
    assert!(err.to_string().contains("modprobe intel_rapl_msr"));
    fs::create_dir_all(tmp.path().join("class/powercap/intel-rapl-mmio:0")).unwrap();
    assert!(matches!(
        discover(tmp.path()).unwrap_err(),
        RaplUnavailable::NoZones(_)
    ));
}

/// A process tree in a fake /proc: the root, a child, a grandchild, and an unrelated process.
#[test]
fn process_tree_usage_from_a_fake_proc() {
    use ea2p_linux::procfs::tree_usage;
    let tmp = tempfile::tempdir().unwrap();
    let proc_ = |pid: u32, ppid: u32, ticks: u64, cticks: u64, rss: u64| {
        let d = tmp.path().join(pid.to_string());
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("stat"),
            format!(
                "{pid} (p {pid}) S {ppid} 0 0 0 -1 0 0 0 0 0 {ticks} 0 {cticks} 0 20 0 1 0 0 0 {rss}\n"
            ),
        )
        .unwrap();
    };
    proc_(100, 1, 10, 5, 1000);
    proc_(101, 100, 20, 0, 200);
    proc_(102, 101, 30, 0, 30);
    proc_(200, 1, 999, 0, 9999);
    fs::create_dir_all(tmp.path().join("self")).unwrap();
    let u = tree_usage(tmp.path(), 100).unwrap();
    assert_eq!(u.processes, 3);
    assert_eq!(u.cpu_ticks, 10 + 5 + 20 + 30);
    assert_eq!(u.rss_pages, 1230);
    assert_eq!(tree_usage(tmp.path(), 4242).unwrap().processes, 0);
    assert_eq!(
        ea2p_linux::procfs::tree_pids(tmp.path(), 100).unwrap(),
        [100, 101, 102]
    );
    assert_eq!(
        ea2p_linux::procfs::tree_pids(tmp.path(), 101).unwrap(),
        [101, 102]
    );
}

/// The parsers agree with the real /proc of this machine (every CI machine is Linux).
#[test]
fn real_proc_of_this_process() {
    use ea2p_linux::procfs::{cpu_times, meminfo, tree_usage};
    let root = Path::new("/proc");
    let u = tree_usage(root, std::process::id()).unwrap();
    assert!(u.processes >= 1 && u.rss_pages > 0, "{u:?}");
    assert!(meminfo(root).unwrap().total_bytes > 0);
    let t = cpu_times(root).unwrap();
    assert!(t.busy + t.idle > 0);
}
