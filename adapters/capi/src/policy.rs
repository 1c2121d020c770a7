//! The job model ([`ea2p_core::jobmodel`]) and the eight scheduling policies
//! ([`ea2p_core::policy`]) over plain C views of the cluster and the jobs.
//!
//! A scheduler fills an [`Ea2pClusterView`] and an array of [`Ea2pJobView`]s (pending and running
//! jobs), calls [`ea2p_schedule`] with a policy, and applies the [`Ea2pDecision`]s in order.

use core::cell::RefCell;
use core::ffi::{c_char, CStr};

use ea2p_core::jobmodel::{
    evaluate, Config, ConfigError, GpuSpec, LimitResponse, ModelProfile, PerfParams, StatEff,
    StepTime, MAX_GPU_TYPES,
};
use ea2p_core::policy::{
    schedule, ClusterView, Decision, Decisions, JobView, PolicyError, PolicyKind, PolicyParams,
    Request, MAX_MODELS,
};

use crate::{guard, input, input_slice, need, output_slice, put, Ea2pStatus};

/// The C GPU types as core ones, on the stack (at most [`MAX_GPU_TYPES`]; the caller checks).
fn specs_of(specs: &[Ea2pGpuSpec]) -> [GpuSpec; MAX_GPU_TYPES] {
    core::array::from_fn(|i| {
        specs.get(i).map_or(
            GpuSpec {
                idle_w: 0.0,
                allocated_idle_w: 0.0,
                max_w: 0.0,
                min_limit_w: 0.0,
            },
            GpuSpec::from,
        )
    })
}

/// The C models as core ones, on the stack (at most [`MAX_MODELS`]; the caller checks).
fn models_of(models: &[Ea2pModelProfile]) -> [ModelProfile; MAX_MODELS] {
    core::array::from_fn(|i| {
        models.get(i).map_or(
            ModelProfile {
                stat: StatEff {
                    ref_batch: 0,
                    noise_scale: 0.0,
                },
                perf: [None; MAX_GPU_TYPES],
                max_gpus: 0,
            },
            ModelProfile::from,
        )
    })
}

/// What [`ea2p_schedule`] converts the caller's jobs into and orders and decides in, kept per
/// thread and reused: a round no larger (in jobs and decision capacity) than an earlier one on
/// the same thread allocates nothing.
#[derive(Default)]
struct RoundBuffers {
    jobs: Vec<JobView>,
    scratch: Vec<u32>,
    decisions: Vec<Decision>,
}

std::thread_local! {
    static ROUND: RefCell<RoundBuffers> = RefCell::new(RoundBuffers::default());
}

/// Most GPU types a cluster view may list (`ea2p_core::jobmodel::MAX_GPU_TYPES`).
pub const EA2P_MAX_GPU_TYPES: usize = 4;

/// Most models a cluster view may list (`ea2p_core::policy::MAX_MODELS`).
pub const EA2P_MAX_MODELS: usize = 32;

/// Number of power-limit fractions in `Ea2pPolicyParams.limit_fractions`.
pub const EA2P_LIMIT_FRACTIONS: usize = 4;

/// The eight policies (pass the value as `uint32_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ea2pPolicy {
    /// First come, first served, strictly in arrival order.
    Fifo = 0,
    /// Shortest job first with ageing; malleable jobs take the configuration of best goodput.
    Pollux = 1,
    /// Users who consumed fewer GPU-seconds first.
    Themis = 2,
    /// Urgent jobs by slack, then best-effort jobs in arrival order.
    Chronos = 3,
    /// Pollux's order; configurations (including power limits) that minimise EDP.
    Zeus = 4,
    /// EDP scaled by the user's past energy; minimum-EDP configurations.
    Hades = 5,
    /// Urgent by slack, backfill by EDP, preempts best-effort work for urgent jobs.
    AuraChronos = 6,
    /// Places work only while the cluster's power stays under the cap.
    Charon = 7,
}

/// The core's policy for a C value, in the order of `Ea2pPolicy`.
fn policy_kind(policy: u32) -> Result<PolicyKind, Ea2pStatus> {
    const KINDS: [(Ea2pPolicy, PolicyKind); 8] = [
        (Ea2pPolicy::Fifo, PolicyKind::Fifo),
        (Ea2pPolicy::Pollux, PolicyKind::Pollux),
        (Ea2pPolicy::Themis, PolicyKind::Themis),
        (Ea2pPolicy::Chronos, PolicyKind::Chronos),
        (Ea2pPolicy::Zeus, PolicyKind::Zeus),
        (Ea2pPolicy::Hades, PolicyKind::Hades),
        (Ea2pPolicy::AuraChronos, PolicyKind::AuraChronos),
        (Ea2pPolicy::Charon, PolicyKind::Charon),
    ];
    KINDS
        .iter()
        .find(|(c, _)| *c as u32 == policy)
        .map(|(_, k)| *k)
        .ok_or(Ea2pStatus::InvalidArgument)
}

