//! Regions, through the Rust API and through the `EA2P_REGIONS` FIFO, against a fake powercap
//! tree whose power the test changes, so every region's true energy is known.

use std::process::Command;
use std::time::Duration;

use ea2p::{Devices, Monitor, MonitorOptions, RegionError};
use ea2p_core::format::{Decoder, MarkerKind, Record};
use ea2p_tests::{FakeRapl, ZoneSpec};

fn options(rapl: &FakeRapl) -> MonitorOptions {
    let mut o = MonitorOptions::with_devices("cpu".parse::<Devices>().unwrap());
    o.discover.sysfs_root = rapl.root().to_path_buf();
    o
}

fn close(measured: f64, truth: f64, tolerance: f64) -> bool {
    (measured - truth).abs() <= tolerance * truth.abs().max(1e-9)
}

#[test]
fn nested_and_overlapping_regions_get_their_energy() {
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", 10.0)]);
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("p.ea2p");
    let mut o = options(&rapl);
    o.output = Some(profile.clone());
    let monitor = Monitor::start(o).unwrap();
    assert_eq!(monitor.sources().len(), 1, "{:?}", monitor.notes());
    std::thread::sleep(Duration::from_millis(50));

    let e0 = rapl.energy_j("intel-rapl:0");
    monitor.begin("all").unwrap();
    monitor.begin("low").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let e1 = rapl.energy_j("intel-rapl:0");
    rapl.set_watts("intel-rapl:0", 30.0);
    // "high" overlaps "low" for a moment: different names may overlap.
    monitor.begin("high").unwrap();
    let low = monitor.end("low").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let high = monitor.end("high").unwrap();
    let e2 = rapl.energy_j("intel-rapl:0");
    let all = monitor.end("all").unwrap();

    // The fake tree advances every ~1 ms and the monitor reads every 1 ms: allow 8 %.
    assert!(
        close(low.total_j, e1 - e0, 0.08),
        "low {low:?}, truth {}",
        e1 - e0
    );
    assert!(
        close(high.total_j, e2 - e1, 0.08),
        "high {high:?}, truth {}",
        e2 - e1
    );
    assert!(
        close(all.total_j, e2 - e0, 0.05),
        "all {all:?}, truth {}",
        e2 - e0
    );
    assert!(high.total_j > 2.0 * low.total_j, "{low:?} {high:?}");
    assert_eq!(low.components[0].name, "package-0");
    assert_eq!(low.components[0].kind, "measured");
    assert!(all.duration_s > 0.55 && all.edp_js > 0.0);

    assert_eq!(
        monitor.begin("all").and_then(|_| monitor.begin("all")),
        Err(RegionError::AlreadyOpen("all".into()))
    );
    assert_eq!(
        monitor.end("never").unwrap_err(),
        RegionError::NotOpen("never".into())
    );
    assert_eq!(monitor.begin("").unwrap_err(), RegionError::EmptyName);

    let (summary, outcome) = monitor.finish(None);
    rapl.stop();
    let names: Vec<&str> = summary.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["low", "high", "all"]);
    assert_eq!(summary.regions_left_open, ["all"]);
    assert!(
        close(summary.total_j, rapl.energy_j("intel-rapl:0"), 0.05),
        "{summary:?}"
    );
    assert!(outcome.unwrap().failed.is_none());
    // What `end` returned is what the summary lists: one fold, one number.
    for (r, m) in summary.regions.iter().zip([&low, &high]) {
        assert_eq!(r.energy_j, m.total_j, "{r:?} vs {m:?}");
    }
    // And the replay of the profile is the live summary, exactly (less the live-only
    // attribution, which is there).
    let replay = ea2p::report::read_profile(&profile, &Default::default()).unwrap();
    assert!(summary.components[0].attributed.is_some(), "{summary:?}");
    assert_eq!(replay.summary, summary.replayable());

    // Every boundary is in the profile, begin and end with the same region id.
    let bytes = std::fs::read(&profile).unwrap();
    let markers: Vec<_> = Decoder::new(&bytes)
        .filter_map(|r| match r {
            Ok(Record::Marker(m)) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(markers.len(), 7, "{markers:?}");
    let low_begin = markers.iter().find(|m| m.name.as_str() == "low").unwrap();
    assert_eq!(low_begin.kind, MarkerKind::Begin);
    assert_eq!(
        low_begin.parent,
        Some(markers[0].region),
        "low nests in all"
    );
    let low_end = markers
        .iter()
        .find(|m| m.region == low_begin.region && m.kind == MarkerKind::End)
        .unwrap();
    assert!(low_end.t_ns > low_begin.t_ns);
}

#[test]
fn regions_from_the_fifo_of_ea2p_run() {
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", 20.0)]);
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("s.json");
    let script = r#"
        echo "begin warmup" > "$EA2P_REGIONS"
        sleep 0.2
        echo "end warmup" > "$EA2P_REGIONS"
        echo "begin train" > "$EA2P_REGIONS"
        sleep 0.4
        printf 'end train\nnonsense\nend nothing\n' > "$EA2P_REGIONS"
    "#;
    let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .args(["run", "--allow-root", "--devices", "cpu", "--json"])
        .arg(&json)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    rapl.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("line 5 ignored: expected `begin NAME`"),
        "{stderr}"
    );
    assert!(stderr.contains("\"nothing\" is not open"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let regions = v["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 2, "{v}");
    for (r, name) in regions.iter().zip(["warmup", "train"]) {
        assert_eq!(r["name"], name);
        let d = r["end_s"].as_f64().unwrap() - r["start_s"].as_f64().unwrap();
        let e = r["energy_j"].as_f64().unwrap();
        // A shell's echo is not instantaneous: compare with 20 W x the region's own duration.
        assert!(close(e, 20.0 * d, 0.08), "{name}: {e} J over {d} s: {v}");
    }
}
