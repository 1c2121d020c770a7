//! Finding the sources: hardware counters first, models where there is no sensor.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use ea2p_core::cpu_power::CpuPowerModel;
use ea2p_core::estimate::{DramGeneration, RamModel};
use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadError, ReadErrorKind, Source,
    SourceInfo,
};
use ea2p_core::units::{nanos_from_secs, Nanos};
use ea2p_linux::procfs;

use crate::cpu_tdp;
use crate::devices::{Devices, GpuPick};

/// Where to look and what for.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// Root of the sysfs tree (`/sys`).
    pub sysfs_root: PathBuf,
    /// Root of the procfs tree (`/proc`).
    pub procfs_root: PathBuf,
    /// The components wanted.
    pub devices: Devices,
    /// CPU TDP in watts for the CPU model, overriding the table.
    pub cpu_tdp: Option<f64>,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        DiscoverOptions {
            sysfs_root: "/sys".into(),
            procfs_root: "/proc".into(),
            devices: Devices::default(),
            cpu_tdp: None,
        }
    }
}

/// Every usable source, and a line per source that could not be used.
pub struct Found {
    /// Sources to sample.
    pub sources: Vec<Box<dyn Source + Send>>,
    /// One sentence per source left out, with the reason and the fix.
    pub notes: Vec<String>,
    /// A probe of the processes on the NVIDIA GPUs, for the measured tree's share.
    pub gpu_probe: Option<GpuProbe>,
}

/// One probe of every GPU's processes and utilisation samples (boxed so that tests and
/// bindings can bring a fake backend).
pub type GpuProbe = Box<dyn FnMut() -> Vec<ea2p_nvml::GpuActivity> + Send>;

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("sources", &self.sources.len())
            .field("notes", &self.notes)
            .field("gpu_probe", &self.gpu_probe.is_some())
            .finish()
    }
}

/// Discovers every source `options` asks for. `pid` is the measured process tree's root, stored
/// later when the command is spawned (discovery runs before, so that its own cost, NVML start-up
/// included, is not part of the measured run). No source reads it since the RAM model reads the
/// machine's utilisation instead of walking the tree; it stays for the callers.
pub fn discover(options: &DiscoverOptions, _pid: Arc<AtomicU32>) -> Found {
    let want = &options.devices;
    let mut found = Found {
        sources: Vec::new(),
        notes: Vec::new(),
        gpu_probe: None,
    };
    let (mut have_pkg, mut have_dram) = (false, false);
    if want.cpu || want.ram {
        match ea2p_linux::rapl::discover(&options.sysfs_root) {
            Ok(r) => {
                keep_wanted(r.sources, want, &mut found, &mut have_pkg, &mut have_dram);
                found.notes.extend(
                    r.problems
                        .iter()
                        .map(|p| format!("RAPL: not available: {p}")),
                );
            }
            Err(e) => found.notes.push(format!("RAPL: not available: {e}")),
        }
        // The same counters through perf, when powercap gave nothing (root-only energy_uj).
        let rapl_found = found
            .sources
            .iter()
            .any(|s| s.info().provenance == Provenance::Measured);
        if !rapl_found {
            match ea2p_linux::perf::discover(&options.sysfs_root, &options.procfs_root) {
                Ok(p) => {
                    keep_wanted(p.sources, want, &mut found, &mut have_pkg, &mut have_dram);
                    found.notes.extend(
                        p.problems
                            .iter()
                            .map(|p| format!("perf: not available: {p}")),
                    );
                }
                Err(e) => found.notes.push(format!("perf: not available: {e}")),
            }
        }
    }
    discover_hwmon(options, &mut found, &mut have_pkg);
    if want.cpu && !have_pkg {
        let (choice, _threads) = cpu_choice(options);
        found.sources.push(Box::new(CpuEstimator {
            meter: procfs::UtilisationMeter::new(&options.procfs_root),
            model: choice.model,
            info: estimator_info(Component::CpuPackage, &choice.short, CPU_MODEL_PERIOD_S),
        }));
    }
    if want.ram && !have_dram {
        match procfs::meminfo(&options.procfs_root) {
            Ok(m) => {
                let ram = ram_model(m.total_bytes);
                found.sources.push(Box::new(RamEstimator {
                    meter: procfs::UtilisationMeter::new(&options.procfs_root),
                    model: ram.model,
                    info: estimator_info(Component::Dram, &ram.short, RAM_MODEL_PERIOD_S),
                }))
            }
            Err(e) => found.notes.push(format!("RAM model: not available: {e}")),
        }
    }
    if want.any_gpu() {
        discover_gpus(options, &mut found);
    }
    found
}

