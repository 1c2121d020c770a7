//! The perf power PMU against fake sysfs trees and a scripted perf backend (this machine, like
//! most VMs, has no power PMU).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ea2p_core::counter::EnergyCounter;
use ea2p_core::source::{Component, Quantity, RawReading, Source};
use ea2p_linux::perf::{
    discover_with, parse_cpumask, parse_event_config, parse_scale, PerfBackend, PerfCounter,
    PerfUnavailable, PmuEvent, PowerPmu,
};

const SCALE: &str = "2.3283064365386962890625e-10";

/// A PMU like a two-socket Xeon's: pkg, cores, ram and psys events, one CPU per package.
fn pmu_tree(root: &Path) {
    let dir = root.join("bus/event_source/devices/power");
    fs::create_dir_all(dir.join("events")).unwrap();
    fs::write(dir.join("type"), "23\n").unwrap();
    fs::write(dir.join("cpumask"), "0,8\n").unwrap();
    for (name, cfg) in [
        ("energy-cores", "0x01"),
        ("energy-pkg", "0x02"),
        ("energy-ram", "0x03"),
        ("energy-psys", "0x05"),
    ] {
        fs::write(dir.join("events").join(name), format!("event={cfg}\n")).unwrap();
        fs::write(
            dir.join("events").join(format!("{name}.scale")),
            format!("{SCALE}\n"),
        )
        .unwrap();
        fs::write(dir.join("events").join(format!("{name}.unit")), "Joules\n").unwrap();
    }
}

/// Counts per (event, cpu), set by the test.
#[derive(Default, Clone)]
struct Fake {
    counts: Arc<Mutex<BTreeMap<(String, u32), u64>>>,
    refuse: Option<i32>,
}

struct FakeCounter {
    key: (String, u32),
    counts: Arc<Mutex<BTreeMap<(String, u32), u64>>>,
}

impl PerfCounter for FakeCounter {
    fn read(&mut self) -> io::Result<u64> {
        self.counts
            .lock()
            .unwrap()
            .get(&self.key)
            .copied()
            .ok_or_else(|| io::Error::from_raw_os_error(19))
    }
}

impl PerfBackend for Fake {
    fn open(&self, _: &PowerPmu, event: &PmuEvent, cpu: u32) -> io::Result<Box<dyn PerfCounter>> {
        if let Some(errno) = self.refuse {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let key = (event.name.clone(), cpu);
        self.counts.lock().unwrap().insert(key.clone(), 0);
        Ok(Box::new(FakeCounter {
            key,
            counts: Arc::clone(&self.counts),
        }))
    }
}

#[test]
fn two_packages_and_psys_become_sources_with_the_sysfs_scale() {
    let tmp = tempfile::tempdir().unwrap();
    pmu_tree(tmp.path());
    let fake = Fake::default();
    let found = discover_with(tmp.path(), tmp.path(), &fake).unwrap();
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let got: Vec<(Component, u32, String)> = found
        .sources
        .iter()
        .map(|s| {
            (
                s.info().component,
                s.info().index,
                s.info().name.to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Component::CpuCores,
                0,
                "perf power/energy-cores/ cpu 0".into()
            ),
            (
                Component::CpuCores,
                1,
                "perf power/energy-cores/ cpu 8".into()
            ),
            (
                Component::CpuPackage,
                0,
                "perf power/energy-pkg/ cpu 0".into()
            ),
            (
                Component::CpuPackage,
                1,
                "perf power/energy-pkg/ cpu 8".into()
            ),
            (
                Component::Platform,
                0,
                "perf power/energy-psys/ cpu 0".into()
            ),
            (Component::Dram, 0, "perf power/energy-ram/ cpu 0".into()),
            (Component::Dram, 1, "perf power/energy-ram/ cpu 8".into()),
        ]
    );
    let scale: f64 = SCALE.parse().unwrap();
    assert_eq!(
        found.sources[0].info().quantity,
        Quantity::EnergyCounter {
            joules_per_tick: scale,
            max_ticks: Some(u64::MAX)
        }
    );

    // Package 1 at 50 W for 2 s through core's counter: 100 J = 100 x 2^32 counts.
    let mut pkg1 = found.sources.into_iter().nth(3).unwrap();
    let mut counter = EnergyCounter::new(pkg1.info().counter_spec().unwrap());
    let key = ("energy-pkg".to_string(), 8);
    for step in 0..=20u64 {
        let t = step * 100_000_000;
        let joules = 50.0 * t as f64 / 1e9;
        fake.counts
            .lock()
            .unwrap()
            .insert(key.clone(), (joules / scale) as u64);
        let RawReading::Counter(v) = pkg1.read(t).unwrap() else {
            panic!("a counter")
        };
        counter.update(t, v);
    }
    assert!(
        (counter.total_j() - 100.0).abs() < 1e-6,
        "{}",
        counter.total_j()
    );

    // The CPU goes offline: the read fails as "gone", not a panic.
    fake.counts.lock().unwrap().remove(&key);
    assert!(pkg1.read(3_000_000_000).is_err());
}

#[test]
fn refused_perf_says_how_to_allow_it() {
    let tmp = tempfile::tempdir().unwrap();
    pmu_tree(tmp.path());
    fs::create_dir_all(tmp.path().join("sys/kernel")).unwrap();
    fs::write(tmp.path().join("sys/kernel/perf_event_paranoid"), "2\n").unwrap();
    let fake = Fake {
        refuse: Some(13),
        ..Fake::default()
    };
    let err = discover_with(tmp.path(), tmp.path(), &fake).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PerfUnavailable::Denied { .. }), "{text}");
    assert!(text.contains("perf_event_paranoid is 2"), "{text}");
    assert!(
        text.contains("sudo sysctl kernel.perf_event_paranoid=0"),
        "{text}"
    );
}

