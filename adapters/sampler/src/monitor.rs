//! The sampler, as a library: [`Monitor`] reads every source on its own threads and hands each
//! reading to the core's measuring [`Session`]; every record the session writes goes to the
//! profile and to the core's [`Fold`](ea2p_core::fold::Fold), the same fold `ea2p report` replays
//! the profile through, so the summary at the end of a run and the report of its profile agree
//! exactly. This module keeps only threads, the clock and the file.
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
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ea2p_core::format::{
    self, encode, ExitStatus, Header, MarkerKind, Record, SourceTotal, MAX_FRAME_LEN,
    REGION_NAME_LEN,
};
use ea2p_core::metrics::{edp, DEFAULT_CARBON_INTENSITY_G_PER_KWH};
use ea2p_core::session::{MarkerError, Session};
use ea2p_core::source::{truncated, Component, RawReading, ReadError, Source, SourceInfo};
use ea2p_core::units::{secs, Nanos};

use ea2p_core::attribution::Attribution;

use crate::attribute::{AttributeMode, Attributor, IdlePower, ATTRIBUTION_PERIOD_NS};
use crate::devices::Devices;
use crate::discover::{component_name, discover, host_info, DiscoverOptions, Found, GpuProbe};
pub use crate::summary::MAX_REGIONS_IN_SUMMARY;
use crate::summary::{
    GpuShare, RegionList, RunFold, RunRegion, Summary, MAX_OPEN_REGIONS, MAX_SOURCES,
};

/// How often the GPU lane asks NVML which processes use each GPU.
const GPU_PROBE_NS: Nanos = 500_000_000;

/// The longest [`Monitor::end`] waits for the readings that place a region's end: a source that
/// stalls longer gives a provisional figure (its last energy), the summary the final one.
const REGION_WAIT: Duration = Duration::from_millis(500);

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
    /// Whose share of the shared components to attribute (default: the process tree).
    pub attribute: AttributeMode,
    /// Also attribute to every cgroup v2 group matching this pattern (`ea2p serve
    /// --per-cgroup`), found again every second; served live by [`MonitorHandle::attributed`].
    pub per_cgroup: Option<String>,
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
            attribute: AttributeMode::default(),
            per_cgroup: None,
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
    /// Too many regions open at once.
    #[error("region {0:?}: too many regions open at once ({MAX_OPEN_REGIONS})")]
    TooManyOpen(String),
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

/// What the sampler threads share: the session, the fold and the profile, behind one lock, so
/// that the fold sees records in exactly the order the file holds them.
struct Pipeline {
    session: Box<Session<MAX_SOURCES, MAX_OPEN_REGIONS>>,
    fold: Box<RunFold>,
    recorder: Recorder,
    regions: RegionList,
    /// Regions measured while a caller of [`Monitor::end`] waits for them.
    waited: Vec<(u32, RunRegion)>,
    waiting: BTreeSet<u32>,
    notes: Vec<String>,
    /// The attribution's counters and per-source accumulators (see [`crate::attribute`]).
    attr: Option<Attributor>,
    /// Whether there is an attributor (it is out of `attr` while the lane reads its counters).
    attr_on: bool,
    attr_acc: Vec<Attribution>,
    /// Per source: nested in another (not in region totals).
    nested: Vec<bool>,
    /// Copies of the accumulators at each region's begin (`false`) and end (`true`) marker.
    attr_marks: std::collections::BTreeMap<(u32, bool), Vec<Attribution>>,
    /// A measured idle baseline, applied by the lane at its next attribution step.
    idle_override: Option<IdlePower>,
    /// `--per-cgroup`: the groups found so far, each with its attributor and accumulators.
    groups: Vec<GroupAttribution>,
    /// Records the fold could not take whole, by message, with their count.
    fold_errors: std::collections::BTreeMap<String, u64>,
}

/// One cgroup's attribution for `--per-cgroup`.
#[derive(Debug)]
struct GroupAttribution {
    name: String,
    attributor: Attributor,
    acc: Vec<Attribution>,
}

/// The longest list of groups `--per-cgroup` follows (a node runs a few jobs, not thousands).
const MAX_GROUPS: usize = 256;

