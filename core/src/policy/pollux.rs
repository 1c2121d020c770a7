//! Pollux (throughput): shortest job first with an age factor; malleable jobs take the
//! configuration of best goodput.
//!
//! Score (lowest first): `est_remaining_s - age_factor * waited_s`, where `est_remaining_s` is the
//! remaining work over the model's reference goodput (one GPU of the fastest type). Configuration:
//! over GPU type, `k` (powers of two up to the fair share `free GPUs / pending jobs`) and batch
//! (`b0 x {1, 2, 4, 8}`), the one with the highest goodput `throughput(k, b) x E(b)`. When the
//! queue is drained, running malleable jobs double their GPUs if that saves more than twice the
//! reconfiguration cost.

use super::{
    age_s, by_key, fair_share, grow_running, place, split, ClusterView, Decisions, JobView,
    ModelTable, Objective, PolicyParams, Probe,
};
use super::{Param, PolicyDescriptor, Reads, RunningReads};

/// Pollux's entry in [`super::POLICIES`].
pub const DESCRIPTOR: PolicyDescriptor = PolicyDescriptor::new(
    "pollux",
    "Shortest job first with ageing; malleable jobs take the configuration of best goodput.",
    Reads {
        running_jobs: RunningReads::WhenQueueEmpty,
        ..Reads::BASIC
    },
    false,
    &[Param::AgeFactor, Param::ReconfigCost],
    schedule,
);

/// One Pollux round, on input [`super::check_round`] accepted.
pub(crate) fn schedule(
    params: &PolicyParams,
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    scratch: &mut [u32],
    out: &mut Decisions<'_>,
) {
    adaptive(params, cluster, jobs, scratch, out, Objective::MaxGoodput);
}

/// The round shared by Pollux and Zeus: same order, different configuration objective.
pub(crate) fn adaptive(
    params: &PolicyParams,
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    scratch: &mut [u32],
    out: &mut Decisions<'_>,
    objective: Objective,
) {
    if super::no_free(cluster) {
        return; // nothing can start or grow: skip the sort
    }
    let table = ModelTable::new(cluster, params, false);
    let n = jobs.len();
    let (p, r) = split(jobs, scratch);
    let (front, back) = scratch[..n].split_at_mut(n - r);
    let order = &mut front[..p];
    let now = cluster.now;
    let cmp = by_key(jobs, |j| {
        table.est_remaining_s(j) - params.age_factor * age_s(now, j)
    });
    let mut free = super::free_of(cluster);
    let share = fair_share(&free, p);
    let limits = objective == Objective::MinEdp;
    if !place(order, cmp, &mut free, false, out, |i, free| {
        let job = &jobs[i as usize];
        Probe::for_job(cluster, params, job)
            .search(free, share, objective, limits, None)
            .map(|(c, _)| c)
    }) {
        return;
    }
    if out.is_empty() && p == 0 && super::some_job_may_grow(jobs, back, &free) {
        // Nothing waits: give spare GPUs to running jobs, shortest remaining first (visited in
        // that order without sorting the rest once the free GPUs are gone).
        let shortest = by_key(jobs, |j| table.est_remaining_s(j));
        grow_running(
            params, cluster, jobs, back, shortest, &mut free, objective, out,
        );
    }
}
