//! `ea2p`, the energy profiler: runs a command and measures its energy per component, from the
//! hardware's counters (RAPL, NVML, ROCm SMI) or, where there is no sensor, from core's models.
//!
//! The sampling is the library's [`ea2p::Monitor`]; this file is the command line around it:
//! spawning the command, forwarding signals, the `EA2P_REGIONS` FIFO, and the outputs.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ea2p::prometheus::{Exporter, ExporterOptions};
use ea2p::regions::{RegionFifo, ENV_VAR as REGIONS_ENV};
use ea2p::{launcher, Devices, DiscoverOptions, GpuPick, Monitor, MonitorOptions};
use ea2p_core::metrics::DEFAULT_CARBON_INTENSITY_G_PER_KWH;
use ea2p_core::units::Nanos;

/// What `--help` says about the output files (top level, and run, serve, report, merge).
macro_rules! files_help {
    () => {
        "Files: profiles and the JSON, CSV and SVG made from them are created mode 0600 (energy \
         readings are a side channel, CVE-2020-8694, which is why energy_uj is root-only); under \
         sudo they are given to the user who ran sudo (SUDO_UID/SUDO_GID). Refused as outputs: a \
         symbolic link to a file (other than ea2p's own output: /dev/stdout), a file with other \
         hard links, another user's file."
    };
}

