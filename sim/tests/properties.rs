//! Property tests: determinism (same seed, same bytes; any thread count) and the simulator's
//! invariants on random scenarios.

use ea2p_core::policy::PolicyKind;
use eas_sim::scenario::{parse_str, Scenario};
use eas_sim::sim::{run_with, RunOptions};
use eas_sim::workload::generate;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Knobs {
    a100_nodes: u32,
    a100_per_node: u32,
    h100_nodes: u32,
    h100_per_node: u32,
    rate: f64,
    median: f64,
    sigma: f64,
    urgent: f64,
    rigid: f64,
    users: u32,
    hours: f64,
    ckpt_interval: f64,
    ckpt_s: f64,
    restart_s: f64,
    cap_frac: Option<f64>,
    cap_changes: Vec<(f64, Option<f64>)>,
    seed: u64,
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        (0u32..=2, 1u32..=8, 0u32..=2, 1u32..=8),
        (0.0005f64..0.02, 120.0f64..7200.0, 0.1f64..1.5),
        (0.0f64..0.6, 0.0f64..1.0, 1u32..6, 0.3f64..4.0),
        (120.0f64..3600.0, 0.0f64..30.0, 0.0f64..120.0),
        (
            proptest::option::of(0.3f64..1.0),
            proptest::collection::vec((0.0f64..1.0, proptest::option::of(0.3f64..1.0)), 0..3),
        ),
        any::<u64>(),
    )
        .prop_map(|(n, w, u, c, caps, seed)| Knobs {
            a100_nodes: if n.0 == 0 && n.2 == 0 { 1 } else { n.0 },
            a100_per_node: n.1,
            h100_nodes: n.2,
            h100_per_node: n.3,
            rate: w.0,
            median: w.1,
            sigma: w.2,
            urgent: u.0,
            rigid: u.1,
            users: u.2,
            hours: u.3,
            ckpt_interval: c.0,
            ckpt_s: c.1,
            restart_s: c.2,
            cap_frac: caps.0,
            cap_changes: caps.1,
            seed,
        })
}

/// A cap between the all-idle floor (plus 10 %) and the all-busy ceiling.
fn cap_w(k: &Knobs, frac: f64) -> f64 {
    let a = (k.a100_nodes * k.a100_per_node) as f64;
    let h = (k.h100_nodes * k.h100_per_node) as f64;
    let floor = 1.1 * (a * 50.0 + h * 73.0); // the catalogue's idle A100 and H100
    let ceil = a * 400.0 + h * 700.0;
    floor + (ceil - floor) * frac
}

fn scenario(k: &Knobs) -> Scenario {
    let mut t = format!(
        "name = \"prop\"\nhours = {}\nseeds = 2\nseed = {}\n",
        k.hours, k.seed
    );
    if k.a100_nodes > 0 {
        t += &format!(
            "[[nodes]]\ngpu = \"A100\"\ncount = {}\ngpus_per_node = {}\n",
            k.a100_nodes, k.a100_per_node
        );
    }
    if k.h100_nodes > 0 {
        t += &format!(
            "[[nodes]]\ngpu = \"H100\"\ncount = {}\ngpus_per_node = {}\n",
            k.h100_nodes, k.h100_per_node
        );
    }
    t += &format!("[arrivals]\npoisson_rate_per_s = {}\n", k.rate);
    t += &format!(
        "[workload]\nusers = {}\nurgent_fraction = {}\nrigid_fraction = {}\n",
        k.users, k.urgent, k.rigid
    );
    t += &format!(
        "[workload.size]\ndistribution = \"lognormal\"\nmedian = {}\nsigma = {}\nunit = \"seconds\"\n",
        k.median, k.sigma
    );
    t += &format!(
        "[policy]\ncheckpoint_interval_s = {}\ncheckpoint_s = {}\nrestart_s = {}\nround_interval_s = 120.0\n",
        k.ckpt_interval, k.ckpt_s, k.restart_s
    );
    if let Some(f) = k.cap_frac {
        t += &format!("power_cap_w = {}\n", cap_w(k, f));
    }
    for (at, w) in &k.cap_changes {
        t += &format!("[[power_cap_changes]]\nat_h = {}\n", at * k.hours);
        if let Some(f) = w {
            t += &format!("watts = {}\n", cap_w(k, *f));
        }
    }
    parse_str(&t, "prop.toml", None).unwrap_or_else(|e| panic!("{e}\n{t}"))
}

