//! Fault injection: hand-made timelines (a GPU failure, a node drain) whose lost work, lost and
//! down GPU-hours and completion times are computed by hand; property tests of the invariants
//! under random failures and drains; determinism with faults on.

use ea2p_core::policy::PolicyKind;
use eas_sim::faults::FaultKind;
use eas_sim::scenario::{parse_str, Scenario};
use eas_sim::sim::{run_with, RunOptions, RunOutput};
use eas_sim::workload::generate;
use proptest::prelude::*;

const S: u64 = 1_000_000_000;

fn checked() -> RunOptions {
    RunOptions {
        check_invariants: true,
        record_power: true,
        ..Default::default()
    }
}

fn scenario_with_trace(trace: &str, toml: &str) -> (tempfile::TempDir, Scenario) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.csv"), trace).unwrap();
    std::fs::write(dir.path().join("s.toml"), toml).unwrap();
    let sc = Scenario::from_file(&dir.path().join("s.toml")).unwrap_or_else(|e| panic!("{e}"));
    (dir, sc)
}

fn run(sc: &Scenario, p: PolicyKind) -> RunOutput {
    run_with(sc, p, &generate(sc, 0), 0, checked()).unwrap_or_else(|e| panic!("{e}"))
}

/// One A100, one rigid 2 h job from t = 0, checkpoints every 1800 s (instant). The GPU fails at
/// 4200 s: 600 s of work since the 3600 s checkpoint are lost. It is repaired 30 min later
/// (6000 s); the job restarts (60 s) and computes its remaining 3600 s until 9660 s.
#[test]
fn a_gpu_failure_loses_the_work_since_the_last_checkpoint() {
    let (_d, sc) = scenario_with_trace(
        "arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s\n0,resnet50,0,1,A100,7200,\n",
        r#"
hours = 4.0
seeds = 1
[[nodes]]
gpu = "A100"
gpus_per_node = 1
[arrivals]
trace = "t.csv"
[policy]
checkpoint_interval_s = 1800.0
checkpoint_s = 0.0
restart_s = 60.0
limit_fractions = [1.0, 1.0, 1.0, 1.0]
[faults]
repair_h = 0.5
[[faults.events]]
at_h = 1.1666666666666667
gpu = 0
"#,
    );
    for p in [PolicyKind::Fifo, PolicyKind::Chronos, PolicyKind::Themis] {
        let out = run(&sc, p);
        let r = &out.result;
        let f = r.faults.as_ref().expect("fault metrics");
        assert_eq!(
            (f.gpu_failures, f.node_drains, f.fault_preemptions),
            (1, 0, 1)
        );
        assert_eq!(r.preemptions, 1);
        assert_eq!(out.completed_at, vec![Some(9660 * S)], "{p:?}");
        assert!(
            (f.lost_gpu_hours - 600.0 / 3600.0).abs() < 1e-9,
            "{}",
            f.lost_gpu_hours
        );
        assert!(
            (f.down_gpu_hours - 0.5).abs() < 1e-9,
            "{}",
            f.down_gpu_hours
        );
        // Work: 600 s of the job's rate lost, the whole job done, computed = done + lost.
        let work = generate(&sc, 0)[0].work;
        assert!((out.work_lost - work * 600.0 / 7200.0).abs() < 1e-6 * work);
        assert!((out.work_computed - work * 7800.0 / 7200.0).abs() < 1e-6 * work);
        assert_eq!(out.work_done, vec![work]);
        // The failed GPU is idle-powered while down: the job's JCT grows by lost + down + restart.
        assert!((r.mean_jct_s.unwrap() - 9660.0).abs() < 1e-9);
    }
}