#[derive(Parser, Debug)]
#[command(
    name = "ea2p",
    version,
    about = "Measure the energy of a command, per component (CPU packages, DRAM, GPUs), from the hardware's energy counters, or from models where there is no sensor.",
    after_help = concat!(
        files_help!(),
        "\n\n",
        "Examples:\n  ea2p sources\n  ea2p run -o train.ea2p --json train.json -- python train.py\n  ea2p run --devices cpu,gpu:0,2 -- ./bench\n  ea2p report train.ea2p"
    )
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
    ///
    /// CMD gets EA2P_REGIONS, the path of a FIFO where it may write lines `begin NAME` and
    /// `end NAME` to measure regions (epochs, phases); regions may nest and overlap.
    #[command(after_help = files_help!())]
    Run(RunArgs),
    /// Measure the whole machine with no command until SIGINT/SIGTERM, serving live metrics for
    /// Prometheus; then print the summary.
    #[command(after_help = files_help!())]
    Serve(ServeArgs),
    /// Merge the profiles of the ranks of a parallel job (srun, mpirun): per rank, per node and
    /// in total.
    #[command(after_help = files_help!())]
    Merge {
        /// Profiles written by `ea2p run -o` under the launcher (one per rank).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write the breakdown as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// List every energy source found, what it reads, and why the others cannot be read.
    Sources(SourceArgs),
    /// Print the watts the CPU or RAM model of `ea2p run` gives for given inputs, with the table
    /// entry or fallback it used and the public data it rests on.
    Estimate {
        #[command(subcommand)]
        what: ea2p::estimate_cmd::EstimateCmd,
    },
    /// Re-read a profile file (a damaged or cut one too): summary, regions at their exact
    /// boundaries, time without readings, what damaged bytes cost; JSON, CSV timeline, SVG plot.
    #[command(after_help = files_help!())]
    Report {
        /// The profile written by `ea2p run -o`.
        file: PathBuf,
        /// Write the summary as JSON (the schema of `ea2p run --json`, plus "lost").
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the timeline as CSV: t_s, component, kind, power_w, energy_j.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Draw power per component over time, regions shaded, as SVG.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}

#[derive(clap::Args, Debug)]
struct SourceArgs {
    /// CPU TDP in watts for the CPU model (default: from the CPU's model name, else the CPU
    /// family's measured watts per logical CPU).
    #[arg(long, value_parser = ea2p::cpu_tdp::parse_tdp)]
    cpu_tdp: Option<f64>,
    /// Print the sources as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Where to serve /metrics: PORT or :PORT (127.0.0.1:PORT), or HOST:PORT.
    #[arg(long, value_name = "ADDR", default_value = "9464")]
    prometheus: String,
    #[command(flatten)]
    export: ExportArgs,
    /// Sampling interval for counter sources.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    interval: Nanos,
    /// Components to measure: cpu, ram, gpu, gpu:N,M, hwmon, hwmon:NAME.
    #[arg(long, default_value = "cpu,ram,gpu,hwmon")]
    devices: Devices,
    /// Also write the profile to FILE.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Write the summary as JSON to FILE at the end.
    #[arg(long)]
    json: Option<PathBuf>,
    /// CPU TDP in watts for the CPU model.
    #[arg(long, value_parser = ea2p::cpu_tdp::parse_tdp)]
    cpu_tdp: Option<f64>,
    /// Export the attributed energy of every cgroup v2 group matching GLOB (under
    /// SYSFS/fs/cgroup; `*` within a path segment, e.g. 'system.slice/slurmstepd.scope/job_*')
    /// as ea2p_attributed_joules_total{component,cgroup}; groups are looked for every second.
    #[arg(long, value_name = "GLOB")]
    per_cgroup: Option<String>,
}

/// How the Prometheus exporter guards the readings it serves (CVE-2020-8694).
#[derive(clap::Args, Debug)]
struct ExportArgs {
    /// How often the values served at /metrics change (a snapshot per interval, whatever the
    /// sampling interval); shorter than 1s lets whoever can reach the exporter sample the
    /// energy counters that fast, a side channel (CVE-2020-8694): ea2p warns.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    export_interval: Nanos,
    /// Require `Authorization: Bearer TOKEN`, TOKEN read from FILE (not readable by every
    /// user; Prometheus: `authorization: {credentials_file: FILE}`); others get 401.
    #[arg(long, value_name = "FILE")]
    prometheus_token_file: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Sampling interval for counter sources (e.g. 1ms, 10ms, 1s); each source is read no faster
    /// than it updates.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    interval: Nanos,
    /// Components to measure: cpu, ram, gpu (the command's GPUs: CUDA_VISIBLE_DEVICES), or
    /// gpu:N,M for explicit GPU indices, hwmon (every hwmon power and energy channel) or
    /// hwmon:NAME (a channel such as ina3221:VDD_IN, or a device such as ina226); comma-separated.
    #[arg(long, default_value = "cpu,ram,gpu,hwmon")]
    devices: Devices,
    /// Write the profile (every reading, streamed) to FILE.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Write the summary as JSON to FILE.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the timeline (every reading: t_s, component, kind, power_w, energy_j) as CSV to
    /// FILE at the end of the run, from the profile (a temporary one when -o is not given).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Grid carbon intensity in g CO2e/kWh (default: the IEA world average, 475).
    #[arg(long, default_value_t = DEFAULT_CARBON_INTENSITY_G_PER_KWH, value_parser = ea2p::values::parse_carbon_intensity)]
    carbon_intensity: f64,
    /// CPU TDP in watts for the CPU model (default: from the CPU's model name, else the CPU
    /// family's measured watts per logical CPU).
    #[arg(long, value_parser = ea2p::cpu_tdp::parse_tdp)]
    cpu_tdp: Option<f64>,
    /// Serve live metrics for Prometheus at ADDR (PORT or :PORT = 127.0.0.1:PORT, or HOST:PORT)
    /// under /metrics while CMD runs.
    #[arg(long, value_name = "ADDR")]
    prometheus: Option<String>,
    #[command(flatten)]
    export: ExportArgs,
    /// Whose share of the shared components (CPU packages, DRAM) to attribute beside the
    /// machine's figures: tree (the command's processes, exited children included), cgroup (the
    /// cgroup v2 group it runs in), cgroup:PATH, or none.
    #[arg(long, default_value = "tree", value_name = "WHO")]
    attribute: ea2p::AttributeMode,
    /// Measure the machine for DURATION before starting CMD and use that as the idle power of
    /// the attribution (default: the fitted CPU model at zero load).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    baseline: Option<Nanos>,
    /// Allow running CMD as root when ea2p itself runs as root.
    #[arg(long)]
    allow_root: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    cmd: Vec<String>,
}

use ea2p::values::parse_duration;

/// How often the command is polled for exit and signals forwarded.
const CHILD_POLL: Duration = Duration::from_millis(10);

fn discover_options(cli: &Cli, devices: Devices, cpu_tdp: Option<f64>) -> DiscoverOptions {
    DiscoverOptions {
        sysfs_root: cli.sysfs_root.clone(),
        procfs_root: cli.procfs_root.clone(),
        devices,
        cpu_tdp,
    }
}

fn spawn(args: &RunArgs, regions: Option<&RegionFifo>) -> Result<Child> {
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
    let mut cmd = Command::new(&args.cmd[0]);
    cmd.args(&args.cmd[1..]);
    if let Some(r) = regions {
        cmd.env(REGIONS_ENV, r.path());
    }
    cmd.spawn()
        .with_context(|| format!("cannot start {:?}", args.cmd[0]))
}

/// SIGINT, SIGTERM and SIGHUP: each sets the flag (the last one wins) and adds to the count;
/// ea2p then ends as after the command's exit: summary, outputs, temporary files removed.
const HANDLED: [i32; 3] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];

