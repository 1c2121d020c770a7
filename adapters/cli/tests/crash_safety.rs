//! What `ea2p run` keeps when things go wrong: killed with SIGKILL at random moments, an output
//! that cannot be written (before the start, or mid-run: a full disk), a source that fails
//! mid-run; and the machines it meets: two sockets with psys and an mmio duplicate, no /sys at
//! all, an unreadable energy_uj, a command that forks.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ea2p_core::format::{Decoder, Record, SkipReason};
use ea2p_tests::{FakeRapl, ZoneSpec};
use rand::{Rng, SeedableRng};

fn ea2p() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ea2p"))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// SIGKILL at 10 seeded random moments: every file decodes up to its last complete frame (at
/// most a partial tail is lost) and `ea2p report` says the run was cut.
#[test]
fn sigkill_at_random_moments_loses_at_most_the_last_frame() {
    let rapl = FakeRapl::two_sockets(30.0, 10.0, 5.0, 4.0, 60.0);
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(2026);
    for round in 0..10 {
        let profile = tmp.path().join(format!("k{round}.ea2p"));
        let mut child = ea2p()
            .env("EA2P_SYSFS_ROOT", rapl.root())
            .args(["run", "--allow-root", "--devices", "cpu,ram", "-o"])
            .arg(&profile)
            .args(["--", "sleep", "29.123"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = rng.random_range(30..600);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The orphaned command: only ours has this odd duration.
        let _ = Command::new("pkill").args(["-f", "sleep 29.123"]).status();

        let bytes = fs::read(&profile).unwrap();
        let items: Vec<_> = Decoder::new(&bytes).collect();
        let bad: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert!(bad.len() <= 1, "round {round} ({delay} ms): {bad:?}");
        if let Some(s) = bad.first() {
            assert_eq!(s.reason, SkipReason::TruncatedTail, "round {round}");
            assert_eq!(s.offset + s.len, bytes.len() as u64, "only the tail");
        }
        let samples = items
            .iter()
            .filter(|i| matches!(i, Ok(Record::Sample(_))))
            .count();
        assert!(
            samples > 0 || delay < 60,
            "round {round}: {delay} ms, no sample"
        );
        assert!(!items.iter().any(|i| matches!(i, Ok(Record::End(_)))));

        let out = ea2p().arg("report").arg(&profile).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "round {round}: {text}");
        assert!(
            text.contains("no end record: the run was cut"),
            "round {round}: {text}"
        );
    }
}

/// An output that cannot be created: a clear error before the command starts.
#[test]
fn unwritable_output_fails_before_the_command_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran");
    let out = ea2p()
        .env("EA2P_SYSFS_ROOT", tmp.path())
        .args(["run", "--allow-root", "--devices", "cpu", "-o"])
        .arg(tmp.path().join("no/such/dir/p.ea2p"))
        .args(["--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot create the profile"), "{stderr}");
    assert!(stderr.contains("no/such/dir/p.ea2p"), "{stderr}");
    assert!(!marker.exists(), "the command must not have run");
}

/// A full disk mid-run (/dev/full: every write fails with ENOSPC): the measurement goes on, the
/// summary is printed and says what was not written, the command's exit code wins.
#[test]
fn a_full_disk_keeps_measuring_and_says_what_was_not_written() {
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", 20.0)]);
    let tmp = tempfile::tempdir().unwrap();
    let summary = tmp.path().join("s.json");
    let out = ea2p()
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .args([
            "run",
            "--allow-root",
            "--devices",
            "cpu",
            "-o",
            "/dev/full",
            "--json",
        ])
        .arg(&summary)
        .args(["--", "sh", "-c", "sleep 0.4; exit 9"])
        .output()
        .unwrap();
    rapl.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{stderr}");
    assert!(
        stderr.contains("is incomplete: writing stopped after"),
        "{stderr}"
    );
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let v = json(&summary);
    let avg = v["components"][0]["avg_w"].as_f64().unwrap();
    assert!((avg - 20.0).abs() < 3.0, "{v}");
}

