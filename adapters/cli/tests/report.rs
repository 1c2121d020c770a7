//! `ea2p report` on profiles written by `ea2p run` around a fake powercap tree: regions at their
//! exact boundaries, JSON/CSV/SVG outputs, and damaged or cut files.

use std::fs;
use std::path::Path;
use std::process::Command;

use ea2p_tests::{FakeRapl, ZoneSpec};

fn ea2p() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ea2p"))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Runs a script with two regions at 20 W; returns (profile, run summary).
fn profile_with_regions(rapl: &FakeRapl, dir: &Path) -> (std::path::PathBuf, serde_json::Value) {
    let profile = dir.join("run.ea2p");
    let summary = dir.join("run.json");
    let script = r#"
        echo "begin load" > "$EA2P_REGIONS"; sleep 0.2; echo "end load" > "$EA2P_REGIONS"
        echo "begin train" > "$EA2P_REGIONS"; sleep 0.4; echo "end train" > "$EA2P_REGIONS"
        exit 7
    "#;
    let out = ea2p()
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .args(["run", "--allow-root", "--devices", "cpu", "-o"])
        .arg(&profile)
        .arg("--json")
        .arg(&summary)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (profile, json(&summary))
}

#[test]
fn report_recomputes_regions_and_writes_json_csv_svg() {
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", 20.0)]);
    let tmp = tempfile::tempdir().unwrap();
    let (profile, run) = profile_with_regions(&rapl, tmp.path());
    rapl.stop();
    let (rj, csv, svg) = (
        tmp.path().join("r.json"),
        tmp.path().join("t.csv"),
        tmp.path().join("p.svg"),
    );
    let out = ea2p()
        .arg("report")
        .arg(&profile)
        .arg("--json")
        .arg(&rj)
        .arg("--csv")
        .arg(&csv)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("run ended normally (exit code 7)"), "{text}");
    assert!(text.contains("load") && text.contains("train"), "{text}");

    let r = json(&rj);
    assert_eq!(r["exit_code"], 7);
    assert_eq!(r["lost"]["cut"], false);
    assert_eq!(r["components"][0]["name"], "package-0");
    let (rt, et) = (
        r["total_j"].as_f64().unwrap(),
        run["total_j"].as_f64().unwrap(),
    );
    assert!(
        (rt - et).abs() < 1e-6 * et.max(1.0),
        "report {rt} J, run {et} J"
    );
    let regions = r["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 2, "{r}");
    for (reg, run_reg) in regions.iter().zip(run["regions"].as_array().unwrap()) {
        assert_eq!(reg["name"], run_reg["name"]);
        let d = reg["end_s"].as_f64().unwrap() - reg["start_s"].as_f64().unwrap();
        let e = reg["energy_j"].as_f64().unwrap();
        // Interpolated at the exact boundaries: 20 W x the region's duration, within 5 %.
        assert!((e - 20.0 * d).abs() < 0.05 * 20.0 * d, "{reg} ({d} s)");
        // And within one reading of the run's own (extrapolated) figure.
        let run_e = run_reg["energy_j"].as_f64().unwrap();
        assert!((e - run_e).abs() < 0.05 * run_e, "{reg} vs {run_reg}");
    }

    let csv_text = fs::read_to_string(&csv).unwrap();
    let mut lines = csv_text.lines();
    assert_eq!(lines.next(), Some("t_s,component,kind,power_w,energy_j"));
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() > 300, "{} rows", rows.len());
    assert!(rows.iter().all(|l| l.contains(",package-0,measured,")));
    let svg_text = fs::read_to_string(&svg).unwrap();
    assert!(
        svg_text.starts_with("<svg") && svg_text.contains("train"),
        "{}",
        &svg_text[..200.min(svg_text.len())]
    );
}

#[test]
fn damaged_and_cut_profiles_say_what_was_lost() {
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", 20.0)]);
    let tmp = tempfile::tempdir().unwrap();
    let (profile, _) = profile_with_regions(&rapl, tmp.path());
    rapl.stop();
    let bytes = fs::read(&profile).unwrap();

    // Damage 400 bytes in the middle: a stretch of readings is skipped, the rest still counts.
    let mut damaged = bytes.clone();
    let mid = damaged.len() / 2;
    for b in &mut damaged[mid..mid + 400] {
        *b ^= 0x5a;
    }
    let d = tmp.path().join("damaged.ea2p");
    fs::write(&d, &damaged).unwrap();
    let dj = tmp.path().join("d.json");
    let out = ea2p()
        .arg("report")
        .arg(&d)
        .arg("--json")
        .arg(&dj)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("damaged or partial stretch"), "{text}");
    let v = json(&dj);
    assert!(v["lost"]["damaged_stretches"].as_u64().unwrap() >= 1);
    let skipped_t = v["lost"]["skipped_time_s"].as_f64().unwrap();
    assert!(skipped_t > 0.0 && skipped_t < 0.2, "{v}");
    assert_eq!(v["lost"]["cut"], false);

    // Cut in the middle of a frame: no end record, figures up to the last intact reading.
    let c = tmp.path().join("cut.ea2p");
    fs::write(&c, &bytes[..bytes.len() * 2 / 3 + 5]).unwrap();
    let cj = tmp.path().join("c.json");
    let out = ea2p()
        .arg("report")
        .arg(&c)
        .arg("--json")
        .arg(&cj)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no end record: the run was cut at"), "{text}");
    let v = json(&cj);
    assert_eq!(v["lost"]["cut"], true);
    assert!(v["exit_code"].is_null());
    assert!(v["total_j"].as_f64().unwrap() > 0.0);
}
