//! Benchmark program (not criterion: one run of the seed protocol is already 80 simulations).
//! `cargo bench -p eas-sim --bench protocol` prints:
//! - wall time of the full seed protocol (8 policies x 10 seeds x 10 h), median of 5, and
//!   events per second;
//! - time against job count (1k, 10k, 100k jobs) for FIFO and Zeus on the seed cluster at a
//!   moderate load, one thread, so growth is visible without parallelism.

use std::time::Instant;

use ea2p_core::policy::PolicyKind;
use eas_sim::scenario::{parse_str, Scenario};
use eas_sim::{sim, workload};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let threads = rayon::current_num_threads();
    let sc = Scenario::seed_protocol();
    let mut times = Vec::new();
    let mut events = 0u64;
    for _ in 0..5 {
        let t0 = Instant::now();
        let (_, runs) =
            eas_sim::compare(&sc, &PolicyKind::ALL, &|| {}).expect("seed protocol runs");
        times.push(t0.elapsed().as_secs_f64());
        events = runs.iter().flatten().map(|r| r.events).sum();
    }
    let t = median(times);
    println!("seed protocol (8 policies x {} seeds x {} h, {threads} threads): median {:.3} s over 5, {events} events, {:.3e} events/s", sc.seeds, sc.hours, t, events as f64 / t);

    // Scaling: the seed cluster and job mix, arrivals at 0.0005 jobs/s (a tenth of the seed rate)
    // so that the queue stays bounded and time per job is comparable across sizes.
    println!(
        "\n| policy | jobs | simulated h | GPU utilisation | events | wall s | events/s | µs/job |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for policy in [PolicyKind::Fifo, PolicyKind::Zeus] {
        for n in [1_000u64, 10_000, 100_000] {
            let rate = 0.0005;
            let hours = n as f64 / rate / 3600.0;
            let text = format!("name = \"scale\"\nhours = {hours}\nseeds = 1\n[arrivals]\npoisson_rate_per_s = {rate}\n");
            let sc = parse_str(&text, "scale.toml", None).expect("valid");
            let jobs = workload::generate(&sc, 0);
            let t0 = Instant::now();
            let r = sim::run(&sc, policy, &jobs, 0).expect("runs");
            let dt = t0.elapsed().as_secs_f64();
            println!(
                "| {} | {} | {:.0} | {:.0}% | {} | {:.3} | {:.3e} | {:.1} |",
                policy.name(),
                jobs.len(),
                hours,
                100.0 * r.utilisation.iter().map(|u| u.utilisation).sum::<f64>()
                    / r.utilisation.len() as f64,
                r.events,
                dt,
                r.events as f64 / dt,
                dt * 1e6 / jobs.len() as f64
            );
        }
    }

    // Overload: the seed rate (0.005 jobs/s, more than the cluster serves), so the queue grows
    // all run long and every round that can start a job sorts a queue of thousands.
    println!("\n| policy (overload) | jobs | simulated h | completed | events | wall s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for policy in [PolicyKind::Fifo, PolicyKind::Pollux] {
        for n in [1_000u64, 10_000] {
            let rate = 0.005;
            let hours = n as f64 / rate / 3600.0;
            let text = format!("name = \"overload\"\nhours = {hours}\nseeds = 1\n");
            let sc = parse_str(&text, "overload.toml", None).expect("valid");
            let jobs = workload::generate(&sc, 0);
            let t0 = Instant::now();
            let r = sim::run(&sc, policy, &jobs, 0).expect("runs");
            let dt = t0.elapsed().as_secs_f64();
            println!(
                "| {} | {} | {:.0} | {} | {} | {:.3} |",
                policy.name(),
                jobs.len(),
                hours,
                r.jobs_completed,
                r.events,
                dt
            );
        }
    }
}
