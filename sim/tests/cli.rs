//! The `eas-sim` program: subcommands, output files and their schema, error messages.

use std::process::Command;

fn eas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eas-sim"))
}

#[test]
fn compare_writes_json_csv_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let (j, c, p) = (
        dir.path().join("r.json"),
        dir.path().join("r.csv"),
        dir.path().join("r.svg"),
    );
    let out = eas()
        .args([
            "compare",
            "--seeds",
            "2",
            "--hours",
            "2",
            "--policies",
            "fifo,zeus,aurachronos",
        ])
        .arg("--json")
        .arg(&j)
        .arg("--csv")
        .arg(&c)
        .arg("--plot")
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("zeus") && table.contains("jobs/h"),
        "{table}"
    );
    assert!(!table.contains("pollux"));

    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    assert_eq!(v["scenario"], "seed");
    let pols = v["policies"].as_array().unwrap();
    assert_eq!(pols.len(), 3);
    let keys: Vec<&str> = pols[1]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut expected = vec![
        "policy",
        "runs",
        "jobs_per_hour",
        "energy_kwh",
        "edp",
        "mean_jct_s",
        "p95_jct_s",
        "deadline_miss_rate",
        "fairness",
        "peak_power_w",
        "preemptions",
        "wasted_energy_kwh",
    ];
    let mut got = keys.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(pols[1]["policy"], "zeus");
    assert_eq!(pols[1]["runs"], 2);
    assert!(pols[1]["energy_kwh"]["mean"].as_f64().unwrap() > 0.0);
    assert!(pols[1]["energy_kwh"]["ci95"].as_f64().is_some());

    let csv = std::fs::read_to_string(&c).unwrap();
    assert!(
        csv.starts_with("scenario,policy,runs,jobs_per_hour_mean,jobs_per_hour_ci95"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4);
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with("utilisation_H100_mean,utilisation_H100_ci95"),
        "{csv}"
    );
    let svg = std::fs::read_to_string(&p).unwrap();
    assert!(svg.contains("<svg") && svg.contains("Pareto frontier") && svg.contains("aurachronos"));
}

