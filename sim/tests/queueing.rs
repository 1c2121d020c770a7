//! The simulator against queueing theory: FCFS with rigid one-GPU jobs, Poisson arrivals and
//! exponential run times is an M/M/c queue, whose mean wait is given by the Erlang-C formula
//! (CALIBRATION.md: c = 16, load 0.8, mean run time 3600 s -> about 343 s).

use ea2p_core::policy::PolicyKind;
use ea2p_core::units::secs;
use eas_sim::scenario::parse_str;
use eas_sim::sim::{run_with, RunOptions};
use eas_sim::workload::generate;

/// Erlang-C mean wait in an M/M/c queue with offered load `a = lambda / mu` (Erlangs).
fn erlang_c_wait(c: u32, a: f64, mean_service: f64) -> f64 {
    let mut term = 1.0; // a^k / k!
    let mut sum = 1.0;
    for k in 1..c {
        term *= a / k as f64;
        sum += term;
    }
    let last = term * a / c as f64; // a^c / c!
    let rho = a / c as f64;
    let pc = last / (1.0 - rho) / (sum + last / (1.0 - rho));
    pc * mean_service / (c as f64 - a)
}

fn mm16(load: f64, hours: f64, seeds: u32) -> String {
    let rate = load * 16.0 / 3600.0;
    format!(
        r#"
name = "mm16"
hours = {hours}
seeds = {seeds}
seed = 7
[[nodes]]
gpu = "A100"
count = 2
gpus_per_node = 8
[arrivals]
poisson_rate_per_s = {rate}
[workload]
users = 4
urgent_fraction = 0.0
rigid_fraction = 1.0
mix = [{{ model = "resnet50", weight = 1.0 }}]
gpus = [{{ count = 1, weight = 1.0 }}]
[workload.size]
distribution = "exponential"
mean = 3600.0
unit = "seconds"
on_gpu = "A100"
[policy]
checkpoint_s = 0.0
"#
    )
}

#[test]
fn erlang_c_formula_matches_calibration_figures() {
    assert!((erlang_c_wait(1, 0.8, 3600.0) - 14400.0).abs() < 1e-6);
    assert!((erlang_c_wait(16, 12.8, 3600.0) - 343.0).abs() < 1.0);
    assert!((erlang_c_wait(16, 14.4, 3600.0) - 1330.0).abs() < 10.0);
}

#[test]
fn fifo_mean_wait_matches_erlang_c_at_load_0_8() {
    let hours = 6000.0;
    let seeds = 8;
    let sc = parse_str(&mm16(0.8, hours, seeds), "mm16.toml", None).unwrap();
    let warmup = 100.0 * 3600e9;
    let cutoff = (hours - 100.0) * 3600e9;
    let mut means = Vec::new();
    let mut utils = Vec::new();
    let mut little = Vec::new();
    for s in 0..seeds {
        let jobs = generate(&sc, s);
        let out = run_with(&sc, PolicyKind::Fifo, &jobs, s, RunOptions::default()).unwrap();
        let mut sum = 0.0;
        let mut n = 0usize;
        for (j, start) in jobs.iter().zip(&out.first_starts) {
            let a = j.arrival as f64;
            if a < warmup || a > cutoff {
                continue;
            }
            let st = start.expect("jobs arriving 100 h before the horizon have started");
            sum += secs(st - j.arrival);
            n += 1;
        }
        means.push(sum / n as f64);
        utils.push(out.result.utilisation[0].utilisation);
        // Little's law over the window [warmup, cutoff]: time-average number in system
        // = arrival rate x mean time in system.
        let (w0, w1) = (warmup, cutoff);
        let mut area = 0.0;
        let (mut arrived, mut sojourn) = (0usize, 0.0);
        for (j, done) in jobs.iter().zip(&out.completed_at) {
            let a = j.arrival as f64;
            let d = done.map_or(f64::INFINITY, |d| d as f64);
            area += (d.min(w1) - a.max(w0)).max(0.0);
            if a >= w0 && a < w1 {
                arrived += 1;
                sojourn += d - a;
            }
        }
        let l = area / (w1 - w0);
        let lambda_w = arrived as f64 / (w1 - w0) * (sojourn / arrived as f64);
        little.push((l, lambda_w));
    }
    let n = means.len() as f64;
    let m = means.iter().sum::<f64>() / n;
    let sd = (means.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt();
    let half = 3.499 * sd / n.sqrt(); // t(0.995, 7): a 99% interval over the seeds
    let theory = erlang_c_wait(16, 12.8, 3600.0);
    eprintln!("mean wait {m:.1} s ± {half:.1} (99%), Erlang C {theory:.1} s; per seed {means:?}");
    assert!(
        (m - theory).abs() <= half.max(0.05 * theory),
        "mean wait {m} vs Erlang C {theory} (99% half-width {half})"
    );
    assert!(
        half < 0.3 * theory,
        "interval too wide to test anything: {half}"
    );
    for (l, lw) in &little {
        assert!(
            (l - lw).abs() < 0.01 * l,
            "Little's law: L = {l}, lambda W = {lw}"
        );
    }
    // Utilisation = lambda E[S] / c = 0.8.
    let u = utils.iter().sum::<f64>() / n;
    assert!((u - 0.8).abs() < 0.02, "utilisation {u}");
}
