//! The one validation of a round's input, run before every policy: what the policies index,
//! count and clamp by is checked here, so bad input is a [`PolicyError`], never a panic.
//!
//! [`check_round`] is what [`super::schedule`] and [`super::PolicyDescriptor::schedule`] run; the
//! C API and callers that write their own policy run it too.

use core::fmt;

use super::{ClusterView, JobView, PolicyParams, MAX_MODELS};
use crate::jobmodel::{GpuSpec, MAX_GPU_TYPES};

/// A tunable parameter of [`PolicyParams`], named in errors and in policy descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param {
    /// [`PolicyParams::age_factor`].
    AgeFactor,
    /// [`PolicyParams::urgent_margin_s`].
    UrgentMargin,
    /// [`PolicyParams::limit_fractions`].
    LimitFractions,
    /// [`PolicyParams::reconfig_cost_s`].
    ReconfigCost,
}

impl Param {
    /// The field's name, as scenario files spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Param::AgeFactor => "age_factor",
            Param::UrgentMargin => "urgent_margin_s",
            Param::LimitFractions => "limit_fractions",
            Param::ReconfigCost => "reconfig_cost_s",
        }
    }
}

/// Why a policy could not run. Every variant names what is wrong with the round's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyError {
    /// The scratch slice is shorter than the job slice.
    ScratchTooSmall {
        /// Length needed.
        needed: usize,
    },
    /// More models than the per-model tables hold ([`MAX_MODELS`]).
    TooManyModels {
        /// Models in the view.
        models: usize,
    },
    /// More GPU types than the per-type tables hold ([`MAX_GPU_TYPES`]).
    TooManyGpuTypes {
        /// GPU types in the view.
        types: usize,
    },
    /// Fewer free counts than GPU types.
    FreeListShort {
        /// GPU types in the view.
        types: usize,
        /// Free counts given.
        free: usize,
    },
    /// Fewer total counts than GPU types.
    TotalListShort {
        /// GPU types in the view.
        types: usize,
        /// Total counts given.
        total: usize,
    },
    /// More free GPUs of a type than the type has.
    MoreFreeThanTotal {
        /// GPU type.
        gpu_type: usize,
        /// Free GPUs given.
        free: u32,
        /// GPUs of the type.
        total: u32,
    },
    /// The cluster has more GPUs, all types together, than a `u32` counts.
    TooManyGpus,
    /// A GPU type's power figures are not finite non-negative watts with
    /// `min_limit_w <= max_w`.
    BadGpuSpec {
        /// GPU type.
        gpu_type: usize,
    },
    /// The power cap is NaN or negative.
    BadPowerCap,
    /// A parameter is NaN, infinite or negative (a power-limit fraction: not above 0).
    BadParam {
        /// Which.
        param: Param,
    },
    /// A job names a model index not in the view.
    UnknownModel {
        /// Job id.
        job: u64,
    },
    /// A job asks for a GPU type the cluster lacks.
    UnknownRequestedGpuType {
        /// Job id.
        job: u64,
        /// The type asked for.
        gpu_type: u8,
    },
    /// A running job runs on a GPU type the cluster lacks.
    UnknownRunningGpuType {
        /// Job id.
        job: u64,
        /// The type it runs on.
        gpu_type: u8,
    },
    /// A running job holds more GPUs of its type than the type has.
    MoreGpusThanExist {
        /// Job id.
        job: u64,
        /// GPU type.
        gpu_type: u8,
        /// GPUs the job holds.
        gpus: u32,
        /// GPUs of the type.
        total: u32,
    },
    /// A job's remaining work, work at risk or user history is NaN.
    NanInJob {
        /// Job id.
        job: u64,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PolicyError::ScratchTooSmall { needed } => {
                write!(f, "the scratch space is too small ({needed} entries needed)")
            }
            PolicyError::TooManyModels { models } => write!(
                f,
                "the cluster view lists {models} models, more than the {MAX_MODELS} a round holds"
            ),
            PolicyError::TooManyGpuTypes { types } => write!(
                f,
                "the cluster view lists {types} GPU types, more than the {MAX_GPU_TYPES} a round holds"
            ),
            PolicyError::FreeListShort { types, free } => write!(
                f,
                "the cluster view gives {free} free counts for {types} GPU types"
            ),
            PolicyError::TotalListShort { types, total } => write!(
                f,
                "the cluster view gives {total} total counts for {types} GPU types"
            ),
            PolicyError::MoreFreeThanTotal {
                gpu_type,
                free,
                total,
            } => write!(
                f,
                "GPU type {gpu_type} has {free} free GPUs but only {total} GPUs"
            ),
            PolicyError::TooManyGpus => {
                write!(f, "the cluster has more GPUs than a 32-bit count holds")
            }
            PolicyError::BadGpuSpec { gpu_type } => write!(
                f,
                "GPU type {gpu_type}: power figures must be finite, non-negative watts with min_limit_w at most max_w"
            ),
            PolicyError::BadPowerCap => write!(f, "the power cap is not a non-negative number of watts"),
            PolicyError::BadParam { param } => match param {
                Param::LimitFractions => write!(
                    f,
                    "policy parameter limit_fractions: every fraction must be a finite number above 0"
                ),
                p => write!(
                    f,
                    "policy parameter {}: expected a finite, non-negative number",
                    p.name()
                ),
            },
            PolicyError::UnknownModel { job } => {
                write!(f, "job {job} names a model that is not in the round's view")
            }
            PolicyError::UnknownRequestedGpuType { job, gpu_type } => write!(
                f,
                "job {job} asks for GPU type {gpu_type}, which the cluster does not have"
            ),
            PolicyError::UnknownRunningGpuType { job, gpu_type } => write!(
                f,
                "job {job} runs on GPU type {gpu_type}, which the cluster does not have"
            ),
            PolicyError::MoreGpusThanExist {
                job,
                gpu_type,
                gpus,
                total,
            } => write!(
                f,
                "job {job} holds {gpus} GPUs of type {gpu_type}, which has only {total}"
            ),
            PolicyError::NanInJob { job } => write!(
                f,
                "job {job}: remaining work, work at risk or its user's history is not a number"
            ),
        }
    }
}

