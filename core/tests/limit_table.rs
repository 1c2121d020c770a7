//! The precomputed power-limit effects ([`LimitTable`], issue 15) give exactly the numbers of the
//! direct computation: the table's entries, evaluations through it, and every policy's decisions
//! with and without it in the view.

use ea2p_core::jobmodel::{
    evaluate, limit_effect, limit_for_fraction, Config, GpuSpec, LimitEffect, LimitResponse,
    LimitTable, ModelProfile, Perf, PerfParams, StatEff, StepTime, MAX_GPU_TYPES,
};
use ea2p_core::policy::{
    schedule, ClusterView, Decision, Decisions, JobView, PolicyKind, PolicyParams, Request,
};
use proptest::prelude::*;

fn bits_effect(e: &LimitEffect) -> [u64; 3] {
    [
        e.limit_w.to_bits(),
        e.slowdown.to_bits(),
        e.busy_w.to_bits(),
    ]
}

fn bits_perf(p: &Perf) -> [u64; 5] {
    [
        p.throughput.to_bits(),
        p.efficiency.to_bits(),
        p.goodput.to_bits(),
        p.power_per_gpu_w.to_bits(),
        p.compute_fraction.to_bits(),
    ]
}

/// Decisions with every float as its bits (so `-0.0` and `0.0`, or one ulp, differ).
fn bits_decisions(d: &[Decision]) -> Vec<(u8, u32, [u64; 4])> {
    let c = |cfg: &Config| {
        [
            cfg.gpu_type as u64,
            cfg.gpus as u64,
            cfg.batch as u64,
            cfg.limit_w.to_bits(),
        ]
    };
    d.iter()
        .map(|d| match d {
            Decision::Start { job, cfg } => (0, *job, c(cfg)),
            Decision::Resize { job, cfg } => (1, *job, c(cfg)),
            Decision::Preempt { job } => (2, *job, [0; 4]),
        })
        .collect()
}

fn specs() -> [GpuSpec; 2] {
    [
        GpuSpec {
            idle_w: 55.0,
            allocated_idle_w: 66.0,
            max_w: 400.0,
            min_limit_w: 100.0,
        },
        GpuSpec {
            idle_w: 79.0,
            allocated_idle_w: 110.0,
            max_w: 700.0,
            min_limit_w: 200.0,
        },
    ]
}

const RESPONSES: [LimitResponse; 5] = [
    LimitResponse::DEFAULT,
    LimitResponse::RESNET50,
    LimitResponse::BERT_BASE,
    LimitResponse::FIT_V100,
    LimitResponse::FIT_A40,
];

/// A model with busy power `busy` (fraction of each type's maximum) and a response.
fn model(busy: f64, response: LimitResponse, h100: bool) -> ModelProfile {
    let a = StepTime::fit(1066.0, 7397.0, 8, 256.0, 0.34, 0.8, 2.0).unwrap();
    let h = StepTime::fit(1825.0, 14423.0, 8, 256.0, 0.34, 0.8, 2.0).unwrap();
    let mut perf = [None; MAX_GPU_TYPES];
    perf[0] = Some(PerfParams {
        step: a,
        busy_w: busy * 400.0,
        max_batch_per_gpu: 512,
        limit: response,
    });
    if h100 {
        perf[1] = Some(PerfParams {
            step: h,
            busy_w: busy * 700.0,
            max_batch_per_gpu: 512,
            limit: response,
        });
    }
    ModelProfile {
        stat: StatEff {
            ref_batch: 256,
            noise_scale: 4096.0,
        },
        perf,
        max_gpus: 16,
    }
}

fn models_strategy() -> impl Strategy<Value = Vec<ModelProfile>> {
    prop::collection::vec(
        (0.5f64..1.0, 0usize..RESPONSES.len(), any::<bool>())
            .prop_map(|(b, r, h)| model(b, RESPONSES[r], h)),
        1..4,
    )
}

