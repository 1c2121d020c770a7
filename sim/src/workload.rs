//! Jobs of one run: a seeded Poisson generator over the scenario's mix and distributions, or a
//! trace. The same seed gives the same jobs to every policy (common random numbers), so policies
//! are compared on identical workloads.

use ea2p_core::jobmodel::{evaluate, Config, GpuSpec, ModelProfile};
use ea2p_core::policy::Request;
use ea2p_core::units::{nanos_from_secs, Nanos};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::public_trace::{PublicJobs, SharedTally};
use crate::scenario::{Arrivals, Scenario, SizeDist, SizeUnit};
use crate::sim::SimError;

/// One job as it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// Id (arrival order).
    pub id: u64,
    /// Arrival time.
    pub arrival: Nanos,
    /// Model index.
    pub model: u16,
    /// User id.
    pub user: u32,
    /// Work in reference samples.
    pub work: f64,
    /// What it asks for.
    pub request: Request,
    /// Keeps its requested type, count and batch.
    pub rigid: bool,
    /// Urgent (has a deadline).
    pub urgent: bool,
    /// Deadline.
    pub deadline: Option<Nanos>,
    /// Run time alone at its requested configuration on the fastest type that fits it, seconds:
    /// the denominator of finish-time fairness.
    pub isolated_s: f64,
}

/// The RNG of run `run`: Pcg64 seeded from `base_seed + run`.
pub fn rng_for(base_seed: u64, run: u32) -> Pcg64 {
    Pcg64::seed_from_u64(base_seed.wrapping_add(run as u64))
}

fn uniform(rng: &mut Pcg64) -> f64 {
    rng.random::<f64>()
}

fn weighted<T: Copy>(rng: &mut Pcg64, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = uniform(rng) * total;
    for &(v, w) in items {
        if x < w {
            return v;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

fn sample_size(rng: &mut Pcg64, d: SizeDist) -> f64 {
    let u1 = uniform(rng);
    let u2 = uniform(rng);
    match d {
        SizeDist::Fixed(v) => v,
        SizeDist::Exponential(mean) => -mean * libm::log(1.0 - u1),
        SizeDist::LogNormal { median, sigma } => {
            // Box-Muller; 1 - u1 is in (0, 1], so the log is finite.
            let z = libm::sqrt(-2.0 * libm::log(1.0 - u1))
                * libm::cos(2.0 * core::f64::consts::PI * u2);
            median * libm::exp(sigma * z)
        }
    }
}

/// Goodput of a request on a GPU type, if the model runs there.
pub(crate) fn request_goodput(
    model: &ModelProfile,
    specs: &[GpuSpec],
    ty: usize,
    req: &Request,
) -> Option<f64> {
    let cfg = Config {
        gpu_type: ty as u8,
        gpus: req.gpus,
        batch: req.batch,
        limit_w: specs[ty].max_w,
    };
    evaluate(model, specs, &cfg).ok().map(|p| p.goodput)
}

/// Best goodput of a request over the types that have enough GPUs (its own type if rigid).
pub(crate) fn best_goodput(
    sc: &Scenario,
    specs: &[GpuSpec],
    model: &ModelProfile,
    req: &Request,
) -> Option<f64> {
    (0..specs.len())
        .filter(|&t| req.gpu_type.is_none_or(|r| r as usize == t) && sc.gpu_counts[t] >= req.gpus)
        .filter_map(|t| request_goodput(model, specs, t, req))
        .reduce(f64::max)
}

pub(crate) fn make_request(model: &ModelProfile, k: u32, gpu_type: Option<u8>) -> Request {
    let per_gpu_max = model
        .perf
        .iter()
        .flatten()
        .map(|p| p.max_batch_per_gpu)
        .min()
        .unwrap_or(1);
    let b0 = model.stat.ref_batch.max(1);
    Request {
        gpu_type,
        gpus: k,
        batch: (b0.saturating_mul(k))
            .min(per_gpu_max.saturating_mul(k))
            .max(k),
    }
}

/// Largest GPU count any type offers.
pub(crate) fn max_count(sc: &Scenario) -> u32 {
    sc.gpu_counts.iter().copied().max().unwrap_or(1)
}

/// The jobs of one run, in arrival order, as the simulator pulls them (one at a time).
pub type JobSource<'a> = Box<dyn Iterator<Item = Result<JobSpec, SimError>> + 'a>;

/// The jobs of run `run` as a stream: a public trace is read row by row (its tally of what was
/// left out goes to `tally`); Poisson arrivals and the simulator's own CSV are drawn in full
/// first (their size is bounded by the scenario).
pub fn source<'a>(
    sc: &'a Scenario,
    run: u32,
    tally: SharedTally,
) -> Result<JobSource<'a>, SimError> {
    Ok(match &sc.arrivals {
        Arrivals::Public(p) => Box::new(PublicJobs::open(sc, p, run, tally)?),
        _ => Box::new(generate(sc, run).into_iter().map(Ok)),
    })
}

/// The jobs of run `run` (0-based) that arrive before the horizon, in arrival order.
///
/// # Panics
/// On a public trace that cannot be read: use [`source`], which returns the error.
pub fn generate(sc: &Scenario, run: u32) -> Vec<JobSpec> {
    let specs = sc.specs();
    let horizon = sc.horizon();
    match &sc.arrivals {
        Arrivals::Public(_) => source(sc, run, SharedTally::default())
            .and_then(|s| s.collect())
            .unwrap_or_else(|e| panic!("{e}")),
        Arrivals::Poisson(rate) => poisson(sc, &specs, *rate, horizon, run),
        Arrivals::Trace(trace) => {
            let mut out = Vec::with_capacity(trace.len());
            for t in trace {
                let arrival = nanos_from_secs(t.arrival_s);
                if arrival >= horizon {
                    break;
                }
                let model = sc
                    .models
                    .iter()
                    .position(|(m, _)| m.name.eq_ignore_ascii_case(&t.model))
                    .unwrap_or(0);
                let prof = &sc.models[model].1;
                let ty = t
                    .gpu_type
                    .as_ref()
                    .and_then(|g| {
                        sc.gpu_types
                            .iter()
                            .position(|x| x.name.eq_ignore_ascii_case(g))
                    })
                    .map(|i| i as u8);
                // A request larger than its type (or, malleable, than any type) could never start.
                let room = ty.map_or(max_count(sc), |t| sc.gpu_counts[t as usize]);
                let k = t.gpus.min(prof.max_gpus).min(room).max(1);
                let req = make_request(prof, k, ty);
                let on = ty.map(|t| t as usize).unwrap_or(match sc.size_unit {
                    SizeUnit::Seconds { on_gpu } => on_gpu as usize,
                    SizeUnit::Samples => 0,
                });
                let g = request_goodput(prof, &specs, on, &req)
                    .or_else(|| best_goodput(sc, &specs, prof, &req))
                    .unwrap_or(1.0);
                let work = t.duration_s * g;
                let iso = best_goodput(sc, &specs, prof, &req).map_or(t.duration_s, |b| work / b);
                out.push(JobSpec {
                    id: out.len() as u64,
                    arrival,
                    model: model as u16,
                    user: t.user,
                    work,
                    request: req,
                    rigid: ty.is_some(),
                    urgent: t.deadline_s.is_some(),
                    deadline: t.deadline_s.map(nanos_from_secs),
                    isolated_s: iso,
                });
            }
            out
        }
    }
}

fn poisson(sc: &Scenario, specs: &[GpuSpec], rate: f64, horizon: Nanos, run: u32) -> Vec<JobSpec> {
    // Expected count plus margin, capped: the rate and the horizon are checked (`limits`), but
    // a reservation is never sized by them alone.
    let expect = (rate * sc.hours * 3600.0 * 1.2).min(crate::limits::MAX_JOBS_PER_RUN) as usize;
    let mut out = Vec::with_capacity(expect + 16);
    out.extend(PoissonJobs::new(sc, specs, rate, run).take_while(|j| j.arrival < horizon));
    out
}

/// The Poisson jobs of run `run`, drawn one at a time without end (the caller stops at the
/// horizon, or at a count: `gen-trace` writes each job as it is drawn).
#[derive(Debug)]
pub struct PoissonJobs<'a> {
    sc: &'a Scenario,
    specs: &'a [GpuSpec],
    rate: f64,
    rng: Pcg64,
    t: f64,
    next_id: u64,
}