/// Adds the CPU-side counters the user asked for (`cpu`: package, core, uncore, psys; `ram`:
/// dram) and notes whether a package and a dram counter were found.
fn keep_wanted<S: Source + Send + 'static>(
    sources: Vec<S>,
    want: &Devices,
    found: &mut Found,
    have_pkg: &mut bool,
    have_dram: &mut bool,
) {
    for s in sources {
        let c = s.info().component;
        let is_ram = c == Component::Dram;
        if (is_ram && want.ram) || (!is_ram && want.cpu) {
            *have_pkg |= c == Component::CpuPackage;
            *have_dram |= is_ram;
            found.sources.push(Box::new(s));
        }
    }
}

/// Adds the hwmon channels `--devices` asks for (`hwmon`, `hwmon:NAME`; `amd_energy`'s CPU
/// counters also with `cpu`), and notes whether a CPU package counter was found. Two rules keep
/// a component from being counted twice: the amdgpu driver's hwmon is read by the AMD GPU
/// adapter, not here; `amd_energy` is skipped when RAPL or perf already measures the packages
/// (the same counters). A board input rail is a total (`ea2p_linux::hwmon::BOARD_INPUT_RAILS`).
fn discover_hwmon(options: &DiscoverOptions, found: &mut Found, have_pkg: &mut bool) {
    use ea2p_linux::hwmon;
    let want = &options.devices;
    if want.hwmon == crate::devices::HwmonPick::None && !want.cpu {
        return;
    }
    let rapl_pkg = *have_pkg;
    let discovered = match hwmon::discover(&options.sysfs_root) {
        Ok(d) => d,
        Err(e) => {
            if want.hwmon != crate::devices::HwmonPick::None {
                found.notes.push(format!("hwmon: not available: {e}"));
            }
            return;
        }
    };
    found.notes.extend(
        discovered
            .problems
            .iter()
            .map(|p| format!("hwmon: not available: {p}")),
    );
    let (sources, bad) = hwmon::sources(&discovered);
    found
        .notes
        .extend(bad.iter().map(|e| format!("hwmon: not available: {e}")));
    for s in sources {
        let (name, device) = (s.component_name(), s.device_name());
        let cpu = matches!(
            s.info().component,
            Component::CpuPackage | Component::CpuCores
        );
        if !(want.hwmon.wants(name, device) || (cpu && want.cpu)) {
            continue;
        }
        if device == "amdgpu" {
            found.notes.push(format!(
                "hwmon: {name}: not read here: the AMD GPU adapter reads the amdgpu driver's power"
            ));
        } else if cpu && rapl_pkg {
            found.notes.push(format!(
                "hwmon: {name}: not read: RAPL already measures the CPU packages (same counters)"
            ));
        } else {
            *have_pkg |= s.info().component == Component::CpuPackage;
            found.sources.push(Box::new(s));
        }
    }
}

fn discover_gpus(options: &DiscoverOptions, found: &mut Found) {
    let selection = match &options.devices.gpu {
        GpuPick::Indices(v) => ea2p_nvml::Selection::Indices(v.clone()),
        _ => ea2p_nvml::Selection::from_env(),
    };
    match ea2p_nvml::discover(&selection) {
        Ok(g) => {
            found
                .notes
                .extend(g.notes.iter().map(|n| format!("NVIDIA: {n}")));
            found.notes.extend(
                g.skipped
                    .iter()
                    .map(|s| format!("NVIDIA: GPU {}: not available: {}", s.index, s.reason)),
            );
            if !g.sources.is_empty() {
                let mut probe = g.process_probe();
                found.gpu_probe = Some(Box::new(move || probe.sample()));
            }
            for s in g.sources {
                found.sources.push(Box::new(s));
            }
        }
        Err(e) => found.notes.push(format!("NVIDIA: not available: {e}")),
    }
    match ea2p_rocm::discover_at(&options.sysfs_root) {
        Ok(g) => {
            found.notes.extend(
                g.skipped
                    .iter()
                    .map(|s| format!("AMD: GPU {}: not available: {}", s.index, s.reason)),
            );
            for s in g.sources {
                let wanted = match &options.devices.gpu {
                    GpuPick::Indices(v) => v.contains(&s.info().index),
                    _ => true,
                };
                if wanted {
                    found.sources.push(Box::new(s));
                }
            }
        }
        Err(e) => found.notes.push(format!("AMD: not available: {e}")),
    }
}

/// How often the CPU model reads `/proc/stat` (its utilisation moves in 10 ms ticks).
pub const CPU_MODEL_PERIOD_S: f64 = 0.1;

