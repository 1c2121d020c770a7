//! The session handle is the core's Session and Fold: over random, also hostile, streams of
//! readings (values anywhere in `u64`, times out of order, wraps, resets), failed reads, region
//! boundaries (some refused) and an id no source has, every status and every figure read back
//! through the C API equals the core's, bit for bit, and nothing panics.

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::ptr::null_mut;

use ea2p_capi::*;
use ea2p_core::fold::{Fold, RegionEnergy, DEFAULT_PEAK_WINDOW_NS};
use ea2p_core::format::{ExitStatus, MarkerKind};
use ea2p_core::session::Session;
use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadErrorKind, SourceInfo,
};
use proptest::prelude::*;

const MS: u64 = 1_000_000;
const MAX_TICKS: u64 = 999_999;
type CoreSession = Session<EA2P_SESSION_SOURCES, EA2P_SESSION_OPEN_REGIONS>;
type CoreFold = Fold<EA2P_SESSION_SOURCES, 128>;

#[derive(Debug, Clone)]
enum Op {
    /// Source (0: counter with a wrap point, 1: counter without, 2: power, 3: no such source),
    /// time step (ms, may be 0), value.
    Reading(u16, u64, u64),
    ReadError(u16, u64, u32),
    Begin(u64, usize),
    End(u64, usize),
}

const NAMES: [&str; 3] = ["a", "b", "c"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..4, 0u64..30, prop_oneof![0u64..=MAX_TICKS, any::<u64>(), 0u64..2_000_000])
            .prop_map(|(s, d, v)| Op::Reading(s, d, v)),
        1 => (0u16..4, 0u64..30, 0u32..5).prop_map(|(s, d, k)| Op::ReadError(s, d, k)),
        1 => (0u64..30, 0usize..3).prop_map(|(d, n)| Op::Begin(d, n)),
        1 => (0u64..30, 0usize..3).prop_map(|(d, n)| Op::End(d, n)),
    ]
}

fn infos() -> [SourceInfo; 3] {
    let counter = |max| Quantity::EnergyCounter {
        joules_per_tick: 1e-6,
        max_ticks: max,
    };
    let info = |component, quantity, max_power_w, period| SourceInfo {
        component,
        index: 0,
        provenance: Provenance::Measured,
        quantity,
        update_period_ns: period,
        max_power_w,
        name: truncated("s"),
    };
    [
        info(
            Component::CpuPackage,
            counter(Some(MAX_TICKS)),
            Some(100.0),
            MS,
        ),
        info(Component::Dram, counter(None), None, 0),
        info(
            Component::Gpu,
            Quantity::Power { averaging_ns: 0 },
            None,
            20 * MS,
        ),
    ]
}

