//! Bad input to a policy is an error value, never a panic: arbitrary (also invalid) cluster views,
//! job views and parameters go to every policy through `schedule`, and each new error variant of
//! the validation has a case of its own.

use ea2p_core::jobmodel::{
    Config, GpuSpec, LimitResponse, ModelProfile, PerfParams, StatEff, StepTime, MAX_GPU_TYPES,
};
use ea2p_core::policy::validate::{validate, DecisionError};
use ea2p_core::policy::{
    check_round, schedule, ClusterView, Decision, Decisions, JobView, Param, PolicyError,
    PolicyKind, PolicyParams, Request, MAX_MODELS,
};
use proptest::prelude::*;

/// Mostly ordinary numbers, sometimes NaN, infinite, negative or zero.
fn num() -> BoxedStrategy<f64> {
    prop_oneof![
        6 => 0.0f64..2000.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => -100.0f64..0.0,
        1 => Just(0.0),
    ]
    .boxed()
}

/// Mostly small counts, sometimes anything a `u32` holds.
fn count() -> BoxedStrategy<u32> {
    prop_oneof![6 => 0u32..20, 1 => any::<u32>(), 1 => Just(u32::MAX)].boxed()
}

fn good_spec() -> GpuSpec {
    GpuSpec {
        idle_w: 55.0,
        allocated_idle_w: 99.0,
        max_w: 400.0,
        min_limit_w: 100.0,
    }
}

fn spec() -> BoxedStrategy<GpuSpec> {
    prop_oneof![
        8 => Just(good_spec()),
        1 => (num(), num(), num(), num()).prop_map(|(a, b, c, d)| GpuSpec {
            idle_w: a,
            allocated_idle_w: b,
            max_w: c,
            min_limit_w: d,
        }),
    ]
    .boxed()
}

fn good_perf() -> PerfParams {
    PerfParams {
        step: StepTime::fit(1066.0, 7397.0, 8, 256.0, 0.34, 0.8, 2.0).unwrap(),
        busy_w: 352.0,
        max_batch_per_gpu: 512,
        limit: LimitResponse::DEFAULT,
    }
}

fn perf() -> BoxedStrategy<Option<PerfParams>> {
    let wild = (
        (num(), num(), num(), num(), num()),
        num(),
        count(),
        (num(), num(), num(), num(), num()),
    )
        .prop_map(|(s, busy_w, max_batch_per_gpu, l)| PerfParams {
            step: StepTime {
                alpha_c: s.0,
                beta_c: s.1,
                alpha_n: s.2,
                beta_n: s.3,
                gamma: s.4,
            },
            busy_w,
            max_batch_per_gpu,
            limit: LimitResponse {
                capped_ratio: l.0,
                sharpness: l.1,
                speed_exponent: l.2,
                knee_slope: l.3,
                knee_fraction: l.4,
            },
        });
    prop_oneof![3 => Just(Some(good_perf())), 1 => Just(None), 1 => wild.prop_map(Some)].boxed()
}

fn model() -> BoxedStrategy<ModelProfile> {
    (
        proptest::array::uniform4(perf()),
        prop_oneof![3 => Just(256u32), 1 => count()],
        num(),
        prop_oneof![3 => Just(16u32), 1 => count()],
    )
        .prop_map(|(perf, ref_batch, noise_scale, max_gpus)| ModelProfile {
            stat: StatEff {
                ref_batch,
                noise_scale,
            },
            perf,
            max_gpus,
        })
        .boxed()
}

