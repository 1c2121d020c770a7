//! The eight scheduling policies of DESIGN §6, as pure functions.
//!
//! A policy reads a [`ClusterView`] (time, GPU types, free GPUs, power cap, models) and a slice of
//! [`JobView`]s (pending and running jobs), and writes [`Decision`]s (start, resize, preempt) into a
//! caller-provided [`Decisions`] buffer. It allocates nothing: it orders job indices in a scratch
//! slice of `u32` the caller provides (at least `jobs.len()` long), by chunked selection, so a
//! round costs `O(n)` when the cluster fills after a few jobs and at most `O(n log n)` in the
//! number of jobs `n`, never `O(n^2)`.
//!
//! Malleable jobs get a configuration (GPU type, GPU count `k`, batch `b`, power limit) chosen by
//! the policy; rigid jobs keep the type, count and batch they asked for.
//!
//! Decisions are applied by the caller in order: a policy that preempts to make room writes the
//! `Preempt`s before the `Start` that uses the freed GPUs.
//!
//! Each policy's module holds its [`PolicyDescriptor`] (name, what it reads, its parameters, its
//! round); [`POLICIES`] lists the eight and [`PolicyKind`] reads it. Every round's input is
//! checked once by [`check_round`] before a policy runs, so bad input is a [`PolicyError`], never
//! a panic; a policy's round is reachable only through [`PolicyDescriptor::schedule`] or
//! [`schedule`], which run that check.

use crate::jobmodel::{
    evaluate, evaluate_limited, limit_for_fraction, Config, GpuSpec, LimitEffect, LimitTable,
    ModelProfile, Perf, MAX_GPU_TYPES,
};
use crate::units::{secs, Nanos};

pub mod aurachronos;
pub mod charon;
mod check;
pub mod chronos;
mod descriptor;
pub mod fifo;
pub mod hades;
pub mod pollux;
pub mod themis;
pub mod validate;
pub mod zeus;

pub use check::{check_cluster, check_jobs, check_params, check_round, Param, PolicyError};
pub use descriptor::{PolicyDescriptor, Reads, RunningReads, ScheduleFn, POLICIES};

/// Most models a cluster view may list: per-model tables stay fixed-size arrays.
pub const MAX_MODELS: usize = 32;

/// The eight policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyKind {
    /// First come, first served, strictly in arrival order.
    Fifo,
    /// Shortest job first with ageing; malleable jobs take the configuration of best goodput.
    Pollux,
    /// Users who consumed fewer GPU-seconds first.
    Themis,
    /// Urgent jobs by slack, then best-effort jobs in arrival order.
    Chronos,
    /// Pollux's order; configurations that minimise EDP.
    Zeus,
    /// EDP scaled by the user's past energy; minimum-EDP configurations.
    Hades,
    /// Urgent by slack, backfill by EDP, preempts best-effort work for urgent jobs.
    AuraChronos,
    /// Places work only while the cluster's power stays under the cap.
    Charon,
}

impl PolicyKind {
    /// Every policy, in the order reports list them.
    pub const ALL: [PolicyKind; 8] = [
        PolicyKind::Fifo,
        PolicyKind::Pollux,
        PolicyKind::Themis,
        PolicyKind::Chronos,
        PolicyKind::Zeus,
        PolicyKind::Hades,
        PolicyKind::AuraChronos,
        PolicyKind::Charon,
    ];

    /// The policy's descriptor in [`POLICIES`]: its name, what it reads, its parameters.
    pub const fn descriptor(self) -> &'static PolicyDescriptor {
        POLICIES[self as usize]
    }

    /// Lower-case name used on command lines and in result files.
    pub const fn name(self) -> &'static str {
        self.descriptor().name
    }

    /// Whether a round can decide anything while every GPU is allocated. FIFO, Pollux, Themis,
    /// Chronos, Zeus and Hades only start or grow jobs, which needs a free GPU, so a caller may
    /// skip their rounds on a full cluster (the result is the same, without building views).
    /// AuraChronos preempts for urgent jobs and Charon sheds load when the cap drops: they must
    /// see every round.
    pub const fn acts_on_full_cluster(self) -> bool {
        self.descriptor().acts_on_full_cluster
    }

    /// Whether the policy reads the views of running jobs. FIFO, Themis, Chronos and Hades only
    /// order and start pending jobs, so a caller may give them the pending jobs alone: the same
    /// decisions (indices into that shorter slice) for a round that costs O(pending) instead of
    /// O(jobs in the system). Pollux and Zeus grow running jobs, AuraChronos preempts them and
    /// Charon re-limits them.
    pub const fn reads_running_jobs(self) -> bool {
        !matches!(self.descriptor().reads.running_jobs, RunningReads::Never)
    }

    /// Whether the policy reads the views of running jobs in a round where `pending` jobs wait,
    /// `urgent_pending` of them urgent. Pollux and Zeus grow running jobs only when nothing
    /// waits; AuraChronos preempts running jobs only for a waiting urgent job; Charon re-limits
    /// them in every round. Leaving the running views out otherwise gives the same decisions.
    pub const fn reads_running_jobs_when(self, pending: usize, urgent_pending: usize) -> bool {
        self.descriptor()
            .reads
            .running_jobs
            .when(pending, urgent_pending)
    }

    /// Parses a name (case-insensitive); `None` for an unknown one.
    pub fn from_name(s: &str) -> Option<Self> {
        POLICIES
            .iter()
            .position(|d| d.name.eq_ignore_ascii_case(s))
            .map(|i| Self::ALL[i])
    }
}

