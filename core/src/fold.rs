//! The one fold from profile records to the figures a user reads: per component (energy,
//! average and peak power, every anomaly with the time it covers), per region, and the run's
//! length.
//!
//! `ea2p run` feeds it the records its [`Session`](crate::session::Session) writes, as it writes
//! them; `ea2p report` feeds it the records it reads back from the file. Same records, same fold:
//! the live summary and the replay agree exactly, by construction.
//!
//! - **Energy** of a component is its last sample's cumulative energy.
//! - **Region boundaries** are placed at their exact time, inside the segment of readings around
//!   them: linear for counters (only the segment's total is known), quadratic for power samples
//!   (power linear between samples). For counters a segment runs between readings whose energies
//!   differ: a stalled counter's repeated readings carry no information, and the energy of the
//!   jump that ends a stall is spread over the whole stall. A boundary is placed as soon as the
//!   reading that closes its segment arrives ([`Fold::poll_region`] then returns the region), or
//!   at [`Fold::finish`] at the component's last energy.
//! - **Peak power** is the highest average over windows of at least
//!   `max(min window, the source's update period)` (10 ms by default), each from one reading to
//!   the first at least a window later: reading a counter faster than it updates cannot alias
//!   into a peak above the truth. A run shorter than one window reports its average.
//! - **Anomalies**: every [`Gap`] record counts under its reason, with the time it covers, and
//!   every run of gaps counts once with the time until the next accepted reading.

use heapless::{Deque, String, Vec};

use crate::format::{Gap, GapReason, MarkerKind, Record, Sample, SampleFlags, REGION_NAME_LEN};
use crate::integrate::{energy_at, EnergyPoint, SeriesKind};
use crate::source::SourceInfo;
use crate::units::{secs, Nanos};

/// Shortest peak-power window by default: 10 ms.
pub const DEFAULT_PEAK_WINDOW_NS: Nanos = 10_000_000;

/// Distinct readings kept per component to place boundaries that arrive after later readings.
pub const HISTORY: usize = 16;

/// Number of anomaly reasons tallied ([`GapReason::ALL`]).
pub const REASONS: usize = GapReason::ALL.len();

/// Count and time of one anomaly reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Gap records of this reason.
    pub count: u64,
    /// Time they cover, overlaps counted once.
    pub covered_ns: Nanos,
}

/// What the fold knows of one component.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentFold {
    /// The source's id in the profile.
    pub id: u16,
    /// Its declaration.
    pub info: SourceInfo,
    /// How its energy behaves between readings.
    pub kind: SeriesKind,
    /// Cumulative energy at the last sample, joules.
    pub energy_j: f64,
    /// First sample's time.
    pub first_t: Option<Nanos>,
    /// Last sample's time.
    pub last_t: Option<Nanos>,
    /// Samples read.
    pub samples: u64,
    /// Highest windowed power, watts.
    pub peak_w: f64,
    /// The window the peak is taken over (the run's span when shorter than one window).
    pub peak_window_ns: Nanos,
    /// Counter wraps handled (not anomalies: the energy is exact).
    pub wraps: u64,
    /// Per reason, in [`GapReason::ALL`] order.
    pub anomalies: [Tally; REASONS],
    /// Runs of consecutive gaps.
    pub gap_runs: u64,
    /// Time from the start of each run of gaps to the next accepted reading (or the end).
    pub without_readings_ns: Nanos,
    history: Deque<EnergyPoint, HISTORY>,
    window_start: Option<EnergyPoint>,
    window_done: bool,
    open_gap: Option<(Nanos, Nanos)>,
}

impl ComponentFold {
    /// Average power over the time the component was read, watts (0 before two samples).
    pub fn avg_w(&self) -> f64 {
        match (self.first_t, self.last_t) {
            (Some(a), Some(b)) if b > a => self.energy_j / secs(b - a),
            _ => 0.0,
        }
    }

    /// Readings refused or failed, all reasons.
    pub fn refused(&self) -> u64 {
        self.anomalies.iter().map(|t| t.count).sum()
    }

    /// True when any reading was refused or failed.
    pub fn has_anomalies(&self) -> bool {
        self.refused() > 0
    }

    /// The latest instant whose energy the readings so far determine.
    fn settled_until(&self) -> Option<Nanos> {
        self.history.back().map(|p| p.t)
    }

