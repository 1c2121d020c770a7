//! `ea2p report` on profiles written by `ea2p run` around a fake powercap tree: regions at their
//! exact boundaries, JSON/CSV/SVG outputs, and damaged or cut files.

use std::fs;
use std::path::Path;
use std::process::Command;

use ea2p_core::format::{
    encode, End, ExitStatus, Header, HostInfo, Marker, MarkerKind, Record, Sample, SampleFlags,
    SourceDecl, MAGIC, MAX_FRAME_LEN, VERSION,
};
use ea2p_core::source::{truncated, Component, Provenance, Quantity, RawReading, SourceInfo};
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
    }
    // The report is the run's own summary, exactly: the same fold over the same records
    // (apart from the live-only attribution: the profile does not hold the CPU-time counters).
    let mut run = run.clone();
    for c in run["components"].as_array_mut().unwrap() {
        assert!(
            c.as_object_mut().unwrap().remove("attributed").is_some(),
            "{c}"
        );
    }
    for g in run["regions"].as_array_mut().unwrap() {
        assert!(
            g.as_object_mut().unwrap().remove("attributed_j").is_some(),
            "{g}"
        );
    }
    for key in [
        "duration_s",
        "total_j",
        "edp_js",
        "co2_g",
        "exit_code",
        "components",
        "regions",
        "regions_not_listed",
        "regions_left_open",
    ] {
        assert_eq!(r[key], run[key], "{key}: report {r} run {run}");
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

/// Regression: sources declared out of id order (5, then 2) once had their region energies
/// swapped (a region of 50.5 J reported as 100.0 J).
#[test]
fn sources_declared_out_of_id_order_get_their_own_region_energy() {
    const MS: u64 = 1_000_000;
    let mut file = Vec::new();
    let mut buf = [0u8; MAX_FRAME_LEN];
    let mut put = |r: Record| {
        let n = encode(&r, &mut buf).unwrap();
        file.extend_from_slice(&buf[..n]);
    };
    put(Record::Header(Header {
        magic: MAGIC,
        version: VERSION,
        host: HostInfo {
            hostname: truncated("h"),
            os: truncated("Linux"),
            cpu_model: truncated("cpu"),
            logical_cpus: 1,
            memory_bytes: 1 << 30,
        },
        start_unix_ns: 0,
        monotonic_origin_ns: 0,
        interval_ns: 10 * MS,
        ea2p_version: truncated("test"),
        command: truncated("hand-made"),
        rank: None,
        world_size: None,
    }));
    let info = |component, name: &str| SourceInfo {
        component,
        index: 0,
        provenance: Provenance::Measured,
        quantity: Quantity::EnergyCounter {
            joules_per_tick: 1e-6,
            max_ticks: Some(u64::MAX),
        },
        update_period_ns: MS,
        max_power_w: Some(500.0),
        name: truncated(name),
    };
    put(Record::Source(SourceDecl {
        id: 5,
        info: info(Component::CpuPackage, "package"),
    }));
    put(Record::Source(SourceDecl {
        id: 2,
        info: info(Component::Dram, "dram"),
    }));
    for i in 0..=100u64 {
        let t = i * 10 * MS;
        for (id, watts) in [(5u16, 100.0), (2, 1.0)] {
            let e = watts * (i as f64) * 0.01;
            put(Record::Sample(Sample {
                source: id,
                t_ns: t,
                raw: RawReading::Counter((e * 1e6) as u64),
                energy_j: e,
                power_w: watts as f32,
                flags: SampleFlags(0),
            }));
        }
        for (at, kind) in [(25, MarkerKind::Begin), (75, MarkerKind::End)] {
            if i == at {
                put(Record::Marker(Marker {
                    region: 0,
                    kind,
                    t_ns: t,
                    name: truncated("half"),
                    parent: None,
                }));
            }
        }
    }
    put(Record::End(End {
        t_ns: 1000 * MS,
        exit: ExitStatus::Code(0),
    }));
    let tmp = tempfile::tempdir().unwrap();
    let (p, j) = (tmp.path().join("o.ea2p"), tmp.path().join("o.json"));
    fs::write(&p, &file).unwrap();
    let out = ea2p()
        .arg("report")
        .arg(&p)
        .arg("--json")
        .arg(&j)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&j);
    let e = r["regions"][0]["energy_j"].as_f64().unwrap();
    assert!((e - 50.5).abs() < 1e-9, "{r}");
    assert_eq!(r["components"][0]["name"], "package-0");
    assert!((r["components"][0]["energy_j"].as_f64().unwrap() - 100.0).abs() < 1e-9);
    assert!((r["components"][1]["energy_j"].as_f64().unwrap() - 1.0).abs() < 1e-9);
}

/// A profile of a newer format version is refused with a message that names both versions.
#[test]
fn a_newer_format_version_is_refused_clearly() {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let h = Record::Header(Header {
        magic: MAGIC,
        version: VERSION + 1,
        host: HostInfo {
            hostname: truncated("h"),
            os: truncated("Linux"),
            cpu_model: truncated("cpu"),
            logical_cpus: 1,
            memory_bytes: 1,
        },
        start_unix_ns: 0,
        monotonic_origin_ns: 0,
        interval_ns: 1,
        ea2p_version: truncated("future"),
        command: truncated("x"),
        rank: None,
        world_size: None,
    });
    let n = encode(&h, &mut buf).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("new.ea2p");
    fs::write(&p, &buf[..n]).unwrap();
    let out = ea2p().arg("report").arg(&p).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("format version {}", VERSION + 1)) && err.contains("versions 1 to"),
        "{err}"
    );
}