/// Power figures of one GPU type.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pGpuSpec {
    /// Power of an unallocated, idle GPU, in watts.
    pub idle_w: f64,
    /// Power of a GPU a job holds while computing nothing, in watts.
    pub allocated_idle_w: f64,
    /// Maximum board power (the default power limit), in watts.
    pub max_w: f64,
    /// Lowest power limit the board accepts, in watts.
    pub min_limit_w: f64,
}

impl From<&Ea2pGpuSpec> for GpuSpec {
    fn from(s: &Ea2pGpuSpec) -> Self {
        GpuSpec {
            idle_w: s.idle_w,
            allocated_idle_w: s.allocated_idle_w,
            max_w: s.max_w,
            min_limit_w: s.min_limit_w,
        }
    }
}

/// Pollux's step-time parameters of one model on one GPU type: `T = (Tc^g + Tn^g)^(1/g)` with
/// `Tc = alpha_c + beta_c (b/k)` and `Tn = alpha_n + beta_n (k - 1)`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pStepTime {
    /// Fixed compute time per step, in seconds.
    pub alpha_c: f64,
    /// Compute time per sample on one GPU, in seconds.
    pub beta_c: f64,
    /// Fixed synchronisation time per step when `k > 1`, in seconds.
    pub alpha_n: f64,
    /// Extra synchronisation time per additional replica, in seconds.
    pub beta_n: f64,
    /// Overlap exponent `g >= 1` of compute and synchronisation.
    pub gamma: f64,
}

impl From<Ea2pStepTime> for StepTime {
    fn from(s: Ea2pStepTime) -> Self {
        StepTime {
            alpha_c: s.alpha_c,
            beta_c: s.beta_c,
            alpha_n: s.alpha_n,
            beta_n: s.beta_n,
            gamma: s.gamma,
        }
    }
}

impl From<StepTime> for Ea2pStepTime {
    fn from(s: StepTime) -> Self {
        Ea2pStepTime {
            alpha_c: s.alpha_c,
            beta_c: s.beta_c,
            alpha_n: s.alpha_n,
            beta_n: s.beta_n,
            gamma: s.gamma,
        }
    }
}

/// Performance and power of one model on one GPU type.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pPerfParams {
    /// False where the model cannot run on this GPU type (the other fields are ignored).
    pub available: bool,
    /// Step-time model.
    pub step: Ea2pStepTime,
    /// Power per GPU while computing, at the default power limit, in watts.
    pub busy_w: f64,
    /// Largest batch per GPU that fits in the GPU's memory.
    pub max_batch_per_gpu: u32,
}

/// Everything the job model knows about one training model.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pModelProfile {
    /// Reference total batch `b0` of the statistical efficiency `(phi + b0) / (phi + b)`; work is
    /// counted in samples at this batch.
    pub ref_batch: u32,
    /// Gradient noise scale `phi`, in samples.
    pub noise_scale: f64,
    /// Performance per GPU type (index = GPU type).
    pub perf: [Ea2pPerfParams; EA2P_MAX_GPU_TYPES],
    /// Most GPUs a job of this model may use.
    pub max_gpus: u32,
}

impl From<&Ea2pModelProfile> for ModelProfile {
    fn from(m: &Ea2pModelProfile) -> Self {
        let perf: [Option<PerfParams>; MAX_GPU_TYPES] = core::array::from_fn(|i| {
            let p = &m.perf[i];
            p.available.then(|| PerfParams {
                step: p.step.into(),
                busy_w: p.busy_w,
                max_batch_per_gpu: p.max_batch_per_gpu,
                // The C struct carries no limit response: the fitted default.
                limit: LimitResponse::DEFAULT,
            })
        });
        ModelProfile {
            stat: StatEff {
                ref_batch: m.ref_batch,
                noise_scale: m.noise_scale,
            },
            perf,
            max_gpus: m.max_gpus,
        }
    }
}

/// A job's configuration: GPU type, GPU count, total batch and power limit.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pConfig {
    /// GPU type index.
    pub gpu_type: u8,
    /// Number of GPUs `k`.
    pub gpus: u32,
    /// Total batch `b` across the `k` GPUs.
    pub batch: u32,
    /// Power limit per GPU, in watts (the GPU's `max_w` for no limit).
    pub limit_w: f64,
}

impl From<&Ea2pConfig> for Config {
    fn from(c: &Ea2pConfig) -> Self {
        Config {
            gpu_type: c.gpu_type,
            gpus: c.gpus,
            batch: c.batch,
            limit_w: c.limit_w,
        }
    }
}

impl From<Config> for Ea2pConfig {
    fn from(c: Config) -> Self {
        Ea2pConfig {
            gpu_type: c.gpu_type,
            gpus: c.gpus,
            batch: c.batch,
            limit_w: c.limit_w,
        }
    }
}

/// What a configuration yields, from `ea2p_evaluate`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pPerf {
    /// Samples per second.
    pub throughput: f64,
    /// Statistical efficiency of the batch.
    pub efficiency: f64,
    /// Reference samples per second: throughput x efficiency.
    pub goodput: f64,
    /// Power per GPU while the job trains, in watts.
    pub power_per_gpu_w: f64,
    /// Share of the step the GPU spends computing.
    pub compute_fraction: f64,
}

