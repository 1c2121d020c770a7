//! The performance and power model of a data-parallel training job, shared by the simulator and
//! the policies so that both reason about exactly the same numbers.
//!
//! A job trains a model on `k` GPUs of one type with a total batch `b` (`b / k` samples per GPU).
//!
//! - **Step time** follows Pollux (Qiao et al., OSDI'21, `petuum/adaptdl`):
//!   `T_step = (Tc^g + Tn^g)^(1/g)` with compute `Tc = alpha_c + beta_c * (b / k)` and
//!   synchronisation `Tn = alpha_n + beta_n * (k - 1)` (`Tn = 0` on one GPU); `g >= 1` says how
//!   much communication overlaps computation (1: none, large: full overlap).
//! - **Throughput** is `b / T_step` samples per second.
//! - **Statistical efficiency** is Pollux's `E(b) = (phi + b0) / (phi + b)` for a gradient noise
//!   scale `phi` and the reference batch `b0` at which `E = 1`: larger batches need more samples
//!   for the same progress.
//! - **Goodput** is throughput x statistical efficiency: progress in reference samples per second.
//!   A job's amount of work is measured in reference samples.
//! - **Power per GPU** lies between the GPU's allocated-idle power and the model's busy power:
//!   `P = P_alloc + (P_busy' - P_alloc) * Tc / T_step`, where `P_busy'` is the busy power under
//!   the GPU's power limit. A power limit `L` changes busy power and compute time as the model's
//!   [`LimitResponse`] says: a smooth function of the busy power and `L`, fitted to Zeus' measured
//!   sweeps (see [`LimitResponse`] for the formula and every constant's source).

use serde::{Deserialize, Serialize};

/// Most GPU types a cluster may have: per-type tables stay fixed-size arrays, so no allocator is
/// needed anywhere in the model or the policies.
pub const MAX_GPU_TYPES: usize = 4;

/// Lowest power limit, as a fraction of the busy power, that policies may choose. The limit
/// response is fitted and checked on limits down to 0.6 x the maximum limit
/// ([`LimitResponse::FIT_MIN_FRACTION`]); with busy power at 0.88 of the maximum (the catalogue's
/// figure) 0.68 x busy is that bound.
pub const MIN_LIMIT_FRACTION_OF_BUSY: f64 = 0.68;

/// Width, as a fraction of the maximum limit, over which the knee of [`LimitResponse`] turns on
/// (the softplus scale): fixed, not fitted, at a tenth of the sweeps' 0.1-0.17 limit step.
pub const KNEE_WIDTH: f64 = 0.02;

/// How a workload's busy power and speed respond to a power limit.
///
/// With `u` the busy power at the maximum limit and `x` the limit, both as fractions of the
/// maximum limit:
///
/// - power: `P(x) / P(1) = s(x) / s(1)` with the soft minimum
///   `s(x) = (u^-n + (r x)^-n)^(-1/n)`: well above the busy power the limit changes little, well
///   below it the GPU averages `r x` (it throttles on peaks, so the average sits below the
///   limit), and near it power already falls, as measured. No hard switch.
/// - time: `T(x) / T(1) = (P(x) / P(1))^-e + c softplus(k - x)^2`, softplus of width
///   [`KNEE_WIDTH`]: the clock falls with power, and below the knee `k` (the voltage floor)
///   speed falls off faster, as BERT's does below about 0.65.
///
/// The fit bounds `c` to `[0, 10]` and `k` to `[0.55, 0.8]`: at limits >= 0.6 x max a sweep has at
/// most two limits below the knee, so slope and knee trade off against each other; where the
/// data show a knee (ResNet-50, BERT) the fit puts it at 0.67 x max with `c` at its bound, where
/// they do not (each GPU alone) `c` is 0.
///
/// Every constant is fitted by least squares on relative time and power errors to the Zeus
/// NSDI'23 sweeps (`ml-energy/zeus` commit 75a8b939, `summary_power_v100.csv`,
/// `summary_power_a40.csv`, copied in `sim/calibration/zeus-nsdi23/`), limits at or above
/// [`Self::FIT_MIN_FRACTION`] of the maximum; `cargo test -p eas-sim --test limit_fit` refits them
/// and fails if a constant here differs. Cross-validation and `eas-sim validate` figures are in
/// sim/README.md.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LimitResponse {
    /// `r`: average power under a binding limit, as a fraction of the limit.
    pub capped_ratio: f64,
    /// `n > 1`: sharpness of the soft minimum between busy power and `r x`.
    pub sharpness: f64,
    /// `e`: time grows as power ratio to the power `-e`.
    pub speed_exponent: f64,
    /// `c >= 0`: growth of the extra slow-down below the knee.
    pub knee_slope: f64,
    /// `k`: the knee, as a fraction of the maximum limit.
    pub knee_fraction: f64,
}

