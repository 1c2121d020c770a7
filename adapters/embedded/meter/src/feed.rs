//! The only place that hands meter readings to ea2p-core: the core's measuring [`Session`] and
//! its [`Fold`], the same two that `ea2p run`, `ea2p report` and the Python module use.
//!
//! The meter is one power source of the session. Each reading goes in with its time: a sample as
//! [`RawReading::PowerMilliwatts`], a [`Fault`] through [`Session::handle_read_error`] with its
//! [`ReadErrorKind`] ([`fault_kind`]). The session writes a sample or a gap with its reason for
//! every reading, and every record is folded at once. The [`Report`]'s energy, samples,
//! anomalies by reason, gaps and peak power are the fold's, read as the host reads them; the only
//! figures of the feed's own are the meter's diagnosis of each fault ([`Causes`]), finer than
//! the core's reasons, and the count of readings the core could not take (always 0 unless the
//! session or the fold is misused).
//!
//! No allocation: session and fold are fixed-capacity (one source, no region kept open).
use ea2p_core::fold::{ComponentFold, Fold, Tally, DEFAULT_PEAK_WINDOW_NS, REASONS};
use ea2p_core::session::Session;
use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadErrorKind, SourceInfo,
};
use ea2p_core::units::Nanos;
use embedded_hal::i2c::ErrorKind;

use crate::sensor::{Fault, Reading};

/// The core's reasons for a gap, by which the [`Report`] counts anomalies.
pub use ea2p_core::format::GapReason;
/// The records the session writes and the fold takes (their size sets the feed's).
pub use ea2p_core::format::Record;
/// How many records the session holds between polls.
pub use ea2p_core::session::OUTPUT_CAPACITY;

/// The meter's id in the session and the fold.
pub const SOURCE: u16 = 0;

/// Regions session and fold hold at once: the firmware marks none; one slot keeps them small.
const REGIONS: usize = 1;

/// The meter's own diagnosis of every reading that did not become a sample (the core knows them
/// by the coarser [`ReadErrorKind`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Causes {
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
    /// Conversions whose power reads negative (the driver's `i16` power register, README).
    pub negative: u64,
}

impl Causes {
    /// All readings the meter diagnosed as faults.
    pub fn total(&self) -> u64 {
        self.bus_errors
            + self.overflow
            + self.clipped
            + self.not_ready
            + self.out_of_range
            + self.negative
    }
}

/// How the core records a meter fault: a value that is there but wrong (overflowed, clipped,
/// out of range, negative) is `Malformed`; a read that gave no value (a failed transfer, no new
/// conversion) is `Other`.
pub const fn fault_kind(fault: Fault) -> ReadErrorKind {
    match fault {
        Fault::Bus(_) | Fault::NotReady => ReadErrorKind::Other,
        Fault::MathOverflow | Fault::Clipped | Fault::OutOfRange => ReadErrorKind::Malformed,
    }
}

/// The INA219 as the session's power source: the board's input rail, so `Platform` (a total:
/// the fold does not add it to other components).
pub fn source_info(conversion_ns: Nanos) -> SourceInfo {
    SourceInfo {
        component: Component::Platform,
        index: 0,
        provenance: Provenance::Measured,
        quantity: Quantity::Power { averaging_ns: 0 },
        update_period_ns: conversion_ns,
        max_power_w: None,
        name: truncated("ina219"),
    }
}

/// The energy account of one meter, kept by the core's session and fold.
#[derive(Debug, Clone)]
pub struct MeterFeed {
    session: Session<1, REGIONS>,
    fold: Fold<1, REGIONS>,
    causes: Causes,
    readings: u64,
    not_taken: u64,
}

/// What the feed reports: the fold's figures for the meter, and the meter's diagnosis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Energy from the first to the last sample, joules (the fold's: the last sample's
    /// cumulative energy; a gap's energy is the trapezoid over it).
    pub energy_j: f64,
    /// Time from the first to the last sample.
    pub covered_ns: Nanos,
    /// Samples the core accepted.
    pub samples: u64,
    /// Gap records per reason, in [`GapReason::ALL`] order, with the time each reason covers.
    pub anomalies: [Tally; REASONS],
    /// Runs of consecutive gaps.
    pub gap_runs: u64,
    /// Time from the start of each run of gaps to the next sample.
    pub without_readings_ns: Nanos,
    /// Highest power averaged over a window of at least `peak_window_ns`.
    pub peak_w: f64,
    /// The window the peak is taken over.
    pub peak_window_ns: Nanos,
    /// The meter's diagnosis of the readings that were not samples.
    pub causes: Causes,
    /// Readings handed to the feed.
    pub readings: u64,
    /// Readings or records the session or the fold could not take (0 unless misused).
    pub not_taken: u64,
}

