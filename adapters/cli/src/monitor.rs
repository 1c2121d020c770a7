//! The sampler, as a library: [`Monitor`] reads every source on its own threads, streams every
//! reading to the profile, keeps the latest totals for live queries, and measures regions.
//!
//! Sources are split into lanes, one thread each: the fast lane (RAPL, perf, the models) wakes
//! on 1 ms deadlines; the GPU lane reads NVML/ROCm, whose calls take milliseconds (the NVML
//! energy counter took ~4 ms on an H100), so they never delay the fast lane. Each lane reads a
//! source on absolute deadlines, no faster than the source updates; a late wake-up skips
//! readings, never bunches them.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ea2p_core::counter::{CounterEvent, EnergyCounter};
use ea2p_core::format::{
    self, encode, End, ExitStatus, Gap, GapReason, Header, Marker, MarkerKind, Record, Sample,
    SampleFlags, SourceDecl, SourceTotal, MAX_FRAME_LEN,
};
use ea2p_core::integrate::{EnergyTrack, SeriesKind};
use ea2p_core::metrics::{edp, DEFAULT_CARBON_INTENSITY_G_PER_KWH};
use ea2p_core::source::{truncated, Component, Provenance, RawReading, Source, SourceInfo};
use ea2p_core::units::{secs, Nanos};

use crate::devices::Devices;
use crate::discover::{component_name, discover, host_info, DiscoverOptions, Found, GpuProbe};
use crate::summary::{ComponentSummary, GpuShare, RegionSummary, Summary};

/// How often the GPU lane asks NVML which processes use each GPU.
const GPU_PROBE_NS: Nanos = 500_000_000;

/// Ended regions kept for the summary; later ones are measured and written to the profile but
/// only counted in the summary, so a loop of millions of regions cannot grow memory.
pub const MAX_REGIONS_IN_SUMMARY: usize = 10_000;

/// What to measure and where to write it.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// Where and what to discover.
    pub discover: DiscoverOptions,
    /// Sampling interval for counter sources; each source is read no faster than it updates.
    pub interval: Nanos,
    /// The profile file, streamed.
    pub output: Option<PathBuf>,
    /// Grid carbon intensity, g CO2e/kWh.
    pub carbon_intensity: f64,
    /// The measured command, recorded in the profile header.
    pub command: String,
    /// Rank and world size under MPI/Slurm, recorded in the header.
    pub rank: Option<(u32, u32)>,
    /// The host name for the header (default: the kernel's, from procfs).
    pub hostname: Option<String>,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            discover: DiscoverOptions::default(),
            interval: 1_000_000,
            output: None,
            carbon_intensity: DEFAULT_CARBON_INTENSITY_G_PER_KWH,
            command: String::new(),
            rank: None,
            hostname: None,
        }
    }
}

impl MonitorOptions {
    /// Options measuring `devices` (`"cpu,ram,gpu"` syntax) under the default roots.
    pub fn with_devices(devices: Devices) -> Self {
        let mut o = Self::default();
        o.discover.devices = devices;
        o
    }
}

/// Why a monitor could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The profile file cannot be created.
    #[error("cannot create the profile {path}: {source}")]
    Output {
        /// The path asked for.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A sampler thread cannot be started.
    #[error("cannot start the sampler thread: {0}")]
    Thread(std::io::Error),
}

/// A region call that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// `begin` of a name already open (regions overlap only under different names).
    #[error("region {0:?} is already open; end it first or use another name")]
    AlreadyOpen(String),
    /// `end` of a name that is not open.
    #[error("region {0:?} is not open (no begin, or already ended)")]
    NotOpen(String),
    /// An empty name.
    #[error("a region needs a name")]
    EmptyName,
}

/// Energy of one component over a region or up to now.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ComponentEnergy {
    /// Component name (`package-0`, `gpu-1`, `cpu`...).
    pub name: String,
    /// `measured` or `estimated`.
    pub kind: &'static str,
    /// What was read.
    pub source: String,
    /// Joules.
    pub energy_j: f64,
    /// Contained in another component (cores and uncore in their package), so not in totals.
    pub nested: bool,
}

