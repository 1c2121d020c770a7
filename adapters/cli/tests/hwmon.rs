//! `ea2p run` and `ea2p sources` end to end against a fake hwmon tree: an INA3221 board input rail
//! (`VDD_IN`, 5000 mV x 1200 mA = 6 W), an INA226 `power1_input` of 2.5 W, and an `amd_energy`
//! socket counter that a helper thread advances at 30 W (its value computed from the time, as the
//! hardware's is).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const VDD_IN_W: f64 = 5.0 * 1.2;
const INA226_W: f64 = 2.5;
const SOCKET_W: f64 = 30.0;

/// The fake tree; the counter advances until [`Fake::stop`].
struct Fake {
    root: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    writer: Option<JoinHandle<()>>,
}

impl Fake {
    fn new() -> Fake {
        let root = tempfile::tempdir().unwrap();
        let dev = |n: u32, name: &str, files: &[(&str, &str)]| {
            let dir = root.path().join(format!("class/hwmon/hwmon{n}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("name"), format!("{name}\n")).unwrap();
            for (f, t) in files {
                fs::write(dir.join(f), t).unwrap();
            }
            dir
        };
        dev(
            0,
            "ina3221",
            &[
                ("in1_label", "VDD_IN\n"),
                ("in1_input", "5000\n"),
                ("curr1_input", "1200\n"),
            ],
        );
        dev(1, "ina226", &[("power1_input", "2500000\n")]);
        let amd = dev(
            2,
            "amd_energy",
            &[
                ("energy1_label", "Esocket0\n"),
                ("energy1_input", &format!("{:>20}\n", 0)),
            ],
        );
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (stop, file) = (Arc::clone(&stop), amd.join("energy1_input"));
            std::thread::spawn(move || {
                use std::os::unix::fs::FileExt;
                let f = fs::OpenOptions::new().write(true).open(&file).unwrap();
                let t0 = Instant::now();
                // Rewritten in place every millisecond: one fixed-width pwrite, never half-written.
                while !stop.load(Ordering::Relaxed) {
                    let uj = (t0.elapsed().as_secs_f64() * SOCKET_W * 1e6) as u64;
                    f.write_at(format!("{uj:>20}\n").as_bytes(), 0).unwrap();
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        Fake {
            root,
            stop,
            writer: Some(writer),
        }
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    fn ea2p(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ea2p"));
        c.arg("--sysfs-root").arg(self.path());
        c
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            w.join().unwrap();
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop();
    }
}

fn component<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no component {name}: {v}"))
}

#[test]
fn rails_and_counters_are_measured_within_3_percent() {
    let mut fake = Fake::new();
    let json = fake.path().join("run.json");
    let out = fake
        .ea2p()
        .args(["run", "--allow-root", "--json"])
        .arg(&json)
        .args(["--", "sleep", "3"])
        .output()
        .unwrap();
    fake.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let duration = v["duration_s"].as_f64().unwrap();
    assert!(duration >= 3.0, "{v}");
    for (name, watts) in [
        ("ina3221:VDD_IN", VDD_IN_W),
        ("ina226:power1", INA226_W),
        ("amd_energy:Esocket0", SOCKET_W),
    ] {
        let c = component(&v, name);
        assert_eq!(c["kind"], "measured", "{c}");
        assert_eq!(c["read_errors"], 0, "{c}");
        let e = c["energy_j"].as_f64().unwrap();
        let truth = watts * duration;
        eprintln!(
            "{name}: {e:.3} J measured, {truth:.3} J = {watts} W x {duration:.3} s ({:+.2} %)",
            100.0 * (e / truth - 1.0)
        );
        assert!(
            (e - truth).abs() < 0.03 * truth,
            "{name}: {e} J, expected {truth} J ({watts} W x {duration} s)"
        );
    }
    // The board input is a total: not added to the run's total, which sums the others.
    assert_eq!(component(&v, "ina3221:VDD_IN")["nested"], true);
    assert_eq!(component(&v, "ina226:power1")["nested"], false);
    let summed: f64 = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["nested"] == false)
        .map(|c| c["energy_j"].as_f64().unwrap())
        .sum();
    let total = v["total_j"].as_f64().unwrap();
    assert!((total - summed).abs() < 1e-6 * summed.max(1.0), "{v}");
    // The measured socket counter replaces the CPU model.
    assert!(
        !v["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "cpu"),
        "{v}"
    );
    // The table names the rails too, and says the board input is not summed.
    assert!(stderr.contains("ina226:power1"), "{stderr}");
    let vin_row = stderr
        .lines()
        .find(|l| l.starts_with("ina3221:VDD_IN"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(vin_row.ends_with("(not summed)"), "{stderr}");
}

#[test]
fn sources_lists_the_channels_and_devices_chooses() {
    let mut fake = Fake::new();
    let out = fake.ea2p().args(["sources", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = |name: &str| {
        v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {v}"))
            .clone()
    };
    for name in ["ina3221:VDD_IN", "ina226:power1", "amd_energy:Esocket0"] {
        assert_eq!(listed(name)["kind"], "measured");
    }
    assert_eq!(listed("ina3221:VDD_IN")["nested"], true);
    assert_eq!(listed("amd_energy:Esocket0")["reads"], "energy counter");
    let out = fake.ea2p().arg("sources").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("ina3221:VDD_IN"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("not added to the run's total"), "{text}");

    // --devices picks channels: the board input alone, by its name.
    let json = fake.path().join("vin.json");
    let out = fake
        .ea2p()
        .args([
            "run",
            "--allow-root",
            "--devices",
            "hwmon:ina3221:vdd_in",
            "--json",
        ])
        .arg(&json)
        .args(["--", "sleep", "0.2"])
        .output()
        .unwrap();
    fake.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let names: Vec<&str> = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ina3221:VDD_IN"], "{v}");
}