#[test]
fn run_prints_one_runs_results() {
    let out = eas()
        .args(["run", "--policy", "charon", "--hours", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(
        s.contains("policy charon run 0") && s.contains("kWh"),
        "{s}"
    );
}

#[test]
fn errors_are_clear() {
    let out = eas().args(["run", "--policy", "sjf"]).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("unknown policy \"sjf\"") && e.contains("aurachronos"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, "hours = 1\n[workload]\nusers = -3\n").unwrap();
    let out = eas()
        .args(["compare", "--scenario"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("bad.toml:3:"), "{e}");
}

#[test]
fn same_command_same_bytes_whatever_the_threads() {
    let go = |threads: &str| {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("r.json");
        let out = eas()
            .args([
                "compare",
                "--seeds",
                "3",
                "--hours",
                "2",
                "--threads",
                threads,
                "--json",
            ])
            .arg(&j)
            .output()
            .unwrap();
        assert!(out.status.success());
        (out.stdout, std::fs::read(&j).unwrap())
    };
    assert_eq!(go("1"), go("3"));
}

#[test]
fn gen_trace_is_deterministic_and_replays_as_a_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    for p in [&a, &b] {
        let out = eas()
            .args(["gen-trace", "-n", "500", "-o"])
            .arg(p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    assert_eq!(text.lines().count(), 501, "header + 500 jobs");
    let sc = String::from_utf8(eas().arg("scenario").output().unwrap().stdout).unwrap();
    let sc = sc.replace("poisson_rate_per_s = 0.005", "trace = \"a.csv\"");
    assert!(sc.contains("trace = \"a.csv\""));
    let scp = dir.path().join("sc.toml");
    std::fs::write(&scp, sc).unwrap();
    let out = eas()
        .args(["run", "--policy", "fifo", "--hours", "1", "-s"])
        .arg(&scp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("policy fifo run 0"));
}

#[test]
fn gen_trace_public_formats_read_back_through_eas_traces() {
    let dir = tempfile::tempdir().unwrap();
    for (name, format) in [
        ("helios", eas_traces::Format::Helios),
        ("philly", eas_traces::Format::Philly),
        ("alibaba", eas_traces::Format::Alibaba),
    ] {
        let p = dir.path().join(name);
        let out = eas()
            .args(["gen-trace", "-n", "200", "--format", name, "-o"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let jobs: Vec<_> = eas_traces::open(&p, format)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(jobs.len(), 200, "{name}");
        assert!(
            jobs.windows(2).all(|w| w[0].submit_s <= w[1].submit_s),
            "{name}"
        );
        assert!(jobs.iter().all(|j| j.gpus >= 1), "{name}");
    }
    let out = eas()
        .args(["gen-trace", "-n", "3", "--format", "bogus", "-o"])
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));
}

/// `gen-trace --format alibaba --job-table` writes the PAI job table too: read with it, the
/// Alibaba trace gives the same users and submissions as the Helios trace of the same seed
/// (Helios has a user column), and a scenario with `job_table` runs it.
#[test]
fn gen_trace_alibaba_job_table_carries_users() {
    let dir = tempfile::tempdir().unwrap();
    let gen = |args: &[&str]| {
        let out = eas().arg("gen-trace").args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (tasks, table, helios) = (
        dir.path().join("tasks.csv"),
        dir.path().join("jobs.csv"),
        dir.path().join("helios.csv"),
    );
    let p = |x: &std::path::Path| x.to_str().unwrap().to_string();
    let (ok, err) = gen(&[
        "-n",
        "150",
        "--format",
        "alibaba",
        "-o",
        &p(&tasks),
        "--job-table",
        &p(&table),
    ]);
    assert!(ok && err.contains("job table"), "{err}");
    let (ok, err) = gen(&["-n", "150", "--format", "helios", "-o", &p(&helios)]);
    assert!(ok, "{err}");
    let map = std::sync::Arc::new(eas_traces::load_alibaba_job_table(&table).unwrap());
    assert_eq!(map.len(), 150);
    let pai: Vec<_> = eas_traces::open_alibaba_with_jobs(&tasks, map)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let hel: Vec<_> = eas_traces::open(&helios, eas_traces::Format::Helios)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(pai.len(), hel.len());
    for (a, h) in pai.iter().zip(&hel) {
        assert_eq!((&a.user, a.gpus), (&h.user, h.gpus));
        assert!((a.submit_s - h.submit_s).abs() < 1e-6, "{a:?} vs {h:?}");
    }
    assert!(pai.iter().any(|j| j.user != pai[0].user), "several users");
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "hours = 200.0\nseeds = 1\n[arrivals]\ntrace = \"tasks.csv\"\nformat = \"alibaba\"\njob_table = \"jobs.csv\"\n",
    )
    .unwrap();
    let out = eas()
        .args(["run", "--policy", "themis", "-s"])
        .arg(&scenario)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("150 jobs simulated"), "{stderr}");
    assert!(!stderr.contains("not in the job table"), "{stderr}");
    // Only the Alibaba format has a separate job table.
    let (ok, err) = gen(&[
        "-n",
        "5",
        "--format",
        "helios",
        "-o",
        &p(&helios),
        "--job-table",
        &p(&table),
    ]);
    assert!(!ok && err.contains("only --format alibaba"), "{err}");
}

/// A Helios trace written by `gen-trace`, replayed as a scenario's arrivals by `run` and
/// `compare`, windowed and sped up from the command line; the tally on stderr says what was kept.
#[test]
fn public_trace_arrivals_with_window_flags() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.csv");
    let out = eas()
        .args(["gen-trace", "-n", "300", "--format", "helios", "-o"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "hours = 200.0\nseeds = 2\n[arrivals]\ntrace = \"t.csv\"\nformat = \"helios\"\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = eas()
            .args(["run", "--policy", "zeus", "-s"])
            .arg(&scenario)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = run(&[]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("300 rows read, 300 jobs simulated"),
        "{stderr}"
    );
    assert!(stdout.contains("jobs: 300 arrived"), "{stdout}");
    // A window of the first 10 hours at twice the pace: fewer jobs, the others counted.
    let (ok, stdout, stderr) = run(&["--from", "0", "--to", "36000", "--speedup", "2"]);
    assert!(ok, "{stderr}");
    let kept: u64 = stdout
        .split("jobs: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(kept > 0 && kept < 300, "{stdout}");
    assert!(
        stderr.contains(&format!("{kept} jobs simulated"))
            && stderr.contains(&format!("{} outside the window", 300 - kept)),
        "{stderr}"
    );
    let (ok, _, stderr) = run(&["--from", "100", "--to", "10"]);
    assert!(!ok && stderr.contains("must be before"), "{stderr}");
    // compare streams the trace in every run and prints the tally once.
    let out = eas()
        .args(["compare", "--quiet", "--policies", "fifo,charon", "-s"])
        .arg(&scenario)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("rows read").count(), 1, "{stderr}");
    // On a Poisson scenario the flags are an error that says why.
    let out = eas()
        .args(["run", "--policy", "fifo", "--speedup", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("apply to a public trace"),
        "{stderr}"
    );
}
