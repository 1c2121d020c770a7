//! Checks a round's decisions against the views they were made from, before a caller applies
//! them: what a policy written outside the core (in Python, say) must be held to. The built-in
//! policies satisfy these checks by construction.
//!
//! Decisions are taken in order, as a caller applies them: a `Preempt` frees the job's GPUs for
//! the decisions after it, a `Start` or a `Resize` takes GPUs, and a job's state (pending or
//! running, and its configuration) is the one the earlier decisions left it in.

use core::fmt;

use super::{check_cluster, check_jobs, ClusterView, Decision, JobView, PolicyError};
use crate::jobmodel::{evaluate, Config, ConfigError, MAX_GPU_TYPES};

/// Why one decision cannot be applied. `job` is the job's id ([`JobView::id`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DecisionError {
    /// The round's views themselves are invalid (see [`super::check_round`]), or the scratch is
    /// short: no decision was checked, and the position given is 0.
    BadViews {
        /// What is wrong with them.
        reason: PolicyError,
    },
    /// The decision's index is not one of the round's jobs.
    NoSuchJob {
        /// The index given.
        index: u32,
        /// Jobs in the round.
        jobs: usize,
    },
    /// A start of a job that is running.
    NotPending {
        /// Job id.
        job: u64,
    },
    /// A resize or a preemption of a job that is pending.
    NotRunning {
        /// Job id.
        job: u64,
    },
    /// The configuration does not run: unknown GPU type, GPU count or batch out of range.
    BadConfig {
        /// Job id.
        job: u64,
        /// The configuration.
        cfg: Config,
        /// What [`evaluate`] said.
        reason: ConfigError,
    },
    /// The power limit is not a number of watts in the GPU type's range.
    BadLimit {
        /// Job id.
        job: u64,
        /// The limit given.
        limit_w: f64,
        /// Lowest limit of the type.
        min_w: f64,
        /// Highest limit of the type.
        max_w: f64,
    },
    /// A rigid job moved off the type, count or batch it asked for.
    RigidMoved {
        /// Job id.
        job: u64,
        /// The configuration.
        cfg: Config,
    },
    /// More GPUs of the type than are free at that point of the round.
    NotEnoughGpus {
        /// Job id.
        job: u64,
        /// GPU type.
        gpu_type: u8,
        /// GPUs the configuration needs beyond what the job holds of that type.
        wanted: u32,
        /// GPUs of the type free after the earlier decisions.
        free: u32,
    },
}

impl fmt::Display for DecisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecisionError::BadViews { reason } => {
                write!(f, "the round's views are invalid: {reason}")
            }
            DecisionError::NoSuchJob { index, jobs } => {
                write!(f, "job index {index} is not one of the round's {jobs} jobs")
            }
            DecisionError::NotPending { job } => write!(f, "job {job}: start of a running job"),
            DecisionError::NotRunning { job } => {
                write!(f, "job {job}: resize or preemption of a job that is not running")
            }
            DecisionError::BadConfig { job, cfg, reason } => {
                let why = match reason {
                    ConfigError::UnknownGpuType => "the model has no figures for this GPU type",
                    ConfigError::BadGpuCount => {
                        "GPU count is 0 or more than the model may use (max_gpus)"
                    }
                    ConfigError::BadBatch => {
                        "batch is below the GPU count or more per GPU than fits in memory"
                    }
                };
                write!(
                    f,
                    "job {job}: configuration (type {}, {} GPUs, batch {}) does not run: {why}",
                    cfg.gpu_type, cfg.gpus, cfg.batch
                )
            }
            DecisionError::BadLimit {
                job,
                limit_w,
                min_w,
                max_w,
            } => write!(
                f,
                "job {job}: power limit {limit_w} W is outside the GPU type's [{min_w}, {max_w}] W"
            ),
            DecisionError::RigidMoved { job, cfg } => write!(
                f,
                "job {job} is rigid: it must keep its requested type, count and batch, not (type {}, {} GPUs, batch {})",
                cfg.gpu_type, cfg.gpus, cfg.batch
            ),
            DecisionError::NotEnoughGpus {
                job,
                gpu_type,
                wanted,
                free,
            } => write!(
                f,
                "job {job}: needs {wanted} more GPUs of type {gpu_type}, {free} free at that point of the round"
            ),
        }
    }
}

impl core::error::Error for DecisionError {}