/// Tunable parameters shared by the policies; start from `ea2p_policy_params_default`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pPolicyParams {
    /// Seconds of estimated run time forgiven per second waited (Pollux, Zeus).
    pub age_factor: f64,
    /// AuraChronos preempts best-effort work for an urgent job whose slack is below this, in s.
    pub urgent_margin_s: f64,
    /// Power limits energy-aware policies may choose, as fractions of the model's busy power
    /// (1.0 = no limit).
    pub limit_fractions: [f64; EA2P_LIMIT_FRACTIONS],
    /// Seconds a reconfiguration (checkpoint and restart) costs.
    pub reconfig_cost_s: f64,
}

impl From<&Ea2pPolicyParams> for PolicyParams {
    fn from(p: &Ea2pPolicyParams) -> Self {
        PolicyParams {
            age_factor: p.age_factor,
            urgent_margin_s: p.urgent_margin_s,
            limit_fractions: p.limit_fractions,
            reconfig_cost_s: p.reconfig_cost_s,
        }
    }
}

/// What a policy sees of the cluster. The arrays are the caller's and are only read during
/// the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Ea2pClusterView {
    /// Current time, in ns (same origin as the jobs' arrival and deadline times).
    pub now_ns: u64,
    /// `n_gpu_types` GPU types (index = type id).
    pub gpu_specs: *const Ea2pGpuSpec,
    /// `n_gpu_types` counts: GPUs of each type.
    pub total: *const u32,
    /// `n_gpu_types` counts: unallocated GPUs of each type (at most `total`).
    pub free: *const u32,
    /// Number of GPU types, at most `EA2P_MAX_GPU_TYPES`.
    pub n_gpu_types: usize,
    /// Cluster power budget in watts, used when `has_power_cap` (Charon honours it).
    pub power_cap_w: f64,
    /// Whether `power_cap_w` applies.
    pub has_power_cap: bool,
    /// `n_models` models (index = `Ea2pJobView.model`).
    pub models: *const Ea2pModelProfile,
    /// Number of models, at most `EA2P_MAX_MODELS`.
    pub n_models: usize,
}

/// What a job asked for.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pRequest {
    /// Requested GPU type, used when `has_gpu_type` (otherwise any type).
    pub gpu_type: u8,
    /// Whether `gpu_type` applies.
    pub has_gpu_type: bool,
    /// GPU count.
    pub gpus: u32,
    /// Total batch.
    pub batch: u32,
}

/// What a policy sees of one job.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pJobView {
    /// Stable job id: the tie-breaker of every ordering, so rounds are deterministic.
    pub id: u64,
    /// Model index into `Ea2pClusterView.models`.
    pub model: u16,
    /// User id.
    pub user: u32,
    /// Arrival time, in ns.
    pub arrival_ns: u64,
    /// Work left, in reference samples.
    pub remaining_work: f64,
    /// Deadline in ns, used when `has_deadline`.
    pub deadline_ns: u64,
    /// Whether the job has a deadline.
    pub has_deadline: bool,
    /// Urgent (deadline-critical) rather than best-effort.
    pub urgent: bool,
    /// Rigid jobs keep their requested type, count and batch.
    pub rigid: bool,
    /// What the job asked for.
    pub request: Ea2pRequest,
    /// Current configuration, used when `is_running`.
    pub running: Ea2pConfig,
    /// Whether the job runs now (otherwise it is pending).
    pub is_running: bool,
    /// Reference samples done since the last checkpoint: lost if preempted now.
    pub work_at_risk: f64,
    /// GPU-seconds the job's user has consumed so far.
    pub user_gpu_s: f64,
    /// Energy the job's user has consumed so far, in joules.
    pub user_energy_j: f64,
}

impl From<&Ea2pJobView> for JobView {
    fn from(j: &Ea2pJobView) -> Self {
        JobView {
            id: j.id,
            model: j.model,
            user: j.user,
            arrival: j.arrival_ns,
            remaining_work: j.remaining_work,
            deadline: j.has_deadline.then_some(j.deadline_ns),
            urgent: j.urgent,
            rigid: j.rigid,
            request: Request {
                gpu_type: j.request.has_gpu_type.then_some(j.request.gpu_type),
                gpus: j.request.gpus,
                batch: j.request.batch,
            },
            running: j.is_running.then(|| (&j.running).into()),
            work_at_risk: j.work_at_risk,
            user_gpu_s: j.user_gpu_s,
            user_energy_j: j.user_energy_j,
        }
    }
}

/// The kind of a scheduling decision.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ea2pDecisionKind {
    /// Start a pending job in `cfg`.
    Start = 0,
    /// Change a running job's configuration to `cfg` (a different type, count or batch needs a
    /// checkpoint and restart; a power limit alone does not).
    Resize = 1,
    /// Stop a running job; work since its last checkpoint is lost. `cfg` is zero.
    Preempt = 2,
}