/// A zone that fails mid-run: a gap in its series, in the file and the report, while the other
/// zones carry on.
#[test]
fn a_source_failing_mid_run_is_a_gap_and_the_others_carry_on() {
    let rapl = FakeRapl::start(vec![
        ZoneSpec::new("intel-rapl:0", "package-0", 20.0),
        ZoneSpec::new("intel-rapl:1", "package-1", 10.0),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("g.ea2p");
    let summary = tmp.path().join("s.json");
    let child = ea2p()
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .args(["run", "--allow-root", "--devices", "cpu", "-o"])
        .arg(&profile)
        .arg("--json")
        .arg(&summary)
        .args(["--", "sleep", "1"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    rapl.set_broken("intel-rapl:1", true);
    std::thread::sleep(Duration::from_millis(300));
    rapl.set_broken("intel-rapl:1", false);
    let out = child.wait_with_output().unwrap();
    rapl.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("readings not used, marked as gaps"),
        "{stderr}"
    );
    assert!(
        stderr.contains("package-1!"),
        "the component is marked: {stderr}"
    );

    let v = json(&summary);
    let comps = v["components"].as_array().unwrap();
    assert_eq!(comps[0]["read_errors"], 0, "{v}");
    assert!(comps[1]["read_errors"].as_u64().unwrap() > 100, "{v}");
    assert_eq!(
        comps[1]["anomalies"]["read-error-malformed"]["count"], comps[1]["read_errors"],
        "{v}"
    );
    assert!(
        comps[1]["without_readings_s"].as_f64().unwrap() > 0.2,
        "{v}"
    );
    // package-0 carried on: its energy is 20 W x the run.
    let e0 = comps[0]["energy_j"].as_f64().unwrap();
    let d = v["duration_s"].as_f64().unwrap();
    assert!((e0 - 20.0 * d).abs() < 0.1 * 20.0 * d, "{v}");
    // package-1's counter kept counting during the gap: the energy across it is not lost.
    let e1 = comps[1]["energy_j"].as_f64().unwrap();
    assert!((e1 - 10.0 * d).abs() < 0.1 * 10.0 * d, "{v}");

    let rj = tmp.path().join("r.json");
    let out = ea2p()
        .arg("report")
        .arg(&profile)
        .arg("--json")
        .arg(&rj)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("package-1: 1 gap(s)"), "{text}");
    let r = json(&rj);
    let g = &r["lost"]["gaps"][0];
    assert_eq!(g["name"], "package-1");
    let s = g["without_readings_s"].as_f64().unwrap();
    assert!((0.2..0.45).contains(&s), "{r}");
    assert!(
        g["reasons"][0].as_str().unwrap().contains("malformed"),
        "{r}"
    );
}

/// Two sockets with core, uncore and dram subzones, psys and the mmio duplicate: discovery and
/// every component's energy against the truth; nested zones are not counted twice.
#[test]
fn two_sockets_psys_and_mmio() {
    let rapl = FakeRapl::two_sockets(40.0, 25.0, 5.0, 6.0, 100.0);
    let tmp = tempfile::tempdir().unwrap();
    let summary = tmp.path().join("s.json");
    let out = ea2p()
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .args(["run", "--allow-root", "--devices", "cpu,ram", "--json"])
        .arg(&summary)
        .args(["--", "sleep", "0.5"])
        .output()
        .unwrap();
    rapl.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&summary);
    let comps = v["components"].as_array().unwrap();
    let names: Vec<&str> = comps.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "package-0",
            "core-0",
            "uncore-0",
            "dram-0",
            "package-1",
            "core-1",
            "uncore-1",
            "dram-1",
            "psys"
        ]
    );
    let d = v["duration_s"].as_f64().unwrap();
    for (c, w) in comps
        .iter()
        .zip([40.0, 25.0, 5.0, 6.0, 40.0, 25.0, 5.0, 6.0, 100.0])
    {
        let e = c["energy_j"].as_f64().unwrap();
        assert!((e - w * d).abs() < 0.1 * w * d, "{c} vs {w} W x {d} s");
    }
    // Total = packages + dram; core, uncore and psys are nested.
    let total = v["total_j"].as_f64().unwrap();
    assert!((total - 92.0 * d).abs() < 0.1 * 92.0 * d, "{v}");
}

/// No /sys at all (a container): the models measure, the run succeeds and says why.
#[test]
fn missing_sys_uses_the_models() {
    let out = ea2p()
        .env("EA2P_SYSFS_ROOT", "/nonexistent-sysfs")
        .args([
            "run",
            "--allow-root",
            "--devices",
            "cpu,ram",
            "--",
            "sleep",
            "0.3",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("RAPL: not available"), "{stderr}");
    assert!(stderr.contains("perf: not available"), "{stderr}");
    assert!(stderr.contains("cpu         estimated"), "{stderr}");
    assert!(stderr.contains("ram         estimated"), "{stderr}");
}

/// An energy_uj readable only by root (kernel 5.10+): `ea2p sources` as an ordinary user names
/// CVE-2020-8694 and the commands that grant access, and `ea2p run` falls back to the model.
#[test]
fn unreadable_energy_uj_says_why_and_falls_back() {
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", 20.0)]);
    let energy = rapl.energy_file("intel-rapl:0");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&energy, fs::Permissions::from_mode(0o000)).unwrap();
    // As root the mode does not stop a read: drop to nobody (setpriv, util-linux). The fake
    // tree's writer keeps the fd it opened before the chmod.
    let as_user = |args: &[&str]| {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
            c.arg(env!("CARGO_BIN_EXE_ea2p"));
            c
        } else {
            ea2p()
        };
        c.env("EA2P_SYSFS_ROOT", rapl.root()).args(args);
        c.output().unwrap()
    };
    let out = as_user(&["sources"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("CVE-2020-8694"), "{text}");
    assert!(text.contains("chmod") || text.contains("udev"), "{text}");
    let out = as_user(&["run", "--devices", "cpu", "--", "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("cpu         estimated"), "{stderr}");
    rapl.stop();
}

/// A command that forks and waits for its children: the exit code passes through.
#[test]
fn a_forking_command_passes_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ea2p()
        .env("EA2P_SYSFS_ROOT", tmp.path())
        .args(["run", "--allow-root", "--devices", "cpu,ram", "--"])
        .args(["sh", "-c", "sleep 0.3 & (sleep 0.2; true) & wait; exit 5"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
