//! One place per policy: each policy's module holds a [`PolicyDescriptor`] (its name, what it
//! reads, its parameters and its round), and [`POLICIES`] lists the eight. [`super::PolicyKind`]'s
//! names, parsing and dispatch come from this list.
//!
//! A policy written outside the core builds its own descriptor with [`PolicyDescriptor::new`]
//! and runs through [`PolicyDescriptor::schedule`], which validates the round first, exactly as
//! the eight are run (see core's README, "How to add a policy").

use super::check::{check_round, Param, PolicyError};
use super::{
    aurachronos, charon, chronos, fifo, hades, pollux, themis, zeus, ClusterView, Decisions,
    JobView, PolicyParams,
};

/// One scheduling round, on input [`check_round`] accepted: reads the views, writes decisions
/// (indices into `jobs`) to `out`, orders indices in `scratch` (at least `jobs.len()` long).
pub type ScheduleFn =
    fn(&PolicyParams, &ClusterView<'_>, &[JobView], &mut [u32], &mut Decisions<'_>);

/// When a policy reads the views of running jobs (a caller may leave them out otherwise and get
/// the same decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunningReads {
    /// Never: the policy only orders and starts pending jobs.
    Never,
    /// Only when no job waits (it grows running jobs then).
    WhenQueueEmpty,
    /// Only when an urgent job waits (it preempts running jobs for it).
    WhenUrgentWaits,
    /// In every round.
    Always,
}

impl RunningReads {
    /// Whether running views are read in a round where `pending` jobs wait, `urgent_pending` of
    /// them urgent.
    pub const fn when(self, pending: usize, urgent_pending: usize) -> bool {
        match self {
            RunningReads::Never => false,
            RunningReads::WhenQueueEmpty => pending == 0,
            RunningReads::WhenUrgentWaits => urgent_pending > 0,
            RunningReads::Always => true,
        }
    }
}

/// What a policy reads of the views beyond every job's model, arrival, work and request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// When it reads running jobs' views.
    pub running_jobs: RunningReads,
    /// Deadlines and urgency ([`JobView::deadline`], [`JobView::urgent`]).
    pub deadlines: bool,
    /// The user's GPU-seconds ([`JobView::user_gpu_s`]).
    pub user_gpu_s: bool,
    /// The user's energy ([`JobView::user_energy_j`]).
    pub user_energy_j: bool,
    /// Work since the last checkpoint ([`JobView::work_at_risk`]).
    pub work_at_risk: bool,
    /// The cluster's power cap ([`ClusterView::power_cap_w`]).
    pub power_cap: bool,
}

impl Reads {
    /// Reads nothing beyond the basics, and no running job.
    pub const BASIC: Reads = Reads {
        running_jobs: RunningReads::Never,
        deadlines: false,
        user_gpu_s: false,
        user_energy_j: false,
        work_at_risk: false,
        power_cap: false,
    };
}

/// Everything the rest of the system needs to know about one policy.
#[derive(Debug, Clone, Copy)]
pub struct PolicyDescriptor {
    /// Lower-case name used on command lines and in result files.
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// What it reads of the views.
    pub reads: Reads,
    /// Whether a round can decide anything while every GPU is allocated (preempting or
    /// re-limiting running jobs); if not, a caller may skip its rounds on a full cluster.
    pub acts_on_full_cluster: bool,
    /// The parameters of [`PolicyParams`] it uses.
    pub params: &'static [Param],
    schedule: ScheduleFn,
}

impl PolicyDescriptor {
    /// A descriptor; `schedule` is reached only through [`PolicyDescriptor::schedule`], after
    /// validation.
    pub const fn new(
        name: &'static str,
        summary: &'static str,
        reads: Reads,
        acts_on_full_cluster: bool,
        params: &'static [Param],
        schedule: ScheduleFn,
    ) -> Self {
        PolicyDescriptor {
            name,
            summary,
            reads,
            acts_on_full_cluster,
            params,
            schedule,
        }
    }

    /// Runs one round: [`check_round`] first, then the policy's round.
    pub fn schedule(
        &self,
        params: &PolicyParams,
        cluster: &ClusterView<'_>,
        jobs: &[JobView],
        scratch: &mut [u32],
        out: &mut Decisions<'_>,
    ) -> Result<(), PolicyError> {
        check_round(params, cluster, jobs, scratch)?;
        (self.schedule)(params, cluster, jobs, scratch, out);
        Ok(())
    }
}

/// The eight policies, in the order of [`super::PolicyKind::ALL`].
pub const POLICIES: [&PolicyDescriptor; 8] = [
    &fifo::DESCRIPTOR,
    &pollux::DESCRIPTOR,
    &themis::DESCRIPTOR,
    &chronos::DESCRIPTOR,
    &zeus::DESCRIPTOR,
    &hades::DESCRIPTOR,
    &aurachronos::DESCRIPTOR,
    &charon::DESCRIPTOR,
];