/// One scheduling decision.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pDecision {
    /// What to do.
    pub kind: Ea2pDecisionKind,
    /// Index of the job in the array given to `ea2p_schedule`.
    pub job: u32,
    /// The configuration to start or resize to (zero for a preemption).
    pub cfg: Ea2pConfig,
}

impl From<&Decision> for Ea2pDecision {
    fn from(d: &Decision) -> Self {
        let (kind, job, cfg) = match *d {
            Decision::Start { job, cfg } => (Ea2pDecisionKind::Start, job, cfg.into()),
            Decision::Resize { job, cfg } => (Ea2pDecisionKind::Resize, job, cfg.into()),
            Decision::Preempt { job } => (
                Ea2pDecisionKind::Preempt,
                job,
                Ea2pConfig {
                    gpu_type: 0,
                    gpus: 0,
                    batch: 0,
                    limit_w: 0.0,
                },
            ),
        };
        Ea2pDecision { kind, job, cfg }
    }
}

impl From<ConfigError> for Ea2pStatus {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::UnknownGpuType => Ea2pStatus::UnknownGpuType,
            ConfigError::BadGpuCount => Ea2pStatus::BadGpuCount,
            ConfigError::BadBatch => Ea2pStatus::BadBatch,
        }
    }
}

impl From<PolicyError> for Ea2pStatus {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::TooManyModels { .. }
            | PolicyError::TooManyGpuTypes { .. }
            | PolicyError::FreeListShort { .. }
            | PolicyError::TotalListShort { .. } => Ea2pStatus::TooManyModelsOrTypes,
            PolicyError::UnknownModel { .. } => Ea2pStatus::UnknownModel,
            // The scratch is sized here, never by the caller.
            PolicyError::ScratchTooSmall { .. } => Ea2pStatus::Panicked,
            PolicyError::MoreFreeThanTotal { .. }
            | PolicyError::TooManyGpus
            | PolicyError::BadGpuSpec { .. }
            | PolicyError::BadPowerCap
            | PolicyError::BadParam { .. }
            | PolicyError::UnknownRequestedGpuType { .. }
            | PolicyError::UnknownRunningGpuType { .. }
            | PolicyError::MoreGpusThanExist { .. }
            | PolicyError::NanInJob { .. } => Ea2pStatus::InvalidArgument,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Functions.

/// Writes the default policy parameters to `out`.
///
/// # Safety
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_policy_params_default(out: *mut Ea2pPolicyParams) -> Ea2pStatus {
    guard(|| {
        let p = PolicyParams::default();
        let value = Ea2pPolicyParams {
            age_factor: p.age_factor,
            urgent_margin_s: p.urgent_margin_s,
            limit_fractions: p.limit_fractions,
            reconfig_cost_s: p.reconfig_cost_s,
        };
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, value) }
    })
}

/// The lower-case name of a policy ("fifo", "zeus"...), static and NUL-terminated, or null for
/// an unknown value. The string must not be freed.
#[no_mangle]
pub extern "C" fn ea2p_policy_name(policy: u32) -> *const c_char {
    // Names are short ASCII literals; the NUL-terminated copies live in static storage.
    const NAMES: [&CStr; 8] = [
        c"fifo",
        c"pollux",
        c"themis",
        c"chronos",
        c"zeus",
        c"hades",
        c"aurachronos",
        c"charon",
    ];
    match policy_kind(policy) {
        Ok(kind) => NAMES
            .iter()
            .find(|n| n.to_bytes() == kind.name().as_bytes())
            .map_or(core::ptr::null(), |n| n.as_ptr()),
        Err(_) => core::ptr::null(),
    }
}

/// Parses a policy name (case-insensitive) into an `Ea2pPolicy` value written to `out`;
/// `EA2P_STATUS_INVALID_ARGUMENT` for an unknown name or one that is not UTF-8.
///
/// # Safety
/// `name` is null or points to a NUL-terminated string; `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_policy_from_name(name: *const c_char, out: *mut u32) -> Ea2pStatus {
    guard(|| {
        need(out)?;
        if name.is_null() {
            return Err(Ea2pStatus::NullPointer);
        }
        // SAFETY: non-null and NUL-terminated by this function's contract.
        let name = unsafe { CStr::from_ptr(name) }
            .to_str()
            .map_err(|_| Ea2pStatus::InvalidArgument)?;
        let kind = PolicyKind::from_name(name).ok_or(Ea2pStatus::InvalidArgument)?;
        let value = (0..8u32)
            .find(|&v| policy_kind(v) == Ok(kind))
            .ok_or(Ea2pStatus::InvalidArgument)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, value) }
    })
}

