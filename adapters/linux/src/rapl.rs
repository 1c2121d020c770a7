//! Intel/AMD RAPL energy counters through the powercap sysfs interface.
//!
//! Zones live in `/sys/class/powercap/intel-rapl:N` (a package, or `psys`) and their subzones in
//! `intel-rapl:N:M` (`core`, `uncore`, `dram`). AMD Zen processors appear there too. The
//! `intel-rapl-mmio:N` zones duplicate the package domains through MMIO and are skipped, as is the
//! `intel-rapl` control-type directory. Each zone has `name`, `energy_uj` (a counter that wraps
//! after `max_energy_range_uj`) and power-limit constraints.
//!
//! Since Linux 5.10, `energy_uj` is readable by root only (CVE-2020-8694, the "Platypus" power
//! side channel): [`RaplProblem::PermissionDenied`] says so and gives the commands that grant read
//! access to a group.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadError, ReadErrorKind, Source,
    SourceInfo,
};
use ea2p_core::units::{Nanos, NANOS_PER_MS};

/// RAPL counters update about every millisecond (Intel SDM vol. 3B, 15.10.1: the energy status
/// unit is updated at ~1 kHz); reading them faster gains nothing.
pub const UPDATE_PERIOD_NS: Nanos = NANOS_PER_MS;

/// Headroom over the largest power limit of a zone for the impossible-delta bound: packages run
/// above their long-term limit (PL1) for short bursts up to PL2, and some firmware reports limits
/// below what the part draws. A delta above 1.5 x the largest limit x elapsed is rejected.
pub const POWER_LIMIT_HEADROOM: f64 = 1.5;

/// One RAPL zone that can be read.
#[derive(Debug)]
pub struct RaplSource {
    energy_path: PathBuf,
    /// Kept open: each read is one `pread` at offset 0, not open + read + close.
    file: Option<fs::File>,
    zone: String,
    info: SourceInfo,
}

impl RaplSource {
    /// The zone's directory name, e.g. `intel-rapl:0:2`.
    pub fn zone(&self) -> &str {
        &self.zone
    }
}

impl Source for RaplSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn read(&mut self, _now: Nanos) -> Result<RawReading, ReadError> {
        use std::os::unix::fs::FileExt;
        if self.file.is_none() {
            self.file = Some(
                crate::bounded::open_regular(&self.energy_path).map_err(|e| io_read_error(&e))?,
            );
        }
        let mut buf = [0u8; 32];
        let n = match self.file.as_ref().map(|f| f.read_at(&mut buf, 0)) {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                // Reopen next time: the zone may have been removed and re-created.
                self.file = None;
                return Err(io_read_error(&e));
            }
            None => 0,
        };
        let text = std::str::from_utf8(&buf[..n]).unwrap_or("").trim();
        text.parse::<u64>().map(RawReading::Counter).map_err(|_| {
            ReadError::new(
                ReadErrorKind::Malformed,
                &format!("{}: expected an integer, found {:?}", self.zone, text),
            )
        })
    }
}

fn io_read_error(e: &io::Error) -> ReadError {
    let kind = match e.kind() {
        io::ErrorKind::PermissionDenied => ReadErrorKind::PermissionDenied,
        io::ErrorKind::NotFound => ReadErrorKind::Gone,
        _ => ReadErrorKind::Other,
    };
    ReadError::new(kind, &e.to_string())
}