/// Tunable parameters shared by the policies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyParams {
    /// Seconds of estimated run time forgiven per second waited (Pollux, Zeus): keeps long jobs
    /// from starving under shortest-job-first.
    pub age_factor: f64,
    /// AuraChronos preempts best-effort work for an urgent job whose slack is below this, in
    /// seconds.
    pub urgent_margin_s: f64,
    /// Power limits that energy-aware policies may choose, as fractions of the model's busy power
    /// (1.0 = no limit). Kept within the range where the slow-down fit holds
    /// ([`crate::jobmodel::MIN_LIMIT_FRACTION_OF_BUSY`]).
    pub limit_fractions: [f64; 4],
    /// Seconds a reconfiguration costs (checkpoint and restart): a resize must save more than
    /// twice this to be worth it.
    pub reconfig_cost_s: f64,
}

impl Default for PolicyParams {
    fn default() -> Self {
        PolicyParams {
            age_factor: 1.0,
            urgent_margin_s: 600.0,
            limit_fractions: [1.0, 0.9, 0.8, 0.7],
            reconfig_cost_s: 60.0,
        }
    }
}

/// What a policy sees of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct ClusterView<'a> {
    /// Current time.
    pub now: Nanos,
    /// GPU types (index = type id).
    pub gpu_specs: &'a [GpuSpec],
    /// GPUs of each type.
    pub total: &'a [u32],
    /// Unallocated GPUs of each type.
    pub free: &'a [u32],
    /// Cluster power budget in watts, if any (Charon honours it).
    pub power_cap_w: Option<f64>,
    /// Models (index = model id of [`JobView::model`]).
    pub models: &'a [ModelProfile],
    /// The power limits' effects on these models and GPU types, computed once by a caller that
    /// schedules many rounds ([`LimitTable::new`] with the policy's `limit_fractions`); `None`:
    /// the policies compute them. Only the time differs: an entry is used only where it was
    /// computed from exactly the view's figures.
    pub limit_effects: Option<&'a LimitTable>,
}

/// What a job asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    /// GPU type, or `None` for any.
    pub gpu_type: Option<u8>,
    /// GPU count.
    pub gpus: u32,
    /// Total batch.
    pub batch: u32,
}

/// What a policy sees of one job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobView {
    /// Stable job id (tie-breaker of every ordering, so rounds are deterministic).
    pub id: u64,
    /// Model index into [`ClusterView::models`].
    pub model: u16,
    /// User id.
    pub user: u32,
    /// Arrival time.
    pub arrival: Nanos,
    /// Work left, in reference samples.
    pub remaining_work: f64,
    /// Deadline, if any.
    pub deadline: Option<Nanos>,
    /// Urgent (deadline-critical) rather than best-effort.
    pub urgent: bool,
    /// Rigid jobs keep their requested type, count and batch.
    pub rigid: bool,
    /// What the job asked for.
    pub request: Request,
    /// Current configuration if running, `None` if pending.
    pub running: Option<Config>,
    /// Reference samples done since the last checkpoint: lost if preempted now.
    pub work_at_risk: f64,
    /// GPU-seconds the job's user has consumed so far.
    pub user_gpu_s: f64,
    /// Energy the job's user has consumed so far, in joules.
    pub user_energy_j: f64,
}

/// One scheduling decision; `job` indexes the `jobs` slice given to the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Start a pending job.
    Start {
        /// Index of the job.
        job: u32,
        /// Configuration to run it in.
        cfg: Config,
    },
    /// Change a running job's configuration (a different type, count or batch needs a
    /// checkpoint and a restart; a power limit alone does not).
    Resize {
        /// Index of the job.
        job: u32,
        /// New configuration.
        cfg: Config,
    },
    /// Stop a running job; work since its last checkpoint is lost.
    Preempt {
        /// Index of the job.
        job: u32,
    },
}

/// Caller-provided decision buffer: a full buffer hands the decision back instead of panicking.
#[derive(Debug)]
pub struct Decisions<'a> {
    buf: &'a mut [Decision],
    len: usize,
}

impl<'a> Decisions<'a> {
    /// Wraps an empty buffer over `buf`.
    pub fn new(buf: &'a mut [Decision]) -> Self {
        Decisions { buf, len: 0 }
    }