/// The energy of a region, as returned by [`Monitor::end`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Measurement {
    /// Region name.
    pub name: String,
    /// Start, seconds since the monitor started.
    pub start_s: f64,
    /// End, seconds since the monitor started.
    pub end_s: f64,
    /// `end_s - start_s`.
    pub duration_s: f64,
    /// Sum over components that are not nested in another.
    pub total_j: f64,
    /// Energy-delay product, J·s.
    pub edp_js: f64,
    /// Per component.
    pub components: Vec<ComponentEnergy>,
}

/// The latest state of one source, for live queries.
#[derive(Debug, Clone, Copy, Default)]
struct Live {
    t_ns: Nanos,
    energy_j: f64,
    power_w: f64,
    read: bool,
}

/// An open region.
struct Open {
    id: u32,
    name: String,
    t_ns: Nanos,
    energies: Vec<f64>,
}

#[derive(Default)]
struct Regions {
    open: Vec<Open>,
    ended: Vec<RegionSummary>,
    ended_not_kept: u64,
    next_id: u32,
}

/// State shared by the lanes and the handles.
struct Inner {
    origin: Instant,
    infos: Vec<SourceInfo>,
    live: Mutex<Vec<Live>>,
    recorder: Mutex<Recorder>,
    regions: Mutex<Regions>,
    stop: AtomicBool,
    pid: Arc<AtomicU32>,
}

/// Locks, ignoring poisoning: a panicked lane must not take the measurement down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn now(&self) -> Nanos {
        self.origin.elapsed().as_nanos() as Nanos
    }

    /// Energy of every source at `t`, extrapolated from its latest reading at its latest power
    /// (at most one reading period of extrapolation).
    fn energies_at(&self, t: Nanos) -> Vec<f64> {
        lock(&self.live)
            .iter()
            .map(|l| {
                if l.read && t > l.t_ns {
                    l.energy_j + l.power_w * secs(t - l.t_ns)
                } else {
                    l.energy_j
                }
            })
            .collect()
    }

    fn components(&self, energies: &[f64]) -> Vec<ComponentEnergy> {
        self.infos
            .iter()
            .zip(energies)
            .map(|(info, &e)| ComponentEnergy {
                name: component_name(info),
                kind: info.provenance.as_str(),
                source: info.name.to_string(),
                energy_j: e,
                nested: info.component.is_nested(),
            })
            .collect()
    }

    fn begin(&self, name: &str) -> Result<(), RegionError> {
        if name.is_empty() {
            return Err(RegionError::EmptyName);
        }
        let t = self.now();
        let energies = self.energies_at(t);
        let mut r = lock(&self.regions);
        if r.open.iter().any(|o| o.name == name) {
            return Err(RegionError::AlreadyOpen(name.to_string()));
        }
        let id = r.next_id;
        r.next_id = r.next_id.wrapping_add(1);
        let parent = r.open.last().map(|o| o.id);
        r.open.push(Open {
            id,
            name: name.to_string(),
            t_ns: t,
            energies,
        });
        drop(r);
        lock(&self.recorder).put(&Record::Marker(Marker {
            region: id,
            kind: MarkerKind::Begin,
            t_ns: t,
            name: truncated(name),
            parent,
        }));
        Ok(())
    }

    fn end(&self, name: &str) -> Result<Measurement, RegionError> {
        let t = self.now();
        let energies = self.energies_at(t);
        let mut r = lock(&self.regions);
        let k = r
            .open
            .iter()
            .rposition(|o| o.name == name)
            .ok_or_else(|| RegionError::NotOpen(name.to_string()))?;
        let open = r.open.remove(k);
        let deltas: Vec<f64> = energies
            .iter()
            .zip(&open.energies)
            .map(|(e1, e0)| (e1 - e0).max(0.0))
            .collect();
        let components = self.components(&deltas);
        let total_j = components
            .iter()
            .filter(|c| !c.nested)
            .map(|c| c.energy_j)
            .sum();
        let duration_s = secs(t - open.t_ns);
        let m = Measurement {
            name: open.name,
            start_s: secs(open.t_ns),
            end_s: secs(t),
            duration_s,
            total_j,
            edp_js: edp(total_j, duration_s),
            components,
        };
        if r.ended.len() < MAX_REGIONS_IN_SUMMARY {
            r.ended.push(RegionSummary {
                name: m.name.clone(),
                start_s: m.start_s,
                end_s: m.end_s,
                energy_j: m.total_j,
            });
        } else {
            r.ended_not_kept += 1;
        }
        drop(r);
        lock(&self.recorder).put(&Record::Marker(Marker {
            region: open.id,
            kind: MarkerKind::End,
            t_ns: t,
            name: truncated(name),
            parent: None,
        }));
        Ok(m)
    }
}

