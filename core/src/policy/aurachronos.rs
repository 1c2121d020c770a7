//! AuraChronos (deadlines + energy + preemption).
//!
//! Score: urgent jobs first, by slack `(deadline - now) - est_remaining_s` (least first); then
//! best-effort jobs by the EDP of their remaining work at their best-EDP configuration (least
//! first): backfilling chooses by EDP instead of raw time. Configuration: urgent jobs take the
//! highest goodput (up to `max(requested, fair share)` GPUs); best-effort jobs the lowest EDP
//! (type, `k`, batch, power limit).
//!
//! Preemption: an urgent job that does not fit and whose slack is below `urgent_margin_s`
//! preempts running best-effort jobs, those with the least work since their last checkpoint
//! first (least work lost), on the first GPU type where that frees enough GPUs for its requested
//! count. The simulator counts the lost work and its energy.

use super::{
    fair_share, slack_s, split, ClusterView, Decision, Decisions, JobView, ModelTable, Objective,
    PolicyParams, Probe, MAX_GPU_TYPES,
};

const TAKEN: u32 = u32::MAX;

/// One AuraChronos round.
pub fn schedule(
    params: &PolicyParams,
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    scratch: &mut [u32],
    out: &mut Decisions<'_>,
) {
    let table = ModelTable::new(cluster, params, true);
    let n = jobs.len();
    let (p, r) = split(jobs, scratch);
    let (front, victims) = scratch[..n].split_at_mut(n - r);
    let order = &mut front[..p];
    let now = cluster.now;
    order.sort_unstable_by(|&a, &b| {
        let (ja, jb) = (&jobs[a as usize], &jobs[b as usize]);
        jb.urgent
            .cmp(&ja.urgent)
            .then_with(|| {
                if ja.urgent && jb.urgent {
                    slack_s(now, ja, &table).total_cmp(&slack_s(now, jb, &table))
                } else {
                    table.min_edp(ja).total_cmp(&table.min_edp(jb))
                }
            })
            .then(ja.id.cmp(&jb.id))
    });
    // Best-effort running jobs, least work at risk first; others are never victims.
    for v in victims.iter_mut() {
        if jobs[*v as usize].urgent {
            *v = TAKEN;
        }
    }
    victims.sort_unstable_by(|&a, &b| match (a == TAKEN, b == TAKEN) {
        (true, true) => core::cmp::Ordering::Equal,
        (true, false) => core::cmp::Ordering::Greater,
        (false, true) => core::cmp::Ordering::Less,
        (false, false) => {
            let (ja, jb) = (&jobs[a as usize], &jobs[b as usize]);
            ja.work_at_risk
                .total_cmp(&jb.work_at_risk)
                .then(ja.id.cmp(&jb.id))
        }
    });
    let mut free = super::free_of(cluster);
    let share = fair_share(&free, p);
    for &i in order.iter() {
        let job = &jobs[i as usize];
        let probe = Probe::for_job(cluster, params, job);
        let found = if job.urgent {
            probe.search(
                &free,
                job.request.gpus.max(share),
                Objective::MaxGoodput,
                false,
                None,
            )
        } else {
            probe.search(&free, share, Objective::MinEdp, true, None)
        };
        if let Some((cfg, _)) = found {
            if out.push(Decision::Start { job: i, cfg }).is_err() {
                return;
            }
            free[cfg.gpu_type as usize] -= cfg.gpus;
            continue;
        }
        if !job.urgent || slack_s(now, job, &table) >= params.urgent_margin_s {
            continue;
        }
        if !preempt_for(job, i, &probe, jobs, victims, &mut free, out) {
            return;
        }
    }
}

/// Frees GPUs for urgent job `i` by preempting victims; returns false if the buffer filled up.
fn preempt_for(
    job: &JobView,
    i: u32,
    probe: &Probe<'_, '_>,
    jobs: &[JobView],
    victims: &mut [u32],
    free: &mut [u32; MAX_GPU_TYPES],
    out: &mut Decisions<'_>,
) -> bool {
    let need = job.request.gpus.max(1);
    for ty in 0..probe.cluster.gpu_specs.len() {
        if job.request.gpu_type.is_some_and(|t| t as usize != ty) || probe.model.perf[ty].is_none()
        {
            continue;
        }
        let mut avail = free[ty];
        for &v in victims.iter() {
            if avail >= need {
                break;
            }
            if v != TAKEN
                && jobs[v as usize]
                    .running
                    .is_some_and(|c| c.gpu_type as usize == ty)
            {
                avail += jobs[v as usize].running.map_or(0, |c| c.gpus);
            }
        }
        if avail < need {
            continue;
        }
        // Enough on this type: preempt in order until the job fits, then start it.
        for v in victims.iter_mut() {
            if free[ty] >= need {
                break;
            }
            if *v == TAKEN {
                continue;
            }
            let Some(c) = jobs[*v as usize].running else {
                continue;
            };
            if c.gpu_type as usize != ty {
                continue;
            }
            if out.push(Decision::Preempt { job: *v }).is_err() {
                return false;
            }
            free[ty] += c.gpus;
            *v = TAKEN;
        }
        let mut only = [0u32; MAX_GPU_TYPES];
        only[ty] = free[ty];
        if let Some((cfg, _)) = probe.search(&only, need, Objective::MaxGoodput, false, None) {
            if out.push(Decision::Start { job: i, cfg }).is_err() {
                return false;
            }
            free[ty] -= cfg.gpus;
        }
        return true;
    }
    true
}
