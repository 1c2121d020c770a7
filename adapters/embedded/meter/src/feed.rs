//! The only place that hands meter readings to ea2p-core.
//!
//! It uses the core's current public API: an [`EnergyTrack`] of power samples (trapezoid energy,
//! gaps, peak). When the measuring session of issue 13 lands in the core, this module is what
//! switches to it; nothing else in the firmware calls the core.
//!
//! Every reading is either pushed or counted: a [`Fault`] or a sample the core refuses marks the
//! next segment as a gap, whose length and interpolated energy the [`Report`] shows.
use ea2p_core::integrate::{EnergyTrack, SeriesKind};
use ea2p_core::units::Nanos;
use embedded_hal::i2c::ErrorKind;

use crate::sensor::{Fault, Reading};

/// Counts of every reading that did not become a point of the track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Anomalies {
    /// I2C transfers that failed.
    pub bus_errors: u64,
    /// Of those, the ones where the chip did not acknowledge.
    pub nacks: u64,
    /// Conversions with the math overflow flag set.
    pub overflow: u64,
    /// Conversions with the shunt voltage at full scale.
    pub clipped: u64,
    /// Reads with no new conversion.
    pub not_ready: u64,
    /// Voltages outside the configured range.
    pub out_of_range: u64,
    /// Samples the core refused (negative power, time not after the previous sample).
    pub rejected: u64,
}

impl Anomalies {
    /// All readings that were not used.
    pub fn total(&self) -> u64 {
        self.bus_errors
            + self.overflow
            + self.clipped
            + self.not_ready
            + self.out_of_range
            + self.rejected
    }
}

/// The energy account of one meter, as the core keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterFeed {
    track: EnergyTrack,
    samples: u64,
    anomalies: Anomalies,
}

/// What the feed reports at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Energy from the first to the last sample, gap segments included (interpolated).
    pub energy_j: f64,
    /// Time from the first to the last sample.
    pub covered_ns: Nanos,
    /// Samples pushed into the core.
    pub samples: u64,
    /// Readings not used, by cause.
    pub anomalies: Anomalies,
    /// Segments that spanned an unused reading or a delay above the gap threshold.
    pub gaps: u64,
    /// Their total duration.
    pub gap_ns: Nanos,
    /// The energy interpolated over them (part of `energy_j`).
    pub gap_energy_j: f64,
    /// Highest sample.
    pub peak_w: f64,
}

impl MeterFeed {
    /// An empty account. A segment longer than `gap_threshold_ns` is a gap even without a fault
    /// (use about 1.5 sampling periods).
    pub const fn new(gap_threshold_ns: Nanos) -> Self {
        Self {
            track: EnergyTrack::new(SeriesKind::PowerSamples, gap_threshold_ns),
            samples: 0,
            anomalies: Anomalies {
                bus_errors: 0,
                nacks: 0,
                overflow: 0,
                clipped: 0,
                not_ready: 0,
                out_of_range: 0,
                rejected: 0,
            },
        }
    }

    /// Accounts one reading taken at `t`.
    pub fn record(&mut self, t: Nanos, reading: &Reading) {
        let fault = match reading {
            Reading::Sample(s) => match self.track.push_power(t, s.watts()) {
                Ok(_) => {
                    self.samples += 1;
                    return;
                }
                Err(_) => {
                    self.anomalies.rejected += 1;
                    None
                }
            },
            Reading::Fault(f) => Some(*f),
        };
        let a = &mut self.anomalies;
        match fault {
            None => {}
            Some(Fault::Bus(kind)) => {
                a.bus_errors += 1;
                if matches!(kind, ErrorKind::NoAcknowledge(_)) {
                    a.nacks += 1;
                }
            }
            Some(Fault::MathOverflow) => a.overflow += 1,
            Some(Fault::Clipped) => a.clipped += 1,
            Some(Fault::NotReady) => a.not_ready += 1,
            Some(Fault::OutOfRange) => a.out_of_range += 1,
        }
        self.track.mark_gap();
    }

    /// The account so far.
    pub fn report(&self) -> Report {
        let (gaps, gap_ns, gap_energy_j) = self.track.gaps();
        Report {
            energy_j: self.track.total_j(),
            covered_ns: self.track.duration_ns(),
            samples: self.samples,
            anomalies: self.anomalies,
            gaps,
            gap_ns,
            gap_energy_j,
            peak_w: self.track.peak_w(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensor::Sample;
    use embedded_hal::i2c::NoAcknowledgeSource;

    const MS: Nanos = 1_000_000;

    fn sample(power_uw: i64) -> Reading {
        Reading::Sample(Sample {
            power_uw,
            current_ua: 0,
            bus_mv: 5_000,
            shunt_10uv: 0,
        })
    }

    #[test]
    fn a_fault_is_counted_and_its_segment_is_a_gap() {
        let mut feed = MeterFeed::new(15 * MS);
        feed.record(0, &sample(2_000_000));
        feed.record(
            10 * MS,
            &Reading::Fault(Fault::Bus(ErrorKind::NoAcknowledge(
                NoAcknowledgeSource::Address,
            ))),
        );
        feed.record(20 * MS, &sample(2_000_000));
        feed.record(30 * MS, &sample(4_000_000));
        let r = feed.report();
        assert_eq!(r.samples, 3);
        assert_eq!(r.anomalies.bus_errors, 1);
        assert_eq!(r.anomalies.nacks, 1);
        assert_eq!(r.anomalies.total(), 1);
        // 2 W over 20 ms (interpolated over the gap), then 2 -> 4 W over 10 ms.
        assert!((r.energy_j - (0.040 + 0.030)).abs() < 1e-12);
        assert_eq!((r.gaps, r.gap_ns), (1, 20 * MS));
        assert!((r.gap_energy_j - 0.040).abs() < 1e-12);
        assert_eq!(r.peak_w, 4.0);
    }

    #[test]
    fn refused_samples_are_counted_not_summed() {
        let mut feed = MeterFeed::new(0);
        feed.record(10 * MS, &sample(1_000_000));
        feed.record(10 * MS, &sample(9_000_000)); // same time
        feed.record(20 * MS, &sample(-1_000_000)); // negative power
        feed.record(30 * MS, &sample(1_000_000));
        let r = feed.report();
        assert_eq!(r.samples, 2);
        assert_eq!(r.anomalies.rejected, 2);
        assert!((r.energy_j - 0.020).abs() < 1e-12);
        assert_eq!(r.gaps, 1, "the refused readings left a gap");
    }

    #[test]
    fn every_fault_kind_has_its_own_count() {
        let mut feed = MeterFeed::new(0);
        let faults = [
            Fault::Bus(ErrorKind::Bus),
            Fault::MathOverflow,
            Fault::Clipped,
            Fault::NotReady,
            Fault::OutOfRange,
        ];
        for (i, f) in faults.iter().enumerate() {
            feed.record(i as Nanos * MS, &Reading::Fault(*f));
        }
        let a = feed.report().anomalies;
        assert_eq!(
            (
                a.bus_errors,
                a.nacks,
                a.overflow,
                a.clipped,
                a.not_ready,
                a.out_of_range
            ),
            (1, 0, 1, 1, 1, 1)
        );
        assert_eq!(feed.report().samples, 0);
    }
}