/// Fits step-time parameters to two published figures, throughput on one GPU and on `k_many`
/// GPUs at `batch_per_gpu` samples per GPU, and writes them to `out`. `fixed_fraction` is the
/// share of the one-GPU step that does not grow with the batch, `sync_fixed_fraction` the share
/// of the synchronisation that does not grow with the replica count. `EA2P_STATUS_BAD_FIT` for
/// inconsistent figures (faster than linear scaling, non-positive values, `gamma < 1`).
///
/// # Safety
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_step_time_fit(
    one_gpu_samples_per_s: f64,
    many_gpu_samples_per_s: f64,
    k_many: u32,
    batch_per_gpu: f64,
    fixed_fraction: f64,
    sync_fixed_fraction: f64,
    gamma: f64,
    out: *mut Ea2pStepTime,
) -> Ea2pStatus {
    guard(|| {
        need(out)?;
        let fit = StepTime::fit(
            one_gpu_samples_per_s,
            many_gpu_samples_per_s,
            k_many,
            batch_per_gpu,
            fixed_fraction,
            sync_fixed_fraction,
            gamma,
        )
        .ok_or(Ea2pStatus::BadFit)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, fit.into()) }
    })
}

/// Evaluates `model` in configuration `cfg` on a cluster of `n_gpu_types` GPU types and writes
/// its throughput, statistical efficiency, goodput and power to `out`: how a scheduler scores a
/// configuration (energy per sample = `gpus x power_per_gpu_w / goodput`). Errors:
/// `EA2P_STATUS_UNKNOWN_GPU_TYPE`, `EA2P_STATUS_BAD_GPU_COUNT`, `EA2P_STATUS_BAD_BATCH`.
///
/// # Safety
/// `model` and `cfg` are null or point to initialised structs; `gpu_specs` is null or points to
/// `n_gpu_types` initialised `Ea2pGpuSpec`s; `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_evaluate(
    model: *const Ea2pModelProfile,
    gpu_specs: *const Ea2pGpuSpec,
    n_gpu_types: usize,
    cfg: *const Ea2pConfig,
    out: *mut Ea2pPerf,
) -> Ea2pStatus {
    guard(|| {
        need(out)?;
        // SAFETY: forwarded from this function's contract.
        let model: ModelProfile = unsafe { input(model) }?.into();
        // SAFETY: forwarded from this function's contract.
        let cfg: Config = unsafe { input(cfg) }?.into();
        // SAFETY: forwarded from this function's contract.
        let specs = unsafe { input_slice(gpu_specs, n_gpu_types) }?;
        if specs.len() > MAX_GPU_TYPES {
            return Err(Ea2pStatus::TooManyModelsOrTypes);
        }
        let specs = specs_of(specs);
        let p = evaluate(&model, &specs[..n_gpu_types], &cfg)?;
        let value = Ea2pPerf {
            throughput: p.throughput,
            efficiency: p.efficiency,
            goodput: p.goodput,
            power_per_gpu_w: p.power_per_gpu_w,
            compute_fraction: p.compute_fraction,
        };
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, value) }
    })
}

