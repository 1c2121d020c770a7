//! Themis (fairness): users who have consumed less come first.
//!
//! Score: the user's historical GPU-seconds (least first), then arrival, then job id. Jobs that
//! do not fit are skipped (backfilling). Configuration: what the job asked for.

use super::{place, split, ClusterView, Decisions, JobView, Objective, PolicyParams, Probe};
use super::{PolicyDescriptor, Reads};

/// Themis's entry in [`super::POLICIES`].
pub const DESCRIPTOR: PolicyDescriptor = PolicyDescriptor::new(
    "themis",
    "Users who consumed fewer GPU-seconds first.",
    Reads {
        user_gpu_s: true,
        ..Reads::BASIC
    },
    false,
    &[],
    schedule,
);

/// One Themis round, on input [`super::check_round`] accepted.
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
    let cmp = |a: &u32, b: &u32| {
        let (a, b) = (*a, *b);
        let (ja, jb) = (&jobs[a as usize], &jobs[b as usize]);
        ja.user_gpu_s
            .total_cmp(&jb.user_gpu_s)
            .then(ja.arrival.cmp(&jb.arrival))
            .then(ja.id.cmp(&jb.id))
    };
    let mut free = super::free_of(cluster);
    place(order, cmp, &mut free, false, out, |i, free| {
        let job = &jobs[i as usize];
        Probe::for_job(cluster, params, job)
            .search(free, job.request.gpus, Objective::Requested, false, None)
            .map(|(c, _)| c)
    });
}
