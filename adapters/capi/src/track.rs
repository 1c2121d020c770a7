//! Energy tracks ([`ea2p_core::integrate`]): power samples or counter totals at irregular times
//! turned into cumulative energy, average and peak power, and the energy of any window.

use ea2p_core::integrate::{
    window_energy, EnergyPoint, EnergyTrack, PushError, SeriesKind, WindowError,
};

use crate::counter::{encode, load};
use crate::{guard, inout, input, input_slice, need, put, Ea2pStatus};

/// Bytes of state in an `Ea2pTrack`: the largest postcard encoding of a track is 105 bytes
/// (checked by a test), the rest is room for the core to grow without an ABI change.
pub const EA2P_TRACK_STATE_LEN: usize = 128;

/// Written to `Ea2pTrack.magic` by `ea2p_track_init`.
pub const EA2P_TRACK_MAGIC: u32 = 0xEA2E_0001;

/// The largest power a track accepts, in watts (`ea2p_core::integrate::MAX_POWER_W`).
pub const EA2P_MAX_POWER_W: f64 = 1e12;

/// What a track is fed with (pass the value as `uint32_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ea2pSeriesKind {
    /// Power samples in watts: energy is the trapezoid integral (power linear between samples).
    PowerSamples = 0,
    /// Cumulative energy in joules (a counter's total): power is the slope of each segment.
    Counter = 1,
}

impl Ea2pSeriesKind {
    fn from_u32(kind: u32) -> Result<SeriesKind, Ea2pStatus> {
        match kind {
            k if k == Self::PowerSamples as u32 => Ok(SeriesKind::PowerSamples),
            k if k == Self::Counter as u32 => Ok(SeriesKind::Counter),
            _ => Err(Ea2pStatus::InvalidArgument),
        }
    }
}

/// A cumulative-energy series followed point by point. Allocate it anywhere (it holds no
/// pointer), initialise it with `ea2p_track_init`, and treat the fields as private.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Ea2pTrack {
    /// `EA2P_TRACK_MAGIC` once initialised.
    pub magic: u32,
    /// Bytes of `state` in use.
    pub state_len: u32,
    /// The track's state, encoded (opaque).
    pub state: [u8; EA2P_TRACK_STATE_LEN],
}

/// One point of a cumulative-energy series, as returned by a push. Keep them (sorted by time)
/// to answer windows with `ea2p_window_energy`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pEnergyPoint {
    /// When, in ns.
    pub t_ns: u64,
    /// Energy since the series began, in joules.
    pub energy_j: f64,
    /// Power at this point: the sample, or the average over the segment ending here (counter
    /// series; 0 for the first point).
    pub power_w: f64,
    /// True when the segment ending here spans a gap (its energy is interpolated).
    pub after_gap: bool,
}

impl From<EnergyPoint> for Ea2pEnergyPoint {
    fn from(p: EnergyPoint) -> Self {
        Self {
            t_ns: p.t,
            energy_j: p.energy_j,
            power_w: p.power_w,
            after_gap: p.after_gap,
        }
    }
}

impl From<&Ea2pEnergyPoint> for EnergyPoint {
    fn from(p: &Ea2pEnergyPoint) -> Self {
        Self {
            t: p.t_ns,
            energy_j: p.energy_j,
            power_w: p.power_w,
            after_gap: p.after_gap,
        }
    }
}

/// Everything a track knows, in one read.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pTrackSummary {
    /// Energy since the first point, in joules (gap segments included, interpolated).
    pub total_j: f64,
    /// Time from the first to the last point, in ns.
    pub duration_ns: u64,
    /// Average power in watts; meaningful only when `has_average_w` (two points or more).
    pub average_w: f64,
    /// Whether `average_w` is defined.
    pub has_average_w: bool,
    /// Highest power seen, in watts.
    pub peak_w: f64,
    /// Points accepted.
    pub points: u64,
    /// Segments that were gaps.
    pub gaps: u64,
    /// Total duration of the gap segments, in ns.
    pub gap_ns: u64,
    /// Energy interpolated over the gap segments, in joules.
    pub gap_energy_j: f64,
}

/// The energy of a window, from `ea2p_window_energy`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pWindowEnergy {
    /// Energy inside the part of the window the series covers, in joules.
    pub energy_j: f64,
    /// How much of the window the series covers, in ns.
    pub covered_ns: u64,
    /// Bound on the error due to the sensor's update period, in joules.
    pub error_bound_j: f64,
    /// True when the window overlaps a gap segment.
    pub overlaps_gap: bool,
}

