//! The sampler against counters that misbehave as hardware does: each fake computes its value
//! from the time it is read (the most faithful fake), then stalls, resets or runs past its range.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadError, Source, SourceInfo,
};
use ea2p_core::units::Nanos;
use ea2p_sampler::discover::Found;
use ea2p_sampler::{Monitor, MonitorOptions, Summary};

/// What the fake counter does besides counting `watts`.
#[derive(Clone, Copy)]
enum Misbehaviour {
    None,
    /// Frozen from 200 ms to 300 ms after the start, then the true value again.
    Stall,
    /// Restarts from zero at 300 ms (a driver reload), from the middle of its range.
    Reset,
}

struct TimeCounter {
    info: SourceInfo,
    start: Instant,
    watts: f64,
    max: u64,
    what: Misbehaviour,
}

impl TimeCounter {
    fn new(watts: f64, max: u64, max_power_w: Option<f64>, what: Misbehaviour) -> Self {
        TimeCounter {
            info: SourceInfo {
                component: Component::CpuPackage,
                index: 0,
                provenance: Provenance::Measured,
                quantity: Quantity::EnergyCounter {
                    joules_per_tick: 1e-6,
                    max_ticks: Some(max),
                },
                update_period_ns: 1_000_000,
                max_power_w,
                name: truncated("time counter"),
            },
            start: Instant::now(),
            watts,
            max,
            what,
        }
    }
}

impl Source for TimeCounter {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn read(&mut self, _now: Nanos) -> Result<RawReading, ReadError> {
        let ms = self.start.elapsed().as_secs_f64() * 1e3;
        let (t_ms, base) = match self.what {
            Misbehaviour::Stall if (200.0..300.0).contains(&ms) => (200.0, 0),
            Misbehaviour::Reset if ms >= 300.0 => (ms - 300.0, 0),
            // The reset counter starts mid-range, so going back to zero is no wrap.
            Misbehaviour::Reset => (ms, self.max / 2),
            _ => (ms, 0),
        };
        let uj = base + (self.watts * t_ms * 1e3) as u64;
        Ok(RawReading::Counter(uj % (self.max + 1)))
    }
}

fn run(counter: TimeCounter, for_ms: u64) -> Summary {
    let found = Found {
        sources: vec![Box::new(counter)],
        notes: Vec::new(),
        gpu_probe: None,
    };
    let monitor = Monitor::start_with(
        MonitorOptions::default(),
        found,
        Arc::new(AtomicU32::new(std::process::id())),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(for_ms));
    monitor.finish(None).0
}

const RAPL_MAX: u64 = 262_143_328_849;

#[test]
fn a_counter_that_stalls_100_ms_then_jumps_loses_nothing() {
    let s = run(
        TimeCounter::new(40.0, RAPL_MAX, Some(60.0), Misbehaviour::Stall),
        600,
    );
    let c = &s.components[0];
    // avg_w is the energy over the time between the first and the last reading.
    assert!((c.avg_w - 40.0).abs() < 0.005 * 40.0, "{c:?}");
    assert_eq!(c.read_errors, 0, "{c:?}");
    assert!(c.anomalies.is_empty(), "{c:?}");
    assert_eq!(c.without_readings_s, 0.0);
    // The jump is spread over the stall: the peak stays the steady power.
    assert!((c.peak_w - 40.0).abs() < 0.05 * 40.0, "{c:?}");
}

#[test]
fn peak_power_at_1_ms_on_a_steady_counter_is_the_steady_power() {
    let s = run(
        TimeCounter::new(40.0, RAPL_MAX, Some(125.0), Misbehaviour::None),
        500,
    );
    let c = &s.components[0];
    assert!((c.peak_w - 40.0).abs() < 0.05 * 40.0, "{c:?}");
    assert!(c.peak_window_s >= 0.010, "{c:?}");
    assert!(s
        .table()
        .contains("peak W: highest average over 10 ms windows"));
}

#[test]
fn a_reset_is_flagged_and_not_summed() {
    // No power bound: only the wrap-versus-reset rule stands between a reset and +131 kJ.
    let s = run(
        TimeCounter::new(10.0, RAPL_MAX, None, Misbehaviour::Reset),
        600,
    );
    let c = &s.components[0];
    assert_eq!(c.anomalies["counter-reset"].count, 1, "{c:?}");
    assert_eq!(c.wraps, 0);
    // 10 W for the run, less the one interval lost at the reset.
    assert!((c.avg_w - 10.0).abs() < 0.05 * 10.0, "{c:?}");
    assert!(s.table().contains("package-0!"), "{}", s.table());
    assert!(s.table().contains("counter-reset"), "{}", s.table());
}

#[test]
fn a_counter_past_its_range_is_flagged_not_summed() {
    // Declared range 1 J (1e6 uJ) at 10 W: past it after 100 ms, and it never wraps.
    let mut counter = TimeCounter::new(10.0, 1_000_000, None, Misbehaviour::None);
    counter.max = u64::MAX - 1; // the fake itself counts on past the declared range
    let s = run(counter, 400);
    let c = &s.components[0];
    let oor = c.anomalies["out-of-range"];
    assert!(oor.count > 100, "{c:?}");
    assert!(oor.covered_s > 0.2, "{c:?}");
    assert!(c.energy_j <= 1.0, "nothing past the range is summed: {c:?}");
    assert!(c.without_readings_s > 0.2, "{c:?}");
}
