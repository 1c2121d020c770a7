//! Properties of the job model over random models and configurations.

use ea2p_core::jobmodel::{
    evaluate, limited, Config, GpuSpec, LimitResponse, ModelProfile, PerfParams, StatEff, StepTime,
    MAX_GPU_TYPES,
};
use proptest::prelude::*;

fn gpu() -> GpuSpec {
    GpuSpec {
        idle_w: 79.0,
        allocated_idle_w: 142.0,
        max_w: 700.0,
        min_limit_w: 200.0,
    }
}

prop_compose! {
    fn model()(one in 100.0f64..5000.0, eff in 0.3f64..0.999, fixed in 0.0f64..0.9,
               sync in 0.0f64..1.0, gamma in 1.0f64..8.0, busy in 300.0f64..700.0,
               phi in 10.0f64..10000.0, b0 in 8u32..512) -> ModelProfile {
        let step = StepTime::fit(one, one * 8.0 * eff, 8, b0 as f64, fixed, sync, gamma).unwrap();
        let mut perf = [None; MAX_GPU_TYPES];
        perf[0] = Some(PerfParams { step, busy_w: busy, max_batch_per_gpu: b0 * 8, limit: LimitResponse::DEFAULT });
        ModelProfile { stat: StatEff { ref_batch: b0, noise_scale: phi }, perf, max_gpus: 64 }
    }
}

proptest! {
    #[test]
    fn power_stays_between_idle_and_max_and_goodput_is_positive(
        m in model(), k in 1u32..64, mult in 1u32..8, limit in 150.0f64..800.0
    ) {
        let g = [gpu()];
        let cfg = Config { gpu_type: 0, gpus: k, batch: (m.stat.ref_batch * mult).max(k), limit_w: limit };
        let p = evaluate(&m, &g, &cfg).unwrap();
        prop_assert!(p.power_per_gpu_w >= g[0].idle_w && p.power_per_gpu_w <= g[0].max_w);
        prop_assert!(p.goodput > 0.0 && p.goodput <= p.throughput * 1.0000001);
        prop_assert!(p.compute_fraction > 0.0 && p.compute_fraction <= 1.0);
    }

    #[test]
    fn more_gpus_never_slow_a_step_less_than_linear_speed_up(m in model(), k in 1u32..32) {
        // Throughput at the same batch per GPU grows with k, but at most linearly.
        let g = [gpu()];
        let b0 = m.stat.ref_batch;
        let at = |k: u32| evaluate(&m, &g, &Config { gpu_type: 0, gpus: k, batch: b0 * k, limit_w: 700.0 }).unwrap().throughput;
        let (t1, tk) = (at(1), at(k));
        prop_assert!(tk <= t1 * k as f64 * (1.0 + 1e-9));
    }

    #[test]
    fn a_lower_power_limit_lowers_power_and_goodput(m in model(), k in 1u32..16, a in 0.3f64..1.0, b in 0.3f64..1.0) {
        let g = [gpu()];
        let busy = m.perf[0].unwrap().busy_w;
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let cfg = |f: f64| Config { gpu_type: 0, gpus: k, batch: m.stat.ref_batch * k, limit_w: f * busy };
        let (pl, ph) = (evaluate(&m, &g, &cfg(lo)).unwrap(), evaluate(&m, &g, &cfg(hi)).unwrap());
        prop_assert!(pl.power_per_gpu_w <= ph.power_per_gpu_w + 1e-9);
        prop_assert!(pl.goodput <= ph.goodput * (1.0 + 1e-12));
        let r = LimitResponse::DEFAULT;
        let ((sl, wl), (sh, wh)) = (limited(&r, busy, 700.0, lo * busy), limited(&r, busy, 700.0, hi * busy));
        prop_assert!(sl >= sh && sh >= 1.0);
        prop_assert!(wl <= wh && wh <= busy);
    }
}
