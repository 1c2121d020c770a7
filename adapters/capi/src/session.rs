//! The measuring session ([`ea2p_core::session::Session`]) and its fold
//! ([`ea2p_core::fold::Fold`]) behind one opaque handle, [`Ea2pSession`], owned by Rust.
//!
//! The C side holds a pointer made by `ea2p_session_new` and given back to `ea2p_session_free`;
//! it never sees the layout. Each `handle` call (a reading, a failed read, a region boundary,
//! the end) passes the input to the core's session, then drains every record it writes into
//! the fold (and, when a sink is set, encodes it with [`ea2p_core::format::encode`] into a
//! buffer inside the handle and hands the bytes to the sink). The figures read back through
//! the getters are the fold's: the same algorithm as `ea2p run` live and `ea2p report` on
//! replay. Nothing on the reading path allocates: the handle is boxed once, with fixed-capacity
//! containers inside.

use core::ffi::{c_char, c_void, CStr};

use ea2p_core::fold::{Fold, RegionEnergy, DEFAULT_PEAK_WINDOW_NS, REASONS};
use ea2p_core::format::{
    encode, ExitStatus, GapReason, Header, HostInfo, MarkerKind, Record, MAGIC, MAX_FRAME_LEN,
    VERSION,
};
use ea2p_core::session::{AddSourceError, MarkerError, ReadingError, Session};
use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadErrorKind, SourceInfo,
};
use heapless::Deque;

use crate::{guard, inout, input, put, Ea2pStatus};

/// Sources one session holds.
pub const EA2P_SESSION_SOURCES: usize = 32;

/// Regions one session keeps open at once.
pub const EA2P_SESSION_OPEN_REGIONS: usize = 64;

/// Regions the fold holds open or ended but not yet placed (a boundary waits for the reading
/// after it): twice the open regions, so a full set can end while the next begins.
const FOLD_REGIONS: usize = 2 * EA2P_SESSION_OPEN_REGIONS;

/// Ended regions whose energy a session keeps for `ea2p_session_region`, latest first; an
/// older one is forgotten (`EA2P_STATUS_UNKNOWN_REGION`).
pub const EA2P_SESSION_KEPT_REGIONS: usize = 256;

/// Anomaly reasons tallied per source: the length of `Ea2pSourceSummary.anomalies`, indexed by
/// `Ea2pGapReason`.
pub const EA2P_GAP_REASONS: usize = 13;

const _: () = assert!(EA2P_GAP_REASONS == REASONS);

/// The part of the machine a source measures (the core's `Component`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ea2pComponent {
    /// A CPU package (socket), RAPL `package-N`.
    CpuPackage = 0,
    /// The cores of a package, RAPL `core` (inside the package: not added to totals).
    CpuCores = 1,
    /// The uncore of a package, RAPL `uncore` (inside the package: not added to totals).
    Uncore = 2,
    /// DRAM, RAPL `dram`.
    Dram = 3,
    /// The whole platform, RAPL `psys` (contains the rest: not added to totals).
    Platform = 4,
    /// One GPU.
    Gpu = 5,
}

impl Ea2pComponent {
    const ALL: [Ea2pComponent; 6] = [
        Ea2pComponent::CpuPackage,
        Ea2pComponent::CpuCores,
        Ea2pComponent::Uncore,
        Ea2pComponent::Dram,
        Ea2pComponent::Platform,
        Ea2pComponent::Gpu,
    ];

    const fn to_core(self) -> Component {
        match self {
            Ea2pComponent::CpuPackage => Component::CpuPackage,
            Ea2pComponent::CpuCores => Component::CpuCores,
            Ea2pComponent::Uncore => Component::Uncore,
            Ea2pComponent::Dram => Component::Dram,
            Ea2pComponent::Platform => Component::Platform,
            Ea2pComponent::Gpu => Component::Gpu,
        }
    }

    fn from_u32(v: u32) -> Result<Component, Ea2pStatus> {
        Self::ALL
            .iter()
            .find(|c| **c as u32 == v)
            .map(|c| c.to_core())
            .ok_or(Ea2pStatus::InvalidArgument)
    }
}

/// Why a read failed (the core's `ReadErrorKind`), for `ea2p_session_read_error`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ea2pReadErrorKind {
    /// The file or device is there but may not be read.
    PermissionDenied = 0,
    /// The file, device or library went away.
    Gone = 1,
    /// The value could not be parsed or was out of range.
    Malformed = 2,
    /// Any other I/O or driver error.
    Other = 3,
}

impl Ea2pReadErrorKind {
    const ALL: [Ea2pReadErrorKind; 4] = [
        Ea2pReadErrorKind::PermissionDenied,
        Ea2pReadErrorKind::Gone,
        Ea2pReadErrorKind::Malformed,
        Ea2pReadErrorKind::Other,
    ];

    const fn to_core(self) -> ReadErrorKind {
        match self {
            Ea2pReadErrorKind::PermissionDenied => ReadErrorKind::PermissionDenied,
            Ea2pReadErrorKind::Gone => ReadErrorKind::Gone,
            Ea2pReadErrorKind::Malformed => ReadErrorKind::Malformed,
            Ea2pReadErrorKind::Other => ReadErrorKind::Other,
        }
    }

    fn from_u32(v: u32) -> Result<ReadErrorKind, Ea2pStatus> {
        Self::ALL
            .iter()
            .find(|k| **k as u32 == v)
            .map(|k| k.to_core())
            .ok_or(Ea2pStatus::InvalidArgument)
    }
}