impl Pipeline {
    /// Writes and folds every record the session has, and collects the regions measured.
    fn pump(&mut self) {
        while let Some(r) = self.session.poll_record() {
            self.recorder.put(&r);
            if let Err(e) = self.fold.handle(&r) {
                *self.fold_errors.entry(e.to_string()).or_default() += 1;
            }
            while let Some(reg) = self.fold.poll_region() {
                let attributed = self.region_attributed(&reg);
                self.regions.push(&reg, attributed);
                if self.waiting.remove(&reg.id) {
                    self.waited.push((reg.id, reg));
                }
            }
        }
    }
}

impl Pipeline {
    /// The region's attributed joules (CPU and memory components that are not nested), at each
    /// component's share over the attribution intervals between its markers.
    fn region_attributed(&mut self, reg: &RunRegion) -> Option<f64> {
        if !self.attr_on {
            return None;
        }
        let begin = self.attr_marks.remove(&(reg.id, false))?;
        let end = self
            .attr_marks
            .remove(&(reg.id, true))
            .unwrap_or_else(|| self.attr_acc.clone());
        let shares = begin
            .iter()
            .zip(&end)
            .map(|(b, e)| e.since(b).share_or_latest());
        Some(
            shares
                .zip(&reg.energies)
                .zip(&self.nested)
                .filter(|(_, nested)| !**nested)
                .map(|((sh, e), _)| sh * e)
                .sum(),
        )
    }
}

/// State shared by the lanes and the handles.
struct Inner {
    origin: Instant,
    infos: Vec<SourceInfo>,
    ids: Vec<u16>,
    pipe: Mutex<Pipeline>,
    region_done: Condvar,
    stop: AtomicBool,
    /// Bumped by [`Monitor::end`]: every lane reads all its sources at once, so the region's end
    /// is placed without waiting for the next deadline.
    read_now: AtomicU64,
    lanes: Mutex<Vec<std::thread::Thread>>,
    pid: Arc<AtomicU32>,
    per_cgroup: Option<String>,
    idle: IdlePower,
    discover: DiscoverOptions,
}

