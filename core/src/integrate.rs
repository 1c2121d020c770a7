//! Power and energy over time: samples at irregular timestamps turned into cumulative energy,
//! with gaps marked, running average and peak power, and energy over any window.
//!
//! Two kinds of source feed the same [`EnergyTrack`]:
//! - **power samples** (NVML power, ROCm average power, estimators): energy is the trapezoid
//!   integral, exact for power that is linear between samples;
//! - **cumulative energy** (an [`EnergyCounter`](crate::counter::EnergyCounter)'s total): energy
//!   is given, power is its slope over each segment.
//!
//! Each push returns an [`EnergyPoint`] (time, cumulative joules, power). A caller that keeps these
//! points (in memory or in a profile file) answers any window — nested, overlapping, beginning and
//! ending at any time — with [`window_energy`], which interpolates inside the segments that the
//! window's edges cut.

use serde::{Deserialize, Serialize};

use crate::units::{secs, Nanos};

/// The largest power a track accepts, in watts (a terawatt: above any machine or cluster, and low
/// enough that energies and their interpolation stay far from f64 overflow).
pub const MAX_POWER_W: f64 = 1e12;

/// How energy behaves inside one segment of a series, which decides how a window edge that falls
/// inside the segment is interpolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeriesKind {
    /// Power samples: power is linear between samples, so energy is quadratic inside a segment.
    PowerSamples,
    /// Counter totals: only the segment's total is known, so power is constant inside it and
    /// energy linear.
    Counter,
}

/// One point of a cumulative-energy series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EnergyPoint {
    /// When.
    pub t: Nanos,
    /// Energy accumulated since the series began, in joules.
    pub energy_j: f64,
    /// Power at this point: the sample itself for [`SeriesKind::PowerSamples`], the average over
    /// the segment that ends here for [`SeriesKind::Counter`] (0 for the first point).
    pub power_w: f64,
    /// True when the segment that ends here spans a gap (a failed source, or a delay longer than
    /// the track's gap threshold): its energy is interpolated, not observed.
    pub after_gap: bool,
}

/// Why a push was refused. The track is unchanged when a push is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PushError {
    /// The timestamp is not after the previous point's.
    NotAfterPrevious,
    /// The value is NaN, infinite or negative, or implies a power above [`MAX_POWER_W`].
    InvalidValue,
    /// A cumulative energy went down (feed counter totals, which never decrease).
    EnergyDecreased,
    /// A push of the other kind than the track's.
    WrongKind,
}

/// A running cumulative-energy series with its statistics, fed point by point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyTrack {
    kind: SeriesKind,
    gap_threshold_ns: Nanos,
    first_t: Option<Nanos>,
    last: Option<EnergyPoint>,
    /// Cumulative energy passed in by the first counter push, subtracted from later ones.
    energy_origin_j: f64,
    peak_w: f64,
    gap_ns: Nanos,
    gap_energy_j: f64,
    gaps: u64,
    gap_pending: bool,
    points: u64,
}

impl EnergyTrack {
    /// A new, empty track. A segment longer than `gap_threshold_ns` counts as a gap (use a few
    /// sampling intervals; 0 disables the check).
    pub const fn new(kind: SeriesKind, gap_threshold_ns: Nanos) -> Self {
        Self {
            kind,
            gap_threshold_ns,
            first_t: None,
            last: None,
            energy_origin_j: 0.0,
            peak_w: 0.0,
            gap_ns: 0,
            gap_energy_j: 0.0,
            gaps: 0,
            gap_pending: false,
            points: 0,
        }
    }

    /// The kind of series this track holds.
    pub fn kind(&self) -> SeriesKind {
        self.kind
    }

    /// Adds a power sample (watts) taken at `t`; energy since the previous sample is the
    /// trapezoid `(p0 + p1) / 2 x dt`.
    pub fn push_power(&mut self, t: Nanos, watts: f64) -> Result<EnergyPoint, PushError> {
        if self.kind != SeriesKind::PowerSamples {
            return Err(PushError::WrongKind);
        }
        if !(0.0..=MAX_POWER_W).contains(&watts) {
            return Err(PushError::InvalidValue);
        }
        let energy_j = match self.last {
            None => 0.0,
            Some(prev) if t <= prev.t => return Err(PushError::NotAfterPrevious),
            Some(prev) => prev.energy_j + trapezoid_j(prev.power_w, watts, t - prev.t),
        };
        if !energy_j.is_finite() {
            return Err(PushError::InvalidValue);
        }
        Ok(self.accept(t, energy_j, watts))
    }