/// Why a source has no valid reading over some time: the core's `GapReason`, each value its
/// position in `GapReason::ALL` (the index of `Ea2pSourceSummary.anomalies`). The values are
/// not copied by hand: a compile-time check below proves every value equals the core's index,
/// and the header test proves the header names every reason of the core under its value.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ea2pGapReason {
    /// Reads failed: permission denied.
    ReadErrorPermissionDenied,
    /// Reads failed: the device went away.
    ReadErrorGone,
    /// Reads failed: the value did not parse.
    ReadErrorMalformed,
    /// Reads failed: another error.
    ReadErrorOther,
    /// The device went away.
    DeviceLost,
    /// The source was stopped after failing.
    SourceFailed,
    /// The sampler fell behind and missed reads.
    Overrun,
    /// The counter went backwards without wrapping: the energy since the last reading is unknown.
    CounterReset,
    /// The counter advanced by more than the component can draw over the interval: not added.
    ImplausibleDelta,
    /// The counter read above its declared largest value: ignored.
    OutOfRange,
    /// The reading's time was not after the previous one's: ignored.
    OutOfOrder,
    /// A power reading that is negative or above any machine's power: ignored.
    InvalidValue,
    /// A reading of the other kind than the source declared: ignored.
    WrongKind,
}

impl Ea2pGapReason {
    /// Every value, in declaration order (so `ALL[i] as usize == i`).
    const ALL: [Ea2pGapReason; EA2P_GAP_REASONS] = [
        Ea2pGapReason::ReadErrorPermissionDenied,
        Ea2pGapReason::ReadErrorGone,
        Ea2pGapReason::ReadErrorMalformed,
        Ea2pGapReason::ReadErrorOther,
        Ea2pGapReason::DeviceLost,
        Ea2pGapReason::SourceFailed,
        Ea2pGapReason::Overrun,
        Ea2pGapReason::CounterReset,
        Ea2pGapReason::ImplausibleDelta,
        Ea2pGapReason::OutOfRange,
        Ea2pGapReason::OutOfOrder,
        Ea2pGapReason::InvalidValue,
        Ea2pGapReason::WrongKind,
    ];

    /// The core's reason (exhaustive both ways: a new core reason fails to compile here).
    pub const fn to_core(self) -> GapReason {
        match self {
            Ea2pGapReason::ReadErrorPermissionDenied => {
                GapReason::ReadError(ReadErrorKind::PermissionDenied)
            }
            Ea2pGapReason::ReadErrorGone => GapReason::ReadError(ReadErrorKind::Gone),
            Ea2pGapReason::ReadErrorMalformed => GapReason::ReadError(ReadErrorKind::Malformed),
            Ea2pGapReason::ReadErrorOther => GapReason::ReadError(ReadErrorKind::Other),
            Ea2pGapReason::DeviceLost => GapReason::DeviceLost,
            Ea2pGapReason::SourceFailed => GapReason::SourceFailed,
            Ea2pGapReason::Overrun => GapReason::Overrun,
            Ea2pGapReason::CounterReset => GapReason::CounterReset,
            Ea2pGapReason::ImplausibleDelta => GapReason::ImplausibleDelta,
            Ea2pGapReason::OutOfRange => GapReason::OutOfRange,
            Ea2pGapReason::OutOfOrder => GapReason::OutOfOrder,
            Ea2pGapReason::InvalidValue => GapReason::InvalidValue,
            Ea2pGapReason::WrongKind => GapReason::WrongKind,
        }
    }
}

// Every C value is the core's index of the same reason, and the core has no other reason.
const _: () = {
    assert!(Ea2pGapReason::ALL.len() == GapReason::ALL.len());
    let mut i = 0;
    while i < EA2P_GAP_REASONS {
        assert!(Ea2pGapReason::ALL[i] as usize == i);
        assert!(Ea2pGapReason::ALL[i].to_core().index() == i);
        i += 1;
    }
};

/// What a source is, for `ea2p_session_add_counter` and `ea2p_session_add_power`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Ea2pSourceSpec {
    /// An `Ea2pComponent` value.
    pub component: u32,
    /// Socket, package or GPU index within its component.
    pub index: u32,
    /// NUL-terminated UTF-8 name, not empty (cut to 64 bytes at a character boundary).
    pub name: *const c_char,
    /// The most the component can draw, watts: finite and not negative; 0 when unknown. A
    /// counter delta above it over the whole interval since the last reading is refused.
    pub max_power_w: f64,
    /// How often the source's value changes, ns (0 when unknown); peak power is taken over
    /// windows no shorter than this.
    pub update_period_ns: u64,
    /// True for a value from a model rather than a sensor.
    pub estimated: bool,
}

/// Count and time of one anomaly reason.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ea2pTally {
    /// Gap records of this reason.
    pub count: u64,
    /// Time they cover, ns (overlaps counted once).
    pub covered_ns: u64,
}

/// The fold's figures for one source, from `ea2p_session_source`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pSourceSummary {
    /// Energy since the first reading, joules.
    pub energy_j: f64,
    /// Average power between the first and the last sample, watts (0 before two samples).
    pub avg_w: f64,
    /// Highest power averaged over a window of `peak_window_ns`, watts.
    pub peak_w: f64,
    /// The window of `peak_w`: `max(min window, update period)`, or the run's span after
    /// `ea2p_session_finish` when the run is shorter than one window.
    pub peak_window_ns: u64,
    /// Samples written (accepted readings, and the re-based one after a reset or a refusal).
    pub samples: u64,
    /// Counter wraps handled (exact: not anomalies).
    pub wraps: u64,
    /// Readings refused or failed, all reasons.
    pub refused: u64,
    /// Runs of consecutive gaps.
    pub gap_runs: u64,
    /// Time from the start of each run of gaps to the next accepted reading, ns.
    pub without_readings_ns: u64,
    /// First and last sample's time, ns (both 0 when `samples` is 0).
    pub first_t_ns: u64,
    /// See `first_t_ns`.
    pub last_t_ns: u64,
    /// Per reason, indexed by `Ea2pGapReason`.
    pub anomalies: [Ea2pTally; EA2P_GAP_REASONS],
}

