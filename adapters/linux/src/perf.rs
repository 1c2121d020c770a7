//! The perf `power` PMU: the same RAPL energy counters as powercap, through `perf_event_open`,
//! for machines where `energy_uj` is root-only (kernel 5.10+, CVE-2020-8694) but perf is allowed
//! (`perf_event_paranoid` <= 0, or CAP_PERFMON).
//!
//! Discovery reads `<sysfs>/bus/event_source/devices/power/`: `type` (the PMU's dynamic type),
//! `events/energy-*` (`event=0x02`), their `.scale` (joules per count, e.g.
//! `2.3283064365386962890625e-10` = 2^-32 J) and `.unit` (`Joules`), and `cpumask` (one CPU per
//! package: `0,48`). Each event is opened once per package CPU (pid -1: the whole package);
//! the kernel extends the 32-bit RAPL MSR to a 64-bit count, so the counter never wraps in
//! practice. Opening goes through [`PerfBackend`], so tests use a fake one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadError, ReadErrorKind, Source,
    SourceInfo,
};
use ea2p_core::units::{Nanos, NANOS_PER_MS};

/// RAPL counters update about every millisecond, whichever interface reads them.
pub const UPDATE_PERIOD_NS: Nanos = NANOS_PER_MS;

/// Most CPUs a cpumask may list (guards against a malformed `0-4294967295`).
pub const MAX_CPUS: usize = 65_536;

/// The PMU's directory under a sysfs root.
pub fn pmu_dir(sysfs_root: &Path) -> PathBuf {
    sysfs_root.join("bus/event_source/devices/power")
}

/// A sysfs file of the PMU that does not say what it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ParseError {
    /// The file.
    pub path: String,
    /// What was expected, and what was found.
    pub reason: String,
}

fn parse_error(path: &Path, reason: String) -> ParseError {
    ParseError {
        path: path.display().to_string(),
        reason,
    }
}

/// `event=0x02` (terms separated by commas; the power PMU uses only `event`) -> 2.
pub fn parse_event_config(text: &str, path: &Path) -> Result<u64, ParseError> {
    let mut config = None;
    for term in text
        .trim()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let (name, value) = term.split_once('=').unwrap_or((term, "1"));
        if name.trim() != "event" {
            return Err(parse_error(
                path,
                format!("unexpected term {name:?}: the power PMU's events set only `event`"),
            ));
        }
        let v = value.trim();
        let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => v.parse::<u64>(),
        };
        config = Some(parsed.map_err(|_| {
            parse_error(path, format!("expected event=0xNN, found the value {v:?}"))
        })?);
    }
    config.ok_or_else(|| parse_error(path, format!("expected event=0xNN, found {text:?}")))
}

/// A `.scale` file: joules (or whatever the unit is) per count; finite and positive.
pub fn parse_scale(text: &str, path: &Path) -> Result<f64, ParseError> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(parse_error(
            path,
            format!("expected a positive number like 2.3283064365386962890625e-10, found {text:?}"),
        )),
    }
}

/// A `.unit` file; only `Joules` is an energy unit this adapter can use.
pub fn parse_unit(text: &str, path: &Path) -> Result<(), ParseError> {
    match text.trim() {
        "Joules" => Ok(()),
        other => Err(parse_error(
            path,
            format!("expected the unit Joules, found {other:?}"),
        )),
    }
}

/// A CPU list (`0,48`, `0-3,8`) -> the CPUs, sorted, without duplicates.
pub fn parse_cpumask(text: &str, path: &Path) -> Result<Vec<u32>, ParseError> {
    let mut cpus = Vec::new();
    let bad = |what: &str| {
        parse_error(
            path,
            format!("expected a CPU list like 0,48 or 0-3, found {what:?}"),
        )
    };
    for part in text
        .trim()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: u32 = lo.parse().map_err(|_| bad(part))?;
        let hi: u32 = hi.parse().map_err(|_| bad(part))?;
        if hi < lo
            || (hi - lo) as usize >= MAX_CPUS
            || cpus.len() + ((hi - lo) as usize) >= MAX_CPUS
        {
            return Err(bad(part));
        }
        cpus.extend(lo..=hi);
    }
    if cpus.is_empty() {
        return Err(bad(text));
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// `energy-pkg` -> the component it measures.
pub fn component_of(event: &str) -> Option<Component> {
    Some(match event {
        "energy-pkg" => Component::CpuPackage,
        "energy-cores" => Component::CpuCores,
        // The integrated GPU's domain (PP1) sits in the package like the uncore.
        "energy-gpu" => Component::Uncore,
        "energy-ram" => Component::Dram,
        "energy-psys" => Component::Platform,
        _ => return None,
    })
}

/// One energy event of the PMU.
#[derive(Debug, Clone, PartialEq)]
pub struct PmuEvent {
    /// `energy-pkg`, `energy-ram`...
    pub name: String,
    /// The `config` value to open it with.
    pub config: u64,
    /// Joules per count.
    pub joules_per_count: f64,
}

/// What the PMU's sysfs directory describes.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerPmu {
    /// The PMU's directory.
    pub dir: PathBuf,
    /// Its dynamic perf type.
    pub pmu_type: u32,
    /// Energy events, sorted by name.
    pub events: Vec<PmuEvent>,
    /// One CPU per package, in package order.
    pub package_cpus: Vec<u32>,
}

