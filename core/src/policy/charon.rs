//! Charon (power cap): places work only while the cluster's total power stays under a budget
//! `Pcap`.
//!
//! Committed power: idle power of every free GPU plus, for every running job, `k x P(cfg)`, the
//! power of its configuration while it trains (at least what it draws restarting or
//! checkpointing). Order: Pollux's, `est_remaining_s - age_factor * waited_s` (least first),
//! skipping jobs that do not fit: the cap is the only difference from a throughput scheduler,
//! so comparing with Pollux shows what the cap costs. Configuration:
//! the highest goodput whose added power `k x (P - P_idle)` fits in `Pcap - committed`, trying
//! lower power limits when the unlimited one does not fit. When the cap drops below the
//! committed power, running jobs (newest first) move to their lowest power limit, then, if that is
//! not enough, are preempted newest first.

use super::{
    age_s, by_key, fair_share, in_order, sort_by_key, split, ClusterView, ConfigMemo, Decision,
    Decisions, JobView, ModelTable, Objective, PolicyParams, Probe, MAX_MODELS,
};
use super::{Param, PolicyDescriptor, Reads, RunningReads};
use crate::jobmodel::LimitTable;

/// Slots of the committed-power memo (a power of two).
const POWER_MEMO: usize = 256;

/// Margin (W) kept under the cap against floating-point rounding of the sums.
const MARGIN_W: f64 = 1e-6;

/// Power the cluster is committed to: free GPUs at idle, running jobs at their training power.
pub(crate) fn committed_power_w(cluster: &ClusterView<'_>, jobs: &[JobView]) -> f64 {
    let mut w = 0.0;
    for (ty, spec) in cluster.gpu_specs.iter().enumerate() {
        w += cluster.free.get(ty).copied().unwrap_or(0) as f64 * spec.idle_w;
    }
    // Thousands of running jobs share a few dozen (model, configuration) pairs: each pair's
    // power is evaluated once (same values, same order of the sum).
    let mut memo = ConfigMemo::<Option<f64>, POWER_MEMO>::new();
    for j in jobs {
        if let Some(c) = j.running {
            let power = memo.get_or_insert(j.model, &c, || {
                let model = &cluster.models[j.model as usize];
                let m = j.model as usize;
                LimitTable::evaluate(cluster.limit_effects, m, model, cluster.gpu_specs, &c)
                    .ok()
                    .map(|p| p.job_power_w(c.gpus))
            });
            if let Some(p) = power {
                w += p;
            }
        }
    }
    w
}

/// Charon's entry in [`super::POLICIES`].
pub const DESCRIPTOR: PolicyDescriptor = PolicyDescriptor::new(
    "charon",
    "Places work only while the cluster's power stays under the cap.",
    Reads {
        running_jobs: RunningReads::Always,
        power_cap: true,
        ..Reads::BASIC
    },
    true,
    &[Param::AgeFactor, Param::LimitFractions],
    schedule,
);