/// A region's figures, from `ea2p_session_region`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pRegionSummary {
    /// Begin time, ns.
    pub begin_t_ns: u64,
    /// End time, ns; the latest time seen while the region is open.
    pub end_t_ns: u64,
    /// Energy of the sources not nested in another (packages, DRAM, GPUs), joules.
    pub total_j: f64,
    /// True when every boundary is placed: the figures are final. Before that (the region is
    /// open, or no reading has come after its end yet) they are what the fold would say if the
    /// stream ended now.
    pub complete: bool,
}

/// What a profile's header says, for `ea2p_session_set_sink`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Ea2pProfileInfo {
    /// Wall-clock start, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// The caller's monotonic clock at that same instant (the origin of every `t_ns`).
    pub monotonic_origin_ns: u64,
    /// The sampling interval the caller aims at, ns.
    pub interval_ns: u64,
    /// NUL-terminated UTF-8 host name, or null (cut to 64 bytes).
    pub hostname: *const c_char,
    /// NUL-terminated UTF-8 description of what is measured, or null (cut to 128 bytes).
    pub command: *const c_char,
}

/// Receives each encoded profile record (one self-delimiting frame of `len` bytes, at most
/// `EA2P_MAX_FRAME_LEN`), in order; appending them to a file makes a profile that `ea2p report`
/// reads. The bytes are valid only during the call. Returns 0 on success; any other value makes
/// the call that wrote the record return `EA2P_STATUS_SINK_FAILED` (the fold still took it).
/// The sink must not call back into the session.
pub type Ea2pSink =
    Option<unsafe extern "C" fn(user_data: *mut c_void, bytes: *const u8, len: usize) -> i32>;

/// Longest frame a sink receives, bytes.
pub const EA2P_MAX_FRAME_LEN: usize = 520;

const _: () = assert!(EA2P_MAX_FRAME_LEN == MAX_FRAME_LEN);

type CoreSession = Session<EA2P_SESSION_SOURCES, EA2P_SESSION_OPEN_REGIONS>;
type CoreFold = Fold<EA2P_SESSION_SOURCES, FOLD_REGIONS>;

/// A measuring session and its fold (opaque: only pointers cross the boundary). Made by
/// `ea2p_session_new`, freed by `ea2p_session_free`. Not thread-safe: one thread at a time.
pub struct Ea2pSession {
    session: CoreSession,
    fold: CoreFold,
    ended: Deque<RegionEnergy<EA2P_SESSION_SOURCES>, EA2P_SESSION_KEPT_REGIONS>,
    sink: Ea2pSink,
    user_data: *mut c_void,
    frame: [u8; MAX_FRAME_LEN],
    /// Records taken by the fold or the sink: the sink may be set only before the first.
    records: u64,
    finished: bool,
}

impl core::fmt::Debug for Ea2pSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ea2pSession")
            .field("sources", &self.fold.components().len())
            .field("records", &self.records)
            .field("sink", &self.sink.is_some())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Ea2pSession {
    fn new(min_window_ns: u64) -> Self {
        Self {
            session: Session::new(),
            fold: Fold::new(min_window_ns),
            ended: Deque::new(),
            sink: None,
            user_data: core::ptr::null_mut(),
            frame: [0; MAX_FRAME_LEN],
            records: 0,
            finished: false,
        }
    }

    fn write(&mut self, record: &Record) -> Result<(), Ea2pStatus> {
        self.records += 1;
        let Some(sink) = self.sink else {
            return Ok(());
        };
        // Cannot fail: the frame buffer is MAX_FRAME_LEN, which holds every record.
        let n = encode(record, &mut self.frame).map_err(|_| Ea2pStatus::Panicked)?;
        // SAFETY: `sink` is the caller's function, called as its type documents, with a
        // pointer to `n` initialised bytes of our buffer that stay valid during the call.
        match unsafe { sink(self.user_data, self.frame.as_ptr(), n) } {
            0 => Ok(()),
            _ => Err(Ea2pStatus::SinkFailed),
        }
    }

    /// Every record the session wrote goes to the sink and the fold; every region the fold
    /// placed is kept. A sink failure is reported after everything is drained.
    fn drain(&mut self) -> Result<(), Ea2pStatus> {
        let mut status = Ok(());
        while let Some(r) = self.session.poll_record() {
            let written = self.write(&r);
            status = status.and(written);
            // The fold holds as many sources as the session, and more regions than the
            // session keeps open: a region it cannot hold is counted in `regions_dropped`.
            let _ = self.fold.handle(&r);
            self.keep_regions();
        }
        status
    }

    fn keep_regions(&mut self) {
        while let Some(reg) = self.fold.poll_region() {
            if self.ended.is_full() {
                self.ended.pop_front();
            }
            let _ = self.ended.push_back(reg);
        }
    }

    fn live(&self) -> Result<(), Ea2pStatus> {
        if self.finished {
            Err(Ea2pStatus::WrongState)
        } else {
            Ok(())
        }
    }

    fn region(&self, id: u32) -> Result<(RegionEnergy<EA2P_SESSION_SOURCES>, bool), Ea2pStatus> {
        if let Some(r) = self.ended.iter().rev().find(|r| r.id == id) {
            return Ok((r.clone(), true));
        }
        self.fold
            .peek_region(id)
            .map(|r| (r, false))
            .ok_or(Ea2pStatus::UnknownRegion)
    }
}

