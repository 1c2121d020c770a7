//! AuraChronos (deadlines + energy + preemption).
//!
//! Score: urgent jobs first, by slack `(deadline - now) - est_remaining_s` (least first); then
//! best-effort jobs by the EDP of their remaining work at their best-EDP configuration (least
//! first): backfilling chooses by EDP instead of raw time. Configuration: urgent jobs take the
//! highest goodput (up to `max(requested, fair share)` GPUs); best-effort jobs the lowest EDP
//! (type, `k`, batch, power limit).
//!
//! Urgent jobs start at once on free GPUs when that configuration meets the deadline. Otherwise
//! their slack is measured against the best configuration the whole cluster could give them:
//! with slack above `urgent_margin_s` they wait for faster GPUs; with slack in
//! `[0, urgent_margin_s)` they preempt running best-effort jobs, those with the least work since
//! their last checkpoint first (least work lost), on the GPU type where the requested count runs
//! fastest and enough can be freed; with negative slack (the deadline is lost anyway) nothing is
//! preempted and they run on whatever is free. The simulator counts lost work and its energy.

use super::{
    by_key, fair_share, free_of_total, in_order, partition, slack_s, split, ClusterView, Decision,
    Decisions, JobView, ModelTable, Objective, PolicyParams, Probe, MAX_GPU_TYPES,
};
use super::{Param, PolicyDescriptor, Reads, RunningReads};
use crate::units::secs;

const TAKEN: u32 = u32::MAX;

/// AuraChronos's entry in [`super::POLICIES`].
pub const DESCRIPTOR: PolicyDescriptor = PolicyDescriptor::new(
    "aurachronos",
    "Urgent by slack, backfill by EDP, preempts best-effort work for urgent jobs.",
    Reads {
        running_jobs: RunningReads::WhenUrgentWaits,
        deadlines: true,
        work_at_risk: true,
        ..Reads::BASIC
    },
    true,
    &[Param::UrgentMargin, Param::LimitFractions],
    schedule,
);

/// One AuraChronos round, on input [`super::check_round`] accepted.
pub(crate) fn schedule(
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
    // Urgent jobs first, by slack; best-effort ones after, by EDP. The best-effort part is only
    // sorted if GPUs are left once urgent jobs are served, so a full cluster costs
    // O(u log u) for u urgent jobs, not O(n log n).
    let u = partition(order, |i| jobs[i as usize].urgent);
    let (urgent, best_effort) = order.split_at_mut(u);
    urgent.sort_unstable_by(|&a, &b| {
        let (ja, jb) = (&jobs[a as usize], &jobs[b as usize]);
        slack_s(now, ja, &table)
            .total_cmp(&slack_s(now, jb, &table))
            .then(ja.id.cmp(&jb.id))
    });
    // Victims are ordered the first time an urgent job needs them (most rounds never do).
    let mut victims_ordered = false;
    let mut free = super::free_of(cluster);
    let share = fair_share(&free, p);
    let now_s = secs(now);
    for &i in urgent.iter() {
        let job = &jobs[i as usize];
        let probe = Probe::for_job(cluster, params, job);
        let kmax = job.request.gpus.max(share);
        let deadline_s = job.deadline.map_or(f64::INFINITY, secs);
        let meets = |goodput: f64| now_s + job.remaining_work / goodput <= deadline_s;
        let found = probe.search(&free, kmax, Objective::MaxGoodput, false, None);
        if let Some((cfg, p)) = found {
            if meets(p.goodput) {
                if out.push(Decision::Start { job: i, cfg }).is_err() {
                    return;
                }
                free[cfg.gpu_type as usize] -= cfg.gpus;
                continue;
            }
        }
        // Slack against the best configuration the cluster could give it.
        let best = probe.search(
            &free_of_total(cluster),
            kmax,
            Objective::MaxGoodput,
            false,
            None,
        );
        let slack = best.map_or(f64::NEG_INFINITY, |(_, p)| {
            deadline_s - now_s - job.remaining_work / p.goodput
        });
        if slack >= params.urgent_margin_s {
            continue; // it can still wait for GPUs fast enough
        }
        if slack >= 0.0 {
            if !victims_ordered {
                order_victims(jobs, victims);
                victims_ordered = true;
            }
            if let Some(list) = preempt_for(job, i, &probe, jobs, victims, &mut free) {
                for d in list.iter().flatten() {
                    if out.push(*d).is_err() {
                        return;
                    }
                }
                continue;
            }
        }
        // Hopeless, or nothing to preempt: run now on what is free, to be as little late as possible.
        if let Some((cfg, _)) = found {
            if out.push(Decision::Start { job: i, cfg }).is_err() {
                return;
            }
            free[cfg.gpu_type as usize] -= cfg.gpus;
        }
    }
    if free.iter().all(|&f| f == 0) {
        return;
    }
    in_order(best_effort, by_key(jobs, |j| table.min_edp(j)), |i| {
        if free.iter().all(|&f| f == 0) {
            return false;
        }
        let job = &jobs[i as usize];
        let probe = Probe::for_job(cluster, params, job);
        if let Some((cfg, _)) = probe.search(&free, share, Objective::MinEdp, true, None) {
            if out.push(Decision::Start { job: i, cfg }).is_err() {
                return false;
            }
            free[cfg.gpu_type as usize] -= cfg.gpus;
        }
        true
    });
}