impl LimitResponse {
    /// Lowest limit, as a fraction of the maximum, in the data the constants are fitted to (and
    /// `eas-sim validate`'s default).
    pub const FIT_MIN_FRACTION: f64 = 0.6;

    /// Default, for workloads without a measured sweep: fitted to every configuration of both
    /// files (V100 and A40, 6 workloads, 488 rows at limits >= 0.6 x max).
    pub const DEFAULT: LimitResponse = LimitResponse {
        capped_ratio: 0.8162,
        sharpness: 7.385,
        speed_exponent: 0.2869,
        knee_slope: 10.0,
        knee_fraction: 0.5819,
    };

    /// ResNet-50 (ImageNet): fitted to `imagenet,resnet50` of both files.
    pub const RESNET50: LimitResponse = LimitResponse {
        capped_ratio: 0.8541,
        sharpness: 7.645,
        speed_exponent: 0.2207,
        knee_slope: 10.0,
        knee_fraction: 0.6731,
    };

    /// BERT-base (SQuAD, Sentiment140): fitted to `bert_base_uncased` of both files; also used
    /// for ALBERT v2 (same per-layer compute).
    pub const BERT_BASE: LimitResponse = LimitResponse {
        capped_ratio: 0.9393,
        sharpness: 24.47,
        speed_exponent: 0.3089,
        knee_slope: 10.0,
        knee_fraction: 0.6706,
    };

    /// Fitted to the V100 file alone (every workload): for cross-validation on the A40.
    pub const FIT_V100: LimitResponse = LimitResponse {
        capped_ratio: 0.7908,
        sharpness: 7.177,
        speed_exponent: 0.3056,
        knee_slope: 0.0,
        knee_fraction: 0.55,
    };

    /// Fitted to the A40 file alone (every workload): for cross-validation on the V100.
    pub const FIT_A40: LimitResponse = LimitResponse {
        capped_ratio: 0.8621,
        sharpness: 7.708,
        speed_exponent: 0.2336,
        knee_slope: 0.0,
        knee_fraction: 0.5833,
    };

    /// Time and power under a limit, relative to the maximum limit: `(T(x)/T(1), P(x)/P(1))`
    /// for busy fraction `u` and limit fraction `x` (both of the maximum limit). `(1, 1)` at or
    /// above the maximum, or for a non-positive `u`.
    pub fn ratios(&self, busy_fraction: f64, limit_fraction: f64) -> (f64, f64) {
        let u = busy_fraction;
        let x = limit_fraction;
        if x >= 1.0 || u <= 0.0 || x <= 0.0 || u.is_nan() || x.is_nan() {
            return (1.0, 1.0);
        }
        // s(x) / s(1) = ((1 + q(1)) / (1 + q(x)))^(1/n) with q(x) = (u / (r x))^n: the same
        // function in three logs and exps fewer than with pow (this runs in every policy round).
        let n = self.sharpness;
        let q1 = libm::exp(n * libm::log(u / self.capped_ratio));
        let qx = libm::exp(n * libm::log(u / (self.capped_ratio * x)));
        let ln_power = libm::log((1.0 + q1) / (1.0 + qx)) / n;
        if !ln_power.is_finite() {
            // q overflowed (u far above r x with a large n): power is r x / u of busy power.
            let ln_p = libm::log(self.capped_ratio * x / u).min(0.0);
            return (
                libm::exp(-self.speed_exponent * ln_p).max(1.0),
                libm::exp(ln_p),
            );
        }
        let power = libm::exp(ln_power);
        // At x = 1 the knee term is below 1e-17 for any k <= 0.8 (the fit's bound): T(1) = 1.
        let knee = softplus(self.knee_fraction - x, KNEE_WIDTH);
        let time = libm::exp(-self.speed_exponent * ln_power) + self.knee_slope * knee * knee;
        (time.max(1.0), power.min(1.0))
    }
}