/// The handlers for [`HANDLED`]: the signal last received, and how many were.
fn install_signals() -> Result<(Arc<AtomicUsize>, Arc<AtomicUsize>)> {
    let signal = Arc::new(AtomicUsize::new(0));
    let count = Arc::new(AtomicUsize::new(0));
    for sig in HANDLED {
        signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize)
            .context("cannot install the signal handlers")?;
        let count = Arc::clone(&count);
        // SAFETY: the handler only does an atomic add, which is async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                count.fetch_add(1, Ordering::Relaxed);
            })
        }
        .context("cannot install the signal handlers")?;
    }
    Ok((signal, count))
}

fn run(cli: &Cli, args: &RunArgs) -> Result<ExitCode> {
    let (signal, count) = install_signals()?;
    // --csv is made from the profile: a temporary one when the user wants no profile.
    let temp_profile = match (&args.csv, &args.output) {
        (Some(_), None) => Some(
            tempfile::Builder::new()
                .prefix("ea2p-")
                .suffix(".ea2p")
                .tempfile()
                .context("cannot create a temporary profile for --csv")?
                .into_temp_path(),
        ),
        _ => None,
    };
    // Under srun/mpirun: one profile per rank, and one rank per node reads the node's counters.
    let env = |k: &str| std::env::var(k).ok();
    let placement = launcher::detect(env);
    let hostname = launcher::hostname(&cli.procfs_root, env);
    let output = args
        .output
        .clone()
        .map(|p| match &placement {
            Some(pl) => launcher::rank_path(&p, pl.rank, &hostname),
            None => p,
        })
        .or_else(|| temp_profile.as_ref().map(|p| p.to_path_buf()));
    let devices = match &placement {
        Some(pl) if !pl.measures_node() => Devices {
            cpu: false,
            ram: false,
            gpu: GpuPick::None,
            hwmon: ea2p::devices::HwmonPick::None,
        },
        _ => args.devices.clone(),
    };
    if let Some(pl) = &placement {
        eprintln!(
            "ea2p: {} rank {} of {} on {hostname} (local rank {}): {}",
            pl.launcher,
            pl.rank,
            pl.world_size,
            pl.local_rank,
            if pl.measures_node() {
                "measures this node's counters"
            } else {
                "records its own run; local rank 0 measures the node"
            }
        );
    }
    // Checked before the profile is created: a refused token file leaves no file behind.
    let exporter_options = args
        .prometheus
        .as_deref()
        .map(|a| exporter_options(a, &args.export, &hostname, placement.as_ref()))
        .transpose()?;
    let mut outputs: Vec<(&str, &Path)> = Vec::new();
    if let Some(o) = &output {
        outputs.push(("-o", o));
    }
    if let Some(j) = &args.json {
        outputs.push(("--json", j));
    }
    if let Some(c) = &args.csv {
        outputs.push(("--csv", c));
    }
    ea2p::outputs::check_distinct(&[], &outputs)?;
    ea2p::outputs::check_directories(&outputs)?;
    let json = open_summary(args.json.as_deref())?;
    // --csv is written from the profile at the end; created now, so that a refused path is
    // known before the run (closed again just before it is written: it is locked while open).
    let csv_probe = args
        .csv
        .as_deref()
        .map(|p| {
            ea2p::private_file::create(p)
                .with_context(|| format!("cannot create the timeline {}", p.display()))
        })
        .transpose()?;
    // Discovery happens before the command starts, so that its cost is not billed to the run.
    let monitor = Monitor::start(MonitorOptions {
        discover: discover_options(cli, devices, args.cpu_tdp),
        interval: args.interval,
        output: output.clone(),
        carbon_intensity: args.carbon_intensity,
        command: args.cmd.join(" "),
        rank: placement.as_ref().map(|p| (p.rank, p.world_size)),
        hostname: Some(hostname.clone()),
        attribute: args.attribute.clone(),
        per_cgroup: None,
    })?;
    if let Some(b) = args
        .baseline
        .filter(|_| args.attribute != ea2p::AttributeMode::None)
    {
        measure_baseline(&monitor, Duration::from_nanos(b));
    }
    let exporter = exporter_options
        .map(|o| start_exporter(o, &monitor))
        .transpose()?;
    let regions = match RegionFifo::start(monitor.handle()) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("ea2p: regions are off: cannot create the {REGIONS_ENV} FIFO: {e}");
            None
        }
    };
    let mut child = Reaped(Some(spawn(args, regions.as_ref())?));
    let child = child.0.as_mut().expect("just spawned");
    monitor.set_pid(child.id());
    print_notes(&monitor);
    let status = loop {
        if let Some(status) = child.try_wait().context("cannot wait for the command")? {
            break status;
        }
        let sig = signal.swap(0, Ordering::Relaxed);
        // A Ctrl-C typed in a terminal already reached the command through the foreground
        // process group: forward SIGINT only when there is no terminal, SIGTERM and SIGHUP
        // always. A third signal means the command does not end: it is killed.
        let sig = if sig != 0 && count.load(Ordering::Relaxed) >= 3 {
            eprintln!(
                "ea2p: third signal: killing {:?} (SIGKILL), then the summary",
                args.cmd[0]
            );
            libc::SIGKILL as usize
        } else {
            sig
        };
        if sig != 0 && (sig as i32 != signal_hook::consts::SIGINT || !stdin_is_terminal()) {
            // SAFETY: kill with the pid of our own child and a valid signal number.
            unsafe { libc::kill(child.id() as libc::pid_t, sig as libc::c_int) };
        }
        std::thread::sleep(CHILD_POLL);
    };
    let region_notes = regions.map(RegionFifo::finish).unwrap_or_default();
    if let Some(e) = exporter {
        e.stop();
    }
    let (summary, profile) = monitor.finish(Some(status));
    for n in region_notes {
        eprintln!("ea2p: {n}");
    }
    eprint!("{}", summary.table());
    drop(csv_probe);
    if let (Some(csv), Some(p)) = (&args.csv, &profile) {
        let options = ea2p::report::ReportOptions {
            csv: Some(csv.clone()),
            ..Default::default()
        };
        if let Err(e) = ea2p::report::read_profile(&p.path, &options) {
            eprintln!("ea2p: cannot write the timeline {}: {e:#}", csv.display());
        }
    }
    if let Some(p) = profile.as_ref().filter(|_| temp_profile.is_none()) {
        match &p.failed {
            None => eprintln!("profile: {} ({} frames)", p.path.display(), p.frames),
            Some(e) => eprintln!(
                "profile: {} is incomplete: writing stopped after {} frames: {e}",
                p.path.display(),
                p.frames
            ),
        }
    }
    if let Some((p, mut f)) = json {
        // A failed summary file is reported, but the command's exit code still wins.
        let text = serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n";
        if let Err(e) = f.write_all(text.as_bytes()) {
            eprintln!("ea2p: cannot write the summary {}: {e}", p.display());
        }
    }
    let code = summary.exit_code.unwrap_or(0);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// The machine's average power per source over `d`, before the command starts: the idle power
