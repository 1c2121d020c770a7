//! # ea2p-capi
//!
//! A C ABI over [`ea2p_core`] for job schedulers and firmware that are not written in Rust:
//! energy counters, energy tracks, the CPU and RAM power estimators, the metrics, the job model,
//! the eight scheduling policies, and the measuring session ([`Ea2pSession`]). The header
//! `include/ea2p.h` is generated from this crate by cbindgen (the `header_is_up_to_date` test
//! fails when it is stale).
//!
//! Conventions, the same for every function:
//!
//! - Memory is the caller's: every struct is `#[repr(C)]` and allocated by the caller (on the
//!   stack, in static storage or on its heap). Nothing allocated on one side is freed on the
//!   other. Stateful objects ([`Ea2pCounter`], [`Ea2pTrack`]) are plain byte arrays that the
//!   caller may copy, store or persist.
//! - Functions that can fail return an [`Ea2pStatus`] and write their result through an out
//!   pointer. A null pointer gives [`Ea2pStatus::NullPointer`], never undefined behaviour; an
//!   out pointer is only written on success.
//! - No panic crosses the boundary: every body runs under `catch_unwind` and a panic (a bug)
//!   becomes [`Ea2pStatus::Panicked`].
//! - Enumerations passed *into* the library are plain `uint32_t` values (an out-of-range value is
//!   an error, not undefined behaviour); the C enums document the values.
//! - The measuring session ([`Ea2pSession`]) is the exception to caller-owned memory: an opaque
//!   handle owned by Rust, made by `ea2p_session_new` and freed by `ea2p_session_free`, in the
//!   manner of rustls-ffi; C never sees its layout.
//! - Time is integer nanoseconds from an origin the caller chooses, as everywhere in ea2p-core.

#![warn(missing_docs)]

use core::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

mod counter;
mod estimate;
mod metrics;
mod policy;
mod session;
mod track;

pub use counter::*;
pub use estimate::*;
pub use metrics::*;
pub use policy::*;
pub use session::*;
pub use track::*;

/// Result of every fallible function. `EA2P_STATUS_OK` (0) is success; any other value says why
/// nothing was written to the out pointers.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ea2pStatus {
    /// Success.
    Ok = 0,
    /// A required pointer was null.
    NullPointer = 1,
    /// An argument is out of its range (a non-positive tick size, an unknown enum value, more
    /// GPU types or models than the fixed tables hold).
    InvalidArgument = 2,
    /// A counter or track was not initialised by its `_init` function (wrong magic number).
    NotInitialized = 3,
    /// A counter or track's state bytes do not decode: the struct was overwritten.
    CorruptState = 4,
    /// The value is undefined for these inputs (an average over no time, Jain's index of an
    /// empty or all-zero set, a rate with no job): nothing written.
    Undefined = 5,
    /// Track push: the timestamp is not after the previous point's.
    NotAfterPrevious = 10,
    /// Track push: NaN, infinite or negative value, or a power above `EA2P_MAX_POWER_W`.
    InvalidValue = 11,
    /// Track push: a cumulative energy went down.
    EnergyDecreased = 12,
    /// Track push: a power sample into an energy track, or the reverse.
    WrongKind = 13,
    /// Window: the series has no point.
    EmptySeries = 20,
    /// Window: the window ends before it begins.
    EndBeforeBegin = 21,
    /// Window: the window lies entirely outside the series.
    NoOverlap = 22,
    /// RAM fit: fewer than two samples, or all at the same traffic.
    Underdetermined = 30,
    /// RAM fit: the fit gave a negative background or activity cost.
    Unphysical = 31,
    /// Job model: the GPU type is out of range or the model has no figures for it.
    UnknownGpuType = 40,
    /// Job model: zero GPUs, or more than the model may use.
    BadGpuCount = 41,
    /// Job model: zero batch, more per GPU than fits, or fewer samples than GPUs.
    BadBatch = 42,
    /// Job model: the published figures given to the step-time fit are inconsistent.
    BadFit = 43,
    /// Policy: more models or GPU types than the fixed tables hold, or fewer free counts than
    /// GPU types.
    TooManyModelsOrTypes = 50,
    /// Policy: a job names a model index that is not in the cluster view.
    UnknownModel = 51,
    /// Session: no source has this id.
    UnknownSource = 60,
    /// Session: another source has this id.
    DuplicateId = 61,
    /// Session: as many sources, or regions open at once, as the session holds.
    TooMany = 62,
    /// Session: a region of this name is open already.
    RegionOpen = 63,
    /// Session: no open region has this name.
    RegionNotOpen = 64,
    /// Session: no region has this id (never begun, not measured, or forgotten).
    UnknownRegion = 65,
    /// Session: a name or string that is empty where a name is needed, or not UTF-8.
    InvalidName = 66,
    /// Session: the sink returned non-zero for a record (the fold still took it; the profile
    /// misses that frame).
    SinkFailed = 67,
    /// Session: not allowed now (a reading after `ea2p_session_finish`, a sink set after the
    /// first source).
    WrongState = 68,
    /// A bug: the library panicked. The out pointers and the state are unchanged.
    Panicked = 99,
}