/// `w ln(1 + e^(z/w))`: a smooth `max(0, z)` of width `w` (no overflow for large `z`).
#[inline]
fn softplus(z: f64, w: f64) -> f64 {
    let t = z / w;
    if t > 36.0 {
        z
    } else if t > 0.0 {
        z + w * libm::log1p(libm::exp(-t))
    } else if t < -20.0 {
        w * libm::exp(t) // ln(1 + y) = y to 1e-9 relative for y < e^-20
    } else {
        w * libm::log1p(libm::exp(t))
    }
}

/// Power figures of one GPU type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GpuSpec {
    /// Power of an unallocated, idle GPU, in watts.
    pub idle_w: f64,
    /// Power of a GPU that a job holds while it computes nothing (restart, checkpoint, waiting on
    /// peers), in watts; well above `idle_w` because memory is allocated and clocks are up.
    pub allocated_idle_w: f64,
    /// Maximum board power (TDP, the default power limit), in watts.
    pub max_w: f64,
    /// Lowest power limit the board accepts, in watts.
    pub min_limit_w: f64,
}

/// Pollux's step-time parameters of one model on one GPU type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepTime {
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

impl StepTime {
    /// Fits the parameters to two published figures: throughput on one GPU and on `k_many` GPUs,
    /// both at `batch_per_gpu` samples per GPU.
    ///
    /// `fixed_fraction` is the share of the one-GPU step that does not grow with the batch
    /// (`alpha_c / Tc`), `sync_fixed_fraction` the share of the `k_many`-GPU synchronisation time
    /// that does not grow with the replica count (`alpha_n / Tn`). Returns `None` when the figures
    /// are inconsistent (the many-GPU run faster than linear scaling, non-positive values).
    pub fn fit(
        one_gpu_samples_per_s: f64,
        many_gpu_samples_per_s: f64,
        k_many: u32,
        batch_per_gpu: f64,
        fixed_fraction: f64,
        sync_fixed_fraction: f64,
        gamma: f64,
    ) -> Option<Self> {
        let valid = one_gpu_samples_per_s > 0.0
            && many_gpu_samples_per_s > 0.0
            && batch_per_gpu > 0.0
            && k_many >= 2
            && (0.0..1.0).contains(&fixed_fraction)
            && (0.0..=1.0).contains(&sync_fixed_fraction)
            && gamma >= 1.0;
        if !valid {
            return None;
        }
        let tc = batch_per_gpu / one_gpu_samples_per_s;
        let t_many = batch_per_gpu * k_many as f64 / many_gpu_samples_per_s;
        if t_many <= tc {
            return None;
        }
        let tn = libm::pow(libm::pow(t_many, gamma) - libm::pow(tc, gamma), 1.0 / gamma);
        let alpha_c = fixed_fraction * tc;
        let beta_c = (tc - alpha_c) / batch_per_gpu;
        let alpha_n = sync_fixed_fraction * tn;
        let beta_n = (tn - alpha_n) / (k_many - 1) as f64;
        Some(StepTime {
            alpha_c,
            beta_c,
            alpha_n,
            beta_n,
            gamma,
        })
    }

    /// Compute time of one step at `batch_per_gpu` samples per GPU, in seconds.
    #[inline]
    pub fn compute_s(&self, batch_per_gpu: f64) -> f64 {
        self.alpha_c + self.beta_c * batch_per_gpu
    }

    /// Synchronisation time of one step on `k` GPUs, in seconds (zero on one GPU).
    #[inline]
    pub fn sync_s(&self, k: u32) -> f64 {
        if k <= 1 {
            0.0
        } else {
            self.alpha_n + self.beta_n * (k - 1) as f64
        }
    }

