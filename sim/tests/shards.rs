//! `compare --shard I/N` in separate processes, then `merge-results`: byte-identical to the
//! unsharded `compare`, and every way shards can fail to fit together is refused clearly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn eas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eas-sim"))
}

/// The sweep of these tests: four policies (two that preempt) x 3 seeds, with GPU failures so
/// that the optional fault metrics are in the documents too.
const SWEEP: [&str; 9] = [
    "compare",
    "--seeds",
    "3",
    "--hours",
    "2",
    "--policies",
    "fifo,zeus,aurachronos,charon",
    "--gpu-mtbf-h",
    "40",
];

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs the N shards as N processes at once; returns their files in shard order.
fn shards(dir: &Path, n: u32, extra: &[&str]) -> Vec<PathBuf> {
    let children: Vec<(PathBuf, std::process::Child)> = (0..n)
        .map(|i| {
            let f = dir.join(format!("shard-{n}-{i}.json"));
            let c = eas()
                .args(SWEEP)
                .args(extra)
                .args(["--shard", &format!("{i}/{n}"), "--json"])
                .arg(&f)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (f, c)
        })
        .collect();
    children
        .into_iter()
        .map(|(f, c)| {
            ok(c.wait_with_output().unwrap());
            f
        })
        .collect()
}

fn merge(files: &[PathBuf], json: &Path, runs: &Path) -> Output {
    eas()
        .arg("merge-results")
        .args(files)
        .arg("--json")
        .arg(json)
        .arg("--runs-json")
        .arg(runs)
        .output()
        .unwrap()
}

#[test]
fn one_three_and_seven_shards_merge_to_the_unsharded_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (json, runs) = (
        dir.path().join("whole.json"),
        dir.path().join("whole.jsonl"),
    );
    ok(eas()
        .args(SWEEP)
        .arg("--json")
        .arg(&json)
        .arg("--runs-json")
        .arg(&runs)
        .output()
        .unwrap());
    let whole = std::fs::read(&json).unwrap();
    let whole_runs = std::fs::read(&runs).unwrap();
    assert!(String::from_utf8_lossy(&whole).contains("\"gpu_failures\""));
    for n in [1u32, 3, 7] {
        let mut files = shards(dir.path(), n, &[]);
        // Any order of the files gives the same document.
        files.reverse();
        let (j, r) = (
            dir.path().join(format!("merged-{n}.json")),
            dir.path().join(format!("merged-{n}.jsonl")),
        );
        ok(merge(&files, &j, &r));
        assert!(
            std::fs::read(&j).unwrap() == whole,
            "{n} shards: merged JSON differs from the unsharded one"
        );
        assert!(
            std::fs::read(&r).unwrap() == whole_runs,
            "{n} shards: merged runs differ from the unsharded ones"
        );
    }
}

fn merge_err(files: &[PathBuf], dir: &Path) -> String {
    let out = merge(files, &dir.join("m.json"), &dir.join("m.jsonl"));
    assert!(!out.status.success(), "merge should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn missing_duplicate_and_mismatched_shards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let three = shards(d, 3, &[]);

    let e = merge_err(&[three[0].clone(), three[2].clone()], d);
    assert!(e.contains("1 of 3 shards missing: 1"), "{e}");

    let e = merge_err(&[three[0].clone(), three[1].clone(), three[1].clone()], d);
    assert!(e.contains("shard 1/3 is given twice"), "{e}");

    // Another shard count.
    let seven = shards(d, 7, &[]);
    let e = merge_err(&[three[0].clone(), seven[1].clone()], d);
    assert!(
        e.contains("of (the shard count) is 7") && e.contains("different sweeps"),
        "{e}"
    );

    // Same shard count, another scenario (node drains too): the fingerprint differs.
    let other = d.join("other");
    std::fs::create_dir(&other).unwrap();
    let short = shards(&other, 3, &["--node-drains-per-day", "1"]);
    let e = merge_err(&[three[0].clone(), three[1].clone(), short[2].clone()], d);
    assert!(
        e.contains("fingerprint is") && e.contains("different sweeps"),
        "{e}"
    );

    // A shard whose runs were edited out.
    let text = std::fs::read_to_string(&three[1]).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["runs"].as_array_mut().unwrap().pop();
    let cut = d.join("cut.json");
    std::fs::write(&cut, v.to_string()).unwrap();
    let e = merge_err(&[three[0].clone(), cut, three[2].clone()], d);
    assert!(
        e.contains("should hold 4 runs numbered [1, 4, 7, 10], holds 3"),
        "{e}"
    );

    // Not a shard result: the unsharded document, a directory.
    let whole = d.join("whole.json");
    ok(eas()
        .args(SWEEP)
        .arg("--json")
        .arg(&whole)
        .output()
        .unwrap());
    let e = merge_err(&[whole], d);
    assert!(e.contains("not a shard result"), "{e}");
    let e = merge_err(&[d.to_path_buf()], d);
    assert!(e.contains("not a regular file"), "{e}");
}

#[test]
fn shard_needs_its_output_and_a_valid_slice() {
    let out = eas().args(SWEEP).args(["--shard", "0/2"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --json FILE"));
    let out = eas()
        .args(SWEEP)
        .args(["--shard", "2/2", "--json", "x.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("expected I/N") && e.contains("I is not below N"),
        "{e}"
    );
}