fn reading_status(e: ReadingError) -> Ea2pStatus {
    match e {
        ReadingError::UnknownSource(_) => Ea2pStatus::UnknownSource,
        // Cannot happen: every call drains the output queue.
        ReadingError::OutputFull => Ea2pStatus::Panicked,
    }
}

/// A NUL-terminated UTF-8 string, or `EA2P_STATUS_INVALID_NAME` (not UTF-8), or
/// `EA2P_STATUS_NULL_POINTER`.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string valid for `'a`.
unsafe fn c_str<'a>(p: *const c_char) -> Result<&'a str, Ea2pStatus> {
    if p.is_null() {
        return Err(Ea2pStatus::NullPointer);
    }
    // SAFETY: non-null, and the caller guarantees a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Ea2pStatus::InvalidName)
}

/// As [`c_str`], with null read as empty.
///
/// # Safety
/// As [`c_str`].
unsafe fn c_str_or_empty<'a>(p: *const c_char) -> Result<&'a str, Ea2pStatus> {
    if p.is_null() {
        Ok("")
    } else {
        // SAFETY: forwarded from this function's contract.
        unsafe { c_str(p) }
    }
}

/// A non-empty name.
///
/// # Safety
/// As [`c_str`].
unsafe fn name<'a>(p: *const c_char) -> Result<&'a str, Ea2pStatus> {
    // SAFETY: forwarded from this function's contract.
    let s = unsafe { c_str(p) }?;
    if s.is_empty() {
        Err(Ea2pStatus::InvalidName)
    } else {
        Ok(s)
    }
}

/// Borrows the session, or `EA2P_STATUS_NULL_POINTER`.
///
/// # Safety
/// `s` is null or a pointer from `ea2p_session_new` not yet freed, used by no other thread.
unsafe fn session<'a>(s: *mut Ea2pSession) -> Result<&'a mut Ea2pSession, Ea2pStatus> {
    // SAFETY: forwarded from this function's contract.
    unsafe { inout(s) }
}

// ---------------------------------------------------------------------------------------------
// Functions.

/// Makes a session with no source and writes its handle to `*out`. Peak power is taken over
/// windows of at least `min_peak_window_ns` (0: the default, 10 ms) and at least each source's
/// update period. Free it with `ea2p_session_free`.
///
/// # Safety
/// `out` is null or valid for writes of a pointer.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_new(
    min_peak_window_ns: u64,
    out: *mut *mut Ea2pSession,
) -> Ea2pStatus {
    guard(|| {
        crate::need(out)?;
        let window = if min_peak_window_ns == 0 {
            DEFAULT_PEAK_WINDOW_NS
        } else {
            min_peak_window_ns
        };
        let handle = Box::into_raw(Box::new(Ea2pSession::new(window)));
        // SAFETY: forwarded from this function's contract (valid for writes).
        unsafe { put(out, handle) }
    })
}

/// Frees a session made by `ea2p_session_new`; null does nothing.
///
/// # Safety
/// `s` is null or a pointer from `ea2p_session_new` not yet freed; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_free(s: *mut Ea2pSession) {
    if !s.is_null() {
        // SAFETY: the caller guarantees `s` came from `Box::into_raw` in `ea2p_session_new` and
        // is freed once; dropping it runs no user code (the sink is not called).
        drop(unsafe { Box::from_raw(s) });
    }
}

/// Sends every record from now on, encoded as profile frames, to `sink` (with `user_data`),
/// starting with a header made from `info`. Only before the first source is added
/// (`EA2P_STATUS_WRONG_STATE` after), so the profile is complete.
///
/// # Safety
/// `s` as for every session function; `info` is null or points to an initialised
/// `Ea2pProfileInfo` whose strings are null or NUL-terminated; `sink` is safe to call with
/// `user_data` until the session is freed.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_set_sink(
    s: *mut Ea2pSession,
    info: *const Ea2pProfileInfo,
    sink: Ea2pSink,
    user_data: *mut c_void,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { session(s) }?;
        // SAFETY: forwarded from this function's contract.
        let info = unsafe { input(info) }?;
        if sink.is_none() {
            return Err(Ea2pStatus::NullPointer);
        }
        if s.records > 0 || s.sink.is_some() {
            return Err(Ea2pStatus::WrongState);
        }
        // SAFETY: forwarded from this function's contract (null or NUL-terminated).
        let hostname = unsafe { c_str_or_empty(info.hostname) }?;
        // SAFETY: as above.
        let command = unsafe { c_str_or_empty(info.command) }?;
        let header = Record::Header(Header {
            magic: MAGIC,
            version: VERSION,
            host: HostInfo {
                hostname: truncated(hostname),
                os: truncated(""),
                cpu_model: truncated(""),
                logical_cpus: 0,
                memory_bytes: 0,
            },
            start_unix_ns: info.start_unix_ns,
            monotonic_origin_ns: info.monotonic_origin_ns,
            interval_ns: info.interval_ns,
            ea2p_version: truncated(concat!("ea2p-capi ", env!("CARGO_PKG_VERSION"))),
            command: truncated(command),
            rank: None,
            world_size: None,
        });
        s.sink = sink;
        s.user_data = user_data;
        s.write(&header)
    })
}