    /// Time of one step: `(Tc^g + Tn^g)^(1/g)`, in seconds.
    pub fn step_s(&self, k: u32, batch_per_gpu: f64) -> f64 {
        let tc = self.compute_s(batch_per_gpu);
        let tn = self.sync_s(k);
        if tn == 0.0 {
            tc
        } else {
            libm::pow(
                libm::pow(tc, self.gamma) + libm::pow(tn, self.gamma),
                1.0 / self.gamma,
            )
        }
    }
}

/// Performance and power of one model on one GPU type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PerfParams {
    /// Step-time model.
    pub step: StepTime,
    /// Power per GPU while computing, at the default (maximum) power limit, in watts.
    pub busy_w: f64,
    /// Largest batch per GPU that fits in the GPU's memory.
    pub max_batch_per_gpu: u32,
    /// How busy power and compute time respond to a power limit.
    pub limit: LimitResponse,
}

/// Statistical efficiency of a model (Pollux): how much progress a sample makes at batch `b`
/// compared with the reference batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StatEff {
    /// Reference total batch `b0`, where the efficiency is 1 and work is counted.
    pub ref_batch: u32,
    /// Gradient noise scale `phi` (in samples): larger means larger batches lose less.
    pub noise_scale: f64,
}

impl StatEff {
    /// `E(b) = (phi + b0) / (phi + b)`: 1 at the reference batch, below 1 above it.
    #[inline]
    pub fn efficiency(&self, batch: f64) -> f64 {
        (self.noise_scale + self.ref_batch as f64) / (self.noise_scale + batch)
    }
}

/// Everything the model knows about one training model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelProfile {
    /// Statistical efficiency.
    pub stat: StatEff,
    /// Performance per GPU type (index = GPU type); `None` where the model cannot run.
    pub perf: [Option<PerfParams>; MAX_GPU_TYPES],
    /// Most GPUs a job of this model may use (data-parallel scaling stops being useful).
    pub max_gpus: u32,
}

/// A job's configuration: where and how it runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// GPU type index.
    pub gpu_type: u8,
    /// Number of GPUs `k`.
    pub gpus: u32,
    /// Total batch `b` across the `k` GPUs.
    pub batch: u32,
    /// Power limit per GPU, in watts (the GPU's `max_w` for no limit).
    pub limit_w: f64,
}

/// What a configuration yields.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Perf {
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

impl Perf {
    /// Power of all the job's GPUs, in watts.
    #[inline]
    pub fn job_power_w(&self, gpus: u32) -> f64 {
        self.power_per_gpu_w * gpus as f64
    }

    /// Energy per reference sample, in joules: what a configuration costs per unit of progress.
    #[inline]
    pub fn joules_per_sample(&self, gpus: u32) -> f64 {
        self.job_power_w(gpus) / self.goodput
    }

    /// EDP (`E x T`, J·s) of running `work` reference samples in this configuration.
    #[inline]
    pub fn edp_for(&self, gpus: u32, work: f64) -> f64 {
        let t = work / self.goodput;
        crate::metrics::edp(self.job_power_w(gpus) * t, t)
    }
}

/// Why a configuration cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The GPU type index is out of range or the model has no figures for it.
    UnknownGpuType,
    /// Zero GPUs, or more than the model may use.
    BadGpuCount,
    /// The batch is zero, or more per GPU than fits in memory, or fewer samples than GPUs.
    BadBatch,
}

/// Compute slow-down factor (`>= 1`) and busy power (W) under a power limit: `limit_w` against a
/// maximum of `max_w`, for a workload drawing `busy_w` at the maximum.
#[inline]
pub fn limited(response: &LimitResponse, busy_w: f64, max_w: f64, limit_w: f64) -> (f64, f64) {
    if limit_w >= max_w || max_w <= 0.0 {
        return (1.0, busy_w);
    }
    let (time, power) = response.ratios(busy_w / max_w, limit_w / max_w);
    (time, busy_w * power)
}

/// What a power limit does to one model on one GPU type: the same for every GPU count and
/// batch, so a configuration search computes it once per (type, limit) and passes it to
/// [`evaluate_limited`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitEffect {
    /// The limit as applied (clamped to the GPU's range), W.
    pub limit_w: f64,
    /// Compute slow-down factor, `>= 1`.
    pub slowdown: f64,
    /// Busy power per GPU under the limit, W.
    pub busy_w: f64,
}

