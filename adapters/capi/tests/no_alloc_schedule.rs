//! `ea2p_schedule` allocates nothing once a thread has run a round as large: every policy, rounds
//! with pending and running jobs, under a global allocator that counts. One test in this binary,
//! so no other test thread allocates while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};

use ea2p_capi::*;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded from the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let s =
        unsafe { ea2p_step_time_fit(1066.0, 7397.0, 8, 256.0, 0.1, 0.8, 2.0, step.as_mut_ptr()) };
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

fn job(id: u64, running: bool) -> Ea2pJobView {
    Ea2pJobView {
        id,
        model: 0,
        user: id as u32 % 3,
        arrival_ns: id * 1_000_000_000,
        remaining_work: 1e6 + id as f64,
        deadline_ns: 4_000_000_000_000,
        has_deadline: id % 2 == 0,
        urgent: id % 4 == 0,
        rigid: false,
        request: Ea2pRequest {
            gpu_type: 0,
            has_gpu_type: false,
            gpus: 1,
            batch: 256,
        },
        running: Ea2pConfig {
            gpu_type: 0,
            gpus: if running { 1 } else { 0 },
            batch: if running { 256 } else { 0 },
            limit_w: if running { 400.0 } else { 0.0 },
        },
        is_running: running,
        work_at_risk: 0.0,
        user_gpu_s: id as f64,
        user_energy_j: 0.0,
    }
}

#[test]
fn schedule_does_not_allocate_once_warm() {
    let specs = [a100()];
    let models = [model()];
    let (total, free) = ([16u32], [8u32]);
    let cluster = Ea2pClusterView {
        now_ns: 100_000_000_000,
        gpu_specs: specs.as_ptr(),
        total: total.as_ptr(),
        free: free.as_ptr(),
        n_gpu_types: 1,
        power_cap_w: 4000.0,
        has_power_cap: true,
        models: models.as_ptr(),
        n_models: 1,
    };
    // 8 running jobs (one GPU each, so 8 of 16 are free) and 24 pending ones.
    let jobs: Vec<Ea2pJobView> = (0..32).map(|i| job(i, i < 8)).collect();
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
                limit_w: 0.0,
            },
        };
        64
    ];
    let round = |policy: u32, n: usize, out: &mut [Ea2pDecision]| {
        let mut len = 0;
        // SAFETY: valid pointers and counts.
        let s = unsafe {
            ea2p_schedule(
                policy,
                &params,
                &cluster,
                jobs.as_ptr(),
                n,
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            )
        };
        assert_eq!(s, Ea2pStatus::Ok, "policy {policy}");
        len
    };
    // Warm: the largest round once.
    round(0, jobs.len(), &mut out);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut decided = 0;
    for _ in 0..10 {
        for policy in 0..8u32 {
            for n in [jobs.len(), 20, 9, 0] {
                decided += round(policy, n, &mut out);
            }
        }
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert!(decided > 0);
    assert_eq!(after - before, 0, "allocations in 320 warm rounds");
}