/// Checks a source's spec and makes the core's description of it.
///
/// # Safety
/// `spec` is null or points to an initialised `Ea2pSourceSpec` whose name is null or
/// NUL-terminated.
unsafe fn source_info(
    spec: *const Ea2pSourceSpec,
    quantity: Quantity,
) -> Result<SourceInfo, Ea2pStatus> {
    // SAFETY: forwarded from this function's contract.
    let spec = unsafe { input(spec) }?;
    let component = Ea2pComponent::from_u32(spec.component)?;
    if !(spec.max_power_w.is_finite() && spec.max_power_w >= 0.0) {
        return Err(Ea2pStatus::InvalidArgument);
    }
    // SAFETY: forwarded from this function's contract.
    let name = unsafe { name(spec.name) }?;
    Ok(SourceInfo {
        component,
        index: spec.index,
        provenance: if spec.estimated {
            Provenance::Estimated
        } else {
            Provenance::Measured
        },
        quantity,
        update_period_ns: spec.update_period_ns,
        max_power_w: (spec.max_power_w > 0.0).then_some(spec.max_power_w),
        name: truncated(name),
    })
}

fn add(s: &mut Ea2pSession, id: u16, info: SourceInfo) -> Result<(), Ea2pStatus> {
    s.live()?;
    match s.session.add_source(id, info) {
        Ok(()) => s.drain(),
        Err(AddSourceError::DuplicateId(_)) => Err(Ea2pStatus::DuplicateId),
        Err(AddSourceError::Full(_)) => Err(Ea2pStatus::TooMany),
        // Cannot happen: every call drains the output queue.
        Err(AddSourceError::OutputFull(_)) => Err(Ea2pStatus::Panicked),
    }
}

/// Declares an energy counter under `id`: `joules_per_tick` finite and positive (1e-6 for RAPL
/// `energy_uj`), `max_ticks` its largest value before it wraps to zero (RAPL
/// `max_energy_range_uj`; 0 when unknown: then a backwards step is a reset).
///
/// Errors: `EA2P_STATUS_NULL_POINTER`, `EA2P_STATUS_INVALID_ARGUMENT` (tick size or power bound
/// NaN, infinite or out of range, unknown component), `EA2P_STATUS_INVALID_NAME`,
/// `EA2P_STATUS_DUPLICATE_ID`, `EA2P_STATUS_TOO_MANY` (`EA2P_SESSION_SOURCES`),
/// `EA2P_STATUS_WRONG_STATE` (after `ea2p_session_finish`), `EA2P_STATUS_SINK_FAILED`.
///
/// # Safety
/// `s` is null or a live handle from `ea2p_session_new` used by no other thread; `spec` is null
/// or points to an initialised `Ea2pSourceSpec` whose name is null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_add_counter(
    s: *mut Ea2pSession,
    id: u16,
    spec: *const Ea2pSourceSpec,
    joules_per_tick: f64,
    max_ticks: u64,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { session(s) }?;
        if !(joules_per_tick.is_finite() && joules_per_tick > 0.0) {
            return Err(Ea2pStatus::InvalidArgument);
        }
        let quantity = Quantity::EnergyCounter {
            joules_per_tick,
            max_ticks: (max_ticks > 0).then_some(max_ticks),
        };
        // SAFETY: forwarded from this function's contract.
        let info = unsafe { source_info(spec, quantity) }?;
        add(s, id, info)
    })
}

/// Declares a power source (readings in milliwatts) under `id`. Errors as
/// `ea2p_session_add_counter`.
///
/// # Safety
/// As `ea2p_session_add_counter`.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_add_power(
    s: *mut Ea2pSession,
    id: u16,
    spec: *const Ea2pSourceSpec,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { session(s) }?;
        let quantity = Quantity::Power { averaging_ns: 0 };
        // SAFETY: forwarded from this function's contract.
        let info = unsafe { source_info(spec, quantity) }?;
        add(s, id, info)
    })
}

fn reading(s: &mut Ea2pSession, id: u16, t_ns: u64, raw: RawReading) -> Result<(), Ea2pStatus> {
    s.live()?;
    s.session
        .handle_reading(id, t_ns, raw)
        .map_err(reading_status)?;
    s.drain()
}

/// A counter value `raw` (ticks) of source `id` read at `t_ns`. Every reading is used: as a
/// sample, or as a gap with its reason (a reset, an impossible delta, a value past the wrap
/// point, a time not after the previous one, a counter reading for a power source), counted in
/// `Ea2pSourceSummary.anomalies`; those are `EA2P_STATUS_OK`.
///
/// Errors: `EA2P_STATUS_NULL_POINTER`, `EA2P_STATUS_UNKNOWN_SOURCE`, `EA2P_STATUS_WRONG_STATE`
/// (after `ea2p_session_finish`), `EA2P_STATUS_SINK_FAILED`.
///
/// # Safety
/// `s` is null or a live handle from `ea2p_session_new` used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_reading(
    s: *mut Ea2pSession,
    id: u16,
    t_ns: u64,
    raw: u64,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { session(s) }?;
        reading(s, id, t_ns, RawReading::Counter(raw))
    })
}

/// A power reading of `milliwatts` of source `id` at `t_ns`; as `ea2p_session_reading`.
///
/// # Safety
/// As `ea2p_session_reading`.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_power_reading(
    s: *mut Ea2pSession,
    id: u16,
    t_ns: u64,
    milliwatts: u64,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { session(s) }?;
        reading(s, id, t_ns, RawReading::PowerMilliwatts(milliwatts))
    })
}