/// A cheap, cloneable handle for regions and live readings from other threads (the
/// `EA2P_REGIONS` reader, an exporter, a Python binding).
#[derive(Clone)]
pub struct MonitorHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MonitorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorHandle")
            .field("sources", &self.inner.infos.len())
            .finish()
    }
}

impl MonitorHandle {
    /// Opens region `name` now. Regions nest and overlap under different names.
    pub fn begin(&self, name: &str) -> Result<(), RegionError> {
        self.inner.begin(name)
    }

    /// Closes region `name` now and returns its energy.
    pub fn end(&self, name: &str) -> Result<Measurement, RegionError> {
        self.inner.end(name)
    }

    /// Energy of every component from the start up to now, and the time in seconds.
    pub fn current(&self) -> (f64, Vec<LiveComponent>) {
        let t = self.inner.now();
        let live = lock(&self.inner.live).clone();
        let comps = self
            .inner
            .infos
            .iter()
            .zip(live)
            .map(|(info, l)| LiveComponent {
                name: component_name(info),
                kind: info.provenance.as_str(),
                energy_j: if l.read && t > l.t_ns {
                    l.energy_j + l.power_w * secs(t - l.t_ns)
                } else {
                    l.energy_j
                },
                power_w: l.power_w,
                nested: info.component.is_nested(),
                read: l.read,
            })
            .collect();
        (secs(t), comps)
    }
}

/// One component's state now, for live exporters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveComponent {
    /// Component name.
    pub name: String,
    /// `measured` or `estimated`.
    pub kind: &'static str,
    /// Joules since the monitor started.
    pub energy_j: f64,
    /// Latest power, watts.
    pub power_w: f64,
    /// Contained in another component.
    pub nested: bool,
    /// At least one reading succeeded.
    pub read: bool,
}

/// Measures every source until [`Monitor::finish`]; see the module docs.
pub struct Monitor {
    inner: Arc<Inner>,
    lanes: Vec<JoinHandle<LaneResult>>,
    notes: Vec<String>,
    options: MonitorOptions,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("sources", &self.inner.infos)
            .field("lanes", &self.lanes.len())
            .field("notes", &self.notes)
            .finish()
    }
}

struct LaneResult {
    tracked: Vec<Tracked>,
    gpu: Option<GpuAttribution>,
}

/// What the profile file received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileOutcome {
    /// The file.
    pub path: PathBuf,
    /// Frames written.
    pub frames: u64,
    /// Why writing stopped early, if it did.
    pub failed: Option<String>,
}

impl Monitor {
    /// Discovers the sources, writes the profile header and starts sampling.
    pub fn start(options: MonitorOptions) -> Result<Monitor, StartError> {
        let pid = Arc::new(AtomicU32::new(std::process::id()));
        let found = discover(&options.discover, Arc::clone(&pid));
        Self::start_with(options, found, pid)
    }

