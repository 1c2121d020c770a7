//! Zeus (throughput + energy): Pollux's order, but each job's configuration minimises EDP.
//!
//! Score (lowest first): `est_remaining_s - age_factor * waited_s`, as Pollux. Configuration: over
//! GPU type, `k` (up to the fair share), batch and power limit (fractions of the model's busy
//! power in `limit_fractions`), the one with the lowest EDP of the remaining work,
//! `E x T = k P T^2` with `T = W / goodput`, i.e. the lowest `k P / goodput^2`.

use super::{pollux::adaptive, ClusterView, Decisions, JobView, Objective, PolicyParams};
use super::{Param, PolicyDescriptor, Reads, RunningReads};

/// Zeus's entry in [`super::POLICIES`].
pub const DESCRIPTOR: PolicyDescriptor = PolicyDescriptor::new(
    "zeus",
    "Pollux's order; configurations that minimise EDP.",
    Reads {
        running_jobs: RunningReads::WhenQueueEmpty,
        ..Reads::BASIC
    },
    false,
    &[Param::AgeFactor, Param::LimitFractions, Param::ReconfigCost],
    schedule,
);

/// One Zeus round, on input [`super::check_round`] accepted.
pub(crate) fn schedule(
    params: &PolicyParams,
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    scratch: &mut [u32],
    out: &mut Decisions<'_>,
) {
    adaptive(params, cluster, jobs, scratch, out, Objective::MinEdp);
}
