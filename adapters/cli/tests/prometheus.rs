//! `ea2p serve --prometheus` scraped by a real Prometheus server (Debian's `prometheus`,
//! installed by .ci/run) on loopback, with a bearer token from a file as Prometheus' own scrape
//! configs give it (`authorization: credentials_file:`): a PromQL `rate()` over the energy
//! counter must give the fake tree's power within 1 %, through the exporter's 1 s snapshots.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ea2p_tests::{FakeRapl, ZoneSpec};

const WATTS: f64 = 25.0;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` on 127.0.0.1:`port`, with an `Authorization` header when given; the body.
fn http_get(port: u16, path: &str, authorization: Option<&str>) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_real_prometheus_scrapes_the_power_of_the_fake_tree() {
    let prometheus = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("the Prometheus server is needed for this test: apt-get install -y prometheus (.ci/run does)");
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", WATTS)]);
    let tmp = tempfile::tempdir().unwrap();
    let token = "c0ffee4b1d2e3f405162738495a6b7c8";
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The exporter on a free loopback port; it prints the address it bound.
    let mut serve = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_ea2p"))
            .env("EA2P_SYSFS_ROOT", rapl.root())
            .args(["serve", "--devices", "cpu", "--prometheus", "127.0.0.1:0"])
            .arg("--prometheus-token-file")
            .arg(&token_file)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(serve.0.stderr.take().unwrap()).lines();
    let exporter = loop {
        let line = lines.next().expect("ea2p serve exited").unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.trim_end_matches("/metrics").to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let exporter_port = exporter.rsplit(':').next().unwrap().parse().unwrap();
    let refused = http_get(exporter_port, "/metrics", None).expect("the exporter answers");
    assert!(refused.starts_with("unauthorized"), "{refused}");
    let metrics = http_get(exporter_port, "/metrics", Some(&format!("Bearer {token}")))
        .expect("the exporter answers");
    assert!(
        metrics.contains("# TYPE ea2p_energy_joules_total counter"),
        "{metrics}"
    );

    let prom_port = free_port();
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ea2p\n    authorization:\n      credentials_file: {}\n    static_configs:\n      - targets: ['{exporter}']\n",
            token_file.display()
        ),
    )
    .unwrap();
    let _prom = KillOnDrop(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let series = "ea2p_energy_joules_total{component=\"package-0\"}";
    // A PromQL query, evaluated now or at a time (Unix seconds).
    let ask = |q: &str, at: Option<f64>| -> Option<(f64, String)> {
        let time = at.map_or(String::new(), |t| format!("&time={t:.3}"));
        let body = http_get(
            prom_port,
            &format!("/api/v1/query?query={}{time}", percent_encode(q)),
            None,
        )?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let x = v["data"]["result"][0]["value"][1]
            .as_str()?
            .parse::<f64>()
            .ok()?;
        Some((x, body))
    };
    let started = Instant::now();
    // Wait until there are samples from before the 5 s window too (Prometheus takes a few
    // seconds to start); they carry the exporter's snapshot times, one a second.
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus did not scrape the exporter 7 times within 60 s"
        );
        std::thread::sleep(Duration::from_secs(1));
        if ask(&format!("count_over_time({series}[10s])"), None).is_some_and(|(n, _)| n >= 7.0) {
            break;
        }
    }
    // Evaluated at the latest sample's time, the window ends on a sample: rate() does not
    // extrapolate over the up to one second by which a snapshot is older than its scrape.
    let (t_last, _) = ask(&format!("timestamp({series})"), None).expect("a sample time");
    let (watts, last) = ask(&format!("rate({series}[5s])"), Some(t_last)).expect("a rate");
    assert!(
        (watts - WATTS).abs() < 0.01 * WATTS,
        "Prometheus says {watts} W, the tree draws {WATTS} W ({last})"
    );
    rapl.stop();
}

/// `ea2p serve --per-cgroup`: two fake cgroup v2 groups whose `usage_usec` advance at 0.5 and
/// 0.25 CPU while the machine (a fake `/proc/stat`) is busy at 1 CPU: Prometheus scrapes
/// `ea2p_attributed_joules_total` with their `cgroup` labels, at half and a quarter of the
/// package's power.
#[test]
fn per_cgroup_attribution_reaches_a_real_prometheus() {
    let prometheus = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("the Prometheus server is needed for this test: apt-get install -y prometheus (.ci/run does)");
    let rapl = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", WATTS)]);
    let cg = rapl.root().join("fs/cgroup/slurm");
    let procfs = tempfile::tempdir().unwrap();
    for f in ["meminfo", "cpuinfo"] {
        std::os::unix::fs::symlink(format!("/proc/{f}"), procfs.path().join(f)).unwrap();
    }
    std::fs::create_dir_all(cg.join("job_1")).unwrap();
    std::fs::create_dir_all(cg.join("job_2")).unwrap();
    std::fs::create_dir_all(cg.join("other")).unwrap();
    std::fs::write(rapl.root().join("fs/cgroup/cgroup.controllers"), "cpu\n").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let write = |path: &std::path::Path, text: String| {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    };
    let writer = {
        let (stop, stat, cg) = (stop.clone(), procfs.path().join("stat"), cg.clone());
        std::thread::spawn(move || {
            let t0 = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = t0.elapsed().as_secs_f64();
                let (busy, idle) = ((s * 100.0) as u64, (s * 100.0) as u64);
                write(&stat, format!("cpu  {busy} 0 0 {idle} 0 0 0 0\n"));
                for (g, cpus) in [("job_1", 0.5), ("job_2", 0.25), ("other", 0.1)] {
                    let usec = (s * cpus * 1e6) as u64;
                    write(&cg.join(g).join("cpu.stat"), format!("usage_usec {usec}\n"));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    while !cg.join("job_2/cpu.stat").exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut serve = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_ea2p"))
            .arg("--sysfs-root")
            .arg(rapl.root())
            .arg("--procfs-root")
            .arg(procfs.path())
            .args(["serve", "--devices", "cpu", "--prometheus", "127.0.0.1:0"])
            .args(["--per-cgroup", "slurm/job_*"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(serve.0.stderr.take().unwrap()).lines();
    let exporter = loop {
        let line = lines.next().expect("ea2p serve exited").unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.trim_end_matches("/metrics").to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let tmp = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ea2p\n    static_configs:\n      - targets: ['{exporter}']\n"
        ),
    )
    .unwrap();
    let _prom = KillOnDrop(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ask = |q: &str, at: Option<f64>| -> Option<(f64, String)> {
        let time = at.map_or(String::new(), |t| format!("&time={t:.3}"));
        let body = http_get(
            prom_port,
            &format!("/api/v1/query?query={}{time}", percent_encode(q)),
            None,
        )?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let x = v["data"]["result"][0]["value"][1]
            .as_str()?
            .parse::<f64>()
            .ok()?;
        Some((x, body))
    };
    let series = |g: &str| {
        format!("ea2p_attributed_joules_total{{component=\"package-0\",cgroup=\"slurm/{g}\",kind=\"attributed\"}}")
    };
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus did not scrape the attributed series 7 times within 60 s"
        );
        std::thread::sleep(Duration::from_secs(1));
        if ask(&format!("count_over_time({}[10s])", series("job_2")), None)
            .is_some_and(|(n, _)| n >= 7.0)
        {
            break;
        }
    }
    for (g, share) in [("job_1", 0.5), ("job_2", 0.25)] {
        let (t_last, _) = ask(&format!("timestamp({})", series(g)), None).expect("a sample time");
        let (watts, body) = ask(&format!("rate({}[5s])", series(g)), Some(t_last)).expect("a rate");
        assert!(
            (watts - share * WATTS).abs() < 0.05 * share * WATTS,
            "{g}: Prometheus says {watts} W, expected {} W ({body})",
            share * WATTS
        );
    }
    // A group outside the pattern is not exported.
    let (n, body) = ask("count(ea2p_attributed_joules_total)", None).expect("a count");
    assert_eq!(n, 2.0, "{body}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    rapl.stop();
}