impl From<PushError> for Ea2pStatus {
    fn from(e: PushError) -> Self {
        match e {
            PushError::NotAfterPrevious => Ea2pStatus::NotAfterPrevious,
            PushError::InvalidValue => Ea2pStatus::InvalidValue,
            PushError::EnergyDecreased => Ea2pStatus::EnergyDecreased,
            PushError::WrongKind => Ea2pStatus::WrongKind,
        }
    }
}

impl From<WindowError> for Ea2pStatus {
    fn from(e: WindowError) -> Self {
        match e {
            WindowError::EmptySeries => Ea2pStatus::EmptySeries,
            WindowError::EndBeforeBegin => Ea2pStatus::EndBeforeBegin,
            WindowError::NoOverlap => Ea2pStatus::NoOverlap,
        }
    }
}

impl Ea2pTrack {
    fn load(&self) -> Result<EnergyTrack, Ea2pStatus> {
        load(self.magic, EA2P_TRACK_MAGIC, self.state_len, &self.state)
    }

    fn from_core(track: &EnergyTrack) -> Result<Self, Ea2pStatus> {
        let (state, state_len) = encode(track)?;
        Ok(Self {
            magic: EA2P_TRACK_MAGIC,
            state_len,
            state,
        })
    }
}

/// Loads the track at `track`, applies `f`, and stores it back only when `f` succeeds (a refused
/// push leaves the track unchanged).
///
/// # Safety
/// `track` is null or points to an `Ea2pTrack` that nothing else accesses during the call.
unsafe fn modify<R>(
    track: *mut Ea2pTrack,
    f: impl FnOnce(&mut EnergyTrack) -> Result<R, Ea2pStatus>,
) -> Result<R, Ea2pStatus> {
    // SAFETY: forwarded from this function's contract.
    let t = unsafe { inout(track) }?;
    let mut core = t.load()?;
    let r = f(&mut core)?;
    *t = Ea2pTrack::from_core(&core)?;
    Ok(r)
}

/// Writes the pushed point to `out` when it is not null.
///
/// # Safety
/// `out` is null or valid for writes.
unsafe fn put_point(out: *mut Ea2pEnergyPoint, p: EnergyPoint) -> Result<(), Ea2pStatus> {
    if out.is_null() {
        Ok(())
    } else {
        // SAFETY: non-null, valid for writes by this function's contract.
        unsafe { put(out, p.into()) }
    }
}

/// Initialises `track` (which may be uninitialised memory) as an empty series of `kind`
/// (an `Ea2pSeriesKind` value). A segment longer than `gap_threshold_ns` counts as a gap (use a
/// few sampling intervals; 0 disables the check).
///
/// # Safety
/// `track` is null or valid for writes of an `Ea2pTrack`.
#[no_mangle]
pub unsafe extern "C" fn ea2p_track_init(
    track: *mut Ea2pTrack,
    kind: u32,
    gap_threshold_ns: u64,
) -> Ea2pStatus {
    guard(|| {
        need(track)?;
        let kind = Ea2pSeriesKind::from_u32(kind)?;
        let value = Ea2pTrack::from_core(&EnergyTrack::new(kind, gap_threshold_ns))?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(track, value) }
    })
}

/// Adds a power sample of `watts` taken at `t_ns` to a power track and, when `out` is not null,
/// writes the new point. A refused sample (`EA2P_STATUS_NOT_AFTER_PREVIOUS`,
/// `EA2P_STATUS_INVALID_VALUE`, `EA2P_STATUS_WRONG_KIND`) leaves the track unchanged.
///
/// # Safety
/// `track` is null or points to an `Ea2pTrack` that nothing else accesses during the call;
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_track_push_power(
    track: *mut Ea2pTrack,
    t_ns: u64,
    watts: f64,
    out: *mut Ea2pEnergyPoint,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { modify(track, |t| Ok(t.push_power(t_ns, watts)?)) }?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put_point(out, p) }
    })
}

/// Adds a cumulative energy of `cumulative_j` joules (a counter's total) observed at `t_ns` to a
/// counter track and, when `out` is not null, writes the new point. A refused value leaves the
/// track unchanged.
///
/// # Safety
/// `track` is null or points to an `Ea2pTrack` that nothing else accesses during the call;
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_track_push_energy(
    track: *mut Ea2pTrack,
    t_ns: u64,
    cumulative_j: f64,
    out: *mut Ea2pEnergyPoint,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let p = unsafe { modify(track, |t| Ok(t.push_energy(t_ns, cumulative_j)?)) }?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put_point(out, p) }
    })
}