/// of the attribution.
fn measure_baseline(monitor: &Monitor, d: Duration) {
    let h = monitor.handle();
    let (t0, c0) = h.current();
    std::thread::sleep(d);
    let (t1, c1) = h.current();
    let dt = (t1 - t0).max(1e-9);
    let watts = c0
        .iter()
        .zip(&c1)
        .map(|(a, b)| (b.energy_j - a.energy_j).max(0.0) / dt)
        .collect();
    monitor.set_idle_baseline(dt, watts);
}

/// The monitor's notes; in `run`, the GPU vendors' "not available" explanations shrink to one
/// line when no GPU is measured (`ea2p sources` keeps them in full).
fn print_notes(monitor: &Monitor) {
    let is_gpu_note = |n: &str| {
        (n.starts_with("NVIDIA: ") || n.starts_with("AMD: ")) && n.contains("not available")
    };
    let has_gpu = monitor
        .sources()
        .iter()
        .any(|s| s.component == ea2p_core::source::Component::Gpu);
    let mut gpu_notes = 0;
    for n in monitor.notes() {
        if !has_gpu && is_gpu_note(n) {
            gpu_notes += 1;
        } else {
            eprintln!("ea2p: {n}");
        }
    }
    if gpu_notes > 0 {
        eprintln!("ea2p: no GPU measured (`ea2p sources` says why)");
    }
}

