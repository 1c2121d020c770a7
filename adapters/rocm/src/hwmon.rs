//! Board power from the amdgpu driver's hwmon files, for the amdsmi path.
//!
//! amdsmi reports power through `amdsmi_get_power_info`, whose struct changed layout between ROCm
//! releases (fields added before the power fields, widths changed from 32 to 64 bits), so reading
//! it through a fixed Rust struct would misread other versions. The same value lives in sysfs,
//! which amdsmi and ROCm SMI read themselves: `<pci device>/hwmon/hwmonN/power1_average` (or
//! `power1_input` on boards that only report current power) and `power1_cap`, in micro-watts.
//!
//! The files are read by ea2p-linux's hwmon reader ([`ea2p_linux::hwmon`]: bounded reads, no
//! FIFO or device followed); this module only finds the PCI device's `hwmon` directory and turns
//! the reader's errors into the backend's.

use std::path::{Path, PathBuf};

use ea2p_linux::hwmon::{self as linux_hwmon, AttrError};

use crate::backend::BackendError;

/// A PCI address decoded from amdsmi's / ROCm SMI's 64-bit BDF id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciAddress {
    /// PCI domain.
    pub domain: u32,
    /// Bus.
    pub bus: u8,
    /// Device.
    pub device: u8,
    /// Function.
    pub function: u8,
}

impl PciAddress {
    /// Decodes `BDFID = (DOMAIN << 32) | (PARTITION << 28) | (BUS << 8) | (DEVICE << 3) |
    /// FUNCTION` (amdsmi.h, `amdsmi_get_gpu_bdf_id`).
    pub fn from_bdf_id(bdf: u64) -> Self {
        Self {
            domain: (bdf >> 32) as u32,
            bus: ((bdf >> 8) & 0xff) as u8,
            device: ((bdf >> 3) & 0x1f) as u8,
            function: (bdf & 0x7) as u8,
        }
    }

    /// `dddd:bb:dd.f`, the name of the device's sysfs directory.
    pub fn sysfs_name(&self) -> String {
        format!(
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// The first `hwmon*` directory of a PCI device under `sys_root` (normally `/sys`).
pub fn hwmon_dir(sys_root: &Path, pci: PciAddress) -> Option<PathBuf> {
    let dir = sys_root
        .join("bus/pci/devices")
        .join(pci.sysfs_name())
        .join("hwmon");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("hwmon"))
        })
        .collect();
    entries.sort();
    entries.into_iter().next()
}

fn backend_error(e: AttrError) -> BackendError {
    match e {
        AttrError::NotFound { .. } => BackendError::Gone(e.to_string()),
        AttrError::PermissionDenied { .. } => BackendError::PermissionDenied(e.to_string()),
        _ => BackendError::Other(e.to_string()),
    }
}

/// Average board power in micro-watts: `power1_average`, else `power1_input`.
pub fn power_uw(hwmon: &Path) -> Result<u64, BackendError> {
    linux_hwmon::power_uw(hwmon, 1).map_err(backend_error)
}

/// The power cap in micro-watts (`power1_cap`).
pub fn power_cap_uw(hwmon: &Path) -> Option<u64> {
    linux_hwmon::read_u64_attr(&hwmon.join("power1_cap"), "micro-watts")
        .ok()
        .filter(|&w| w > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn bdf_ids_decode() {
        let bdf = (0x1u64 << 32) | (0xc1 << 8) | (0x1f << 3) | 0x5;
        let p = PciAddress::from_bdf_id(bdf);
        assert_eq!(p.sysfs_name(), "0001:c1:1f.5");
        let with_partition = (0xau64 << 28) | (0x03 << 8);
        assert_eq!(
            PciAddress::from_bdf_id(with_partition).sysfs_name(),
            "0000:03:00.0"
        );
    }

    #[test]
    fn reads_average_then_input_then_reports_the_file() {
        let root = tempfile::tempdir().unwrap();
        let pci = PciAddress::from_bdf_id(0x03 << 8);
        let hw = root
            .path()
            .join("bus/pci/devices/0000:03:00.0/hwmon/hwmon4");
        std::fs::create_dir_all(&hw).unwrap();
        std::fs::write(hw.join("power1_input"), "123000000\n").unwrap();
        std::fs::write(hw.join("power1_cap"), "300000000\n").unwrap();
        let found = hwmon_dir(root.path(), pci).unwrap();
        assert_eq!(found, hw);
        assert_eq!(power_uw(&found), Ok(123_000_000));
        std::fs::write(hw.join("power1_average"), "99000000").unwrap();
        assert_eq!(power_uw(&found), Ok(99_000_000));
        assert_eq!(power_cap_uw(&found), Some(300_000_000));
        std::fs::write(hw.join("power1_average"), "n/a").unwrap();
        let e = power_uw(&found).unwrap_err();
        assert!(e.to_string().contains("expected micro-watts"), "{e}");
        // A FIFO where the attribute should be: refused by the bounded reader, never blocked on.
        std::fs::remove_file(hw.join("power1_average")).unwrap();
        let fifo =
            std::ffi::CString::new(hw.join("power1_average").into_os_string().into_vec()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = power_uw(&found).unwrap_err();
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        std::fs::remove_dir_all(&hw).unwrap();
        assert!(matches!(power_uw(&hw), Err(BackendError::Gone(_))));
        assert_eq!(hwmon_dir(root.path(), pci), None);
    }
}
