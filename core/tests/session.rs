//! The measuring session and the fold together: live equals replay over random reading streams,
//! and counters that stall, reset, run past their range or are read faster than they update.
//!
//! Fake counters compute their value from the time they are read, as the hardware does.

use ea2p_core::fold::{ComponentFold, Fold, RegionEnergy};
use ea2p_core::format::{encode, Decoder, GapReason, MarkerKind, Record, MAX_FRAME_LEN};
use ea2p_core::session::Session;
use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadErrorKind, SourceInfo,
};
use ea2p_core::units::Nanos;
use proptest::prelude::*;

const MS: Nanos = 1_000_000;
const S: usize = 8;
const R: usize = 16;

fn counter_info(component: Component, max_ticks: u64, max_power_w: Option<f64>) -> SourceInfo {
    SourceInfo {
        component,
        index: 0,
        provenance: Provenance::Measured,
        quantity: Quantity::EnergyCounter {
            joules_per_tick: 1e-6,
            max_ticks: Some(max_ticks),
        },
        update_period_ns: MS,
        max_power_w,
        name: truncated("fake counter"),
    }
}

fn power_info() -> SourceInfo {
    SourceInfo {
        component: Component::Gpu,
        index: 0,
        provenance: Provenance::Measured,
        quantity: Quantity::Power { averaging_ns: 0 },
        update_period_ns: 20 * MS,
        max_power_w: None,
        name: truncated("fake power"),
    }
}

/// Drains the session into `records` and the live fold, and the fold's regions into `regions`.
fn drain(
    s: &mut Session<S, R>,
    fold: &mut Fold<S, R>,
    records: &mut Vec<Record>,
    regions: &mut Vec<RegionEnergy<S>>,
) {
    while let Some(r) = s.poll_record() {
        let _ = fold.handle(&r);
        records.push(r);
        while let Some(reg) = fold.poll_region() {
            regions.push(reg);
        }
    }
}

/// A fake RAPL-like counter: `watts` from time 0, wrapping at `max + 1`, frozen during `stall`.
struct FakeCounter {
    watts: f64,
    max: u64,
    stall: Option<(Nanos, Nanos)>,
}

impl FakeCounter {
    fn truth_uj(&self, t: Nanos) -> u64 {
        (self.watts * t as f64 / 1e3) as u64
    }
    fn read(&self, t: Nanos) -> u64 {
        let t = match self.stall {
            Some((a, b)) if t >= a && t < b => a,
            _ => t,
        };
        self.truth_uj(t) % (self.max + 1)
    }
}

struct Run {
    fold: Fold<S, R>,
    records: Vec<Record>,
}

fn run_counter(info: SourceInfo, reads: impl IntoIterator<Item = (Nanos, u64)>) -> Run {
    let mut s: Session<S, R> = Session::new();
    let mut fold = Fold::default();
    let (mut records, mut regions) = (Vec::new(), Vec::new());
    s.add_source(0, info).unwrap();
    let mut last = 0;
    for (t, v) in reads {
        s.handle_reading(0, t, RawReading::Counter(v)).unwrap();
        drain(&mut s, &mut fold, &mut records, &mut regions);
        last = t;
    }
    s.finish(last, ea2p_core::format::ExitStatus::Code(0))
        .unwrap();
    drain(&mut s, &mut fold, &mut records, &mut regions);
    fold.finish();
    assert!(regions.is_empty(), "no region was marked");
    Run { fold, records }
}

#[test]
fn a_stall_then_a_jump_is_kept_and_nothing_is_flagged() {
    // 40 W, read every ms for 1 s, the counter frozen from 300 ms to 400 ms.
    let c = FakeCounter {
        watts: 40.0,
        max: 262_143_328_850,
        stall: Some((300 * MS, 400 * MS)),
    };
    let info = counter_info(Component::CpuPackage, c.max, Some(60.0));
    let run = run_counter(info, (0..=1000).map(|i| (i * MS, c.read(i * MS))));
    let comp = &run.fold.components()[0];
    let truth = 40.0 * 1.0;
    assert!(
        (comp.energy_j - truth).abs() < 0.005 * truth,
        "{} J vs {truth} J",
        comp.energy_j
    );
    assert!(!comp.has_anomalies(), "{:?}", comp.anomalies);
    assert_eq!(comp.without_readings_ns, 0);
    // The jump is spread over the stall: no 4 kW peak.
    assert!(comp.peak_w < 42.0, "peak {} W", comp.peak_w);
}