/// A read of source `id` at `t_ns` failed with `kind` (an `Ea2pReadErrorKind` value): a gap
/// from its last accepted reading to `t_ns`. The next counter reading carries the energy.
///
/// Errors: as `ea2p_session_reading`, and `EA2P_STATUS_INVALID_ARGUMENT` for an unknown kind.
///
/// # Safety
/// As `ea2p_session_reading`.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_read_error(
    s: *mut Ea2pSession,
    id: u16,
    t_ns: u64,
    kind: u32,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { session(s) }?;
        let kind = Ea2pReadErrorKind::from_u32(kind)?;
        s.live()?;
        s.session
            .handle_read_error(id, t_ns, kind)
            .map_err(reading_status)?;
        s.drain()
    })
}

fn marker(
    s: &mut Ea2pSession,
    t_ns: u64,
    kind: MarkerKind,
    name: &str,
    out: *mut u32,
) -> Result<(), Ea2pStatus> {
    s.live()?;
    let id = s
        .session
        .handle_marker(t_ns, kind, name)
        .map_err(|e| match e {
            MarkerError::EmptyName => Ea2pStatus::InvalidName,
            MarkerError::AlreadyOpen => Ea2pStatus::RegionOpen,
            MarkerError::NotOpen => Ea2pStatus::RegionNotOpen,
            MarkerError::TooManyOpen => Ea2pStatus::TooMany,
            // Cannot happen: every call drains the output queue.
            MarkerError::OutputFull => Ea2pStatus::Panicked,
        })?;
    let drained = s.drain();
    if !out.is_null() {
        // SAFETY: non-null, and the callers' contract makes `out` valid for writes.
        unsafe { put(out, id) }?;
    }
    drained
}

/// Opens region `name` (NUL-terminated UTF-8, not empty, cut to 64 bytes) at `t_ns` and, when
/// `region_id` is not null, writes its id there (also with `EA2P_STATUS_SINK_FAILED`: the
/// region is open). Regions nest and overlap under different names.
///
/// Errors: `EA2P_STATUS_NULL_POINTER` (`s` or `name`), `EA2P_STATUS_INVALID_NAME`,
/// `EA2P_STATUS_REGION_OPEN` (a region of this name is open), `EA2P_STATUS_TOO_MANY`
/// (`EA2P_SESSION_OPEN_REGIONS`), `EA2P_STATUS_WRONG_STATE`, `EA2P_STATUS_SINK_FAILED`.
///
/// # Safety
/// `s` as `ea2p_session_reading`; `name` is null or NUL-terminated; `region_id` is null or valid
/// for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_begin(
    s: *mut Ea2pSession,
    t_ns: u64,
    name: *const c_char,
    region_id: *mut u32,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { session(s) }?;
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { self::name(name) }?;
        marker(s, t_ns, MarkerKind::Begin, name, region_id)
    })
}

/// Closes the innermost open region called `name` at `t_ns`, writing its id to `region_id` when
/// not null. Its energy is final once a reading of every source comes after `t_ns` (or at
/// `ea2p_session_finish`). Errors as `ea2p_session_begin`, with `EA2P_STATUS_REGION_NOT_OPEN`.
///
/// # Safety
/// As `ea2p_session_begin`.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_end(
    s: *mut Ea2pSession,
    t_ns: u64,
    name: *const c_char,
    region_id: *mut u32,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { session(s) }?;
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { self::name(name) }?;
        marker(s, t_ns, MarkerKind::End, name, region_id)
    })
}

/// The run ended at `t_ns`: writes the end record and completes the fold (boundaries after a
/// source's last reading take its last energy; a run shorter than one peak window reports its
/// average as the peak). Later readings, markers and sources give `EA2P_STATUS_WRONG_STATE`;
/// the getters keep working.
///
/// # Safety
/// As `ea2p_session_reading`.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_finish(s: *mut Ea2pSession, t_ns: u64) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { session(s) }?;
        s.live()?;
        // Cannot fail: every call drains the output queue.
        s.session
            .finish(t_ns, ExitStatus::Unknown)
            .map_err(|_| Ea2pStatus::Panicked)?;
        let drained = s.drain();
        s.finished = true;
        s.fold.finish();
        s.keep_regions();
        drained
    })
}

/// The fold's figures for source `id`, written to `out`.
///
/// Errors: `EA2P_STATUS_NULL_POINTER`, `EA2P_STATUS_UNKNOWN_SOURCE`.
///
/// # Safety
/// `s` as `ea2p_session_reading`; `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_source(
    s: *const Ea2pSession,
    id: u16,
    out: *mut Ea2pSourceSummary,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { input(s) }?;
        crate::need(out)?;
        let c = s
            .fold
            .components()
            .iter()
            .find(|c| c.id == id)
            .ok_or(Ea2pStatus::UnknownSource)?;
        let mut anomalies = [Ea2pTally::default(); EA2P_GAP_REASONS];
        for (slot, t) in anomalies.iter_mut().zip(c.anomalies.iter()) {
            *slot = Ea2pTally {
                count: t.count,
                covered_ns: t.covered_ns,
            };
        }
        let summary = Ea2pSourceSummary {
            energy_j: c.energy_j,
            avg_w: c.avg_w(),
            peak_w: c.peak_w,
            peak_window_ns: c.peak_window_ns,
            samples: c.samples,
            wraps: c.wraps,
            refused: c.refused(),
            gap_runs: c.gap_runs,
            without_readings_ns: c.without_readings_ns,
            first_t_ns: c.first_t.unwrap_or(0),
            last_t_ns: c.last_t.unwrap_or(0),
            anomalies,
        };
        // SAFETY: forwarded from this function's contract (valid for writes).
        unsafe { put(out, summary) }
    })
}