/// The [`LimitEffect`] of `limit_w` on `model` on GPU type `gpu_type`.
pub fn limit_effect(
    model: &ModelProfile,
    gpu_specs: &[GpuSpec],
    gpu_type: u8,
    limit_w: f64,
) -> Result<LimitEffect, ConfigError> {
    let ty = gpu_type as usize;
    let (spec, perf) = match (gpu_specs.get(ty), model.perf.get(ty).copied().flatten()) {
        (Some(s), Some(p)) => (s, p),
        _ => return Err(ConfigError::UnknownGpuType),
    };
    let limit = clamp(limit_w, spec.min_limit_w, spec.max_w);
    let (slowdown, busy_w) = limited(&perf.limit, perf.busy_w, spec.max_w, limit);
    Ok(LimitEffect {
        limit_w: limit,
        slowdown,
        busy_w,
    })
}

/// Evaluates a configuration: throughput, efficiency, goodput and power.
pub fn evaluate(
    model: &ModelProfile,
    gpu_specs: &[GpuSpec],
    cfg: &Config,
) -> Result<Perf, ConfigError> {
    let effect = limit_effect(model, gpu_specs, cfg.gpu_type, cfg.limit_w)?;
    evaluate_limited(model, gpu_specs, cfg, &effect)
}

/// [`evaluate`] with the limit's effect already computed by [`limit_effect`] for this model,
/// `cfg.gpu_type` and `cfg.limit_w` (the result is the same; a search saves recomputing it).
pub fn evaluate_limited(
    model: &ModelProfile,
    gpu_specs: &[GpuSpec],
    cfg: &Config,
    effect: &LimitEffect,
) -> Result<Perf, ConfigError> {
    let ty = cfg.gpu_type as usize;
    let (spec, perf) = match (gpu_specs.get(ty), model.perf.get(ty).copied().flatten()) {
        (Some(s), Some(p)) => (s, p),
        _ => return Err(ConfigError::UnknownGpuType),
    };
    if cfg.gpus == 0 || cfg.gpus > model.max_gpus {
        return Err(ConfigError::BadGpuCount);
    }
    if cfg.batch < cfg.gpus || cfg.batch > perf.max_batch_per_gpu.saturating_mul(cfg.gpus) {
        return Err(ConfigError::BadBatch);
    }
    let per_gpu = cfg.batch as f64 / cfg.gpus as f64;
    let tc = perf.step.compute_s(per_gpu) * effect.slowdown;
    let tn = perf.step.sync_s(cfg.gpus);
    let step = if tn == 0.0 {
        tc
    } else {
        let g = perf.step.gamma;
        libm::pow(libm::pow(tc, g) + libm::pow(tn, g), 1.0 / g)
    };
    let throughput = cfg.batch as f64 / step;
    let efficiency = model.stat.efficiency(cfg.batch as f64);
    let compute_fraction = tc / step;
    let busy = effect.busy_w;
    let p = spec.allocated_idle_w + (busy - spec.allocated_idle_w) * compute_fraction;
    Ok(Perf {
        throughput,
        efficiency,
        goodput: throughput * efficiency,
        power_per_gpu_w: clamp(p, spec.idle_w, spec.max_w),
        compute_fraction,
    })
}

/// The power limit a policy applies for a limit fraction `f` of the model's busy power on a GPU
/// type (`f >= 1`: no limit, the GPU's maximum), kept in the GPU's range. Panics, as
/// [`f64::clamp`] does, if `spec.min_limit_w > spec.max_w` or either is NaN.
#[inline]
pub fn limit_for_fraction(perf: &PerfParams, spec: &GpuSpec, f: f64) -> f64 {
    if f >= 1.0 {
        spec.max_w
    } else {
        (f * perf.busy_w).clamp(spec.min_limit_w, spec.max_w)
    }
}

/// Limits per (model, GPU type) a [`LimitTable`] holds: one per entry of
/// [`crate::policy::PolicyParams::limit_fractions`].
pub const LIMIT_TABLE_SLOTS: usize = 4;