#[test]
fn a_counter_past_its_range_and_a_reset_are_flagged_not_summed() {
    // Declared range 1e6 uJ; the counter runs on past it (never wraps).
    let info = counter_info(Component::Dram, 1_000_000, None);
    let run = run_counter(info, (0..100).map(|i| (i * 10 * MS, 900_000 + i * 10_000)));
    let comp = &run.fold.components()[0];
    let oor = comp.anomalies[GapReason::OutOfRange.index()];
    assert_eq!(oor.count, 89, "{:?}", comp.anomalies);
    assert!(oor.covered_ns >= 880 * MS, "{oor:?}");
    assert!(comp.has_anomalies());
    assert!(
        (comp.energy_j - 0.1).abs() < 1e-12,
        "only the in-range readings count: {} J",
        comp.energy_j
    );

    // A 10 W zone whose counter resets to near zero from the middle of its range (no power
    // bound, so no plausibility check helps): flagged, not taken as a wrap.
    let max = 262_143_328_850u64;
    let info = counter_info(Component::Dram, max, None);
    let reads = (0..200).map(|i| {
        let t = i * 10 * MS;
        let base = if i < 100 { 100_000_000_000 } else { 0 };
        let since = if i < 100 { t } else { t - 1000 * MS };
        (t, base + 10 * since / 1_000)
    });
    let run = run_counter(info, reads);
    let comp = &run.fold.components()[0];
    assert_eq!(comp.anomalies[GapReason::CounterReset.index()].count, 1);
    assert_eq!(comp.wraps, 0);
    // 1.99 s of 10 W less the one 10 ms interval lost at the reset.
    assert!((comp.energy_j - 19.8).abs() < 1e-6, "{} J", comp.energy_j);
    assert!(
        run.records
            .iter()
            .any(|r| matches!(r, Record::Gap(g) if g.reason == GapReason::CounterReset)),
        "the reset is written to the profile"
    );
}

#[test]
fn peak_at_1_ms_on_a_steady_counter_is_the_steady_power() {
    let c = FakeCounter {
        watts: 40.0,
        max: 262_143_328_850,
        stall: None,
    };
    let info = counter_info(Component::CpuPackage, c.max, Some(125.0));
    // Read every ms with up to 0.3 ms of jitter, as a sampler thread wakes.
    let reads = (0..2000u64).map(|i| {
        let t = i * MS + (i * 7919 % 300) * 1_000;
        (t, c.read(t))
    });
    let run = run_counter(info, reads);
    let comp = &run.fold.components()[0];
    assert!(
        (comp.peak_w - 40.0).abs() < 0.05 * 40.0,
        "peak {} W",
        comp.peak_w
    );
    assert_eq!(comp.peak_window_ns, 10 * MS);
}

#[test]
fn regions_are_measured_per_source_whatever_the_declaration_order() {
    // Ids declared 7 then 2 (out of id order), 10 W and 1 W constant power sources.
    let mut s: Session<S, R> = Session::new();
    let mut fold: Fold<S, R> = Fold::default();
    let (mut records, mut regions) = (Vec::new(), Vec::new());
    let mut a = power_info();
    a.component = Component::CpuPackage;
    s.add_source(7, a).unwrap();
    s.add_source(2, power_info()).unwrap();
    for i in 0..=100u64 {
        let t = i * 10 * MS;
        drain(&mut s, &mut fold, &mut records, &mut regions);
        s.handle_reading(7, t, RawReading::PowerMilliwatts(10_000))
            .unwrap();
        drain(&mut s, &mut fold, &mut records, &mut regions);
        s.handle_reading(2, t + MS, RawReading::PowerMilliwatts(1_000))
            .unwrap();
        drain(&mut s, &mut fold, &mut records, &mut regions);
        if i == 10 {
            s.handle_marker(t + 5 * MS, MarkerKind::Begin, "r").unwrap();
        }
        if i == 60 {
            s.handle_marker(t + 5 * MS, MarkerKind::End, "r").unwrap();
        }
        drain(&mut s, &mut fold, &mut records, &mut regions);
    }
    fold.finish();
    assert_eq!(regions.len(), 1);
    let r = &regions[0];
    assert!((r.energies[0] - 5.0).abs() < 1e-9, "{:?}", r.energies);
    assert!((r.energies[1] - 0.5).abs() < 1e-9, "{:?}", r.energies);
    assert!((r.total_j - 5.5).abs() < 1e-9);
}

