//! `ea2p`, the energy profiler: runs a command and measures its energy per component, from the
//! hardware's counters (RAPL, NVML, ROCm SMI) or, where there is no sensor, from core's models.
//!
//! One sampler thread (this one) reads every source on absolute deadlines, each no faster than it
//! updates; readings go through `ea2p_core`'s counters and tracks, and each is streamed to the
//! profile file as one frame, so memory stays flat however long the run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ea2p_core::counter::{CounterEvent, EnergyCounter};
use ea2p_core::estimate::{CpuModel, DramGeneration, RamActivity, RamModel};
use ea2p_core::format::{
    self, encode, Decoder, End, ExitStatus, Gap, GapReason, Header, HostInfo, Record, Sample,
    SampleFlags, SourceDecl, SourceTotal, MAX_FRAME_LEN,
};
use ea2p_core::integrate::{EnergyTrack, SeriesKind};
use ea2p_core::metrics::{co2_grams, edp, DEFAULT_CARBON_INTENSITY_G_PER_KWH};
use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadError, ReadErrorKind, Source,
    SourceInfo,
};
use ea2p_core::units::{nanos_from_secs, secs, wh, Nanos};
use ea2p_linux::procfs;

#[derive(Parser, Debug)]
#[command(
    name = "ea2p",
    version,
    about = "Measure the energy of a command, per component (CPU packages, DRAM, GPUs), from the hardware's energy counters, or from models where there is no sensor."
)]
struct Cli {
    /// Root of the sysfs tree (for containers with /sys mounted elsewhere, and tests).
    #[arg(long, global = true, env = "EA2P_SYSFS_ROOT", default_value = "/sys")]
    sysfs_root: PathBuf,
    /// Root of the procfs tree.
    #[arg(long, global = true, env = "EA2P_PROCFS_ROOT", default_value = "/proc")]
    procfs_root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run CMD, sample every source until it exits, print the energy summary, exit with CMD's code.
    Run(RunArgs),
    /// List every energy source found, what it reads, and why the others cannot be read.
    Sources(SourceArgs),
    /// Re-read a profile file (a damaged or cut one too) and print its summary.
    Report {
        /// The profile written by `ea2p run -o`.
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct SourceArgs {
    /// CPU TDP in watts for the CPU estimator (default: 3.5 W per logical CPU).
    #[arg(long)]
    cpu_tdp: Option<f64>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Sampling interval for counter sources (e.g. 1ms, 10ms, 1s); each source is read no faster
    /// than it updates.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    interval: Nanos,
    /// Components to measure: any of cpu, ram, gpu (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "cpu,ram,gpu")]
    devices: Vec<String>,
    /// Write the profile (every reading, streamed) to FILE.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Write the summary as JSON to FILE.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Grid carbon intensity in g CO2e/kWh (default: the IEA world average, 475).
    #[arg(long, default_value_t = DEFAULT_CARBON_INTENSITY_G_PER_KWH)]
    carbon_intensity: f64,
    /// CPU TDP in watts for the CPU estimator (default: 3.5 W per logical CPU).
    #[arg(long)]
    cpu_tdp: Option<f64>,
    /// Allow running CMD as root when ea2p itself runs as root.
    #[arg(long)]
    allow_root: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    cmd: Vec<String>,
}

/// Parses `500us`, `1ms`, `2s` or plain nanoseconds.
fn parse_duration(s: &str) -> Result<Nanos, String> {
    let s = s.trim();
    let (num, mult) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1e6)
    } else if let Some(v) = s.strip_suffix("us") {
        (v, 1e3)
    } else if let Some(v) = s.strip_suffix("ns") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1e9)
    } else {
        (s, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && (v * mult) >= 1.0 => Ok((v * mult) as Nanos),
        _ => Err(format!(
            "expected a duration like 1ms, 500us or 2s, found {s:?}"
        )),
    }
}

/// How often the sampler checks whether the command has exited.
const CHILD_POLL_NS: Nanos = 10_000_000;

/// Max power per logical CPU, from Cloud Carbon Footprint's SPECpower averages (3.5 W per vCPU
/// at full load; the idle share is `estimate::DEFAULT_IDLE_FRACTION_OF_TDP`).
const DEFAULT_TDP_PER_CPU_W: f64 = 3.5;

// ----------------------------------------------------------------------------------------------
// Estimator sources
// ----------------------------------------------------------------------------------------------

/// The CPU model fed by the machine's utilisation from /proc/stat.
struct CpuEstimator {
    proc_root: PathBuf,
    model: CpuModel,
    last: Option<procfs::CpuTimes>,
    info: SourceInfo,
}