/// The command, ended and reaped if ea2p leaves `run` early (an error, a panic): the command
/// is never left running unmeasured behind an ea2p that is gone.
struct Reaped(Option<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            if matches!(c.try_wait(), Ok(None)) {
                // SAFETY: kill with the pid of our own, not yet reaped, child.
                unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
                let _ = c.wait();
            }
        }
    }
}

/// The exporter's address, labels, interval and token (read and checked now), with its warnings
/// printed.
fn exporter_options(
    addr: &str,
    export: &ExportArgs,
    hostname: &str,
    placement: Option<&launcher::Placement>,
) -> Result<ExporterOptions> {
    let addr =
        ea2p::prometheus::parse_addr(addr).map_err(|e| anyhow::anyhow!("--prometheus: {e}"))?;
    let mut labels = vec![("host".to_string(), hostname.to_string())];
    if let Some(p) = placement {
        labels.push(("rank".to_string(), p.rank.to_string()));
    }
    let token = match &export.prometheus_token_file {
        Some(f) => Some(ea2p::prometheus::Token::from_file(f)?),
        None => None,
    };
    let options = ExporterOptions {
        addr,
        labels,
        interval: Duration::from_nanos(export.export_interval),
        token,
    };
    for w in options.warnings() {
        eprintln!("ea2p: {w}");
    }
    Ok(options)
}

/// `--json`, opened (mode 0600, see `ea2p::private_file`) before the work starts, so that a
/// refused path is known before a long run, not after it.
fn open_summary(path: Option<&Path>) -> Result<Option<(PathBuf, std::fs::File)>> {
    path.map(|p| {
        ea2p::private_file::create(p)
            .map(|f| (p.to_path_buf(), f))
            .with_context(|| format!("cannot create the summary {}", p.display()))
    })
    .transpose()
}

