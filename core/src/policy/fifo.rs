//! FIFO: first come, first served, the historical reference.
//!
//! Score: arrival time (earliest first, ties by job id). Strict: when the job at the head of the
//! queue does not fit, nothing behind it starts (no backfilling). Configuration: what the job
//! asked for (malleable jobs: their requested count and batch on the fastest type with room).

use super::{
    by_key, place, split, ClusterView, Decisions, JobView, Objective, PolicyParams, Probe,
};
use super::{PolicyDescriptor, Reads};

/// FIFO's entry in [`super::POLICIES`].
pub const DESCRIPTOR: PolicyDescriptor = PolicyDescriptor::new(
    "fifo",
    "First come, first served, strictly in arrival order.",
    Reads::BASIC,
    false,
    &[],
    schedule,
);

/// One FIFO round, on input [`super::check_round`] accepted.
pub(crate) fn schedule(
    params: &PolicyParams,
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    scratch: &mut [u32],
    out: &mut Decisions<'_>,
) {
    if super::no_free(cluster) {
        return; // nothing can start: skip the sort
    }
    let (p, _) = split(jobs, scratch);
    let order = &mut scratch[..p];
    let mut free = super::free_of(cluster);
    place(
        order,
        by_key(jobs, |j| j.arrival as f64),
        &mut free,
        true,
        out,
        |i, free| {
            let job = &jobs[i as usize];
            Probe::for_job(cluster, params, job)
                .search(free, job.request.gpus, Objective::Requested, false, None)
                .map(|(c, _)| c)
        },
    );
}