/// Marks that the source failed (read error, device lost): the next segment is a gap whatever
/// its length.
///
/// # Safety
/// `track` is null or points to an `Ea2pTrack` that nothing else accesses during the call.
#[no_mangle]
pub unsafe extern "C" fn ea2p_track_mark_gap(track: *mut Ea2pTrack) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            modify(track, |t| {
                t.mark_gap();
                Ok(())
            })
        }
    })
}

/// Writes the track's total, duration, average and peak power and gap statistics to `out`.
///
/// # Safety
/// `track` is null or points to an initialised `Ea2pTrack`; `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_track_summary(
    track: *const Ea2pTrack,
    out: *mut Ea2pTrackSummary,
) -> Ea2pStatus {
    guard(|| {
        need(out)?;
        // SAFETY: forwarded from this function's contract.
        let t = unsafe { input(track) }?.load()?;
        let (gaps, gap_ns, gap_energy_j) = t.gaps();
        let average = t.average_w();
        let summary = Ea2pTrackSummary {
            total_j: t.total_j(),
            duration_ns: t.duration_ns(),
            average_w: average.unwrap_or(0.0),
            has_average_w: average.is_some(),
            peak_w: t.peak_w(),
            points: t.len(),
            gaps,
            gap_ns,
            gap_energy_j,
        };
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, summary) }
    })
}

/// Writes the energy since the track's first point, in joules, to `out_j`.
///
/// # Safety
/// `track` is null or points to an initialised `Ea2pTrack`; `out_j` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_track_total_j(
    track: *const Ea2pTrack,
    out_j: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        need(out_j)?;
        // SAFETY: forwarded from this function's contract.
        let v = unsafe { input(track) }?.load()?.total_j();
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_j, v) }
    })
}

/// Writes the average power since the first point, in watts, to `out_w`;
/// `EA2P_STATUS_UNDEFINED` before two points.
///
/// # Safety
/// `track` is null or points to an initialised `Ea2pTrack`; `out_w` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_track_average_w(
    track: *const Ea2pTrack,
    out_w: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        need(out_w)?;
        // SAFETY: forwarded from this function's contract.
        let v = unsafe { input(track) }?.load()?.average_w();
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_w, v.ok_or(Ea2pStatus::Undefined)?) }
    })
}

/// Writes the highest power seen, in watts, to `out_w` (the highest sample, or the highest
/// segment average for counter tracks; 0 for an empty track).
///
/// # Safety
/// `track` is null or points to an initialised `Ea2pTrack`; `out_w` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_track_peak_w(track: *const Ea2pTrack, out_w: *mut f64) -> Ea2pStatus {
    guard(|| {
        need(out_w)?;
        // SAFETY: forwarded from this function's contract.
        let v = unsafe { input(track) }?.load()?.peak_w();
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_w, v) }
    })
}

