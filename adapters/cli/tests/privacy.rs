//! Readings are sensitive (CVE-2020-8694): the files ea2p writes are 0600 whatever the umask and
//! belong to the sudo user under sudo; `ea2p report` warns about a readable profile; the exporter
//! changes its values once per export interval and can require a bearer token.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ea2p_tests::{FakeRapl, ZoneSpec};

const WATTS: f64 = 30.0;

fn rapl() -> FakeRapl {
    FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", WATTS)])
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `ea2p ARGS` under umask 022 (the usual one, which makes plain files 0644).
fn ea2p_umask_022(rapl: &FakeRapl, args: &[&str], paths: &[&Path], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_ea2p"))
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .args(args)
        .args(paths);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `ea2p run -o P --json J --csv C -- true` with those paths, under umask 022.
fn run_with_outputs(rapl: &FakeRapl, dir: &Path, env: &[(&str, &str)]) -> (Output, [PathBuf; 3]) {
    let files = ["run.ea2p", "run.json", "run.csv"].map(|f| dir.join(f));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_ea2p"))
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .args(["run", "--allow-root", "--devices", "cpu", "-o"])
        .arg(&files[0])
        .arg("--json")
        .arg(&files[1])
        .arg("--csv")
        .arg(&files[2])
        .args(["--", "sleep", "0.1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.output().unwrap(), files)
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn outputs_are_0600_under_umask_022_and_an_existing_file_is_narrowed() {
    let rapl = rapl();
    let tmp = tempfile::tempdir().unwrap();
    // A summary left by an earlier run, 0644 as File::create under umask 022 made it.
    let old = tmp.path().join("run.json");
    fs::write(&old, "{}").unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).unwrap();
    let (out, files) = run_with_outputs(&rapl, tmp.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        assert!(fs::metadata(f).unwrap().len() > 0, "{}", f.display());
    }
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&files[1]).unwrap()).unwrap();
    assert!(v["components"].is_array(), "rewritten, not appended: {v}");

    // What `ea2p report` makes from the profile, and `ea2p merge --json`.
    let made = ["r.json", "r.csv", "r.svg", "m.json"].map(|f| tmp.path().join(f));
    let out = ea2p_umask_022(
        &rapl,
        &["report"],
        &[
            &files[0],
            Path::new("--json"),
            &made[0],
            Path::new("--csv"),
            &made[1],
            Path::new("--plot"),
            &made[2],
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ea2p_umask_022(
        &rapl,
        &["merge"],
        &[&files[0], Path::new("--json"), &made[3]],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in &made {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert!(fs::read_to_string(&made[2]).unwrap().contains("<svg"));
    rapl.stop();
}

#[test]
fn under_sudo_the_files_belong_to_the_sudo_user() {
    if !is_root() {
        eprintln!("skipped: handing files over needs root");
        return;
    }
    let rapl = rapl();
    let tmp = tempfile::tempdir().unwrap();
    let (out, files) = run_with_outputs(
        &rapl,
        tmp.path(),
        &[("SUDO_UID", "65534"), ("SUDO_GID", "65533")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in &files {
        let m = fs::metadata(f).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65533), "{}", f.display());
        assert_eq!(m.mode() & 0o7777, 0o600, "{}", f.display());
    }
    // The same run again: the files are the sudo user's own, so they are rewritten.
    let (out, _) = run_with_outputs(
        &rapl,
        tmp.path(),
        &[("SUDO_UID", "65534"), ("SUDO_GID", "65533")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Another user's file is not overwritten, nor given away, and the command never starts.
    let theirs = tmp.path().join("theirs.ea2p");
    fs::write(&theirs, "their data").unwrap();
    std::os::unix::fs::chown(&theirs, Some(4242), Some(4242)).unwrap();
    let marker = tmp.path().join("ran");
    let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65533")
        .args(["run", "--allow-root", "--devices", "cpu", "-o"])
        .arg(&theirs)
        .args(["--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("belongs to uid 4242"), "{stderr}");
    assert_eq!(fs::read_to_string(&theirs).unwrap(), "their data");
    assert_eq!(fs::metadata(&theirs).unwrap().uid(), 4242);
    assert!(!marker.exists(), "the command ran");
    rapl.stop();
}

#[test]
fn a_symlink_to_a_file_is_refused_as_an_output() {
    let rapl = rapl();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("precious");
    fs::write(&target, "keep").unwrap();
    let link = tmp.path().join("run.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let marker = tmp.path().join("ran");
    for flag in ["-o", "--json"] {
        let out = ea2p_umask_022(
            &rapl,
            &["run", "--allow-root", "--devices", "cpu", flag],
            &[&link, Path::new("--"), Path::new("touch"), &marker],
            &[],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains("symbolic link"), "{flag}: {stderr}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        assert!(
            !marker.exists(),
            "{flag}: refused only after the command ran"
        );
    }

    // `--json /dev/stdout > F`: the link leads to ea2p's own output, which the caller opened.
    let redirected = tmp.path().join("stdout.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .args([
            "run",
            "--allow-root",
            "--devices",
            "cpu",
            "--json",
            "/dev/stdout",
        ])
        .args(["--", "true"])
        .stdout(fs::File::create(&redirected).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&redirected).unwrap()).unwrap();
    assert!(v["components"].is_array(), "{v}");
    rapl.stop();
}

#[test]
fn report_warns_about_a_profile_others_can_read() {
    let rapl = rapl();
    let tmp = tempfile::tempdir().unwrap();
    let (out, files) = run_with_outputs(&rapl, tmp.path(), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = |p: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
            .arg("report")
            .arg(p)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(report(&files[0]), "", "a private profile: no warning");
    fs::set_permissions(&files[0], fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = report(&files[0]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("readable by every user")
            && stderr.contains("CVE-2020-8694")
            && stderr.contains(&format!("chmod 600 {}", files[0].display())),
        "{stderr}"
    );
    rapl.stop();
}

struct Serve {
    child: Child,
    port: u16,
    /// What ea2p printed before it served.
    stderr: Vec<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ea2p serve --prometheus 127.0.0.1:0 EXTRA` on the fake tree, once it serves.
fn serve(rapl: &FakeRapl, addr: &str, extra: &[&str]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .args(["serve", "--devices", "cpu", "--prometheus", addr])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = Vec::new();
    let port = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("ea2p serve exited: {stderr:?}"))
            .unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            let addr = rest.trim_end_matches("/metrics");
            break addr.rsplit(':').next().unwrap().parse().unwrap();
        }
        stderr.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    Serve {
        child,
        port,
        stderr,
    }
}

/// The first /metrics body that has the package's series (the sampler's first reading comes
/// milliseconds after the exporter starts).
fn first_metrics(port: u16, authorization: Option<&str>) -> (u16, String) {
    let started = Instant::now();
    loop {
        let (status, body) = get(port, "/metrics", authorization);
        if status != 200
            || body.contains("ea2p_energy_joules_total{component=\"package-0\"")
            || started.elapsed() > Duration::from_secs(5)
        {
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// GET `path` with an optional `Authorization` value: status and body.
fn get(port: u16, path: &str, authorization: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// The package total, and the snapshot's measuring time, in a /metrics body.
fn package_total(body: &str) -> (String, f64) {
    let value = |prefix: &str| {
        body.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {body}"))
            .split(' ')
            .nth(1)
            .unwrap()
            .to_string()
    };
    (
        value("ea2p_energy_joules_total{component=\"package-0\""),
        value("ea2p_measuring_seconds").parse().unwrap(),
    )
}

#[test]
fn scrapes_see_one_value_per_export_interval() {
    let rapl = rapl();
    let s = serve(&rapl, "127.0.0.1:0", &[]);
    assert!(
        s.stderr.iter().all(|l| !l.contains("warning")),
        "{:?}",
        s.stderr
    );
    // Served from the first reading on, not an export interval later.
    let (_, body) = first_metrics(s.port, None);
    let (_, t_first) = package_total(&body);
    assert!(t_first < 0.5, "first values at {t_first} s");
    // Let the sampler run, so that the counter moves between any two readings.
    std::thread::sleep(Duration::from_millis(300));
    // A tight loop for 50 ms, 2 ms apart: at most two totals (one snapshot boundary).
    let started = Instant::now();
    let mut seen: Vec<(String, f64)> = Vec::new();
    let mut scrapes = 0;
    while started.elapsed() < Duration::from_millis(50) {
        let (status, body) = get(s.port, "/metrics", None);
        assert_eq!(status, 200, "{body}");
        let v = package_total(&body);
        scrapes += 1;
        if seen.last() != Some(&v) {
            seen.push(v);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(scrapes >= 4, "only {scrapes} scrapes in 50 ms");
    assert!(seen.len() <= 2, "{} distinct values: {seen:?}", seen.len());
    // Two values seen there are two snapshots an interval apart (one each side of a boundary).
    for w in seen.windows(2) {
        assert!(w[1].1 - w[0].1 >= 0.999, "{seen:?}");
    }
    // After the interval, a new one, at least an interval later.
    std::thread::sleep(Duration::from_millis(1100));
    let (_, body) = get(s.port, "/metrics", None);
    let after = package_total(&body);
    let last = seen.last().unwrap();
    assert_ne!(&after, last);
    assert!(
        after.1 - last.1 >= 0.999,
        "snapshots {} s and {} s",
        last.1,
        after.1
    );
    let (e0, e1) = (
        last.0.parse::<f64>().unwrap(),
        after.0.parse::<f64>().unwrap(),
    );
    assert!(e1 > e0, "{e0} J then {e1} J");
    // Every sample carries the snapshot's timestamp (ms since the epoch).
    let stamp = body
        .lines()
        .find(|l| l.starts_with("ea2p_measuring_seconds"))
        .and_then(|l| l.split(' ').nth(2))
        .and_then(|t| t.parse::<u64>().ok())
        .expect("a timestamp");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        stamp <= now_ms && now_ms - stamp < 5_000,
        "{stamp} vs {now_ms}"
    );
    // The power gauge is the average over the interval: the fake tree's 30 W.
    let power: f64 = body
        .lines()
        .find(|l| l.starts_with("ea2p_power_watts{component=\"package-0\""))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|p| p.parse().ok())
        .expect("a power");
    assert!((power - WATTS).abs() < 0.1 * WATTS, "{power} W");
    rapl.stop();
}

#[test]
fn a_shorter_export_interval_needs_the_flag_and_is_warned_about() {
    let rapl = rapl();
    let s = serve(&rapl, "127.0.0.1:0", &["--export-interval", "100ms"]);
    let warning = s.stderr.join("\n");
    assert!(
        warning.contains("--export-interval 100ms") && warning.contains("CVE-2020-8694"),
        "{warning}"
    );
    first_metrics(s.port, None);
    let started = Instant::now();
    let mut times: Vec<f64> = Vec::new();
    while started.elapsed() < Duration::from_millis(600) {
        let t = package_total(&get(s.port, "/metrics", None).1).1;
        if times.last() != Some(&t) {
            times.push(t);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(times.len() >= 4, "{times:?}");
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= 0.099,
            "snapshots closer than 100 ms: {times:?}"
        );
    }
    rapl.stop();
}

fn token_file(dir: &Path, mode: u32) -> (PathBuf, String) {
    let token = "3f9c2a7be1d04c68a5f0b9e2d7c41a86".to_string();
    let p = dir.join("token");
    fs::write(&p, format!("{token}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    (p, token)
}

#[test]
fn with_a_token_file_only_the_bearer_gets_the_metrics() {
    let rapl = rapl();
    let tmp = tempfile::tempdir().unwrap();
    let (file, token) = token_file(tmp.path(), 0o600);
    let s = serve(
        &rapl,
        "127.0.0.1:0",
        &["--prometheus-token-file", file.to_str().unwrap()],
    );
    let (status, body) = get(s.port, "/metrics", None);
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("ea2p_energy"), "{body}");
    let wrong = format!("Bearer {}0", &token[..token.len() - 1]);
    assert_eq!(get(s.port, "/metrics", Some(&wrong)).0, 401);
    assert_eq!(get(s.port, "/metrics", Some(&token)).0, 401, "no scheme");
    assert_eq!(get(s.port, "/", None).0, 401);
    let (status, body) = first_metrics(s.port, Some(&format!("Bearer {token}")));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ea2p_energy_joules_total{component=\"package-0\""));
    rapl.stop();
}

#[test]
fn a_token_file_others_can_read_is_refused() {
    let rapl = rapl();
    let tmp = tempfile::tempdir().unwrap();
    let (file, _) = token_file(tmp.path(), 0o644);
    let profile = tmp.path().join("p.ea2p");
    let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .env("EA2P_SYSFS_ROOT", rapl.root())
        .args(["serve", "--devices", "cpu", "--prometheus", "127.0.0.1:0"])
        .arg("--prometheus-token-file")
        .arg(&file)
        .arg("-o")
        .arg(&profile)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("readable by every user (mode 0644)") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains("http://"), "it served: {stderr}");
    assert!(!profile.exists(), "refused before the profile was created");
    rapl.stop();
}

#[test]
fn a_non_loopback_address_without_a_token_is_warned_about() {
    let rapl = rapl();
    let s = serve(&rapl, "0.0.0.0:0", &[]);
    let warning = s.stderr.join("\n");
    assert!(
        warning.contains("not loopback")
            && warning.contains("--prometheus-token-file")
            && warning.contains("CVE-2020-8694"),
        "{warning}"
    );
    drop(s);
    let tmp = tempfile::tempdir().unwrap();
    let (file, _) = token_file(tmp.path(), 0o600);
    let s = serve(
        &rapl,
        "0.0.0.0:0",
        &["--prometheus-token-file", file.to_str().unwrap()],
    );
    assert!(
        s.stderr.iter().all(|l| !l.contains("warning")),
        "{:?}",
        s.stderr
    );
    rapl.stop();
}
