//! `ea2p run` end to end against a fake powercap tree whose package counter a helper thread
//! advances at a known power, wrapping during the run.

use std::fs;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WATTS: f64 = 20.0;
const MAX_UJ: u64 = 2_999_999; // wraps every 150 ms at 20 W

#[test]
fn measures_a_known_power_through_wraps_and_passes_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let zone = tmp.path().join("class/powercap/intel-rapl:0");
    fs::create_dir_all(&zone).unwrap();
    fs::write(zone.join("name"), "package-0\n").unwrap();
    fs::write(zone.join("max_energy_range_uj"), format!("{MAX_UJ}\n")).unwrap();
    fs::write(zone.join("constraint_0_power_limit_uw"), "65000000\n").unwrap();
    let energy = zone.join("energy_uj");
    fs::write(&energy, format!("{:>12}\n", 0)).unwrap();

    // The fake hardware: energy_uj = 20 W x elapsed, modulo max + 1, updated every millisecond,
    // rewritten in place (one fixed-width pwrite, like sysfs: same inode, never half-written).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, energy) = (Arc::clone(&stop), energy.clone());
        std::thread::spawn(move || {
            use std::os::unix::fs::FileExt;
            let file = fs::OpenOptions::new().write(true).open(&energy).unwrap();
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let uj = (t0.elapsed().as_secs_f64() * WATTS * 1e6) as u64 % (MAX_UJ + 1);
                file.write_at(format!("{uj:>12}\n").as_bytes(), 0).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let json = tmp.path().join("summary.json");
    let profile = tmp.path().join("run.ea2p");
    let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .env("EA2P_SYSFS_ROOT", tmp.path())
        .args([
            "run",
            "--allow-root",
            "--devices",
            "cpu",
            "--interval",
            "1ms",
        ])
        .arg("--json")
        .arg(&json)
        .arg("-o")
        .arg(&profile)
        .args(["--", "sh", "-c", "sleep 0.6; exit 3"])
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");

    let v: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["exit_code"], 3);
    let pkg = &v["components"][0];
    assert_eq!(pkg["name"], "package-0", "{v}");
    assert_eq!(pkg["kind"], "measured");
    let avg = pkg["avg_w"].as_f64().unwrap();
    assert!(
        (avg - WATTS).abs() < 0.15 * WATTS,
        "average {avg} W, expected ~{WATTS} W: {v}"
    );
    let e = pkg["energy_j"].as_f64().unwrap();
    assert!(e > 0.5 * WATTS * 0.6 && e < 1.5 * WATTS * 0.6, "{e} J: {v}");
    for key in ["duration_s", "total_j", "edp_js", "regions"] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }

    // The profile reads back.
    let report = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .args(["report"])
        .arg(&profile)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.status.success() && text.contains("package-0"),
        "{text}"
    );
    assert!(text.contains("ended normally"), "{text}");
}

#[test]
fn clear_errors_for_bad_input() {
    let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .args(["run", "--interval", "fast", "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a duration"));

    let tmp = tempfile::tempdir().unwrap();
    let bogus = tmp.path().join("x.ea2p");
    fs::write(&bogus, b"hello world").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .arg("report")
        .arg(&bogus)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a readable ea2p profile"));
}

/// SIGINT to ea2p (no terminal): forwarded to the command, the summary is still printed and the
/// exit code is 128 + SIGINT.
#[test]
fn sigint_is_forwarded_and_the_summary_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .env("EA2P_SYSFS_ROOT", tmp.path())
        .args([
            "run",
            "--allow-root",
            "--devices",
            "cpu",
            "--",
            "sleep",
            "30",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the command was not stopped"
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("cpu") && stderr.contains("estimated"),
        "{stderr}"
    );
    assert!(stderr.contains("RAPL: not available"), "{stderr}");
}