fn status_of<E>(r: &Result<impl Sized, E>, err: Ea2pStatus) -> Ea2pStatus {
    if r.is_ok() {
        Ea2pStatus::Ok
    } else {
        err
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn the_handle_is_the_cores_session_and_fold(ops in prop::collection::vec(op(), 0..120)) {
        let mut core = CoreSession::new();
        let mut fold = CoreFold::new(DEFAULT_PEAK_WINDOW_NS);
        let mut regions: Vec<RegionEnergy<EA2P_SESSION_SOURCES>> = Vec::new();
        let drain = |core: &mut CoreSession, fold: &mut CoreFold, regions: &mut Vec<_>| {
            while let Some(r) = core.poll_record() {
                let _ = fold.handle(&r);
                while let Some(reg) = fold.poll_region() {
                    regions.push(reg);
                }
            }
        };
        let mut s = null_mut();
        let name = CString::new("s").unwrap();
        let spec = |component: Ea2pComponent, max_power_w, period| Ea2pSourceSpec {
            component: component as u32,
            index: 0,
            name: name.as_ptr(),
            max_power_w,
            update_period_ns: period,
            estimated: false,
        };
        let names: Vec<CString> = NAMES.iter().map(|n| CString::new(*n).unwrap()).collect();
        // SAFETY: valid pointers throughout; the handle is freed at the end.
        unsafe {
            prop_assert_eq!(ea2p_session_new(0, &mut s), Ea2pStatus::Ok);
            let [pkg, dram, gpu] = infos();
            prop_assert_eq!(ea2p_session_add_counter(s, 0, &spec(Ea2pComponent::CpuPackage, 100.0, MS), 1e-6, MAX_TICKS), Ea2pStatus::Ok);
            prop_assert_eq!(ea2p_session_add_counter(s, 1, &spec(Ea2pComponent::Dram, 0.0, 0), 1e-6, 0), Ea2pStatus::Ok);
            prop_assert_eq!(ea2p_session_add_power(s, 2, &spec(Ea2pComponent::Gpu, 0.0, 20 * MS)), Ea2pStatus::Ok);
            core.add_source(0, pkg).unwrap();
            core.add_source(1, dram).unwrap();
            core.add_source(2, gpu).unwrap();
            drain(&mut core, &mut fold, &mut regions);

            let mut t = 0u64;
            let mut region_ids = Vec::new();
            for op in &ops {
                let (c_status, core_status) = match *op {
                    Op::Reading(id, d, v) => {
                        t += d * MS;
                        let (c, raw) = if id == 2 {
                            (ea2p_session_power_reading(s, id, t, v), RawReading::PowerMilliwatts(v))
                        } else {
                            (ea2p_session_reading(s, id, t, v), RawReading::Counter(v))
                        };
                        let r = core.handle_reading(id, t, raw);
                        (c, status_of(&r, Ea2pStatus::UnknownSource))
                    }
                    Op::ReadError(id, d, k) => {
                        t += d * MS;
                        let c = ea2p_session_read_error(s, id, t, k);
                        let kinds = [ReadErrorKind::PermissionDenied, ReadErrorKind::Gone, ReadErrorKind::Malformed, ReadErrorKind::Other];
                        let want = match kinds.get(k as usize) {
                            None => Ea2pStatus::InvalidArgument,
                            Some(kind) => status_of(&core.handle_read_error(id, t, *kind), Ea2pStatus::UnknownSource),
                        };
                        (c, want)
                    }
                    Op::Begin(d, n) | Op::End(d, n) => {
                        t += d * MS;
                        let begin = matches!(op, Op::Begin(..));
                        let mut id = u32::MAX;
                        let c = if begin {
                            ea2p_session_begin(s, t, names[n].as_ptr(), &mut id)
                        } else {
                            ea2p_session_end(s, t, names[n].as_ptr(), &mut id)
                        };
                        let kind = if begin { MarkerKind::Begin } else { MarkerKind::End };
                        let r = core.handle_marker(t, kind, NAMES[n]);
                        if let Ok(rid) = r {
                            prop_assert_eq!(id, rid);
                            region_ids.push(rid);
                        }
                        let err = if begin { Ea2pStatus::RegionOpen } else { Ea2pStatus::RegionNotOpen };
                        (c, status_of(&r, err))
                    }
                };
                prop_assert_eq!(c_status, core_status, "{:?}", op);
                drain(&mut core, &mut fold, &mut regions);
            }
            t += MS;
            prop_assert_eq!(ea2p_session_finish(s, t), Ea2pStatus::Ok);
            core.finish(t, ExitStatus::Unknown).unwrap();
            drain(&mut core, &mut fold, &mut regions);
            fold.finish();
            while let Some(reg) = fold.poll_region() {
                regions.push(reg);
            }

            for c in fold.components() {
                let mut m = MaybeUninit::uninit();
                prop_assert_eq!(ea2p_session_source(s, c.id, m.as_mut_ptr()), Ea2pStatus::Ok);
                let m = m.assume_init();
                prop_assert_eq!(m.energy_j.to_bits(), c.energy_j.to_bits());
                prop_assert_eq!(m.avg_w.to_bits(), c.avg_w().to_bits());
                prop_assert_eq!(m.peak_w.to_bits(), c.peak_w.to_bits());
                prop_assert_eq!(m.peak_window_ns, c.peak_window_ns);
                prop_assert_eq!((m.samples, m.wraps, m.refused), (c.samples, c.wraps, c.refused()));
                prop_assert_eq!((m.gap_runs, m.without_readings_ns), (c.gap_runs, c.without_readings_ns));
                for (a, b) in m.anomalies.iter().zip(&c.anomalies) {
                    prop_assert_eq!((a.count, a.covered_ns), (b.count, b.covered_ns));
                }
            }
            for rid in region_ids.iter().copied() {
                let Some(want) = regions.iter().find(|r| r.id == rid) else {
                    // Begun and never ended: the core does not place it; neither does C.
                    let mut r = MaybeUninit::uninit();
                    let st = ea2p_session_region(s, rid, r.as_mut_ptr());
                    prop_assert!(st == Ea2pStatus::Ok && !r.assume_init().complete);
                    continue;
                };
                let mut r = MaybeUninit::uninit();
                prop_assert_eq!(ea2p_session_region(s, rid, r.as_mut_ptr()), Ea2pStatus::Ok);
                let r = r.assume_init();
                prop_assert!(r.complete);
                prop_assert_eq!(r.total_j.to_bits(), want.total_j.to_bits());
                prop_assert_eq!((r.begin_t_ns, r.end_t_ns), (want.begin_t, want.end_t));
                for (c, e) in fold.components().iter().zip(&want.energies) {
                    let mut j = 0.0;
                    prop_assert_eq!(ea2p_session_region_energy(s, rid, c.id, &mut j), Ea2pStatus::Ok);
                    prop_assert_eq!(j.to_bits(), e.to_bits());
                }
            }
            ea2p_session_free(s);
        }
    }
}
