//! Scenario files (TOML): cluster, arrivals, job mix and sizes, users, deadlines, policy
//! parameters, horizon and seeds. Every field is optional: what a file leaves out comes from the
//! seed protocol (`scenarios/seed.toml`, built in). Errors name the file, line and column, and
//! what was expected.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ea2p_core::jobmodel::{GpuSpec, ModelProfile, StatEff, MAX_GPU_TYPES};
use ea2p_core::policy::{PolicyParams, MAX_MODELS};
use ea2p_core::units::{nanos_from_secs, Nanos};
use serde::Deserialize;
use toml::Spanned;

use crate::catalogue::{builtin_gpus, builtin_models, GpuTypeDef, ModelDef, PerfFigures};
use crate::faults::{self, Faults, NodeDef, Scripted};
use crate::limits::{
    self, MAX_GPUS, MAX_HOURS, MAX_NODES, MAX_RATE_PER_S, MAX_SAMPLES, MAX_SECONDS, MAX_SEEDS,
    MAX_USERS, MAX_WATTS, MAX_WEIGHT,
};

/// The seed protocol of DESIGN §8, built into the program.
pub const SEED_TOML: &str = include_str!("../scenarios/seed.toml");

/// A scenario error, with where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ScenarioError {
    /// File name as given.
    pub file: String,
    /// 1-based line, 0 when the error is about the file as a whole.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong and what was expected.
    pub msg: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.msg)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.msg)
        }
    }
}

/// How big a job is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeDist {
    /// Always `value`.
    Fixed(f64),
    /// Exponential with this mean.
    Exponential(f64),
    /// Log-normal with this median and log-space standard deviation.
    LogNormal {
        /// Median.
        median: f64,
        /// Standard deviation of the log.
        sigma: f64,
    },
}

/// What a size counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeUnit {
    /// Seconds of run time at the job's requested configuration on this GPU type.
    Seconds {
        /// GPU type index.
        on_gpu: u8,
    },
    /// Reference samples of work.
    Samples,
}

/// Where jobs come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrivals {
    /// Poisson arrivals at this rate (jobs per second), generated from the seed.
    Poisson(f64),
    /// Jobs read from a trace in the simulator's own CSV format (loaded whole, sorted).
    Trace(Vec<TraceJob>),
    /// A public cluster trace (Helios, Philly, Alibaba PAI), streamed row by row at each run.
    Public(PublicTrace),
}

/// A public trace as an arrival source:
/// `arrivals = { trace = "cluster_log.csv", format = "helios", from_s, to_s, speedup, failed, skip_bad }`.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicTrace {
    /// The file (relative paths are taken from the scenario file's folder).
    pub path: PathBuf,
    /// Its format.
    pub format: eas_traces::Format,
    /// Window and rescaling of the trace clock (seconds since the first job's submit).
    pub window: eas_traces::Window,
    /// Whether failed and killed jobs are kept (with the run time they had) or dropped.
    pub failed: eas_traces::FailurePolicy,
    /// Skip rows that do not parse (counted and reported) instead of stopping at the first.
    pub skip_bad: bool,
    /// Alibaba PAI only: the job table (`job_table = "pai_job_table.csv"`), which holds each
    /// job's user and submission; loaded once when the scenario is read, shared by every run.
    /// Without it every PAI job has one unnamed user.
    pub job_table: Option<Arc<BTreeMap<String, eas_traces::alibaba::JobInfo>>>,
}

/// One job of a trace file (columns `arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s`;
/// `gpu_type` empty = malleable, `deadline_s` empty = best-effort; `duration_s` is the run time
/// at the requested configuration, on `gpu_type` or on the size's `on_gpu`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TraceJob {
    /// Arrival, seconds from the start.
    pub arrival_s: f64,
    /// Model name.
    pub model: String,
    /// User id.
    pub user: u32,
    /// GPUs requested.
    pub gpus: u32,
    /// GPU type (rigid job) or empty.
    #[serde(default)]
    pub gpu_type: Option<String>,
    /// Run time at the requested configuration, seconds.
    pub duration_s: f64,
    /// Absolute deadline, seconds from the start (urgent job) or empty.
    #[serde(default)]
    pub deadline_s: Option<f64>,
}

/// A power-cap change at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapChange {
    /// When.
    pub at: Nanos,
    /// New cap in watts, `None` to lift it.
    pub watts: Option<f64>,
}

/// A fully resolved scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name (reports and JSON).
    pub name: String,
    /// Where it came from (file name, or "built-in seed protocol").
    pub origin: String,
    /// Simulated hours.
    pub hours: f64,
    /// Independent runs.
    pub seeds: u32,
    /// Base seed: run `i` uses `base_seed + i`.
    pub base_seed: u64,
    /// GPU types (index = type id).
    pub gpu_types: Vec<GpuTypeDef>,
    /// GPUs of each type.
    pub gpu_counts: Vec<u32>,
    /// Models with their fitted profiles (index = model id).
    pub models: Vec<(ModelDef, ModelProfile)>,
    /// Arrivals.
    pub arrivals: Arrivals,
    /// Model index and weight of each model in the mix.
    pub mix: Vec<(u16, f64)>,
    /// GPU count requested and its weight.
    pub gpus: Vec<(u32, f64)>,
    /// Size distribution.
    pub size: SizeDist,
    /// Unit of sizes.
    pub size_unit: SizeUnit,
    /// Largest size (truncation of the distribution), same unit.
    pub size_max: f64,
    /// Share of rigid jobs (fixed type and count).
    pub rigid_fraction: f64,
    /// Number of users (jobs are spread uniformly).
    pub users: u32,
    /// Share of urgent jobs.
    pub urgent_fraction: f64,
    /// Deadline = arrival + factor x isolated run time, factor uniform in this range.
    pub deadline_factor: (f64, f64),
    /// Policy parameters.
    pub params: PolicyParams,
    /// Interval of periodic scheduling rounds.
    pub round_interval: Nanos,
    /// Least time between two rounds asked for by arrivals and completions (0: a round at every
    /// such event). Large clusters schedule in batches, as real schedulers do.
    pub min_round_gap: Nanos,
    /// Compute time between checkpoints.
    pub checkpoint_interval: Nanos,
    /// Time a checkpoint takes (GPUs allocated-idle).
    pub checkpoint_time: Nanos,
    /// Time a restart takes after a preemption or a resize (GPUs allocated-idle).
    pub restart_time: Nanos,
    /// Cluster power cap from the start, watts.
    pub power_cap_w: Option<f64>,
    /// Later changes of the cap, in time order.
    pub cap_changes: Vec<CapChange>,
    /// The nodes, in file order (each `count` expanded), on the GPU ids.
    pub nodes: Vec<NodeDef>,
    /// GPU failures and node drains (`[faults]`; none by default).
    pub faults: Faults,
}

