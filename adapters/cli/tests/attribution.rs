//! The command's attributed share of a fake package zone, with real processes: busy shell loops
//! measured against a procfs root whose `stat` holds only the CPU time of the processes the
//! test controls (ea2p and its command, and an outside busy process when the test wants one),
//! so that the other work on the test machine does not move the shares. Every other entry of
//! that root is a link to the real `/proc`. A fake cgroup tree gives known usage rates.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ea2p_tests::{FakeRapl, ZoneSpec};

const WATTS: f64 = 40.0;

/// One test at a time: each runs busy loops, and on a small machine several at once would leave
/// each command so little CPU that ea2p's own sampling became a large part of the busy time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// User + system ticks of one real process itself (0 when gone): what `/proc/stat` counts.
fn ticks(pid: u32) -> u64 {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let rest: Vec<&str> = text[text.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    (11..13).map(|i| rest[i].parse::<u64>().unwrap_or(0)).sum()
}

/// Pids of `root` and its live descendants, in the real /proc.
fn tree(root: u32) -> Vec<u32> {
    let mut all = Vec::new();
    for e in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(t) = fs::read_to_string(e.path().join("stat")) {
            let ppid = t[t.rfind(')').unwrap() + 1..]
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(0);
            all.push((pid, ppid));
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(
            all.iter()
                .filter(|(c, pp)| *pp == p && *c != p)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    out
}

/// A procfs root: `stat` counts as busy only the trees of the pids in `watched` (ea2p, the
/// outside process), on `cpus` CPUs; everything else links to the real /proc.
struct FakeProc {
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    watched: Arc<[AtomicU32; 2]>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl FakeProc {
    fn start(cpus: u64) -> FakeProc {
        let dir = tempfile::tempdir().unwrap();
        for f in ["meminfo", "cpuinfo"] {
            std::os::unix::fs::symlink(format!("/proc/{f}"), dir.path().join(f)).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let watched: Arc<[AtomicU32; 2]> = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        let writer = {
            let (root, stop, watched) = (dir.path().to_path_buf(), stop.clone(), watched.clone());
            std::thread::spawn(move || {
                let t0 = Instant::now();
                // Ticks of processes that were watched and exited: busy time is never taken back.
                let mut seen: std::collections::BTreeMap<u32, u64> = Default::default();
                while !stop.load(Ordering::Relaxed) {
                    link_pids(&root);
                    for w in watched.iter() {
                        let pid = w.load(Ordering::Relaxed);
                        if pid != 0 {
                            for p in tree(pid) {
                                let t = ticks(p);
                                let e = seen.entry(p).or_insert(0);
                                *e = (*e).max(t);
                            }
                        }
                    }
                    let busy: u64 = seen.values().sum();
                    let all = (t0.elapsed().as_secs_f64() * 100.0 * cpus as f64) as u64;
                    let idle = all.saturating_sub(busy);
                    let tmp = root.join("stat.tmp");
                    fs::write(&tmp, format!("cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\n")).unwrap();
                    fs::rename(&tmp, root.join("stat")).unwrap();
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        while !dir.path().join("stat").exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
        FakeProc {
            dir,
            stop,
            watched,
            writer: Some(writer),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Links `/proc/PID` for every real pid not linked yet.
fn link_pids(root: &Path) {
    for e in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let name = e.file_name();
        if name
            .to_str()
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
        {
            let link = root.join(&name);
            if !link.exists() {
                let _ = std::os::unix::fs::symlink(e.path(), link);
            }
        }
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A busy loop outside ea2p, on CPU 0.
fn busy_loop() -> KillOnDrop {
    KillOnDrop(
        Command::new("taskset")
            .args(["-c", "0", "sh", "-c", "while :; do :; done"])
            .spawn()
            .unwrap(),
    )
}

/// Runs `ea2p run` under the fake roots with `args` and the command `cmd`; returns the JSON
/// summary's package component.
fn run(rapl: &Path, proc_: &FakeProc, args: &[&str], cmd: &[&str]) -> serde_json::Value {
    run_full(rapl, proc_, args, cmd, Some(124))["components"][0].clone()
}

/// Runs `ea2p run`, checks its exit code (`timeout` ends the busy loops: 124) and returns the
/// whole JSON summary.
fn run_full(
    rapl: &Path,
    proc_: &FakeProc,
    args: &[&str],
    cmd: &[&str],
    code: Option<i32>,
) -> serde_json::Value {
    let json: PathBuf = proc_.root().join("summary.json");
    let child = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .arg("--sysfs-root")
        .arg(rapl)
        .arg("--procfs-root")
        .arg(proc_.root())
        .args(["run", "--allow-root", "--devices", "cpu", "--cpu-tdp", "10"])
        .args(args)
        .arg("--json")
        .arg(&json)
        .arg("--")
        .args(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    proc_.watched[0].store(child.id(), Ordering::Relaxed);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), code, "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
    let pkg = v["components"][0].clone();
    assert_eq!(pkg["name"], "package-0", "{v}");
    assert!(stderr.contains("of which this command"), "{stderr}");
    assert!(pkg["attributed"]["kind"] == "attributed", "{v}");
    v
}

const BUSY_3S: [&str; 4] = ["timeout", "3", "sh", "-c"];

fn busy_cmd() -> Vec<&'static str> {
    let mut c = BUSY_3S.to_vec();
    c.push("while :; do :; done");
    c
}

fn share(pkg: &serde_json::Value) -> f64 {
    pkg["attributed"]["share"].as_f64().unwrap()
}

#[test]
fn alone_the_command_gets_nearly_all() {
    let _one = serial();
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", WATTS)]);
    let p = FakeProc::start(2);
    let pkg = run(rapl.root(), &p, &["--interval", "100ms"], &busy_cmd());
    // The rest is ea2p's own sampling: not the command's.
    assert!(share(&pkg) >= 0.9, "{pkg}");
    assert!(share(&pkg) <= 1.0, "{pkg}");
}

#[test]
fn an_outside_busy_process_takes_about_half() {
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", WATTS)]);
    let _one = serial();
    let p = FakeProc::start(2);
    // Both loops on CPU 0: the scheduler splits that CPU evenly between them whatever else the
    // test machine runs (this root's online CPUs are unknown, so no allocation applies).
    let outside = busy_loop();
    p.watched[1].store(outside.0.id(), Ordering::Relaxed);
    let before = ticks(outside.0.id());
    let mut cmd = vec!["taskset", "-c", "0"];
    cmd.extend(busy_cmd());
    let pkg = run(rapl.root(), &p, &["--interval", "100ms"], &cmd);
    let outside_ticks = ticks(outside.0.id()) - before;
    drop(outside);
    let s = share(&pkg);
    assert!(
        (0.4..=0.6).contains(&s),
        "share {s} (outside process: {outside_ticks} ticks): {pkg}"
    );
    // The idle part and the dynamic part both went by CPU time.
    let a = &pkg["attributed"];
    assert_eq!(a["idle_basis"], "cpu-time", "{pkg}");
    let idle_share = a["command_idle_j"].as_f64().unwrap() / a["idle_j"].as_f64().unwrap();
    assert!((0.4..=0.6).contains(&idle_share), "{pkg}");
}

#[test]
fn pinned_to_one_of_two_cpus_gets_all_dynamic_and_half_the_idle() {
    let _one = serial();
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", WATTS)]);
    let online = rapl.root().join("devices/system/cpu");
    fs::create_dir_all(&online).unwrap();
    fs::write(online.join("online"), "0-1\n").unwrap();
    let p = FakeProc::start(2);
    let mut cmd = vec!["taskset", "-c", "0"];
    cmd.extend(busy_cmd());
    let pkg = run(rapl.root(), &p, &["--interval", "100ms"], &cmd);
    let a = &pkg["attributed"];
    assert_eq!(a["idle_basis"], "allocation", "{pkg}");
    let f = |k: &str| a[k].as_f64().unwrap();
    assert!(f("idle_j") > 0.0, "{pkg}");
    assert!(
        (f("command_idle_j") / f("idle_j") - 0.5).abs() < 1e-9,
        "{pkg}"
    );
    assert!(f("command_dynamic_j") / f("dynamic_j") >= 0.9, "{pkg}");
}

#[test]
fn a_cgroup_at_known_rates_gets_its_share_and_a_missing_one_falls_back() {
    let _one = serial();
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", WATTS)]);
    let cg = rapl.root().join("fs/cgroup");
    fs::create_dir_all(cg.join("job_7")).unwrap();
    fs::write(cg.join("cgroup.controllers"), "cpu memory\n").unwrap();
    fs::write(cg.join("job_7/memory.current"), "1000\n").unwrap();
    let proc_ = tempfile::tempdir().unwrap();
    for f in ["meminfo", "cpuinfo"] {
        std::os::unix::fs::symlink(format!("/proc/{f}"), proc_.path().join(f)).unwrap();
    }
    // The machine busy at 1.5 CPUs of 2, the group at 0.6 CPU: 40 %.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, stat, cpu) = (stop.clone(), proc_.path().join("stat"), cg.join("job_7"));
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let s = t0.elapsed().as_secs_f64();
                let busy = (s * 150.0) as u64;
                let idle = (s * 50.0) as u64;
                fs::write(
                    stat.with_extension("tmp"),
                    format!("cpu  {busy} 0 0 {idle} 0 0 0 0\n"),
                )
                .unwrap();
                fs::rename(stat.with_extension("tmp"), &stat).unwrap();
                let usec = (s * 0.6e6) as u64;
                fs::write(
                    cpu.join("tmp"),
                    format!("usage_usec {usec}\nuser_usec {usec}\n"),
                )
                .unwrap();
                fs::rename(cpu.join("tmp"), cpu.join("cpu.stat")).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    while !cg.join("job_7/cpu.stat").exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let run = |attribute: &str| {
        let json = proc_.path().join("s.json");
        let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
            .arg("--sysfs-root")
            .arg(rapl.root())
            .arg("--procfs-root")
            .arg(proc_.path())
            .args([
                "run",
                "--allow-root",
                "--devices",
                "cpu",
                "--attribute",
                attribute,
            ])
            .arg("--json")
            .arg(&json)
            .args(["--", "sleep", "2"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&json).unwrap()).unwrap();
        (v, stderr)
    };
    let (v, _) = run("cgroup:/job_7");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let s = v["components"][0]["attributed"]["share"]
        .as_f64()
        .unwrap_or_else(|| panic!("{v}"));
    assert!((s - 0.4).abs() <= 0.02, "share {s}: {v}");
    assert_eq!(v["attribution"]["of"], "cgroup /job_7", "{v}");
    // A group without cpu.stat: said, and the process tree used instead.
    let (v, stderr) = run("cgroup:/nothing");
    assert!(stderr.contains("cpu controller"), "{stderr}");
    assert!(stderr.contains("process tree instead"), "{stderr}");
    assert_eq!(v["attribution"]["of"], "process tree", "{v}");
}

#[test]
fn a_region_gets_the_share_of_its_own_intervals() {
    let _one = serial();
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", WATTS)]);
    let p = FakeProc::start(2);
    // Busy for 2 s inside the region, then 1 s asleep outside it (on a machine where nothing
    // else runs, the idle power of that second still goes to the command: it is alone).
    let script = "echo begin busy > \"$EA2P_REGIONS\"; timeout 2 sh -c 'while :; do :; done'; \
                  echo end busy > \"$EA2P_REGIONS\"; sleep 1";
    let v = run_full(
        rapl.root(),
        &p,
        &["--interval", "100ms"],
        &["sh", "-c", script],
        Some(0),
    );
    let r = &v["regions"][0];
    assert_eq!(r["name"], "busy", "{v}");
    let share = r["attributed_j"].as_f64().unwrap() / r["energy_j"].as_f64().unwrap();
    assert!((0.85..=1.0).contains(&share), "region share {share}: {v}");
    // The region's part is within the run's attributed energy.
    let run_j = v["components"][0]["attributed"]["energy_j"]
        .as_f64()
        .unwrap();
    assert!(r["attributed_j"].as_f64().unwrap() <= run_j, "{v}");
}

/// Without GPUs, `ea2p run` says so in one short line (none when `--devices` asked for no GPU);
/// `ea2p sources` keeps the vendors' explanations.
#[test]
fn no_gpu_is_one_short_line() {
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", WATTS)]);
    let gpu_lines = |devices: &str| -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
            .arg("--sysfs-root")
            .arg(rapl.root())
            .args(["run", "--allow-root", "--devices", devices, "--", "true"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains("GPU") || l.contains("NVIDIA") || l.contains("AMD"))
            .map(str::to_string)
            .collect()
    };
    let sources = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .arg("--sysfs-root")
        .arg(rapl.root())
        .args(["sources", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&sources.stdout).unwrap();
    let has_gpu = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"].as_str().is_some_and(|n| n.starts_with("gpu")));
    if has_gpu {
        return; // A machine with a GPU measures it; nothing to shorten.
    }
    let lines = gpu_lines("cpu,gpu");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].len() < 80 && lines[0].contains("ea2p sources"),
        "{lines:?}"
    );
    assert!(gpu_lines("cpu").is_empty());
    // `ea2p sources` still explains each vendor.
    let text = v.to_string();
    assert!(text.contains("NVIDIA") && text.contains("AMD"), "{text}");
}