impl Source for CpuEstimator {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn read(&mut self, _now: Nanos) -> Result<RawReading, ReadError> {
        let t = procfs::cpu_times(&self.proc_root)
            .map_err(|e| ReadError::new(ReadErrorKind::Other, &e.to_string()))?;
        let u = self
            .last
            .and_then(|l| t.utilisation_since(&l))
            .unwrap_or(0.0);
        self.last = Some(t);
        Ok(RawReading::PowerMilliwatts(
            (self.model.power(u).watts * 1e3) as u64,
        ))
    }
}

/// The RAM model: background from installed memory, activity from the measured tree's resident
/// memory and CPU use (no traffic counter is read yet).
struct RamEstimator {
    proc_root: PathBuf,
    model: RamModel,
    /// The measured command's pid, set once it is spawned (discovery runs before, so that its
    /// own cost, NVML start-up included, is not part of the measured run).
    pid: Arc<AtomicU32>,
    ticks_per_s: f64,
    last: Option<(Nanos, u64)>,
    info: SourceInfo,
}

impl Source for RamEstimator {
    fn info(&self) -> &SourceInfo {
        &self.info
    }
    fn read(&mut self, now: Nanos) -> Result<RawReading, ReadError> {
        let u = procfs::tree_usage(&self.proc_root, self.pid.load(Ordering::Relaxed))
            .map_err(|e| ReadError::new(ReadErrorKind::Other, &e.to_string()))?;
        let busy = match self.last {
            Some((t0, c0)) if now > t0 => {
                u.cpu_ticks.saturating_sub(c0) as f64 / self.ticks_per_s / secs(now - t0)
            }
            _ => 0.0,
        };
        self.last = Some((now, u.cpu_ticks));
        let activity = RamActivity::ResidentSet {
            resident_bytes: u.rss_pages as f64 * page_size() as f64,
            busy_cpus: busy,
        };
        Ok(RawReading::PowerMilliwatts(
            (self.model.power(activity).watts * 1e3) as u64,
        ))
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 on error, handled below.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

fn clock_ticks_per_s() -> f64 {
    // SAFETY: as above.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as f64
    } else {
        100.0
    }
}

fn estimator_info(component: Component, name: &str) -> SourceInfo {
    SourceInfo {
        component,
        index: 0,
        provenance: Provenance::Estimated,
        quantity: Quantity::Power { averaging_ns: 0 },
        update_period_ns: nanos_from_secs(0.1),
        max_power_w: None,
        name: truncated(name),
    }
}

// ----------------------------------------------------------------------------------------------
// Discovery
// ----------------------------------------------------------------------------------------------

/// Every usable source, and a line per source that could not be used.
struct Found {
    sources: Vec<Box<dyn Source + Send>>,
    notes: Vec<String>,
}

fn discover(cli: &Cli, devices: &[String], cpu_tdp: Option<f64>, pid: Arc<AtomicU32>) -> Found {
    let want = |d: &str| devices.iter().any(|x| x.trim() == d);
    let mut found = Found {
        sources: Vec::new(),
        notes: Vec::new(),
    };
    let (mut have_pkg, mut have_dram) = (false, false);
    if want("cpu") || want("ram") {
        match ea2p_linux::rapl::discover(&cli.sysfs_root) {
            Ok(r) => {
                for s in r.sources {
                    let c = s.info().component;
                    let is_ram = c == Component::Dram;
                    if (is_ram && want("ram")) || (!is_ram && want("cpu")) {
                        have_pkg |= c == Component::CpuPackage;
                        have_dram |= is_ram;
                        found.sources.push(Box::new(s));
                    }
                }
                found.notes.extend(
                    r.problems
                        .iter()
                        .map(|p| format!("RAPL: not available: {p}")),
                );
            }
            Err(e) => found.notes.push(format!("RAPL: not available: {e}")),
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if want("cpu") && !have_pkg {
        let tdp = cpu_tdp.unwrap_or(DEFAULT_TDP_PER_CPU_W * cpus as f64);
        found.sources.push(Box::new(CpuEstimator {
            proc_root: cli.procfs_root.clone(),
            model: CpuModel::from_tdp(tdp),
            last: None,
            info: estimator_info(
                Component::CpuPackage,
                &format!("cpu model: TDP {tdp:.0} W, utilisation from /proc/stat"),
            ),
        }));
    }
    if want("ram") && !have_dram {
        match procfs::meminfo(&cli.procfs_root) {
            Ok(m) => found.sources.push(Box::new(RamEstimator {
                proc_root: cli.procfs_root.clone(),
                model: RamModel::new(m.total_bytes, DramGeneration::Ddr4),
                pid,
                ticks_per_s: clock_ticks_per_s(),
                last: None,
                info: estimator_info(
                    Component::Dram,
                    &format!(
                        "ram model: {:.1} GiB DDR4",
                        m.total_bytes as f64 / 1073741824.0
                    ),
                ),
            })),
            Err(e) => found.notes.push(format!("RAM model: not available: {e}")),
        }
    }
    if want("gpu") {
        match ea2p_nvml::discover(&ea2p_nvml::Selection::from_env()) {
            Ok(g) => {
                found
                    .notes
                    .extend(g.notes.iter().map(|n| format!("NVIDIA: {n}")));
                found.notes.extend(
                    g.skipped
                        .iter()
                        .map(|s| format!("NVIDIA: GPU {}: not available: {}", s.index, s.reason)),
                );
                for s in g.sources {
                    found.sources.push(Box::new(s));
                }
            }
            Err(e) => found.notes.push(format!("NVIDIA: not available: {e}")),
        }
        match ea2p_rocm::discover_at(&cli.sysfs_root) {
            Ok(g) => {
                found.notes.extend(
                    g.skipped
                        .iter()
                        .map(|s| format!("AMD: GPU {}: not available: {}", s.index, s.reason)),
                );
                for s in g.sources {
                    found.sources.push(Box::new(s));
                }
            }
            Err(e) => found.notes.push(format!("AMD: not available: {e}")),
        }
    }
    found
}

/// The component name the report and the JSON use: package-N, core-N, uncore-N, dram-N, psys,
/// cpu (estimated), ram (estimated), gpu-N.
fn component_name(info: &SourceInfo) -> String {
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
    }
}

fn describe(info: &SourceInfo) -> String {
    let what = match info.quantity {
        Quantity::EnergyCounter { .. } => "energy counter".to_string(),
        Quantity::Power { averaging_ns: 0 } => "power".to_string(),
        Quantity::Power { averaging_ns } => {
            format!("power ({} ms average)", averaging_ns / 1_000_000)
        }
    };
    format!(
        "{:<10} {:<9} {} [{}, every {} ms]",
        component_name(info),
        info.provenance.as_str(),
        info.name,
        what,
        info.update_period_ns as f64 / 1e6
    )
}

// ----------------------------------------------------------------------------------------------
// The sampler
// ----------------------------------------------------------------------------------------------

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
        let period = interval.max(info.update_period_ns);
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
    fn open(path: Option<&Path>) -> Result<Self> {
        let out = match path {
            Some(p) => Some(BufWriter::new(File::create(p).with_context(|| {
                format!("cannot create the profile {}", p.display())
            })?)),
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

    fn finish(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.flush() {
                self.failed = Some(e.to_string());
            }
        }
    }
}

fn host_info(proc_root: &Path) -> HostInfo {
    let read = |p: &str| std::fs::read_to_string(proc_root.join(p)).unwrap_or_default();
    let cpuinfo = read("cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split(':')
                .nth(1)
                .map(str::trim)
        })
        .unwrap_or("");
    HostInfo {
        hostname: truncated(read("sys/kernel/hostname").trim()),
        os: truncated(read("sys/kernel/osrelease").trim()),
        cpu_model: truncated(cpu_model),
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes: procfs::meminfo(proc_root).map_or(0, |m| m.total_bytes),
    }
}

fn spawn(args: &RunArgs) -> Result<Child> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 && !args.allow_root {
        bail!(
            "ea2p is running as root, so {:?} would run as root too; pass --allow-root to accept \
             that, or run ea2p as your user after granting read access to the energy counters \
             (`ea2p sources` prints the commands)",
            args.cmd[0]
        );
    }
    Command::new(&args.cmd[0])
        .args(&args.cmd[1..])
        .spawn()
        .with_context(|| format!("cannot start {:?}", args.cmd[0]))
}