impl Ea2pStatus {
    /// Every status, for `ea2p_status_name` and the tests.
    pub(crate) const ALL: [Ea2pStatus; 31] = [
        Ea2pStatus::Ok,
        Ea2pStatus::NullPointer,
        Ea2pStatus::InvalidArgument,
        Ea2pStatus::NotInitialized,
        Ea2pStatus::CorruptState,
        Ea2pStatus::Undefined,
        Ea2pStatus::NotAfterPrevious,
        Ea2pStatus::InvalidValue,
        Ea2pStatus::EnergyDecreased,
        Ea2pStatus::WrongKind,
        Ea2pStatus::EmptySeries,
        Ea2pStatus::EndBeforeBegin,
        Ea2pStatus::NoOverlap,
        Ea2pStatus::Underdetermined,
        Ea2pStatus::Unphysical,
        Ea2pStatus::UnknownGpuType,
        Ea2pStatus::BadGpuCount,
        Ea2pStatus::BadBatch,
        Ea2pStatus::BadFit,
        Ea2pStatus::TooManyModelsOrTypes,
        Ea2pStatus::UnknownModel,
        Ea2pStatus::UnknownSource,
        Ea2pStatus::DuplicateId,
        Ea2pStatus::TooMany,
        Ea2pStatus::RegionOpen,
        Ea2pStatus::RegionNotOpen,
        Ea2pStatus::UnknownRegion,
        Ea2pStatus::InvalidName,
        Ea2pStatus::SinkFailed,
        Ea2pStatus::WrongState,
        Ea2pStatus::Panicked,
    ];

    /// A NUL-terminated static name.
    const fn name(self) -> &'static core::ffi::CStr {
        match self {
            Ea2pStatus::Ok => c"ok",
            Ea2pStatus::NullPointer => c"null pointer",
            Ea2pStatus::InvalidArgument => c"invalid argument",
            Ea2pStatus::NotInitialized => c"not initialised",
            Ea2pStatus::CorruptState => c"corrupt state",
            Ea2pStatus::Undefined => c"undefined for these inputs",
            Ea2pStatus::NotAfterPrevious => c"timestamp not after the previous point",
            Ea2pStatus::InvalidValue => c"invalid value",
            Ea2pStatus::EnergyDecreased => c"cumulative energy decreased",
            Ea2pStatus::WrongKind => c"push of the wrong kind for this track",
            Ea2pStatus::EmptySeries => c"empty series",
            Ea2pStatus::EndBeforeBegin => c"window ends before it begins",
            Ea2pStatus::NoOverlap => c"window outside the series",
            Ea2pStatus::Underdetermined => c"fit underdetermined",
            Ea2pStatus::Unphysical => c"fit unphysical",
            Ea2pStatus::UnknownGpuType => c"unknown GPU type",
            Ea2pStatus::BadGpuCount => c"bad GPU count",
            Ea2pStatus::BadBatch => c"bad batch",
            Ea2pStatus::BadFit => c"inconsistent figures for the step-time fit",
            Ea2pStatus::TooManyModelsOrTypes => c"too many models or GPU types",
            Ea2pStatus::UnknownModel => c"job names an unknown model",
            Ea2pStatus::UnknownSource => c"no source has this id",
            Ea2pStatus::DuplicateId => c"source id already in use",
            Ea2pStatus::TooMany => c"too many sources or open regions",
            Ea2pStatus::RegionOpen => c"region already open",
            Ea2pStatus::RegionNotOpen => c"region not open",
            Ea2pStatus::UnknownRegion => c"no region has this id",
            Ea2pStatus::InvalidName => c"name empty or not UTF-8",
            Ea2pStatus::SinkFailed => c"the profile sink failed",
            Ea2pStatus::WrongState => c"not allowed in the session's state",
            Ea2pStatus::Panicked => c"internal error (panic)",
        }
    }
}

/// A short, static, NUL-terminated description of a status code, for error messages. Unknown
/// codes give "unknown status". The string must not be freed.
#[no_mangle]
pub extern "C" fn ea2p_status_name(status: i32) -> *const c_char {
    Ea2pStatus::ALL
        .iter()
        .find(|s| **s as i32 == status)
        .map_or(c"unknown status".as_ptr(), |s| s.name().as_ptr())
}