/// The energy between `begin_ns` and `end_ns` from `len` points returned by pushes to one track
/// of `kind`, in strictly increasing time order (else `EA2P_STATUS_INVALID_ARGUMENT`); the
/// window is clipped to the series. `update_period_ns` is the sensor's update period (0 if
/// unknown), used for the error bound.
///
/// # Safety
/// `points` is null or points to `len` initialised `Ea2pEnergyPoint`s (it may be null when `len`
/// is 0); `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_window_energy(
    points: *const Ea2pEnergyPoint,
    len: usize,
    kind: u32,
    begin_ns: u64,
    end_ns: u64,
    update_period_ns: u64,
    out: *mut Ea2pWindowEnergy,
) -> Ea2pStatus {
    guard(|| {
        need(out)?;
        let kind = Ea2pSeriesKind::from_u32(kind)?;
        // SAFETY: forwarded from this function's contract.
        let points = unsafe { input_slice(points, len) }?;
        if points.windows(2).any(|w| w[0].t_ns >= w[1].t_ns) {
            return Err(Ea2pStatus::InvalidArgument);
        }
        let core_points: Vec<EnergyPoint> = points.iter().map(EnergyPoint::from).collect();
        let w = window_energy(&core_points, kind, begin_ns, end_ns, update_period_ns)?;
        let value = Ea2pWindowEnergy {
            energy_j: w.energy_j,
            covered_ns: w.covered_ns,
            error_bound_j: w.error_bound_j,
            overlaps_gap: w.overlaps_gap,
        };
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, value) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::MaybeUninit;
    use core::ptr::{null, null_mut};
    use ea2p_core::units::Nanos;
    use serde::{Deserialize, Serialize};

    const S: u64 = 1_000_000_000;

    fn init(kind: Ea2pSeriesKind, gap: u64) -> Ea2pTrack {
        let mut t = MaybeUninit::<Ea2pTrack>::uninit();
        // SAFETY: valid pointer.
        assert_eq!(
            unsafe { ea2p_track_init(t.as_mut_ptr(), kind as u32, gap) },
            Ea2pStatus::Ok
        );
        // SAFETY: initialised on success.
        unsafe { t.assume_init() }
    }

    #[test]
    fn power_track_matches_the_core_and_answers_windows() {
        let mut t = init(Ea2pSeriesKind::PowerSamples, 3 * S);
        let mut core = EnergyTrack::new(SeriesKind::PowerSamples, 3 * S);
        let samples = [
            (0, 10.0),
            (S, 30.0),
            (2 * S, 20.0),
            (7 * S, 20.0),
            (8 * S, 5.0),
        ];
        let mut points = Vec::new();
        for (i, &(ts, w)) in samples.iter().enumerate() {
            if i == 4 {
                // SAFETY: valid pointer.
                assert_eq!(unsafe { ea2p_track_mark_gap(&mut t) }, Ea2pStatus::Ok);
                core.mark_gap();
            }
            let mut p = MaybeUninit::uninit();
            // SAFETY: valid pointers.
            let s = unsafe { ea2p_track_push_power(&mut t, ts, w, p.as_mut_ptr()) };
            assert_eq!(s, Ea2pStatus::Ok);
            // SAFETY: written on success.
            let p = unsafe { p.assume_init() };
            assert_eq!(p, core.push_power(ts, w).unwrap().into());
            points.push(p);
        }
        let mut sum = MaybeUninit::uninit();
        let (mut total, mut avg, mut peak) = (0.0, 0.0, 0.0);
        // SAFETY: valid pointers.
        unsafe {
            assert_eq!(ea2p_track_summary(&t, sum.as_mut_ptr()), Ea2pStatus::Ok);
            assert_eq!(ea2p_track_total_j(&t, &mut total), Ea2pStatus::Ok);
            assert_eq!(ea2p_track_average_w(&t, &mut avg), Ea2pStatus::Ok);
            assert_eq!(ea2p_track_peak_w(&t, &mut peak), Ea2pStatus::Ok);
        }
        // SAFETY: written on success.
        let sum = unsafe { sum.assume_init() };
        assert_eq!(
            (total, avg, peak),
            (core.total_j(), core.average_w().unwrap(), 30.0)
        );
        assert_eq!(sum.total_j, total);
        assert_eq!(sum.average_w, avg);
        assert!(sum.has_average_w);
        assert_eq!(sum.points, 5);
        assert_eq!((sum.gaps, sum.gap_ns), (2, 6 * S));

        let core_points: Vec<EnergyPoint> = points.iter().map(EnergyPoint::from).collect();
        let want =
            window_energy(&core_points, SeriesKind::PowerSamples, S / 2, 7 * S, 1_000).unwrap();
        let mut w = MaybeUninit::uninit();
        // SAFETY: valid pointers.
        let s = unsafe {
            ea2p_window_energy(
                points.as_ptr(),
                points.len(),
                Ea2pSeriesKind::PowerSamples as u32,
                S / 2,
                7 * S,
                1_000,
                w.as_mut_ptr(),
            )
        };
        assert_eq!(s, Ea2pStatus::Ok);
        // SAFETY: written on success.
        let w = unsafe { w.assume_init() };
        assert_eq!(
            (w.energy_j, w.covered_ns, w.error_bound_j, w.overlaps_gap),
            (
                want.energy_j,
                want.covered_ns,
                want.error_bound_j,
                want.overlaps_gap
            )
        );
        assert!(w.overlaps_gap);
    }

    #[test]
    fn counter_track_and_refusals() {
        let mut t = init(Ea2pSeriesKind::Counter, 0);
        let mut p = MaybeUninit::uninit();
        // SAFETY: valid pointers (null out pointers are allowed for pushes).
        unsafe {
            assert_eq!(
                ea2p_track_push_energy(&mut t, 0, 1_000.0, null_mut()),
                Ea2pStatus::Ok
            );
            let mut avg = 0.0;
            assert_eq!(ea2p_track_average_w(&t, &mut avg), Ea2pStatus::Undefined);
            assert_eq!(
                ea2p_track_push_energy(&mut t, 2 * S, 1_100.0, p.as_mut_ptr()),
                Ea2pStatus::Ok
            );
            let p = p.assume_init();
            assert_eq!((p.energy_j, p.power_w), (100.0, 50.0));
            let before = t.state;
            assert_eq!(
                ea2p_track_push_energy(&mut t, 3 * S, 1_050.0, null_mut()),
                Ea2pStatus::EnergyDecreased
            );
            assert_eq!(
                ea2p_track_push_energy(&mut t, S, 2_000.0, null_mut()),
                Ea2pStatus::NotAfterPrevious
            );
            assert_eq!(
                ea2p_track_push_energy(&mut t, 4 * S, f64::NAN, null_mut()),
                Ea2pStatus::InvalidValue
            );
            assert_eq!(
                ea2p_track_push_power(&mut t, 4 * S, 1.0, null_mut()),
                Ea2pStatus::WrongKind
            );
            assert_eq!(t.state, before, "refused pushes leave the track unchanged");
        }
    }

    #[test]
    fn null_bad_kind_and_bad_windows_are_errors() {
        let mut t = MaybeUninit::<Ea2pTrack>::uninit();
        let mut w = MaybeUninit::uninit();
        let unsorted = [
            Ea2pEnergyPoint {
                t_ns: 5,
                energy_j: 0.0,
                power_w: 1.0,
                after_gap: false,
            },
            Ea2pEnergyPoint {
                t_ns: 5,
                energy_j: 0.0,
                power_w: 1.0,
                after_gap: false,
            },
        ];
        let mut x = 0.0;
        // SAFETY: valid or null pointers, as the contracts allow.
        unsafe {
            assert_eq!(ea2p_track_init(null_mut(), 0, 0), Ea2pStatus::NullPointer);
            assert_eq!(
                ea2p_track_init(t.as_mut_ptr(), 7, 0),
                Ea2pStatus::InvalidArgument
            );
            assert_eq!(ea2p_track_total_j(null(), &mut x), Ea2pStatus::NullPointer);
            assert_eq!(ea2p_track_mark_gap(null_mut()), Ea2pStatus::NullPointer);
            assert_eq!(
                ea2p_window_energy(null(), 0, 0, 0, 1, 0, w.as_mut_ptr()),
                Ea2pStatus::EmptySeries
            );
            assert_eq!(
                ea2p_window_energy(null(), 3, 0, 0, 1, 0, w.as_mut_ptr()),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_window_energy(unsorted.as_ptr(), 2, 0, 0, 10, 0, w.as_mut_ptr()),
                Ea2pStatus::InvalidArgument
            );
            assert_eq!(
                ea2p_window_energy(unsorted.as_ptr(), 1, 0, 9, 1, 0, w.as_mut_ptr()),
                Ea2pStatus::EndBeforeBegin
            );
        }
    }

    /// The serde shape of `EnergyTrack`, field for field, to build its largest encoding.
    #[derive(Serialize, Deserialize)]
    struct TrackShape {
        kind: SeriesKind,
        gap_threshold_ns: Nanos,
        first_t: Option<Nanos>,
        last: Option<EnergyPoint>,
        energy_origin_j: f64,
        peak_w: f64,
        gap_ns: Nanos,
        gap_energy_j: f64,
        gaps: u64,
        gap_pending: bool,
        points: u64,
    }

    #[test]
    fn largest_state_fits() {
        let largest = TrackShape {
            kind: SeriesKind::Counter,
            gap_threshold_ns: u64::MAX,
            first_t: Some(u64::MAX),
            last: Some(EnergyPoint {
                t: u64::MAX,
                energy_j: f64::MAX,
                power_w: f64::MAX,
                after_gap: true,
            }),
            energy_origin_j: f64::MAX,
            peak_w: f64::MAX,
            gap_ns: u64::MAX,
            gap_energy_j: f64::MAX,
            gaps: u64::MAX,
            gap_pending: true,
            points: u64::MAX,
        };
        let mut buf = [0u8; 512];
        let bytes = postcard::to_slice(&largest, &mut buf).unwrap();
        let decoded: EnergyTrack = postcard::from_bytes(bytes).unwrap();
        let mut again = [0u8; 512];
        assert_eq!(postcard::to_slice(&decoded, &mut again).unwrap(), &*bytes);
        assert_eq!(bytes.len(), 105);
        assert!(bytes.len() <= EA2P_TRACK_STATE_LEN);
    }

    #[test]
    fn max_power_matches_the_core() {
        assert_eq!(EA2P_MAX_POWER_W, ea2p_core::integrate::MAX_POWER_W);
    }
}