fn run(cli: &Cli, args: &RunArgs) -> Result<ExitCode> {
    let mut recorder = Recorder::open(args.output.as_deref())?;
    let signal = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize)
            .context("cannot install the signal handlers")?;
    }
    let start_unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let origin = Instant::now();
    let now = || origin.elapsed().as_nanos() as Nanos;
    let pid = Arc::new(AtomicU32::new(std::process::id()));
    let found = discover(cli, &args.devices, args.cpu_tdp, Arc::clone(&pid));
    let mut child = spawn(args)?;
    pid.store(child.id(), Ordering::Relaxed);
    for n in &found.notes {
        eprintln!("ea2p: {n}");
    }
    recorder.put(&Record::Header(Header {
        magic: format::MAGIC,
        version: format::VERSION,
        host: host_info(&cli.procfs_root),
        start_unix_ns,
        monotonic_origin_ns: 0,
        interval_ns: args.interval,
        ea2p_version: truncated(env!("CARGO_PKG_VERSION")),
        command: truncated(&args.cmd.join(" ")),
        rank: None,
        world_size: None,
    }));
    let mut tracked: Vec<Tracked> = Vec::new();
    for (i, s) in found.sources.into_iter().enumerate() {
        recorder.put(&Record::Source(SourceDecl {
            id: i as u16,
            info: s.info().clone(),
        }));
        tracked.push(Tracked::new(i as u16, s, args.interval));
    }
    let mut next_child_check = 0;
    let status = loop {
        let t = now();
        for s in tracked.iter_mut().filter(|s| t >= s.next) {
            if let Some(r) = s.sample(t) {
                recorder.put(&r);
            }
            // Absolute deadlines: no drift; a late wake-up skips, never bunches, readings.
            s.next += s.period * ((t - s.next) / s.period + 1);
        }
        // The child is polled every 10 ms, not at every reading: a wait syscall per
        // millisecond would cost more than the readings themselves.
        if t >= next_child_check {
            next_child_check = t + CHILD_POLL_NS;
            if let Some(status) = child.try_wait().context("cannot wait for the command")? {
                break status;
            }
        }
        let sig = signal.swap(0, Ordering::Relaxed);
        // A Ctrl-C typed in a terminal already reached the command through the foreground
        // process group: forward SIGINT only when there is no terminal, SIGTERM always.
        if sig != 0 && (sig as i32 != signal_hook::consts::SIGINT || !stdin_is_terminal()) {
            // SAFETY: kill with the pid of our own child and a valid signal number.
            unsafe { libc::kill(child.id() as libc::pid_t, sig as libc::c_int) };
        }
        let next = tracked
            .iter()
            .map(|s| s.next)
            .min()
            .unwrap_or(next_child_check)
            .min(next_child_check);
        let wait = next.saturating_sub(now()).clamp(20_000, CHILD_POLL_NS);
        std::thread::sleep(Duration::from_nanos(wait));
    };
    // A last reading of every source at the end of the run.
    let t_end = now();
    for s in tracked.iter_mut() {
        if let Some(r) = s.sample(t_end) {
            recorder.put(&r);
        }
    }
    let code = exit_code(&status);
    let summary = summarize(&tracked, t_end, args.carbon_intensity, code);
    for s in &tracked {
        recorder.put(&Record::SourceTotal(SourceTotal {
            source: s.id,
            energy_j: s.track.total_j(),
            avg_w: s.track.average_w().unwrap_or(0.0),
            peak_w: s.track.peak_w(),
            provenance: s.source.info().provenance,
            samples: s.track.len(),
            rejected: s.counter.as_ref().map_or(0, |c| c.stats().rejected as u32),
        }));
    }
    recorder.put(&Record::End(End {
        t_ns: t_end,
        exit: status_record(&status),
    }));
    recorder.finish();
    eprint!("{}", summary.table);
    if let Some(p) = &recorder.path {
        match &recorder.failed {
            None => eprintln!("profile: {} ({} frames)", p.display(), recorder.frames),
            Some(e) => eprintln!(
                "profile: {} is incomplete: writing stopped after {} frames: {e}",
                p.display(),
                recorder.frames
            ),
        }
    }
    if let Some(p) = &args.json {
        // A failed summary file is reported, but the command's exit code still wins.
        let text = serde_json::to_string_pretty(&summary.json).unwrap_or_default() + "\n";
        if let Err(e) = std::fs::write(p, text) {
            eprintln!("ea2p: cannot write the summary {}: {e}", p.display());
        }
    }
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

