//! The measuring session: raw readings in, profile records out, without a clock, a thread or a
//! file, in the manner of quinn-proto's `Connection`.
//!
//! A [`Session`] holds every source's counter or power track and the open regions. Its methods
//! come in four kinds:
//! - getters (`&self`): [`Session::live`], the live totals an exporter or a binding shows;
//! - `handle_*`: something happened outside: a reading ([`Session::handle_reading`]), a failed read
//!   ([`Session::handle_read_error`]), a region boundary ([`Session::handle_marker`]);
//! - mutators: [`Session::add_source`], [`Session::finish`];
//! - [`Session::poll_record`]: the records the caller must write to the profile (and feed to the
//!   [`Fold`](crate::fold::Fold)), to be called after every handle or mutate until it returns
//!   `None`.
//!
//! Every reading becomes records, and every anomaly becomes a [`Gap`] with its reason: a reading
//! that is refused is never dropped silently. The caller owns the clock: `now` is passed in.
//!
//! ```
//! use ea2p_core::format::{GapReason, Record};
//! use ea2p_core::session::Session;
//! use ea2p_core::source::{truncated, Component, Provenance, Quantity, RawReading, SourceInfo};
//!
//! let info = SourceInfo {
//!     component: Component::CpuPackage,
//!     index: 0,
//!     provenance: Provenance::Measured,
//!     quantity: Quantity::EnergyCounter { joules_per_tick: 1e-6, max_ticks: Some(999_999_999) },
//!     update_period_ns: 1_000_000,
//!     max_power_w: Some(100.0),
//!     name: truncated("package-0"),
//! };
//! let mut s: Session<4> = Session::new();
//! s.add_source(0, info).unwrap();
//! let mut gaps = 0;
//! // 0.5 J in 10 ms, then the counter goes backwards: a reset.
//! for (t, v) in [(0, 1_000), (10_000_000, 501_000), (20_000_000, 400)] {
//!     s.handle_reading(0, t, RawReading::Counter(v)).unwrap();
//!     while let Some(r) = s.poll_record() {
//!         if let Record::Gap(g) = r {
//!             assert_eq!(g.reason, GapReason::CounterReset);
//!             gaps += 1;
//!         }
//!     }
//! }
//! assert_eq!(gaps, 1);
//! assert_eq!(s.live(0).unwrap().energy_j, 0.5);
//! ```

use heapless::{Deque, String, Vec};

use crate::counter::{CounterEvent, EnergyCounter};
use crate::format::{
    End, ExitStatus, Gap, GapReason, Marker, MarkerKind, Record, Sample, SampleFlags, SourceDecl,
    REGION_NAME_LEN,
};
use crate::integrate::{EnergyTrack, PushError, SeriesKind};
use crate::source::{truncated, Provenance, RawReading, ReadErrorKind, SourceInfo};
use crate::units::{secs, Nanos};

/// Records a session can hold between polls: every handle needs at most two.
pub const OUTPUT_CAPACITY: usize = 4;

/// Regions a session keeps open at once by default.
pub const DEFAULT_OPEN_REGIONS: usize = 64;

/// The latest state of one source, for live queries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Live {
    /// Time of the latest accepted reading (`None` before the first).
    pub t_ns: Option<Nanos>,
    /// Energy since the source's first reading, joules.
    pub energy_j: f64,
    /// Power over the latest interval, watts.
    pub power_w: f64,
    /// Readings refused or failed so far (each written as a gap).
    pub refused: u64,
}

/// The output queue has no room for what this call would write: poll the records first. The
/// value handed back is what was passed in, unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Full<T>(pub T);

impl<T> core::fmt::Display for Full<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the session's output queue is full: poll its records first")
    }
}

/// Why [`Session::add_source`] refused a source.
#[derive(Debug, Clone, PartialEq)]
pub enum AddSourceError {
    /// The session holds its capacity of sources already; the description is handed back.
    Full(SourceInfo),
    /// Another source has this id.
    DuplicateId(u16),
    /// The output queue is full: poll first.
    OutputFull(SourceInfo),
}

