//! Exact accounting on a hand-made timeline: a preemption's lost work and wasted energy, the
//! restart, checkpoints, and the cluster's total energy, computed by hand.

use ea2p_core::policy::PolicyKind;
use eas_sim::scenario::Scenario;
use eas_sim::sim::{run_with, RunOptions};
use eas_sim::workload::generate;

/// One A100. Job 0 (best-effort, 3 h on the A100) starts at 0 and checkpoints at 1800 s. Job 1
/// (urgent, 600 s, deadline 2900 s) arrives at 2000 s: its slack (300 s) is under the 600 s
/// margin, so AuraChronos preempts job 0 (200 s of work lost), runs job 1 from 2000 to 2600 s,
/// then job 0 restarts (60 s allocated-idle) and computes its remaining 9000 s until 11 660 s.
#[test]
fn preemption_restart_and_energy_add_up_exactly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s\n\
         0,resnet50,0,1,A100,10800,\n\
         2000,resnet50,1,1,A100,600,2900\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        r#"
hours = 4.0
seeds = 1
[[nodes]]
gpu = "A100"
count = 1
gpus_per_node = 1
[arrivals]
trace = "t.csv"
[policy]
checkpoint_interval_s = 1800.0
checkpoint_s = 0.0
restart_s = 60.0
urgent_margin_s = 600.0
limit_fractions = [1.0, 1.0, 1.0, 1.0]
"#,
    )
    .unwrap();
    let sc = Scenario::from_file(&dir.path().join("s.toml")).unwrap();
    let jobs = generate(&sc, 0);
    let out = run_with(
        &sc,
        PolicyKind::AuraChronos,
        &jobs,
        0,
        RunOptions {
            check_invariants: true,
            record_power: true,
            ..Default::default()
        },
    )
    .unwrap();
    let r = &out.result;
    assert_eq!(r.preemptions, 1);
    assert_eq!(r.jobs_completed, 2);
    assert_eq!(out.first_starts, vec![Some(0), Some(2_000_000_000_000)]);
    assert_eq!((r.deadlines, r.deadlines_missed), (1, 0));
    // Busy ResNet-50 on one A100 draws 0.88 x 400 = 352 W; allocated-idle 66 W; idle 50 W (the
    // catalogue's figures, checked here so that the hand computation below stays in step).
    let spec = sc.gpu_types[0].spec;
    assert_eq!((spec.allocated_idle_w, spec.idle_w), (66.0, 50.0));
    let (busy, alloc_idle, idle) = (352.0, 66.0, 50.0);
    let wasted_j = busy * 200.0 + alloc_idle * 60.0;
    let total_j =
        busy * (2000.0 + 600.0 + 9000.0) + alloc_idle * 60.0 + idle * (14_400.0 - 11_660.0);
    let kwh = |j: f64| j / 3.6e6;
    // Completions land on whole nanoseconds (rounded up), hence the nanojoule-scale tolerance.
    assert!(
        (r.wasted_energy_kwh - kwh(wasted_j)).abs() < kwh(1e-3),
        "{} vs {}",
        r.wasted_energy_kwh,
        kwh(wasted_j)
    );
    assert!(
        (r.energy_kwh - kwh(total_j)).abs() < kwh(1e-3),
        "{} vs {}",
        r.energy_kwh,
        kwh(total_j)
    );
    assert!((r.energy_idle_kwh - kwh(idle * 2740.0)).abs() < kwh(1e-3));
    // JCTs: 600 s for the urgent job, 11 660 s for the preempted one.
    assert!((r.mean_jct_s.unwrap() - (600.0 + 11_660.0) / 2.0).abs() < 1e-6);
    assert!((r.makespan_s - 11_660.0).abs() < 1e-6);
    // The power trace: busy from t = 0 (the idle start lasted no time), the restart dip to
    // allocated-idle, busy again, the idle tail.
    let levels: Vec<u64> = out.power_trace.iter().map(|p| p.1).collect();
    assert_eq!(levels, vec![352_000, 66_000, 352_000, 50_000]);
}

/// Without preemption (Chronos), the urgent job waits and misses its deadline; nothing is wasted.
#[test]
fn chronos_does_not_preempt() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s\n0,resnet50,0,1,A100,10800,\n2000,resnet50,1,1,A100,600,2900\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "hours = 4.0\nseeds = 1\n[[nodes]]\ngpu = \"A100\"\ncount = 1\ngpus_per_node = 1\n[arrivals]\ntrace = \"t.csv\"\n",
    )
    .unwrap();
    let sc = Scenario::from_file(&dir.path().join("s.toml")).unwrap();
    let r = run_with(
        &sc,
        PolicyKind::Chronos,
        &generate(&sc, 0),
        0,
        RunOptions::default(),
    )
    .unwrap()
    .result;
    assert_eq!(r.preemptions, 0);
    assert_eq!(r.wasted_energy_kwh, 0.0);
    assert_eq!((r.deadlines, r.deadlines_missed), (1, 1));
}