impl<'a> PoissonJobs<'a> {
    /// The stream of run `run` at `rate` jobs per second (`specs`: the scenario's, in type
    /// order).
    pub fn new(sc: &'a Scenario, specs: &'a [GpuSpec], rate: f64, run: u32) -> Self {
        PoissonJobs {
            sc,
            specs,
            rate,
            rng: rng_for(sc.base_seed, run),
            t: 0.0,
            next_id: 0,
        }
    }
}

impl Iterator for PoissonJobs<'_> {
    type Item = JobSpec;
    fn next(&mut self) -> Option<JobSpec> {
        let (sc, specs, rng) = (self.sc, self.specs, &mut self.rng);
        // Every job draws the same number of values in the same order, whatever its options.
        self.t += -libm::log(1.0 - uniform(rng)) / self.rate;
        let model = weighted(rng, &sc.mix);
        let user = (uniform(rng) * sc.users as f64) as u32 % sc.users.max(1);
        let k_drawn = weighted(rng, &sc.gpus);
        let rigid = uniform(rng) < sc.rigid_fraction;
        let type_u = uniform(rng);
        let size = sample_size(rng, sc.size).min(sc.size_max);
        let urgent = uniform(rng) < sc.urgent_fraction;
        let factor_u = uniform(rng);
        let arrival = nanos_from_secs(self.t);
        let prof = &sc.models[model as usize].1;
        let k = k_drawn.min(prof.max_gpus).min(max_count(sc)).max(1);
        let gpu_type = if rigid {
            let fits: Vec<usize> = (0..specs.len())
                .filter(|&t| sc.gpu_counts[t] >= k && prof.perf[t].is_some())
                .collect();
            if fits.is_empty() {
                None
            } else {
                Some(fits[((type_u * fits.len() as f64) as usize).min(fits.len() - 1)] as u8)
            }
        } else {
            None
        };
        let req = make_request(prof, k, gpu_type);
        let work = match sc.size_unit {
            SizeUnit::Samples => size,
            SizeUnit::Seconds { on_gpu } => {
                let g = request_goodput(prof, specs, on_gpu as usize, &req)
                    .or_else(|| best_goodput(sc, specs, prof, &req))
                    .unwrap_or(1.0);
                size * g
            }
        };
        let isolated_s = best_goodput(sc, specs, prof, &req).map_or(size, |g| work / g);
        let (lo, hi) = sc.deadline_factor;
        let deadline = urgent.then(|| {
            arrival.saturating_add(nanos_from_secs((lo + (hi - lo) * factor_u) * isolated_s))
        });
        let id = self.next_id;
        self.next_id += 1;
        Some(JobSpec {
            id,
            arrival,
            model,
            user,
            work,
            request: req,
            rigid: gpu_type.is_some(),
            urgent,
            deadline,
            isolated_s,
        })
    }
}
