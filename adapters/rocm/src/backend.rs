//! The few queries this crate needs from an AMD GPU library, behind a trait, so that the source
//! logic is tested with [`crate::fake::FakeAmd`] and runs on amdsmi or ROCm SMI for real.

/// Why one query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The board, driver or library version does not offer this query.
    #[error("not supported")]
    NotSupported,
    /// The device or its sysfs files went away.
    #[error("GPU gone: {0}")]
    Gone(String),
    /// The caller may not run this query.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// One reading of the energy accumulator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyCount {
    /// The accumulator, in ticks of `resolution_uj`.
    pub ticks: u64,
    /// Micro-joules per tick as the library reports it (about 15.3 on MI200/MI300).
    pub resolution_uj: f32,
    /// The library's timestamp of the value, in nanoseconds (informational: its clock and unit
    /// are not reliable across firmware, so elapsed time comes from the caller's clock).
    pub timestamp_ns: u64,
}

/// The queries used per GPU, by the library's own device index.
pub trait AmdBackend: Send + Sync + std::fmt::Debug {
    /// Which library answers (`"libamd_smi.so"`, `"librocm_smi64.so"`, or a fake's name).
    fn library(&self) -> &'static str;
    /// Short prefix for source names (`"amdsmi"`, `"rocm-smi"`).
    fn short_name(&self) -> &'static str;
    /// Number of GPUs.
    fn device_count(&self) -> u32;
    /// Marketing name, when known.
    fn name(&self, index: u32) -> Option<String>;
    /// The energy accumulator.
    fn energy(&self, index: u32) -> Result<EnergyCount, BackendError>;
    /// Average board power, in micro-watts.
    fn average_power_uw(&self, index: u32) -> Result<u64, BackendError>;
    /// The board's power cap, in micro-watts, when known.
    fn power_cap_uw(&self, index: u32) -> Option<u64>;
}

/// Maps a `rsmi_status_t` (rocm_smi.h: 0 success, 2 NOT_SUPPORTED, 3 FILE_ERROR, 4 PERMISSION,
/// 9 NOT_YET_IMPLEMENTED, 10 NOT_FOUND) to a [`BackendError`]; `None` for success.
pub fn rsmi_status(call: &str, status: u32) -> Option<BackendError> {
    match status {
        0 => None,
        2 | 9 => Some(BackendError::NotSupported),
        4 => Some(BackendError::PermissionDenied(format!(
            "{call}: RSMI_STATUS_PERMISSION"
        ))),
        3 | 10 => Some(BackendError::Gone(format!("{call}: status {status}"))),
        s => Some(BackendError::Other(format!("{call}: status {s}"))),
    }
}

/// Maps an `amdsmi_status_t` (amdsmi.h: 0 success, 2 NOT_SUPPORTED, 3 NOT_YET_IMPLEMENTED,
/// 10 NO_PERM, 14 FILE_ERROR, 31 NOT_FOUND, 34 DRIVER_NOT_LOADED) to a [`BackendError`].
pub fn amdsmi_status(call: &str, status: u32) -> Option<BackendError> {
    match status {
        0 => None,
        2 | 3 => Some(BackendError::NotSupported),
        10 => Some(BackendError::PermissionDenied(format!(
            "{call}: AMDSMI_STATUS_NO_PERM"
        ))),
        14 | 31 | 34 => Some(BackendError::Gone(format!("{call}: status {status}"))),
        s => Some(BackendError::Other(format!("{call}: status {s}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_kinds() {
        assert_eq!(rsmi_status("x", 0), None);
        assert_eq!(rsmi_status("x", 2), Some(BackendError::NotSupported));
        assert!(matches!(
            rsmi_status("x", 4),
            Some(BackendError::PermissionDenied(_))
        ));
        assert!(matches!(rsmi_status("x", 3), Some(BackendError::Gone(_))));
        assert!(matches!(
            rsmi_status("x", 0xFFFF_FFFF),
            Some(BackendError::Other(_))
        ));
        assert_eq!(amdsmi_status("x", 0), None);
        assert_eq!(amdsmi_status("x", 3), Some(BackendError::NotSupported));
        assert!(matches!(
            amdsmi_status("x", 10),
            Some(BackendError::PermissionDenied(_))
        ));
        assert!(matches!(
            amdsmi_status("x", 34),
            Some(BackendError::Gone(_))
        ));
        assert!(matches!(
            amdsmi_status("x", 7),
            Some(BackendError::Other(_))
        ));
    }
}
