//! Wrapping hardware energy counters ([`ea2p_core::counter`]) in caller-allocated structs.
//!
//! The state of an [`EnergyCounter`] lives in the caller's [`Ea2pCounter`] as its postcard
//! encoding: decoding validates every byte, so a struct that C code overwrote gives
//! [`Ea2pStatus::CorruptState`] instead of undefined behaviour, and the struct can be copied,
//! stored or persisted across a reboot as plain bytes.

use ea2p_core::counter::{CounterEvent, CounterSpec, CounterStats, CounterUpdate, EnergyCounter};
use serde::{de::DeserializeOwned, Serialize};

use crate::{guard, inout, input, put, Ea2pStatus};

/// Bytes of state in an `Ea2pCounter`: the largest postcard encoding of a counter is 159 bytes
/// (checked by a test), the rest is room for the core to grow without an ABI change.
pub const EA2P_COUNTER_STATE_LEN: usize = 192;

/// Written to `Ea2pCounter.magic` by `ea2p_counter_init`; any other value means the struct
/// was never initialised.
pub const EA2P_COUNTER_MAGIC: u32 = 0xEA2C_0001;

/// An energy counter followed through successive reads. Allocate it anywhere (it holds no
/// pointer), initialise it with `ea2p_counter_init`, and treat the fields as private.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Ea2pCounter {
    /// `EA2P_COUNTER_MAGIC` once initialised.
    pub magic: u32,
    /// Bytes of `state` in use.
    pub state_len: u32,
    /// The counter's state, encoded (opaque).
    pub state: [u8; EA2P_COUNTER_STATE_LEN],
}

/// What is known about a counter: tick size, wrap point and the power bound of its component.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ea2pCounterSpec {
    /// Joules per counter tick (1e-6 for RAPL `energy_uj`, 1e-3 for NVML); finite and positive.
    pub joules_per_tick: f64,
    /// Largest value before the counter wraps to zero (RAPL `max_energy_range_uj`), used when
    /// `has_max_ticks`.
    pub max_ticks: u64,
    /// Whether `max_ticks` is known. Without it a backwards step is always a reset.
    pub has_max_ticks: bool,
    /// The component's maximum power in watts (finite, not negative), used when
    /// `has_max_power`: deltas above it x elapsed time are rejected as impossible.
    pub max_power_w: f64,
    /// Whether `max_power_w` is known.
    pub has_max_power: bool,
    /// The counter's own update period in ns (0 if unknown): the power bound is applied over
    /// `elapsed + period`.
    pub update_period_ns: u64,
}

/// What one reading did to the total.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ea2pCounterEvent {
    /// The first reading: it sets the baseline and adds nothing.
    Baseline = 0,
    /// The counter moved forward by a plausible amount, which was added.
    Advanced = 1,
    /// The counter wrapped once; the wrapped delta was added.
    Wrapped = 2,
    /// A backwards step that is not a plausible wrap (driver reload): nothing added, re-based.
    Reset = 3,
    /// A delta above the component's maximum power x elapsed time: not added, re-based.
    Rejected = 4,
    /// The timestamp is not after the previous reading's: ignored.
    OutOfOrder = 5,
    /// The value is above the declared largest value: ignored.
    OutOfRange = 6,
}

impl From<CounterEvent> for Ea2pCounterEvent {
    fn from(e: CounterEvent) -> Self {
        match e {
            CounterEvent::Baseline => Self::Baseline,
            CounterEvent::Advanced => Self::Advanced,
            CounterEvent::Wrapped => Self::Wrapped,
            CounterEvent::Reset => Self::Reset,
            CounterEvent::Rejected => Self::Rejected,
            CounterEvent::OutOfOrder => Self::OutOfOrder,
            CounterEvent::OutOfRange => Self::OutOfRange,
        }
    }
}

/// The outcome of one `ea2p_counter_update`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ea2pCounterUpdate {
    /// What happened.
    pub event: Ea2pCounterEvent,
    /// Ticks added to the total by this reading.
    pub added_ticks: u64,
    /// Ticks seen but not added (a rejected delta); 0 otherwise.
    pub discarded_ticks: u64,
    /// True when the counter may have wrapped more than once since the previous reading (the
    /// smallest consistent delta was added).
    pub ambiguous: bool,
}

impl From<CounterUpdate> for Ea2pCounterUpdate {
    fn from(u: CounterUpdate) -> Self {
        Self {
            event: u.event.into(),
            added_ticks: u.added_ticks,
            discarded_ticks: u.discarded_ticks,
            ambiguous: u.ambiguous,
        }
    }
}

