//! Each policy's ordering and configuration choice on small hand-made cases.

use ea2p_core::jobmodel::{
    evaluate, Config, GpuSpec, LimitResponse, ModelProfile, PerfParams, StatEff, StepTime,
    MAX_GPU_TYPES,
};
use ea2p_core::policy::{
    schedule, ClusterView, Decision, Decisions, JobView, PolicyError, PolicyKind, PolicyParams,
    Request,
};

const A100: u8 = 0;
const H100: u8 = 1;

fn specs() -> [GpuSpec; 2] {
    [
        GpuSpec {
            idle_w: 55.0,
            allocated_idle_w: 99.0,
            max_w: 400.0,
            min_limit_w: 100.0,
        },
        GpuSpec {
            idle_w: 79.0,
            allocated_idle_w: 142.0,
            max_w: 700.0,
            min_limit_w: 200.0,
        },
    ]
}

fn model() -> ModelProfile {
    let a = StepTime::fit(1066.0, 7397.0, 8, 256.0, 0.34, 0.8, 2.0).unwrap();
    let h = StepTime::fit(1825.0, 14423.0, 8, 256.0, 0.34, 0.8, 2.0).unwrap();
    let mut perf = [None; MAX_GPU_TYPES];
    perf[0] = Some(PerfParams {
        step: a,
        busy_w: 352.0,
        max_batch_per_gpu: 512,
        limit: LimitResponse::DEFAULT,
    });
    perf[1] = Some(PerfParams {
        step: h,
        busy_w: 616.0,
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

fn job(id: u64, arrival_s: u64, work: f64) -> JobView {
    JobView {
        id,
        model: 0,
        user: 0,
        arrival: arrival_s * 1_000_000_000,
        remaining_work: work,
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

struct Fixture {
    specs: [GpuSpec; 2],
    models: [ModelProfile; 1],
    total: [u32; 2],
    free: [u32; 2],
    cap: Option<f64>,
    now_s: u64,
}

impl Fixture {
    fn new(free_a: u32, free_h: u32) -> Self {
        Fixture {
            specs: specs(),
            models: [model()],
            total: [8, 8],
            free: [free_a, free_h],
            cap: None,
            now_s: 10_000,
        }
    }

    fn run(&self, kind: PolicyKind, jobs: &[JobView]) -> Vec<Decision> {
        self.run_with(kind, jobs, &PolicyParams::default())
    }

    fn run_with(&self, kind: PolicyKind, jobs: &[JobView], params: &PolicyParams) -> Vec<Decision> {
        let view = ClusterView {
            now: self.now_s * 1_000_000_000,
            gpu_specs: &self.specs,
            total: &self.total,
            free: &self.free,
            power_cap_w: self.cap,
            models: &self.models,
            limit_effects: None,
        };
        let mut buf = [Decision::Preempt { job: 0 }; 64];
        let mut scratch = vec![0u32; jobs.len()];
        let mut out = Decisions::new(&mut buf);
        schedule(kind, params, &view, jobs, &mut scratch, &mut out).unwrap();
        out.as_slice().to_vec()
    }
}

fn started(d: &[Decision]) -> Vec<u32> {
    d.iter()
        .filter_map(|d| {
            if let Decision::Start { job, .. } = d {
                Some(*job)
            } else {
                None
            }
        })
        .collect()
}

fn cfg_of(d: &[Decision], j: u32) -> Config {
    d.iter()
        .find_map(|d| match d {
            Decision::Start { job, cfg } | Decision::Resize { job, cfg } if *job == j => Some(*cfg),
            _ => None,
        })
        .unwrap()
}

#[test]
fn fifo_is_strict_arrival_order() {
    let f = Fixture::new(2, 0);
    let mut big = job(1, 5, 1e6);
    big.request.gpus = 4;
    big.request.batch = 1024;
    let small = job(2, 9, 1e6);
    let early = job(3, 1, 1e6);
    // The earliest job starts; the 4-GPU job blocks the later one-GPU job (no backfill).
    let d = Fixture::new(2, 0).run(PolicyKind::Fifo, &[big, small, early]);
    assert_eq!(started(&d), vec![2]);
    let d = f.run(PolicyKind::Fifo, &[small, early]);
    assert_eq!(started(&d), vec![1, 0]);
}

#[test]
fn fifo_gives_malleable_jobs_their_request_on_the_fastest_type() {
    let d = Fixture::new(8, 8).run(PolicyKind::Fifo, &[job(1, 0, 1e6)]);
    let c = cfg_of(&d, 0);
    assert_eq!((c.gpu_type, c.gpus, c.batch), (H100, 1, 256));
    assert_eq!(c.limit_w, 700.0);
}

#[test]
fn rigid_jobs_keep_their_request() {
    let mut j = job(1, 0, 1e6);
    j.rigid = true;
    j.request = Request {
        gpu_type: Some(A100),
        gpus: 2,
        batch: 512,
    };
    for p in PolicyKind::ALL {
        let d = Fixture::new(8, 8).run(p, &[j]);
        let c = cfg_of(&d, 0);
        assert_eq!((c.gpu_type, c.gpus, c.batch), (A100, 2, 512), "{p:?}");
    }
}

#[test]
fn pollux_runs_shortest_first_and_ages_long_jobs() {
    let f = Fixture::new(1, 0);
    let long_old = job(1, 0, 3600.0 * 1825.0 * 4.0); // ~4 h on an H100-equivalent
    let short_new = job(2, 9_990, 1825.0 * 600.0); // ~10 min
    let d = f.run(PolicyKind::Pollux, &[long_old, short_new]);
    assert_eq!(started(&d), vec![1], "shortest first");
    // With a strong age factor the job that waited 10 000 s wins.
    let params = PolicyParams {
        age_factor: 10.0,
        ..PolicyParams::default()
    };
    let d = f.run_with(PolicyKind::Pollux, &[long_old, short_new], &params);
    assert_eq!(started(&d), vec![0], "ageing");
}

/// Every configuration the policies may consider for one malleable job with `free` GPUs.
fn candidates(free: [u32; 2], limits: bool) -> Vec<Config> {
    let mut v = Vec::new();
    let fr: &[f64] = if limits {
        &[1.0, 0.9, 0.8, 0.7]
    } else {
        &[1.0]
    };
    for ty in 0..2u8 {
        let busy = if ty == 0 { 352.0 } else { 616.0 };
        let max = specs()[ty as usize].max_w;
        for &f in fr {
            let limit_w = if f >= 1.0 { max } else { f * busy };
            let mut k = 1;
            while k <= free[ty as usize] {
                for m in [1, 2, 4, 8] {
                    v.push(Config {
                        gpu_type: ty,
                        gpus: k,
                        batch: 256 * m,
                        limit_w,
                    });
                }
                k *= 2;
            }
        }
    }
    v
}

#[test]
fn pollux_picks_the_best_goodput_and_zeus_the_best_edp() {
    let f = Fixture::new(8, 8);
    let m = model();
    let s = specs();
    let d = f.run(PolicyKind::Pollux, &[job(1, 0, 1e9)]);
    let pc = cfg_of(&d, 0);
    let pg = evaluate(&m, &s, &pc).unwrap().goodput;
    let edp = |c: &Config| {
        let p = evaluate(&m, &s, c).unwrap();
        p.power_per_gpu_w * c.gpus as f64 / (p.goodput * p.goodput)
    };
    for c in candidates([8, 8], false) {
        if let Ok(p) = evaluate(&m, &s, &c) {
            assert!(p.goodput <= pg + 1e-9, "{c:?} beats Pollux's {pc:?}");
        }
    }
    assert!(pc.gpus > 1, "one job alone gets more than one GPU: {pc:?}");
    let d = f.run(PolicyKind::Zeus, &[job(1, 0, 1e9)]);
    let zc = cfg_of(&d, 0);
    for c in candidates([8, 8], true) {
        if evaluate(&m, &s, &c).is_ok() {
            assert!(
                edp(&zc) <= edp(&c) + 1e-15,
                "{c:?} has lower EDP than Zeus's {zc:?}"
            );
        }
    }
    assert!(edp(&zc) < edp(&pc));
    assert!(
        zc.limit_w < s[zc.gpu_type as usize].max_w,
        "Zeus limits power: {zc:?}"
    );
}

#[test]
fn pollux_shares_gpus_when_the_queue_is_long() {
    let jobs: Vec<JobView> = (0..16).map(|i| job(i, i, 1e7)).collect();
    let d = Fixture::new(8, 8).run(PolicyKind::Pollux, &jobs);
    assert_eq!(started(&d).len(), 16);
    assert!(d
        .iter()
        .all(|d| matches!(d, Decision::Start { cfg, .. } if cfg.gpus == 1)));
}

#[test]
fn themis_serves_the_user_who_consumed_least() {
    let mut a = job(1, 0, 1e6);
    a.user = 1;
    a.user_gpu_s = 50_000.0;
    let mut b = job(2, 100, 1e6);
    b.user = 2;
    b.user_gpu_s = 10.0;
    let d = Fixture::new(1, 0).run(PolicyKind::Themis, &[a, b]);
    assert_eq!(started(&d), vec![1]);
}

#[test]
fn chronos_puts_urgent_jobs_first_by_slack() {
    let now = 10_000u64;
    let be = job(1, 0, 1e6);
    let mut loose = job(2, 50, 1e6);
    loose.urgent = true;
    loose.deadline = Some((now + 100_000) * 1_000_000_000);
    let mut tight = job(3, 60, 1e6);
    tight.urgent = true;
    tight.deadline = Some((now + 2_000) * 1_000_000_000);
    let d = Fixture::new(2, 0).run(PolicyKind::Chronos, &[be, loose, tight]);
    assert_eq!(started(&d), vec![2, 1]);
}

#[test]
fn hades_weights_edp_by_the_users_past_energy() {
    let mut heavy = job(1, 0, 1e6);
    heavy.user = 1;
    heavy.user_energy_j = 3.6e8; // 100 kWh
    let mut light = job(2, 10, 1e6);
    light.user = 2;
    let d = Fixture::new(1, 0).run(PolicyKind::Hades, &[heavy, light]);
    assert_eq!(started(&d), vec![1]);
    // Same user: the job with less work (lower EDP) first.
    let small = job(3, 20, 1e5);
    let d = Fixture::new(1, 0).run(PolicyKind::Hades, &[light, small]);
    assert_eq!(started(&d), vec![1]);
    assert!(ea2p_core::policy::hades::score(1.0, 3.6e6) == 2.0);
}

#[test]
fn aurachronos_preempts_the_cheapest_best_effort_job_for_an_urgent_one() {
    let now = 10_000u64;
    let run_cfg = Config {
        gpu_type: A100,
        gpus: 1,
        batch: 256,
        limit_w: 400.0,
    };
    let mut r1 = job(1, 0, 1e7);
    r1.running = Some(run_cfg);
    r1.work_at_risk = 5e5;
    let mut r2 = job(2, 0, 1e7);
    r2.running = Some(run_cfg);
    r2.work_at_risk = 1e4;
    let mut r3 = job(3, 0, 1e7);
    r3.running = Some(run_cfg);
    r3.urgent = true;
    r3.deadline = Some(now * 2_000_000_000);
    let mut u = job(4, 9_000, 1066.0 * 3000.0);
    u.urgent = true;
    u.deadline = Some((now + 3_000) * 1_000_000_000); // slack about 3000 - 1700 s < 600? no:
    let params = PolicyParams {
        urgent_margin_s: 2_000.0,
        ..PolicyParams::default()
    };
    let d = Fixture::new(0, 0).run_with(PolicyKind::AuraChronos, &[r1, r2, r3, u], &params);
    assert_eq!(
        d[0],
        Decision::Preempt { job: 1 },
        "least work at risk, best-effort only: {d:?}"
    );
    assert!(matches!(d[1], Decision::Start { job: 3, cfg } if cfg.gpu_type == A100));
    assert_eq!(d.len(), 2);
    // Plenty of slack: nobody is preempted.
    let mut relaxed = u;
    relaxed.deadline = Some((now + 90_000) * 1_000_000_000);
    let d = Fixture::new(0, 0).run_with(PolicyKind::AuraChronos, &[r1, r2, r3, relaxed], &params);
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn aurachronos_backfills_best_effort_jobs_by_edp() {
    let big = job(1, 0, 1e9);
    let small = job(2, 100, 1e6);
    let d = Fixture::new(1, 0).run(PolicyKind::AuraChronos, &[big, small]);
    assert_eq!(started(&d), vec![1]);
}

#[test]
fn charon_stays_under_the_cap_and_sheds_load_when_it_drops() {
    let mut f = Fixture::new(8, 8);
    let idle = 8.0 * 55.0 + 8.0 * 79.0;
    // Room for about one busy A100 above idle, not more.
    f.cap = Some(idle + 320.0);
    let jobs: Vec<JobView> = (0..4).map(|i| job(i, i, 1e7)).collect();
    let d = f.run(PolicyKind::Charon, &jobs);
    let s = specs();
    let m = model();
    let mut added = 0.0;
    for d in &d {
        if let Decision::Start { cfg, .. } = d {
            let p = evaluate(&m, &s, cfg).unwrap();
            added += cfg.gpus as f64 * (p.power_per_gpu_w - s[cfg.gpu_type as usize].idle_w);
        }
    }
    assert!(!started(&d).is_empty());
    assert!(idle + added <= idle + 320.0, "{added}");
    // Cap below what running jobs draw: limits first, then preemption, newest first.
    let cfg = Config {
        gpu_type: H100,
        gpus: 8,
        batch: 2048,
        limit_w: 700.0,
    };
    let mut r = job(9, 0, 1e9);
    r.running = Some(cfg);
    let mut f = Fixture::new(8, 0);
    f.cap = Some(8.0 * 55.0 + 8.0 * 300.0);
    let d = f.run(PolicyKind::Charon, &[r]);
    assert!(
        matches!(d[0], Decision::Resize { job: 0, cfg: c } if c.limit_w < 700.0),
        "{d:?}"
    );
    f.cap = Some(8.0 * 55.0 + 8.0 * 100.0);
    let d = f.run(PolicyKind::Charon, &[r]);
    assert_eq!(d.last(), Some(&Decision::Preempt { job: 0 }));
}

#[test]
fn a_full_buffer_hands_the_decision_back_and_scratch_is_checked() {
    let mut buf = [Decision::Preempt { job: 0 }; 1];
    let mut out = Decisions::new(&mut buf);
    assert!(out.push(Decision::Preempt { job: 1 }).is_ok());
    assert_eq!(
        out.push(Decision::Preempt { job: 2 }),
        Err(Decision::Preempt { job: 2 })
    );
    assert!(out.is_full());
    // A round with a one-slot buffer starts one job and stops cleanly.
    let f = Fixture::new(8, 8);
    let view = ClusterView {
        now: 0,
        gpu_specs: &f.specs,
        total: &f.total,
        free: &f.free,
        power_cap_w: None,
        models: &f.models,
        limit_effects: None,
    };
    let jobs = [job(1, 0, 1e6), job(2, 1, 1e6)];
    let mut one = [Decision::Preempt { job: 0 }; 1];
    let mut out = Decisions::new(&mut one);
    let mut scratch = [0u32; 2];
    schedule(
        PolicyKind::Fifo,
        &PolicyParams::default(),
        &view,
        &jobs,
        &mut scratch,
        &mut out,
    )
    .unwrap();
    assert_eq!(out.len(), 1);
    let mut short = [0u32; 1];
    let mut out = Decisions::new(&mut one);
    assert_eq!(
        schedule(
            PolicyKind::Fifo,
            &PolicyParams::default(),
            &view,
            &jobs,
            &mut short,
            &mut out
        ),
        Err(PolicyError::ScratchTooSmall { needed: 2 })
    );
    assert_eq!(
        PolicyKind::from_name("AuraChronos"),
        Some(PolicyKind::AuraChronos)
    );
    assert_eq!(PolicyKind::from_name("nope"), None);
}

#[test]
fn pollux_grows_running_jobs_when_nothing_waits() {
    let cfg = Config {
        gpu_type: H100,
        gpus: 1,
        batch: 256,
        limit_w: 700.0,
    };
    let mut r = job(1, 0, 1e9);
    r.running = Some(cfg);
    let d = Fixture::new(0, 7).run(PolicyKind::Pollux, &[r]);
    match d.as_slice() {
        [Decision::Resize { job: 0, cfg: c }] => {
            assert_eq!((c.gpu_type, c.gpus), (H100, 2));
            let m = model();
            let s = specs();
            assert!(evaluate(&m, &s, c).unwrap().goodput > evaluate(&m, &s, &cfg).unwrap().goodput);
        }
        other => panic!("expected one resize, got {other:?}"),
    }
    // Almost done: a reconfiguration would cost more than it saves.
    let mut short = r;
    short.remaining_work = 1825.0 * 30.0;
    assert!(Fixture::new(0, 7)
        .run(PolicyKind::Pollux, &[short])
        .is_empty());
    // Rigid jobs are never resized, and nothing grows while jobs wait.
    let mut rigid = r;
    rigid.rigid = true;
    rigid.request = Request {
        gpu_type: Some(H100),
        gpus: 1,
        batch: 256,
    };
    assert!(Fixture::new(0, 7)
        .run(PolicyKind::Pollux, &[rigid])
        .is_empty());
    let d = Fixture::new(0, 7).run(PolicyKind::Pollux, &[r, job(2, 5, 1e6)]);
    assert!(
        d.iter().all(|d| !matches!(d, Decision::Resize { .. })),
        "{d:?}"
    );
}

#[test]
fn a_job_not_worth_growing_leaves_the_free_gpu_to_the_next() {
    let cfg = Config {
        gpu_type: H100,
        gpus: 1,
        batch: 256,
        limit_w: 700.0,
    };
    // Pollux visits the shortest first; it would gain less than the reconfiguration costs.
    let mut short = job(1, 0, 1825.0 * 30.0);
    short.running = Some(cfg);
    let mut long = job(2, 0, 1e9);
    long.running = Some(cfg);
    for kind in [PolicyKind::Pollux, PolicyKind::Zeus] {
        let d = Fixture::new(0, 1).run(kind, &[short, long]);
        match d.as_slice() {
            [Decision::Resize { job: 1, cfg: c }] => assert_eq!((c.gpu_type, c.gpus), (H100, 2)),
            other => panic!("{kind:?}: expected the long job to grow, got {other:?}"),
        }
    }
}

#[test]
fn only_aurachronos_and_charon_act_on_a_full_cluster() {
    // The promise behind `acts_on_full_cluster`: the others decide nothing when no GPU is free.
    let cfg = Config {
        gpu_type: A100,
        gpus: 8,
        batch: 2048,
        limit_w: 400.0,
    };
    let mut running = job(1, 0, 1e9);
    running.running = Some(cfg);
    let mut urgent = job(2, 9_000, 1066.0 * 3000.0);
    urgent.urgent = true;
    urgent.deadline = Some(13_100 * 1_000_000_000);
    let mut f = Fixture::new(0, 0);
    f.total = [8, 0];
    f.cap = Some(8.0 * 55.0 + 8.0 * 100.0);
    let jobs = [running, urgent, job(3, 10, 1e6)];
    for p in PolicyKind::ALL {
        let params = PolicyParams {
            urgent_margin_s: 2_000.0,
            ..PolicyParams::default()
        };
        let d = f.run_with(p, &jobs, &params);
        assert_eq!(!d.is_empty(), p.acts_on_full_cluster(), "{p:?}: {d:?}");
    }
}