    /// Cumulative energy at `t <= settled_until()`.
    fn energy_at(&self, t: Nanos) -> f64 {
        let mut buf = [EnergyPoint {
            t: 0,
            energy_j: 0.0,
            power_w: 0.0,
            after_gap: false,
        }; HISTORY];
        let n = self.history.len();
        for (slot, p) in buf.iter_mut().zip(self.history.iter()) {
            *slot = *p;
        }
        let pts = &buf[..n];
        match pts.first() {
            None => 0.0,
            Some(f) if t <= f.t => f.energy_j,
            Some(_) => energy_at(pts, self.kind, t).unwrap_or(self.energy_j),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bound {
    /// The region has not ended yet.
    Unset,
    Pending(Nanos),
    Done(f64),
}

#[derive(Debug, Clone, PartialEq)]
struct RegionFold<const S: usize> {
    id: u32,
    name: String<REGION_NAME_LEN>,
    begin_t: Nanos,
    end_t: Option<Nanos>,
    begin: Vec<Bound, S>,
    end: Vec<Bound, S>,
}

impl<const S: usize> RegionFold<S> {
    fn complete(&self) -> bool {
        self.end_t.is_some()
            && self
                .begin
                .iter()
                .chain(self.end.iter())
                .all(|b| matches!(b, Bound::Done(_)))
    }
}

/// A region whose energy is known.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionEnergy<const S: usize> {
    /// Region id from its markers.
    pub id: u32,
    /// Its name.
    pub name: String<REGION_NAME_LEN>,
    /// Begin time.
    pub begin_t: Nanos,
    /// End time.
    pub end_t: Nanos,
    /// Energy per component, in declaration order, joules.
    pub energies: Vec<f64, S>,
    /// Sum over the components that are not nested in another, joules.
    pub total_j: f64,
}

/// Why [`Fold::handle`] could not take a record whole (the rest of the record was used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldError {
    /// A source declaration beyond the fold's capacity: its records are ignored.
    TooManySources,
    /// A region begun while the fold held its capacity of regions open or unpolled: that region
    /// is not measured (it is counted in [`Fold::regions_dropped`]).
    TooManyRegions,
}

impl core::fmt::Display for FoldError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FoldError::TooManySources => "more sources than the fold holds",
            FoldError::TooManyRegions => "more regions open at once than the fold holds",
        })
    }
}

/// The fold over up to `S` sources and `R` regions open (or ended and not yet polled) at once.
#[derive(Debug, Clone)]
pub struct Fold<const S: usize, const R: usize> {
    min_window_ns: Nanos,
    sources: Vec<ComponentFold, S>,
    regions: Vec<RegionFold<S>, R>,
    regions_dropped: u64,
    t_max: Nanos,
    end: Option<crate::format::End>,
    finished: bool,
}

impl<const S: usize, const R: usize> Default for Fold<S, R> {
    fn default() -> Self {
        Self::new(DEFAULT_PEAK_WINDOW_NS)
    }
}

impl<const S: usize, const R: usize> Fold<S, R> {
    /// An empty fold taking peak power over windows of at least `min_window_ns`.
    pub const fn new(min_window_ns: Nanos) -> Self {
        Self {
            min_window_ns,
            sources: Vec::new(),
            regions: Vec::new(),
            regions_dropped: 0,
            t_max: 0,
            end: None,
            finished: false,
        }
    }

    /// The components, in declaration order.
    pub fn components(&self) -> &[ComponentFold] {
        &self.sources
    }

    /// Regions not measured because the fold was full.
    pub fn regions_dropped(&self) -> u64 {
        self.regions_dropped
    }

    /// The end record, when one was seen.
    pub fn end(&self) -> Option<&crate::format::End> {
        self.end.as_ref()
    }

    /// The run's length: the end record's time, or the latest time seen.
    pub fn duration_ns(&self) -> Nanos {
        self.end.map_or(self.t_max, |e| e.t_ns.max(self.t_max))
    }

