//! Public cluster traces (Helios, Philly, Alibaba PAI) as a run's arrival source, streamed.
//!
//! The file is read row by row at each run (through `eas_traces`), so memory holds the jobs in
//! the system and their results, never the trace text. How a trace row becomes a job:
//!
//! - arrival: the row's submit time (seconds since the trace's first submit), windowed and
//!   rescaled by `from_s`, `to_s` and `speedup`; rows past the horizon end the stream;
//! - user: the trace's user string, numbered in order of first appearance (Alibaba: from the
//!   job table given as `job_table`, else one unnamed user for the whole trace);
//! - GPUs: the trace's count, clamped to what the model and the cluster allow (counted);
//! - work: run time x goodput of that request on the trace's GPU type when the catalogue has it,
//!   else on `[workload.size] on_gpu` (the reference type of sizes in seconds);
//! - model: the trace does not say, so [`eas_traces::assign_model`] picks one from
//!   `[workload] mix` by hashing (run seed, job id): same seed and id, same model, everywhere;
//! - rigid and urgent: three uniform draws per row from the run's Pcg64, in row order
//!   (`rigid_fraction`, `urgent_fraction`, `deadline_factor`). A rigid job keeps the trace's GPU
//!   type, so only traces that name types (Alibaba) have rigid jobs.
//!
//! Dropped, never silently (see [`TraceTally`]): CPU-only rows (0 GPUs), rows without a run
//! time or with a run time of 0, failed or killed jobs when `failed = "drop"`, rows outside the
//! window, and bad rows when `skip_bad = true`.
//!
//! Rows need not be sorted: a reorder buffer of [`REORDER_ROWS`] rows puts them in submit order.
//! A row later than that is an error (or, with `skip_bad`, a counted skip).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::sync::{Arc, Mutex};

use ea2p_core::jobmodel::GpuSpec;
use ea2p_core::units::{nanos_from_secs, Nanos};
use eas_traces::{RowError, TraceJob};
use rand::Rng;
use rand_pcg::Pcg64;

use crate::scenario::{PublicTrace, Scenario, SizeUnit};
use crate::sim::SimError;
use crate::workload::{best_goodput, make_request, max_count, request_goodput, rng_for, JobSpec};

/// Rows a job may come after a later-submitted one and still be put in order.
pub const REORDER_ROWS: usize = 65_536;

/// What a streamed trace gave and left out (filled as the run reads; final when it ends).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceTally {
    /// Rows that parsed.
    pub rows: u64,
    /// Jobs handed to the simulator.
    pub jobs: u64,
    /// Bad rows skipped (`skip_bad = true`).
    pub skipped_bad: u64,
    /// The first bad row's error, when some were skipped.
    pub first_bad: Option<String>,
    /// Failed or killed jobs dropped (`failed = "drop"`).
    pub dropped_failed: u64,
    /// Rows outside `from_s..to_s`.
    pub outside_window: u64,
    /// CPU-only rows (0 GPUs).
    pub cpu_only: u64,
    /// Rows without a run time, or with 0 s.
    pub no_run_time: u64,
    /// Rows whose run time is longer than the longest horizon ([`crate::limits::MAX_SECONDS`]):
    /// impossible for a real job (a corrupt or hostile row), and it would overflow integer time.
    pub too_long: u64,
    /// Jobs whose GPU count was cut to what the model or the cluster allows.
    pub clamped_gpus: u64,
    /// Rows left unread because they arrive after the horizon (the stream stops there).
    pub past_horizon: bool,
    /// Alibaba with a job table: jobs the table does not list (simulated under one unnamed
    /// user, submitted when their first task started).
    pub not_in_job_table: u64,
}

impl fmt::Display for TraceTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows read, {} jobs simulated; left out: {} bad rows, {} failed/killed, {} outside the window, {} CPU-only, {} without a run time; {} GPU requests clamped to what fits",
            self.rows,
            self.jobs,
            self.skipped_bad,
            self.dropped_failed,
            self.outside_window,
            self.cpu_only,
            self.no_run_time,
            self.clamped_gpus
        )?;
        if self.too_long > 0 {
            write!(
                f,
                "; {} with a run time above {} s (impossible, left out)",
                self.too_long,
                crate::limits::MAX_SECONDS
            )?;
        }
        if self.past_horizon {
            write!(f, "; the rest of the trace is past the horizon")?;
        }
        if self.not_in_job_table > 0 {
            write!(
                f,
                "; {} jobs not in the job table (one unnamed user)",
                self.not_in_job_table
            )?;
        }
        if let Some(e) = &self.first_bad {
            write!(f, "\nfirst bad row: {e}")?;
        }
        Ok(())
    }
}