impl core::error::Error for PolicyError {}

/// Checks a round's input once: the scratch length, the table sizes, the GPU counts and power
/// figures, the power cap, the parameters, and every job's model, GPU types and numbers.
/// `O(types + jobs)`; the first problem found comes back.
pub fn check_round(
    params: &PolicyParams,
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    scratch: &[u32],
) -> Result<(), PolicyError> {
    if scratch.len() < jobs.len() {
        return Err(PolicyError::ScratchTooSmall { needed: jobs.len() });
    }
    check_params(params)?;
    check_cluster(cluster)?;
    check_jobs(cluster, jobs)
}

/// Checks the parameters alone (see [`PolicyError::BadParam`]).
pub fn check_params(params: &PolicyParams) -> Result<(), PolicyError> {
    let ok = |x: f64| x.is_finite() && x >= 0.0;
    let bad = |param| Err(PolicyError::BadParam { param });
    if !ok(params.age_factor) {
        return bad(Param::AgeFactor);
    }
    if !ok(params.urgent_margin_s) {
        return bad(Param::UrgentMargin);
    }
    if !params
        .limit_fractions
        .iter()
        .all(|&f| f.is_finite() && f > 0.0)
    {
        return bad(Param::LimitFractions);
    }
    if !ok(params.reconfig_cost_s) {
        return bad(Param::ReconfigCost);
    }
    Ok(())
}

/// Checks the cluster view alone: table sizes, counts, power figures and cap.
pub fn check_cluster(cluster: &ClusterView<'_>) -> Result<(), PolicyError> {
    let types = cluster.gpu_specs.len();
    if cluster.models.len() > MAX_MODELS {
        return Err(PolicyError::TooManyModels {
            models: cluster.models.len(),
        });
    }
    if types > MAX_GPU_TYPES {
        return Err(PolicyError::TooManyGpuTypes { types });
    }
    if cluster.free.len() < types {
        return Err(PolicyError::FreeListShort {
            types,
            free: cluster.free.len(),
        });
    }
    if cluster.total.len() < types {
        return Err(PolicyError::TotalListShort {
            types,
            total: cluster.total.len(),
        });
    }
    let mut sum = 0u32;
    for (ty, (&free, &total)) in cluster
        .free
        .iter()
        .zip(cluster.total)
        .take(types)
        .enumerate()
    {
        if free > total {
            return Err(PolicyError::MoreFreeThanTotal {
                gpu_type: ty,
                free,
                total,
            });
        }
        sum = sum.checked_add(total).ok_or(PolicyError::TooManyGpus)?;
    }
    if let Some(ty) = cluster.gpu_specs.iter().position(|s| !spec_ok(s)) {
        return Err(PolicyError::BadGpuSpec { gpu_type: ty });
    }
    if cluster.power_cap_w.is_some_and(|w| w.is_nan() || w < 0.0) {
        return Err(PolicyError::BadPowerCap);
    }
    Ok(())
}

fn spec_ok(s: &GpuSpec) -> bool {
    let w = |x: f64| x.is_finite() && x >= 0.0;
    w(s.idle_w)
        && w(s.allocated_idle_w)
        && w(s.max_w)
        && w(s.min_limit_w)
        && s.min_limit_w <= s.max_w
}

/// Checks the jobs against a cluster view that passed [`check_cluster`].
pub fn check_jobs(cluster: &ClusterView<'_>, jobs: &[JobView]) -> Result<(), PolicyError> {
    let types = cluster.gpu_specs.len();
    for j in jobs {
        let job = j.id;
        if j.model as usize >= cluster.models.len() {
            return Err(PolicyError::UnknownModel { job });
        }
        if let Some(gpu_type) = j.request.gpu_type.filter(|&t| t as usize >= types) {
            return Err(PolicyError::UnknownRequestedGpuType { job, gpu_type });
        }
        if let Some(c) = j.running {
            let Some(&total) = cluster
                .total
                .get(c.gpu_type as usize)
                .filter(|_| (c.gpu_type as usize) < types)
            else {
                return Err(PolicyError::UnknownRunningGpuType {
                    job,
                    gpu_type: c.gpu_type,
                });
            };
            if c.gpus > total {
                return Err(PolicyError::MoreGpusThanExist {
                    job,
                    gpu_type: c.gpu_type,
                    gpus: c.gpus,
                    total,
                });
            }
        }
        if [
            j.remaining_work,
            j.work_at_risk,
            j.user_gpu_s,
            j.user_energy_j,
        ]
        .iter()
        .any(|x| x.is_nan())
        {
            return Err(PolicyError::NanInJob { job });
        }
    }
    Ok(())
}
