//! `eas-sim`: compares scheduling policies on a simulated GPU cluster. With no arguments, runs the
//! seed protocol (DESIGN §8) for all eight policies and prints the comparison table.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use ea2p_core::policy::PolicyKind;
use eas_sim::input::{escape_controls, Outputs};
use eas_sim::limits;
use eas_sim::public_trace::SharedTally;
use eas_sim::scenario::Scenario;
use eas_sim::{report, sim, workload};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Parser, Debug)]
#[command(
    name = "eas-sim",
    version,
    about = "Deterministic simulator of a GPU cluster comparing eight scheduling policies on throughput, energy, EDP, JCT, deadlines, fairness and peak power.",
    long_about = "Deterministic simulator of a GPU cluster comparing eight scheduling policies \
(fifo, pollux, themis, chronos, zeus, hades, aurachronos, charon) on throughput, energy, EDP, \
job completion time, deadlines, fairness and peak power.\n\n\
With no subcommand it runs `compare` on the built-in seed protocol: 10 simulated hours, 10 seeds, \
8 x A100 + 8 x H100, Poisson arrivals at 0.005 jobs/s of ViT-Base, ALBERT v2 and ResNet-50.\n\n\
Same scenario and seed give byte-identical results whatever the number of threads."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run every policy (or those of --policies) over every seed and print the comparison table.
    Compare(CompareArgs),
    /// Run one policy on one seed and print its results.
    Run(RunArgs),
    /// Print the built-in scenario (the seed protocol) as TOML, to start a scenario file from.
    Scenario,
    /// Write a synthetic N-job trace (seeded, deterministic) in the simulator's CSV trace format
    /// (`arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s`), drawn from the scenario's
    /// Poisson workload. `duration_s` is the job's isolated run time (requested configuration,
    /// fastest type that fits), so a malleable job replayed from the trace is an approximation.
    GenTrace(GenTraceArgs),
    /// Combine the shard results of `compare --shard I/N --json FILE` (one per shard, any order)
    /// into exactly what the unsharded `compare` writes (byte-identical JSON).
    MergeResults(MergeArgs),
    /// Check the power-limit model against a measured sweep (Zeus NSDI'23 layout): MAPE of time,
    /// power and energy per epoch, a table per configuration.
    Validate(eas_sim::validate::ValidateArgs),
}