proptest! {
    /// Every entry is what `limit_effect` computes, bit for bit, and evaluating any configuration
    /// through the table gives the bits of `evaluate`.
    #[test]
    fn table_entries_and_evaluations_are_the_direct_figures(
        models in models_strategy(),
        fractions in proptest::array::uniform4(0.3f64..1.2),
        gpus in 1u32..=16,
        mult in 1u32..=8,
        extra_limit_w in 50.0f64..800.0,
    ) {
        let specs = specs();
        let table = LimitTable::new(&models, &specs, &fractions);
        for (m, model) in models.iter().enumerate() {
            for (ty, spec) in specs.iter().enumerate() {
                let Some(perf) = model.perf[ty] else {
                    prop_assert!(table.get(m, model, &specs, ty as u8, spec.max_w).is_none());
                    continue;
                };
                let mut limits: Vec<f64> =
                    fractions.iter().map(|&f| limit_for_fraction(&perf, spec, f)).collect();
                for &limit_w in &limits {
                    let direct = limit_effect(model, &specs, ty as u8, limit_w).unwrap();
                    let stored = table.get(m, model, &specs, ty as u8, limit_w);
                    prop_assert!(stored.is_some(), "no entry for {limit_w} W");
                    prop_assert_eq!(bits_effect(&stored.unwrap()), bits_effect(&direct));
                }
                // A limit the table does not hold is computed.
                limits.push(extra_limit_w);
                for &limit_w in &limits {
                    let cfg = Config { gpu_type: ty as u8, gpus, batch: 256 * mult, limit_w };
                    let via = LimitTable::evaluate(Some(&table), m, model, &specs, &cfg);
                    let direct = evaluate(model, &specs, &cfg);
                    prop_assert_eq!(via.is_ok(), direct.is_ok());
                    if let (Ok(a), Ok(b)) = (via, direct) {
                        prop_assert_eq!(bits_perf(&a), bits_perf(&b));
                    }
                }
            }
        }
    }

    /// A table built for other figures (one ulp off in any input the effect depends on, or
    /// another model's index) is never used: the look-up misses and the result is computed.
    #[test]
    fn a_stale_table_is_never_used(
        busy in 0.5f64..1.0,
        r in 0usize..RESPONSES.len(),
        which in 0usize..9,
        f in 0.68f64..0.99,
    ) {
        let specs = specs();
        let built = [model(busy, RESPONSES[r], true)];
        let table = LimitTable::new(&built, &specs, &[f]);
        let perf = built[0].perf[0].unwrap();
        let limit_w = limit_for_fraction(&perf, &specs[0], f);
        prop_assert!(table.get(0, &built[0], &specs, 0, limit_w).is_some());
        let up = |x: f64| f64::from_bits(x.to_bits() + 1);
        let (mut m, mut s, mut l) = (built[0], specs, limit_w);
        {
            let p = m.perf[0].as_mut().unwrap();
            match which {
                0 => l = up(l),
                1 => p.busy_w = up(p.busy_w),
                2 => s[0].max_w = up(s[0].max_w),
                3 => s[0].min_limit_w = up(s[0].min_limit_w),
                4 => p.limit.capped_ratio = up(p.limit.capped_ratio),
                5 => p.limit.sharpness = up(p.limit.sharpness),
                6 => p.limit.speed_exponent = up(p.limit.speed_exponent),
                7 => p.limit.knee_slope = up(p.limit.knee_slope),
                _ => p.limit.knee_fraction = up(p.limit.knee_fraction),
            }
        }
        prop_assert!(table.get(0, &m, &s, 0, l).is_none());
        prop_assert!(table.get(1, &built[0], &specs, 0, limit_w).is_none());
        let via = LimitTable::effect(Some(&table), 0, &m, &s, 0, l).unwrap();
        prop_assert_eq!(bits_effect(&via), bits_effect(&limit_effect(&m, &s, 0, l).unwrap()));
    }

    /// Every policy makes the same decisions, to the bit, with the table in the view as without
    /// it: pending and running jobs, limited configurations, power caps that bind or shed.
    #[test]
    fn every_policy_decides_the_same_with_the_table(
        models in models_strategy(),
        fractions in proptest::array::uniform4(0.6f64..1.1),
        free in (0u32..=8, 0u32..=8),
        cap in prop::option::of(500.0f64..9000.0),
        jobs in prop::collection::vec(
            (0u16..4, 0u64..5000, 1e5f64..1e9, any::<bool>(), any::<bool>(),
             prop::option::of((0u8..2, 0u32..4, 0usize..4))),
            0..24,
        ),
    ) {
        let specs = specs();
        let params = PolicyParams { limit_fractions: fractions, ..PolicyParams::default() };
        let table = LimitTable::new(&models, &specs, &params.limit_fractions);
        let views: Vec<JobView> = jobs
            .iter()
            .enumerate()
            .map(|(i, &(m, arrival_s, work, urgent, rigid, running))| {
                let m = m % models.len() as u16;
                let running = running.and_then(|(ty, k, li)| {
                    let perf = models[m as usize].perf[ty as usize]?;
                    let gpus = 1u32 << k;
                    Some(Config {
                        gpu_type: ty,
                        gpus,
                        batch: 256 * gpus,
                        limit_w: limit_for_fraction(&perf, &specs[ty as usize], fractions[li]),
                    })
                });
                JobView {
                    id: i as u64,
                    model: m,
                    user: (i % 3) as u32,
                    arrival: arrival_s * 1_000_000_000,
                    remaining_work: work,
                    deadline: urgent.then_some((arrival_s + 4000) * 1_000_000_000),
                    urgent,
                    rigid,
                    request: Request { gpu_type: None, gpus: 2, batch: 512 },
                    running,
                    work_at_risk: work / 10.0,
                    user_gpu_s: i as f64 * 100.0,
                    user_energy_j: i as f64 * 1e4,
                }
            })
            .collect();
        let total = [8u32, 8];
        let free = [free.0, free.1];
        for kind in PolicyKind::ALL {
            let mut got = Vec::new();
            for with in [false, true] {
                let view = ClusterView {
                    now: 5000 * 1_000_000_000,
                    gpu_specs: &specs,
                    total: &total,
                    free: &free,
                    power_cap_w: cap,
                    models: &models,
                    limit_effects: with.then_some(&table),
                };
                let mut buf = [Decision::Preempt { job: 0 }; 64];
                let mut scratch = vec![0u32; views.len()];
                let mut out = Decisions::new(&mut buf);
                schedule(kind, &params, &view, &views, &mut scratch, &mut out).unwrap();
                got.push(bits_decisions(out.as_slice()));
            }
            prop_assert_eq!(&got[0], &got[1], "{}", kind.name());
        }
    }
}