impl Scenario {
    /// GPU power specs in type order.
    pub fn specs(&self) -> Vec<GpuSpec> {
        self.gpu_types.iter().map(|g| g.spec).collect()
    }

    /// Model profiles in model order.
    pub fn profiles(&self) -> Vec<ModelProfile> {
        self.models.iter().map(|(_, p)| *p).collect()
    }

    /// Horizon in nanoseconds.
    pub fn horizon(&self) -> Nanos {
        nanos_from_secs(self.hours * 3600.0)
    }

    /// The seed protocol of DESIGN §8.
    pub fn seed_protocol() -> Scenario {
        parse_with_base(SEED_TOML, "built-in seed protocol", None, None)
            .expect("the built-in seed scenario is valid (tested)")
    }

    /// Reads a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let name = path.display().to_string();
        let text = crate::input::read_scenario(path).map_err(|e| ScenarioError {
            file: name.clone(),
            line: 0,
            col: 0,
            msg: format!("cannot read the scenario: {e}"),
        })?;
        parse_str(&text, &name, path.parent())
    }
}

// ------------------------------------------------------------------------------------------
// The file's shape.

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    hours: Option<Spanned<f64>>,
    seeds: Option<Spanned<u32>>,
    seed: Option<u64>,
    #[serde(default)]
    gpu_types: Vec<RawGpuType>,
    nodes: Option<Vec<RawNode>>,
    arrivals: Option<RawArrivals>,
    workload: Option<RawWorkload>,
    policy: Option<RawPolicy>,
    power_cap_changes: Option<Vec<RawCapChange>>,
    #[serde(default)]
    models: Vec<RawModel>,
    faults: Option<RawFaults>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    gpu_mtbf_h: Option<Spanned<f64>>,
    repair_h: Option<Spanned<f64>>,
    node_drains_per_day: Option<Spanned<f64>>,
    drain_h: Option<Spanned<f64>>,
    drain_grace_h: Option<Spanned<f64>>,
    #[serde(default)]
    events: Vec<RawFaultEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaultEvent {
    at_h: Spanned<f64>,
    gpu: Option<Spanned<u32>>,
    node: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGpuType {
    name: Spanned<String>,
    idle_w: Spanned<f64>,
    allocated_idle_w: Spanned<f64>,
    max_w: Spanned<f64>,
    min_limit_w: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    gpu: Spanned<String>,
    #[serde(default = "one")]
    count: u32,
    gpus_per_node: Spanned<u32>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArrivals {
    poisson_rate_per_s: Option<Spanned<f64>>,
    trace: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    from_s: Option<Spanned<f64>>,
    to_s: Option<Spanned<f64>>,
    speedup: Option<Spanned<f64>>,
    failed: Option<Spanned<String>>,
    skip_bad: Option<bool>,
    job_table: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    users: Option<Spanned<u32>>,
    urgent_fraction: Option<Spanned<f64>>,
    deadline_factor: Option<Spanned<(f64, f64)>>,
    rigid_fraction: Option<Spanned<f64>>,
    mix: Option<Vec<RawMix>>,
    gpus: Option<Vec<RawGpus>>,
    size: Option<RawSize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMix {
    model: Spanned<String>,
    weight: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGpus {
    count: Spanned<u32>,
    weight: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSize {
    /// Left out: the seed protocol's distribution (a trace scenario may give only `on_gpu`).
    distribution: Option<Spanned<String>>,
    value: Option<Spanned<f64>>,
    mean: Option<Spanned<f64>>,
    median: Option<Spanned<f64>>,
    sigma: Option<Spanned<f64>>,
    unit: Option<Spanned<String>>,
    on_gpu: Option<Spanned<String>>,
    max: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    age_factor: Option<Spanned<f64>>,
    round_interval_s: Option<Spanned<f64>>,
    min_round_gap_s: Option<Spanned<f64>>,
    power_cap_w: Option<Spanned<f64>>,
    checkpoint_interval_s: Option<Spanned<f64>>,
    checkpoint_s: Option<Spanned<f64>>,
    restart_s: Option<Spanned<f64>>,
    urgent_margin_s: Option<Spanned<f64>>,
    limit_fractions: Option<Spanned<[f64; 4]>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapChange {
    at_h: Spanned<f64>,
    watts: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    name: Spanned<String>,
    ref_batch: Spanned<u32>,
    noise_scale: Spanned<f64>,
    #[serde(default = "sixteen")]
    max_gpus: u32,
    perf: Vec<RawPerf>,
    /// Power-limit response: a built-in one or one fitted to a measured sweep. Default: the
    /// built-in default.
    limit_response: Option<Spanned<RawLimitResponse>>,
}

/// `limit_response = { builtin = "bert-base" }` or
/// `limit_response = { measured = "sweep.csv", max_limit_w = 250.0, dataset = "imagenet",
/// network = "resnet50", batch_size = 256 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimitResponse {
    builtin: Option<String>,
    measured: Option<String>,
    max_limit_w: Option<f64>,
    dataset: Option<String>,
    network: Option<String>,
    batch_size: Option<u32>,
}

fn sixteen() -> u32 {
    16
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerf {
    gpu: Spanned<String>,
    samples_per_s_1gpu: f64,
    samples_per_s_8gpu: f64,
    batch_per_gpu: f64,
    #[serde(default = "fixed_fraction")]
    fixed_fraction: f64,
    #[serde(default = "sync_fixed_fraction")]
    sync_fixed_fraction: f64,
    #[serde(default = "gamma")]
    gamma: f64,
    busy_w: f64,
    max_batch_per_gpu: u32,
}

fn fixed_fraction() -> f64 {
    0.34
}
fn sync_fixed_fraction() -> f64 {
    0.8
}
fn gamma() -> f64 {
    2.0
}

// ------------------------------------------------------------------------------------------
// Parsing and checking.

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn at(&self, span: Range<usize>, msg: impl Into<String>) -> ScenarioError {
        let upto = &self.text[..span.start.min(self.text.len())];
        let line = upto.matches('\n').count() + 1;
        let col = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ScenarioError {
            file: self.file.to_string(),
            line,
            col,
            msg: msg.into(),
        }
    }

    fn whole(&self, msg: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_string(),
            line: 0,
            col: 0,
            msg: msg.into(),
        }
    }

    fn positive(&self, v: &Spanned<f64>, what: &str) -> Result<f64, ScenarioError> {
        let x = *v.get_ref();
        if x > 0.0 && x.is_finite() {
            Ok(x)
        } else {
            Err(self.at(
                v.span(),
                format!("{what}: expected a positive number, found {x}"),
            ))
        }
    }

    /// `v` in `[lo, hi]` (`(lo, hi]` when `lo_open`), located; see [`limits::range`].
    fn in_range(
        &self,
        v: &Spanned<f64>,
        what: &str,
        lo: f64,
        lo_open: bool,
        hi: f64,
    ) -> Result<f64, ScenarioError> {
        limits::range(*v.get_ref(), what, lo, lo_open, hi).map_err(|m| self.at(v.span(), m))
    }

    /// An integer `v` in `[lo, hi]`, located.
    fn count_in(
        &self,
        v: &Spanned<u32>,
        what: &str,
        lo: u64,
        hi: u64,
    ) -> Result<u32, ScenarioError> {
        let x = *v.get_ref();
        if (lo..=hi).contains(&u64::from(x)) {
            Ok(x)
        } else {
            Err(self.at(
                v.span(),
                format!("{what}: expected a whole number in [{lo}, {hi}], found {x}"),
            ))
        }
    }

    /// A name (see [`limits::name`]), located.
    fn name(&self, v: &Spanned<String>, what: &str) -> Result<(), ScenarioError> {
        limits::name(v.get_ref(), what).map_err(|m| self.at(v.span(), m))
    }

    fn fraction(&self, v: &Spanned<f64>, what: &str) -> Result<f64, ScenarioError> {
        let x = *v.get_ref();
        if (0.0..=1.0).contains(&x) {
            Ok(x)
        } else {
            Err(self.at(
                v.span(),
                format!("{what}: expected a fraction in [0, 1], found {x}"),
            ))
        }
    }
}

fn gpu_index(
    ctx: &Ctx<'_>,
    gpus: &[GpuTypeDef],
    name: &Spanned<String>,
) -> Result<u8, ScenarioError> {
    gpus.iter()
        .position(|g| g.name.eq_ignore_ascii_case(name.get_ref()))
        .map(|i| i as u8)
        .ok_or_else(|| {
            let known: Vec<&str> = gpus.iter().map(|g| g.name.as_str()).collect();
            ctx.at(
                name.span(),
                format!(
                    "unknown GPU type {:?}: expected one of {}",
                    name.get_ref(),
                    known.join(", ")
                ),
            )
        })
}

fn model_index(
    ctx: &Ctx<'_>,
    models: &[(ModelDef, ModelProfile)],
    name: &Spanned<String>,
) -> Result<u16, ScenarioError> {
    models
        .iter()
        .position(|(m, _)| m.name.eq_ignore_ascii_case(name.get_ref()))
        .map(|i| i as u16)
        .ok_or_else(|| {
            let known: Vec<&str> = models.iter().map(|(m, _)| m.name.as_str()).collect();
            ctx.at(
                name.span(),
                format!(
                    "unknown model {:?}: expected one of {}",
                    name.get_ref(),
                    known.join(", ")
                ),
            )
        })
}

/// Parses scenario text. `file` names it in errors; `dir` is where relative trace paths start.
/// Fields the text leaves out come from the seed protocol.
pub fn parse_str(text: &str, file: &str, dir: Option<&Path>) -> Result<Scenario, ScenarioError> {
    parse_with_base(text, file, dir, Some(Scenario::seed_protocol()))
}

fn parse_with_base(
    text: &str,
    file: &str,
    dir: Option<&Path>,
    base: Option<Scenario>,
) -> Result<Scenario, ScenarioError> {
    let ctx = Ctx { file, text };
    let raw: RawScenario = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => ctx.at(span, e.message().to_string()),
        None => ctx.whole(e.message().to_string()),
    })?;
    resolve(&ctx, raw, base, dir)
}

fn resolve(
    ctx: &Ctx<'_>,
    raw: RawScenario,
    base: Option<Scenario>,
    dir: Option<&Path>,
) -> Result<Scenario, ScenarioError> {
    let missing = |what: &str| {
        ctx.whole(format!(
            "missing {what} (the built-in seed scenario must set every field)"
        ))
    };

    if let Some(n) = &raw.name {
        limits::name(n, "name").map_err(|m| ctx.whole(m))?;
    }

    // GPU types: built in, then the file's (same name replaces).
    let mut gpu_types = builtin_gpus();
    for (i, g) in raw.gpu_types.iter().enumerate() {
        ctx.name(&g.name, "gpu_types.name")?;
        if let Some(first) = raw.gpu_types[..i]
            .iter()
            .find(|o| o.name.get_ref().eq_ignore_ascii_case(g.name.get_ref()))
        {
            let line = ctx.at(first.name.span(), "").line;
            return Err(ctx.at(
                g.name.span(),
                format!(
                    "gpu_types: {:?} is defined twice (first on line {line}); give each type one [[gpu_types]] entry",
                    g.name.get_ref()
                ),
            ));
        }
        let watts = |v: &Spanned<f64>, what: &str| ctx.in_range(v, what, 0.0, true, MAX_WATTS);
        let spec = GpuSpec {
            idle_w: watts(&g.idle_w, "idle_w")?,
            allocated_idle_w: watts(&g.allocated_idle_w, "allocated_idle_w")?,
            max_w: watts(&g.max_w, "max_w")?,
            min_limit_w: watts(&g.min_limit_w, "min_limit_w")?,
        };
        if !(spec.idle_w <= spec.allocated_idle_w && spec.allocated_idle_w <= spec.max_w) {
            return Err(ctx.at(
                g.idle_w.span(),
                "expected idle_w <= allocated_idle_w <= max_w".to_string(),
            ));
        }
        if spec.min_limit_w > spec.max_w {
            return Err(ctx.at(
                g.min_limit_w.span(),
                format!(
                    "min_limit_w: expected at most max_w ({} W), found {} W",
                    spec.max_w, spec.min_limit_w
                ),
            ));
        }
        let def = GpuTypeDef {
            name: g.name.get_ref().clone(),
            spec,
        };
        match gpu_types
            .iter_mut()
            .find(|t| t.name.eq_ignore_ascii_case(g.name.get_ref()))
        {
            Some(t) => *t = def,
            None => gpu_types.push(def),
        }
    }
    if gpu_types.len() > MAX_GPU_TYPES {
        return Err(ctx.whole(format!("at most {MAX_GPU_TYPES} GPU types are supported")));
    }

    // Models: built in, then the file's.
    let mut defs = builtin_models();
    for (i, m) in raw.models.iter().enumerate() {
        check_model(ctx, &raw.models[..i], m)?;
        let mut perf = Vec::new();
        for p in &m.perf {
            let ty = gpu_index(ctx, &gpu_types, &p.gpu)?;
            check_perf(ctx, p, gpu_types[ty as usize].spec.max_w)?;
            perf.push(PerfFigures {
                gpu: p.gpu.get_ref().clone(),
                one_gpu: p.samples_per_s_1gpu,
                eight_gpus: p.samples_per_s_8gpu,
                batch_per_gpu: p.batch_per_gpu,
                fixed_fraction: p.fixed_fraction,
                sync_fixed_fraction: p.sync_fixed_fraction,
                gamma: p.gamma,
                busy_w: p.busy_w,
                max_batch_per_gpu: p.max_batch_per_gpu,
            });
        }
        let limit = match &m.limit_response {
            None => ea2p_core::jobmodel::LimitResponse::DEFAULT,
            Some(l) => limit_response(ctx, l, dir)?,
        };
        let def = ModelDef {
            name: m.name.get_ref().clone(),
            stat: StatEff {
                ref_batch: *m.ref_batch.get_ref(),
                noise_scale: ctx.positive(&m.noise_scale, "noise_scale")?,
            },
            max_gpus: m.max_gpus,
            perf,
            limit,
        };
        match defs
            .iter_mut()
            .find(|d| d.name.eq_ignore_ascii_case(m.name.get_ref()))
        {
            Some(d) => *d = def,
            None => defs.push(def),
        }
    }
    let mut models = Vec::new();
    for d in defs {
        let span = raw
            .models
            .iter()
            .find(|m| m.name.get_ref().eq_ignore_ascii_case(&d.name))
            .map(|m| m.name.span());
        let prof = d.profile(&gpu_types).map_err(|msg| match span.clone() {
            Some(s) => ctx.at(s, msg.clone()),
            None => ctx.whole(msg.clone()),
        })?;
        models.push((d, prof));
    }
    if models.len() > MAX_MODELS {
        return Err(ctx.whole(format!("at most {MAX_MODELS} models are supported")));
    }

    // Cluster.
    let mut gpu_counts = vec![0u32; gpu_types.len()];
    let mut node_list: Vec<(u8, u32)> = Vec::new();
    match &raw.nodes {
        Some(nodes) => {
            let (mut all_nodes, mut all_gpus) = (0u64, 0u64);
            for n in nodes {
                let ty = gpu_index(ctx, &gpu_types, &n.gpu)?;
                all_nodes += u64::from(n.count);
                all_gpus += u64::from(n.count) * u64::from(*n.gpus_per_node.get_ref());
                if all_nodes > MAX_NODES || all_gpus > MAX_GPUS {
                    return Err(ctx.at(
                        n.gpus_per_node.span(),
                        format!(
                            "[[nodes]]: the cluster would have {all_nodes} nodes and {all_gpus} GPUs; expected at most {MAX_NODES} nodes and {MAX_GPUS} GPUs"
                        ),
                    ));
                }
                gpu_counts[ty as usize] += n.count * n.gpus_per_node.get_ref();
                if *n.gpus_per_node.get_ref() > 0 {
                    node_list.extend(std::iter::repeat_n(
                        (ty, *n.gpus_per_node.get_ref()),
                        n.count as usize,
                    ));
                }
            }
        }
        None => {
            let b = base.as_ref().ok_or_else(|| missing("[[nodes]]"))?;
            for (i, t) in gpu_types.iter().enumerate() {
                if let Some(j) = b.gpu_types.iter().position(|g| g.name == t.name) {
                    gpu_counts[i] = b.gpu_counts[j];
                }
            }
            for n in &b.nodes {
                let name = &b.gpu_types[n.gpu_type as usize].name;
                if let Some(i) = gpu_types.iter().position(|g| &g.name == name) {
                    node_list.push((i as u8, n.gpus));
                }
            }
        }
    }
    let nodes = faults::layout(&node_list, gpu_types.len());
    let faults = match raw.faults {
        Some(f) => resolve_faults(ctx, &f, &nodes, gpu_counts.iter().sum())?,
        None => base.as_ref().map(|b| b.faults.clone()).unwrap_or_default(),
    };
    if gpu_counts.iter().all(|&c| c == 0) {
        return Err(ctx.whole(
            "the cluster has no GPU: expected at least one [[nodes]] entry with gpus_per_node > 0",
        ));
    }

    let hours = match &raw.hours {
        Some(h) => ctx.in_range(h, "hours", 0.0, true, MAX_HOURS)?,
        None => base.as_ref().ok_or_else(|| missing("hours"))?.hours,
    };
    let seeds = match &raw.seeds {
        Some(s) => ctx.count_in(s, "seeds", 1, u64::from(MAX_SEEDS))?,
        None => base.as_ref().ok_or_else(|| missing("seeds"))?.seeds,
    };
    let base_seed = match raw.seed {
        Some(s) => s,
        None => base.as_ref().ok_or_else(|| missing("seed"))?.base_seed,
    };

    // Workload.
    let w = raw.workload.unwrap_or_default();
    let bw = base.as_ref();
    macro_rules! or_base {
        ($v:expr, $field:ident, $what:expr) => {
            match $v {
                Some(x) => x,
                None => bw.ok_or_else(|| missing($what))?.$field.clone(),
            }
        };
    }
    let users = or_base!(
        match &w.users {
            Some(u) => Some(ctx.count_in(u, "users", 1, u64::from(MAX_USERS))?),
            None => None,
        },
        users,
        "workload.users"
    );
    let urgent_fraction = or_base!(
        w.urgent_fraction
            .as_ref()
            .map(|v| ctx.fraction(v, "urgent_fraction"))
            .transpose()?,
        urgent_fraction,
        "workload.urgent_fraction"
    );
    let rigid_fraction = or_base!(
        w.rigid_fraction
            .as_ref()
            .map(|v| ctx.fraction(v, "rigid_fraction"))
            .transpose()?,
        rigid_fraction,
        "workload.rigid_fraction"
    );
    let deadline_factor = or_base!(
        match &w.deadline_factor {
            Some(d) => {
                let (lo, hi) = *d.get_ref();
                if !(lo >= 1.0 && hi >= lo && hi <= 1000.0) {
                    return Err(ctx.at(
                        d.span(),
                        format!("deadline_factor: expected [lo, hi] with 1 <= lo <= hi <= 1000, found [{lo}, {hi}]"),
                    ));
                }
                Some((lo, hi))
            }
            None => None,
        },
        deadline_factor,
        "workload.deadline_factor"
    );
    let mix = match &w.mix {
        Some(list) => {
            let mut v = Vec::new();
            for m in list {
                v.push((
                    model_index(ctx, &models, &m.model)?,
                    ctx.in_range(&m.weight, "weight", 0.0, true, MAX_WEIGHT)?,
                ));
            }
            if v.is_empty() {
                return Err(ctx.whole("workload.mix: expected at least one { model, weight }"));
            }
            v
        }
        None => {
            let b = bw.ok_or_else(|| missing("workload.mix"))?;
            let mut v = Vec::new();
            for &(mi, wt) in &b.mix {
                let name = &b.models[mi as usize].0.name;
                if let Some(i) = models.iter().position(|(m, _)| &m.name == name) {
                    v.push((i as u16, wt));
                }
            }
            v
        }
    };
    let gpus = match &w.gpus {
        Some(list) => {
            let mut v = Vec::new();
            for g in list {
                let c = ctx.count_in(&g.count, "count", 1, MAX_GPUS)?;
                v.push((c, ctx.in_range(&g.weight, "weight", 0.0, true, MAX_WEIGHT)?));
            }
            if v.is_empty() {
                return Err(ctx.whole("workload.gpus: expected at least one { count, weight }"));
            }
            v
        }
        None => bw.ok_or_else(|| missing("workload.gpus"))?.gpus.clone(),
    };
    let (size, size_unit, size_max) = match &w.size {
        Some(s) => resolve_size(ctx, s, &gpu_types, bw)?,
        None => {
            let b = bw.ok_or_else(|| missing("workload.size"))?;
            let unit = match b.size_unit {
                SizeUnit::Seconds { on_gpu } => {
                    let name = &b.gpu_types[on_gpu as usize].name;
                    SizeUnit::Seconds {
                        on_gpu: gpu_types.iter().position(|g| &g.name == name).unwrap_or(0) as u8,
                    }
                }
                SizeUnit::Samples => SizeUnit::Samples,
            };
            (b.size, unit, b.size_max)
        }
    };

    // Arrivals.
    let arrivals = match raw.arrivals {
        Some(RawArrivals {
            poisson_rate_per_s: Some(r),
            trace: None,
            format: None,
            from_s: None,
            to_s: None,
            speedup: None,
            failed: None,
            skip_bad: None,
            job_table: None,
        }) => Arrivals::Poisson(ctx.in_range(&r, "poisson_rate_per_s", 0.0, true, MAX_RATE_PER_S)?),
        Some(RawArrivals {
            poisson_rate_per_s: None,
            trace: Some(t),
            format: None,
            from_s: None,
            to_s: None,
            speedup: None,
            failed: None,
            skip_bad: None,
            job_table: None,
        }) => {
            let path = beside(dir, t.get_ref());
            Arrivals::Trace(read_trace(&path).map_err(|e| ctx.at(t.span(), e))?)
        }
        Some(RawArrivals {
            poisson_rate_per_s: None,
            trace: Some(t),
            format: Some(fmt),
            from_s,
            to_s,
            speedup,
            failed,
            skip_bad,
            job_table,
        }) => {
            let path = beside(dir, t.get_ref());
            let format = fmt.get_ref().parse().map_err(|e: String| {
                ctx.at(fmt.span(), format!("arrivals.format: {e} (leave format out for the simulator's own CSV)"))
            })?;
            // A regular file (a FIFO or a device is refused here, with what it is).
            crate::input::open_regular(&path)
                .map_err(|e| ctx.at(t.span(), format!("arrivals.trace: {e}")))?;
            let speed = match &speedup {
                Some(v) => ctx.in_range(v, "arrivals.speedup", 0.0, true, 1e6)?,
                None => 1.0,
            };
            for (v, what) in [(&from_s, "arrivals.from_s"), (&to_s, "arrivals.to_s")] {
                if let Some(v) = v {
                    ctx.in_range(v, what, -1e12, false, 1e12)?;
                }
            }
            let lo = from_s.as_ref().map_or(f64::NEG_INFINITY, |v| *v.get_ref());
            let hi = to_s.as_ref().map_or(f64::INFINITY, |v| *v.get_ref());
            let span = to_s.as_ref().or(from_s.as_ref()).map_or(t.span(), |v| v.span());
            let window = eas_traces::Window::new(lo, hi, speed).map_err(|_| {
                ctx.at(
                    span,
                    format!("arrivals: expected from_s < to_s, found from_s = {lo}, to_s = {hi}"),
                )
            })?;
            let failed = match failed.as_ref().map(|f| (f.get_ref().as_str(), f.span())) {
                None | Some(("keep", _)) => eas_traces::FailurePolicy::KeepWithDuration,
                Some(("drop", _)) => eas_traces::FailurePolicy::Drop,
                Some((other, span)) => {
                    return Err(ctx.at(
                        span,
                        format!("arrivals.failed: expected \"keep\" or \"drop\", found {other:?}"),
                    ))
                }
            };
            let job_table = match job_table {
                None => None,
                Some(jt) if format == eas_traces::Format::Alibaba => {
                    let jpath = beside(dir, jt.get_ref());
                    crate::input::open_regular(&jpath)
                        .map_err(|e| ctx.at(jt.span(), format!("arrivals.job_table: {e}")))?;
                    let table = eas_traces::load_alibaba_job_table(&jpath)
                        .map_err(|e| ctx.at(jt.span(), format!("arrivals.job_table: {e}")))?;
                    Some(Arc::new(table))
                }
                Some(jt) => {
                    return Err(ctx.at(
                        jt.span(),
                        format!("arrivals.job_table: only the alibaba format has a separate job table (users are in the {format:?} trace itself)"),
                    ))
                }
            };
            Arrivals::Public(PublicTrace {
                path,
                format,
                window,
                failed,
                skip_bad: skip_bad.unwrap_or(false),
                job_table,
            })
        }
        Some(RawArrivals {
            poisson_rate_per_s: Some(_),
            ..
        }) => return Err(ctx.whole(
            "[arrivals]: poisson_rate_per_s takes no other key (format, from_s, to_s, speedup, failed, skip_bad and job_table go with trace = \"FILE\")",
        )),
        Some(RawArrivals {
            trace: Some(_),
            format: None,
            ..
        }) => return Err(ctx.whole(
            "[arrivals]: from_s, to_s, speedup, failed, skip_bad and job_table need a public trace format: add format = \"helios\", \"philly\" or \"alibaba\"",
        )),
        Some(_) => return Err(ctx.whole(
            "[arrivals]: expected exactly one of poisson_rate_per_s = RATE or trace = \"FILE.csv\"",
        )),
        None => bw.ok_or_else(|| missing("[arrivals]"))?.arrivals.clone(),
    };
    // A model of the mix that fits no GPU type of this cluster could never run a job.
    for &(mi, _) in mix
        .iter()
        .filter(|_| !matches!(arrivals, Arrivals::Trace(_)))
    {
        check_fits(
            ctx,
            &models[mi as usize],
            &gpu_types,
            &gpu_counts,
            "workload.mix",
        )?;
    }
    if let Arrivals::Trace(jobs) = &arrivals {
        for j in jobs {
            let Some(m) = models
                .iter()
                .find(|(m, _)| m.name.eq_ignore_ascii_case(&j.model))
            else {
                return Err(ctx.whole(format!("trace: unknown model {:?}", j.model)));
            };
            check_fits(ctx, m, &gpu_types, &gpu_counts, "trace")?;
            if let Some(g) = &j.gpu_type {
                match gpu_types
                    .iter()
                    .position(|t| t.name.eq_ignore_ascii_case(g))
                {
                    None => return Err(ctx.whole(format!("trace: unknown GPU type {g:?}"))),
                    Some(i) if gpu_counts[i] == 0 => {
                        return Err(ctx.whole(format!(
                            "trace: a job asks for GPU type {g:?}, which this cluster has none of"
                        )))
                    }
                    Some(_) => {}
                }
            }
        }
    }

    // Policy parameters.
    let p = raw.policy.unwrap_or_default();
    let bp = bw.map(|b| b.params).unwrap_or_default();
    let secs_or = |v: &Option<Spanned<f64>>,
                   what: &str,
                   dflt: Option<Nanos>,
                   positive: bool|
     -> Result<Nanos, ScenarioError> {
        match v {
            Some(x) => {
                let s = ctx.in_range(x, what, 0.0, positive, MAX_SECONDS)?;
                Ok(nanos_from_secs(s))
            }
            None => dflt.ok_or_else(|| missing(what)),
        }
    };
    let round_interval = secs_or(
        &p.round_interval_s,
        "policy.round_interval_s",
        bw.map(|b| b.round_interval),
        true,
    )?;
    let min_round_gap = secs_or(
        &p.min_round_gap_s,
        "policy.min_round_gap_s",
        Some(bw.map_or(0, |b| b.min_round_gap)),
        false,
    )?;
    let checkpoint_interval = secs_or(
        &p.checkpoint_interval_s,
        "policy.checkpoint_interval_s",
        bw.map(|b| b.checkpoint_interval),
        true,
    )?;
    let checkpoint_time = secs_or(
        &p.checkpoint_s,
        "policy.checkpoint_s",
        bw.map(|b| b.checkpoint_time),
        false,
    )?;
    let restart_time = secs_or(
        &p.restart_s,
        "policy.restart_s",
        bw.map(|b| b.restart_time),
        false,
    )?;
    let mut params = PolicyParams {
        age_factor: match &p.age_factor {
            Some(a) => ctx.in_range(a, "age_factor", 0.0, false, 1e6)?,
            None => bp.age_factor,
        },
        urgent_margin_s: match &p.urgent_margin_s {
            Some(a) => ctx.in_range(a, "urgent_margin_s", 0.0, false, MAX_SECONDS)?,
            None => bp.urgent_margin_s,
        },
        limit_fractions: bp.limit_fractions,
        reconfig_cost_s: ea2p_core::units::secs(restart_time + checkpoint_time),
    };
    if let Some(l) = &p.limit_fractions {
        let v = *l.get_ref();
        if v.iter()
            .any(|&f| !(ea2p_core::jobmodel::MIN_LIMIT_FRACTION_OF_BUSY..=1.0).contains(&f))
        {
            return Err(ctx.at(
                l.span(),
                format!(
                    "limit_fractions: expected four fractions in [{}, 1] (the range where the power-limit model was measured)",
                    ea2p_core::jobmodel::MIN_LIMIT_FRACTION_OF_BUSY
                ),
            ));
        }
        params.limit_fractions = v;
    }
    // A cap below what the cluster draws with every GPU idle cannot be met by any schedule.
    let idle_floor_w: f64 = gpu_types
        .iter()
        .zip(&gpu_counts)
        .map(|(g, &c)| g.spec.idle_w * c as f64)
        .sum();
    let below_floor = |w: f64| w < idle_floor_w;
    let power_cap_w = match &p.power_cap_w {
        Some(c) => {
            let w = ctx.in_range(c, "power_cap_w", 0.0, true, MAX_WATTS)?;
            if below_floor(w) {
                return Err(ctx.at(
                    c.span(),
                    format!("power_cap_w: {w} W is below the cluster's all-idle power ({idle_floor_w} W); expected at least that"),
                ));
            }
            Some(w)
        }
        // Inherited from the seed protocol: only Charon honours it, so it is checked against
        // the cluster when Charon runs (`limits::check_cap_for`), not here.
        None => bw.and_then(|b| b.power_cap_w),
    };
    let mut cap_changes = Vec::new();
    match &raw.power_cap_changes {
        Some(list) => {
            for c in list {
                let at =
                    nanos_from_secs(ctx.in_range(&c.at_h, "at_h", 0.0, false, MAX_HOURS)? * 3600.0);
                let watts = c
                    .watts
                    .as_ref()
                    .map(|w| ctx.in_range(w, "watts", 0.0, true, MAX_WATTS))
                    .transpose()?;
                if let (Some(w), Some(span)) = (watts, c.watts.as_ref().map(|w| w.span())) {
                    if below_floor(w) {
                        return Err(ctx.at(
                            span,
                            format!("watts: {w} W is below the cluster's all-idle power ({idle_floor_w} W); expected at least that"),
                        ));
                    }
                }
                cap_changes.push(CapChange { at, watts });
            }
            cap_changes.sort_by_key(|c| c.at);
        }
        None => {
            if let Some(b) = bw {
                cap_changes = b.cap_changes.clone();
            }
        }
    }

    Ok(Scenario {
        name: raw
            .name
            .or_else(|| bw.map(|b| b.name.clone()))
            .unwrap_or_else(|| "scenario".into()),
        origin: ctx.file.to_string(),
        hours,
        seeds,
        base_seed,
        gpu_types,
        gpu_counts,
        models,
        arrivals,
        mix,
        gpus,
        size,
        size_unit,
        size_max,
        rigid_fraction,
        users,
        urgent_fraction,
        deadline_factor,
        params,
        round_interval,
        min_round_gap,
        checkpoint_interval,
        checkpoint_time,
        restart_time,
        power_cap_w,
        cap_changes,
        nodes,
        faults,
    })
}

fn resolve_faults(
    ctx: &Ctx<'_>,
    f: &RawFaults,
    nodes: &[NodeDef],
    gpus: u32,
) -> Result<Faults, ScenarioError> {
    let d = Faults::default();
    let hours_or = |v: &Option<Spanned<f64>>, what: &str, dflt: Nanos| match v {
        Some(x) => Ok(nanos_from_secs(
            ctx.in_range(x, what, 0.0, false, MAX_HOURS)? * 3600.0,
        )),
        None => Ok::<_, ScenarioError>(dflt),
    };
    let mut scripted = Vec::new();
    for e in &f.events {
        let at = nanos_from_secs(ctx.in_range(&e.at_h, "at_h", 0.0, false, MAX_HOURS)? * 3600.0);
        scripted.push(match (&e.gpu, &e.node) {
            (Some(g), None) if *g.get_ref() < gpus => Scripted::Fail {
                at,
                gpu: *g.get_ref(),
            },
            (Some(g), None) => {
                return Err(ctx.at(
                    g.span(),
                    format!(
                        "gpu: expected a GPU id below {gpus} (ids count type by type, nodes in file order)"
                    ),
                ))
            }
            (None, Some(n)) if (*n.get_ref() as usize) < nodes.len() => Scripted::Drain {
                at,
                node: *n.get_ref(),
            },
            (None, Some(n)) => {
                return Err(ctx.at(
                    n.span(),
                    format!(
                        "node: expected a node index below {} (file order, each count expanded)",
                        nodes.len()
                    ),
                ))
            }
            _ => {
                return Err(ctx.at(
                    e.at_h.span(),
                    "[[faults.events]]: expected exactly one of gpu = ID (a failure) or node = INDEX (a drain)",
                ))
            }
        });
    }
    Ok(Faults {
        gpu_mtbf_h: f
            .gpu_mtbf_h
            .as_ref()
            .map(|m| ctx.in_range(m, "gpu_mtbf_h", 0.0, true, 1e12))
            .transpose()?,
        repair: hours_or(&f.repair_h, "repair_h", d.repair)?,
        node_drains_per_day: match &f.node_drains_per_day {
            Some(r) => ctx.in_range(r, "node_drains_per_day", 0.0, false, 1e6)?,
            None => 0.0,
        },
        drain: hours_or(&f.drain_h, "drain_h", d.drain)?,
        drain_grace: hours_or(&f.drain_grace_h, "drain_grace_h", d.drain_grace)?,
        scripted,
    })
}

fn resolve_size(
    ctx: &Ctx<'_>,
    s: &RawSize,
    gpus: &[GpuTypeDef],
    base: Option<&Scenario>,
) -> Result<(SizeDist, SizeUnit, f64), ScenarioError> {
    let samples = matches!(
        s.unit.as_ref().map(|u| u.get_ref().as_str()),
        Some("samples")
    );
    let top = if samples { MAX_SAMPLES } else { MAX_SECONDS };
    let Some(distribution) = &s.distribution else {
        // Only the unit, the reference type or the maximum: the rest is the seed protocol's.
        if let Some(v) = [&s.value, &s.mean, &s.median, &s.sigma]
            .into_iter()
            .flatten()
            .next()
        {
            return Err(ctx.at(
                v.span(),
                "[workload.size]: value, mean, median and sigma need distribution = \"fixed\", \"exponential\" or \"lognormal\"",
            ));
        }
        let b = base.ok_or_else(|| ctx.whole("[workload.size]: expected distribution = NAME"))?;
        let mut out = resolve_size_unit(ctx, s, gpus)?;
        out.0 = b.size;
        if s.max.is_none() {
            out.2 = b.size_max;
        }
        return Ok(out);
    };
    let need = |v: &Option<Spanned<f64>>, what: &str, hi: f64| -> Result<f64, ScenarioError> {
        match v {
            Some(x) => ctx.in_range(x, what, 0.0, true, hi),
            None => Err(ctx.at(
                distribution.span(),
                format!(
                    "distribution {:?} needs `{what} = NUMBER`",
                    distribution.get_ref()
                ),
            )),
        }
    };
    let dist = match distribution.get_ref().as_str() {
        "fixed" => SizeDist::Fixed(need(&s.value, "value", top)?),
        "exponential" => SizeDist::Exponential(need(&s.mean, "mean", top)?),
        "lognormal" => SizeDist::LogNormal { median: need(&s.median, "median", top)?, sigma: need(&s.sigma, "sigma", 10.0)? },
        other => {
            return Err(ctx.at(
                distribution.span(),
                format!("unknown distribution {other:?}: expected \"fixed\", \"exponential\" or \"lognormal\""),
            ))
        }
    };
    let mut out = resolve_size_unit(ctx, s, gpus)?;
    out.0 = dist;
    Ok(out)
}

/// Unit, reference type and maximum of `[workload.size]` (the distribution is the caller's).
fn resolve_size_unit(
    ctx: &Ctx<'_>,
    s: &RawSize,
    gpus: &[GpuTypeDef],
) -> Result<(SizeDist, SizeUnit, f64), ScenarioError> {
    let unit = match s.unit.as_ref().map(|u| (u.get_ref().as_str(), u.span())) {
        None | Some(("seconds", _)) => SizeUnit::Seconds {
            on_gpu: match &s.on_gpu {
                Some(g) => gpu_index(ctx, gpus, g)?,
                None => 0,
            },
        },
        Some(("samples", _)) => SizeUnit::Samples,
        Some((other, span)) => {
            return Err(ctx.at(
                span,
                format!("unknown unit {other:?}: expected \"seconds\" or \"samples\""),
            ))
        }
    };
    let top = if unit == SizeUnit::Samples {
        MAX_SAMPLES
    } else {
        MAX_SECONDS
    };
    let max = match &s.max {
        Some(m) => ctx.in_range(m, "max", 0.0, true, top)?,
        None => top,
    };
    Ok((SizeDist::Fixed(1.0), unit, max))
}

/// A model given in the file: a printable name, defined once, numbers in range.
fn check_model(ctx: &Ctx<'_>, before: &[RawModel], m: &RawModel) -> Result<(), ScenarioError> {
    ctx.name(&m.name, "models.name")?;
    if let Some(first) = before
        .iter()
        .find(|o| o.name.get_ref().eq_ignore_ascii_case(m.name.get_ref()))
    {
        let line = ctx.at(first.name.span(), "").line;
        return Err(ctx.at(
            m.name.span(),
            format!(
                "models: {:?} is defined twice (first on line {line}); give each model one [[models]] entry",
                m.name.get_ref()
            ),
        ));
    }
    ctx.count_in(&m.ref_batch, "ref_batch", 1, 1_000_000)?;
    ctx.in_range(&m.noise_scale, "noise_scale", 0.0, true, 1e12)?;
    if !(1..=MAX_GPUS).contains(&u64::from(m.max_gpus)) {
        return Err(ctx.at(
            m.name.span(),
            format!(
                "models {:?}: max_gpus: expected a whole number in [1, {MAX_GPUS}], found {}",
                m.name.get_ref(),
                m.max_gpus
            ),
        ));
    }
    Ok(())
}

/// One model's figures on one GPU type: every number finite and in range (the fit checks
/// that they agree with each other). Located at the entry's `gpu`.
fn check_perf(ctx: &Ctx<'_>, p: &RawPerf, max_w: f64) -> Result<(), ScenarioError> {
    let at = |m: String| ctx.at(p.gpu.span(), format!("perf on {:?}: {m}", p.gpu.get_ref()));
    let checks = [
        (p.samples_per_s_1gpu, "samples_per_s_1gpu", 0.0, true, 1e9),
        (p.samples_per_s_8gpu, "samples_per_s_8gpu", 0.0, true, 1e10),
        (p.batch_per_gpu, "batch_per_gpu", 0.0, true, 1e6),
        (p.fixed_fraction, "fixed_fraction", 0.0, false, 1.0),
        (
            p.sync_fixed_fraction,
            "sync_fixed_fraction",
            0.0,
            false,
            1.0,
        ),
        (p.gamma, "gamma", 1.0, false, 100.0),
        (p.busy_w, "busy_w", 0.0, true, max_w),
    ];
    for (x, what, lo, open, hi) in checks {
        limits::range(x, what, lo, open, hi).map_err(at)?;
    }
    if !(1..=1_000_000).contains(&p.max_batch_per_gpu) {
        return Err(at(format!(
            "max_batch_per_gpu: expected a whole number in [1, 1000000], found {}",
            p.max_batch_per_gpu
        )));
    }
    Ok(())
}

/// A model must have figures for at least one GPU type the cluster has, or none of its jobs
/// could ever start.
fn check_fits(
    ctx: &Ctx<'_>,
    (m, prof): &(ModelDef, ModelProfile),
    gpus: &[GpuTypeDef],
    counts: &[u32],
    whence: &str,
) -> Result<(), ScenarioError> {
    let fits = (0..gpus.len()).any(|t| counts[t] > 0 && prof.perf[t].is_some());
    if fits {
        return Ok(());
    }
    let have: Vec<&str> = (0..gpus.len())
        .filter(|&t| counts[t] > 0)
        .map(|t| gpus[t].name.as_str())
        .collect();
    let figures: Vec<&str> = m.perf.iter().map(|f| f.gpu.as_str()).collect();
    Err(ctx.whole(format!(
        "{whence}: model {:?} has figures for {} but the cluster has only {}: none of its jobs could run; add [[models.perf]] for one of the cluster's types or take the model out",
        m.name,
        if figures.is_empty() { "no GPU type".to_string() } else { figures.join(", ") },
        have.join(", ")
    )))
}

/// A path named in a scenario: relative ones are taken from the scenario file's folder.
/// A model's `limit_response`: a built-in response by name, or one fitted to the named
/// configuration of a measured sweep (read bounded, errors with the sweep's file and line).
fn limit_response(
    ctx: &Ctx<'_>,
    l: &Spanned<RawLimitResponse>,
    dir: Option<&Path>,
) -> Result<ea2p_core::jobmodel::LimitResponse, ScenarioError> {
    use crate::validate;
    let r = l.get_ref();
    let at = |msg: String| ctx.at(l.span(), msg);
    let names = || {
        validate::BUILTIN_RESPONSES
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (&r.builtin, &r.measured) {
        (Some(b), None) => {
            if r.max_limit_w.is_some() || r.dataset.is_some() || r.network.is_some() || r.batch_size.is_some() {
                return Err(at("limit_response: builtin takes no other key (max_limit_w, dataset, network and batch_size go with measured)".into()));
            }
            validate::builtin_response(b).ok_or_else(|| {
                at(format!(
                    "limit_response: unknown builtin {b:?}: expected one of {}",
                    names()
                ))
            })
        }
        (None, Some(file)) => {
            let (Some(max), Some(ds), Some(net), Some(batch)) =
                (r.max_limit_w, &r.dataset, &r.network, r.batch_size)
            else {
                return Err(at("limit_response: measured needs max_limit_w, dataset, network and batch_size (which configuration of the sweep to fit)".into()));
            };
            if !(max > 0.0 && max.is_finite()) {
                return Err(at(format!(
                    "limit_response: max_limit_w: expected a positive number of watts, got {max}"
                )));
            }
            let path = beside(dir, file);
            validate::fit_from_file(&path, max, ds, net, batch)
                .map_err(|e| at(format!("limit_response: {e}")))
        }
        _ => Err(at(format!(
            "limit_response: expected exactly one of builtin (one of {}) or measured (a sweep CSV file)",
            names()
        ))),
    }
}

fn beside(dir: Option<&Path>, name: &str) -> PathBuf {
    dir.map_or_else(|| PathBuf::from(name), |d| d.join(name))
}

fn read_trace(path: &Path) -> Result<Vec<TraceJob>, String> {
    let file = crate::input::open_regular(path).map_err(|e| format!("cannot read trace: {e}"))?;
    let mut rdr =
        csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(crate::input::RowLimit::new(
                file,
                crate::input::MAX_ROW_BYTES,
            ));
    // The header first: `deserialize` would take a header it cannot read for an empty file.
    let head = rdr
        .headers()
        .map_err(|e| format!("trace {}: cannot read the header row: {e}", path.display()))?;
    if head.is_empty() {
        return Err(format!(
            "trace {}: the file is empty; expected a header row arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s",
            path.display()
        ));
    }
    let mut jobs = Vec::new();
    for (i, rec) in rdr.deserialize::<TraceJob>().enumerate() {
        let bad = |m: String| format!("trace {} record {}: {m}", path.display(), i + 1);
        if i >= limits::MAX_TRACE_ROWS {
            return Err(bad(format!(
                "more than {} jobs, the most a trace in this format may hold (it is loaded whole); use a public format (streamed) or cut the trace",
                limits::MAX_TRACE_ROWS
            )));
        }
        let mut j = rec.map_err(|e| {
            bad(format!(
                "{e} (expected columns arrival_s,model,user,gpus,gpu_type,duration_s,deadline_s)"
            ))
        })?;
        if j.gpu_type.as_deref() == Some("") {
            j.gpu_type = None;
        }
        check_trace_job(&j).map_err(bad)?;
        jobs.push(j);
    }
    jobs.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    Ok(jobs)
}

/// One row of the simulator's CSV trace: every number in range (a run time of 1e308 s would
/// overflow integer time and "complete" with impossible energy).
fn check_trace_job(j: &TraceJob) -> Result<(), String> {
    limits::range(j.arrival_s, "arrival_s", 0.0, false, MAX_SECONDS)?;
    limits::range(j.duration_s, "duration_s", 0.0, true, MAX_SECONDS)?;
    if let Some(d) = j.deadline_s {
        limits::range(d, "deadline_s", j.arrival_s, false, 2.0 * MAX_SECONDS)
            .map_err(|m| format!("{m} (a deadline comes after the arrival)"))?;
    }
    if !(1..=MAX_GPUS).contains(&u64::from(j.gpus)) {
        return Err(format!(
            "gpus: expected a whole number in [1, {MAX_GPUS}], found {}",
            j.gpus
        ));
    }
    if j.user >= MAX_USERS {
        return Err(format!(
            "user: expected a user id in [0, {}), found {}",
            MAX_USERS, j.user
        ));
    }
    Ok(())
}
