//! A ninth policy, written outside the core the way core's README ("How to add a policy") says:
//! a round function of the [`ScheduleFn`] signature, a [`PolicyDescriptor`], and the
//! descriptor's `schedule`, which validates the round before the policy sees it. Nothing in the
//! core, the simulator or the C API changes.

use ea2p_core::jobmodel::{
    evaluate, Config, GpuSpec, LimitResponse, ModelProfile, PerfParams, StatEff, StepTime,
    MAX_GPU_TYPES,
};
use ea2p_core::policy::validate::validate;
use ea2p_core::policy::{
    ClusterView, Decision, Decisions, JobView, PolicyDescriptor, PolicyError, PolicyParams, Reads,
    Request, ScheduleFn, POLICIES,
};

/// LIFO: the newest pending job first, in the count and batch it asked for, on the first GPU
/// type with room where its model runs. Skips jobs that do not fit.
fn lifo_round(
    _params: &PolicyParams,
    cluster: &ClusterView<'_>,
    jobs: &[JobView],
    scratch: &mut [u32],
    out: &mut Decisions<'_>,
) {
    // The input passed the core's validation: models, types and counts are in range.
    let mut free = [0u32; MAX_GPU_TYPES];
    free[..cluster.gpu_specs.len()].copy_from_slice(&cluster.free[..cluster.gpu_specs.len()]);
    let mut p = 0;
    for (i, j) in jobs.iter().enumerate() {
        if j.running.is_none() {
            scratch[p] = i as u32;
            p += 1;
        }
    }
    let order = &mut scratch[..p];
    order.sort_unstable_by(|&a, &b| {
        let (ja, jb) = (&jobs[a as usize], &jobs[b as usize]);
        jb.arrival.cmp(&ja.arrival).then(ja.id.cmp(&jb.id))
    });
    for &i in order.iter() {
        let job = &jobs[i as usize];
        let model = &cluster.models[job.model as usize];
        let fits = (0..cluster.gpu_specs.len()).find_map(|ty| {
            let cfg = Config {
                gpu_type: ty as u8,
                gpus: job.request.gpus,
                batch: job.request.batch,
                limit_w: cluster.gpu_specs[ty].max_w,
            };
            let wanted = job.request.gpu_type.is_none_or(|t| t as usize == ty);
            (wanted && free[ty] >= cfg.gpus && evaluate(model, cluster.gpu_specs, &cfg).is_ok())
                .then_some(cfg)
        });
        if let Some(cfg) = fits {
            if out.push(Decision::Start { job: i, cfg }).is_err() {
                return;
            }
            free[cfg.gpu_type as usize] -= cfg.gpus;
        }
    }
}

/// The ninth policy's descriptor: everything a caller needs to know about it.
const LIFO: PolicyDescriptor = PolicyDescriptor::new(
    "lifo",
    "Last come, first served, skipping jobs that do not fit.",
    Reads::BASIC,
    false,
    &[],
    lifo_round as ScheduleFn,
);

fn spec() -> GpuSpec {
    GpuSpec {
        idle_w: 55.0,
        allocated_idle_w: 99.0,
        max_w: 400.0,
        min_limit_w: 100.0,
    }
}

fn model() -> ModelProfile {
    let mut perf = [None; MAX_GPU_TYPES];
    perf[0] = Some(PerfParams {
        step: StepTime::fit(1066.0, 7397.0, 8, 256.0, 0.34, 0.8, 2.0).unwrap(),
        busy_w: 352.0,
        max_batch_per_gpu: 512,
        limit: LimitResponse::DEFAULT,
    });
    ModelProfile {
        stat: StatEff {
            ref_batch: 256,
            noise_scale: 4096.0,
        },
        perf,
        max_gpus: 16,
    }
}

fn job(id: u64, arrival_s: u64, gpus: u32) -> JobView {
    JobView {
        id,
        model: 0,
        user: 0,
        arrival: arrival_s * 1_000_000_000,
        remaining_work: 1e6,
        deadline: None,
        urgent: false,
        rigid: true,
        request: Request {
            gpu_type: None,
            gpus,
            batch: 256 * gpus,
        },
        running: None,
        work_at_risk: 0.0,
        user_gpu_s: 0.0,
        user_energy_j: 0.0,
    }
}

#[test]
fn a_ninth_policy_runs_through_the_public_validation_and_its_decisions_check() {
    let (specs, models, total, free) = ([spec()], [model()], [8u32], [4u32]);
    let view = ClusterView {
        now: 100_000_000_000,
        gpu_specs: &specs,
        total: &total,
        free: &free,
        power_cap_w: None,
        models: &models,
        limit_effects: None,
    };
    // Oldest to newest: 0 wants 2 GPUs, 1 wants 4, 2 wants 2.
    let jobs = [job(10, 0, 2), job(11, 10, 4), job(12, 20, 2)];
    let mut scratch = [0u32; 3];
    let mut buf = [Decision::Preempt { job: 0 }; 8];
    let mut out = Decisions::new(&mut buf);
    LIFO.schedule(
        &PolicyParams::default(),
        &view,
        &jobs,
        &mut scratch,
        &mut out,
    )
    .unwrap();
    // Newest first: job 12 takes 2 of the 4 GPUs, job 11 (4) does not fit, job 10 takes 2.
    let started: Vec<u32> = out
        .as_slice()
        .iter()
        .map(|d| match d {
            Decision::Start { job, .. } => *job,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(started, [2, 0]);
    // The decisions keep the core's rules, like any outside policy must.
    let mut check = [0u32; 3];
    assert_eq!(validate(&view, &jobs, out.as_slice(), &mut check), Ok(()));
}

#[test]
fn the_ninth_policy_gets_the_same_validation_as_the_eight() {
    let (specs, models, total, free) = ([spec()], [model()], [8u32], [4u32]);
    let view = ClusterView {
        now: 0,
        gpu_specs: &specs,
        total: &total,
        free: &free,
        power_cap_w: None,
        models: &models,
        limit_effects: None,
    };
    // A running job on a GPU type the cluster lacks: lifo_round would index out of bounds.
    let bad = JobView {
        running: Some(Config {
            gpu_type: 3,
            gpus: 1,
            batch: 256,
            limit_w: 400.0,
        }),
        ..job(7, 0, 1)
    };
    let mut scratch = [0u32; 1];
    let mut buf = [Decision::Preempt { job: 0 }; 8];
    let mut out = Decisions::new(&mut buf);
    let e = LIFO
        .schedule(
            &PolicyParams::default(),
            &view,
            &[bad],
            &mut scratch,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        e,
        PolicyError::UnknownRunningGpuType {
            job: 7,
            gpu_type: 3
        }
    );
    for p in POLICIES {
        let mut out = Decisions::new(&mut buf);
        assert_eq!(
            p.schedule(
                &PolicyParams::default(),
                &view,
                &[bad],
                &mut scratch,
                &mut out
            ),
            Err(e),
            "{}",
            p.name
        );
    }
    // Its name does not clash with the eight.
    assert!(POLICIES.iter().all(|p| p.name != LIFO.name));
}