fn start_exporter(options: ExporterOptions, monitor: &Monitor) -> Result<Exporter> {
    let exporter = Exporter::start(options, monitor.handle()).map_err(|e| anyhow::anyhow!(e))?;
    eprintln!(
        "ea2p: Prometheus metrics at http://{}/metrics",
        exporter.local_addr()
    );
    Ok(exporter)
}

fn serve(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    let (signal, _) = install_signals()?;
    let env = |k: &str| std::env::var(k).ok();
    let hostname = launcher::hostname(&cli.procfs_root, env);
    let exporter_options = exporter_options(&args.prometheus, &args.export, &hostname, None)?;
    if let (Some(o), Some(j)) = (&args.output, &args.json) {
        ea2p::outputs::check_distinct(&[], &[("-o", o), ("--json", j)])?;
    }
    let json = open_summary(args.json.as_deref())?;
    let monitor = Monitor::start(MonitorOptions {
        discover: discover_options(cli, args.devices.clone(), args.cpu_tdp),
        interval: args.interval,
        output: args.output.clone(),
        command: "(ea2p serve: the whole machine)".into(),
        hostname: Some(hostname.clone()),
        attribute: ea2p::AttributeMode::None,
        per_cgroup: args.per_cgroup.clone(),
        ..MonitorOptions::default()
    })?;
    for n in monitor.notes() {
        eprintln!("ea2p: {n}");
    }
    let exporter = start_exporter(exporter_options, &monitor)?;
    while signal.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    exporter.stop();
    let (summary, profile) = monitor.finish(None);
    eprint!("{}", summary.table());
    if let Some(p) = profile {
        eprintln!("profile: {} ({} frames)", p.path.display(), p.frames);
    }
    if let Some((p, mut f)) = json {
        let text = serde_json::to_string_pretty(&summary)? + "\n";
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write the summary {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

fn sources(cli: &Cli, args: &SourceArgs) -> Result<()> {
    let report = ea2p::sources(&discover_options(cli, Devices::default(), args.cpu_tdp));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("sources found:");
    for s in &report.sources {
        println!("  {s}");
    }
    if !report.not_available.is_empty() {
        println!("not used:");
        for n in &report.not_available {
            println!("  {n}");
        }
    }
    Ok(())
}

/// Profiles readable by group or others: one line each saying why that matters and the fix.
fn warn_if_readable(files: &[PathBuf]) {
    for w in files
        .iter()
        .filter_map(|f| ea2p::private_file::readable_by_others(f))
    {
        eprintln!("ea2p: {w}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.cmd {
        Cmd::Run(a) => run(&cli, a),
        Cmd::Sources(a) => sources(&cli, a).map(|()| ExitCode::SUCCESS),
        Cmd::Estimate { what } => ea2p::estimate_cmd::run(what).map(|()| ExitCode::SUCCESS),
        Cmd::Serve(a) => serve(&cli, a),
        Cmd::Merge { files, json } => {
            warn_if_readable(files);
            if let Some(j) = json {
                let inputs: Vec<(&str, &Path)> =
                    files.iter().map(|f| ("profile", f.as_path())).collect();
                if let Err(e) = ea2p::outputs::check_distinct(&inputs, &[("--json", j)]) {
                    eprintln!("ea2p: {e:#}");
                    return ExitCode::from(2);
                }
            }
            ea2p::merge::merge_files(files, json.as_deref()).map(|text| {
                print!("{text}");
                ExitCode::SUCCESS
            })
        }
        Cmd::Report {
            file,
            json,
            csv,
            plot,
        } => {
            warn_if_readable(std::slice::from_ref(file));
            let options = ea2p::report::ReportOptions {
                json: json.clone(),
                csv: csv.clone(),
                plot: plot.clone(),
            };
            ea2p::report::report(file, &options).map(|text| {
                print!("{text}");
                ExitCode::SUCCESS
            })
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("ea2p: {e:#}");
        ExitCode::from(2)
    })
}