impl Report {
    /// The anomalies of `reason`.
    pub fn anomaly(&self, reason: GapReason) -> Tally {
        self.anomalies[reason.index()]
    }

    /// Gap records of every reason: the readings the core did not sum.
    pub fn refused(&self) -> u64 {
        self.anomalies.iter().map(|t| t.count).sum()
    }
}

impl MeterFeed {
    /// An account of a meter whose conversions take `conversion_ns` (the fold's peak window is
    /// at least that, and at least 10 ms).
    pub fn new(conversion_ns: Nanos) -> Self {
        let mut feed = Self {
            session: Session::new(),
            fold: Fold::new(DEFAULT_PEAK_WINDOW_NS),
            causes: Causes::default(),
            readings: 0,
            not_taken: 0,
        };
        // An empty session has room for its one source and its declaration.
        if feed
            .session
            .add_source(SOURCE, source_info(conversion_ns))
            .is_err()
        {
            feed.not_taken += 1;
        }
        feed.fold_records();
        feed
    }

    /// Accounts one reading taken at `t`.
    pub fn record(&mut self, t: Nanos, reading: &Reading) {
        self.readings += 1;
        let handled = match *reading {
            Reading::Sample(s) if s.power_uw >= 0 => {
                // Whole milliwatts: `Ina219::new` only takes a power step of whole milliwatts.
                let mw = (s.power_uw as u64 + 500) / 1000;
                self.session
                    .handle_reading(SOURCE, t, RawReading::PowerMilliwatts(mw))
            }
            Reading::Sample(_) => {
                self.causes.negative += 1;
                self.session
                    .handle_read_error(SOURCE, t, ReadErrorKind::Malformed)
            }
            Reading::Fault(f) => {
                self.count(f);
                self.session.handle_read_error(SOURCE, t, fault_kind(f))
            }
        };
        // The queue is emptied after every call, and each call writes at most two records.
        if handled.is_err() {
            self.not_taken += 1;
        }
        self.fold_records();
    }

    fn count(&mut self, fault: Fault) {
        let c = &mut self.causes;
        match fault {
            Fault::Bus(kind) => {
                c.bus_errors += 1;
                if matches!(kind, ErrorKind::NoAcknowledge(_)) {
                    c.nacks += 1;
                }
            }
            Fault::MathOverflow => c.overflow += 1,
            Fault::Clipped => c.clipped += 1,
            Fault::NotReady => c.not_ready += 1,
            Fault::OutOfRange => c.out_of_range += 1,
        }
    }

    /// Folds every record the session wrote (on a board with a profile, this is where they would
    /// also be framed and stored).
    fn fold_records(&mut self) {
        while let Some(r) = self.session.poll_record() {
            if self.fold.handle(&r).is_err() {
                self.not_taken += 1;
            }
        }
    }