    /// Adds a cumulative energy (joules, e.g. a counter's total) observed at `t`; the power of the
    /// segment is its slope.
    pub fn push_energy(&mut self, t: Nanos, cumulative_j: f64) -> Result<EnergyPoint, PushError> {
        if self.kind != SeriesKind::Counter {
            return Err(PushError::WrongKind);
        }
        if !cumulative_j.is_finite() || cumulative_j < 0.0 {
            return Err(PushError::InvalidValue);
        }
        let Some(prev) = self.last else {
            self.energy_origin_j = cumulative_j;
            return Ok(self.accept(t, 0.0, 0.0));
        };
        if t <= prev.t {
            return Err(PushError::NotAfterPrevious);
        }
        let energy_j = cumulative_j - self.energy_origin_j;
        if energy_j < prev.energy_j {
            return Err(PushError::EnergyDecreased);
        }
        let watts = (energy_j - prev.energy_j) / secs(t - prev.t);
        if !(0.0..=MAX_POWER_W).contains(&watts) {
            return Err(PushError::InvalidValue);
        }
        Ok(self.accept(t, energy_j, watts))
    }

    /// Marks that the source failed (read error, device lost): the next segment is a gap whatever
    /// its length.
    pub fn mark_gap(&mut self) {
        self.gap_pending = true;
    }

    fn accept(&mut self, t: Nanos, energy_j: f64, power_w: f64) -> EnergyPoint {
        let mut after_gap = false;
        if let Some(prev) = self.last {
            let dt = t - prev.t;
            after_gap =
                self.gap_pending || (self.gap_threshold_ns > 0 && dt > self.gap_threshold_ns);
            if after_gap {
                self.gaps += 1;
                self.gap_ns += dt;
                self.gap_energy_j += energy_j - prev.energy_j;
            }
        } else {
            self.first_t = Some(t);
        }
        self.gap_pending = false;
        if power_w > self.peak_w {
            self.peak_w = power_w;
        }
        let point = EnergyPoint {
            t,
            energy_j,
            power_w,
            after_gap,
        };
        self.last = Some(point);
        self.points += 1;
        point
    }

    /// Energy since the first point, in joules (gap segments included, interpolated).
    pub fn total_j(&self) -> f64 {
        self.last.map_or(0.0, |p| p.energy_j)
    }

    /// Time from the first to the last point.
    pub fn duration_ns(&self) -> Nanos {
        match (self.first_t, self.last) {
            (Some(first), Some(last)) => last.t - first,
            _ => 0,
        }
    }

    /// Average power since the first point, or `None` before two points.
    pub fn average_w(&self) -> Option<f64> {
        crate::metrics::average_power_w(self.total_j(), secs(self.duration_ns()))
    }

    /// Highest power seen: the highest sample, or the highest segment average for counters.
    ///
    /// Per segment, so a counter read as fast as it updates aliases into peaks up to twice the
    /// truth; the peak ea2p reports is [`crate::fold`]'s, over windows of at least 10 ms and the
    /// source's update period. This one stays for the C API's `ea2p_track_peak_w`.
    pub fn peak_w(&self) -> f64 {
        self.peak_w
    }

    /// Number of segments that were gaps, their total duration and the energy interpolated over
    /// them.
    pub fn gaps(&self) -> (u64, Nanos, f64) {
        (self.gaps, self.gap_ns, self.gap_energy_j)
    }

    /// The most recent point.
    pub fn last_point(&self) -> Option<EnergyPoint> {
        self.last
    }

    /// Points accepted so far.
    pub fn len(&self) -> u64 {
        self.points
    }

    /// True before the first point.
    pub fn is_empty(&self) -> bool {
        self.points == 0
    }
}

/// Trapezoid energy of a segment whose power goes linearly from `p0` to `p1` watts over `dt`.
#[inline]
pub fn trapezoid_j(p0_w: f64, p1_w: f64, dt: Nanos) -> f64 {
    0.5 * (p0_w + p1_w) * secs(dt)
}

/// The energy of a window, answered from a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowEnergy {
    /// Energy inside the part of the window that the series covers.
    pub energy_j: f64,
    /// How much of the window the series covers (the window is clipped to the series' span).
    pub covered_ns: Nanos,
    /// Bound on the error due to the sensor's update period: the sensor's value lags or leads by
    /// up to one period at each edge, so the energy near the edges is uncertain by up to the local
    /// peak power x min(update period, window length). Dominant for windows shorter than a period.
    pub error_bound_j: f64,
    /// True when the window overlaps a gap segment.
    pub overlaps_gap: bool,
}