    /// Starts sampling sources found elsewhere (a fake backend in tests, a binding's own
    /// selection). `pid` holds the measured tree's root; estimators from [`discover`] share it.
    pub fn start_with(
        options: MonitorOptions,
        found: Found,
        pid: Arc<AtomicU32>,
    ) -> Result<Monitor, StartError> {
        let recorder = Recorder::open(options.output.as_deref())?;
        let start_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let infos: Vec<SourceInfo> = found.sources.iter().map(|s| s.info().clone()).collect();
        let inner = Arc::new(Inner {
            origin: Instant::now(),
            live: Mutex::new(vec![Live::default(); infos.len()]),
            infos,
            recorder: Mutex::new(recorder),
            regions: Mutex::new(Regions::default()),
            stop: AtomicBool::new(false),
            pid,
        });
        {
            let mut rec = lock(&inner.recorder);
            rec.put(&Record::Header(Header {
                magic: format::MAGIC,
                version: format::VERSION,
                host: {
                    let mut h = host_info(&options.discover.procfs_root);
                    if let Some(name) = &options.hostname {
                        h.hostname = truncated(name);
                    }
                    h
                },
                start_unix_ns,
                monotonic_origin_ns: 0,
                interval_ns: options.interval,
                ea2p_version: truncated(env!("CARGO_PKG_VERSION")),
                command: truncated(&options.command),
                rank: options.rank.map(|r| r.0),
                world_size: options.rank.map(|r| r.1),
            }));
            for (i, info) in inner.infos.iter().enumerate() {
                rec.put(&Record::Source(SourceDecl {
                    id: i as u16,
                    info: info.clone(),
                }));
            }
        }
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        for (i, s) in found.sources.into_iter().enumerate() {
            let t = Tracked::new(i as u16, s, options.interval);
            if t.source.info().component == Component::Gpu {
                slow.push(t);
            } else {
                fast.push(t);
            }
        }
        let mut lanes = Vec::new();
        let gpu = found.gpu_probe.map(|probe| GpuAttribution {
            probe,
            tallies: Default::default(),
            pids: BTreeSet::new(),
            next: 0,
            procfs_root: options.discover.procfs_root.clone(),
        });
        for (name, tracked, gpu) in [("ea2p-sampler", fast, None), ("ea2p-gpu", slow, gpu)] {
            if tracked.is_empty() {
                continue;
            }
            let inner = Arc::clone(&inner);
            let h = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || lane(&inner, tracked, gpu))
                .map_err(StartError::Thread)?;
            lanes.push(h);
        }
        Ok(Monitor {
            inner,
            lanes,
            notes: found.notes,
            options,
        })
    }

    /// One sentence per source that could not be used.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The sources sampled, in profile order.
    pub fn sources(&self) -> &[SourceInfo] {
        &self.inner.infos
    }

    /// Sets the root of the measured process tree (default: this process), for the RAM model and
    /// the GPU attribution.
    pub fn set_pid(&self, pid: u32) {
        self.inner.pid.store(pid, Ordering::Relaxed);
    }

    /// A handle for regions and live readings from other threads.
    pub fn handle(&self) -> MonitorHandle {
        MonitorHandle {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Opens region `name` now (see [`MonitorHandle::begin`]).
    pub fn begin(&self, name: &str) -> Result<(), RegionError> {
        self.inner.begin(name)
    }

    /// Closes region `name` now and returns its energy.
    pub fn end(&self, name: &str) -> Result<Measurement, RegionError> {
        self.inner.end(name)
    }

    /// Stops sampling (a last reading of every source), completes the profile and returns the
    /// summary. `exit` is the measured command's status, when there is one.
    pub fn finish(
        self,
        exit: Option<std::process::ExitStatus>,
    ) -> (Summary, Option<ProfileOutcome>) {
        self.inner.stop.store(true, Ordering::Relaxed);
        for l in &self.lanes {
            l.thread().unpark();
        }
        let mut tracked = Vec::new();
        let mut gpu = None;
        for l in self.lanes {
            if let Ok(r) = l.join() {
                tracked.extend(r.tracked);
                gpu = gpu.or(r.gpu);
            }
        }
        tracked.sort_by_key(|t| t.id);
        let t_end = self.inner.now();
        let shares = gpu.map(|g| g.shares()).unwrap_or_default();
        let mut rec = lock(&self.inner.recorder);
        for s in &tracked {
            rec.put(&Record::SourceTotal(SourceTotal {
                source: s.id,
                energy_j: s.track.total_j(),
                avg_w: s.track.average_w().unwrap_or(0.0),
                peak_w: s.track.peak_w(),
                provenance: s.source.info().provenance,
                samples: s.track.len(),
                rejected: s.counter.as_ref().map_or(0, |c| c.stats().rejected as u32),
            }));
        }
        rec.put(&Record::End(End {
            t_ns: t_end,
            exit: exit.as_ref().map_or(ExitStatus::Unknown, status_record),
        }));
        rec.flush();
        let outcome = rec.path.clone().map(|path| ProfileOutcome {
            path,
            frames: rec.frames,
            failed: rec.failed.clone(),
        });
        drop(rec);
        let components = tracked
            .iter()
            .map(|s| {
                let info = s.source.info();
                let share = (info.component == Component::Gpu)
                    .then(|| shares.iter().find(|(i, _)| *i == info.index))
                    .flatten()
                    .map(|(_, sh)| GpuShare {
                        fraction: sh.fraction,
                        basis: match sh.basis {
                            ea2p_nvml::ShareBasis::SmUtilization => "sm-utilisation",
                            ea2p_nvml::ShareBasis::Memory => "memory",
                            ea2p_nvml::ShareBasis::Exclusive => "exclusive",
                        },
                        energy_j: sh.fraction * s.track.total_j(),
                    });
                ComponentSummary {
                    name: component_name(info),
                    kind: info.provenance.as_str(),
                    source: info.name.to_string(),
                    energy_j: s.track.total_j(),
                    avg_w: s.track.average_w().unwrap_or(0.0),
                    peak_w: s.track.peak_w(),
                    nested: info.component.is_nested(),
                    read_errors: s.read_errors,
                    process_share: share,
                }
            })
            .collect();
        let regions = std::mem::take(&mut *lock(&self.inner.regions));
        let summary = Summary::new(
            secs(t_end),
            components,
            regions.ended,
            regions.ended_not_kept,
            regions.open.into_iter().map(|o| o.name).collect(),
            self.options.carbon_intensity,
            exit.as_ref().map(exit_code),
        );
        (summary, outcome)
    }
}

/// The exit code a shell would report: the code, or 128 + the signal that killed it.
pub fn exit_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn status_record(status: &std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(s),
        _ => ExitStatus::Unknown,
    }
}