    /// The account as if the run ended now: the fold's figures after its `finish` (on a copy, so
    /// that the run can go on).
    pub fn report(&self) -> Report {
        let mut fold = self.fold.clone();
        fold.finish();
        let c: Option<&ComponentFold> = fold.components().first();
        Report {
            energy_j: c.map_or(0.0, |c| c.energy_j),
            covered_ns: c.and_then(|c| Some(c.last_t? - c.first_t?)).unwrap_or(0),
            samples: c.map_or(0, |c| c.samples),
            anomalies: c.map_or([Tally::default(); REASONS], |c| c.anomalies),
            gap_runs: c.map_or(0, |c| c.gap_runs),
            without_readings_ns: c.map_or(0, |c| c.without_readings_ns),
            peak_w: c.map_or(0.0, |c| c.peak_w),
            peak_window_ns: c.map_or(0, |c| c.peak_window_ns),
            causes: self.causes,
            readings: self.readings,
            not_taken: self.not_taken + u64::from(c.is_none()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensor::Sample;
    use embedded_hal::i2c::NoAcknowledgeSource;

    const MS: Nanos = 1_000_000;
    const CONVERSION: Nanos = 532_000;

    fn sample(power_uw: i64) -> Reading {
        Reading::Sample(Sample {
            power_uw,
            current_ua: 0,
            bus_mv: 5_000,
            shunt_10uv: 0,
        })
    }

    const OTHER: GapReason = GapReason::ReadError(ReadErrorKind::Other);
    const MALFORMED: GapReason = GapReason::ReadError(ReadErrorKind::Malformed);

    #[test]
    fn a_fault_is_a_gap_with_its_reason_and_its_energy_is_interpolated() {
        let mut feed = MeterFeed::new(CONVERSION);
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
        assert_eq!((r.samples, r.readings, r.not_taken), (3, 4, 0));
        assert_eq!((r.causes.bus_errors, r.causes.nacks), (1, 1));
        assert_eq!(r.causes.total(), 1);
        // The gap runs from the last sample to the failed read; no reading for 20 ms.
        assert_eq!(
            r.anomaly(OTHER),
            Tally {
                count: 1,
                covered_ns: 10 * MS
            }
        );
        assert_eq!(r.refused(), 1);
        assert_eq!((r.gap_runs, r.without_readings_ns), (1, 20 * MS));
        // 2 W over 20 ms (the trapezoid over the gap), then 2 -> 4 W over 10 ms.
        assert!((r.energy_j - (0.040 + 0.030)).abs() < 1e-12);
        assert_eq!(r.covered_ns, 30 * MS);
        // 10 ms windows: the highest is the 2 -> 4 W segment's 3 W.
        assert!((r.peak_w - 3.0).abs() < 1e-12, "{}", r.peak_w);
        assert_eq!(r.peak_window_ns, 10 * MS);
    }

    #[test]
    fn refused_samples_are_gaps_not_sums() {
        let mut feed = MeterFeed::new(CONVERSION);
        feed.record(10 * MS, &sample(1_000_000));
        feed.record(10 * MS, &sample(9_000_000)); // same time
        feed.record(20 * MS, &sample(-1_000_000)); // negative power
        feed.record(30 * MS, &sample(1_000_000));
        let r = feed.report();
        assert_eq!(r.samples, 2);
        assert_eq!(r.anomaly(GapReason::OutOfOrder).count, 1);
        assert_eq!(r.anomaly(MALFORMED).count, 1);
        assert_eq!(r.causes.negative, 1);
        assert!((r.energy_j - 0.020).abs() < 1e-12);
        assert_eq!(r.gap_runs, 1, "the refused readings are one run of gaps");
        assert_eq!(r.without_readings_ns, 20 * MS);
    }

    #[test]
    fn every_fault_kind_has_its_cause_and_its_reason() {
        let mut feed = MeterFeed::new(CONVERSION);
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
        let r = feed.report();
        let c = r.causes;
        assert_eq!(
            (
                c.bus_errors,
                c.nacks,
                c.overflow,
                c.clipped,
                c.not_ready,
                c.out_of_range
            ),
            (1, 0, 1, 1, 1, 1)
        );
        assert_eq!(r.anomaly(OTHER).count, 2, "bus error, no conversion");
        assert_eq!(r.anomaly(MALFORMED).count, 3, "overflow, clipped, range");
        assert_eq!((r.samples, r.refused(), r.energy_j), (0, 5, 0.0));
        assert_eq!(r.gap_runs, 1, "open until the end");
    }

    #[test]
    fn power_is_handed_over_in_whole_milliwatts_rounded() {
        let mut feed = MeterFeed::new(CONVERSION);
        feed.record(0, &sample(2_000_400));
        feed.record(1_000 * MS, &sample(2_000_600));
        let r = feed.report();
        // 2.000 W and 2.001 W.
        assert!((r.energy_j - 2.0005).abs() < 1e-12, "{}", r.energy_j);
    }

    #[test]
    fn the_peak_window_is_at_least_the_conversion_time() {
        let mut feed = MeterFeed::new(68 * MS);
        feed.record(0, &sample(1_000_000));
        feed.record(100 * MS, &sample(1_000_000));
        feed.record(200 * MS, &sample(1_000_000));
        assert_eq!(feed.report().peak_window_ns, 68 * MS);
    }
}