fn policy() -> impl Strategy<Value = PolicyKind> {
    (0usize..8).prop_map(|i| PolicyKind::ALL[i])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn same_scenario_and_seed_give_identical_bytes(k in knobs(), p in policy(), run in 0u32..3) {
        let sc = scenario(&k);
        let a = generate(&sc, run);
        let b = generate(&sc, run);
        prop_assert_eq!(&a, &b);
        let ra = run_with(&sc, p, &a, run, RunOptions::default()).unwrap().result;
        let rb = run_with(&sc, p, &b, run, RunOptions::default()).unwrap().result;
        prop_assert_eq!(serde_json::to_string(&ra).unwrap(), serde_json::to_string(&rb).unwrap());
    }

    /// Policies get running jobs' views only in rounds where they read them (never for FIFO,
    /// Themis, Chronos and Hades; only with an empty queue for Pollux and Zeus): giving them every
    /// running job's view in every round must not change a byte, with or without batched rounds.
    #[test]
    fn views_left_out_change_no_result(
        k in knobs(),
        p in policy(),
        gap_s in prop_oneof![Just(0u64), 1u64..120],
    ) {
        let mut sc = scenario(&k);
        sc.min_round_gap = gap_s * 1_000_000_000;
        let jobs = generate(&sc, 0);
        let fast = run_with(&sc, p, &jobs, 0, RunOptions::default()).unwrap().result;
        let all = RunOptions { all_views: true, ..Default::default() };
        let full = run_with(&sc, p, &jobs, 0, all).unwrap().result;
        prop_assert_eq!(serde_json::to_string(&fast).unwrap(), serde_json::to_string(&full).unwrap());
    }

    #[test]
    fn invariants_hold_on_random_scenarios(k in knobs(), p in policy()) {
        let sc = scenario(&k);
        let jobs = generate(&sc, 0);
        let opts = RunOptions { check_invariants: true, record_power: true, ..Default::default() };
        // check_invariants: no GPU held twice, every held GPU belongs to its job's list, a job
        // completes at most once, Charon never over the cap (any interval of positive length).
        let out = run_with(&sc, p, &jobs, 0, opts).unwrap_or_else(|e| panic!("{e}"));
        prop_assert!(out.completions.iter().all(|&c| c <= 1));
        prop_assert_eq!(out.completions.iter().map(|&c| c as u64).sum::<u64>(), out.result.jobs_completed);
        // Energy = integral of the recorded cluster power, exactly (integer mW x ns).
        let horizon = sc.horizon();
        let mut e: u128 = 0;
        for w in out.power_trace.windows(2) {
            e += w[0].1 as u128 * (w[1].0 - w[0].0) as u128;
        }
        let (t_last, p_last) = *out.power_trace.last().unwrap();
        e += p_last as u128 * (horizon - t_last) as u128;
        let (idle, alloc, cluster) = out.energy_pj;
        prop_assert_eq!(e, cluster);
        prop_assert_eq!(idle + alloc, cluster);
        // Wasted energy only comes from preemptions and restarts.
        if out.result.preemptions == 0 && out.result.resizes == 0 {
            prop_assert_eq!(out.result.wasted_energy_kwh, 0.0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn charon_never_exceeds_the_power_cap(mut k in knobs(), first in 0.3f64..1.0) {
        k.cap_frac = Some(first);
        k.rate *= 2.0; // busy clusters test the cap
        let sc = scenario(&k);
        let jobs = generate(&sc, 1);
        let opts = RunOptions { check_invariants: true, record_power: true, ..Default::default() };
        let out = run_with(&sc, PolicyKind::Charon, &jobs, 1, opts).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(out.max_over_cap_mw, 0);
        // And directly on the trace: every power level that lasts is under the cap in force.
        let mut caps: Vec<(u64, Option<f64>)> = vec![(0, sc.power_cap_w)];
        caps.extend(sc.cap_changes.iter().map(|c| (c.at, c.watts)));
        let cap_at = |t: u64| caps.iter().rev().find(|(at, _)| *at <= t).and_then(|c| c.1);
        for w in out.power_trace.windows(2) {
            if w[1].0 > w[0].0 {
                if let Some(c) = cap_at(w[0].0) {
                    prop_assert!(w[0].1 as f64 / 1000.0 <= c, "{} W over cap {} W at {}", w[0].1 as f64 / 1000.0, c, w[0].0);
                }
            }
        }
    }
}

#[test]
fn thread_count_does_not_change_results() {
    let sc = {
        let mut s = Scenario::seed_protocol();
        s.hours = 3.0;
        s.seeds = 4;
        s
    };
    let run = |threads: usize| {
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
    let one = run(1);
    let many = run(4);
    assert_eq!(one, many);
    assert!(
        one.0.contains("\"policy\": \"aurachronos\"")
            || one.0.contains("\"policy\":\"aurachronos\"")
    );
}

#[test]
fn idle_cluster_uses_exactly_idle_power_times_gpus_times_time() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("empty.csv");
    std::fs::write(
        &trace,
        "arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s\n",
    )
    .unwrap();
    let file = dir.path().join("idle.toml");
    std::fs::write(
        &file,
        "hours = 5.0\nseeds = 1\n[arrivals]\ntrace = \"empty.csv\"\n",
    )
    .unwrap();
    let sc = Scenario::from_file(&file).unwrap();
    for p in PolicyKind::ALL {
        let out = run_with(&sc, p, &generate(&sc, 0), 0, RunOptions::default()).unwrap();
        let ns = 5u128 * 3600 * 1_000_000_000;
        let expect = (8 * 50_000 + 8 * 73_000) as u128 * ns; // mW x ns = pJ (idle A100 50 W, H100 73 W)
        assert_eq!(out.energy_pj, (expect, 0, expect));
        assert_eq!(
            out.result.energy_kwh,
            (8.0 * 50.0 + 8.0 * 73.0) * 5.0 / 1000.0
        );
        assert_eq!(out.result.jobs_completed, 0);
    }
}