#[test]
fn missing_and_malformed_trees() {
    let tmp = tempfile::tempdir().unwrap();
    let err = discover_with(tmp.path(), tmp.path(), &Fake::default()).unwrap_err();
    assert!(matches!(err, PerfUnavailable::NoPmu(_)), "{err}");
    assert!(err.to_string().contains("no perf power PMU"));

    pmu_tree(tmp.path());
    let events = tmp.path().join("bus/event_source/devices/power/events");
    fs::write(events.join("energy-ram.unit"), "Watts\n").unwrap();
    fs::write(events.join("energy-cores"), "umask=0x1\n").unwrap();
    let found = discover_with(tmp.path(), tmp.path(), &Fake::default()).unwrap();
    assert_eq!(found.sources.len(), 3, "pkg x 2 + psys");
    assert_eq!(found.problems.len(), 2, "{:?}", found.problems);
    assert!(found
        .problems
        .iter()
        .any(|p| p.contains("expected the unit Joules, found \"Watts\"")));
    assert!(found
        .problems
        .iter()
        .any(|p| p.contains("energy-cores") && p.contains("umask")));

    fs::write(
        tmp.path().join("bus/event_source/devices/power/cpumask"),
        "zero\n",
    )
    .unwrap();
    let err = discover_with(tmp.path(), tmp.path(), &Fake::default()).unwrap_err();
    assert!(err.to_string().contains("expected a CPU list"), "{err}");
}

#[test]
fn parsers() {
    let p = Path::new("f");
    assert_eq!(parse_event_config("event=0x02\n", p), Ok(2));
    assert_eq!(parse_event_config("event=17", p), Ok(17));
    assert!(parse_event_config("", p).is_err());
    assert!(parse_event_config("event=0xZZ", p).is_err());
    assert_eq!(parse_cpumask("0,48\n", p), Ok(vec![0, 48]));
    assert_eq!(parse_cpumask("0-3,8,2", p), Ok(vec![0, 1, 2, 3, 8]));
    assert!(parse_cpumask("3-1", p).is_err());
    assert!(parse_cpumask("0-4294967295", p).is_err());
    assert!(parse_cpumask("", p).is_err());
    assert_eq!(parse_scale(SCALE, p), Ok(2f64.powi(-32)));
    assert!(parse_scale("-1", p).is_err());
    assert!(parse_scale("NaN", p).is_err());
    assert!(parse_scale("inf", p).is_err());
}

/// The real kernel interface on this machine: no PMU directory means `NoPmu`; a PMU either
/// opens or is refused with the paranoid level, never "malformed".
#[test]
fn the_real_perf_says_available_or_why_not() {
    let result = ea2p_linux::perf::discover(Path::new("/sys"), Path::new("/proc"));
    if !Path::new("/sys/bus/event_source/devices/power/type").exists() {
        assert!(
            matches!(result, Err(PerfUnavailable::NoPmu(_))),
            "{result:?}"
        );
        return;
    }
    match result {
        Ok(found) => assert!(found
            .sources
            .iter()
            .all(|s| s.info().name.starts_with("perf power/"))),
        Err(e) => assert!(matches!(e, PerfUnavailable::Denied { .. }), "{e}"),
    }
}