/// Two nodes of one A100. Job A (1 h) starts at 0 on node 0; node 0 is drained at 900 s with
/// 30 min of grace and a 2 h window. Job B (600 s) arrives at 1000 s and runs on node 1; job C
/// (600 s) arrives at 1100 s and must wait for B (the drained node takes no new job), running
/// 1600-2200 s. At 2700 s the grace is over: A is preempted, losing the 900 s since its 1800 s
/// checkpoint, and restarts at once on node 1, finishing its remaining 1800 s at 4500 s. Node 0
/// is empty and out of service from 2700 s to 8100 s: 1.5 GPU-hours down.
#[test]
fn a_drained_node_takes_no_new_job_and_preempts_at_the_end_of_grace() {
    let (_d, sc) = scenario_with_trace(
        "arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s\n\
         0,resnet50,0,1,A100,3600,\n\
         1000,resnet50,1,1,A100,600,\n\
         1100,resnet50,2,1,A100,600,\n",
        r#"
hours = 3.0
seeds = 1
[[nodes]]
gpu = "A100"
count = 2
gpus_per_node = 1
[arrivals]
trace = "t.csv"
[policy]
checkpoint_interval_s = 1800.0
checkpoint_s = 0.0
restart_s = 0.0
limit_fractions = [1.0, 1.0, 1.0, 1.0]
[faults]
drain_h = 2.0
drain_grace_h = 0.5
[[faults.events]]
at_h = 0.25
node = 0
"#,
    );
    let out = run(&sc, PolicyKind::Fifo);
    let f = out.result.faults.as_ref().unwrap();
    assert_eq!(
        (f.gpu_failures, f.node_drains, f.fault_preemptions),
        (0, 1, 1)
    );
    assert_eq!(
        out.first_starts,
        vec![Some(0), Some(1000 * S), Some(1600 * S)]
    );
    assert_eq!(
        out.completed_at,
        vec![Some(4500 * S), Some(1600 * S), Some(2200 * S)]
    );
    assert!((f.lost_gpu_hours - 0.25).abs() < 1e-9);
    assert!(
        (f.down_gpu_hours - 1.5).abs() < 1e-9,
        "{}",
        f.down_gpu_hours
    );
    assert_eq!(
        out.faults
            .iter()
            .map(|e| (e.at / S, e.kind))
            .collect::<Vec<_>>(),
        vec![
            (900, FaultKind::DrainStart(0)),
            (2700, FaultKind::DrainForce(0)),
            (8100, FaultKind::DrainEnd(0)),
        ]
    );
}

/// A job on a drained node that finishes within the grace is not preempted.
#[test]
fn a_job_that_finishes_within_the_grace_is_not_preempted() {
    let (_d, sc) = scenario_with_trace(
        "arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s\n0,resnet50,0,1,A100,1000,\n",
        r#"
hours = 2.0
seeds = 1
[[nodes]]
gpu = "A100"
gpus_per_node = 1
[arrivals]
trace = "t.csv"
[policy]
checkpoint_s = 0.0
[faults]
drain_grace_h = 0.5
[[faults.events]]
at_h = 0.1
node = 0
"#,
    );
    let out = run(&sc, PolicyKind::Fifo);
    let f = out.result.faults.as_ref().unwrap();
    assert_eq!(
        (f.node_drains, f.fault_preemptions, out.result.preemptions),
        (1, 0, 0)
    );
    assert_eq!(out.completed_at, vec![Some(1000 * S)]);
    assert_eq!(f.lost_gpu_hours, 0.0);
    // Down from the job's end (1000 s) to the horizon (the 2 h window outlasts it).
    assert!((f.down_gpu_hours - (7200.0 - 1000.0) / 3600.0).abs() < 1e-9);
}

#[test]
fn fault_options_are_checked_with_their_location() {
    let e = parse_str("[faults]\ngpu_mtbf_h = -1.0\n", "f.toml", None).unwrap_err();
    assert_eq!((e.line, e.col), (2, 14), "{e}");
    assert!(
        e.msg.contains("gpu_mtbf_h: expected a positive number"),
        "{e}"
    );
    let e = parse_str("[[faults.events]]\nat_h = 1.0\ngpu = 16\n", "f.toml", None).unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.msg.contains("expected a GPU id below 16"), "{e}");
    let e = parse_str("[[faults.events]]\nat_h = 1.0\nnode = 2\n", "f.toml", None).unwrap_err();
    assert!(e.msg.contains("node index below 2"), "{e}");
    let e = parse_str("[[faults.events]]\nat_h = 1.0\n", "f.toml", None).unwrap_err();
    assert!(e.msg.contains("exactly one of gpu"), "{e}");
    let e = parse_str("[faults]\nmtbf = 3.0\n", "f.toml", None).unwrap_err();
    assert!(e.msg.contains("unknown field"), "{e}");
    let sc = parse_str("[faults]\nnode_drains_per_day = 1.0\n", "f.toml", None).unwrap();
    assert!(sc.faults.enabled());
    assert_eq!(sc.nodes.len(), 2);
    assert!(!Scenario::seed_protocol().faults.enabled());
}