impl core::fmt::Display for AddSourceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AddSourceError::Full(i) => write!(f, "no room for source {:?}", i.name.as_str()),
            AddSourceError::DuplicateId(id) => write!(f, "source id {id} is already in use"),
            AddSourceError::OutputFull(_) => f.write_str("the output queue is full: poll first"),
        }
    }
}

/// Why [`Session::handle_reading`] or [`Session::handle_read_error`] did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingError {
    /// No source has this id.
    UnknownSource(u16),
    /// The output queue is full: poll first, then hand the reading in again.
    OutputFull,
}

impl core::fmt::Display for ReadingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReadingError::UnknownSource(id) => write!(f, "no source has id {id}"),
            ReadingError::OutputFull => f.write_str("the output queue is full: poll first"),
        }
    }
}

/// Why [`Session::handle_marker`] refused a boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerError {
    /// A region needs a name.
    EmptyName,
    /// `begin` of a name already open (regions overlap only under different names).
    AlreadyOpen,
    /// `end` of a name that is not open.
    NotOpen,
    /// As many regions are open as the session holds.
    TooManyOpen,
    /// The output queue is full: poll first.
    OutputFull,
}

impl core::fmt::Display for MarkerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MarkerError::EmptyName => "a region needs a name",
            MarkerError::AlreadyOpen => {
                "this region is already open; end it first or use another name"
            }
            MarkerError::NotOpen => "this region is not open (no begin, or already ended)",
            MarkerError::TooManyOpen => "too many regions open at once",
            MarkerError::OutputFull => "the output queue is full: poll first",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Meter {
    Counter(EnergyCounter),
    Power(EnergyTrack),
}

#[derive(Debug, Clone, PartialEq)]
struct Tracked {
    id: u16,
    meter: Meter,
    joules_per_tick: f64,
    estimated: bool,
    /// Time of the latest sample written.
    last_ok: Option<Nanos>,
    live: Live,
}

#[derive(Debug, Clone, PartialEq)]
struct OpenRegion {
    id: u32,
    name: String<REGION_NAME_LEN>,
}

/// A measuring session over up to `S` sources with up to `R` regions open at once; see the
/// module docs.
#[derive(Debug, Clone)]
pub struct Session<const S: usize, const R: usize = DEFAULT_OPEN_REGIONS> {
    sources: Vec<Tracked, S>,
    open: Vec<OpenRegion, R>,
    next_region: u32,
    out: Deque<Record, OUTPUT_CAPACITY>,
}

impl<const S: usize, const R: usize> Default for Session<S, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const S: usize, const R: usize> Session<S, R> {
    /// A session with no source.
    pub const fn new() -> Self {
        Self {
            sources: Vec::new(),
            open: Vec::new(),
            next_region: 0,
            out: Deque::new(),
        }
    }

    fn room(&self, n: usize) -> bool {
        OUTPUT_CAPACITY - self.out.len() >= n
    }

    fn put(&mut self, r: Record) {
        // Every caller checked `room` first.
        let _ = self.out.push_back(r);
    }

    /// Declares a source under `id` (writes its [`SourceDecl`]).
    // The refused description is handed back whole (heapless' way: no allocator to box it).
    #[allow(clippy::result_large_err)]
    pub fn add_source(&mut self, id: u16, info: SourceInfo) -> Result<(), AddSourceError> {
        if self.sources.iter().any(|s| s.id == id) {
            return Err(AddSourceError::DuplicateId(id));
        }
        if !self.room(1) {
            return Err(AddSourceError::OutputFull(info));
        }
        let (meter, joules_per_tick) = match info.counter_spec() {
            Some(spec) => (
                Meter::Counter(EnergyCounter::new(spec)),
                spec.joules_per_tick,
            ),
            None => (
                Meter::Power(EnergyTrack::new(SeriesKind::PowerSamples, 0)),
                0.0,
            ),
        };
        let tracked = Tracked {
            id,
            meter,
            joules_per_tick,
            estimated: info.provenance == Provenance::Estimated,
            last_ok: None,
            live: Live {
                t_ns: None,
                energy_j: 0.0,
                power_w: 0.0,
                refused: 0,
            },
        };
        if self.sources.push(tracked).is_err() {
            return Err(AddSourceError::Full(info));
        }
        self.put(Record::Source(SourceDecl { id, info }));
        Ok(())
    }