/// Why a window could not be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowError {
    /// The series has no point.
    EmptySeries,
    /// The window ends before it begins.
    EndBeforeBegin,
    /// The window lies entirely outside the series' span.
    NoOverlap,
}

/// Cumulative energy at time `t` (which must lie within the series' span), interpolated inside
/// the segment that contains it according to `kind`.
pub fn energy_at(points: &[EnergyPoint], kind: SeriesKind, t: Nanos) -> Option<f64> {
    let first = points.first()?;
    let last = points.last()?;
    if t < first.t || t > last.t {
        return None;
    }
    // First point at or after t.
    let i = points.partition_point(|p| p.t < t);
    let p1 = points[i];
    if p1.t == t || i == 0 {
        return Some(p1.energy_j);
    }
    let p0 = points[i - 1];
    let span = secs(p1.t - p0.t);
    let tau = secs(t - p0.t);
    let seg = p1.energy_j - p0.energy_j;
    Some(match kind {
        SeriesKind::Counter => p0.energy_j + seg * (tau / span),
        SeriesKind::PowerSamples => {
            // Power linear from p0 to p1: E(tau) = p0 tau + (p1 - p0) tau^2 / (2 span).
            p0.energy_j + p0.power_w * tau + (p1.power_w - p0.power_w) * tau * tau / (2.0 * span)
        }
    })
}

/// Energy between `begin` and `end` from a series of points sorted by time, clipped to the
/// series' span.
pub fn window_energy(
    points: &[EnergyPoint],
    kind: SeriesKind,
    begin: Nanos,
    end: Nanos,
    update_period_ns: Nanos,
) -> Result<WindowEnergy, WindowError> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Err(WindowError::EmptySeries);
    };
    if end < begin {
        return Err(WindowError::EndBeforeBegin);
    }
    let (b, e) = (begin.max(first.t), end.min(last.t));
    if b > e || (b == e && begin != end) {
        return Err(WindowError::NoOverlap);
    }
    let eb = energy_at(points, kind, b).unwrap_or(0.0);
    let ee = energy_at(points, kind, e).unwrap_or(eb);
    // Points whose segments touch [b, e]: from the segment containing b to the one containing e.
    let lo = points.partition_point(|p| p.t <= b).saturating_sub(1);
    let hi = points.partition_point(|p| p.t < e).min(points.len() - 1);
    let mut peak = 0.0f64;
    let mut overlaps_gap = false;
    for (i, p) in points[lo..=hi].iter().enumerate() {
        peak = peak.max(p.power_w);
        // A point's gap flag describes the segment ending at it, which touches the window unless
        // it is the first point considered.
        overlaps_gap |= p.after_gap && (i > 0 || p.t > b);
    }
    if kind == SeriesKind::Counter && hi + 1 < points.len() {
        peak = peak.max(points[hi + 1].power_w);
    }
    let covered = e - b;
    Ok(WindowEnergy {
        energy_j: (ee - eb).max(0.0),
        covered_ns: covered,
        error_bound_j: peak * secs(update_period_ns.min(covered)),
        overlaps_gap,
    })
}

impl core::fmt::Display for PushError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PushError::NotAfterPrevious => "the reading's time is not after the previous one's",
            PushError::InvalidValue => {
                "the value is NaN, infinite, negative, or implies an impossible power"
            }
            PushError::EnergyDecreased => "a cumulative energy went down",
            PushError::WrongKind => "a reading of the other kind than the series'",
        })
    }
}

impl core::error::Error for PushError {}

impl core::fmt::Display for WindowError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            WindowError::EmptySeries => "the series has no reading",
            WindowError::EndBeforeBegin => "the window ends before it begins",
            WindowError::NoOverlap => "the window lies outside the series' span",
        })
    }
}