/// Checks `decisions` (indices into `jobs`) in order; the first bad one comes back with its
/// position. `scratch` (at least `jobs.len()` long, any contents) records, per job, the last
/// decision that touched it, so a round costs O(jobs + decisions). The views are checked first
/// ([`check_cluster`], [`check_jobs`]): invalid ones give [`DecisionError::BadViews`].
pub fn validate(
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    decisions: &[Decision],
    scratch: &mut [u32],
) -> Result<(), (usize, DecisionError)> {
    let bad = |reason| (0, DecisionError::BadViews { reason });
    check_cluster(cluster).map_err(bad)?;
    check_jobs(cluster, jobs).map_err(bad)?;
    let needed = jobs.len();
    let scratch = scratch
        .get_mut(..needed)
        .ok_or(bad(PolicyError::ScratchTooSmall { needed }))?;
    scratch.fill(u32::MAX);
    let mut free = [0u32; MAX_GPU_TYPES];
    for (slot, &n) in free.iter_mut().zip(cluster.free) {
        *slot = n;
    }
    for (k, d) in decisions.iter().enumerate() {
        let (Decision::Start { job, .. }
        | Decision::Resize { job, .. }
        | Decision::Preempt { job }) = *d;
        let idx = job as usize;
        let Some(view) = jobs.get(idx) else {
            return Err((
                k,
                DecisionError::NoSuchJob {
                    index: job,
                    jobs: jobs.len(),
                },
            ));
        };
        // The job's configuration now: from its last decision this round, else from its view.
        let current = match scratch[idx] {
            u32::MAX => view.running,
            last => match decisions[last as usize] {
                Decision::Start { cfg, .. } | Decision::Resize { cfg, .. } => Some(cfg),
                Decision::Preempt { .. } => None,
            },
        };
        let id = view.id;
        match *d {
            Decision::Start { cfg, .. } => {
                if current.is_some() {
                    return Err((k, DecisionError::NotPending { job: id }));
                }
                check_cfg(cluster, view, &cfg).map_err(|e| (k, e))?;
                take(&mut free, id, &cfg, 0).map_err(|e| (k, e))?;
            }
            Decision::Resize { cfg, .. } => {
                let Some(cur) = current else {
                    return Err((k, DecisionError::NotRunning { job: id }));
                };
                check_cfg(cluster, view, &cfg).map_err(|e| (k, e))?;
                let own = if cur.gpu_type == cfg.gpu_type {
                    cur.gpus
                } else {
                    0
                };
                take(&mut free, id, &cfg, own).map_err(|e| (k, e))?;
                let ty = cur.gpu_type as usize;
                free[ty] = free[ty].saturating_add(cur.gpus - own);
            }
            Decision::Preempt { .. } => {
                let Some(cur) = current else {
                    return Err((k, DecisionError::NotRunning { job: id }));
                };
                let ty = cur.gpu_type as usize;
                free[ty] = free[ty].saturating_add(cur.gpus);
            }
        }
        scratch[idx] = k as u32;
    }
    Ok(())
}

/// Takes the GPUs `cfg` needs beyond the `own` the job holds of its type.
fn take(
    free: &mut [u32; MAX_GPU_TYPES],
    job: u64,
    cfg: &Config,
    own: u32,
) -> Result<(), DecisionError> {
    let ty = cfg.gpu_type as usize;
    let wanted = cfg.gpus.saturating_sub(own);
    if free[ty] < wanted {
        return Err(DecisionError::NotEnoughGpus {
            job,
            gpu_type: cfg.gpu_type,
            wanted,
            free: free[ty],
        });
    }
    free[ty] -= wanted;
    free[ty] = free[ty].saturating_add(own.saturating_sub(cfg.gpus));
    Ok(())
}

