//! `ea2p run` under a real `mpirun` (Debian's openmpi-bin, installed by .ci/run), then
//! `ea2p merge`: one profile per rank named after rank and host, one measuring rank per node,
//! and the per-rank, per-node and total breakdown against the fake trees' truth.

use std::path::Path;
use std::process::Command;

use ea2p_tests::{FakeRapl, ZoneSpec};

/// `mpirun` with its session directory under `tmp`: the two tests run at once, and two mpiruns
/// creating /tmp/ompi.HOST.UID together fail ("mkdir ... File exists").
fn mpirun(tmp: &Path) -> Command {
    let bin = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("mpirun is needed for this test: apt-get install -y openmpi-bin (.ci/run does)");
    let mut c = Command::new(bin);
    // Root in CI containers; more ranks than cores on a 2-core machine.
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", "2"]);
    c.env("OMPI_MCA_plm_rsh_agent", "false");
    c.env("OMPI_MCA_orte_tmpdir_base", tmp);
    c
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Two "nodes": each rank gets its own fake tree (20 W and 30 W), host name and local rank 0,
/// as two real nodes would give it.
#[test]
fn two_nodes_under_mpirun_merge_to_the_truth() {
    let node0 = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", 20.0)]);
    let node1 = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", 30.0)]);
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("run.ea2p");
    let script = format!(
        "r=$OMPI_COMM_WORLD_RANK; if [ $r = 0 ]; then root={}; else root={}; fi; \
         EA2P_SYSFS_ROOT=$root EA2P_HOSTNAME=node$r OMPI_COMM_WORLD_LOCAL_RANK=0 \
         exec {} run --allow-root --devices cpu -o {} -- sh -c 'sleep 0.5; exit 0'",
        node0.root().display(),
        node1.root().display(),
        env!("CARGO_BIN_EXE_ea2p"),
        profile.display()
    );
    let out = mpirun(tmp.path())
        .args(["sh", "-c", &script])
        .output()
        .unwrap();
    node0.stop();
    node1.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("open-mpi rank 1 of 2 on node1"), "{stderr}");

    let files = [
        tmp.path().join("run.rank0.node0.ea2p"),
        tmp.path().join("run.rank1.node1.ea2p"),
    ];
    for f in &files {
        assert!(f.exists(), "{} missing; {stderr}", f.display());
    }
    let mj = tmp.path().join("merged.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .arg("merge")
        .args(&files)
        .arg("--json")
        .arg(&mj)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("over 2 node(s), 2 rank(s)"), "{text}");
    let m = json(&mj);
    let nodes = m["nodes"].as_array().unwrap();
    let mut expected_total = 0.0;
    for (n, (host, watts)) in nodes.iter().zip([("node0", 20.0), ("node1", 30.0)]) {
        assert_eq!(n["host"], host);
        let e = n["energy_j"].as_f64().unwrap();
        let d = n["duration_s"].as_f64().unwrap();
        assert!((e - watts * d).abs() < 0.1 * watts * d, "{n}");
        expected_total += watts * d;
    }
    let total = m["total_j"].as_f64().unwrap();
    assert!((total - expected_total).abs() < 0.1 * expected_total, "{m}");
    let ranks = m["ranks"].as_array().unwrap();
    assert_eq!(ranks[0]["rank"], 0);
    assert_eq!(ranks[1]["rank"], 1);
    assert!(ranks
        .iter()
        .all(|r| r["measured_node"] == true && r["exit_code"] == 0));
}

/// Two ranks on one node (mpirun's real local ranks 0 and 1): only local rank 0 reads the
/// node's counters, so the node is counted once.
#[test]
fn two_ranks_on_one_node_count_the_node_once() {
    let node = FakeRapl::start(vec![ZoneSpec::new("intel-rapl:0", "package-0", 20.0)]);
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("p-%h-%r.ea2p");
    let out = mpirun(tmp.path())
        .env("EA2P_SYSFS_ROOT", node.root())
        .env("EA2P_HOSTNAME", "single")
        .arg(env!("CARGO_BIN_EXE_ea2p"))
        .args(["run", "--allow-root", "--devices", "cpu", "-o"])
        .arg(&profile)
        .args(["--", "sleep", "0.4"])
        .output()
        .unwrap();
    node.stop();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("local rank 0 measures the node"),
        "{stderr}"
    );
    let files = [
        tmp.path().join("p-single-0.ea2p"),
        tmp.path().join("p-single-1.ea2p"),
    ];
    let mj = tmp.path().join("m.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .arg("merge")
        .args(&files)
        .arg("--json")
        .arg(&mj)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = json(&mj);
    assert_eq!(m["nodes"].as_array().unwrap().len(), 1);
    let measured: Vec<bool> = m["ranks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["measured_node"].as_bool().unwrap())
        .collect();
    assert_eq!(measured, [true, false]);
    let n = &m["nodes"][0];
    let (e, d) = (
        n["energy_j"].as_f64().unwrap(),
        n["duration_s"].as_f64().unwrap(),
    );
    assert!((e - 20.0 * d).abs() < 0.1 * 20.0 * d, "{m}");

    // Not a profile: the error names the file.
    let bogus = tmp.path().join("bogus.ea2p");
    std::fs::write(&bogus, "hello").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ea2p"))
        .arg("merge")
        .arg(&files[0])
        .arg(&bogus)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bogus.ea2p: not a readable ea2p profile"),
        "{err}"
    );
}