/// Locks, ignoring poisoning: a panicked lane must not take the measurement down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn now(&self) -> Nanos {
        self.origin.elapsed().as_nanos() as Nanos
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

    /// One region boundary; `wait`: an end whose caller waits for its measurement.
    fn marker(&self, kind: MarkerKind, name: &str, wait: bool) -> Result<u32, RegionError> {
        let mut p = lock(&self.pipe);
        let t = self.now();
        let r = p.session.handle_marker(t, kind, name);
        if matches!(r, Err(MarkerError::OutputFull)) {
            p.pump();
        }
        let r = match r {
            Err(MarkerError::OutputFull) => p.session.handle_marker(t, kind, name),
            r => r,
        };
        let id = r.map_err(|e| match e {
            MarkerError::EmptyName => RegionError::EmptyName,
            MarkerError::AlreadyOpen => RegionError::AlreadyOpen(name.to_string()),
            MarkerError::NotOpen | MarkerError::OutputFull => {
                RegionError::NotOpen(name.to_string())
            }
            MarkerError::TooManyOpen => RegionError::TooManyOpen(name.to_string()),
        })?;
        if kind == MarkerKind::End && wait {
            p.waiting.insert(id);
        }
        if p.attr_on && p.attr_marks.len() < 2 * MAX_OPEN_REGIONS {
            let copy = p.attr_acc.clone();
            p.attr_marks.insert((id, kind == MarkerKind::End), copy);
        }
        if kind == MarkerKind::Begin && name.len() > REGION_NAME_LEN && p.notes.len() < 10 {
            let cut = ea2p_core::source::truncated::<REGION_NAME_LEN>(name);
            let note = format!(
                "region name of {} bytes cut to {REGION_NAME_LEN} (the same in the summary and \
                 the profile): {:?}",
                name.len(),
                cut.as_str()
            );
            p.notes.push(note);
        }
        p.pump();
        p.recorder.flush();
        Ok(id)
    }

    fn begin(&self, name: &str) -> Result<(), RegionError> {
        self.marker(MarkerKind::Begin, name, false).map(|_| ())
    }

    fn end(&self, name: &str) -> Result<Measurement, RegionError> {
        let id = self.marker(MarkerKind::End, name, true)?;
        // The end is placed by the first reading of every source after it: ask for them now.
        self.read_now.fetch_add(1, Ordering::Relaxed);
        for t in lock(&self.lanes).iter() {
            t.unpark();
        }
        let deadline = Instant::now() + REGION_WAIT;
        let mut p = lock(&self.pipe);
        loop {
            if let Some(k) = p.waited.iter().position(|(i, _)| *i == id) {
                let (_, reg) = p.waited.swap_remove(k);
                return Ok(self.measurement(&reg));
            }
            let now = Instant::now();
            if now >= deadline || self.stop.load(Ordering::Relaxed) {
                p.waiting.remove(&id);
                // A source that did not read in time: its last energy, provisionally (the
                // summary and the profile hold the final figure).
                if let Some(reg) = p.fold.peek_region(id) {
                    return Ok(self.measurement(&reg));
                }
                return Err(RegionError::NotOpen(name.to_string()));
            }
            p = self
                .region_done
                .wait_timeout(p, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn measurement(&self, r: &RunRegion) -> Measurement {
        let components = self.components(&r.energies);
        let duration_s = secs(r.end_t.saturating_sub(r.begin_t));
        Measurement {
            name: r.name.to_string(),
            start_s: secs(r.begin_t),
            end_s: secs(r.end_t),
            duration_s,
            total_j: r.total_j,
            edp_js: edp(r.total_j, duration_s),
            components,
        }
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

    /// Every `--per-cgroup` group's attributed joules so far, per component name (CPU and
    /// memory components), in the order the groups were found.
    pub fn attributed(&self) -> Vec<(String, Vec<(String, f64)>)> {
        let p = lock(&self.inner.pipe);
        p.groups
            .iter()
            .map(|g| {
                let comps = self
                    .inner
                    .infos
                    .iter()
                    .zip(&g.acc)
                    .filter(|(info, _)| info.component != Component::Gpu)
                    .map(|(info, a)| (component_name(info), a.command_j()))
                    .collect();
                (g.name.clone(), comps)
            })
            .collect()
    }

    /// Closes region `name` now without waiting for its measurement (it is in the summary and
    /// the profile): a marker costs one lock and one write, so a program may mark 100,000
    /// regions without being slowed by the sampler (the `EA2P_REGIONS` reader uses this).
    pub fn end_now(&self, name: &str) -> Result<(), RegionError> {
        self.inner.marker(MarkerKind::End, name, false).map(|_| ())
    }

    /// Energy of every component from the start up to its latest reading (the session's live
    /// totals), and the time in seconds.
    pub fn current(&self) -> (f64, Vec<LiveComponent>) {
        let t = self.inner.now();
        let p = lock(&self.inner.pipe);
        let comps = self
            .inner
            .infos
            .iter()
            .zip(&self.inner.ids)
            .map(|(info, &id)| {
                let l = p.session.live(id);
                LiveComponent {
                    name: component_name(info),
                    kind: info.provenance.as_str(),
                    energy_j: l.map_or(0.0, |l| l.energy_j),
                    power_w: l.map_or(0.0, |l| l.power_w),
                    nested: info.component.is_nested(),
                    read: l.is_some_and(|l| l.t_ns.is_some()),
                }
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
    /// Joules from the first reading to the latest.
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
    lanes: Vec<JoinHandle<Option<GpuAttribution>>>,
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
        let mut recorder = Recorder::open(options.output.as_deref())?;
        let start_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        recorder.put(&Record::Header(Header {
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
        let mut notes = found.notes;
        let mut pipe = Pipeline {
            session: Box::new(Session::new()),
            fold: Box::new(RunFold::default()),
            recorder,
            regions: RegionList::default(),
            waited: Vec::new(),
            waiting: BTreeSet::new(),
            notes: Vec::new(),
            attr: None,
            attr_on: false,
            attr_acc: Vec::new(),
            nested: Vec::new(),
            attr_marks: Default::default(),
            idle_override: None,
            groups: Vec::new(),
            fold_errors: Default::default(),
        };
        let (mut infos, mut ids) = (Vec::new(), Vec::new());
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        for (i, source) in found.sources.into_iter().enumerate() {
            let info = source.info().clone();
            let id = i as u16;
            pipe.pump();
            if let Err(e) = pipe.session.add_source(id, info.clone()) {
                notes.push(format!("{} not measured: {e}", info.name));
                continue;
            }
            let period = options.interval.max(info.update_period_ns).max(1);
            let lane_source = LaneSource {
                id,
                source,
                period,
                next: 0,
            };
            if info.component == Component::Gpu {
                slow.push(lane_source);
            } else {
                fast.push(lane_source);
            }
            infos.push(info);
            ids.push(id);
        }
        pipe.pump();
        pipe.recorder.flush();
        let (choice, _) = crate::discover::cpu_choice(&options.discover);
        let idle = IdlePower::Model {
            watts: choice.model.power(0.0).watts,
            name: choice.short.clone(),
        };
        pipe.attr = Attributor::new(
            &options.attribute,
            &options.discover.procfs_root,
            &options.discover.sysfs_root,
            &infos,
            &idle,
            pid.load(Ordering::Relaxed),
        );
        pipe.attr_on = pipe.attr.is_some();
        let attributing = pipe.attr_on || options.per_cgroup.is_some();
        if let Some(n) = pipe.attr.as_ref().and_then(|a| a.note()) {
            notes.push(n.to_string());
        }
        pipe.attr_acc = vec![Attribution::default(); infos.len()];
        pipe.nested = infos.iter().map(|i| i.component.is_nested()).collect();
        let inner = Arc::new(Inner {
            origin: Instant::now(),
            infos,
            ids,
            pipe: Mutex::new(pipe),
            region_done: Condvar::new(),
            stop: AtomicBool::new(false),
            read_now: AtomicU64::new(0),
            lanes: Mutex::new(Vec::new()),
            pid,
            per_cgroup: options.per_cgroup.clone(),
            idle,
            discover: options.discover.clone(),
        });
        let mut lanes = Vec::new();
        let gpu = found.gpu_probe.map(|probe| GpuAttribution {
            probe,
            tallies: Default::default(),
            pids: BTreeSet::new(),
            next: 0,
            procfs_root: options.discover.procfs_root.clone(),
        });
        for (name, sources, gpu) in [("ea2p-sampler", fast, None), ("ea2p-gpu", slow, gpu)] {
            if sources.is_empty() {
                continue;
            }
            let inner_l = Arc::clone(&inner);
            let h = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    lane(
                        &inner_l,
                        sources,
                        gpu,
                        attributing && name == "ea2p-sampler",
                    )
                })
                .map_err(StartError::Thread)?;
            lock(&inner.lanes).push(h.thread().clone());
            lanes.push(h);
        }
        Ok(Monitor {
            inner,
            lanes,
            notes,
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

    /// Uses a measured idle power for the attribution instead of the CPU model's: the average
    /// power of every source over the `seconds` just measured (call it before the command
    /// starts, with nothing else of the user's running).
    pub fn set_idle_baseline(&self, seconds: f64, watts: Vec<f64>) {
        lock(&self.inner.pipe).idle_override = Some(IdlePower::Baseline { seconds, watts });
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

    /// Closes region `name` now and returns its energy, once the first reading of every source
    /// after `now` places the end (the sources are read at once; at most half a second).
    pub fn end(&self, name: &str) -> Result<Measurement, RegionError> {
        self.inner.end(name)
    }

    /// Stops sampling (a last reading of every source), completes the profile and returns the
    /// summary, folded from the very records the profile holds. `exit` is the measured command's
    /// status, when there is one.
    pub fn finish(
        self,
        exit: Option<std::process::ExitStatus>,
    ) -> (Summary, Option<ProfileOutcome>) {
        self.inner.stop.store(true, Ordering::Relaxed);
        for l in &self.lanes {
            l.thread().unpark();
        }
        let mut gpu = None;
        for l in self.lanes {
            if let Ok(g) = l.join() {
                gpu = gpu.or(g);
            }
        }
        let shares = gpu.map(|g| g.shares()).unwrap_or_default();
        let mut p = lock(&self.inner.pipe);
        let t_end = self.inner.now();
        // Totals for readers of format version 1; this version's reader folds the samples.
        let totals: Vec<SourceTotal> = p
            .fold
            .components()
            .iter()
            .map(|c| SourceTotal {
                source: c.id,
                energy_j: c.energy_j,
                avg_w: c.avg_w(),
                peak_w: c.peak_w,
                provenance: c.info.provenance,
                samples: c.samples,
                rejected: c.refused(),
            })
            .collect();
        for t in &totals {
            p.recorder.put(&Record::SourceTotal(*t));
        }
        let status = exit.as_ref().map_or(ExitStatus::Unknown, status_record);
        p.pump();
        let _ = p.session.finish(t_end, status);
        p.pump();
        p.fold.finish();
        while let Some(reg) = p.fold.poll_region() {
            let attributed = p.region_attributed(&reg);
            p.regions.push(&reg, attributed);
        }
        p.recorder.flush();
        let outcome = p.recorder.path.clone().map(|path| ProfileOutcome {
            path,
            frames: p.recorder.frames,
            failed: p.recorder.failed.clone(),
        });
        let regions = std::mem::take(&mut p.regions);
        let mut summary = Summary::from_fold(
            &p.fold,
            regions,
            self.options.carbon_intensity,
            exit.as_ref().map(exit_code),
        );
        if let Some(a) = &p.attr {
            let energies: Vec<f64> = summary.components.iter().map(|c| c.energy_j).collect();
            for (c, att) in summary
                .components
                .iter_mut()
                .zip(a.summarise(&p.attr_acc, &energies))
            {
                c.attributed = att;
            }
            summary.attribution = Some(a.info());
        }
        summary.notes = std::mem::take(&mut p.notes);
        let errors = std::mem::take(&mut p.fold_errors);
        summary
            .notes
            .extend(crate::summary::fold_error_notes(errors));
        drop(p);
        for (c, info) in summary.components.iter_mut().zip(&self.inner.infos) {
            if info.component != Component::Gpu {
                continue;
            }
            c.process_share = shares
                .iter()
                .find(|(i, _)| *i == info.index)
                .map(|(_, sh)| GpuShare {
                    fraction: sh.fraction,
                    basis: match sh.basis {
                        ea2p_nvml::ShareBasis::SmUtilization => "sm-utilisation",
                        ea2p_nvml::ShareBasis::Memory => "memory",
                        ea2p_nvml::ShareBasis::Exclusive => "exclusive",
                    },
                    energy_j: sh.fraction * c.energy_j,
                });
        }
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

/// Longest a read may take for its timestamp to be trusted. A read's value belongs somewhere
/// between the clock reads around it; a thread preempted in between (a loaded or descheduled VM)
/// would stamp a counter's value with the wrong time, and a value 20 ms newer than its stamp
/// looks like an impossible power over a 1 ms interval. RAPL's own update period is 1 ms.
const MAX_READ_SPAN_NS: Nanos = 500_000;

/// Reads tried per source and wake-up before a slow read is taken as it is.
const READ_TRIES: u32 = 3;

/// Reads `source`, stamped with the middle of the clock reads around it. A read that took longer
/// than [`MAX_READ_SPAN_NS`] and gave a counter value is read again, at most [`READ_TRIES`] times in all: a cumulative
/// counter's next value carries all the energy, so the retry loses nothing, and it keeps a
/// preemption from turning into a refused reading. The last try is taken whatever its span, and
/// the session judges it as any other.
fn timed_read(
    now: impl Fn() -> Nanos,
    source: &mut dyn Source,
) -> (Nanos, Result<RawReading, ReadError>) {
    let mut tries = 0;
    loop {
        tries += 1;
        let before = now();
        let r = source.read(before);
        let after = now();
        let span = after.saturating_sub(before);
        // Only a counter is read again: a power value is an instant's, its stamp matters less,
        // and an estimator's reading (utilisation since its previous read) is not repeatable.
        let counter = matches!(r, Ok(RawReading::Counter(_)));
        if !counter || span <= MAX_READ_SPAN_NS || tries >= READ_TRIES {
            return (before + span / 2, r);
        }
    }
}

/// One source read by a lane: the I/O side; everything else is the session's.
struct LaneSource {
    id: u16,
    source: Box<dyn Source + Send>,
    period: Nanos,
    next: Nanos,
}

/// One sampler thread: reads its sources until told to stop, then once more.
fn lane(
    inner: &Inner,
    mut sources: Vec<LaneSource>,
    mut gpu: Option<GpuAttribution>,
    attribute: bool,
) -> Option<GpuAttribution> {
    let mut attr_next: Option<Nanos> = attribute.then_some(0);
    let mut steps: u64 = 0;
    // The readings of one wake-up; kept across wake-ups so that sampling allocates nothing.
    let mut readings: Vec<(u16, Nanos, Result<RawReading, ReadError>)> =
        Vec::with_capacity(sources.len());
    let mut read_now_seen = 0;
    loop {
        let stopping = inner.stop.load(Ordering::Relaxed);
        let asked = inner.read_now.load(Ordering::Relaxed);
        let now_all = asked != read_now_seen || stopping;
        read_now_seen = asked;
        let t = inner.now();
        if now_all || sources.iter().any(|s| t >= s.next) {
            readings.clear();
            for s in sources.iter_mut().filter(|s| now_all || t >= s.next) {
                let (at, r) = timed_read(|| inner.now(), &mut *s.source);
                readings.push((s.id, at, r));
                // Absolute deadlines: no drift; a late wake-up skips, never bunches, readings.
                if t >= s.next {
                    s.next += s.period * ((t - s.next) / s.period + 1);
                }
            }
            let mut p = lock(&inner.pipe);
            for (id, at, r) in readings.drain(..) {
                p.pump();
                // Cannot fail: the queue was just drained and the id is the session's.
                let _ = match r {
                    Ok(raw) => p.session.handle_reading(id, at, raw),
                    Err(e) => p.session.handle_read_error(id, at, e.kind),
                };
            }
            p.pump();
            // One write per wake-up: a crash loses at most the readings of the last instant.
            p.recorder.flush();
            if !p.waited.is_empty() || !p.waiting.is_empty() {
                inner.region_done.notify_all();
            }
        }
        if let Some(next) = attr_next.as_mut().filter(|n| t >= **n) {
            *next = t + ATTRIBUTION_PERIOD_NS;
            attribution_step(inner, t);
            if let Some(pattern) = &inner.per_cgroup {
                groups_step(inner, t, pattern, steps % 10 == 0);
            }
            steps += 1;
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
        let next = sources
            .iter()
            .map(|s| s.next)
            .chain(gpu.as_ref().map(|g| g.next))
            .chain(attr_next)
            .min()
            .unwrap_or(t + GPU_PROBE_NS);
        // park_timeout: `finish` and `end` unpark the lane, so neither waits for a deadline.
        std::thread::park_timeout(Duration::from_nanos(next.saturating_sub(inner.now())));
    }
    gpu
}

/// One attribution step: the counters are read without the pipeline's lock (the attributor is
/// taken out of the pipeline meanwhile), the interval fed with the session's live energies.
fn attribution_step(inner: &Inner, t: Nanos) {
    let (mut a, idle) = {
        let mut p = lock(&inner.pipe);
        let Some(a) = p.attr.take() else { return };
        (a, p.idle_override.take())
    };
    if let Some(idle) = idle {
        a.set_idle(&idle, &inner.infos);
    }
    let counters = a.read(t, inner.pid.load(Ordering::Relaxed));
    let mut p = lock(&inner.pipe);
    if let Some(c) = counters {
        let energies: Vec<f64> = inner
            .ids
            .iter()
            .map(|&id| p.session.live(id).map_or(0.0, |l| l.energy_j))
            .collect();
        let Pipeline { attr_acc, .. } = &mut *p;
        a.step(c, &energies, attr_acc);
    }
    p.attr = Some(a);
}

/// One step of every `--per-cgroup` group, finding new groups first when `rematch`.
fn groups_step(inner: &Inner, t: Nanos, pattern: &str, rematch: bool) {
    let mut groups = std::mem::take(&mut lock(&inner.pipe).groups);
    if rematch {
        let d = &inner.discover;
        for name in ea2p_linux::cgroup::matching(&d.sysfs_root, pattern) {
            if groups.len() >= MAX_GROUPS || groups.iter().any(|g| g.name == name) {
                continue;
            }
            let mode = AttributeMode::Cgroup(name.clone());
            if let Some(a) = Attributor::new(
                &mode,
                &d.procfs_root,
                &d.sysfs_root,
                &inner.infos,
                &inner.idle,
                0,
            )
            .filter(|a| a.note().is_none())
            {
                groups.push(GroupAttribution {
                    name,
                    attributor: a,
                    acc: vec![Attribution::default(); inner.infos.len()],
                });
            }
        }
    }
    let counters: Vec<_> = groups.iter_mut().map(|g| g.attributor.read(t, 0)).collect();
    let mut p = lock(&inner.pipe);
    let energies: Vec<f64> = inner
        .ids
        .iter()
        .map(|&id| p.session.live(id).map_or(0.0, |l| l.energy_j))
        .collect();
    for (g, c) in groups.iter_mut().zip(counters) {
        if let Some(c) = c {
            g.attributor.step(c, &energies, &mut g.acc);
        }
    }
    p.groups = groups;
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
                self.failed = Some(format!("a record could not be encoded: {e}"));
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use ea2p_core::source::{Provenance, Quantity};

    use super::*;

    /// A source on a simulated clock: each read advances the clock by the next span of `spans`.
    struct SlowSource<'a> {
        info: SourceInfo,
        clock: &'a Cell<Nanos>,
        spans: Vec<Nanos>,
        reads: usize,
        raw: RawReading,
    }

    impl Source for SlowSource<'_> {
        fn info(&self) -> &SourceInfo {
            &self.info
        }
        fn read(&mut self, _now: Nanos) -> Result<RawReading, ReadError> {
            let span = self.spans.get(self.reads).copied().unwrap_or(1_000);
            self.reads += 1;
            self.clock.set(self.clock.get() + span);
            Ok(self.raw)
        }
    }

    fn source(clock: &Cell<Nanos>, spans: Vec<Nanos>, raw: RawReading) -> SlowSource<'_> {
        SlowSource {
            info: SourceInfo {
                component: Component::CpuPackage,
                index: 0,
                provenance: Provenance::Measured,
                quantity: Quantity::EnergyCounter {
                    joules_per_tick: 1e-6,
                    max_ticks: None,
                },
                update_period_ns: 1_000_000,
                max_power_w: Some(100.0),
                name: truncated("package-0"),
            },
            clock,
            spans,
            reads: 0,
            raw,
        }
    }

    #[test]
    fn a_preempted_counter_read_is_read_again_and_stamped_at_the_middle_of_the_good_one() {
        let clock = Cell::new(0);
        let mut s = source(&clock, vec![20_000_000, 2_000], RawReading::Counter(7));
        let (at, r) = timed_read(|| clock.get(), &mut s);
        assert_eq!(s.reads, 2);
        assert_eq!(r.unwrap(), RawReading::Counter(7));
        assert_eq!(at, 20_000_000 + 1_000);
    }

    #[test]
    fn a_read_slow_every_time_is_taken_after_the_last_try() {
        let clock = Cell::new(0);
        let mut s = source(&clock, vec![1_000_000; 5], RawReading::Counter(7));
        let (at, _) = timed_read(|| clock.get(), &mut s);
        assert_eq!(s.reads, READ_TRIES as usize);
        assert_eq!(at, 2_000_000 + 500_000);
    }

    #[test]
    fn a_slow_power_reading_is_not_read_again() {
        let clock = Cell::new(0);
        let mut s = source(&clock, vec![5_000_000], RawReading::PowerMilliwatts(1));
        let (at, _) = timed_read(|| clock.get(), &mut s);
        assert_eq!(s.reads, 1);
        assert_eq!(at, 2_500_000);
    }
}