/// How often the RAM model reads `/proc/stat`: once a second is enough for a background that
/// does not move and an activity proxy; it keeps the model's cost off the sampler.
pub const RAM_MODEL_PERIOD_S: f64 = 1.0;

/// The CPU model `ea2p run` uses on this machine (`--cpu-tdp`, else the CPU name of
/// `ROOT/cpuinfo`), and the logical CPUs it counts: the `processor` lines of `ROOT/cpuinfo`, the
/// CPUs `/proc/stat`'s utilisation is over (the thread count of this process's affinity where
/// cpuinfo lists none). The packages (`physical id`s) count only on bare metal: in a VM (the
/// `hypervisor` flag) they are virtual. `ea2p estimate cpu` goes through [`cpu_tdp::choose`] too.
pub fn cpu_choice(options: &DiscoverOptions) -> (cpu_tdp::CpuChoice, u32) {
    let text = ea2p_linux::bounded::read_to_string(
        &options.procfs_root.join("cpuinfo"),
        ea2p_linux::bounded::PROC_FILE_MAX,
    )
    .unwrap_or_default();
    let (model, packages) = cpu_tdp::parse_cpuinfo(&text);
    let packages = (!text.is_empty() && !cpu_tdp::is_virtual(&text))
        .then_some(packages.clamp(1, cpu_tdp::MAX_PACKAGES));
    let threads = match cpu_tdp::count_processors(&text) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        n => n,
    }
    .clamp(1, cpu_tdp::MAX_THREADS);
    (
        cpu_tdp::choose(model.as_deref(), threads, packages, options.cpu_tdp),
        threads,
    )
}

/// The RAM model for `installed_bytes` and its description: the one code path of `ea2p run`'s
/// RAM estimator and `ea2p estimate ram`.
#[derive(Debug, Clone, PartialEq)]
pub struct RamChoice {
    /// The model (DDR4 parameters: the generation is not detected).
    pub model: RamModel,
    /// In words.
    pub description: String,
    /// Short form for the 64-byte source name.
    pub short: String,
    /// What it rests on.
    pub source: &'static str,
}

/// See [`RamChoice`].
pub fn ram_model(installed_bytes: u64) -> RamChoice {
    let gib = installed_bytes as f64 / 1073741824.0;
    RamChoice {
        model: RamModel::new(installed_bytes, DramGeneration::Ddr4),
        description: format!(
            "DDR4 datasheet model, {gib:.1} GiB: background per GiB + activity (installed memory \
             swept {} time(s) a second at full CPU utilisation, a heuristic)",
            ea2p_core::estimate::RESIDENT_SWEEPS_PER_BUSY_SECOND
        ),
        short: format!("ram: {gib:.1} GiB DDR4, Micron datasheet, CPU-util proxy"),
        source: ea2p_core::estimate::RAM_MODEL_SOURCE,
    }
}

/// The CPU model fed by the machine's utilisation from /proc/stat.
struct CpuEstimator {
    meter: procfs::UtilisationMeter,
    model: CpuPowerModel,
    info: SourceInfo,
}

impl Source for CpuEstimator {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn read(&mut self, _now: Nanos) -> Result<RawReading, ReadError> {
        let u = self
            .meter
            .read()
            .map_err(|e| ReadError::new(ReadErrorKind::Other, &e.to_string()))?;
        Ok(RawReading::PowerMilliwatts(milliwatts(
            self.model.power(u.unwrap_or(0.0)).watts,
        )))
    }
}

/// The RAM model: background from installed memory, activity from the machine's utilisation
/// (one read of /proc/stat per second; no memory-traffic counter is read yet).
struct RamEstimator {
    meter: procfs::UtilisationMeter,
    model: RamModel,
    info: SourceInfo,
}

impl Source for RamEstimator {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn read(&mut self, _now: Nanos) -> Result<RawReading, ReadError> {
        let u = self
            .meter
            .read()
            .map_err(|e| ReadError::new(ReadErrorKind::Other, &e.to_string()))?;
        Ok(RawReading::PowerMilliwatts(milliwatts(
            self.model.power_at_utilisation(u.unwrap_or(0.0)).watts,
        )))
    }
}

/// Watts to the milliwatts a power reading carries (the models' outputs are finite and
/// non-negative; anything else reads as 0).
fn milliwatts(w: f64) -> u64 {
    if w.is_finite() && w > 0.0 {
        (w * 1e3) as u64
    } else {
        0
    }
}

