//! The sampling loop, and the check the firmware applies to its result.
use ea2p_core::format::GapReason;
use ea2p_core::units::Nanos;
use embedded_hal::i2c::I2c;

use crate::feed::{MeterFeed, Report};
use crate::sensor::Ina219;
use crate::sim::{Injected, Script};

/// When to take the next sample. Blocks (on a board: waits for a timer) and returns the time of
/// the sample, or `None` when the run is over.
pub trait SampleClock {
    /// Waits for the next sample time.
    fn next_sample(&mut self) -> Option<Nanos>;
}

/// Reads the meter at every tick of `clock` and accounts each reading; returns the number of
/// readings taken.
pub fn sample_until_done<I2C: I2c, C: SampleClock>(
    meter: &mut Ina219<I2C>,
    clock: &mut C,
    feed: &mut MeterFeed,
) -> u64 {
    let mut readings = 0;
    while let Some(t) = clock.next_sample() {
        let reading = meter.read();
        feed.record(t, &reading);
        readings += 1;
    }
    readings
}

/// The largest relative difference between measured and expected energy that passes.
pub const TOLERANCE: f64 = 1e-3;

/// A run's result against its script.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The script's exact energy.
    pub expected_j: f64,
    /// (measured - expected) / expected.
    pub relative_error: f64,
    /// Every reading the loop took is either a sample of the fold or a gap record, and the core
    /// took every reading and record.
    pub all_accounted: bool,
    /// The meter's fault diagnosis and the fold's gaps by reason are exactly what the script
    /// injected.
    pub faults_counted: bool,
}

impl Verdict {
    /// Compares `report`, after `readings` readings, with what `script` says happened.
    pub fn of(script: &Script, report: &Report, readings: u64) -> Self {
        let expected_j = script.expected_energy_j();
        let c = &report.causes;
        let causes_counted = c.bus_errors == script.injected(Injected::Nack)
            && c.nacks == c.bus_errors
            && c.overflow == script.injected(Injected::Overflow)
            && c.clipped == script.injected(Injected::Clipped)
            && c.not_ready == script.injected(Injected::NoConversion)
            && c.out_of_range == 0
            && c.negative == 0;
        let reasons_counted = GapReason::ALL
            .iter()
            .all(|&reason| report.anomaly(reason).count == script.expected_gaps(reason));
        Self {
            expected_j,
            relative_error: (report.energy_j - expected_j) / expected_j,
            all_accounted: readings == u64::from(script.samples())
                && report.readings == readings
                && report.samples + report.refused() == readings
                && report.not_taken == 0,
            faults_counted: causes_counted && reasons_counted,
        }
    }

    /// True when the energy is within [`TOLERANCE`] and every reading is accounted as scripted.
    pub fn passed(&self) -> bool {
        self.relative_error.abs() <= TOLERANCE && self.all_accounted && self.faults_counted
    }
}