/// Why there is no perf power PMU to use at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PerfUnavailable {
    /// The kernel exposes no `power` PMU (no RAPL perf support, most VMs).
    #[error("{0} does not exist: no perf power PMU here (no RAPL perf events: a VM, or a kernel without them)")]
    NoPmu(String),
    /// A file of the PMU is malformed.
    #[error(transparent)]
    Malformed(#[from] ParseError),
    /// `perf_event_open` is refused.
    #[error(
        "perf_event_open refused ({reason}); perf_event_paranoid is {paranoid}: system-wide \
         events need <= 0 or CAP_PERFMON: `sudo sysctl kernel.perf_event_paranoid=0` (or run \
         with CAP_PERFMON)"
    )]
    Denied {
        /// The OS error.
        reason: String,
        /// `/proc/sys/kernel/perf_event_paranoid`, or `unknown`.
        paranoid: String,
    },
}

/// Reads the PMU description under `sysfs_root`. Events whose files are malformed, or whose
/// unit is not joules, are returned as problems; the rest are usable.
pub fn read_pmu(sysfs_root: &Path) -> Result<(PowerPmu, Vec<ParseError>), PerfUnavailable> {
    let dir = pmu_dir(sysfs_root);
    let type_path = dir.join("type");
    let text = crate::bounded::read_to_string(&type_path, crate::bounded::SYSFS_ATTR_MAX)
        .map_err(|_| PerfUnavailable::NoPmu(dir.display().to_string()))?;
    let pmu_type = text.trim().parse::<u32>().map_err(|_| {
        parse_error(
            &type_path,
            format!("expected the PMU type number, found {text:?}"),
        )
    })?;
    let mask_path = dir.join("cpumask");
    let mask = crate::bounded::read_to_string(&mask_path, crate::bounded::SYSFS_ATTR_MAX)
        .map_err(|e| parse_error(&mask_path, e.to_string()))?;
    let package_cpus = parse_cpumask(&mask, &mask_path)?;
    let mut events = Vec::new();
    let mut problems = Vec::new();
    let mut names: Vec<String> = fs::read_dir(dir.join("events"))
        .map_err(|e| parse_error(&dir.join("events"), e.to_string()))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("energy-") && !n.contains('.'))
        .collect();
    names.sort();
    for name in names {
        match read_event(&dir.join("events"), &name) {
            Ok(e) => events.push(e),
            Err(p) => problems.push(p),
        }
    }
    Ok((
        PowerPmu {
            dir,
            pmu_type,
            events,
            package_cpus,
        },
        problems,
    ))
}

fn read_event(events_dir: &Path, name: &str) -> Result<PmuEvent, ParseError> {
    let read = |suffix: &str| {
        let p = events_dir.join(format!("{name}{suffix}"));
        crate::bounded::read_to_string(&p, crate::bounded::SYSFS_ATTR_MAX)
            .map(|t| (t, p.clone()))
            .map_err(|e| parse_error(&p, e.to_string()))
    };
    let (text, p) = read("")?;
    let config = parse_event_config(&text, &p)?;
    let (text, p) = read(".scale")?;
    let joules_per_count = parse_scale(&text, &p)?;
    let (text, p) = read(".unit")?;
    parse_unit(&text, &p)?;
    Ok(PmuEvent {
        name: name.to_string(),
        config,
        joules_per_count,
    })
}

/// An open perf counter.
pub trait PerfCounter: Send {
    /// The 64-bit count.
    fn read(&mut self) -> io::Result<u64>;
}