fn estimator_info(component: Component, name: &str, period_s: f64) -> SourceInfo {
    SourceInfo {
        component,
        index: 0,
        provenance: Provenance::Estimated,
        quantity: Quantity::Power { averaging_ns: 0 },
        update_period_ns: nanos_from_secs(period_s),
        max_power_w: None,
        name: truncated(name),
    }
}

/// The component name the report and the JSON use: package-N, core-N, uncore-N, dram-N, psys,
/// cpu (estimated), ram (estimated), gpu-N.
pub fn component_name(info: &SourceInfo) -> String {
    if let Some(name) = ea2p_linux::hwmon::component_name(&info.name) {
        return name.to_string();
    }
    let i = info.index;
    match (info.component, info.provenance) {
        (Component::CpuPackage, Provenance::Estimated) => "cpu".into(),
        (Component::Dram, Provenance::Estimated) => "ram".into(),
        (Component::CpuPackage, _) => format!("package-{i}"),
        (Component::CpuCores, _) => format!("core-{i}"),
        (Component::Uncore, _) => format!("uncore-{i}"),
        (Component::Dram, _) => format!("dram-{i}"),
        (Component::Platform, _) => "psys".into(),
        (Component::Gpu, _) => format!("gpu-{i}"),
        (Component::Rail, _) => format!("rail-{i}"),
    }
}

/// What a source reads, in words (`power (1000 ms average)`, `energy counter`).
pub fn quantity_words(info: &SourceInfo) -> String {
    match info.quantity {
        Quantity::EnergyCounter { .. } => "energy counter".to_string(),
        Quantity::Power { averaging_ns: 0 } => "power".to_string(),
        Quantity::Power { averaging_ns } => {
            format!("power ({} ms average)", averaging_ns / 1_000_000)
        }
    }
}

/// A source as data (what `ea2p sources` prints, for scripts and the Python module).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SourceDescription {
    /// Component name (`package-0`, `gpu-1`, `cpu`...).
    pub name: String,
    /// `measured` or `estimated`.
    pub kind: &'static str,
    /// What is read (zone path, GPU name, model).
    pub source: String,
    /// `energy counter` or `power`, with its averaging window.
    pub reads: String,
    /// How often the hardware updates it, milliseconds.
    pub update_period_ms: f64,
    /// A total (psys, a board input rail such as `ina3221:VDD_IN`) or inside another component
    /// (cores in their package): shown and measured, not added to the run's total.
    pub nested: bool,
}

impl std::fmt::Display for SourceDescription {
    /// One line of `ea2p sources`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<10} {:<9} {} [{}, every {} ms{}]",
            self.name,
            self.kind,
            self.source,
            self.reads,
            self.update_period_ms,
            if self.nested {
                "; a total or part of another component: not added to the run's total"
            } else {
                ""
            }
        )
    }
}

/// Every source found and every one left out, as `ea2p sources` reports them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SourcesReport {
    /// Sources that can be read.
    pub sources: Vec<SourceDescription>,
    /// Sources that cannot, with the reason and the fix.
    pub not_available: Vec<String>,
}

/// Discovers everything `options` asks for and describes it.
pub fn sources(options: &DiscoverOptions) -> SourcesReport {
    let found = discover(options, Arc::new(AtomicU32::new(std::process::id())));
    SourcesReport {
        sources: found
            .sources
            .iter()
            .map(|s| describe_data(s.info()))
            .collect(),
        not_available: found.notes,
    }
}

fn describe_data(info: &SourceInfo) -> SourceDescription {
    SourceDescription {
        name: component_name(info),
        kind: info.provenance.as_str(),
        source: info.name.to_string(),
        reads: quantity_words(info),
        update_period_ms: info.update_period_ns as f64 / 1e6,
        nested: info.component.is_nested(),
    }
}

/// Reads `/proc/cpuinfo` and the kernel's hostname/release for the profile header.
pub fn host_info(proc_root: &Path) -> ea2p_core::format::HostInfo {
    let read = |p: &str| {
        ea2p_linux::bounded::read_to_string(&proc_root.join(p), ea2p_linux::bounded::PROC_FILE_MAX)
            .unwrap_or_default()
    };
    let (cpu_model, _) = cpu_tdp::parse_cpuinfo(&read("cpuinfo"));
    ea2p_core::format::HostInfo {
        hostname: truncated(read("sys/kernel/hostname").trim()),
        os: truncated(read("sys/kernel/osrelease").trim()),
        cpu_model: truncated(cpu_model.as_deref().unwrap_or("")),
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes: procfs::meminfo(proc_root).map_or(0, |m| m.total_bytes),
    }
}