/// A tally shared between a stream and whoever reports it.
pub type SharedTally = Arc<Mutex<TraceTally>>;

/// One job waiting in the reorder buffer, ordered by (arrival, row).
struct Waiting {
    key: (Nanos, u64),
    job: JobSpec,
}

impl PartialEq for Waiting {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Waiting {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.key.cmp(&o.key)
    }
}

/// The jobs of one run from a public trace, in arrival order.
pub struct PublicJobs<'a> {
    sc: &'a Scenario,
    specs: Vec<GpuSpec>,
    src: &'a PublicTrace,
    rows: Box<dyn Iterator<Item = Result<TraceJob, RowError>>>,
    seed: u64,
    rng: Pcg64,
    weights: Vec<u64>,
    users: BTreeMap<String, u32>,
    heap: BinaryHeap<Reverse<Waiting>>,
    released: Nanos,
    next_id: u64,
    eof: bool,
    horizon: Nanos,
    tally: TraceTally,
    shared: SharedTally,
}

impl fmt::Debug for PublicJobs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicJobs")
            .field("trace", &self.src)
            .field("tally", &self.tally)
            .finish_non_exhaustive()
    }
}

impl<'a> PublicJobs<'a> {
    /// Opens the trace of `sc` for run `run`; the tally is kept up to date in `shared`.
    pub fn open(
        sc: &'a Scenario,
        src: &'a PublicTrace,
        run: u32,
        shared: SharedTally,
    ) -> Result<Self, SimError> {
        let rows = match &src.job_table {
            Some(table) => eas_traces::open_alibaba_with_jobs(&src.path, Arc::clone(table)),
            None => eas_traces::open(&src.path, src.format),
        }
        .map_err(|e| SimError::Trace(e.to_string()))?;
        let seed = sc.base_seed.wrapping_add(run as u64);
        Ok(PublicJobs {
            sc,
            specs: sc.specs(),
            src,
            rows,
            seed,
            rng: rng_for(sc.base_seed, run),
            // Mix weights as integers for the portable hash pick (micro-units).
            weights: {
                let mut w = vec![0u64; sc.models.len()];
                for &(m, x) in &sc.mix {
                    w[m as usize] += libm::round(x * 1e6) as u64;
                }
                w
            },
            users: BTreeMap::new(),
            heap: BinaryHeap::new(),
            released: 0,
            next_id: 0,
            eof: false,
            horizon: sc.horizon(),
            tally: TraceTally::default(),
            shared,
        })
    }

    /// The next row that parses (bad rows skipped and counted when asked), or `None` at the end.
    fn next_row(&mut self) -> Result<Option<TraceJob>, SimError> {
        loop {
            match self.rows.next() {
                None => return Ok(None),
                Some(Ok(j)) => {
                    self.tally.rows += 1;
                    return Ok(Some(j));
                }
                // Row 0: the file itself failed (a read error, a row over the length limit):
                // the rest cannot be read, so it is never skipped.
                Some(Err(e)) if self.src.skip_bad && e.row != 0 => {
                    self.tally.skipped_bad += 1;
                    if self.tally.first_bad.is_none() {
                        self.tally.first_bad = Some(e.to_string());
                    }
                }
                Some(Err(e)) if e.row == 0 => return Err(SimError::Trace(e.to_string())),
                Some(Err(e)) => {
                    return Err(SimError::Trace(format!(
                        "{e} (set skip_bad = true in [arrivals] to skip bad rows, counted)"
                    )))
                }
            }
        }
    }

