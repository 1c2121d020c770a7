//! Nothing on the session's reading path allocates: readings, read errors, region boundaries
//! and the getters, with a sink, under a global allocator that counts. One test in this binary,
//! so no other test thread allocates while it counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::ptr::{null, null_mut};
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

unsafe extern "C" fn count_bytes(user: *mut c_void, _bytes: *const u8, len: usize) -> i32 {
    // SAFETY: the test passes a pointer to its own `usize`.
    unsafe { *user.cast::<usize>() += len };
    0
}

#[test]
fn readings_regions_and_getters_do_not_allocate() {
    const MS: u64 = 1_000_000;
    let mut s = null_mut();
    let mut bytes = 0usize;
    let info = Ea2pProfileInfo {
        start_unix_ns: 0,
        monotonic_origin_ns: 0,
        interval_ns: MS,
        hostname: null(),
        command: null(),
    };
    let spec = Ea2pSourceSpec {
        component: Ea2pComponent::CpuPackage as u32,
        index: 0,
        name: c"package-0".as_ptr(),
        max_power_w: 250.0,
        update_period_ns: MS,
        estimated: false,
    };
    // SAFETY: valid pointers; `bytes` outlives the session, freed at the end.
    unsafe {
        assert_eq!(ea2p_session_new(0, &mut s), Ea2pStatus::Ok);
        let user = (&mut bytes as *mut usize).cast::<c_void>();
        assert_eq!(
            ea2p_session_set_sink(s, &info, Some(count_bytes), user),
            Ea2pStatus::Ok
        );
        assert_eq!(
            ea2p_session_add_counter(s, 0, &spec, 1e-6, 999_999),
            Ea2pStatus::Ok
        );
        assert_eq!(ea2p_session_add_power(s, 1, &spec), Ea2pStatus::Ok);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let mut summary = std::mem::MaybeUninit::uninit();
        let mut region = std::mem::MaybeUninit::uninit();
        let mut j = 0.0;
        for i in 0..10_000u64 {
            let t = i * MS;
            // A wrap every ~20 readings, a reset every 1000, a failed read every 500.
            let raw = if i % 1000 == 999 {
                5
            } else {
                (i * 50_000) % 1_000_000
            };
            assert_eq!(ea2p_session_reading(s, 0, t, raw), Ea2pStatus::Ok);
            let st = if i % 500 == 7 {
                ea2p_session_read_error(s, 1, t, Ea2pReadErrorKind::Gone as u32)
            } else {
                ea2p_session_power_reading(s, 1, t, 40_000 + i % 7)
            };
            assert_eq!(st, Ea2pStatus::Ok);
            let mut id = 0;
            if i % 100 == 10 {
                assert_eq!(
                    ea2p_session_begin(s, t, c"step".as_ptr(), &mut id),
                    Ea2pStatus::Ok
                );
            } else if i % 100 == 60 {
                assert_eq!(
                    ea2p_session_end(s, t, c"step".as_ptr(), &mut id),
                    Ea2pStatus::Ok
                );
                // The region of the previous round is placed by now.
                if i > 100 {
                    let prev = (i / 100 - 1) as u32;
                    assert_eq!(
                        ea2p_session_region(s, prev, region.as_mut_ptr()),
                        Ea2pStatus::Ok
                    );
                    assert!(region.assume_init_ref().complete);
                    assert_eq!(
                        ea2p_session_region_energy(s, prev, 0, &mut j),
                        Ea2pStatus::Ok
                    );
                }
            }
            assert_eq!(
                ea2p_session_source(s, 0, summary.as_mut_ptr()),
                Ea2pStatus::Ok
            );
        }
        assert_eq!(ea2p_session_finish(s, 10_000 * MS), Ea2pStatus::Ok);
        let after = ALLOCATIONS.load(Ordering::Relaxed);
        assert_eq!(after - before, 0, "allocations on the reading path");
        let m = summary.assume_init();
        assert!(m.wraps > 100 && m.anomalies[Ea2pGapReason::CounterReset as usize].count >= 9);
        assert!(bytes > 10_000 * 10);
        ea2p_session_free(s);
    }
}
