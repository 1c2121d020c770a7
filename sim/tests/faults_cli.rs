//! `eas-sim compare` and `run` under faults: the fault metrics in the table, JSON and CSV, the
//! command-line fault flags, and their errors.

use std::path::Path;
use std::process::Command;

fn eas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eas-sim"))
}

fn scenario() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/faults.toml")
}

#[test]
fn compare_under_faults_reports_them_in_table_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (j, c) = (dir.path().join("r.json"), dir.path().join("r.csv"));
    let out = eas()
        .args([
            "compare",
            "--seeds",
            "3",
            "--hours",
            "4",
            "--gpu-mtbf-h",
            "10",
        ])
        .args(["--policies", "pollux,aurachronos", "--quiet", "--scenario"])
        .arg(scenario())
        .arg("--json")
        .arg(&j)
        .arg("--csv")
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("lost GPU·h") && table.contains("failures"),
        "{table}"
    );
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    let f = &v["policies"][0]["faults"];
    for k in [
        "gpu_failures",
        "node_drains",
        "fault_preemptions",
        "lost_gpu_hours",
        "down_gpu_hours",
    ] {
        assert!(f[k]["mean"].as_f64().is_some(), "{k}: {f}");
    }
    // 16 GPUs x 4 h at one failure per 10 GPU-hours (minus repair time): several per run.
    assert!(f["gpu_failures"]["mean"].as_f64().unwrap() >= 1.0, "{f}");
    // Both policies meet the same faults on the same seeds.
    assert_eq!(
        f["gpu_failures"],
        v["policies"][1]["faults"]["gpu_failures"]
    );
    let csv = std::fs::read_to_string(&c).unwrap();
    let head = csv.lines().next().unwrap();
    assert!(
        head.contains("gpu_failures_mean,gpu_failures_ci95"),
        "{head}"
    );
    assert!(head.contains("lost_gpu_hours_mean") && head.contains("down_gpu_hours_ci95"));
    assert!(
        head.ends_with("utilisation_H100_mean,utilisation_H100_ci95"),
        "{head}"
    );

    // --no-faults: the same scenario without faults, the documented schema without "faults".
    let out = eas()
        .args(["compare", "--seeds", "2", "--hours", "2", "--no-faults"])
        .args(["--policies", "zeus", "--quiet", "--scenario"])
        .arg(scenario())
        .arg("--json")
        .arg(&j)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    assert!(v["policies"][0].get("faults").is_none());
    assert!(!String::from_utf8(out.stdout)
        .unwrap()
        .contains("lost GPU·h"));
}

#[test]
fn run_prints_the_faults_and_bad_flags_are_clear_errors() {
    let out = eas()
        .args([
            "run",
            "--policy",
            "fifo",
            "--hours",
            "3",
            "--gpu-mtbf-h",
            "5",
        ])
        .args(["--node-drains-per-day", "4", "--scenario"])
        .arg(scenario())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("GPU failures") && text.contains("node drains"),
        "{text}"
    );
    let out = eas()
        .args(["run", "--policy", "fifo", "--gpu-mtbf-h=-2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("--gpu-mtbf-h: expected a positive number"),
        "{err}"
    );
}