    /// Turns a row into a job (with the trace's job id, for errors), or `None` (counted) when
    /// it is left out.
    fn convert(&mut self, t: TraceJob) -> Option<(Nanos, JobSpec, String)> {
        // Three draws per parsed row, whatever happens to it, so a row's draws do not depend on
        // the rows before it being kept.
        let rigid_u: f64 = self.rng.random();
        let urgent_u: f64 = self.rng.random();
        let factor_u: f64 = self.rng.random();
        if !eas_traces::keep_job(&t, self.src.failed) {
            self.tally.dropped_failed += 1;
            return None;
        }
        let Some(t) = self.src.window.apply(t) else {
            self.tally.outside_window += 1;
            return None;
        };
        if t.gpus == 0 {
            self.tally.cpu_only += 1;
            return None;
        }
        let duration = match t.duration_s {
            Some(d) if d > crate::limits::MAX_SECONDS => {
                self.tally.too_long += 1;
                return None;
            }
            Some(d) if d > 0.0 => d,
            _ => {
                self.tally.no_run_time += 1;
                return None;
            }
        };
        let sc = self.sc;
        let model = eas_traces::assign_model(self.seed, &t.id, &self.weights).unwrap_or(0);
        let prof = &sc.models[model].1;
        let trace_type = t.gpu_type.as_ref().and_then(|g| {
            sc.gpu_types
                .iter()
                .position(|x| x.name.eq_ignore_ascii_case(g))
        });
        let rigid_type = trace_type
            .filter(|&ty| rigid_u < sc.rigid_fraction && sc.gpu_counts[ty] > 0)
            .map(|ty| ty as u8);
        let room = rigid_type.map_or(max_count(sc), |ty| sc.gpu_counts[ty as usize]);
        let k = t.gpus.min(prof.max_gpus).min(room).max(1);
        if k != t.gpus {
            self.tally.clamped_gpus += 1;
        }
        let req = make_request(prof, k, rigid_type);
        let on = trace_type.unwrap_or(match sc.size_unit {
            SizeUnit::Seconds { on_gpu } => on_gpu as usize,
            SizeUnit::Samples => 0,
        });
        let g = request_goodput(prof, &self.specs, on, &req)
            .or_else(|| best_goodput(sc, &self.specs, prof, &req))
            .unwrap_or(1.0);
        let work = duration * g;
        let isolated_s = best_goodput(sc, &self.specs, prof, &req).map_or(duration, |b| work / b);
        let arrival = nanos_from_secs(t.submit_s.max(0.0));
        let urgent = urgent_u < sc.urgent_fraction;
        let (lo, hi) = sc.deadline_factor;
        let deadline = urgent.then(|| {
            arrival.saturating_add(nanos_from_secs((lo + (hi - lo) * factor_u) * isolated_s))
        });
        if self.src.job_table.is_some() && t.user.is_empty() {
            self.tally.not_in_job_table += 1;
        }
        let next_user = self.users.len() as u32;
        let user = *self.users.entry(t.user).or_insert(next_user);
        Some((
            arrival,
            JobSpec {
                id: 0, // set when released, in arrival order
                arrival,
                model: model as u16,
                user,
                work,
                request: req,
                rigid: rigid_type.is_some(),
                urgent,
                deadline,
                isolated_s,
            },
            t.id,
        ))
    }

    fn step(&mut self) -> Result<Option<JobSpec>, SimError> {
        // Fill the reorder buffer, then release the earliest job.
        while !self.eof && self.heap.len() < REORDER_ROWS {
            let Some(row) = self.next_row()? else {
                self.eof = true;
                break;
            };
            if let Some((arrival, job, id)) = self.convert(row) {
                if arrival < self.released {
                    let msg = format!(
                        "{}: job {id:?} (row {}) was submitted at {:.3} s, before a job already released at {:.3} s: the trace is out of order by more than {REORDER_ROWS} rows; sort it by submit time",
                        self.src.path.display(),
                        self.tally.rows,
                        ea2p_core::units::secs(arrival),
                        ea2p_core::units::secs(self.released),
                    );
                    if self.src.skip_bad {
                        self.tally.skipped_bad += 1;
                        self.tally.first_bad.get_or_insert(msg);
                        continue;
                    }
                    return Err(SimError::Trace(msg));
                }
                let seq = self.tally.rows;
                self.heap.push(Reverse(Waiting {
                    key: (arrival, seq),
                    job,
                }));
            }
        }
        let Some(Reverse(w)) = self.heap.pop() else {
            return Ok(None);
        };
        if w.key.0 >= self.horizon {
            self.tally.past_horizon = true;
            self.eof = true;
            self.heap.clear();
            return Ok(None);
        }
        self.released = w.key.0;
        let mut job = w.job;
        job.id = self.next_id;
        self.next_id += 1;
        self.tally.jobs += 1;
        Ok(Some(job))
    }

    fn publish(&self) {
        if let Ok(mut s) = self.shared.lock() {
            *s = self.tally.clone();
        }
    }
}

impl Iterator for PublicJobs<'_> {
    type Item = Result<JobSpec, SimError>;
    fn next(&mut self) -> Option<Self::Item> {
        let r = self.step().transpose();
        if r.is_none() || self.tally.jobs % 65_536 == 0 {
            self.publish();
        }
        r
    }
}

impl Drop for PublicJobs<'_> {
    fn drop(&mut self) {
        self.publish();
    }
}