fn job() -> BoxedStrategy<JobView> {
    let running = (0u8..6, count(), count(), num()).prop_map(|(t, gpus, batch, limit_w)| Config {
        gpu_type: t,
        gpus,
        batch,
        limit_w,
    });
    (
        (any::<u64>(), 0u16..4, 0u32..4, 0u64..10_000_000_000_000),
        (num(), proptest::option::of(0u64..20_000_000_000_000)),
        (any::<bool>(), any::<bool>()),
        (proptest::option::of(0u8..6), count(), count()),
        proptest::option::of(running),
        (num(), num(), num()),
    )
        .prop_map(
            |(
                (id, model, user, arrival),
                (remaining_work, deadline),
                (urgent, rigid),
                (gpu_type, gpus, batch),
                running,
                (work_at_risk, user_gpu_s, user_energy_j),
            )| JobView {
                id,
                model,
                user,
                arrival,
                remaining_work,
                deadline,
                urgent,
                rigid,
                request: Request {
                    gpu_type,
                    gpus,
                    batch,
                },
                running,
                work_at_risk,
                user_gpu_s,
                user_energy_j,
            },
        )
        .boxed()
}

fn params() -> BoxedStrategy<PolicyParams> {
    prop_oneof![
        6 => Just(PolicyParams::default()),
        1 => (num(), num(), proptest::array::uniform4(num()), num()).prop_map(|(a, u, l, r)| {
            PolicyParams {
                age_factor: a,
                urgent_margin_s: u,
                limit_fractions: l,
                reconfig_cost_s: r,
            }
        }),
    ]
    .boxed()
}

/// Everything a round takes, owned.
#[derive(Debug, Clone)]
struct Round {
    now: u64,
    specs: Vec<GpuSpec>,
    total: Vec<u32>,
    free: Vec<u32>,
    cap: Option<f64>,
    models: Vec<ModelProfile>,
    jobs: Vec<JobView>,
    params: PolicyParams,
    scratch_short: usize,
    out_cap: usize,
}

fn round() -> BoxedStrategy<Round> {
    (
        0u64..20_000_000_000_000,
        proptest::collection::vec(spec(), 0..=5),
        proptest::collection::vec(count(), 0..=5),
        proptest::collection::vec(count(), 0..=5),
        proptest::option::weighted(0.5, prop_oneof![6 => 0.0f64..20000.0, 1 => num()]),
        proptest::collection::vec(model(), 0..=3),
        proptest::collection::vec(job(), 0..12),
        params(),
        prop_oneof![12 => Just(0usize), 1 => 1usize..3],
        0usize..32,
        prop_oneof![1 => Just(false), 3 => Just(true)],
    )
        .prop_map(
            |(now, specs, total, free, cap, models, jobs, params, scratch_short, out_cap, tidy)| {
                let mut r = Round {
                    now,
                    specs,
                    total,
                    free,
                    cap,
                    models,
                    jobs,
                    params,
                    scratch_short,
                    out_cap,
                };
                if tidy {
                    r.tidy();
                }
                r
            },
        )
        .boxed()
}

impl Round {
    /// Makes the lists and the jobs agree with the cluster more often than chance would (the
    /// numbers inside stay arbitrary), so that many rounds pass validation and reach a policy.
    fn tidy(&mut self) {
        let n = self.specs.len();
        self.total.resize(n, 8);
        self.free.resize(n, 8);
        for (f, t) in self.free.iter_mut().zip(&mut self.total) {
            *t %= 1 << 20;
            *f %= *t + 1;
        }
        let models = self.models.len().max(1) as u16;
        for j in &mut self.jobs {
            j.model %= models;
            if n > 0 {
                j.request.gpu_type = j.request.gpu_type.map(|t| t % n as u8);
                if let Some(c) = j.running.as_mut() {
                    c.gpu_type %= n as u8;
                    c.gpus %= self.total[c.gpu_type as usize] + 1;
                }
            }
            for x in [
                &mut j.remaining_work,
                &mut j.work_at_risk,
                &mut j.user_gpu_s,
                &mut j.user_energy_j,
            ] {
                if x.is_nan() {
                    *x = 0.0;
                }
            }
        }
    }

    fn view(&self) -> ClusterView<'_> {
        ClusterView {
            now: self.now,
            gpu_specs: &self.specs,
            total: &self.total,
            free: &self.free,
            power_cap_w: self.cap,
            models: &self.models,
            limit_effects: None,
        }
    }

    fn run(&self, kind: PolicyKind) -> (Result<(), PolicyError>, Vec<Decision>) {
        let mut scratch = vec![0u32; self.jobs.len().saturating_sub(self.scratch_short)];
        let mut buf = vec![Decision::Preempt { job: 0 }; self.out_cap];
        let mut out = Decisions::new(&mut buf);
        let r = schedule(
            kind,
            &self.params,
            &self.view(),
            &self.jobs,
            &mut scratch,
            &mut out,
        );
        let made = out.as_slice().to_vec();
        (r, made)
    }
}