impl core::error::Error for WindowError {}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn track_of(samples: &[(Nanos, f64)]) -> (EnergyTrack, heapless::Vec<EnergyPoint, 32>) {
        let mut tr = EnergyTrack::new(SeriesKind::PowerSamples, 0);
        let mut pts = heapless::Vec::new();
        for &(t, w) in samples {
            pts.push(tr.push_power(t, w).unwrap()).unwrap();
        }
        (tr, pts)
    }

    #[test]
    fn trapezoid_of_a_ramp() {
        let (tr, _) = track_of(&[(0, 0.0), (2 * S, 100.0), (3 * S, 100.0)]);
        assert_eq!(tr.total_j(), 100.0 + 100.0);
        assert_eq!(tr.peak_w(), 100.0);
        assert_eq!(tr.average_w(), Some(200.0 / 3.0));
    }

    #[test]
    fn window_inside_a_ramp_is_quadratic() {
        let (_, pts) = track_of(&[(0, 0.0), (2 * S, 100.0)]);
        // Power is 50 t: energy from 0 to 1 s is 25 J, from 1 s to 2 s is 75 J.
        let w = window_energy(&pts, SeriesKind::PowerSamples, 0, S, 0).unwrap();
        assert!((w.energy_j - 25.0).abs() < 1e-12);
        let w = window_energy(&pts, SeriesKind::PowerSamples, S, 2 * S, 0).unwrap();
        assert!((w.energy_j - 75.0).abs() < 1e-12);
    }

    #[test]
    fn counter_series_power_is_the_slope() {
        let mut tr = EnergyTrack::new(SeriesKind::Counter, 0);
        tr.push_energy(0, 1_000.0).unwrap();
        let p = tr.push_energy(2 * S, 1_100.0).unwrap();
        assert_eq!(p.energy_j, 100.0);
        assert_eq!(p.power_w, 50.0);
        assert_eq!(
            tr.push_energy(3 * S, 1_050.0),
            Err(PushError::EnergyDecreased)
        );
        assert_eq!(tr.push_power(4 * S, 1.0), Err(PushError::WrongKind));
    }

    #[test]
    fn refused_pushes_leave_the_track_unchanged() {
        let (mut tr, _) = track_of(&[(S, 10.0)]);
        let before = tr.clone();
        assert_eq!(tr.push_power(S, 10.0), Err(PushError::NotAfterPrevious));
        assert_eq!(tr.push_power(2 * S, f64::NAN), Err(PushError::InvalidValue));
        assert_eq!(tr.push_power(2 * S, -1.0), Err(PushError::InvalidValue));
        assert_eq!(tr, before);
    }

    #[test]
    fn absurd_power_is_refused() {
        // Found by the counter_integration fuzz target: 1e306 W overflowed the interpolation.
        let mut tr = EnergyTrack::new(SeriesKind::PowerSamples, 0);
        assert_eq!(tr.push_power(0, 1.4e306), Err(PushError::InvalidValue));
        assert!(tr.push_power(0, MAX_POWER_W).is_ok());
        let mut ct = EnergyTrack::new(SeriesKind::Counter, 0);
        ct.push_energy(0, 0.0).unwrap();
        assert_eq!(ct.push_energy(1, 1e300), Err(PushError::InvalidValue));
    }

    #[test]
    fn gaps_are_marked_by_threshold_and_by_failure() {
        let mut tr = EnergyTrack::new(SeriesKind::PowerSamples, 10);
        tr.push_power(0, 1.0).unwrap();
        assert!(!tr.push_power(5, 1.0).unwrap().after_gap);
        assert!(tr.push_power(100, 1.0).unwrap().after_gap);
        tr.mark_gap();
        assert!(tr.push_power(101, 1.0).unwrap().after_gap);
        assert!(!tr.push_power(102, 1.0).unwrap().after_gap);
        let (n, ns, _) = tr.gaps();
        assert_eq!((n, ns), (2, 96));
    }

    #[test]
    fn short_window_reports_an_error_bound() {
        let (_, pts) = track_of(&[(0, 100.0), (S, 100.0)]);
        // 1 ms window on a sensor updating every 100 ms: bound = 100 W x 1 ms.
        let w = window_energy(
            &pts,
            SeriesKind::PowerSamples,
            S / 2,
            S / 2 + 1_000_000,
            100_000_000,
        )
        .unwrap();
        assert!((w.energy_j - 0.1).abs() < 1e-9);
        assert!((w.error_bound_j - 0.1).abs() < 1e-9);
    }

    #[test]
    fn window_errors() {
        assert_eq!(
            window_energy(&[], SeriesKind::Counter, 0, 1, 0),
            Err(WindowError::EmptySeries)
        );
        let (_, pts) = track_of(&[(S, 1.0), (2 * S, 1.0)]);
        assert_eq!(
            window_energy(&pts, SeriesKind::PowerSamples, 2, 1, 0),
            Err(WindowError::EndBeforeBegin)
        );
        assert_eq!(
            window_energy(&pts, SeriesKind::PowerSamples, 3 * S, 4 * S, 0),
            Err(WindowError::NoOverlap)
        );
        // Clipped to the series' span.
        let w = window_energy(&pts, SeriesKind::PowerSamples, 0, 10 * S, 0).unwrap();
        assert_eq!(w.covered_ns, S);
        assert_eq!(w.energy_j, 1.0);
    }
}