/// Region `region_id`'s figures, written to `out`: final (`complete`) once placed, provisional
/// before. Errors: `EA2P_STATUS_NULL_POINTER`, `EA2P_STATUS_UNKNOWN_REGION` (never begun, not
/// measured because the fold was full, or older than the last `EA2P_SESSION_KEPT_REGIONS`).
///
/// # Safety
/// `s` as `ea2p_session_reading`; `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_region(
    s: *const Ea2pSession,
    region_id: u32,
    out: *mut Ea2pRegionSummary,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { input(s) }?;
        crate::need(out)?;
        let (r, complete) = s.region(region_id)?;
        let summary = Ea2pRegionSummary {
            begin_t_ns: r.begin_t,
            end_t_ns: r.end_t,
            total_j: r.total_j,
            complete,
        };
        // SAFETY: forwarded from this function's contract (valid for writes).
        unsafe { put(out, summary) }
    })
}

/// The energy of source `source_id` in region `region_id`, joules, written to `out`. Errors as
/// `ea2p_session_region`, and `EA2P_STATUS_UNKNOWN_SOURCE`.
///
/// # Safety
/// As `ea2p_session_region`.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_region_energy(
    s: *const Ea2pSession,
    region_id: u32,
    source_id: u16,
    out: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { input(s) }?;
        crate::need(out)?;
        let (r, _) = s.region(region_id)?;
        let k = s
            .fold
            .components()
            .iter()
            .position(|c| c.id == source_id)
            .ok_or(Ea2pStatus::UnknownSource)?;
        let energy = *r.energies.get(k).ok_or(Ea2pStatus::UnknownSource)?;
        // SAFETY: forwarded from this function's contract (valid for writes).
        unsafe { put(out, energy) }
    })
}

/// Regions not measured because the fold held its capacity of regions waiting for readings,
/// written to `out`.
///
/// # Safety
/// As `ea2p_session_region`.
#[no_mangle]
pub unsafe extern "C" fn ea2p_session_regions_dropped(
    s: *const Ea2pSession,
    out: *mut u64,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let s = unsafe { input(s) }?;
        // SAFETY: forwarded from this function's contract (valid for writes).
        unsafe { put(out, s.fold.regions_dropped()) }
    })
}