/// Runs one scheduling round of `policy` (an `Ea2pPolicy` value) over `n_jobs` pending and
/// running jobs, writes up to `out_cap` decisions to `out` and their number to `out_len`.
/// Apply the decisions in order (a preemption comes before the start that uses its GPUs). When
/// `*out_len == out_cap` the buffer filled up: apply these and run another round.
///
/// The views are checked by the core's `ea2p_core::policy::check_round` before any policy runs.
/// Errors (nothing written): `EA2P_STATUS_NULL_POINTER`, `EA2P_STATUS_INVALID_ARGUMENT` (unknown
/// policy, a job running on or requesting a GPU type the cluster lacks or holding more GPUs than
/// exist, more free GPUs than GPUs, a NaN, infinite or negative parameter, power figure or cap, a
/// NaN in a job), `EA2P_STATUS_TOO_MANY_MODELS_OR_TYPES`, `EA2P_STATUS_UNKNOWN_MODEL`.
///
/// The round is deterministic: the same views give the same decisions, bit for bit, as the Rust
/// `ea2p_core::policy::schedule`. The jobs are converted into buffers kept per thread and reused:
/// once a thread has run a round at least this large (jobs and `out_cap`), a call allocates
/// nothing.
///
/// # Safety
/// `params` and `cluster` are null or point to initialised structs whose arrays hold the counts
/// they state; `jobs` is null or points to `n_jobs` initialised `Ea2pJobView`s (may be null when
/// `n_jobs` is 0); `out` is null or valid for writes of `out_cap` decisions (may be null when
/// `out_cap` is 0); `out_len` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_schedule(
    policy: u32,
    params: *const Ea2pPolicyParams,
    cluster: *const Ea2pClusterView,
    jobs: *const Ea2pJobView,
    n_jobs: usize,
    out: *mut Ea2pDecision,
    out_cap: usize,
    out_len: *mut usize,
) -> Ea2pStatus {
    guard(|| {
        need(out_len)?;
        let kind = policy_kind(policy)?;
        // SAFETY: forwarded from this function's contract.
        let params: PolicyParams = unsafe { input(params) }?.into();
        // SAFETY: forwarded from this function's contract.
        let c = unsafe { input(cluster) }?;
        if c.n_gpu_types > MAX_GPU_TYPES || c.n_models > MAX_MODELS {
            return Err(Ea2pStatus::TooManyModelsOrTypes);
        }
        // SAFETY: the cluster's arrays hold the counts it states, by this function's contract.
        let (specs, total, free, models) = unsafe {
            (
                input_slice(c.gpu_specs, c.n_gpu_types)?,
                input_slice(c.total, c.n_gpu_types)?,
                input_slice(c.free, c.n_gpu_types)?,
                input_slice(c.models, c.n_models)?,
            )
        };
        // SAFETY: forwarded from this function's contract.
        let jobs = unsafe { input_slice(jobs, n_jobs) }?;
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { output_slice(out, out_cap) }?;

        let (n_types, n_models) = (specs.len(), models.len());
        let specs = specs_of(specs);
        let models = models_of(models);
        let view = ClusterView {
            now: c.now_ns,
            gpu_specs: &specs[..n_types],
            total,
            free,
            power_cap_w: c.has_power_cap.then_some(c.power_cap_w),
            models: &models[..n_models],
            limit_effects: None,
        };
        let made = ROUND.with(|round| -> Result<usize, Ea2pStatus> {
            let mut round = round.borrow_mut();
            let b = &mut *round;
            b.jobs.clear();
            b.jobs.extend(jobs.iter().map(JobView::from));
            b.scratch.clear();
            b.scratch.resize(b.jobs.len(), 0);
            b.decisions.clear();
            b.decisions.resize(out.len(), Decision::Preempt { job: 0 });
            let mut decisions = Decisions::new(&mut b.decisions);
            schedule(
                kind,
                &params,
                &view,
                &b.jobs,
                &mut b.scratch,
                &mut decisions,
            )?;
            let made = decisions.as_slice();
            for (slot, d) in out.iter_mut().zip(made) {
                *slot = d.into();
            }
            Ok(made.len())
        })?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_len, made) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::MaybeUninit;
    use core::ptr::{null, null_mut};

    #[test]
    fn constants_and_policy_values_match_the_core() {
        assert_eq!(EA2P_MAX_GPU_TYPES, MAX_GPU_TYPES);
        assert_eq!(EA2P_MAX_MODELS, MAX_MODELS);
        assert_eq!(
            EA2P_LIMIT_FRACTIONS,
            PolicyParams::default().limit_fractions.len()
        );
        for (v, kind) in PolicyKind::ALL.iter().enumerate() {
            assert_eq!(policy_kind(v as u32), Ok(*kind));
            // SAFETY: a non-null result is a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(ea2p_policy_name(v as u32)) };
            assert_eq!(name.to_str().unwrap(), kind.name());
            let mut back = 99;
            let upper = std::ffi::CString::new(kind.name().to_uppercase()).unwrap();
            // SAFETY: valid pointers.
            assert_eq!(
                unsafe { ea2p_policy_from_name(upper.as_ptr(), &mut back) },
                Ea2pStatus::Ok
            );
            assert_eq!(back, v as u32);
        }
        assert!(ea2p_policy_name(8).is_null());
        let mut back = 0;
        // SAFETY: valid pointers, and null where the contract allows.
        unsafe {
            assert_eq!(
                ea2p_policy_from_name(c"lottery".as_ptr(), &mut back),
                Ea2pStatus::InvalidArgument
            );
            assert_eq!(
                ea2p_policy_from_name(null(), &mut back),
                Ea2pStatus::NullPointer
            );
        }
    }

    fn a100() -> Ea2pGpuSpec {
        Ea2pGpuSpec {
            idle_w: 55.0,
            allocated_idle_w: 100.0,
            max_w: 400.0,
            min_limit_w: 100.0,
        }
    }

    fn model() -> Ea2pModelProfile {
        let mut step = MaybeUninit::uninit();
        // SAFETY: valid pointer.
        let s = unsafe {
            ea2p_step_time_fit(1066.0, 7397.0, 8, 256.0, 0.1, 0.8, 2.0, step.as_mut_ptr())
        };
        assert_eq!(s, Ea2pStatus::Ok);
        let none = Ea2pPerfParams {
            available: false,
            step: Ea2pStepTime {
                alpha_c: 0.0,
                beta_c: 0.0,
                alpha_n: 0.0,
                beta_n: 0.0,
                gamma: 1.0,
            },
            busy_w: 0.0,
            max_batch_per_gpu: 0,
        };
        Ea2pModelProfile {
            ref_batch: 256,
            noise_scale: 4096.0,
            perf: [
                Ea2pPerfParams {
                    available: true,
                    // SAFETY: written on success.
                    step: unsafe { step.assume_init() },
                    busy_w: 352.0,
                    max_batch_per_gpu: 512,
                },
                none,
                none,
                none,
            ],
            max_gpus: 16,
        }
    }

    fn job(id: u64, arrival_ns: u64, work: f64) -> Ea2pJobView {
        Ea2pJobView {
            id,
            model: 0,
            user: id as u32 % 2,
            arrival_ns,
            remaining_work: work,
            deadline_ns: 0,
            has_deadline: false,
            urgent: false,
            rigid: false,
            request: Ea2pRequest {
                gpu_type: 0,
                has_gpu_type: false,
                gpus: 2,
                batch: 512,
            },
            running: Ea2pConfig {
                gpu_type: 0,
                gpus: 0,
                batch: 0,
                limit_w: 0.0,
            },
            is_running: false,
            work_at_risk: 0.0,
            user_gpu_s: 0.0,
            user_energy_j: 0.0,
        }
    }

    #[test]
    fn evaluate_matches_the_core() {
        let m = model();
        let specs = [a100()];
        let cfg = Ea2pConfig {
            gpu_type: 0,
            gpus: 4,
            batch: 1024,
            limit_w: 300.0,
        };
        let mut p = MaybeUninit::uninit();
        // SAFETY: valid pointers.
        assert_eq!(
            unsafe { ea2p_evaluate(&m, specs.as_ptr(), 1, &cfg, p.as_mut_ptr()) },
            Ea2pStatus::Ok
        );
        // SAFETY: written on success.
        let p = unsafe { p.assume_init() };
        let want = evaluate(&(&m).into(), &[(&specs[0]).into()], &(&cfg).into()).unwrap();
        assert_eq!(p.goodput, want.goodput);
        assert_eq!(p.power_per_gpu_w, want.power_per_gpu_w);
        let bad = Ea2pConfig { gpus: 0, ..cfg };
        let mut out = MaybeUninit::uninit();
        // SAFETY: valid pointers.
        unsafe {
            assert_eq!(
                ea2p_evaluate(&m, specs.as_ptr(), 1, &bad, out.as_mut_ptr()),
                Ea2pStatus::BadGpuCount
            );
            assert_eq!(
                ea2p_evaluate(&m, specs.as_ptr(), 0, &cfg, out.as_mut_ptr()),
                Ea2pStatus::UnknownGpuType
            );
            assert_eq!(
                ea2p_evaluate(&m, null(), 1, &cfg, out.as_mut_ptr()),
                Ea2pStatus::NullPointer
            );
        }
    }

    /// Runs a round through the C ABI and through the core; both must agree.
    fn both(
        policy: Ea2pPolicy,
        cluster: &Ea2pClusterView,
        jobs: &[Ea2pJobView],
    ) -> Vec<Ea2pDecision> {
        let mut params = MaybeUninit::uninit();
        // SAFETY: valid pointer.
        assert_eq!(
            unsafe { ea2p_policy_params_default(params.as_mut_ptr()) },
            Ea2pStatus::Ok
        );
        // SAFETY: written on success.
        let params = unsafe { params.assume_init() };
        let mut out = vec![
            Ea2pDecision {
                kind: Ea2pDecisionKind::Preempt,
                job: 0,
                cfg: Ea2pConfig {
                    gpu_type: 0,
                    gpus: 0,
                    batch: 0,
                    limit_w: 0.0
                }
            };
            16
        ];
        let mut len = 0;
        // SAFETY: valid pointers and counts.
        let s = unsafe {
            ea2p_schedule(
                policy as u32,
                &params,
                cluster,
                jobs.as_ptr(),
                jobs.len(),
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            )
        };
        assert_eq!(s, Ea2pStatus::Ok);
        out.truncate(len);

        // SAFETY: the test's cluster arrays hold the counts they state.
        let (specs, total, free, models) = unsafe {
            (
                core::slice::from_raw_parts(cluster.gpu_specs, cluster.n_gpu_types),
                core::slice::from_raw_parts(cluster.total, cluster.n_gpu_types),
                core::slice::from_raw_parts(cluster.free, cluster.n_gpu_types),
                core::slice::from_raw_parts(cluster.models, cluster.n_models),
            )
        };
        let specs: Vec<GpuSpec> = specs.iter().map(GpuSpec::from).collect();
        let models: Vec<ModelProfile> = models.iter().map(ModelProfile::from).collect();
        let view = ClusterView {
            now: cluster.now_ns,
            gpu_specs: &specs,
            total,
            free,
            power_cap_w: None,
            models: &models,
            limit_effects: None,
        };
        let jv: Vec<JobView> = jobs.iter().map(JobView::from).collect();
        let mut scratch = vec![0; jv.len()];
        let mut buf = vec![Decision::Preempt { job: 0 }; 16];
        let mut d = Decisions::new(&mut buf);
        schedule(
            policy_kind(policy as u32).unwrap(),
            &PolicyParams::default(),
            &view,
            &jv,
            &mut scratch,
            &mut d,
        )
        .unwrap();
        let want: Vec<Ea2pDecision> = d.as_slice().iter().map(Ea2pDecision::from).collect();
        assert_eq!(out, want);
        out
    }

    #[test]
    fn schedule_matches_the_core_for_every_policy() {
        let models = [model()];
        let specs = [a100()];
        let (total, free) = ([8u32], [6u32]);
        let cluster = Ea2pClusterView {
            now_ns: 100_000_000_000,
            gpu_specs: specs.as_ptr(),
            total: total.as_ptr(),
            free: free.as_ptr(),
            n_gpu_types: 1,
            power_cap_w: 0.0,
            has_power_cap: false,
            models: models.as_ptr(),
            n_models: 1,
        };
        let mut jobs = vec![
            job(1, 10_000_000_000, 5e6),
            job(2, 0, 2e6),
            job(3, 5_000_000_000, 9e6),
        ];
        jobs.push(Ea2pJobView {
            is_running: true,
            running: Ea2pConfig {
                gpu_type: 0,
                gpus: 2,
                batch: 512,
                limit_w: 400.0,
            },
            ..job(4, 0, 1e6)
        });
        let fifo = both(Ea2pPolicy::Fifo, &cluster, &jobs);
        let zeus = both(Ea2pPolicy::Zeus, &cluster, &jobs);
        // FIFO starts the earliest arrival first, in what it asked for.
        assert_eq!(fifo[0].job, 1);
        assert_eq!((fifo[0].cfg.gpus, fifo[0].cfg.batch), (2, 512));
        // Zeus picks configurations, power limits included: at least one below the board max.
        assert!(!zeus.is_empty());
        assert!(zeus.iter().any(|d| d.cfg.limit_w < 400.0), "{zeus:?}");
        for p in [
            Ea2pPolicy::Pollux,
            Ea2pPolicy::Themis,
            Ea2pPolicy::Chronos,
            Ea2pPolicy::Hades,
            Ea2pPolicy::AuraChronos,
            Ea2pPolicy::Charon,
        ] {
            both(p, &cluster, &jobs);
        }
    }

    #[test]
    fn bad_views_are_errors_not_panics() {
        let models = [model()];
        let specs = [a100()];
        let (total, free) = ([8u32], [6u32]);
        let cluster = Ea2pClusterView {
            now_ns: 0,
            gpu_specs: specs.as_ptr(),
            total: total.as_ptr(),
            free: free.as_ptr(),
            n_gpu_types: 1,
            power_cap_w: 0.0,
            has_power_cap: false,
            models: models.as_ptr(),
            n_models: 1,
        };
        let mut params = MaybeUninit::uninit();
        // SAFETY: valid pointer.
        unsafe { ea2p_policy_params_default(params.as_mut_ptr()) };
        // SAFETY: written above.
        let params = unsafe { params.assume_init() };
        let run = |cluster: &Ea2pClusterView, jobs: &[Ea2pJobView], policy: u32| {
            let mut len = 0;
            // SAFETY: valid pointers; no decision buffer (capacity 0).
            unsafe {
                ea2p_schedule(
                    policy,
                    &params,
                    cluster,
                    jobs.as_ptr(),
                    jobs.len(),
                    null_mut(),
                    0,
                    &mut len,
                )
            }
        };
        let wrong_type = Ea2pJobView {
            is_running: true,
            running: Ea2pConfig {
                gpu_type: 200,
                gpus: 1,
                batch: 256,
                limit_w: 400.0,
            },
            ..job(1, 0, 1.0)
        };
        let wrong_model = Ea2pJobView {
            model: 3,
            ..job(2, 0, 1.0)
        };
        assert_eq!(
            run(&cluster, &[job(1, 0, 1.0)], 8),
            Ea2pStatus::InvalidArgument
        );
        assert_eq!(run(&cluster, &[wrong_type], 4), Ea2pStatus::InvalidArgument);
        assert_eq!(run(&cluster, &[wrong_model], 4), Ea2pStatus::UnknownModel);
        let too_many = Ea2pClusterView {
            n_gpu_types: 5,
            ..cluster
        };
        assert_eq!(run(&too_many, &[], 0), Ea2pStatus::TooManyModelsOrTypes);
        let no_free = Ea2pClusterView {
            free: null(),
            ..cluster
        };
        assert_eq!(run(&no_free, &[], 0), Ea2pStatus::NullPointer);
        let more_free = [9u32];
        let liar = Ea2pClusterView {
            free: more_free.as_ptr(),
            ..cluster
        };
        assert_eq!(run(&liar, &[], 0), Ea2pStatus::InvalidArgument);
        // The core's validation, reached through the C API: a NaN cap, a job holding more GPUs
        // than exist, a NaN in a job.
        let nan_cap = Ea2pClusterView {
            power_cap_w: f64::NAN,
            has_power_cap: true,
            ..cluster
        };
        assert_eq!(run(&nan_cap, &[], 7), Ea2pStatus::InvalidArgument);
        let hoarder = Ea2pJobView {
            is_running: true,
            running: Ea2pConfig {
                gpu_type: 0,
                gpus: 9,
                batch: 256,
                limit_w: 400.0,
            },
            ..job(3, 0, 1.0)
        };
        assert_eq!(run(&cluster, &[hoarder], 2), Ea2pStatus::InvalidArgument);
        let nan_work = job(4, 0, f64::NAN);
        assert_eq!(run(&cluster, &[nan_work], 0), Ea2pStatus::InvalidArgument);
        // A zero-capacity buffer is a full buffer: no decision, no error.
        assert_eq!(run(&cluster, &[job(1, 0, 1.0)], 0), Ea2pStatus::Ok);
    }
}