    /// Appends a decision, or hands it back when the buffer is full.
    pub fn push(&mut self, d: Decision) -> Result<(), Decision> {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = d;
                self.len += 1;
                Ok(())
            }
            None => Err(d),
        }
    }

    /// Decisions written so far.
    pub fn as_slice(&self) -> &[Decision] {
        &self.buf[..self.len]
    }

    /// Number of decisions written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No decision written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// No room for another decision: the caller should apply these and run another round.
    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Forgets every decision.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Runs one scheduling round of `kind`: the round's input is checked first ([`check_round`]),
/// so bad input is an error, never a panic.
pub fn schedule(
    kind: PolicyKind,
    params: &PolicyParams,
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    scratch: &mut [u32],
    out: &mut Decisions<'_>,
) -> Result<(), PolicyError> {
    kind.descriptor()
        .schedule(params, cluster, jobs, scratch, out)
}

// ---------------------------------------------------------------------------------------------
// Shared pieces: one place for the estimates and the configuration search.

/// Free GPUs per type, updated as a round places jobs.
pub(crate) type Free = [u32; MAX_GPU_TYPES];

pub(crate) fn free_of(cluster: &ClusterView<'_>) -> Free {
    let mut f = [0u32; MAX_GPU_TYPES];
    for (slot, &n) in f
        .iter_mut()
        .zip(cluster.free.iter())
        .take(cluster.gpu_specs.len())
    {
        *slot = n;
    }
    f
}

/// Puts pending job indices at the front of `scratch` and running ones at the back
/// (`scratch[jobs.len() - r..jobs.len()]`); returns `(pending, running)` counts.
pub(crate) fn split(jobs: &[JobView], scratch: &mut [u32]) -> (usize, usize) {
    let n = jobs.len();
    let (mut p, mut r) = (0usize, 0usize);
    for (i, j) in jobs.iter().enumerate() {
        if j.running.is_some() {
            r += 1;
            scratch[n - r] = i as u32;
        } else {
            scratch[p] = i as u32;
            p += 1;
        }
    }
    (p, r)
}

/// Per-model figures computed once per round (never per job): what a reference run costs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModelTable {
    /// Goodput of the reference batch on one GPU of the fastest type, unlimited.
    pub ref_goodput: [f64; MAX_MODELS],
    /// Smallest `k * P / goodput^2` over every configuration: EDP of `W` samples is this x `W^2`.
    pub min_edp_factor: [f64; MAX_MODELS],
}

impl ModelTable {
    /// Builds the table; `with_edp` also searches every model's best-EDP configuration (only
    /// the policies that rank by EDP need it, and it is the costly part).
    pub(crate) fn new(cluster: &ClusterView<'_>, params: &PolicyParams, with_edp: bool) -> Self {
        let mut t = ModelTable {
            ref_goodput: [f64::NAN; MAX_MODELS],
            min_edp_factor: [f64::INFINITY; MAX_MODELS],
        };
        let all = free_of_total(cluster);
        for (m, model) in cluster.models.iter().enumerate().take(MAX_MODELS) {
            let mut best = 0.0f64;
            for ty in 0..cluster.gpu_specs.len() {
                let cfg = Config {
                    gpu_type: ty as u8,
                    gpus: 1,
                    batch: model.stat.ref_batch,
                    limit_w: cluster.gpu_specs[ty].max_w,
                };
                if let Ok(p) = evaluate(model, cluster.gpu_specs, &cfg) {
                    best = best.max(p.goodput);
                }
            }
            t.ref_goodput[m] = if best > 0.0 { best } else { f64::NAN };
            if !with_edp {
                continue;
            }
            let request = Request {
                gpu_type: None,
                gpus: 1,
                batch: model.stat.ref_batch,
            };
            let probe = Probe {
                model,
                model_index: m,
                cluster,
                params,
                rigid: None,
                request,
            };
            if let Some((cfg, p)) = probe.search(&all, u32::MAX, Objective::MinEdp, true, None) {
                t.min_edp_factor[m] = edp_factor(&cfg, &p);
            }
        }
        t
    }

    /// Estimated seconds left for a job, at its reference configuration on the fastest type.
    pub(crate) fn est_remaining_s(&self, job: &JobView) -> f64 {
        let g = self.ref_goodput[job.model as usize];
        if g > 0.0 {
            job.remaining_work / g
        } else {
            f64::INFINITY
        }
    }

    /// EDP (J·s) of the job's remaining work at its model's best-EDP configuration.
    pub(crate) fn min_edp(&self, job: &JobView) -> f64 {
        self.min_edp_factor[job.model as usize] * job.remaining_work * job.remaining_work
    }
}

pub(crate) fn free_of_total(cluster: &ClusterView<'_>) -> Free {
    let mut f = [0u32; MAX_GPU_TYPES];
    for (slot, &n) in f
        .iter_mut()
        .zip(cluster.total.iter())
        .take(cluster.gpu_specs.len())
    {
        *slot = n;
    }
    f
}

/// `k * P / goodput^2`: the EDP of `W` samples is this times `W^2`.
#[inline]
pub(crate) fn edp_factor(cfg: &Config, p: &Perf) -> f64 {
    p.job_power_w(cfg.gpus) / (p.goodput * p.goodput)
}