    /// The live totals of source `id`.
    pub fn live(&self, id: u16) -> Option<Live> {
        self.sources.iter().find(|s| s.id == id).map(|s| s.live)
    }

    /// Ids of the declared sources, in declaration order.
    pub fn source_ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.sources.iter().map(|s| s.id)
    }

    /// Names of the regions open now, innermost last.
    pub fn open_regions(&self) -> impl Iterator<Item = &str> + '_ {
        self.open.iter().map(|o| o.name.as_str())
    }

    /// The next record to write, oldest first.
    pub fn poll_record(&mut self) -> Option<Record> {
        self.out.pop_front()
    }

    /// The source `id` and the output queue, once there is room for two records.
    #[allow(clippy::type_complexity)]
    fn tracked(
        &mut self,
        id: u16,
    ) -> Result<(&mut Tracked, &mut Deque<Record, OUTPUT_CAPACITY>), ReadingError> {
        if !self.room(2) {
            return Err(ReadingError::OutputFull);
        }
        let s = self
            .sources
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(ReadingError::UnknownSource(id))?;
        Ok((s, &mut self.out))
    }

    /// A reading `raw` of source `id` taken at `now`: writes its sample, or a gap with the
    /// reason it was refused (and, after a reset or an impossible delta, the sample where
    /// counting resumes).
    pub fn handle_reading(
        &mut self,
        id: u16,
        now: Nanos,
        raw: RawReading,
    ) -> Result<(), ReadingError> {
        let (s, out) = self.tracked(id)?;
        let mut flags = SampleFlags(0);
        if s.estimated {
            flags = flags.with(SampleFlags::ESTIMATED);
        }
        let gap_from = s.last_ok.unwrap_or(now);
        let outcome: Result<(f64, f64, SampleFlags), GapReason> = match (&mut s.meter, raw) {
            (Meter::Counter(c), RawReading::Counter(v)) => {
                let u = c.update(now, v);
                let energy = c.total_j();
                match u.event {
                    CounterEvent::Baseline => Ok((0.0, 0.0, flags)),
                    CounterEvent::Advanced | CounterEvent::Wrapped => {
                        let added = u.added_ticks as f64 * s.joules_per_tick;
                        let power = if u.interval_ns > 0 {
                            added / secs(u.interval_ns)
                        } else {
                            0.0
                        };
                        let flags = if u.event == CounterEvent::Wrapped {
                            flags.with(SampleFlags::WRAP)
                        } else {
                            flags
                        };
                        Ok((energy, power, flags))
                    }
                    CounterEvent::Reset => {
                        gap_then_resume(
                            s,
                            out,
                            now,
                            gap_from,
                            GapReason::CounterReset,
                            flags.with(SampleFlags::RESET),
                            raw,
                        );
                        return Ok(());
                    }
                    CounterEvent::Rejected => {
                        gap_then_resume(
                            s,
                            out,
                            now,
                            gap_from,
                            GapReason::ImplausibleDelta,
                            flags.with(SampleFlags::REJECTED),
                            raw,
                        );
                        return Ok(());
                    }
                    CounterEvent::OutOfRange => Err(GapReason::OutOfRange),
                    CounterEvent::OutOfOrder => Err(GapReason::OutOfOrder),
                }
            }
            (Meter::Power(track), RawReading::PowerMilliwatts(mw)) => {
                match track.push_power(now, mw as f64 / 1e3) {
                    Ok(p) => Ok((p.energy_j, p.power_w, flags)),
                    Err(PushError::NotAfterPrevious) => Err(GapReason::OutOfOrder),
                    Err(_) => Err(GapReason::InvalidValue),
                }
            }
            _ => Err(GapReason::WrongKind),
        };
        match outcome {
            Ok((energy_j, power_w, flags)) => {
                s.last_ok = Some(now);
                s.live.t_ns = Some(now);
                s.live.energy_j = energy_j;
                s.live.power_w = power_w;
                let _ = out.push_back(sample(s.id, now, raw, energy_j, power_w, flags));
            }
            Err(reason) => {
                s.live.refused += 1;
                // An out-of-order reading covers no time of its own.
                let from = if reason == GapReason::OutOfOrder {
                    now
                } else {
                    gap_from
                };
                let _ = out.push_back(Record::Gap(Gap {
                    source: s.id,
                    from_ns: from.min(now),
                    to_ns: now,
                    reason,
                }));
            }
        }
        Ok(())
    }

    /// A read of source `id` at `now` failed with `kind`: writes a gap from the last accepted
    /// reading to `now`. The next accepted counter reading carries the energy of the gap.
    pub fn handle_read_error(
        &mut self,
        id: u16,
        now: Nanos,
        kind: ReadErrorKind,
    ) -> Result<(), ReadingError> {
        let (s, out) = self.tracked(id)?;
        s.live.refused += 1;
        let from = s.last_ok.unwrap_or(now).min(now);
        let _ = out.push_back(Record::Gap(Gap {
            source: s.id,
            from_ns: from,
            to_ns: now,
            reason: GapReason::ReadError(kind),
        }));
        Ok(())
    }

    /// A region boundary at `now`; returns the region's id. Regions nest (the innermost open one
    /// is the parent of a new one) and overlap under different names. Names are cut to
    /// [`REGION_NAME_LEN`] bytes.
    pub fn handle_marker(
        &mut self,
        now: Nanos,
        kind: MarkerKind,
        name: &str,
    ) -> Result<u32, MarkerError> {
        if name.is_empty() {
            return Err(MarkerError::EmptyName);
        }
        if !self.room(1) {
            return Err(MarkerError::OutputFull);
        }
        let name: String<REGION_NAME_LEN> = truncated(name);
        let (id, parent) = match kind {
            MarkerKind::Begin => {
                if self.open.iter().any(|o| o.name == name) {
                    return Err(MarkerError::AlreadyOpen);
                }
                let id = self.next_region;
                let parent = self.open.last().map(|o| o.id);
                self.open
                    .push(OpenRegion {
                        id,
                        name: name.clone(),
                    })
                    .map_err(|_| MarkerError::TooManyOpen)?;
                self.next_region = self.next_region.wrapping_add(1);
                (id, parent)
            }
            MarkerKind::End => {
                let k = self
                    .open
                    .iter()
                    .rposition(|o| o.name == name)
                    .ok_or(MarkerError::NotOpen)?;
                (self.open.remove(k).id, None)
            }
        };
        self.put(Record::Marker(Marker {
            region: id,
            kind,
            t_ns: now,
            name,
            parent,
        }));
        Ok(id)
    }

    /// The run ended at `now` with `exit`: writes the [`End`] record.
    pub fn finish(&mut self, now: Nanos, exit: ExitStatus) -> Result<(), Full<ExitStatus>> {
        if !self.room(1) {
            return Err(Full(exit));
        }
        self.put(Record::End(End { t_ns: now, exit }));
        Ok(())
    }
}