/// One Charon round, on input [`super::check_round`] accepted.
pub(crate) fn schedule(
    params: &PolicyParams,
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    scratch: &mut [u32],
    out: &mut Decisions<'_>,
) {
    let cap = cluster.power_cap_w.unwrap_or(f64::INFINITY);
    let n = jobs.len();
    let (p, r) = split(jobs, scratch);
    let (front, running) = scratch[..n].split_at_mut(n - r);
    let mut committed = committed_power_w(cluster, jobs);
    let mut free = super::free_of(cluster);
    if committed > cap - MARGIN_W {
        // Newest first: the least progress is disturbed.
        sort_by_key(running, jobs, |j| -(j.arrival as f64));
        for &i in running.iter() {
            if committed <= cap - MARGIN_W {
                break;
            }
            let job = &jobs[i as usize];
            let Some(cur) = job.running else { continue };
            let model = &cluster.models[job.model as usize];
            let Some(perf) = model.perf[cur.gpu_type as usize] else {
                continue;
            };
            let spec = &cluster.gpu_specs[cur.gpu_type as usize];
            let lowest = params
                .limit_fractions
                .iter()
                .copied()
                .fold(1.0f64, f64::min);
            let limit_w = (lowest * perf.busy_w).clamp(spec.min_limit_w, spec.max_w);
            let cfg = super::Config { limit_w, ..cur };
            let (table, m) = (cluster.limit_effects, job.model as usize);
            let (Ok(a), Ok(b)) = (
                LimitTable::evaluate(table, m, model, cluster.gpu_specs, &cur),
                LimitTable::evaluate(table, m, model, cluster.gpu_specs, &cfg),
            ) else {
                continue;
            };
            if b.power_per_gpu_w < a.power_per_gpu_w {
                if out.push(Decision::Resize { job: i, cfg }).is_err() {
                    return;
                }
                committed -= (a.power_per_gpu_w - b.power_per_gpu_w) * cur.gpus as f64;
            }
        }
        for &i in running.iter() {
            if committed <= cap - MARGIN_W {
                break;
            }
            let job = &jobs[i as usize];
            let Some(cur) = job.running else { continue };
            let model = &cluster.models[job.model as usize];
            let lowest = out.as_slice().iter().rev().find_map(|d| match d {
                Decision::Resize { job, cfg } if *job == i => Some(*cfg),
                _ => None,
            });
            let cfg = lowest.unwrap_or(cur);
            let (table, m) = (cluster.limit_effects, job.model as usize);
            let Ok(b) = LimitTable::evaluate(table, m, model, cluster.gpu_specs, &cfg) else {
                continue;
            };
            if out.push(Decision::Preempt { job: i }).is_err() {
                return;
            }
            let idle = cluster.gpu_specs[cur.gpu_type as usize].idle_w;
            committed -= (b.power_per_gpu_w - idle) * cur.gpus as f64;
            free[cur.gpu_type as usize] = free[cur.gpu_type as usize].saturating_add(cur.gpus);
        }
        // Freed GPUs stay idle this round: the cap just dropped.
        return;
    }
    if free.iter().all(|&f| f == 0) {
        return; // nothing can start: skip the sort
    }
    let order = &mut front[..p];
    let table = ModelTable::new(cluster, params, false);
    let now = cluster.now;
    let cmp = by_key(jobs, |j| {
        table.est_remaining_s(j) - params.age_factor * age_s(now, j)
    });
    let share = fair_share(&free, p);
    // Per model, the least power a malleable job can add: under a tight budget most of a long
    // queue cannot start, and this bound skips their searches (same decisions, no search).
    let mut least_added: [Option<Option<f64>>; MAX_MODELS] = [None; MAX_MODELS];
    in_order(order, cmp, |i| {
        if free.iter().all(|&f| f == 0) {
            return false;
        }
        let job = &jobs[i as usize];
        let budget = cap - MARGIN_W - committed;
        if budget <= 0.0 {
            return false;
        }
        let probe = Probe::for_job(cluster, params, job);
        if !job.rigid {
            if let Some(slot) = least_added.get_mut(job.model as usize) {
                let least = *slot.get_or_insert_with(|| probe.min_added_power_w());
                if least.is_none_or(|l| l > budget) {
                    return true; // no configuration of this model fits the budget
                }
            }
        }
        let kmax = if job.rigid {
            job.request.gpus
        } else {
            share.max(1)
        };
        let Some((cfg, perf)) =
            probe.search(&free, kmax, Objective::MaxGoodput, true, Some(budget))
        else {
            return true;
        };
        if out.push(Decision::Start { job: i, cfg }).is_err() {
            return false;
        }
        let idle = cluster.gpu_specs[cfg.gpu_type as usize].idle_w;
        committed += (perf.power_per_gpu_w - idle) * cfg.gpus as f64;
        free[cfg.gpu_type as usize] -= cfg.gpus;
        true
    });
}