/// Counts of everything unusual a counter has seen, for reports.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ea2pCounterStats {
    /// Readings accepted (advanced or wrapped), baseline excluded.
    pub accepted: u64,
    /// Single wraps handled.
    pub wraps: u64,
    /// Resets detected.
    pub resets: u64,
    /// Impossible deltas rejected.
    pub rejected: u64,
    /// Readings where more than one wrap was possible.
    pub ambiguous: u64,
    /// Readings ignored because their time was not after the previous one.
    pub out_of_order: u64,
    /// Readings ignored because their value was above the declared largest value.
    pub out_of_range: u64,
    /// True when a backwards step was seen on a counter whose wrap point is unknown.
    pub backwards_without_max: bool,
}

impl From<&CounterStats> for Ea2pCounterStats {
    fn from(s: &CounterStats) -> Self {
        Self {
            accepted: s.accepted,
            wraps: s.wraps,
            resets: s.resets,
            rejected: s.rejected,
            ambiguous: s.ambiguous,
            out_of_order: s.out_of_order,
            out_of_range: s.out_of_range,
            backwards_without_max: s.backwards_without_max,
        }
    }
}

impl Ea2pCounterSpec {
    /// The core's spec, or `EA2P_STATUS_INVALID_ARGUMENT` for a tick size or power bound that
    /// is not a finite, positive (non-negative for the bound) number.
    pub(crate) fn to_core(self) -> Result<CounterSpec, Ea2pStatus> {
        if !(self.joules_per_tick.is_finite() && self.joules_per_tick > 0.0) {
            return Err(Ea2pStatus::InvalidArgument);
        }
        let mut spec =
            CounterSpec::new(self.joules_per_tick).with_update_period_ns(self.update_period_ns);
        if self.has_max_ticks {
            spec = spec.with_max_ticks(self.max_ticks);
        }
        if self.has_max_power {
            if !(self.max_power_w.is_finite() && self.max_power_w >= 0.0) {
                return Err(Ea2pStatus::InvalidArgument);
            }
            spec = spec.with_max_power_w(self.max_power_w);
        }
        Ok(spec)
    }
}

// ---------------------------------------------------------------------------------------------
// State bytes shared by counters and tracks.

/// Decodes a state after checking its magic number and length.
pub(crate) fn load<T: DeserializeOwned>(
    magic: u32,
    expected_magic: u32,
    state_len: u32,
    state: &[u8],
) -> Result<T, Ea2pStatus> {
    if magic != expected_magic {
        return Err(Ea2pStatus::NotInitialized);
    }
    let bytes = state
        .get(..state_len as usize)
        .ok_or(Ea2pStatus::CorruptState)?;
    match postcard::from_bytes::<T>(bytes) {
        Ok(v) => Ok(v),
        Err(_) => Err(Ea2pStatus::CorruptState),
    }
}

/// Encodes a state into a fresh buffer (so a failure leaves the caller's struct untouched).
pub(crate) fn encode<T: Serialize, const N: usize>(
    value: &T,
) -> Result<([u8; N], u32), Ea2pStatus> {
    let mut buf = [0u8; N];
    // Capacity is checked by tests against the largest encoding; failing here is a bug.
    let used = postcard::to_slice(value, &mut buf)
        .map_err(|_| Ea2pStatus::Panicked)?
        .len();
    Ok((buf, used as u32))
}

impl Ea2pCounter {
    fn load(&self) -> Result<EnergyCounter, Ea2pStatus> {
        load(self.magic, EA2P_COUNTER_MAGIC, self.state_len, &self.state)
    }