/// One step of a random stream.
#[derive(Debug, Clone)]
enum Step {
    /// Advance time by this many µs and read source `k` (0: counter, 1: power).
    Read {
        k: usize,
        dt_us: u32,
    },
    /// The counter source's value jumps by this many µJ (a reset when negative).
    Jump(i64),
    /// The counter stalls for this many reads.
    Stall(u8),
    ReadError(usize),
    Begin(u8),
    End(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..2usize, 1..30_000u32).prop_map(|(k, dt_us)| Step::Read { k, dt_us }),
        1 => (-5_000_000_000i64..5_000_000_000).prop_map(Step::Jump),
        1 => (1..50u8).prop_map(Step::Stall),
        1 => (0..2usize).prop_map(Step::ReadError),
        1 => (0..3u8).prop_map(Step::Begin),
        1 => (0..3u8).prop_map(Step::End),
    ]
}

fn summary_of(fold: &Fold<S, R>) -> Vec<ComponentFold> {
    fold.components().to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn live_equals_replay(
        steps in proptest::collection::vec(step(), 1..400),
        max in prop_oneof![Just(999_999u64), Just(262_143_328_850u64)],
        watts in 1.0f64..200.0,
        bound in proptest::option::of(50.0f64..400.0),
    ) {
        let mut s: Session<S, R> = Session::new();
        let mut live: Fold<S, R> = Fold::default();
        let (mut records, mut live_regions) = (Vec::new(), Vec::new());
        s.add_source(3, counter_info(Component::CpuPackage, max, bound)).unwrap();
        s.add_source(1, power_info()).unwrap();
        let (mut t, mut offset, mut stall) = (0u64, 0i128, 0u8);
        let mut frozen = 0u64;
        for st in steps {
            match st {
                Step::Read { k, dt_us } => {
                    t += u64::from(dt_us) * 1_000;
                    if k == 0 {
                        let v = if stall > 0 {
                            stall -= 1;
                            frozen
                        } else {
                            let truth = (watts * t as f64 / 1e3) as i128 + offset;
                            (truth.rem_euclid(i128::from(max) + 1)) as u64
                        };
                        frozen = v;
                        s.handle_reading(3, t, RawReading::Counter(v)).unwrap();
                    } else {
                        let mw = (watts * 1e3) as u64 + (t / 1_000) % 5_000;
                        s.handle_reading(1, t, RawReading::PowerMilliwatts(mw)).unwrap();
                    }
                }
                Step::Jump(d) => offset += i128::from(d),
                Step::Stall(n) => stall = n,
                Step::ReadError(k) => {
                    let id = if k == 0 { 3 } else { 1 };
                    s.handle_read_error(id, t, ReadErrorKind::Other).unwrap();
                }
                Step::Begin(n) => {
                    let _ = s.handle_marker(t, MarkerKind::Begin, &format!("r{n}"));
                }
                Step::End(n) => {
                    let _ = s.handle_marker(t, MarkerKind::End, &format!("r{n}"));
                }
            }
            drain(&mut s, &mut live, &mut records, &mut live_regions);
        }
        s.finish(t, ea2p_core::format::ExitStatus::Code(0)).unwrap();
        drain(&mut s, &mut live, &mut records, &mut live_regions);
        live.finish();
        while let Some(reg) = live.poll_region() {
            live_regions.push(reg);
        }

        // Replay: the bytes a profile holds, decoded and folded again.
        let mut file = Vec::new();
        let mut buf = [0u8; MAX_FRAME_LEN];
        for r in &records {
            let n = encode(r, &mut buf).unwrap();
            file.extend_from_slice(&buf[..n]);
        }
        let mut replay: Fold<S, R> = Fold::default();
        let mut replay_regions = Vec::new();
        for item in Decoder::new(&file) {
            let r = item.unwrap();
            let _ = replay.handle(&r);
            while let Some(reg) = replay.poll_region() {
                replay_regions.push(reg);
            }
        }
        replay.finish();
        while let Some(reg) = replay.poll_region() {
            replay_regions.push(reg);
        }
        prop_assert_eq!(summary_of(&live), summary_of(&replay));
        prop_assert_eq!(live.duration_ns(), replay.duration_ns());
        prop_assert_eq!(&live_regions, &replay_regions);
        prop_assert_eq!(live.open_regions().count(), replay.open_regions().count());
        // Nothing refused silently: every refused reading is a gap record.
        for c in live.components() {
            let refused = s.live(c.id).unwrap().refused;
            prop_assert_eq!(c.refused(), refused);
            prop_assert!(c.energy_j.is_finite() && c.energy_j >= 0.0);
        }
    }
}