    /// Names of regions begun and not ended, in begin order.
    pub fn open_regions(&self) -> impl Iterator<Item = &str> + '_ {
        self.regions
            .iter()
            .filter(|r| r.end_t.is_none())
            .map(|r| r.name.as_str())
    }

    /// Folds one record in.
    pub fn handle(&mut self, record: &Record) -> Result<(), FoldError> {
        match record {
            Record::Source(d) => self.declare(d.id, &d.info)?,
            Record::Sample(s) => self.sample(s),
            Record::Gap(g) => self.gap(g),
            Record::Marker(m) => {
                self.t_max = self.t_max.max(m.t_ns);
                match m.kind {
                    MarkerKind::Begin => self.begin(m.region, &m.name, m.t_ns)?,
                    MarkerKind::End => self.end_region(m.region, m.t_ns),
                }
            }
            Record::End(e) => self.end = Some(*e),
            Record::Header(_) | Record::SourceTotal(_) => {}
        }
        Ok(())
    }

    fn declare(&mut self, id: u16, info: &SourceInfo) -> Result<(), FoldError> {
        if self.sources.iter().any(|s| s.id == id) {
            return Ok(());
        }
        let kind = if info.counter_spec().is_some() {
            SeriesKind::Counter
        } else {
            SeriesKind::PowerSamples
        };
        let c = ComponentFold {
            id,
            info: info.clone(),
            kind,
            energy_j: 0.0,
            first_t: None,
            last_t: None,
            samples: 0,
            peak_w: 0.0,
            peak_window_ns: self.min_window_ns.max(info.update_period_ns),
            wraps: 0,
            anomalies: [Tally::default(); REASONS],
            gap_runs: 0,
            without_readings_ns: 0,
            history: Deque::new(),
            window_start: None,
            window_done: false,
            open_gap: None,
        };
        self.sources
            .push(c)
            .map_err(|_| FoldError::TooManySources)?;
        // A source declared after a boundary had no energy before it.
        for r in self.regions.iter_mut() {
            let _ = r.begin.push(Bound::Done(0.0));
            let _ = r.end.push(if r.end_t.is_some() {
                Bound::Done(0.0)
            } else {
                Bound::Unset
            });
        }
        Ok(())
    }

    fn sample(&mut self, smp: &Sample) {
        self.t_max = self.t_max.max(smp.t_ns);
        let Some(pos) = self.sources.iter().position(|s| s.id == smp.source) else {
            return;
        };
        let c = &mut self.sources[pos];
        if let Some((from, _)) = c.open_gap.take() {
            c.gap_runs += 1;
            c.without_readings_ns += smp.t_ns.saturating_sub(from);
        }
        let p = EnergyPoint {
            t: smp.t_ns,
            energy_j: smp.energy_j,
            power_w: f64::from(smp.power_w),
            after_gap: false,
        };
        let restart =
            smp.flags.contains(SampleFlags::RESET) || smp.flags.contains(SampleFlags::REJECTED);
        if smp.flags.contains(SampleFlags::WRAP) {
            c.wraps += 1;
        }
        c.samples += 1;
        c.first_t.get_or_insert(smp.t_ns);
        c.last_t = Some(smp.t_ns);
        c.energy_j = smp.energy_j;
        // A counter's repeated value is no news: the segment goes on from where it was first read.
        let repeated = c.kind == SeriesKind::Counter
            && !restart
            && c.history.back().is_some_and(|b| b.energy_j == p.energy_j);
        if repeated || c.history.back().is_some_and(|b| p.t <= b.t) {
            return;
        }
        if c.history.is_full() {
            c.history.pop_front();
        }
        let _ = c.history.push_back(p);
        match c.window_start {
            Some(ws) if !restart => {
                if p.t - ws.t >= c.peak_window_ns {
                    let w = (p.energy_j - ws.energy_j) / secs(p.t - ws.t);
                    c.peak_w = c.peak_w.max(w);
                    c.window_done = true;
                    c.window_start = Some(p);
                }
            }
            _ => c.window_start = Some(p),
        }
        // Boundaries now inside the readings can be placed.
        let c = &self.sources[pos];
        for r in self.regions.iter_mut() {
            for b in [&mut r.begin[pos], &mut r.end[pos]] {
                if let Bound::Pending(t) = *b {
                    if t <= p.t {
                        *b = Bound::Done(c.energy_at(t));
                    }
                }
            }
        }
    }

    fn gap(&mut self, g: &Gap) {
        self.t_max = self.t_max.max(g.to_ns);
        let Some(c) = self.sources.iter_mut().find(|s| s.id == g.source) else {
            return;
        };
        let added = match c.open_gap.as_mut() {
            Some((_, to)) => {
                let added = g.to_ns.saturating_sub(*to);
                *to = (*to).max(g.to_ns);
                added
            }
            None => {
                c.open_gap = Some((g.from_ns, g.to_ns.max(g.from_ns)));
                g.to_ns.saturating_sub(g.from_ns)
            }
        };
        let t = &mut c.anomalies[g.reason.index()];
        t.count += 1;
        t.covered_ns += added;
    }

    fn begin(&mut self, id: u32, name: &str, t: Nanos) -> Result<(), FoldError> {
        let mut r = RegionFold {
            id,
            name: crate::source::truncated(name),
            begin_t: t,
            end_t: None,
            begin: Vec::new(),
            end: Vec::new(),
        };
        for c in &self.sources {
            let b = match c.settled_until() {
                Some(s) if s >= t => Bound::Done(c.energy_at(t)),
                _ => Bound::Pending(t),
            };
            let _ = r.begin.push(b);
            let _ = r.end.push(Bound::Unset);
        }
        if self.regions.push(r).is_err() {
            self.regions_dropped += 1;
            return Err(FoldError::TooManyRegions);
        }
        Ok(())
    }

    fn end_region(&mut self, id: u32, t: Nanos) {
        let Some(r) = self
            .regions
            .iter_mut()
            .find(|r| r.id == id && r.end_t.is_none())
        else {
            return;
        };
        r.end_t = Some(t);
        for (c, b) in self.sources.iter().zip(r.end.iter_mut()) {
            *b = match c.settled_until() {
                Some(s) if s >= t => Bound::Done(c.energy_at(t)),
                _ => Bound::Pending(t),
            };
        }
    }

    /// The next region whose energy is known, earliest end first.
    pub fn poll_region(&mut self) -> Option<RegionEnergy<S>> {
        let k = self
            .regions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.complete())
            .min_by_key(|(_, r)| r.end_t)
            .map(|(k, _)| k)?;
        let r = self.regions.remove(k);
        let mut energies = Vec::new();
        let mut total_j = 0.0;
        for ((b, e), c) in r.begin.iter().zip(&r.end).zip(&self.sources) {
            let (Bound::Done(b), Bound::Done(e)) = (b, e) else {
                continue;
            };
            let de = (e - b).max(0.0);
            let _ = energies.push(de);
            if !c.info.component.is_nested() {
                total_j += de;
            }
        }
        Some(RegionEnergy {
            id: r.id,
            name: r.name,
            begin_t: r.begin_t,
            end_t: r.end_t.unwrap_or(r.begin_t),
            energies,
            total_j,
        })
    }

    /// Region `id` as it would be measured if the stream ended now: boundaries not placed yet
    /// take the component's last energy, as [`Fold::finish`] does. `None` if the region is not
    /// held (never begun, dropped, or already polled).
    pub fn peek_region(&self, id: u32) -> Option<RegionEnergy<S>> {
        let r = self.regions.iter().find(|r| r.id == id)?;
        let mut energies = Vec::new();
        let mut total_j = 0.0;
        for ((b, e), c) in r.begin.iter().zip(&r.end).zip(&self.sources) {
            let at = |x: &Bound| match x {
                Bound::Done(v) => *v,
                _ => c.energy_j,
            };
            let de = (at(e) - at(b)).max(0.0);
            let _ = energies.push(de);
            if !c.info.component.is_nested() {
                total_j += de;
            }
        }
        Some(RegionEnergy {
            id: r.id,
            name: r.name.clone(),
            begin_t: r.begin_t,
            end_t: r.end_t.unwrap_or(self.t_max),
            energies,
            total_j,
        })
    }

    /// The stream is over: boundaries after a component's last reading take its last energy,
    /// gaps still open run to the end, and a component read for less than one window takes its
    /// average as its peak. Call once, then poll the remaining regions.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let end = self.duration_ns();
        for c in self.sources.iter_mut() {
            if let Some((from, _)) = c.open_gap.take() {
                c.gap_runs += 1;
                c.without_readings_ns += end.saturating_sub(from);
            }
            if !c.window_done {
                if let (Some(a), Some(b)) = (c.first_t, c.last_t) {
                    if b > a {
                        c.peak_w = c.energy_j / secs(b - a);
                        c.peak_window_ns = b - a;
                    }
                }
            }
        }
        for r in self.regions.iter_mut() {
            let ended = r.end_t.is_some();
            for (c, (b, e)) in self
                .sources
                .iter()
                .zip(r.begin.iter_mut().zip(r.end.iter_mut()))
            {
                if let Bound::Pending(_) = b {
                    *b = Bound::Done(c.energy_j);
                }
                if ended && matches!(e, Bound::Pending(_)) {
                    *e = Bound::Done(c.energy_j);
                }
            }
        }
    }
}

impl core::error::Error for FoldError {}