fn sample(
    source: u16,
    t_ns: Nanos,
    raw: RawReading,
    energy_j: f64,
    power_w: f64,
    flags: SampleFlags,
) -> Record {
    Record::Sample(Sample {
        source,
        t_ns,
        raw,
        energy_j,
        power_w: power_w as f32,
        flags,
    })
}

/// A refused counter delta that re-based the counter: a gap over the interval whose energy is
/// lost, then the sample where counting resumes (energy unchanged).
fn gap_then_resume(
    s: &mut Tracked,
    out: &mut Deque<Record, OUTPUT_CAPACITY>,
    now: Nanos,
    from: Nanos,
    reason: GapReason,
    flags: SampleFlags,
    raw: RawReading,
) {
    s.live.refused += 1;
    let _ = out.push_back(Record::Gap(Gap {
        source: s.id,
        from_ns: from.min(now),
        to_ns: now,
        reason,
    }));
    s.last_ok = Some(now);
    s.live.t_ns = Some(now);
    s.live.power_w = 0.0;
    let _ = out.push_back(sample(s.id, now, raw, s.live.energy_j, 0.0, flags));
}

impl<T: core::fmt::Debug> core::error::Error for Full<T> {}
impl core::error::Error for AddSourceError {}
impl core::error::Error for ReadingError {}
impl core::error::Error for MarkerError {}