#[test]
fn the_shipped_fault_scenario_parses_and_injects_faults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/faults.toml");
    let sc = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(sc.faults.enabled());
    let total: u64 = (0..sc.seeds)
        .map(|i| {
            let out = run_with(&sc, PolicyKind::Pollux, &generate(&sc, i), i, checked()).unwrap();
            out.result.faults.unwrap().gpu_failures
        })
        .sum();
    assert!(total > 0);
}

// ------------------------------------------------------------------------------------------
// Properties.

#[derive(Debug, Clone)]
struct Knobs {
    nodes: (u32, u32, u32, u32),
    rate: f64,
    median: f64,
    urgent: f64,
    rigid: f64,
    hours: f64,
    ckpt: (f64, f64, f64),
    mtbf_h: Option<f64>,
    repair_h: f64,
    drains_per_day: f64,
    drain_h: f64,
    grace_h: f64,
    scripted: (f64, u32),
    seed: u64,
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        (0u32..=2, 1u32..=8, 0u32..=2, 1u32..=8),
        (0.001f64..0.02, 300.0f64..7200.0, 0.0f64..0.5, 0.0f64..1.0),
        (1.0f64..6.0, (120.0f64..3600.0, 0.0f64..30.0, 0.0f64..120.0)),
        (
            proptest::option::of(2.0f64..100.0),
            0.05f64..3.0,
            0.0f64..12.0,
            0.1f64..3.0,
            0.0f64..2.0,
        ),
        (0.0f64..1.0, any::<u32>()),
        any::<u64>(),
    )
        .prop_map(|(n, w, h, f, scripted, seed)| Knobs {
            nodes: (if n.0 == 0 && n.2 == 0 { 1 } else { n.0 }, n.1, n.2, n.3),
            rate: w.0,
            median: w.1,
            urgent: w.2,
            rigid: w.3,
            hours: h.0,
            ckpt: h.1,
            mtbf_h: f.0,
            repair_h: f.1,
            drains_per_day: f.2,
            drain_h: f.3,
            grace_h: f.4,
            scripted,
            seed,
        })
}

