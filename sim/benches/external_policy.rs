//! Benchmark program: the cost of a policy outside the core, per scheduling round, in Rust (this
//! program) against the same policy in Python (`sim/python/bench.py`).
//!
//! The policy is the README's worked example, shortest job first by predicted energy
//! (`sim/python/examples/sjf_energy.py`), written here against [`ExternalPolicy`] with the same
//! order, ties and placement. It runs on the seed protocol's run 0 (10 simulated hours); the
//! program prints the median wall time of 15 runs, the rounds, the time per round, and the same
//! for the built-in FIFO (the engine's own cost). With `EAS_BENCH_OUT=FILE` it writes the run's
//! results as JSON, which `bench.py` checks against the Python policy's (same policy, same
//! results).
//!
//! `cargo bench -p eas-sim --bench external_policy`

use std::time::Instant;

use ea2p_core::jobmodel::{evaluate, Config};
use ea2p_core::policy::{ClusterView, Decision, Decisions, JobView, PolicyKind};
use eas_sim::public_trace::SharedTally;
use eas_sim::scenario::Scenario;
use eas_sim::sim::{self, ExternalPolicy, RunOptions};
use eas_sim::workload;

/// Least predicted energy first (the Python example's algorithm).
#[derive(Default)]
struct SjfEnergy {
    rounds: u64,
    ranked: Vec<(f64, u64, u32, u8)>,
}

impl ExternalPolicy for SjfEnergy {
    fn name(&self) -> &str {
        "sjf-energy"
    }

    fn schedule(
        &mut self,
        cluster: &ClusterView<'_>,
        jobs: &[JobView],
        out: &mut Decisions<'_>,
    ) -> Result<(), String> {
        self.rounds += 1;
        let mut free = cluster.free.to_vec();
        self.ranked.clear();
        for (i, job) in jobs.iter().enumerate() {
            if job.running.is_some() {
                continue;
            }
            let types = match job.request.gpu_type {
                Some(t) => t..t + 1,
                None => 0..cluster.gpu_specs.len() as u8,
            };
            let mut best: Option<(f64, u8)> = None;
            for t in types {
                let cfg = Config {
                    gpu_type: t,
                    gpus: job.request.gpus,
                    batch: job.request.batch,
                    limit_w: cluster.gpu_specs[t as usize].max_w,
                };
                let model = &cluster.models[job.model as usize];
                if let Ok(p) = evaluate(model, cluster.gpu_specs, &cfg) {
                    let e = p.joules_per_sample(cfg.gpus) * job.remaining_work;
                    if best.is_none_or(|(b, _)| e < b) {
                        best = Some((e, t));
                    }
                }
            }
            if let Some((e, t)) = best {
                self.ranked.push((e, job.id, i as u32, t));
            }
        }
        self.ranked
            .sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for &(_, _, i, t) in &self.ranked {
            if free.iter().all(|&f| f == 0) {
                break;
            }
            let job = &jobs[i as usize];
            if free[t as usize] >= job.request.gpus {
                free[t as usize] -= job.request.gpus;
                let cfg = Config {
                    gpu_type: t,
                    gpus: job.request.gpus,
                    batch: job.request.batch,
                    limit_w: cluster.gpu_specs[t as usize].max_w,
                };
                out.push(Decision::Start { job: i, cfg })
                    .map_err(|_| "decision buffer full".to_string())?;
            }
        }
        Ok(())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let sc = Scenario::seed_protocol();
    let opts = RunOptions {
        skip_per_job: true,
        ..RunOptions::default()
    };
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..15 {
        let mut p = SjfEnergy::default();
        let src = workload::source(&sc, 0, SharedTally::default()).expect("seed workload");
        let t0 = Instant::now();
        let out = sim::run_external(&sc, &mut p, src, 0, opts).expect("runs");
        times.push(t0.elapsed().as_secs_f64());
        last = Some((out.result, p.rounds));
    }
    let (result, rounds) = last.expect("ran");
    let t = median(times);
    println!(
        "sjf-energy in Rust, seed protocol run 0 ({} h): median {:.3} ms over 15 runs, {rounds} rounds, {:.2} µs/round, {} jobs completed",
        sc.hours,
        t * 1e3,
        t * 1e6 / rounds as f64,
        result.jobs_completed
    );
    let mut times = Vec::new();
    for _ in 0..15 {
        let src = workload::source(&sc, 0, SharedTally::default()).expect("seed workload");
        let t0 = Instant::now();
        sim::run_source(&sc, PolicyKind::Fifo, src, 0, opts).expect("runs");
        times.push(t0.elapsed().as_secs_f64());
    }
    println!(
        "built-in fifo, same run: median {:.3} ms over 15 runs",
        median(times) * 1e3
    );
    if let Ok(path) = std::env::var("EAS_BENCH_OUT") {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&result).expect("serialises"),
        )
        .expect("writes EAS_BENCH_OUT");
    }
}