/// One sampler thread: reads its sources until told to stop, then once more.
fn lane(inner: &Inner, mut tracked: Vec<Tracked>, mut gpu: Option<GpuAttribution>) -> LaneResult {
    // The frames of one wake-up; kept across wake-ups so that sampling allocates nothing.
    let mut records = Vec::with_capacity(tracked.len());
    loop {
        let stopping = inner.stop.load(Ordering::Relaxed);
        let t = inner.now();
        let due = || tracked.iter().any(|s| stopping || t >= s.next);
        if due() {
            records.clear();
            for s in tracked.iter_mut().filter(|s| stopping || t >= s.next) {
                records.extend(s.sample(t));
                // Absolute deadlines: no drift; a late wake-up skips, never bunches, readings.
                s.next += s.period * ((t.saturating_sub(s.next)) / s.period + 1);
            }
            {
                let mut live = lock(&inner.live);
                for r in &records {
                    if let Record::Sample(smp) = r {
                        live[smp.source as usize] = Live {
                            t_ns: smp.t_ns,
                            energy_j: smp.energy_j,
                            power_w: f64::from(smp.power_w),
                            read: true,
                        };
                    }
                }
            }
            // One write per wake-up: a crash loses at most the readings of the last instant.
            let mut rec = lock(&inner.recorder);
            for r in &records {
                rec.put(r);
            }
            rec.flush();
        }
        if let Some(g) = gpu.as_mut() {
            if stopping || t >= g.next {
                g.probe(inner.pid.load(Ordering::Relaxed));
                g.next = t + GPU_PROBE_NS;
            }
        }
        if stopping {
            break;
        }
        let next = tracked
            .iter()
            .map(|s| s.next)
            .chain(gpu.as_ref().map(|g| g.next))
            .min()
            .unwrap_or(t + GPU_PROBE_NS);
        // park_timeout: `finish` unparks the lane, so stopping never waits for a deadline.
        std::thread::park_timeout(Duration::from_nanos(next.saturating_sub(inner.now())));
    }
    LaneResult { tracked, gpu }
}

/// Per-process activity on the NVIDIA GPUs, for the measured tree's share of their energy.
struct GpuAttribution {
    probe: GpuProbe,
    tallies: std::collections::BTreeMap<u32, ea2p_nvml::ActivityTally>,
    /// Every pid seen in the measured tree during the run (children that exited included).
    pids: BTreeSet<u32>,
    next: Nanos,
    procfs_root: PathBuf,
}

impl GpuAttribution {
    fn probe(&mut self, root_pid: u32) {
        if let Ok(pids) = ea2p_linux::procfs::tree_pids(&self.procfs_root, root_pid) {
            self.pids.extend(pids);
        }
        for a in (self.probe)() {
            self.tallies.entry(a.gpu_index).or_default().add(&a);
        }
    }