fn scenario(k: &Knobs) -> Scenario {
    let (an, ag, hn, hg) = k.nodes;
    let mut t = format!(
        "name = \"faults-prop\"\nhours = {}\nseeds = 2\nseed = {}\n",
        k.hours, k.seed
    );
    if an > 0 {
        t += &format!("[[nodes]]\ngpu = \"A100\"\ncount = {an}\ngpus_per_node = {ag}\n");
    }
    if hn > 0 {
        t += &format!("[[nodes]]\ngpu = \"H100\"\ncount = {hn}\ngpus_per_node = {hg}\n");
    }
    t += &format!("[arrivals]\npoisson_rate_per_s = {}\n", k.rate);
    t += &format!(
        "[workload]\nurgent_fraction = {}\nrigid_fraction = {}\n",
        k.urgent, k.rigid
    );
    t += &format!(
        "[workload.size]\ndistribution = \"lognormal\"\nmedian = {}\nsigma = 1.0\nunit = \"seconds\"\n",
        k.median
    );
    t += &format!(
        "[policy]\ncheckpoint_interval_s = {}\ncheckpoint_s = {}\nrestart_s = {}\nround_interval_s = 120.0\n",
        k.ckpt.0, k.ckpt.1, k.ckpt.2
    );
    t += "[faults]\n";
    if let Some(m) = k.mtbf_h {
        t += &format!("gpu_mtbf_h = {m}\n");
    }
    t += &format!(
        "repair_h = {}\nnode_drains_per_day = {}\ndrain_h = {}\ndrain_grace_h = {}\n",
        k.repair_h, k.drains_per_day, k.drain_h, k.grace_h
    );
    let gpus = an * ag + hn * hg;
    t += &format!(
        "[[faults.events]]\nat_h = {}\ngpu = {}\n",
        k.scripted.0 * k.hours,
        k.scripted.1 % gpus
    );
    parse_str(&t, "faults-prop.toml", None).unwrap_or_else(|e| panic!("{e}\n{t}"))
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

fn policy() -> impl Strategy<Value = PolicyKind> {
    (0usize..8).prop_map(|i| PolicyKind::ALL[i])
}

proptest! {
    // 128 cases; PROPTEST_CASES=N runs N (RELIABILITY.md gives the longer runs).
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// After every event (with `check_invariants`): no job holds a failed GPU; the free pool
    /// holds only in-service, unheld GPUs; per type, free + held + out of service = GPUs (none
    /// leaked or counted twice); no job completes twice. Then, over the run: every job is
    /// completed, waiting or running at the horizon; work computed = work held + work lost;
    /// energy = the integral of the recorded power; the metrics count the schedule's faults.
    #[test]
    fn invariants_hold_under_failures_and_drains(k in knobs(), p in policy()) {
        let sc = scenario(&k);
        let jobs = generate(&sc, 0);
        let out = run_with(&sc, p, &jobs, 0, checked()).unwrap_or_else(|e| panic!("{e}"));
        let r = &out.result;
        let f = r.faults.as_ref().unwrap();
        prop_assert!(out.completions.iter().all(|&c| c <= 1));
        let horizon = sc.horizon();
        let not_arrived = jobs.iter().filter(|j| j.arrival >= horizon).count() as u64;
        prop_assert_eq!(r.jobs_completed + out.left_pending + out.left_running + not_arrived, jobs.len() as u64);
        for (j, spec) in jobs.iter().enumerate() {
            prop_assert!(out.work_done[j] >= 0.0 && out.work_done[j] <= spec.work);
            if out.completed_at[j].is_some() {
                prop_assert_eq!(out.work_done[j], spec.work);
            }
        }
        let held: f64 = out.work_done.iter().sum();
        let tol = 1e-9 * out.work_computed.max(1.0);
        prop_assert!((out.work_computed - held - out.work_lost).abs() <= tol,
            "computed {} != held {} + lost {}", out.work_computed, held, out.work_lost);
        prop_assert!(out.work_lost >= 0.0);
        let fails = out.faults.iter().filter(|e| matches!(e.kind, FaultKind::GpuFail(_))).count() as u64;
        let drains = out.faults.iter().filter(|e| matches!(e.kind, FaultKind::DrainStart(_))).count() as u64;
        prop_assert_eq!(f.gpu_failures, fails);
        prop_assert!(fails >= 1); // the scripted one
        prop_assert_eq!(f.node_drains, drains);
        prop_assert!(f.fault_preemptions <= r.preemptions);
        prop_assert!(f.lost_gpu_hours >= 0.0);
        let gpu_hours = sc.gpu_counts.iter().sum::<u32>() as f64 * sc.hours;
        prop_assert!(f.down_gpu_hours >= 0.0 && f.down_gpu_hours <= gpu_hours + 1e-9);
        if f.fault_preemptions == 0 {
            prop_assert_eq!(f.lost_gpu_hours, 0.0);
        }
        let mut e: u128 = 0;
        for w in out.power_trace.windows(2) {
            e += w[0].1 as u128 * (w[1].0 - w[0].0) as u128;
        }
        let (t_last, p_last) = *out.power_trace.last().unwrap();
        e += p_last as u128 * (horizon - t_last) as u128;
        let (idle, alloc, cluster) = out.energy_pj;
        prop_assert_eq!(e, cluster);
        prop_assert_eq!(idle + alloc, cluster);
    }

    /// Same scenario and seed give the same bytes with faults on; and faults do not change the
    /// workload (their RNG stream is their own).
    #[test]
    fn same_seed_same_bytes_with_faults(k in knobs(), p in policy(), run in 0u32..3) {
        let sc = scenario(&k);
        let a = run_with(&sc, p, &generate(&sc, run), run, RunOptions::default()).unwrap();
        let b = run_with(&sc, p, &generate(&sc, run), run, RunOptions::default()).unwrap();
        prop_assert_eq!(serde_json::to_string(&a.result).unwrap(), serde_json::to_string(&b.result).unwrap());
        prop_assert_eq!(&a.faults, &b.faults);
        let mut quiet = sc.clone();
        quiet.faults = Default::default();
        prop_assert_eq!(generate(&sc, run), generate(&quiet, run));
        let q = run_with(&quiet, p, &generate(&quiet, run), run, RunOptions::default()).unwrap();
        prop_assert!(q.result.faults.is_none());
    }
}

#[test]
fn thread_count_does_not_change_results_with_faults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/faults.toml");
    let mut sc = Scenario::from_file(&path).unwrap();
    sc.hours = 4.0;
    sc.seeds = 4;
    sc.faults.gpu_mtbf_h = Some(20.0);
    let go = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (cmp, runs) = pool
            .install(|| eas_sim::compare(&sc, &PolicyKind::ALL, &|| {}))
            .unwrap();
        (
            serde_json::to_string(&cmp).unwrap(),
            serde_json::to_string(&runs).unwrap(),
        )
    };
    let one = go(1);
    assert_eq!(one, go(4));
    assert!(one.0.contains("\"lost_gpu_hours\""));
}