fn check_cfg(cluster: &ClusterView<'_>, view: &JobView, cfg: &Config) -> Result<(), DecisionError> {
    let job = view.id;
    let model = cluster
        .models
        .get(view.model as usize)
        .ok_or(DecisionError::BadConfig {
            job,
            cfg: *cfg,
            reason: ConfigError::UnknownGpuType,
        })?;
    evaluate(model, cluster.gpu_specs, cfg).map_err(|reason| DecisionError::BadConfig {
        job,
        cfg: *cfg,
        reason,
    })?;
    // evaluate found the type, so the index is in range.
    let spec = &cluster.gpu_specs[cfg.gpu_type as usize];
    if !(cfg.limit_w >= spec.min_limit_w && cfg.limit_w <= spec.max_w) {
        return Err(DecisionError::BadLimit {
            job,
            limit_w: cfg.limit_w,
            min_w: spec.min_limit_w,
            max_w: spec.max_w,
        });
    }
    let r = view.request;
    if view.rigid
        && (r.gpus != cfg.gpus
            || r.batch != cfg.batch
            || r.gpu_type.is_some_and(|t| t != cfg.gpu_type))
    {
        return Err(DecisionError::RigidMoved { job, cfg: *cfg });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobmodel::{GpuSpec, ModelProfile, PerfParams, StatEff, StepTime};
    use crate::policy::Request;

    fn fixture() -> ([GpuSpec; 1], [ModelProfile; 1]) {
        let mut perf = [None; MAX_GPU_TYPES];
        perf[0] = Some(PerfParams {
            step: StepTime::fit(1066.0, 7397.0, 8, 256.0, 0.34, 0.8, 2.0).unwrap(),
            busy_w: 352.0,
            max_batch_per_gpu: 512,
            limit: crate::jobmodel::LimitResponse::DEFAULT,
        });
        let spec = GpuSpec {
            idle_w: 55.0,
            allocated_idle_w: 99.0,
            max_w: 400.0,
            min_limit_w: 100.0,
        };
        let model = ModelProfile {
            stat: StatEff {
                ref_batch: 256,
                noise_scale: 4096.0,
            },
            perf,
            max_gpus: 8,
        };
        ([spec], [model])
    }

    fn job(id: u64, running: Option<Config>, rigid: bool) -> JobView {
        JobView {
            id,
            model: 0,
            user: 0,
            arrival: 0,
            remaining_work: 1e6,
            deadline: None,
            urgent: false,
            rigid,
            request: Request {
                gpu_type: Some(0),
                gpus: 2,
                batch: 256,
            },
            running,
            work_at_risk: 0.0,
            user_gpu_s: 0.0,
            user_energy_j: 0.0,
        }
    }

    fn cfg(gpus: u32, batch: u32, limit_w: f64) -> Config {
        Config {
            gpu_type: 0,
            gpus,
            batch,
            limit_w,
        }
    }

    #[test]
    fn each_bad_decision_is_named_with_its_job_and_position() {
        let (specs, models) = fixture();
        let (total, free) = ([8u32], [3u32]);
        let view = ClusterView {
            now: 0,
            gpu_specs: &specs,
            total: &total,
            free: &free,
            power_cap_w: None,
            models: &models,
            limit_effects: None,
        };
        // Job 10 pending, job 11 running on 4 GPUs, job 12 pending and rigid.
        let jobs = [
            job(10, None, false),
            job(11, Some(cfg(4, 256, 400.0)), false),
            job(12, None, true),
        ];
        let mut scratch = [0u32; 3];
        let mut check = |d: &[Decision]| validate(&view, &jobs, d, &mut scratch);
        let start = |job, c| Decision::Start { job, cfg: c };
        let resize = |job, c| Decision::Resize { job, cfg: c };
        let preempt = |job| Decision::Preempt { job };

        // Good: preempting 11 frees its 4 GPUs, so 10 can take 7.
        assert_eq!(check(&[preempt(1), start(0, cfg(7, 256, 300.0))]), Ok(()));
        // Growing 11 from 4 to 7 needs 3 more: exactly the free ones.
        assert_eq!(check(&[resize(1, cfg(7, 448, 400.0))]), Ok(()));
        // Shrinking frees GPUs for a later start.
        assert_eq!(
            check(&[resize(1, cfg(1, 256, 400.0)), start(0, cfg(6, 256, 400.0))]),
            Ok(())
        );

        let e = check(&[start(0, cfg(4, 256, 400.0))]).unwrap_err();
        assert_eq!(e.0, 0);
        assert!(matches!(
            e.1,
            DecisionError::NotEnoughGpus {
                job: 10,
                wanted: 4,
                free: 3,
                ..
            }
        ));
        assert_eq!(
            check(&[start(0, cfg(1, 256, 400.0)), start(0, cfg(1, 256, 400.0))]),
            Err((1, DecisionError::NotPending { job: 10 }))
        );
        assert_eq!(
            check(&[preempt(0)]),
            Err((0, DecisionError::NotRunning { job: 10 }))
        );
        assert_eq!(
            check(&[preempt(1), preempt(1)]),
            Err((1, DecisionError::NotRunning { job: 11 }))
        );
        assert_eq!(
            check(&[preempt(7)]),
            Err((0, DecisionError::NoSuchJob { index: 7, jobs: 3 }))
        );
        assert!(matches!(
            check(&[start(0, cfg(0, 256, 400.0))]),
            Err((
                0,
                DecisionError::BadConfig {
                    job: 10,
                    reason: ConfigError::BadGpuCount,
                    ..
                }
            ))
        ));
        assert!(matches!(
            check(&[start(
                0,
                Config {
                    gpu_type: 1,
                    ..cfg(1, 256, 400.0)
                }
            )]),
            Err((
                0,
                DecisionError::BadConfig {
                    job: 10,
                    reason: ConfigError::UnknownGpuType,
                    ..
                }
            ))
        ));
        for bad in [f64::NAN, 50.0, 401.0, f64::INFINITY] {
            assert!(matches!(
                check(&[start(0, cfg(1, 256, bad))]),
                Err((0, DecisionError::BadLimit { job: 10, .. }))
            ));
        }
        assert!(matches!(
            check(&[start(2, cfg(1, 256, 400.0))]),
            Err((0, DecisionError::RigidMoved { job: 12, .. }))
        ));
        assert_eq!(check(&[start(2, cfg(2, 256, 400.0))]), Ok(()));
        let mut msg = heapless::String::<128>::new();
        use core::fmt::Write as _;
        write!(
            msg,
            "{}",
            DecisionError::NotEnoughGpus {
                job: 10,
                gpu_type: 0,
                wanted: 4,
                free: 3
            }
        )
        .unwrap();
        assert_eq!(
            msg.as_str(),
            "job 10: needs 4 more GPUs of type 0, 3 free at that point of the round"
        );
    }
}