/// What a configuration search optimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Objective {
    /// The requested count and batch, on the requested type or the fastest one with room.
    Requested,
    /// Highest goodput.
    MaxGoodput,
    /// Lowest EDP of the remaining work (`k * P / goodput^2`).
    MinEdp,
}

pub(crate) struct Probe<'v, 'a> {
    pub model: &'v ModelProfile,
    /// Index of `model` in the view's models (for its [`LimitTable`] entries).
    pub model_index: usize,
    pub cluster: &'v ClusterView<'a>,
    pub params: &'v PolicyParams,
    /// `Some` for a rigid job: the request it must keep.
    pub rigid: Option<Request>,
    /// What the job asked for (the `Requested` objective uses it).
    pub request: Request,
}

impl Probe<'_, '_> {
    pub(crate) fn for_job<'v, 'a>(
        cluster: &'v ClusterView<'a>,
        params: &'v PolicyParams,
        job: &JobView,
    ) -> Probe<'v, 'a> {
        Probe {
            model: &cluster.models[job.model as usize],
            model_index: job.model as usize,
            cluster,
            params,
            rigid: if job.rigid { Some(job.request) } else { None },
            request: job.request,
        }
    }

    /// Best configuration that fits in `free` under `objective`, with at most `kmax` GPUs for a
    /// malleable job; with `limits`, power limits from `params.limit_fractions` are tried; with
    /// `budget_w`, the configuration's added power (over idle GPUs) must fit in it.
    pub(crate) fn search(
        &self,
        free: &Free,
        kmax: u32,
        objective: Objective,
        limits: bool,
        budget_w: Option<f64>,
    ) -> Option<(Config, Perf)> {
        let specs = self.cluster.gpu_specs;
        let mut best: Option<(Config, Perf, f64)> = None;
        self.each_config(free, kmax, objective, limits, |cfg, effect| {
            let ty = cfg.gpu_type as usize;
            if free[ty] < cfg.gpus {
                return;
            }
            let Ok(p) = evaluate_limited(self.model, specs, &cfg, effect) else {
                return;
            };
            if let Some(b) = budget_w {
                if added_power_w(&cfg, &p, specs) > b {
                    return;
                }
            }
            let score = match objective {
                Objective::Requested | Objective::MaxGoodput => -p.goodput,
                Objective::MinEdp => edp_factor(&cfg, &p),
            };
            if best.as_ref().is_none_or(|(_, _, s)| score < *s) {
                best = Some((cfg, p, score));
            }
        });
        best.map(|(c, p, _)| (c, p))
    }

    /// The least power any configuration of a malleable job of this model can add over idle
    /// GPUs (power limits tried, any GPU count the cluster has): a job whose budget is below it
    /// cannot start, and [`Probe::search`] need not be run for it. `None` if no configuration
    /// runs. Only for malleable jobs (a rigid job keeps its own batch).
    pub(crate) fn min_added_power_w(&self) -> Option<f64> {
        let specs = self.cluster.gpu_specs;
        let probe = Probe {
            rigid: None,
            ..*self
        };
        let mut least: Option<f64> = None;
        let total = free_of_total(self.cluster);
        probe.each_config(
            &total,
            u32::MAX,
            Objective::MaxGoodput,
            true,
            |cfg, effect| {
                if let Ok(p) = evaluate_limited(self.model, specs, &cfg, effect) {
                    let a = added_power_w(&cfg, &p, specs);
                    if least.is_none_or(|l| a < l) {
                        least = Some(a);
                    }
                }
            },
        );
        least
    }