/// A round the validation accepts: two GPU types, one good model, pending and running jobs.
fn valid() -> Round {
    let running = |id, gpus| JobView {
        running: Some(Config {
            gpu_type: 0,
            gpus,
            batch: 256,
            limit_w: 400.0,
        }),
        ..pending(id)
    };
    Round {
        now: 1_000_000_000_000,
        specs: vec![good_spec(), good_spec()],
        total: vec![8, 8],
        free: vec![4, 8],
        cap: Some(5000.0),
        models: vec![ModelProfile {
            stat: StatEff {
                ref_batch: 256,
                noise_scale: 4096.0,
            },
            perf: [Some(good_perf()), Some(good_perf()), None, None],
            max_gpus: 16,
        }],
        jobs: vec![pending(1), running(2, 4)],
        params: PolicyParams::default(),
        scratch_short: 0,
        out_cap: 16,
    }
}

fn pending(id: u64) -> JobView {
    JobView {
        id,
        model: 0,
        user: 0,
        arrival: 0,
        remaining_work: 1e6,
        deadline: None,
        urgent: false,
        rigid: false,
        request: Request {
            gpu_type: None,
            gpus: 1,
            batch: 256,
        },
        running: None,
        work_at_risk: 0.0,
        user_gpu_s: 0.0,
        user_energy_j: 0.0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Every policy returns Ok or Err on any input; on Ok the decisions fit the buffer, and the
    /// decision checker (also a public entry point) does not panic on them either.
    #[test]
    fn no_policy_panics_on_any_round(r in round()) {
        let checked = check_round(
            &r.params,
            &r.view(),
            &r.jobs,
            &vec![0u32; r.jobs.len().saturating_sub(r.scratch_short)],
        );
        for kind in PolicyKind::ALL {
            let (res, made) = r.run(kind);
            // schedule runs exactly check_round first.
            prop_assert_eq!(res.map_err(|e| e.to_string()), checked.map_err(|e| e.to_string()), "{}", kind.name());
            prop_assert!(made.len() <= r.out_cap);
            if res.is_err() {
                prop_assert!(made.is_empty(), "{}: decisions written on an error", kind.name());
            }
            let mut scratch = vec![0u32; r.jobs.len()];
            let _ = validate(&r.view(), &r.jobs, &made, &mut scratch);
        }
        // POLICY_ROBUST_STATS=1 with --nocapture: how many rounds pass validation, by error.
        if std::env::var_os("POLICY_ROBUST_STATS").is_some() {
            eprintln!("STAT {}", match checked { Ok(()) => "ok".to_string(), Err(e) => format!("{e:?}").split([' ', '{']).next().unwrap().to_string() });
        }
    }

    /// Random mostly-valid rounds: the validation accepts the valid base round with arbitrary
    /// counts of free GPUs on it, and the decisions a policy makes on it pass the checker.
    #[test]
    fn decisions_on_valid_rounds_pass_the_checker(free in (0u32..=8, 0u32..=8), work in 0.0f64..1e9) {
        let mut r = valid();
        r.free = vec![free.0.min(4), free.1];
        r.jobs[0].remaining_work = work;
        for kind in PolicyKind::ALL {
            let (res, made) = r.run(kind);
            prop_assert!(res.is_ok(), "{}: {:?}", kind.name(), res);
            let mut scratch = vec![0u32; r.jobs.len()];
            prop_assert!(validate(&r.view(), &r.jobs, &made, &mut scratch).is_ok(), "{}", kind.name());
        }
    }
}

/// The error every policy gives for a round, checked to be the same for all eight.
fn error_of(r: &Round) -> Option<PolicyError> {
    let first = r.run(PolicyKind::Fifo).0.err();
    for kind in PolicyKind::ALL {
        assert_eq!(r.run(kind).0.err(), first, "{}", kind.name());
    }
    first
}

#[test]
fn the_valid_base_round_is_accepted() {
    assert_eq!(error_of(&valid()), None);
}

#[test]
fn a_short_scratch_is_an_error() {
    let r = Round {
        scratch_short: 1,
        ..valid()
    };
    assert_eq!(
        error_of(&r),
        Some(PolicyError::ScratchTooSmall { needed: 2 })
    );
}

#[test]
fn too_many_models_is_an_error() {
    let mut r = valid();
    r.models = vec![r.models[0]; MAX_MODELS + 1];
    assert_eq!(
        error_of(&r),
        Some(PolicyError::TooManyModels {
            models: MAX_MODELS + 1
        })
    );
}

#[test]
fn too_many_gpu_types_is_an_error() {
    let mut r = valid();
    r.specs = vec![good_spec(); MAX_GPU_TYPES + 1];
    r.total = vec![8; MAX_GPU_TYPES + 1];
    r.free = vec![8; MAX_GPU_TYPES + 1];
    assert_eq!(
        error_of(&r),
        Some(PolicyError::TooManyGpuTypes {
            types: MAX_GPU_TYPES + 1
        })
    );
}

#[test]
fn short_count_lists_are_errors() {
    let mut r = valid();
    r.free = vec![4];
    assert_eq!(
        error_of(&r),
        Some(PolicyError::FreeListShort { types: 2, free: 1 })
    );
    let mut r = valid();
    r.total = vec![8];
    assert_eq!(
        error_of(&r),
        Some(PolicyError::TotalListShort { types: 2, total: 1 })
    );
}

#[test]
fn more_free_than_total_is_an_error() {
    let mut r = valid();
    r.free[1] = 9;
    assert_eq!(
        error_of(&r),
        Some(PolicyError::MoreFreeThanTotal {
            gpu_type: 1,
            free: 9,
            total: 8
        })
    );
}

#[test]
fn more_gpus_than_a_u32_counts_is_an_error() {
    let mut r = valid();
    r.total = vec![u32::MAX, 1];
    r.free = vec![4, 1];
    assert_eq!(error_of(&r), Some(PolicyError::TooManyGpus));
}

#[test]
fn bad_gpu_figures_are_errors() {
    for bad in [
        GpuSpec {
            min_limit_w: 500.0,
            ..good_spec()
        },
        GpuSpec {
            max_w: f64::NAN,
            ..good_spec()
        },
        GpuSpec {
            idle_w: -1.0,
            ..good_spec()
        },
        GpuSpec {
            allocated_idle_w: f64::INFINITY,
            ..good_spec()
        },
    ] {
        let mut r = valid();
        r.specs[1] = bad;
        assert_eq!(
            error_of(&r),
            Some(PolicyError::BadGpuSpec { gpu_type: 1 }),
            "{bad:?}"
        );
    }
}

#[test]
fn a_nan_or_negative_cap_is_an_error() {
    for cap in [f64::NAN, -1.0] {
        let r = Round {
            cap: Some(cap),
            ..valid()
        };
        assert_eq!(error_of(&r), Some(PolicyError::BadPowerCap), "{cap}");
    }
}

#[test]
fn bad_parameters_are_errors_naming_the_parameter() {
    let d = PolicyParams::default();
    let cases = [
        (
            PolicyParams {
                age_factor: f64::NAN,
                ..d
            },
            Param::AgeFactor,
        ),
        (
            PolicyParams {
                urgent_margin_s: -1.0,
                ..d
            },
            Param::UrgentMargin,
        ),
        (
            PolicyParams {
                limit_fractions: [1.0, 0.9, 0.0, 0.7],
                ..d
            },
            Param::LimitFractions,
        ),
        (
            PolicyParams {
                reconfig_cost_s: f64::INFINITY,
                ..d
            },
            Param::ReconfigCost,
        ),
    ];
    for (params, param) in cases {
        let r = Round { params, ..valid() };
        let e = error_of(&r);
        assert_eq!(e, Some(PolicyError::BadParam { param }));
        assert!(e.unwrap().to_string().contains(param.name()));
    }
}

#[test]
fn jobs_naming_what_the_cluster_lacks_are_errors() {
    let mut r = valid();
    r.jobs[0].model = 1;
    assert_eq!(error_of(&r), Some(PolicyError::UnknownModel { job: 1 }));

    let mut r = valid();
    r.jobs[0].request.gpu_type = Some(2);
    assert_eq!(
        error_of(&r),
        Some(PolicyError::UnknownRequestedGpuType {
            job: 1,
            gpu_type: 2
        })
    );

    let mut r = valid();
    r.jobs[1].running.as_mut().unwrap().gpu_type = 2;
    assert_eq!(
        error_of(&r),
        Some(PolicyError::UnknownRunningGpuType {
            job: 2,
            gpu_type: 2
        })
    );

    let mut r = valid();
    r.jobs[1].running.as_mut().unwrap().gpus = 9;
    assert_eq!(
        error_of(&r),
        Some(PolicyError::MoreGpusThanExist {
            job: 2,
            gpu_type: 0,
            gpus: 9,
            total: 8
        })
    );
}

#[test]
fn a_nan_in_a_job_is_an_error() {
    for field in 0..4 {
        let mut r = valid();
        let j = &mut r.jobs[1];
        *[
            &mut j.remaining_work,
            &mut j.work_at_risk,
            &mut j.user_gpu_s,
            &mut j.user_energy_j,
        ]
        .into_iter()
        .nth(field)
        .unwrap() = f64::NAN;
        assert_eq!(
            error_of(&r),
            Some(PolicyError::NanInJob { job: 2 }),
            "{field}"
        );
    }
}

#[test]
fn the_decision_checker_refuses_bad_views_instead_of_panicking() {
    let mut r = valid();
    r.jobs[1].running.as_mut().unwrap().gpu_type = 7;
    let mut scratch = [0u32; 2];
    assert_eq!(
        validate(&r.view(), &r.jobs, &[], &mut scratch),
        Err((
            0,
            DecisionError::BadViews {
                reason: PolicyError::UnknownRunningGpuType {
                    job: 2,
                    gpu_type: 7
                }
            }
        ))
    );
    let r = valid();
    assert_eq!(
        validate(&r.view(), &r.jobs, &[], &mut scratch[..1]),
        Err((
            0,
            DecisionError::BadViews {
                reason: PolicyError::ScratchTooSmall { needed: 2 }
            }
        ))
    );
}

#[test]
fn every_error_reads_as_a_sentence() {
    let errors = [
        PolicyError::ScratchTooSmall { needed: 3 },
        PolicyError::TooManyModels { models: 40 },
        PolicyError::TooManyGpuTypes { types: 5 },
        PolicyError::FreeListShort { types: 2, free: 1 },
        PolicyError::TotalListShort { types: 2, total: 1 },
        PolicyError::MoreFreeThanTotal {
            gpu_type: 0,
            free: 9,
            total: 8,
        },
        PolicyError::TooManyGpus,
        PolicyError::BadGpuSpec { gpu_type: 1 },
        PolicyError::BadPowerCap,
        PolicyError::BadParam {
            param: Param::AgeFactor,
        },
        PolicyError::UnknownModel { job: 7 },
        PolicyError::UnknownRequestedGpuType {
            job: 7,
            gpu_type: 3,
        },
        PolicyError::UnknownRunningGpuType {
            job: 7,
            gpu_type: 3,
        },
        PolicyError::MoreGpusThanExist {
            job: 7,
            gpu_type: 0,
            gpus: 9,
            total: 8,
        },
        PolicyError::NanInJob { job: 7 },
    ];
    for e in errors {
        let m = e.to_string();
        let debug = format!("{e:?}");
        let name = debug.split([' ', '{']).next().unwrap();
        assert!(
            m.contains(' ') && !m.contains('{') && !m.contains(name),
            "{m}"
        );
        let _: &dyn core::error::Error = &e;
    }
}