/// Everything [`limit_effect`] reads, bit for bit: an entry is used only if all of it matches.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LimitKey {
    limit_w: f64,
    busy_w: f64,
    max_w: f64,
    min_limit_w: f64,
    response: LimitResponse,
}

impl LimitKey {
    #[inline]
    fn of(perf: &PerfParams, spec: &GpuSpec, limit_w: f64) -> Self {
        LimitKey {
            limit_w,
            busy_w: perf.busy_w,
            max_w: spec.max_w,
            min_limit_w: spec.min_limit_w,
            response: perf.limit,
        }
    }

    /// Bit-for-bit equality (so `-0.0` and `0.0` differ and a NaN matches itself): a match
    /// guarantees [`limit_effect`] would return exactly the stored effect.
    #[inline]
    fn same(&self, o: &LimitKey) -> bool {
        let b = |x: f64, y: f64| x.to_bits() == y.to_bits();
        let (r, s) = (&self.response, &o.response);
        b(self.limit_w, o.limit_w)
            && b(self.busy_w, o.busy_w)
            && b(self.max_w, o.max_w)
            && b(self.min_limit_w, o.min_limit_w)
            && b(r.capped_ratio, s.capped_ratio)
            && b(r.sharpness, s.sharpness)
            && b(r.speed_exponent, s.speed_exponent)
            && b(r.knee_slope, s.knee_slope)
            && b(r.knee_fraction, s.knee_fraction)
    }
}

/// The entries of one (model, GPU type) of a [`LimitTable`]: the key it was computed from, and
/// the effect.
type LimitSlots = [Option<(LimitKey, LimitEffect)>; LIMIT_TABLE_SLOTS];

/// [`limit_effect`] of every (model, GPU type, limit fraction) of a run, computed once.
///
/// A limit's effect depends only on the model's figures on a GPU type and the limit, and the
/// policies try the same few limits (their `limit_fractions` of the busy power) for every job in
/// every round: the `exp`/`log` chain of [`LimitResponse::ratios`] would otherwise run hundreds
/// of thousands of times in a run. A caller that builds [`crate::policy::ClusterView`]s for many
/// rounds with the same models and GPU types (the simulator) builds this table once with
/// [`LimitTable::new`] and hands it to the policies in the view; callers that schedule one round
/// (the C interface) leave it out and the policies compute the effects themselves.
///
/// Every entry keeps the inputs it was computed from (the limit, the model's busy power and
/// [`LimitResponse`], the GPU's maximum and minimum limit) and [`LimitTable::effect`] uses it only
/// if they match the model and GPU it is asked about bit for bit; otherwise it computes the effect.
/// So a table built for other models, types or limit fractions is never wrong, only slower, and
/// the results are the same bits as without a table. Fixed size (about 50 KB), no allocation.
#[derive(Debug, Clone)]
pub struct LimitTable {
    slots: [[LimitSlots; MAX_GPU_TYPES]; crate::policy::MAX_MODELS],
}

impl LimitTable {
    /// A table with no entries: every look-up computes.
    pub const EMPTY: LimitTable = LimitTable {
        slots: [[[None; LIMIT_TABLE_SLOTS]; MAX_GPU_TYPES]; crate::policy::MAX_MODELS],
    };

    /// The effects of `limit_fractions` (the policies' `PolicyParams::limit_fractions`; at most
    /// [`LIMIT_TABLE_SLOTS`] are kept) on every model (index = model id, at most
    /// [`crate::policy::MAX_MODELS`]) on every GPU type it runs on. GPU types whose minimum limit is
    /// above their maximum (or NaN) are left out.
    pub fn new(models: &[ModelProfile], gpu_specs: &[GpuSpec], limit_fractions: &[f64]) -> Self {
        let mut t = LimitTable::EMPTY;
        for (m, model) in models.iter().enumerate().take(crate::policy::MAX_MODELS) {
            for (ty, spec) in gpu_specs.iter().enumerate().take(MAX_GPU_TYPES) {
                let Some(perf) = model.perf[ty] else { continue };
                if spec
                    .min_limit_w
                    .partial_cmp(&spec.max_w)
                    .is_none_or(|o| o.is_gt())
                {
                    continue; // limit_for_fraction would panic
                }
                for (slot, &f) in t.slots[m][ty]
                    .iter_mut()
                    .zip(limit_fractions.iter().take(LIMIT_TABLE_SLOTS))
                {
                    let limit_w = limit_for_fraction(&perf, spec, f);
                    if let Ok(e) = limit_effect(model, gpu_specs, ty as u8, limit_w) {
                        *slot = Some((LimitKey::of(&perf, spec, limit_w), e));
                    }
                }
            }
        }
        t
    }