/// The library's version (the crate version), static and NUL-terminated; must not be freed.
#[no_mangle]
pub extern "C" fn ea2p_version() -> *const c_char {
    const VERSION: &core::ffi::CStr = match core::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(s) => s,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

// ---------------------------------------------------------------------------------------------
// Boundary helpers: the only places where raw pointers become references.

/// Runs `f`, turning its error into a status and a panic into `Ea2pStatus.Panicked`.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Ea2pStatus>) -> Ea2pStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Ea2pStatus::Ok,
        Ok(Err(status)) => status,
        Err(_) => Ea2pStatus::Panicked,
    }
}

/// Borrows `*p`, or `Ea2pStatus.NullPointer`.
///
/// # Safety
/// `p` is null or points to a valid, aligned, initialised `T` that nothing mutates for `'a`.
pub(crate) unsafe fn input<'a, T>(p: *const T) -> Result<&'a T, Ea2pStatus> {
    // SAFETY: the caller guarantees `p` is null or valid for reads; `as_ref` handles null.
    unsafe { p.as_ref() }.ok_or(Ea2pStatus::NullPointer)
}

/// Borrows `*p` mutably, or `Ea2pStatus.NullPointer`.
///
/// # Safety
/// `p` is null or points to a valid, aligned, initialised `T` that nothing else accesses for
/// `'a`.
pub(crate) unsafe fn inout<'a, T>(p: *mut T) -> Result<&'a mut T, Ea2pStatus> {
    // SAFETY: the caller guarantees `p` is null or valid and unaliased; `as_mut` handles null.
    unsafe { p.as_mut() }.ok_or(Ea2pStatus::NullPointer)
}

/// Borrows `len` elements at `p`; `p` may be null when `len` is 0.
///
/// # Safety
/// When `len > 0`, `p` is null or points to `len` valid, aligned, initialised `T`s that nothing
/// mutates for `'a`.
pub(crate) unsafe fn input_slice<'a, T>(p: *const T, len: usize) -> Result<&'a [T], Ea2pStatus> {
    if len == 0 {
        Ok(&[])
    } else if p.is_null() {
        Err(Ea2pStatus::NullPointer)
    } else {
        // SAFETY: non-null, and the caller guarantees `len` valid elements at `p`.
        Ok(unsafe { core::slice::from_raw_parts(p, len) })
    }
}

/// Borrows `len` writable elements at `p`; `p` may be null when `len` is 0.
///
/// # Safety
/// When `len > 0`, `p` is null or points to `len` valid, aligned, initialised `T`s that nothing
/// else accesses for `'a`.
pub(crate) unsafe fn output_slice<'a, T>(p: *mut T, len: usize) -> Result<&'a mut [T], Ea2pStatus> {
    if len == 0 {
        Ok(&mut [])
    } else if p.is_null() {
        Err(Ea2pStatus::NullPointer)
    } else {
        // SAFETY: non-null, and the caller guarantees `len` valid, unaliased elements at `p`.
        Ok(unsafe { core::slice::from_raw_parts_mut(p, len) })
    }
}

/// Fails with `Ea2pStatus.NullPointer` when an out pointer is null, before any work is done.
pub(crate) fn need<T>(out: *mut T) -> Result<(), Ea2pStatus> {
    if out.is_null() {
        Err(Ea2pStatus::NullPointer)
    } else {
        Ok(())
    }
}

/// Writes `value` to the out pointer `out` (which may point to uninitialised memory).
///
/// # Safety
/// `out` is null or valid and aligned for a write of `T`.
pub(crate) unsafe fn put<T>(out: *mut T, value: T) -> Result<(), Ea2pStatus> {
    need(out)?;
    // SAFETY: non-null, and the caller guarantees `out` is valid and aligned for writes;
    // `write` does not read or drop the old (possibly uninitialised) value.
    unsafe { out.write(value) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::CStr;

    #[test]
    fn status_names_are_distinct_and_unknown_codes_are_named() {
        let mut seen = std::collections::BTreeSet::new();
        for s in Ea2pStatus::ALL {
            // SAFETY: ea2p_status_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(ea2p_status_name(s as i32)) };
            seen.insert((s as i32, name.to_str().unwrap().to_owned()));
        }
        let codes: std::collections::BTreeSet<_> = seen.iter().map(|(c, _)| *c).collect();
        let names: std::collections::BTreeSet<_> = seen.iter().map(|(_, n)| n.clone()).collect();
        assert_eq!(codes.len(), names.len());
        assert_eq!(codes.len(), Ea2pStatus::ALL.len());
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(ea2p_status_name(12345)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown status");
    }

    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: ea2p_version returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(ea2p_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn a_panic_becomes_a_status() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let s = guard(|| panic!("bug"));
        std::panic::set_hook(prev);
        assert_eq!(s, Ea2pStatus::Panicked);
    }
}