/// Opens counters of the power PMU: the kernel's (`perf_event_open`, [`SystemPerf`]) or a fake.
pub trait PerfBackend {
    /// Opens `event` of `pmu` on `cpu`, counting for the whole package (pid -1), enabled.
    fn open(&self, pmu: &PowerPmu, event: &PmuEvent, cpu: u32) -> io::Result<Box<dyn PerfCounter>>;
}

/// The kernel's perf events, through perf-event2's dynamic-PMU events.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemPerf;

struct SystemCounter(perf_event::Counter);

impl PerfCounter for SystemCounter {
    fn read(&mut self) -> io::Result<u64> {
        self.0.read()
    }
}

impl PerfBackend for SystemPerf {
    fn open(&self, pmu: &PowerPmu, event: &PmuEvent, cpu: u32) -> io::Result<Box<dyn PerfCounter>> {
        let dynamic = perf_event::events::Dynamic::builder(&pmu.dir)?
            .event(&event.name)?
            .build()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let mut counter = perf_event::Builder::new(dynamic)
            .one_cpu(cpu as usize)
            .any_pid()
            .exclude_kernel(false)
            .exclude_hv(false)
            .build()?;
        counter.enable()?;
        Ok(Box::new(SystemCounter(counter)))
    }
}

/// One event on one package.
pub struct PerfSource {
    counter: Box<dyn PerfCounter>,
    info: SourceInfo,
}

impl std::fmt::Debug for PerfSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfSource")
            .field("info", &self.info)
            .finish()
    }
}

impl Source for PerfSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn read(&mut self, _now: Nanos) -> Result<RawReading, ReadError> {
        self.counter.read().map(RawReading::Counter).map_err(|e| {
            // ENODEV (19): the CPU went offline or the PMU was unloaded.
            let kind = match e.raw_os_error() {
                Some(19) => ReadErrorKind::Gone,
                _ => ReadErrorKind::Other,
            };
            ReadError::new(kind, &format!("perf read: {e}"))
        })
    }
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct PerfDiscovery {
    /// Counters that are open.
    pub sources: Vec<PerfSource>,
    /// Events or packages that cannot be used, one sentence each.
    pub problems: Vec<String>,
}

/// Opens every energy event of the perf power PMU under `sysfs_root` on every package, with the
/// kernel's perf; `procfs_root` is for `perf_event_paranoid` in the refusal message.
pub fn discover(sysfs_root: &Path, procfs_root: &Path) -> Result<PerfDiscovery, PerfUnavailable> {
    discover_with(sysfs_root, procfs_root, &SystemPerf)
}

/// [`discover`] with any backend.
pub fn discover_with(
    sysfs_root: &Path,
    procfs_root: &Path,
    backend: &dyn PerfBackend,
) -> Result<PerfDiscovery, PerfUnavailable> {
    let (pmu, parse_problems) = read_pmu(sysfs_root)?;
    let mut found = PerfDiscovery {
        problems: parse_problems.iter().map(ToString::to_string).collect(),
        ..Default::default()
    };
    for event in &pmu.events {
        let Some(component) = component_of(&event.name) else {
            found
                .problems
                .push(format!("{}: unknown energy event, not read", event.name));
            continue;
        };
        // psys covers the whole platform: one counter, on the first package's CPU.
        let cpus = if component == Component::Platform {
            &pmu.package_cpus[..1]
        } else {
            &pmu.package_cpus[..]
        };
        for (package, &cpu) in cpus.iter().enumerate() {
            match backend.open(&pmu, event, cpu) {
                Ok(counter) => found.sources.push(PerfSource {
                    counter,
                    info: SourceInfo {
                        component,
                        index: package as u32,
                        provenance: Provenance::Measured,
                        quantity: Quantity::EnergyCounter {
                            joules_per_tick: event.joules_per_count,
                            max_ticks: Some(u64::MAX),
                        },
                        update_period_ns: UPDATE_PERIOD_NS,
                        max_power_w: None,
                        name: truncated(&format!("perf power/{}/ cpu {cpu}", event.name)),
                    },
                }),
                Err(e) if is_permission(&e) => {
                    return Err(PerfUnavailable::Denied {
                        reason: e.to_string(),
                        paranoid: crate::bounded::read_to_string(
                            &procfs_root.join("sys/kernel/perf_event_paranoid"),
                            crate::bounded::SYSFS_ATTR_MAX,
                        )
                        .map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string()),
                    })
                }
                Err(e) => found
                    .problems
                    .push(format!("{} on cpu {cpu}: cannot open: {e}", event.name)),
            }
        }
    }
    Ok(found)
}

fn is_permission(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied || matches!(e.raw_os_error(), Some(1 | 13))
}