/// Orders running jobs as preemption victims: best-effort ones, least work at risk first; urgent
/// ones are marked [`TAKEN`] (never victims) and go last.
fn order_victims(jobs: &[JobView], victims: &mut [u32]) {
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
}

/// Most decisions one preemption writes: victims plus the start.
const MAX_PREEMPT: usize = 17;

/// Frees GPUs for urgent job `i` by preempting victims, on the GPU type where its requested
/// count runs fastest among those where enough best-effort work can be preempted; returns the
/// decisions to write (preemptions, then the start; unused slots `None`), or `None`.
fn preempt_for(
    job: &JobView,
    i: u32,
    probe: &Probe<'_, '_>,
    jobs: &[JobView],
    victims: &mut [u32],
    free: &mut [u32; MAX_GPU_TYPES],
) -> Option<[Option<Decision>; MAX_PREEMPT]> {
    let need = job.request.gpus.max(1);
    let ntypes = probe.cluster.gpu_specs.len();
    // Types by the goodput of the requested count, fastest first.
    let mut types = [(0usize, f64::NEG_INFINITY); MAX_GPU_TYPES];
    for (ty, slot) in types.iter_mut().enumerate().take(ntypes) {
        let mut only = [0u32; MAX_GPU_TYPES];
        only[ty] = need;
        let g = probe
            .search(&only, need, Objective::MaxGoodput, false, None)
            .map_or(f64::NEG_INFINITY, |(_, p)| p.goodput);
        *slot = (ty, g);
    }
    types[..ntypes].sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    for &(ty, g) in &types[..ntypes] {
        if g == f64::NEG_INFINITY || job.request.gpu_type.is_some_and(|t| t as usize != ty) {
            continue;
        }
        let mut avail = free[ty];
        let mut count = 0usize;
        for &v in victims.iter() {
            if avail >= need {
                break;
            }
            if v != TAKEN
                && jobs[v as usize]
                    .running
                    .is_some_and(|c| c.gpu_type as usize == ty)
            {
                avail = avail.saturating_add(jobs[v as usize].running.map_or(0, |c| c.gpus));
                count += 1;
            }
        }
        if avail < need || count + 1 > MAX_PREEMPT {
            continue;
        }
        let mut list = [None; MAX_PREEMPT];
        let mut n = 0;
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
            list[n] = Some(Decision::Preempt { job: *v });
            n += 1;
            free[ty] = free[ty].saturating_add(c.gpus);
            *v = TAKEN;
        }
        let mut only = [0u32; MAX_GPU_TYPES];
        only[ty] = free[ty];
        if let Some((cfg, _)) = probe.search(&only, need, Objective::MaxGoodput, false, None) {
            list[n] = Some(Decision::Start { job: i, cfg });
            free[ty] -= cfg.gpus;
        }
        return Some(list);
    }
    None
}