/// Writes the core's short name of `reason` (an `Ea2pGapReason` value: `counter-reset`,
/// `read-error-gone`...), NUL-terminated, into `buf` of `len` bytes; 32 bytes hold every name.
/// Errors: `EA2P_STATUS_NULL_POINTER`, `EA2P_STATUS_INVALID_ARGUMENT` (unknown reason, or `buf`
/// too small: nothing written).
///
/// # Safety
/// `buf` is null or valid for writes of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_gap_reason_name(
    reason: u32,
    buf: *mut c_char,
    len: usize,
) -> Ea2pStatus {
    guard(|| {
        let reason = Ea2pGapReason::ALL
            .get(reason as usize)
            .ok_or(Ea2pStatus::InvalidArgument)?;
        let name = reason.to_core().as_str().as_bytes();
        if buf.is_null() {
            return Err(Ea2pStatus::NullPointer);
        }
        if len <= name.len() {
            return Err(Ea2pStatus::InvalidArgument);
        }
        // SAFETY: `buf` is non-null and the caller guarantees `len > name.len()` writable
        // bytes there (possibly uninitialised: written through the raw pointer, never read);
        // the static name cannot overlap them.
        unsafe {
            core::ptr::copy_nonoverlapping(name.as_ptr(), buf.cast::<u8>(), name.len());
            buf.add(name.len()).write(0);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr::{null, null_mut};

    const MS: u64 = 1_000_000;

    fn spec(name: &CStr) -> Ea2pSourceSpec {
        Ea2pSourceSpec {
            component: Ea2pComponent::CpuPackage as u32,
            index: 0,
            name: name.as_ptr(),
            max_power_w: 0.0,
            update_period_ns: 0,
            estimated: false,
        }
    }

    fn new_session() -> *mut Ea2pSession {
        let mut s = null_mut();
        // SAFETY: a valid out pointer.
        assert_eq!(unsafe { ea2p_session_new(0, &mut s) }, Ea2pStatus::Ok);
        s
    }

    unsafe extern "C" fn refuse(_: *mut c_void, _: *const u8, _: usize) -> i32 {
        1
    }

    #[test]
    fn a_failing_sink_is_reported_and_the_fold_still_counts() {
        let s = new_session();
        let info = Ea2pProfileInfo {
            start_unix_ns: 0,
            monotonic_origin_ns: 0,
            interval_ns: 0,
            hostname: null(),
            command: null(),
        };
        // SAFETY: `s` is live; pointers valid; freed at the end.
        unsafe {
            assert_eq!(
                ea2p_session_set_sink(s, &info, Some(refuse), null_mut()),
                Ea2pStatus::SinkFailed
            );
            let sp = spec(c"pkg");
            assert_eq!(
                ea2p_session_add_counter(s, 3, &sp, 1e-6, 0),
                Ea2pStatus::SinkFailed
            );
            assert_eq!(ea2p_session_reading(s, 3, 0, 0), Ea2pStatus::SinkFailed);
            assert_eq!(
                ea2p_session_reading(s, 3, 10 * MS, 100_000),
                Ea2pStatus::SinkFailed
            );
            let mut m = core::mem::MaybeUninit::uninit();
            assert_eq!(ea2p_session_source(s, 3, m.as_mut_ptr()), Ea2pStatus::Ok);
            let m = m.assume_init();
            assert!((m.energy_j - 0.1).abs() < 1e-12, "{}", m.energy_j);
            assert_eq!(m.samples, 2);
            ea2p_session_free(s);
        }
    }

    #[test]
    fn an_open_region_is_provisional_until_a_reading_after_its_end() {
        let s = new_session();
        // SAFETY: `s` is live; pointers valid; freed at the end.
        unsafe {
            let sp = spec(c"pkg");
            assert_eq!(ea2p_session_add_counter(s, 0, &sp, 1e-6, 0), Ea2pStatus::Ok);
            assert_eq!(ea2p_session_reading(s, 0, 0, 0), Ea2pStatus::Ok);
            let mut id = u32::MAX;
            assert_eq!(
                ea2p_session_begin(s, 5 * MS, c"r".as_ptr(), &mut id),
                Ea2pStatus::Ok
            );
            assert_eq!(ea2p_session_reading(s, 0, 10 * MS, 100_000), Ea2pStatus::Ok);
            assert_eq!(
                ea2p_session_end(s, 15 * MS, c"r".as_ptr(), null_mut()),
                Ea2pStatus::Ok
            );
            let mut r = core::mem::MaybeUninit::uninit();
            assert_eq!(ea2p_session_region(s, id, r.as_mut_ptr()), Ea2pStatus::Ok);
            assert!(!r.assume_init().complete);
            assert_eq!(ea2p_session_reading(s, 0, 20 * MS, 200_000), Ea2pStatus::Ok);
            assert_eq!(ea2p_session_region(s, id, r.as_mut_ptr()), Ea2pStatus::Ok);
            let r = r.assume_init();
            assert!(r.complete);
            // 10 W throughout: 10 ms of it.
            assert!((r.total_j - 0.1).abs() < 1e-12, "{}", r.total_j);
            assert_eq!((r.begin_t_ns, r.end_t_ns), (5 * MS, 15 * MS));
            ea2p_session_free(s);
        }
    }

    #[test]
    fn every_getter_and_handle_refuses_null() {
        let mut j = 0.0;
        let mut n = 0u64;
        // SAFETY: null handles are refused before any use.
        unsafe {
            assert_eq!(ea2p_session_new(0, null_mut()), Ea2pStatus::NullPointer);
            assert_eq!(
                ea2p_session_add_counter(null_mut(), 0, null(), 1e-6, 0),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_session_add_power(null_mut(), 0, null()),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_session_power_reading(null_mut(), 0, 0, 0),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_session_read_error(null_mut(), 0, 0, 0),
                Ea2pStatus::NullPointer
            );
            assert_eq!(ea2p_session_finish(null_mut(), 0), Ea2pStatus::NullPointer);
            assert_eq!(
                ea2p_session_region_energy(null(), 0, 0, &mut j),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_session_regions_dropped(null(), &mut n),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_session_set_sink(null_mut(), null(), None, null_mut()),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_gap_reason_name(0, null_mut(), 32),
                Ea2pStatus::NullPointer
            );
            let s = new_session();
            assert_eq!(
                ea2p_session_add_power(s, 0, null()),
                Ea2pStatus::NullPointer
            );
            let mut sp = spec(c"x");
            sp.name = null();
            assert_eq!(ea2p_session_add_power(s, 0, &sp), Ea2pStatus::NullPointer);
            sp.name = c"x".as_ptr();
            sp.max_power_w = f64::INFINITY;
            assert_eq!(
                ea2p_session_add_power(s, 0, &sp),
                Ea2pStatus::InvalidArgument
            );
            sp.max_power_w = -1.0;
            assert_eq!(
                ea2p_session_add_power(s, 0, &sp),
                Ea2pStatus::InvalidArgument
            );
            sp.max_power_w = 0.0;
            assert_eq!(
                ea2p_session_add_counter(s, 0, &sp, 0.0, 0),
                Ea2pStatus::InvalidArgument
            );
            assert_eq!(
                ea2p_session_set_sink(s, null(), None, null_mut()),
                Ea2pStatus::NullPointer
            );
            ea2p_session_free(s);
        }
    }

    #[test]
    fn gap_reason_names_are_the_cores() {
        for (i, r) in GapReason::ALL.iter().enumerate() {
            let mut buf = [0 as c_char; 32];
            // SAFETY: a 32-byte buffer.
            let st = unsafe { ea2p_gap_reason_name(i as u32, buf.as_mut_ptr(), buf.len()) };
            assert_eq!(st, Ea2pStatus::Ok);
            // SAFETY: NUL-terminated on success.
            let got = unsafe { CStr::from_ptr(buf.as_ptr()) };
            assert_eq!(got.to_str().unwrap(), r.as_str());
        }
    }

    #[test]
    fn too_many_sources_is_a_status() {
        let s = new_session();
        // SAFETY: `s` is live; freed at the end.
        unsafe {
            let sp = spec(c"p");
            for id in 0..EA2P_SESSION_SOURCES as u16 {
                assert_eq!(ea2p_session_add_power(s, id, &sp), Ea2pStatus::Ok);
            }
            assert_eq!(ea2p_session_add_power(s, 999, &sp), Ea2pStatus::TooMany);
            ea2p_session_free(s);
        }
    }
}
