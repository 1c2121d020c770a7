//! # eas-sim
//!
//! A deterministic discrete-event simulator of a heterogeneous GPU cluster running deep-learning
//! training jobs, comparing the eight scheduling policies of `ea2p-core` on throughput, energy,
//! EDP, job completion time, deadlines, fairness and peak power.
//!
//! | module | what it holds |
//! |---|---|
//! | [`catalogue`] | built-in GPU types and models, every number with its source |
//! | [`scenario`] | TOML scenario files, with errors that name file, line and column |
//! | [`workload`] | seeded Poisson job generator and trace reader |
//! | [`engine`] | the event queue: integer time, (time, sequence) order, lazy cancellation |
//! | [`cluster`] | GPUs, power states, exact integer energy |
//! | [`faults`] | GPU failures and node drains, drawn from their own RNG stream |
//! | [`input`] | bounded reads of regular files, outputs opened before the work, terminal-safe text |
//! | [`limits`] | the range of every number, and what a run may allocate |
//! | [`sim`] | one run: events, policy rounds, checkpoints, preemptions, power caps |
//! | [`results`] | per-run metrics and their mean and 95% interval over seeds |
//! | [`words`] | the core's errors in words |
//! | [`report`] | table, CSV, JSON and SVG plot |
//! | [`validate`] | measured power-limit sweeps: reading, fitting the limit response, `eas-sim validate` |
//!
//! Same scenario and seed give byte-identical results, whatever the number of threads: runs are
//! independent, and their results are collected in (policy, seed) order.

pub mod catalogue;
pub mod cluster;
pub mod engine;
pub mod faults;
pub mod input;
pub mod limits;
pub mod public_trace;
pub mod report;
pub mod results;
pub mod scenario;
pub mod shard;
pub mod sim;
pub mod validate;
pub mod words;
pub mod workload;

use ea2p_core::policy::PolicyKind;
use rayon::prelude::*;

use crate::public_trace::SharedTally;
use crate::results::{Comparison, PolicySummary, RunResult};
use crate::scenario::{Arrivals, Scenario};
use crate::sim::{RunOptions, SimError};

/// Runs every policy of `policies` on every seed of the scenario, in parallel; `tick` is called
/// once per finished run (for a progress bar). Results come back as `[policy][seed]`, in the
/// order asked, whatever the thread count.
pub fn compare_runs(
    sc: &Scenario,
    policies: &[PolicyKind],
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<Vec<RunResult>>, SimError> {
    compare_runs_traced(sc, policies, tick, &SharedTally::default())
}

/// [`compare_runs`]; with a public trace as arrivals, each run streams the file itself and the
/// first run's tally of what was left out lands in `tally` (every run reads the same rows).
pub fn compare_runs_traced(
    sc: &Scenario,
    policies: &[PolicyKind],
    tick: &(dyn Fn() + Sync),
    tally: &SharedTally,
) -> Result<Vec<Vec<RunResult>>, SimError> {
    let all: Vec<usize> = (0..policies.len() * sc.seeds as usize).collect();
    let flat = run_indices(sc, policies, &all, tick, tally)?;
    let seeds = sc.seeds as usize;
    let mut out = vec![Vec::with_capacity(seeds); policies.len()];
    for (idx, r) in flat.into_iter().enumerate() {
        out[idx / seeds].push(r);
    }
    Ok(out)
}

/// Runs the runs numbered `indices` of the (policy, seed) grid, run `idx` being policy
/// `idx / seeds` on seed `idx % seeds`, in parallel; results come back in the order of
/// `indices`. A slice of the grid gives exactly the results the whole grid gives for those runs
/// (what `compare --shard` relies on). With a public trace, the first index's run fills `tally`.
pub fn run_indices(
    sc: &Scenario,
    policies: &[PolicyKind],
    indices: &[usize],
    tick: &(dyn Fn() + Sync),
    tally: &SharedTally,
) -> Result<Vec<RunResult>, SimError> {
    limits::check(sc, sc.seeds).map_err(SimError::Scenario)?;
    limits::check_cap_for(sc, policies).map_err(SimError::Scenario)?;
    let seeds = sc.seeds as usize;
    let streamed = matches!(sc.arrivals, Arrivals::Public(_));
    // Generated workloads are shared by the policies of a seed (only the seeds asked for are
    // drawn); a trace is streamed per run.
    let mut needed = vec![false; seeds];
    for &idx in indices {
        needed[idx % seeds] = !streamed;
    }
    let workloads: Vec<Option<Vec<workload::JobSpec>>> = (0..sc.seeds)
        .into_par_iter()
        .map(|i| needed[i as usize].then(|| workload::generate(sc, i)))
        .collect();
    let first = indices.first().copied();
    let flat: Vec<Result<RunResult, SimError>> = indices
        .par_iter()
        .map(|&idx| {
            let (p, s) = (idx / seeds, idx % seeds);
            let r = if streamed {
                let t = if Some(idx) == first {
                    tally.clone()
                } else {
                    SharedTally::default()
                };
                workload::source(sc, s as u32, t).and_then(|src| {
                    let opts = RunOptions {
                        skip_per_job: true,
                        ..RunOptions::default()
                    };
                    sim::run_source(sc, policies[p], src, s as u32, opts).map(|o| o.result)
                })
            } else {
                let jobs = workloads[s].as_deref().expect("drawn above");
                sim::run(sc, policies[p], jobs, s as u32)
            };
            tick();
            r
        })
        .collect();
    flat.into_iter().collect()
}

/// [`compare_runs`] aggregated per policy.
pub fn compare(
    sc: &Scenario,
    policies: &[PolicyKind],
    tick: &(dyn Fn() + Sync),
) -> Result<(Comparison, Vec<Vec<RunResult>>), SimError> {
    compare_traced(sc, policies, tick, &SharedTally::default())
}

/// [`compare`], with the trace tally of [`compare_runs_traced`].
pub fn compare_traced(
    sc: &Scenario,
    policies: &[PolicyKind],
    tick: &(dyn Fn() + Sync),
    tally: &SharedTally,
) -> Result<(Comparison, Vec<Vec<RunResult>>), SimError> {
    let runs = compare_runs_traced(sc, policies, tick, tally)?;
    let summaries = policies
        .iter()
        .zip(&runs)
        .map(|(p, r)| PolicySummary::of(p.name(), r))
        .collect();
    Ok((
        Comparison {
            scenario: sc.name.clone(),
            policies: summaries,
        },
        runs,
    ))
}