fn exit_code(status: &std::process::ExitStatus) -> i32 {
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

struct Summary {
    table: String,
    json: serde_json::Value,
}

fn summarize(tracked: &[Tracked], t_end: Nanos, intensity: f64, code: i32) -> Summary {
    let duration_s = secs(t_end);
    let total: f64 = tracked
        .iter()
        .filter(|s| !s.source.info().component.is_nested())
        .map(|s| s.track.total_j())
        .fold(0.0, |a, b| a + b);
    let mut table = format!(
        "\n{:<11} {:<9} {:>12} {:>10} {:>9} {:>9} {:>7}\n",
        "component", "kind", "energy J", "Wh", "avg W", "peak W", "share"
    );
    let mut components = Vec::new();
    if tracked.is_empty() {
        table += "(no source could be read: nothing was measured; `ea2p sources` says why)\n";
    }
    for s in tracked {
        let info = s.source.info();
        let e = s.track.total_j();
        let avg = s.track.average_w().unwrap_or(0.0);
        let share = if info.component.is_nested() {
            "(in pkg)".to_string()
        } else if total > 0.0 {
            format!("{:.1}%", 100.0 * e / total)
        } else {
            "-".to_string()
        };
        table += &format!(
            "{:<11} {:<9} {:>12.3} {:>10.5} {:>9.2} {:>9.2} {:>7}\n",
            component_name(info),
            info.provenance.as_str(),
            e,
            wh(e),
            avg,
            s.track.peak_w(),
            share
        );
        if s.read_errors > 0 {
            table += &format!(
                "{:<11} ({} failed reads, marked as gaps)\n",
                "", s.read_errors
            );
        }
        components.push(serde_json::json!({
            "name": component_name(info),
            "kind": info.provenance.as_str(),
            "source": info.name.as_str(),
            "energy_j": e,
            "avg_w": avg,
            "peak_w": s.track.peak_w(),
        }));
    }
    table += &format!(
        "duration {:.3} s, total {:.3} J ({:.5} Wh), EDP {:.3} J·s, CO2 {:.4} g at {} g/kWh\n",
        duration_s,
        total,
        wh(total),
        edp(total, duration_s),
        co2_grams(total, intensity),
        intensity
    );
    let json = serde_json::json!({
        "duration_s": duration_s,
        "total_j": total,
        "edp_js": edp(total, duration_s),
        "co2_g": co2_grams(total, intensity),
        "exit_code": code,
        "components": components,
        "regions": [],
    });
    Summary { table, json }
}

fn sources(cli: &Cli, args: &SourceArgs) {
    let all = ["cpu".to_string(), "ram".to_string(), "gpu".to_string()];
    let found = discover(
        cli,
        &all,
        args.cpu_tdp,
        Arc::new(AtomicU32::new(std::process::id())),
    );
    println!("sources found:");
    for s in &found.sources {
        println!("  {}", describe(s.info()));
    }
    if !found.notes.is_empty() {
        println!("not used:");
        for n in &found.notes {
            println!("  {n}");
        }
    }
}

fn report(file: &Path) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    format::probe(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a readable ea2p profile: {e:?}", file.display()))?;
    let mut names: Vec<(u16, String, bool)> = Vec::new();
    let mut last: std::collections::BTreeMap<u16, (Nanos, f64)> = Default::default();
    let (mut skipped, mut lost_bytes, mut end) = (0u64, 0u64, None);
    let mut t_max = 0;
    for item in Decoder::new(&bytes) {
        match item {
            Ok(Record::Source(d)) => {
                names.push((d.id, component_name(&d.info), d.info.component.is_nested()))
            }
            Ok(Record::Sample(s)) => {
                last.insert(s.source, (s.t_ns, s.energy_j));
                t_max = t_max.max(s.t_ns);
            }
            Ok(Record::End(e)) => end = Some(e),
            Ok(_) => {}
            Err(s) => {
                skipped += 1;
                lost_bytes += s.len;
            }
        }
    }
    println!("{}: {} bytes", file.display(), bytes.len());
    let mut total = 0.0;
    for (id, name, nested) in &names {
        let (t, e) = last.get(id).copied().unwrap_or((0, 0.0));
        if !nested {
            total += e;
        }
        println!("  {name:<11} {e:>12.3} J up to {:.3} s", secs(t));
    }
    println!("  total {total:.3} J over {:.3} s", secs(t_max));
    match end {
        Some(e) => println!("  run ended normally ({:?})", e.exit),
        None => println!("  no end record: the run was cut (crash or kill); figures are up to the last intact sample"),
    }
    if skipped > 0 {
        println!("  {skipped} damaged or partial stretch(es), {lost_bytes} bytes skipped");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.cmd {
        Cmd::Run(a) => run(&cli, a),
        Cmd::Sources(a) => {
            sources(&cli, a);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Report { file } => report(file).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("ea2p: {e:#}");
        ExitCode::from(2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1ms"), Ok(1_000_000));
        assert_eq!(parse_duration("500us"), Ok(500_000));
        assert_eq!(parse_duration("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration("0.5s"), Ok(500_000_000));
        assert!(parse_duration("fast")
            .unwrap_err()
            .contains("expected a duration"));
        assert!(parse_duration("0ms").is_err());
    }
}
