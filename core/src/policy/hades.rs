//! Hades (fairness + energy): jobs that are cheap in EDP, of users who consumed little energy,
//! first; minimum-EDP configurations.
//!
//! Score (lowest first): `EDP_min(remaining work) x (1 + user_energy_kWh)`. DESIGN §6 writes the
//! score as `EDP / (historical consumption + 1)`; sorted either way, that literal ratio favours
//! either energy-hungry jobs or heavy users, against the policy's stated aim (fairness *and*
//! energy), so we weight EDP by `1 + consumption` instead: both factors now push the same way.
//! `EDP_min` is the EDP of the remaining work at the model's best-EDP configuration.
//! Configuration: lowest EDP (type, `k` up to the fair share, batch, power limit). Skips jobs
//! that do not fit.

use super::{
    by_key, fair_share, place, split, ClusterView, Decisions, JobView, ModelTable, Objective,
    PolicyParams, Probe,
};
use super::{Param, PolicyDescriptor, Reads};
use crate::units::kwh;

/// Hades' priority score of a job (lower runs first).
pub fn score(min_edp_js: f64, user_energy_j: f64) -> f64 {
    min_edp_js * (1.0 + kwh(user_energy_j))
}

/// Hades's entry in [`super::POLICIES`].
pub const DESCRIPTOR: PolicyDescriptor = PolicyDescriptor::new(
    "hades",
    "EDP scaled by the user's past energy; minimum-EDP configurations.",
    Reads {
        user_energy_j: true,
        ..Reads::BASIC
    },
    false,
    &[Param::LimitFractions],
    schedule,
);

/// One Hades round, on input [`super::check_round`] accepted.
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
    let table = ModelTable::new(cluster, params, true);
    let (p, _) = split(jobs, scratch);
    let order = &mut scratch[..p];
    let cmp = by_key(jobs, |j| score(table.min_edp(j), j.user_energy_j));
    let mut free = super::free_of(cluster);
    let share = fair_share(&free, p);
    place(order, cmp, &mut free, false, out, |i, free| {
        let job = &jobs[i as usize];
        Probe::for_job(cluster, params, job)
            .search(free, share, Objective::MinEdp, true, None)
            .map(|(c, _)| c)
    });
}