#[derive(Args, Debug)]
struct MergeArgs {
    /// Shard results, one per shard.
    #[arg(required = true, value_name = "FILES")]
    files: Vec<PathBuf>,
    /// Write the per-policy means and 95% intervals as JSON (as `compare --json`).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the per-policy means and 95% intervals as CSV (as `compare --csv`).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write every run's results as JSON lines (as `compare --runs-json`).
    #[arg(long, value_name = "FILE")]
    runs_json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct GenTraceArgs {
    /// Number of jobs to write.
    #[arg(long, short = 'n')]
    jobs: u64,
    /// Output CSV file.
    #[arg(long, short)]
    out: PathBuf,
    /// Scenario file (TOML) whose Poisson workload is drawn from. Default: the seed protocol.
    #[arg(long, short)]
    scenario: Option<PathBuf>,
    /// Run index (with the scenario's base seed, picks the RNG stream).
    #[arg(long, default_value_t = 0)]
    run: u32,
    /// Output format: sim (this simulator's CSV), helios, philly or alibaba (public trace
    /// formats, written by eas-traces; every job completed, run time = isolated run time).
    #[arg(long, default_value = "sim")]
    format: String,
    /// With --format alibaba: also write the matching job table (each job's user and
    /// submission, PAI's `pai_job_table.csv` layout) to FILE, for `[arrivals] job_table`.
    #[arg(long, value_name = "FILE")]
    job_table: Option<PathBuf>,
}

#[derive(Args, Debug, Default)]
struct CompareArgs {
    /// Scenario file (TOML); fields it leaves out come from the seed protocol. Default: the seed protocol.
    #[arg(long, short)]
    scenario: Option<PathBuf>,
    /// Policies to compare, comma-separated (fifo,pollux,themis,chronos,zeus,hades,aurachronos,charon).
    #[arg(long, value_delimiter = ',')]
    policies: Option<Vec<String>>,
    /// Number of seeds (independent runs), overriding the scenario's.
    #[arg(long)]
    seeds: Option<u32>,
    /// Simulated hours, overriding the scenario's.
    #[arg(long)]
    hours: Option<f64>,
    /// Write the per-policy means and 95% intervals as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the per-policy means and 95% intervals as CSV.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write every run's results as JSON lines (one object per policy and seed).
    #[arg(long, value_name = "FILE")]
    runs_json: Option<PathBuf>,
    /// Plot energy against throughput with the Pareto frontier (SVG).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Worker threads (default: one per core). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    quiet: bool,
    /// Run only the I-th of N disjoint slices of the runs (policy x seed, 0 <= I < N) and write
    /// them to --json FILE as a shard result, for `merge-results` (e.g. one Slurm array task each).
    #[arg(long, value_name = "I/N")]
    shard: Option<eas_sim::shard::Shard>,
    #[command(flatten)]
    faults: FaultFlags,
    #[command(flatten)]
    trace: TraceFlags,
}

/// Window and pace of a public trace, over the scenario's `[arrivals]`.
#[derive(Args, Debug, Default)]
struct TraceFlags {
    /// Public trace: keep jobs submitted from this time on, seconds since the trace's first
    /// submit (sets `[arrivals] from_s`; the window's start becomes time 0).
    #[arg(long, value_name = "SECONDS")]
    from: Option<f64>,
    /// Public trace: keep jobs submitted before this time, seconds since the trace's first submit
    /// (sets `[arrivals] to_s`).
    #[arg(long, value_name = "SECONDS")]
    to: Option<f64>,
    /// Public trace: arrivals come this many times faster (run times are unchanged; sets
    /// `[arrivals] speedup`).
    #[arg(long, value_name = "FACTOR")]
    speedup: Option<f64>,
}

impl TraceFlags {
    fn apply(&self, sc: &mut Scenario) -> Result<()> {
        if self.from.is_none() && self.to.is_none() && self.speedup.is_none() {
            return Ok(());
        }
        let eas_sim::scenario::Arrivals::Public(p) = &mut sc.arrivals else {
            bail!("--from, --to and --speedup apply to a public trace: the scenario needs [arrivals] trace = \"FILE\" with format = \"helios\", \"philly\" or \"alibaba\"");
        };
        for (v, flag) in [(self.from, "--from"), (self.to, "--to")] {
            if let Some(x) = v {
                limits::range(x, flag, -1e12, false, 1e12).map_err(anyhow::Error::msg)?;
            }
        }
        if let Some(x) = self.speedup {
            limits::range(x, "--speedup", 0.0, true, 1e6).map_err(anyhow::Error::msg)?;
        }
        let w = p.window;
        p.window = eas_traces::Window::new(
            self.from.unwrap_or(w.from_s),
            self.to.unwrap_or(w.to_s),
            self.speedup.unwrap_or(w.speedup),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        Ok(())
    }
}

/// Fault injection from the command line, over the scenario's `[faults]`.
#[derive(Args, Debug, Default)]
struct FaultFlags {
    /// GPU failures: mean time between failures of one GPU, hours (sets `[faults] gpu_mtbf_h`).
    #[arg(long, value_name = "HOURS")]
    gpu_mtbf_h: Option<f64>,
    /// Node drains per node per day (sets `[faults] node_drains_per_day`).
    #[arg(long, value_name = "RATE")]
    node_drains_per_day: Option<f64>,
    /// Drop the scenario's faults (a baseline for the same scenario; applied before the two above).
    #[arg(long)]
    no_faults: bool,
}

impl FaultFlags {
    fn apply(&self, sc: &mut Scenario) -> Result<()> {
        if self.no_faults {
            sc.faults = Default::default();
        }
        if let Some(m) = self.gpu_mtbf_h {
            if !(m > 0.0 && m.is_finite()) {
                bail!("--gpu-mtbf-h: expected a positive number of hours, got {m}");
            }
            sc.faults.gpu_mtbf_h = Some(m);
        }
        if let Some(r) = self.node_drains_per_day {
            if !(r >= 0.0 && r.is_finite()) {
                bail!("--node-drains-per-day: expected a number >= 0, got {r}");
            }
            sc.faults.node_drains_per_day = r;
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Policy: fifo, pollux, themis, chronos, zeus, hades, aurachronos or charon.
    #[arg(long, short)]
    policy: String,
    /// Scenario file (TOML). Default: the seed protocol.
    #[arg(long, short)]
    scenario: Option<PathBuf>,
    /// Run index: the workload uses seed `scenario seed + run`.
    #[arg(long, default_value_t = 0)]
    run: u32,
    /// Simulated hours, overriding the scenario's.
    #[arg(long)]
    hours: Option<f64>,
    /// Write the run's results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Plot the cluster's power over time (and the cap, if any) as SVG.
    #[arg(long, value_name = "FILE.svg")]
    plot_power: Option<PathBuf>,
    #[command(flatten)]
    faults: FaultFlags,
    #[command(flatten)]
    trace: TraceFlags,
}

fn load(path: &Option<PathBuf>, hours: Option<f64>, seeds: Option<u32>) -> Result<Scenario> {
    let mut sc = match path {
        Some(p) => Scenario::from_file(p)?,
        None => Scenario::seed_protocol(),
    };
    if let Some(h) = hours {
        sc.hours = limits::range(h, "--hours", 0.0, true, limits::MAX_HOURS)
            .map_err(anyhow::Error::msg)?;
    }
    if let Some(s) = seeds {
        if !(1..=limits::MAX_SEEDS).contains(&s) {
            bail!(
                "--seeds: expected a number in [1, {}], found {s}",
                limits::MAX_SEEDS
            );
        }
        sc.seeds = s;
    }
    Ok(sc)
}

fn parse_policy(s: &str) -> Result<PolicyKind> {
    PolicyKind::from_name(s.trim()).with_context(|| {
        let all: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.name()).collect();
        format!("unknown policy {s:?}: expected one of {}", all.join(", "))
    })
}

/// The files a scenario reads (the scenario itself, its trace and job table): no output may
/// be one of them.
fn inputs_of(path: &Option<PathBuf>) -> Vec<(&'static str, PathBuf)> {
    let mut v = Vec::new();
    if let Some(p) = path {
        v.push(("--scenario", p.clone()));
        for f in eas_sim::input::files_named_by(p) {
            v.push(("the scenario's input", f));
        }
    }
    v
}

/// [`Outputs`] that refuse the scenario's own files.
fn outputs_for(path: &Option<PathBuf>) -> Outputs {
    let inputs = inputs_of(path);
    let refs: Vec<(&str, &std::path::Path)> =
        inputs.iter().map(|(w, p)| (*w, p.as_path())).collect();
    Outputs::new(&refs)
}

/// The checks that need the finished scenario (after the flags), and its warnings on stderr.
fn check_scenario(sc: &Scenario, held_seeds: u32, policies: &[PolicyKind]) -> Result<()> {
    limits::check(sc, held_seeds).map_err(anyhow::Error::msg)?;
    limits::check_cap_for(sc, policies).map_err(anyhow::Error::msg)?;
    for w in limits::warnings(sc) {
        eprintln!("eas-sim: warning: {}", escape_controls(&w));
    }
    Ok(())
}

fn compare(a: CompareArgs) -> Result<()> {
    let mut sc = load(&a.scenario, a.hours, a.seeds)?;
    a.faults.apply(&mut sc)?;
    a.trace.apply(&mut sc)?;
    let policies = match &a.policies {
        Some(list) => {
            let mut v: Vec<PolicyKind> = Vec::new();
            for s in list {
                let p = parse_policy(s)?;
                if v.contains(&p) {
                    bail!(
                        "--policies: {} is listed twice; give each policy once",
                        p.name()
                    );
                }
                v.push(p);
            }
            v
        }
        None => PolicyKind::ALL.to_vec(),
    };
    if let Some(n) = a.threads {
        if !(1..=limits::MAX_THREADS).contains(&n) {
            bail!(
                "--threads: expected a number in [1, {}], found {n}",
                limits::MAX_THREADS
            );
        }
    }
    check_scenario(&sc, sc.seeds, &policies)?;
    if let Some(shard) = a.shard {
        return compare_shard(&a, &sc, &policies, shard);
    }
    // Every output is opened before the first run: a bad path is found now, not after it.
    let mut outs = outputs_for(&a.scenario);
    for (flag, p) in [
        ("--json", &a.json),
        ("--csv", &a.csv),
        ("--runs-json", &a.runs_json),
        ("--plot", &a.plot),
    ] {
        if let Some(p) = p {
            outs.add(flag, p).map_err(anyhow::Error::msg)?;
        }
    }
    let total = (policies.len() * sc.seeds as usize) as u64;
    let bar = if !a.quiet && std::io::stderr().is_terminal() {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} runs ({elapsed})")
                .expect("valid template"),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let tick = || bar.inc(1);
    let t0 = std::time::Instant::now();
    let tally = SharedTally::default();
    let (cmp, runs) = match a.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .context("building the thread pool")?
            .install(|| eas_sim::compare_traced(&sc, &policies, &tick, &tally))?,
        None => eas_sim::compare_traced(&sc, &policies, &tick, &tally)?,
    };
    bar.finish_and_clear();
    print_tally(&sc, &tally);
    let elapsed = t0.elapsed();
    print!("{}", report::table(&sc, &cmp));
    let events: u64 = runs.iter().flatten().map(|r| r.events).sum();
    eprintln!(
        "{} runs, {} events in {:.3} s ({:.2e} events/s)",
        total,
        events,
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    if let Some(p) = &a.json {
        report::write_json(p, &cmp)?;
        outs.written(p);
    }
    if let Some(p) = &a.csv {
        report::write_csv(p, &cmp).with_context(|| format!("writing --csv {}", p.display()))?;
        outs.written(p);
    }
    if let Some(p) = &a.runs_json {
        let mut s = String::new();
        for r in runs.iter().flatten() {
            s += &serde_json::to_string(r)?;
            s.push('\n');
        }
        std::fs::write(p, s).with_context(|| format!("writing {}", p.display()))?;
        outs.written(p);
    }
    if let Some(p) = &a.plot {
        report::plot_svg(p, &cmp).with_context(|| format!("writing --plot {}", p.display()))?;
        outs.written(p);
    }
    Ok(())
}

fn run(a: RunArgs) -> Result<()> {
    let policy = parse_policy(&a.policy)?;
    let mut sc = load(&a.scenario, a.hours, None)?;
    a.faults.apply(&mut sc)?;
    a.trace.apply(&mut sc)?;
    check_scenario(&sc, 1, &[policy])?;
    let mut outs = outputs_for(&a.scenario);
    for (flag, p) in [("--json", &a.json), ("--plot-power", &a.plot_power)] {
        if let Some(p) = p {
            outs.add(flag, p).map_err(anyhow::Error::msg)?;
        }
    }
    let opts = sim::RunOptions {
        record_power: a.plot_power.is_some(),
        skip_per_job: true,
        ..Default::default()
    };
    let tally = SharedTally::default();
    let source = workload::source(&sc, a.run, tally.clone())?;
    let out = sim::run_source(&sc, policy, source, a.run, opts)?;
    print_tally(&sc, &tally);
    let r = out.result;
    print!("{}", report::run_text(&r));
    if let Some(p) = &a.plot_power {
        let mut caps = vec![(0, sc.power_cap_w)];
        caps.extend(sc.cap_changes.iter().map(|c| (c.at, c.watts)));
        let title = format!(
            "{}: {} run {}, cluster power",
            sc.name,
            policy.name(),
            a.run
        );
        report::plot_power_svg(p, &title, &out.power_trace, sc.horizon(), &caps)
            .with_context(|| format!("writing --plot-power {}", p.display()))?;
        outs.written(p);
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&r)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
        outs.written(p);
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eas-sim: error: {}", escape_controls(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        None => compare(CompareArgs::default()),
        Some(Cmd::Compare(a)) => compare(a),
        Some(Cmd::Run(a)) => run(a),
        Some(Cmd::GenTrace(a)) => gen_trace(a),
        Some(Cmd::MergeResults(a)) => merge_results(a),
        Some(Cmd::Validate(a)) => eas_sim::validate::run(&a),
        Some(Cmd::Scenario) => {
            print!("{}", eas_sim::scenario::SEED_TOML);
            Ok(())
        }
    }
}

/// `compare --shard`: the slice's runs, written as a shard result.
fn compare_shard(
    a: &CompareArgs,
    sc: &Scenario,
    policies: &[PolicyKind],
    shard: eas_sim::shard::Shard,
) -> Result<()> {
    let Some(path) = &a.json else {
        bail!("--shard: give --json FILE for the shard result (merge the shards with `eas-sim merge-results`)");
    };
    if a.csv.is_some() || a.runs_json.is_some() || a.plot.is_some() {
        bail!("--shard writes only the shard result (--json): --csv, --runs-json and --plot go to `eas-sim merge-results`");
    }
    // Opened before the work starts: a bad path fails now, not after hours of runs.
    let mut out =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let tally = SharedTally::default();
    let go = || eas_sim::shard::run_shard(sc, policies, shard, &|| {}, &tally);
    let file = match a.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .context("building the thread pool")?
            .install(go)?,
        None => go()?,
    };
    print_tally(sc, &tally);
    use std::io::Write;
    out.write_all((serde_json::to_string_pretty(&file)? + "\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "shard {shard}: {} of {} runs written to {}",
        file.runs.len(),
        policies.len() * sc.seeds as usize,
        path.display()
    );
    Ok(())
}

fn merge_results(a: MergeArgs) -> Result<()> {
    use eas_sim::shard;
    let shards = a
        .files
        .iter()
        .map(|p| Ok((p.display().to_string(), shard::read_shard(p)?)))
        .collect::<Result<Vec<_>, shard::MergeError>>()?;
    let m = shard::merge(&shards)?;
    if let Some(p) = &a.json {
        report::write_json(p, &m.comparison)?;
    }
    if let Some(p) = &a.csv {
        report::write_csv(p, &m.comparison)?;
    }
    if let Some(p) = &a.runs_json {
        let mut s = String::new();
        for r in m.runs.iter().flatten() {
            s += &serde_json::to_string(r)?;
            s.push('\n');
        }
        std::fs::write(p, s).with_context(|| format!("writing {}", p.display()))?;
    }
    eprintln!(
        "merged {} shards: {} policies x {} seeds",
        shards.len(),
        m.runs.len(),
        m.runs.first().map_or(0, Vec::len)
    );
    Ok(())
}

/// Says on stderr what a public trace gave and what was left out (never silently).
fn print_tally(sc: &Scenario, tally: &SharedTally) {
    if let eas_sim::scenario::Arrivals::Public(p) = &sc.arrivals {
        if let Ok(t) = tally.lock() {
            let line = format!("trace {} ({:?}): {t}", p.path.display(), p.format);
            eprintln!("{}", escape_controls(&line));
        }
    }
}

fn gen_trace(a: GenTraceArgs) -> Result<()> {
    use eas_sim::scenario::Arrivals;
    use std::io::Write;
    let sc = load(&a.scenario, None, None)?;
    let rate = match sc.arrivals {
        Arrivals::Poisson(r) => r,
        _ => bail!("gen-trace: the scenario must have Poisson arrivals"),
    };
    if !(1..=limits::MAX_GEN_JOBS).contains(&a.jobs) {
        bail!(
            "--jobs: expected a number in [1, {}], found {}",
            limits::MAX_GEN_JOBS,
            a.jobs
        );
    }
    let format: Option<eas_traces::Format> = match a.format.as_str() {
        "sim" => None,
        other => Some(
            other
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--format: {e} (or sim)"))?,
        ),
    };
    if a.job_table.is_some() && format != Some(eas_traces::Format::Alibaba) {
        bail!(
            "--job-table: only --format alibaba has a separate job table (found --format {})",
            a.format
        );
    }
    let mut outs = outputs_for(&a.scenario);
    outs.add("--out", &a.out).map_err(anyhow::Error::msg)?;
    if let Some(p) = &a.job_table {
        outs.add("--job-table", p).map_err(anyhow::Error::msg)?;
    }
    // Jobs are drawn one at a time and written as drawn: memory does not grow with --jobs.
    let specs = sc.specs();
    let draw = || workload::PoissonJobs::new(&sc, &specs, rate, a.run).take(a.jobs as usize);
    let writing = |p: &std::path::Path| format!("writing {}", p.display());
    let f = eas_sim::input::create(&a.out).map_err(anyhow::Error::msg)?;
    let mut w = std::io::BufWriter::new(f);
    if let Some(format) = format {
        let recs = || {
            draw().map(|j| {
                let submit = ea2p_core::units::secs(j.arrival);
                eas_traces::TraceJob {
                    id: format!("job{}", j.id),
                    user: format!("u{}", j.user),
                    submit_s: submit,
                    start_s: Some(submit),
                    end_s: Some(submit + j.isolated_s),
                    gpus: j.request.gpus,
                    gpu_type: match (j.rigid, j.request.gpu_type) {
                        (true, Some(t)) => Some(sc.gpu_types[t as usize].name.clone()),
                        _ => None,
                    },
                    state: eas_traces::JobState::Completed,
                    duration_s: Some(j.isolated_s),
                }
            })
        };
        eas_traces::write(format, &mut w, recs()).with_context(|| writing(&a.out))?;
        w.flush().with_context(|| writing(&a.out))?;
        outs.written(&a.out);
        if let Some(path) = &a.job_table {
            let f = eas_sim::input::create(path).map_err(anyhow::Error::msg)?;
            let mut jw = std::io::BufWriter::new(f);
            eas_traces::alibaba::write_job_table(&mut jw, recs())
                .and_then(|()| jw.flush())
                .with_context(|| writing(path))?;
            outs.written(path);
            eprintln!("wrote its job table to {}", path.display());
        }
        eprintln!(
            "wrote {} jobs to {} ({})",
            a.jobs,
            a.out.display(),
            a.format
        );
        return Ok(());
    }
    writeln!(
        w,
        "arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s"
    )
    .with_context(|| writing(&a.out))?;
    for j in draw() {
        let model = &sc.models[j.model as usize].0.name;
        let gpu_type = match (j.rigid, j.request.gpu_type) {
            (true, Some(t)) => sc.gpu_types[t as usize].name.as_str(),
            _ => "",
        };
        let deadline = j
            .deadline
            .map(|d| format!("{}", ea2p_core::units::secs(d)))
            .unwrap_or_default();
        writeln!(
            w,
            "{},{},{},{},{},{},{}",
            ea2p_core::units::secs(j.arrival),
            model,
            j.user,
            j.request.gpus,
            gpu_type,
            j.isolated_s,
            deadline
        )
        .with_context(|| writing(&a.out))?;
    }
    w.flush().with_context(|| writing(&a.out))?;
    outs.written(&a.out);
    eprintln!("wrote {} jobs to {}", a.jobs, a.out.display());
    Ok(())
}