    /// Every configuration [`Probe::search`] considers, before the fit and budget checks, with
    /// its limit's effect (computed once per GPU type and limit).
    fn each_config(
        &self,
        free: &Free,
        kmax: u32,
        objective: Objective,
        limits: bool,
        mut visit: impl FnMut(Config, &LimitEffect),
    ) {
        let specs = self.cluster.gpu_specs;
        let nlimits = if limits {
            self.params.limit_fractions.len()
        } else {
            1
        };
        for ty in 0..specs.len() {
            let Some(perf) = self.model.perf[ty] else {
                continue;
            };
            let spec = &specs[ty];
            for li in 0..nlimits {
                let limit_w = if li == 0 && !limits {
                    spec.max_w
                } else {
                    limit_for_fraction(&perf, spec, self.params.limit_fractions[li])
                };
                let Ok(effect) = LimitTable::effect(
                    self.cluster.limit_effects,
                    self.model_index,
                    self.model,
                    specs,
                    ty as u8,
                    limit_w,
                ) else {
                    continue;
                };
                let effect = &effect;
                if let Some(req) = self.rigid {
                    if req.gpu_type.is_none_or(|t| t as usize == ty) {
                        visit(
                            Config {
                                gpu_type: ty as u8,
                                gpus: req.gpus,
                                batch: req.batch,
                                limit_w,
                            },
                            effect,
                        );
                    }
                    continue;
                }
                match objective {
                    Objective::Requested => {
                        let req = self.request;
                        if req.gpu_type.is_none_or(|t| t as usize == ty) {
                            visit(
                                Config {
                                    gpu_type: ty as u8,
                                    gpus: req.gpus,
                                    batch: req.batch,
                                    limit_w,
                                },
                                effect,
                            );
                        }
                    }
                    Objective::MaxGoodput | Objective::MinEdp => {
                        let kcap = kmax.min(free[ty]).min(self.model.max_gpus);
                        let b0 = self.model.stat.ref_batch.max(1);
                        let mut k = 1u32;
                        while k <= kcap {
                            for mult in [1u32, 2, 4, 8] {
                                let batch = b0.saturating_mul(mult);
                                if batch < k || batch > perf.max_batch_per_gpu.saturating_mul(k) {
                                    continue;
                                }
                                visit(
                                    Config {
                                        gpu_type: ty as u8,
                                        gpus: k,
                                        batch,
                                        limit_w,
                                    },
                                    effect,
                                );
                            }
                            // Past 2^31 the next power of two does not exist.
                            match k.checked_mul(2) {
                                Some(next) => k = next,
                                None => break,
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Power a configuration adds over its GPUs sitting idle, W (the one place this is computed).
#[inline]
pub(crate) fn added_power_w(cfg: &Config, p: &Perf, specs: &[GpuSpec]) -> f64 {
    cfg.gpus as f64 * (p.power_per_gpu_w - specs[cfg.gpu_type as usize].idle_w)
}

/// Largest power of two `<= x` (at least 1).
#[inline]
pub(crate) fn pow2_floor(x: u32) -> u32 {
    if x <= 1 {
        1
    } else {
        1 << (31 - x.leading_zeros())
    }
}

/// Pollux's fair share: free GPUs over pending jobs, as a power of two, at least 1. Giving each
/// waiting job one GPU maximises the sum of speed-ups when the queue is long; spare GPUs go to
/// the jobs that scale.
pub(crate) fn fair_share(free: &Free, pending: usize) -> u32 {
    let total: u32 = free.iter().sum();
    pow2_floor(total / (pending.max(1) as u32))
}

/// Seconds the job has waited since it arrived.
#[inline]
pub(crate) fn age_s(now: Nanos, job: &JobView) -> f64 {
    secs(now.saturating_sub(job.arrival))
}

/// Slack of a job with a deadline: seconds before the deadline minus the estimated time left.
/// Jobs without deadline have infinite slack.
pub(crate) fn slack_s(now: Nanos, job: &JobView, table: &ModelTable) -> f64 {
    match job.deadline {
        Some(d) => {
            (d as f64 - now as f64) / crate::units::NANOS_PER_SEC as f64
                - table.est_remaining_s(job)
        }
        None => f64::INFINITY,
    }
}

/// Moves the indices satisfying `pred` to the front (in no particular order); returns how many.
pub(crate) fn partition(idx: &mut [u32], pred: impl Fn(u32) -> bool) -> usize {
    let mut k = 0;
    for i in 0..idx.len() {
        if pred(idx[i]) {
            idx.swap(k, i);
            k += 1;
        }
    }
    k
}

/// Nothing can start: every GPU type is fully allocated.
#[inline]
pub(crate) fn no_free(cluster: &ClusterView<'_>) -> bool {
    cluster.free.iter().all(|&f| f == 0)
}

/// Sorts `idx` by a key (ascending, `total_cmp`), ties broken by job id: deterministic.
pub(crate) fn sort_by_key(idx: &mut [u32], jobs: &[JobView], key: impl Fn(&JobView) -> f64) {
    idx.sort_unstable_by(|&a, &b| {
        let (ja, jb) = (&jobs[a as usize], &jobs[b as usize]);
        key(ja).total_cmp(&key(jb)).then(ja.id.cmp(&jb.id))
    });
}

/// Comparator of job indices by a key (ascending, `total_cmp`), ties broken by job id, so every
/// ordering is total and deterministic.
pub(crate) fn by_key<'j>(
    jobs: &'j [JobView],
    key: impl Fn(&JobView) -> f64 + 'j,
) -> impl Fn(&u32, &u32) -> core::cmp::Ordering + 'j {
    move |&a, &b| {
        let (ja, jb) = (&jobs[a as usize], &jobs[b as usize]);
        key(ja).total_cmp(&key(jb)).then(ja.id.cmp(&jb.id))
    }
}

/// Visits `idx` in `cmp` order without sorting all of it: it selects the smallest remaining
/// elements in chunks (64, then doubling), sorts each chunk and visits it, until `visit` returns
/// false. A round that stops after a few jobs (the cluster is full) costs `O(n)`; one that visits
/// everything `O(n log n)`, like a sort. The order visited is exactly the sorted order.
pub(crate) fn in_order(
    idx: &mut [u32],
    cmp: impl Fn(&u32, &u32) -> core::cmp::Ordering,
    mut visit: impl FnMut(u32) -> bool,
) {
    let mut start = 0;
    let mut chunk = 64usize;
    while start < idx.len() {
        let rest = &mut idx[start..];
        let k = chunk.min(rest.len());
        if k < rest.len() {
            rest.select_nth_unstable_by(k - 1, &cmp);
        }
        let head = &mut rest[..k];
        head.sort_unstable_by(&cmp);
        for &i in head.iter() {
            if !visit(i) {
                return;
            }
        }
        start += k;
        chunk = chunk.saturating_mul(2);
    }
}

/// Places the jobs of `order` in `cmp` order. `choose` returns a configuration that fits in
/// `free` (or `None`); with `blocking`, the first job that does not fit stops the round (strict
/// FCFS). Stops when no GPU is left. Returns false when the decision buffer filled up.
pub(crate) fn place(
    order: &mut [u32],
    cmp: impl Fn(&u32, &u32) -> core::cmp::Ordering,
    free: &mut Free,
    blocking: bool,
    out: &mut Decisions<'_>,
    mut choose: impl FnMut(u32, &Free) -> Option<Config>,
) -> bool {
    let mut room = true;
    in_order(order, cmp, |i| {
        if free.iter().all(|&f| f == 0) {
            return false;
        }
        match choose(i, free) {
            Some(cfg) => {
                if out.push(Decision::Start { job: i, cfg }).is_err() {
                    room = false;
                    return false;
                }
                free[cfg.gpu_type as usize] -= cfg.gpus;
                true
            }
            None => !blocking,
        }
    });
    room
}

/// Whether any malleable running job of `running` has as many free GPUs of its type as it
/// holds (what [`grow_running`] needs to double it): if none has, a round skips the sort.
pub(crate) fn some_job_may_grow(jobs: &[JobView], running: &[u32], free: &Free) -> bool {
    if free.iter().all(|&f| f == 0) {
        return false;
    }
    running.iter().any(|&i| {
        let job = &jobs[i as usize];
        job.running
            .is_some_and(|c| !job.rigid && free[c.gpu_type as usize] >= c.gpus)
    })
}

/// A small open-addressing table of what a policy derived from a (model, configuration) pair
/// this round: thousands of running jobs share a few dozen pairs. When a probe sequence is full
/// it just evaluates again, so a value is always the one `eval` gives.
pub(crate) struct ConfigMemo<V: Copy, const N: usize> {
    slots: [Option<(MemoKey, V)>; N],
}

/// (model, GPU type, GPUs, batch, power-limit bits).
type MemoKey = (u16, u8, u32, u32, u64);

impl<V: Copy, const N: usize> ConfigMemo<V, N> {
    /// An empty table of `N` slots (a power of two keeps the slot arithmetic cheap).
    pub(crate) fn new() -> Self {
        ConfigMemo { slots: [None; N] }
    }

    /// The value for `(model, c)`, evaluated the first time it is asked for.
    pub(crate) fn get_or_insert(&mut self, model: u16, c: &Config, eval: impl FnOnce() -> V) -> V {
        let key = (model, c.gpu_type, c.gpus, c.batch, c.limit_w.to_bits());
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for x in [
            u64::from(key.0),
            u64::from(key.1),
            u64::from(key.2),
            u64::from(key.3),
            key.4,
        ] {
            h = (h ^ x).wrapping_mul(0x0000_0100_0000_01b3);
        }
        for probe in 0..8 {
            let slot = &mut self.slots[(h as usize).wrapping_add(probe) % N];
            match slot {
                Some((k, v)) if *k == key => return *v,
                Some(_) => continue,
                None => {
                    let v = eval();
                    *slot = Some((key, v));
                    return v;
                }
            }
        }
        eval()
    }
}

/// A larger configuration a running job could move to, with the performance of both.
#[derive(Clone, Copy)]
struct Doubling {
    to: Config,
    new: Perf,
    now: Perf,
}

/// Slots of [`grow_running`]'s memo (models x types x GPU counts x batches in use; a miss only
/// costs a search).
const GROW_MEMO: usize = 64;

/// Gives spare GPUs to running malleable jobs (Pollux and Zeus re-allocate as the queue drains),
/// visiting them in `order`: a job doubles its GPUs on its own type when the new configuration,
/// by `objective`, saves more than twice the reconfiguration cost in run time (or lowers its EDP,
/// for `MinEdp`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn grow_running(
    params: &PolicyParams,
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    running: &mut [u32],
    order: impl Fn(&u32, &u32) -> core::cmp::Ordering,
    free: &mut Free,
    objective: Objective,
    out: &mut Decisions<'_>,
) {
    let limits = objective == Objective::MinEdp;
    let mut memo = ConfigMemo::<Option<Doubling>, GROW_MEMO>::new();
    // The best doubling of a configuration, memoised (it depends on the model and the
    // configuration only).
    let mut doubling = |job: &JobView, cur: Config| -> Option<Doubling> {
        memo.get_or_insert(job.model, &cur, || {
            // Only this type, up to twice the GPUs: the job's current GPUs count as free for it.
            let mut avail = [0u32; MAX_GPU_TYPES];
            avail[cur.gpu_type as usize] = cur.gpus.saturating_mul(2);
            let model = &cluster.models[job.model as usize];
            let probe = Probe {
                model,
                model_index: job.model as usize,
                cluster,
                params,
                rigid: None,
                request: job.request,
            };
            probe
                .search(&avail, cur.gpus.saturating_mul(2), objective, limits, None)
                .filter(|(cfg, _)| cfg.gpus > cur.gpus)
                .and_then(|(to, new)| {
                    let specs = cluster.gpu_specs;
                    let now = LimitTable::evaluate(
                        cluster.limit_effects,
                        job.model as usize,
                        model,
                        specs,
                        &cur,
                    )
                    .ok()?;
                    Some(Doubling { to, new, now })
                })
        })
    };
    // Whether moving is worth it depends on the job alone (its remaining work).
    let worth = |job: &JobView, cur: Config, d: &Doubling| {
        let t_now = job.remaining_work / d.now.goodput;
        let t_new = job.remaining_work / d.new.goodput + params.reconfig_cost_s;
        match objective {
            Objective::MinEdp => {
                crate::metrics::edp(d.new.job_power_w(d.to.gpus) * t_new, t_new)
                    < crate::metrics::edp(d.now.job_power_w(cur.gpus) * t_now, t_now)
            }
            _ => t_now - t_new > params.reconfig_cost_s,
        }
    };
    // Candidates first: malleable jobs with as many free GPUs of their type as they hold, a
    // larger configuration to move to, and a gain from moving. Free GPUs only shrink during the
    // round, so no other job could grow; only the candidates are ordered.
    let mut n = 0;
    // The fewest GPUs a candidate of each type holds: once every type has fewer free GPUs than
    // that, no candidate left can grow and the visit stops.
    let mut fewest = [u32::MAX; MAX_GPU_TYPES];
    for k in 0..running.len() {
        let job = &jobs[running[k] as usize];
        let Some(cur) = job.running else { continue };
        let ty = cur.gpu_type as usize;
        if job.rigid
            || free[ty] < cur.gpus
            || !doubling(job, cur).is_some_and(|d| worth(job, cur, &d))
        {
            continue;
        }
        fewest[ty] = fewest[ty].min(cur.gpus);
        running.swap(n, k);
        n += 1;
    }
    // Visited in order by chunked selection, so the candidates left when the GPUs run out are
    // never sorted.
    in_order(&mut running[..n], order, |i| {
        if free.iter().zip(&fewest).all(|(f, least)| f < least) {
            return false; // no candidate can grow any more this round
        }
        let job = &jobs[i as usize];
        let Some(cur) = job.running else { return true };
        let ty = cur.gpu_type as usize;
        if free[ty] < cur.gpus {
            return true;
        }
        let Some(d) = doubling(job, cur) else {
            return true;
        };
        if out.push(Decision::Resize { job: i, cfg: d.to }).is_err() {
            return false;
        }
        free[ty] -= d.to.gpus - cur.gpus;
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn config_memo_gives_what_eval_gives_even_when_full() {
        // 8 slots for 40 keys: probe sequences fill up and the memo evaluates again.
        let mut memo = ConfigMemo::<u32, 8>::new();
        let cfg = |k: u32| Config {
            gpu_type: (k % 3) as u8,
            gpus: k,
            batch: 64 * k,
            limit_w: 100.0 + f64::from(k),
        };
        let mut evals = 0;
        for round in 0..3 {
            for k in 0..40u32 {
                let v = memo.get_or_insert((k % 5) as u16, &cfg(k), || {
                    evals += 1;
                    k * 7
                });
                assert_eq!(v, k * 7, "round {round}, key {k}");
            }
        }
        // The first round evaluates every key; later rounds find the 8 kept ones.
        assert_eq!(evals, 40 + 2 * 32);
    }

    proptest! {
        #[test]
        fn in_order_visits_exactly_the_sorted_order(keys in proptest::collection::vec(0u32..50, 0..400), stop in 0usize..450) {
            let mut idx: [u32; 400] = core::array::from_fn(|i| i as u32);
            let n = keys.len();
            let cmp = |a: &u32, b: &u32| keys[*a as usize].cmp(&keys[*b as usize]).then(a.cmp(b));
            let mut sorted = idx;
            sorted[..n].sort_unstable_by(cmp);
            let mut seen = [0u32; 400];
            let mut k = 0;
            in_order(&mut idx[..n], cmp, |i| {
                seen[k] = i;
                k += 1;
                k < stop
            });
            prop_assert_eq!(k, n.min(stop.max(1)));
            prop_assert_eq!(&seen[..k], &sorted[..k]);
        }
    }

    fn two_types() -> ([GpuSpec; 2], ModelProfile) {
        use crate::jobmodel::{LimitResponse, PerfParams, StatEff, StepTime};
        let spec = |idle_w, max_w, min_limit_w| GpuSpec {
            idle_w,
            allocated_idle_w: idle_w * 1.8,
            max_w,
            min_limit_w,
        };
        let mut perf = [None; MAX_GPU_TYPES];
        perf[0] = Some(PerfParams {
            step: StepTime::fit(1066.0, 7397.0, 8, 256.0, 0.34, 0.8, 2.0).unwrap(),
            busy_w: 352.0,
            max_batch_per_gpu: 512,
            limit: LimitResponse::DEFAULT,
        });
        perf[1] = Some(PerfParams {
            step: StepTime::fit(1825.0, 14423.0, 8, 256.0, 0.34, 0.8, 2.0).unwrap(),
            busy_w: 616.0,
            max_batch_per_gpu: 512,
            limit: LimitResponse::DEFAULT,
        });
        let model = ModelProfile {
            stat: StatEff {
                ref_batch: 256,
                noise_scale: 4096.0,
            },
            perf,
            max_gpus: 16,
        };
        ([spec(55.0, 400.0, 100.0), spec(79.0, 700.0, 200.0)], model)
    }

    proptest! {
        /// Charon skips a job's search when its budget is under the model's least added power:
        /// that bound must be exact (no configuration fits under it) and tight (one reaches it).
        #[test]
        fn least_added_power_is_an_exact_bound(
            free in (0u32..=8, 0u32..=8),
            kmax in 1u32..=16,
            budget in 0.0f64..4000.0,
            fractions in proptest::array::uniform4(0.3f64..1.2),
        ) {
            let (specs, model) = two_types();
            let models = [model];
            let total = [8u32, 8];
            let free_now = [free.0, free.1];
            let view = ClusterView {
                now: 0,
                gpu_specs: &specs,
                total: &total,
                free: &free_now,
                power_cap_w: None,
                models: &models,
                limit_effects: None,
            };
            let params = PolicyParams { limit_fractions: fractions, ..PolicyParams::default() };
            let request = Request { gpu_type: None, gpus: 1, batch: 256 };
            let probe = Probe { model: &models[0], model_index: 0, cluster: &view, params: &params, rigid: None, request };
            let least = probe.min_added_power_w().unwrap();
            let free = free_of(&view);
            let found = probe.search(&free, kmax, Objective::MaxGoodput, true, Some(budget));
            if least > budget {
                prop_assert!(found.is_none());
            }
            if let Some((cfg, p)) = found {
                prop_assert!(added_power_w(&cfg, &p, &specs) >= least);
            }
            let all = free_of_total(&view);
            prop_assert!(probe.search(&all, u32::MAX, Objective::MaxGoodput, true, Some(least)).is_some());
        }
    }

    #[test]
    fn the_registry_gives_each_kind_its_name_and_what_it_reads() {
        let names = [
            "fifo",
            "pollux",
            "themis",
            "chronos",
            "zeus",
            "hades",
            "aurachronos",
            "charon",
        ];
        for (i, kind) in PolicyKind::ALL.iter().enumerate() {
            assert_eq!(kind.name(), names[i]);
            assert_eq!(kind.descriptor().name, POLICIES[i].name);
            assert_eq!(PolicyKind::from_name(names[i]), Some(*kind));
            assert_eq!(
                PolicyKind::from_name(&names[i].to_ascii_uppercase()),
                Some(*kind)
            );
        }
        assert_eq!(PolicyKind::from_name("lifo"), None);
        // What the simulator relies on to skip rounds and views.
        use PolicyKind::*;
        let full: [bool; 8] = core::array::from_fn(|i| PolicyKind::ALL[i].acts_on_full_cluster());
        assert_eq!(full, [false, false, false, false, false, false, true, true]);
        let running: [bool; 8] = core::array::from_fn(|i| PolicyKind::ALL[i].reads_running_jobs());
        assert_eq!(
            running,
            [false, true, false, false, true, false, true, true]
        );
        for (p, u) in [(0, 0), (0, 1), (3, 0), (3, 2)] {
            for kind in PolicyKind::ALL {
                let expected = match kind {
                    Pollux | Zeus => p == 0,
                    AuraChronos => u > 0,
                    Charon => true,
                    _ => false,
                };
                assert_eq!(
                    kind.reads_running_jobs_when(p, u),
                    expected,
                    "{kind:?} {p} {u}"
                );
            }
        }
    }

    #[test]
    fn partition_and_pow2() {
        let mut v = [5u32, 2, 8, 3, 6];
        let k = partition(&mut v, |x| x % 2 == 0);
        assert_eq!(k, 3);
        assert!(v[..3].iter().all(|x| x % 2 == 0) && v[3..].iter().all(|x| x % 2 == 1));
        assert_eq!(
            (pow2_floor(0), pow2_floor(1), pow2_floor(7), pow2_floor(8)),
            (1, 1, 4, 8)
        );
        let free: Free = [3, 5, 0, 0];
        assert_eq!(fair_share(&free, 2), 4);
        assert_eq!(fair_share(&free, 100), 1);
    }
}