/// A zone that exists but cannot be used, with the reason and, where there is one, the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaplProblem {
    /// `energy_uj` exists but may not be read by this user.
    #[error(
        "{path}: permission denied. Since Linux 5.10 energy_uj is readable by root only \
         (CVE-2020-8694). To let the group 'power' read it until the next boot: \
         `sudo groupadd -f power && sudo chgrp power /sys/class/powercap/intel-rapl:*/energy_uj \
         /sys/class/powercap/intel-rapl:*:*/energy_uj && sudo chmod g+r \
         /sys/class/powercap/intel-rapl:*/energy_uj /sys/class/powercap/intel-rapl:*:*/energy_uj` \
         and add yourself to it (`sudo usermod -aG power $USER`, then log in again); to keep it \
         across boots, a udev rule in /etc/udev/rules.d/99-powercap.rules: \
         `SUBSYSTEM==\"powercap\", ACTION==\"add\", RUN+=\"/bin/chgrp power /sys%p/energy_uj\", \
         RUN+=\"/bin/chmod g+r /sys%p/energy_uj\"`"
    )]
    PermissionDenied {
        /// The file that could not be read.
        path: String,
    },
    /// A file of the zone is missing or malformed.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file at fault.
        path: String,
        /// What was expected.
        reason: String,
    },
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct RaplDiscovery {
    /// Zones that can be read, sorted by zone name (`intel-rapl:0`, `intel-rapl:0:0`, ...).
    pub sources: Vec<RaplSource>,
    /// Zones that exist but cannot be used.
    pub problems: Vec<RaplProblem>,
}

/// Why there is no RAPL at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaplUnavailable {
    /// No powercap directory (no RAPL driver, a VM, or a container without /sys).
    #[error(
        "{0} does not exist: no powercap RAPL here (a VM, a container without /sys, or the \
         intel_rapl_common / intel_rapl_msr modules not loaded: try `sudo modprobe intel_rapl_msr`)"
    )]
    NoPowercap(String),
    /// The directory exists but holds no `intel-rapl:` zone.
    #[error("{0} has no intel-rapl zone")]
    NoZones(String),
}

/// Finds every RAPL zone and subzone under `sysfs_root` (normally `/sys`).
pub fn discover(sysfs_root: &Path) -> Result<RaplDiscovery, RaplUnavailable> {
    let dir = sysfs_root.join("class/powercap");
    let entries =
        fs::read_dir(&dir).map_err(|_| RaplUnavailable::NoPowercap(dir.display().to_string()))?;
    let mut zones: Vec<(String, Vec<u32>)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let indices = zone_indices(&name)?;
            Some((name, indices))
        })
        .collect();
    if zones.is_empty() {
        return Err(RaplUnavailable::NoZones(dir.display().to_string()));
    }
    zones.sort_by(|a, b| a.1.cmp(&b.1));
    let mut found = RaplDiscovery::default();
    for (zone, indices) in zones {
        match open_zone(&dir.join(&zone), &zone, indices[0]) {
            Ok(source) => found.sources.push(source),
            Err(problem) => found.problems.push(problem),
        }
    }
    Ok(found)
}

/// `intel-rapl:N` -> `[N]`, `intel-rapl:N:M` -> `[N, M]`; anything else (the `intel-rapl`
/// control type, `intel-rapl-mmio:N` duplicates, other powercap drivers) -> `None`.
pub fn zone_indices(dir_name: &str) -> Option<Vec<u32>> {
    let rest = dir_name.strip_prefix("intel-rapl:")?;
    let indices: Option<Vec<u32>> = rest.split(':').map(|p| p.parse().ok()).collect();
    indices.filter(|v| (1..=2).contains(&v.len()))
}

/// The component a zone's `name` file designates, and its index (the socket for packages).
pub fn component_of(name: &str, socket: u32) -> Option<(Component, u32)> {
    if let Some(n) = name.strip_prefix("package-") {
        return Some((Component::CpuPackage, n.parse().unwrap_or(socket)));
    }
    Some(match name {
        "core" => (Component::CpuCores, socket),
        "uncore" => (Component::Uncore, socket),
        "dram" => (Component::Dram, socket),
        "psys" => (Component::Platform, socket),
        _ => return None,
    })
}

fn read_trimmed(path: &Path) -> Result<String, RaplProblem> {
    crate::bounded::read_to_string(path, crate::bounded::SYSFS_ATTR_MAX)
        .map(|s| s.trim().to_string())
        .map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => RaplProblem::PermissionDenied {
                path: path.display().to_string(),
            },
            _ => RaplProblem::Malformed {
                path: path.display().to_string(),
                reason: e.to_string(),
            },
        })
}

