//! Chronos (deadlines, mixed criticality): urgent jobs are queued apart, ahead of best-effort
//! ones, by slack.
//!
//! Score: urgent jobs first, by slack `(deadline - now) - est_remaining_s` (least first); then
//! best-effort jobs by arrival. Jobs that do not fit are skipped (backfilling). Configuration:
//! what the job asked for. No preemption.

use super::{
    place, slack_s, split, ClusterView, Decisions, JobView, ModelTable, Objective, PolicyParams,
    Probe,
};
use super::{PolicyDescriptor, Reads};

/// Chronos's entry in [`super::POLICIES`].
pub const DESCRIPTOR: PolicyDescriptor = PolicyDescriptor::new(
    "chronos",
    "Urgent jobs by slack, then best-effort jobs in arrival order.",
    Reads {
        deadlines: true,
        ..Reads::BASIC
    },
    false,
    &[],
    schedule,
);

/// One Chronos round, on input [`super::check_round`] accepted.
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
    let table = ModelTable::new(cluster, params, false);
    let (p, _) = split(jobs, scratch);
    let order = &mut scratch[..p];
    let now = cluster.now;
    let cmp = |a: &u32, b: &u32| {
        let (a, b) = (*a, *b);
        let (ja, jb) = (&jobs[a as usize], &jobs[b as usize]);
        jb.urgent
            .cmp(&ja.urgent)
            .then_with(|| {
                if ja.urgent && jb.urgent {
                    slack_s(now, ja, &table).total_cmp(&slack_s(now, jb, &table))
                } else {
                    ja.arrival.cmp(&jb.arrival)
                }
            })
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