    fn from_core(counter: &EnergyCounter) -> Result<Self, Ea2pStatus> {
        let (state, state_len) = encode(counter)?;
        Ok(Self {
            magic: EA2P_COUNTER_MAGIC,
            state_len,
            state,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Functions.

/// Initialises `counter` (which may be uninitialised memory) for a counter described by `spec`,
/// with no reading yet.
///
/// Returns `EA2P_STATUS_NULL_POINTER` or `EA2P_STATUS_INVALID_ARGUMENT` (a tick size that is not
/// finite and positive, a power bound that is NaN, infinite or negative).
///
/// # Safety
/// `counter` is null or valid for writes of an `Ea2pCounter`; `spec` is null or points to an
/// initialised `Ea2pCounterSpec`.
#[no_mangle]
pub unsafe extern "C" fn ea2p_counter_init(
    counter: *mut Ea2pCounter,
    spec: *const Ea2pCounterSpec,
) -> Ea2pStatus {
    guard(|| {
        crate::need(counter)?;
        // SAFETY: forwarded from this function's contract.
        let spec = unsafe { input(spec) }?.to_core()?;
        let value = Ea2pCounter::from_core(&EnergyCounter::new(spec))?;
        // SAFETY: forwarded from this function's contract (valid for writes).
        unsafe { put(counter, value) }
    })
}

/// Feeds the raw counter value `raw` read at `now_ns` and, when `out` is not null, writes what
/// the reading did (added, wrapped, reset, rejected...).
///
/// Every reading is handled (even an ignored one is `EA2P_STATUS_OK` with its event); errors are
/// only `EA2P_STATUS_NULL_POINTER`, `EA2P_STATUS_NOT_INITIALIZED` and
/// `EA2P_STATUS_CORRUPT_STATE`, which leave the counter unchanged.
///
/// # Safety
/// `counter` is null or points to an `Ea2pCounter` that nothing else accesses during the call;
/// `out` is null or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_counter_update(
    counter: *mut Ea2pCounter,
    now_ns: u64,
    raw: u64,
    out: *mut Ea2pCounterUpdate,
) -> Ea2pStatus {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let c = unsafe { inout(counter) }?;
        let mut core = c.load()?;
        let update = core.update(now_ns, raw);
        *c = Ea2pCounter::from_core(&core)?;
        if !out.is_null() {
            // SAFETY: non-null, and valid for writes by this function's contract.
            unsafe { put(out, update.into()) }?;
        }
        Ok(())
    })
}

/// Writes the counter's accumulated total in joules to `out_j`.
///
/// # Safety
/// `counter` is null or points to an initialised `Ea2pCounter`; `out_j` is null or valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_counter_total_j(
    counter: *const Ea2pCounter,
    out_j: *mut f64,
) -> Ea2pStatus {
    guard(|| {
        crate::need(out_j)?;
        // SAFETY: forwarded from this function's contract.
        let total = unsafe { input(counter) }?.load()?.total_j();
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_j, total) }
    })
}

/// Writes the counter's exact total in ticks to `out_ticks`, saturating at `UINT64_MAX` (which
/// is 1.8e13 J at one micro-joule per tick).
///
/// # Safety
/// `counter` is null or points to an initialised `Ea2pCounter`; `out_ticks` is null or valid
/// for writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_counter_total_ticks(
    counter: *const Ea2pCounter,
    out_ticks: *mut u64,
) -> Ea2pStatus {
    guard(|| {
        crate::need(out_ticks)?;
        // SAFETY: forwarded from this function's contract.
        let total = unsafe { input(counter) }?.load()?.total_ticks();
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_ticks, u64::try_from(total).unwrap_or(u64::MAX)) }
    })
}