    /// The stored effect of `limit_w` on model `model_index` (whose figures are `model`) on
    /// `gpu_type`, if the table holds one computed from exactly these inputs.
    #[inline]
    pub fn get(
        &self,
        model_index: usize,
        model: &ModelProfile,
        gpu_specs: &[GpuSpec],
        gpu_type: u8,
        limit_w: f64,
    ) -> Option<LimitEffect> {
        let ty = gpu_type as usize;
        let slots = self.slots.get(model_index)?.get(ty)?;
        let (spec, perf) = (gpu_specs.get(ty)?, model.perf.get(ty).copied().flatten()?);
        let want = LimitKey::of(&perf, spec, limit_w);
        slots
            .iter()
            .flatten()
            .find(|(k, _)| k.same(&want))
            .map(|(_, e)| *e)
    }

    /// [`limit_effect`] through the table: the stored effect where it has one for exactly these
    /// inputs, else computed (the same bits either way).
    #[inline]
    pub fn effect(
        table: Option<&LimitTable>,
        model_index: usize,
        model: &ModelProfile,
        gpu_specs: &[GpuSpec],
        gpu_type: u8,
        limit_w: f64,
    ) -> Result<LimitEffect, ConfigError> {
        match table.and_then(|t| t.get(model_index, model, gpu_specs, gpu_type, limit_w)) {
            Some(e) => Ok(e),
            None => limit_effect(model, gpu_specs, gpu_type, limit_w),
        }
    }

    /// [`evaluate`] through the table (see [`LimitTable::effect`]): the same result.
    #[inline]
    pub fn evaluate(
        table: Option<&LimitTable>,
        model_index: usize,
        model: &ModelProfile,
        gpu_specs: &[GpuSpec],
        cfg: &Config,
    ) -> Result<Perf, ConfigError> {
        let effect = Self::effect(
            table,
            model_index,
            model,
            gpu_specs,
            cfg.gpu_type,
            cfg.limit_w,
        )?;
        evaluate_limited(model, gpu_specs, cfg, &effect)
    }
}

/// Samples per second of `model` on `k` GPUs of type `gpu_type` at total batch `batch`, no
/// power limit; `None` when the configuration is not allowed.
pub fn throughput(
    model: &ModelProfile,
    gpu_specs: &[GpuSpec],
    gpu_type: u8,
    k: u32,
    batch: u32,
) -> Option<f64> {
    let max_w = gpu_specs.get(gpu_type as usize)?.max_w;
    let cfg = Config {
        gpu_type,
        gpus: k,
        batch,
        limit_w: max_w,
    };
    evaluate(model, gpu_specs, &cfg).ok().map(|p| p.throughput)
}

/// Goodput (reference samples per second) of a configuration; `None` when it is not allowed.
pub fn goodput(model: &ModelProfile, gpu_specs: &[GpuSpec], cfg: &Config) -> Option<f64> {
    evaluate(model, gpu_specs, cfg).ok().map(|p| p.goodput)
}

/// Power per GPU (W) of a configuration; `None` when it is not allowed.
pub fn power_per_gpu_w(model: &ModelProfile, gpu_specs: &[GpuSpec], cfg: &Config) -> Option<f64> {
    evaluate(model, gpu_specs, cfg)
        .ok()
        .map(|p| p.power_per_gpu_w)
}