    fn shares(&self) -> Vec<(u32, ea2p_nvml::Share)> {
        self.tallies
            .iter()
            .filter_map(|(i, t)| t.share(&self.pids).map(|s| (*i, s)))
            .collect()
    }
}

/// One source being sampled.
struct Tracked {
    id: u16,
    source: Box<dyn Source + Send>,
    counter: Option<EnergyCounter>,
    track: EnergyTrack,
    period: Nanos,
    next: Nanos,
    last_ok: Option<Nanos>,
    read_errors: u64,
}

impl Tracked {
    fn new(id: u16, source: Box<dyn Source + Send>, interval: Nanos) -> Self {
        let info = source.info();
        let period = interval.max(info.update_period_ns).max(1);
        let (counter, kind) = match info.counter_spec() {
            Some(spec) => (Some(EnergyCounter::new(spec)), SeriesKind::Counter),
            None => (None, SeriesKind::PowerSamples),
        };
        Tracked {
            id,
            source,
            counter,
            track: EnergyTrack::new(kind, period.saturating_mul(5)),
            period,
            next: 0,
            last_ok: None,
            read_errors: 0,
        }
    }

    /// Reads the source at `t`; returns the frame to write.
    fn sample(&mut self, t: Nanos) -> Option<Record> {
        match self.source.read(t) {
            Ok(raw) => {
                let mut flags = SampleFlags(0);
                if self.source.info().provenance == Provenance::Estimated {
                    flags = flags.with(SampleFlags::ESTIMATED);
                }
                let pushed = match (raw, self.counter.as_mut()) {
                    (RawReading::Counter(v), Some(c)) => {
                        let u = c.update(t, v);
                        flags = match u.event {
                            CounterEvent::Wrapped => flags.with(SampleFlags::WRAP),
                            CounterEvent::Reset => flags.with(SampleFlags::RESET),
                            CounterEvent::Rejected => flags.with(SampleFlags::REJECTED),
                            _ => flags,
                        };
                        self.track.push_energy(t, c.total_j())
                    }
                    (RawReading::PowerMilliwatts(mw), None) => {
                        self.track.push_power(t, mw as f64 / 1e3)
                    }
                    _ => return None,
                };
                let point = pushed.ok()?;
                self.last_ok = Some(t);
                Some(Record::Sample(Sample {
                    source: self.id,
                    t_ns: t,
                    raw,
                    energy_j: point.energy_j,
                    power_w: point.power_w as f32,
                    flags,
                }))
            }
            Err(e) => {
                self.read_errors += 1;
                self.track.mark_gap();
                Some(Record::Gap(Gap {
                    source: self.id,
                    from_ns: self.last_ok.unwrap_or(t),
                    to_ns: t,
                    reason: GapReason::ReadError(e.kind),
                }))
            }
        }
    }
}

/// Streams frames to the profile file; a write failure stops writing (and is reported at the
/// end), never the measurement.
struct Recorder {
    out: Option<BufWriter<File>>,
    path: Option<PathBuf>,
    buf: [u8; MAX_FRAME_LEN],
    frames: u64,
    failed: Option<String>,
}

impl Recorder {
    fn open(path: Option<&Path>) -> Result<Self, StartError> {
        let out = match path {
            Some(p) => Some(BufWriter::new(crate::private_file::create(p).map_err(
                |e| StartError::Output {
                    path: p.to_path_buf(),
                    source: e.into(),
                },
            )?)),
            None => None,
        };
        Ok(Recorder {
            out,
            path: path.map(Path::to_path_buf),
            buf: [0; MAX_FRAME_LEN],
            frames: 0,
            failed: None,
        })
    }

    fn put(&mut self, record: &Record) {
        let Some(out) = self.out.as_mut() else { return };
        let n = match encode(record, &mut self.buf) {
            Ok(n) => n,
            Err(e) => {
                self.failed = Some(format!("a record could not be encoded: {e:?}"));
                return;
            }
        };
        if let Err(e) = out.write_all(&self.buf[..n]) {
            self.failed = Some(e.to_string());
            self.out = None;
        } else {
            self.frames += 1;
        }
    }

    /// Hands the buffered frames to the kernel (one `write`), so that a crash of ea2p loses
    /// nothing already flushed; a failure stops writing, never the measurement.
    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.flush() {
                self.failed = Some(e.to_string());
                self.out = None;
            }
        }
    }
}