/// Writes the counts of wraps, resets, rejected and ignored readings to `out`.
///
/// # Safety
/// `counter` is null or points to an initialised `Ea2pCounter`; `out` is null or valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn ea2p_counter_stats(
    counter: *const Ea2pCounter,
    out: *mut Ea2pCounterStats,
) -> Ea2pStatus {
    guard(|| {
        crate::need(out)?;
        // SAFETY: forwarded from this function's contract.
        let core = unsafe { input(counter) }?.load()?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, core.stats().into()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::MaybeUninit;
    use serde::Deserialize;

    fn rapl_spec() -> Ea2pCounterSpec {
        Ea2pCounterSpec {
            joules_per_tick: 1e-6,
            max_ticks: 16_383,
            has_max_ticks: true,
            max_power_w: 1.0,
            has_max_power: true,
            update_period_ns: 0,
        }
    }

    fn init(spec: &Ea2pCounterSpec) -> Ea2pCounter {
        let mut c = MaybeUninit::<Ea2pCounter>::uninit();
        // SAFETY: both pointers are valid.
        assert_eq!(
            unsafe { ea2p_counter_init(c.as_mut_ptr(), spec) },
            Ea2pStatus::Ok
        );
        // SAFETY: initialised by ea2p_counter_init on success.
        unsafe { c.assume_init() }
    }

    #[test]
    fn same_totals_and_events_as_the_core() {
        let spec = rapl_spec();
        let mut c = init(&spec);
        let mut core = EnergyCounter::new(spec.to_core().unwrap());
        let reads = [10_000u64, 10_001, 12_313, 8_213, 0, 20_000, 5];
        for (i, &r) in reads.iter().enumerate() {
            let t = i as u64 * 10_000_000;
            let mut u = MaybeUninit::uninit();
            // SAFETY: valid pointers.
            assert_eq!(
                unsafe { ea2p_counter_update(&mut c, t, r, u.as_mut_ptr()) },
                Ea2pStatus::Ok
            );
            // SAFETY: written on success.
            let u = unsafe { u.assume_init() };
            assert_eq!(u, core.update(t, r).into());
        }
        let (mut j, mut ticks, mut stats) = (0.0, 0u64, MaybeUninit::uninit());
        // SAFETY: valid pointers.
        unsafe {
            assert_eq!(ea2p_counter_total_j(&c, &mut j), Ea2pStatus::Ok);
            assert_eq!(ea2p_counter_total_ticks(&c, &mut ticks), Ea2pStatus::Ok);
            assert_eq!(ea2p_counter_stats(&c, stats.as_mut_ptr()), Ea2pStatus::Ok);
        }
        assert_eq!(j, core.total_j());
        assert_eq!(ticks as u128, core.total_ticks());
        // SAFETY: written on success.
        assert_eq!(unsafe { stats.assume_init() }, core.stats().into());
        assert_eq!(core.stats().resets, 1);
        assert_eq!(core.stats().out_of_range, 1);
    }

    #[test]
    fn null_and_uninitialised_and_corrupt_are_errors() {
        let spec = rapl_spec();
        let mut j = 0.0;
        // SAFETY: null pointers are allowed by the contract.
        unsafe {
            assert_eq!(
                ea2p_counter_init(core::ptr::null_mut(), &spec),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_counter_update(core::ptr::null_mut(), 0, 0, core::ptr::null_mut()),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_counter_total_j(core::ptr::null(), &mut j),
                Ea2pStatus::NullPointer
            );
        }
        let mut c = init(&spec);
        // SAFETY: valid pointers; a null out pointer is allowed for update.
        unsafe {
            assert_eq!(
                ea2p_counter_total_j(&c, core::ptr::null_mut()),
                Ea2pStatus::NullPointer
            );
            assert_eq!(
                ea2p_counter_update(&mut c, 1, 5, core::ptr::null_mut()),
                Ea2pStatus::Ok
            );
        }
        let mut zeroed = Ea2pCounter {
            magic: 0,
            state_len: 0,
            state: [0; EA2P_COUNTER_STATE_LEN],
        };
        let mut corrupt = c;
        corrupt.state_len = 3;
        let mut too_long = c;
        too_long.state_len = u32::MAX;
        // SAFETY: valid pointers.
        unsafe {
            assert_eq!(
                ea2p_counter_update(&mut zeroed, 1, 1, core::ptr::null_mut()),
                Ea2pStatus::NotInitialized
            );
            assert_eq!(
                ea2p_counter_update(&mut corrupt, 2, 1, core::ptr::null_mut()),
                Ea2pStatus::CorruptState
            );
            assert_eq!(
                ea2p_counter_total_j(&too_long, &mut j),
                Ea2pStatus::CorruptState
            );
        }
        for bad in [0.0, -1e-6, f64::NAN, f64::INFINITY] {
            let s = Ea2pCounterSpec {
                joules_per_tick: bad,
                ..spec
            };
            let mut out = MaybeUninit::uninit();
            // SAFETY: valid pointers.
            assert_eq!(
                unsafe { ea2p_counter_init(out.as_mut_ptr(), &s) },
                Ea2pStatus::InvalidArgument
            );
        }
        let s = Ea2pCounterSpec {
            max_power_w: f64::NAN,
            ..spec
        };
        let mut out = MaybeUninit::uninit();
        // SAFETY: valid pointers.
        assert_eq!(
            unsafe { ea2p_counter_init(out.as_mut_ptr(), &s) },
            Ea2pStatus::InvalidArgument
        );
    }

    /// The serde shape of `EnergyCounter`, field for field, to build its largest encoding.
    #[derive(Serialize, Deserialize)]
    struct CounterShape {
        spec: CounterSpec,
        last: Option<(u64, u64)>,
        since: u64,
        total_ticks: u128,
        stats: CounterStats,
    }

    #[test]
    fn largest_state_fits() {
        let largest = CounterShape {
            spec: CounterSpec::new(f64::MAX)
                .with_max_ticks(u64::MAX)
                .with_max_power_w(f64::MAX)
                .with_update_period_ns(u64::MAX),
            last: Some((u64::MAX, u64::MAX)),
            since: u64::MAX,
            total_ticks: u128::MAX,
            stats: CounterStats {
                accepted: u64::MAX,
                wraps: u64::MAX,
                resets: u64::MAX,
                rejected: u64::MAX,
                ambiguous: u64::MAX,
                out_of_order: u64::MAX,
                out_of_range: u64::MAX,
                backwards_without_max: true,
            },
        };
        let mut buf = [0u8; 512];
        let bytes = postcard::to_slice(&largest, &mut buf).unwrap();
        // The shape is the counter's: it decodes as one and re-encodes to the same bytes (a core
        // field added or removed fails here).
        let decoded: EnergyCounter = postcard::from_bytes(bytes).unwrap();
        let mut again = [0u8; 512];
        assert_eq!(postcard::to_slice(&decoded, &mut again).unwrap(), &*bytes);
        assert_eq!(decoded.total_ticks(), u128::MAX);
        assert_eq!(bytes.len(), 159);
        assert!(bytes.len() <= EA2P_COUNTER_STATE_LEN);
    }
}