/// Scaling efficiency on `k` GPUs: throughput on `k` over `k` times throughput on one, at the
/// same batch per GPU. 1 is linear scaling.
pub fn scaling_efficiency(perf: &PerfParams, k: u32, batch_per_gpu: f64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    perf.step.step_s(1, batch_per_gpu) / perf.step.step_s(k, batch_per_gpu)
}

#[inline]
fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a100() -> GpuSpec {
        GpuSpec {
            idle_w: 55.0,
            allocated_idle_w: 100.0,
            max_w: 400.0,
            min_limit_w: 100.0,
        }
    }

    fn model() -> ModelProfile {
        let step = StepTime::fit(1066.0, 7397.0, 8, 256.0, 0.1, 0.8, 2.0).unwrap();
        let perf = PerfParams {
            step,
            busy_w: 352.0,
            max_batch_per_gpu: 512,
            limit: LimitResponse::DEFAULT,
        };
        ModelProfile {
            stat: StatEff {
                ref_batch: 256,
                noise_scale: 4096.0,
            },
            perf: [Some(perf), None, None, None],
            max_gpus: 16,
        }
    }

    #[test]
    fn fit_reproduces_the_published_figures() {
        let m = model();
        let g = [a100()];
        let one = throughput(&m, &g, 0, 1, 256).unwrap();
        let eight = throughput(&m, &g, 0, 8, 8 * 256).unwrap();
        assert!((one - 1066.0).abs() < 1e-6, "{one}");
        assert!((eight - 7397.0).abs() < 1e-6, "{eight}");
    }

    #[test]
    fn goodput_falls_behind_throughput_above_reference_batch() {
        let m = model();
        let g = [a100()];
        let cfg = Config {
            gpu_type: 0,
            gpus: 1,
            batch: 512,
            limit_w: 400.0,
        };
        let p = evaluate(&m, &g, &cfg).unwrap();
        assert!(p.efficiency < 1.0);
        assert!(p.goodput < p.throughput);
        let r = evaluate(&m, &g, &Config { batch: 256, ..cfg }).unwrap();
        assert_eq!(r.efficiency, 1.0);
    }

    #[test]
    fn power_lies_between_allocated_idle_and_busy_and_limit_slows() {
        let m = model();
        let g = [a100()];
        let full = Config {
            gpu_type: 0,
            gpus: 8,
            batch: 2048,
            limit_w: 400.0,
        };
        let p = evaluate(&m, &g, &full).unwrap();
        assert!(p.power_per_gpu_w > 100.0 && p.power_per_gpu_w < 352.0);
        let capped = evaluate(
            &m,
            &g,
            &Config {
                limit_w: 250.0,
                ..full
            },
        )
        .unwrap();
        assert!(capped.power_per_gpu_w < p.power_per_gpu_w);
        assert!(capped.goodput < p.goodput);
        // Energy per sample goes down under the cap (the Zeus effect).
        assert!(capped.joules_per_sample(8) < p.joules_per_sample(8));
    }

    #[test]
    fn rejects_impossible_configurations() {
        let m = model();
        let g = [a100()];
        let base = Config {
            gpu_type: 0,
            gpus: 1,
            batch: 256,
            limit_w: 400.0,
        };
        assert_eq!(
            evaluate(
                &m,
                &g,
                &Config {
                    gpu_type: 1,
                    ..base
                }
            ),
            Err(ConfigError::UnknownGpuType)
        );
        assert_eq!(
            evaluate(&m, &g, &Config { gpus: 0, ..base }),
            Err(ConfigError::BadGpuCount)
        );
        assert_eq!(
            evaluate(
                &m,
                &g,
                &Config {
                    batch: 4096,
                    ..base
                }
            ),
            Err(ConfigError::BadBatch)
        );
        assert!(StepTime::fit(1000.0, 9000.0, 8, 256.0, 0.1, 0.5, 1.0).is_none());
    }

    #[test]
    fn scaling_efficiency_is_below_one_on_many_gpus() {
        let m = model();
        let p = m.perf[0].unwrap();
        let e8 = scaling_efficiency(&p, 8, 256.0);
        assert!((e8 - 7397.0 / 8.0 / 1066.0).abs() < 1e-9);
        assert_eq!(scaling_efficiency(&p, 1, 256.0), 1.0);
    }
}