fn read_u64(path: &Path) -> Result<u64, RaplProblem> {
    let text = read_trimmed(path)?;
    text.parse().map_err(|_| RaplProblem::Malformed {
        path: path.display().to_string(),
        reason: format!("expected an integer, found {text:?}"),
    })
}

/// The largest `constraint_*_max_power_uw` or `constraint_*_power_limit_uw` of a zone, in watts.
fn largest_limit_w(zone_dir: &Path) -> Option<f64> {
    let mut best: Option<u64> = None;
    for entry in fs::read_dir(zone_dir).ok()?.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("constraint_")
            && (name.ends_with("_max_power_uw") || name.ends_with("_power_limit_uw"))
        {
            if let Ok(v) = read_u64(&entry.path()) {
                if v > 0 {
                    best = Some(best.map_or(v, |b| b.max(v)));
                }
            }
        }
    }
    best.map(|uw| uw as f64 * 1e-6)
}

fn open_zone(zone_dir: &Path, zone: &str, socket: u32) -> Result<RaplSource, RaplProblem> {
    let name = read_trimmed(&zone_dir.join("name"))?;
    let (component, index) = component_of(&name, socket).ok_or_else(|| RaplProblem::Malformed {
        path: zone_dir.join("name").display().to_string(),
        reason: format!(
            "unknown RAPL domain {name:?}: expected package-N, core, uncore, dram or psys"
        ),
    })?;
    let max = read_u64(&zone_dir.join("max_energy_range_uj"))?;
    let energy_path = zone_dir.join("energy_uj");
    // Read once now, so that a permission problem is reported at discovery, not mid-run.
    read_u64(&energy_path)?;
    let info = SourceInfo {
        component,
        index,
        provenance: Provenance::Measured,
        quantity: Quantity::EnergyCounter {
            joules_per_tick: 1e-6,
            max_ticks: Some(max),
        },
        update_period_ns: UPDATE_PERIOD_NS,
        max_power_w: largest_limit_w(zone_dir).map(|w| w * POWER_LIMIT_HEADROOM),
        name: truncated(&format!("rapl {zone} {name}")),
    };
    Ok(RaplSource {
        file: crate::bounded::open_regular(&energy_path).ok(),
        energy_path,
        zone: zone.to_string(),
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names() {
        assert_eq!(zone_indices("intel-rapl:0"), Some(vec![0]));
        assert_eq!(zone_indices("intel-rapl:1:2"), Some(vec![1, 2]));
        assert_eq!(zone_indices("intel-rapl"), None);
        assert_eq!(zone_indices("intel-rapl-mmio:0"), None);
        assert_eq!(zone_indices("intel-rapl:x"), None);
        assert_eq!(zone_indices("intel-rapl:0:1:2"), None);
    }

    #[test]
    fn components() {
        assert_eq!(
            component_of("package-1", 0),
            Some((Component::CpuPackage, 1))
        );
        assert_eq!(component_of("dram", 1), Some((Component::Dram, 1)));
        assert_eq!(component_of("psys", 0), Some((Component::Platform, 0)));
        assert_eq!(component_of("gpu", 0), None);
    }

    #[test]
    fn io_errors_map_to_read_error_kinds() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(io_read_error(&denied).kind, ReadErrorKind::PermissionDenied);
        let gone = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(io_read_error(&gone).kind, ReadErrorKind::Gone);
    }

    #[test]
    fn permission_message_names_the_cve_and_the_fix() {
        let msg = RaplProblem::PermissionDenied {
            path: "/sys/class/powercap/intel-rapl:0/energy_uj".into(),
        }
        .to_string();
        assert!(msg.contains("CVE-2020-8694"));
        assert!(msg.contains("chmod g+r"));
        assert!(msg.contains("99-powercap.rules"));
    }
}
