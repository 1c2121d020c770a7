//! One simulation run: a policy from the core, a workload, the cluster, the event loop.

use ea2p_core::jobmodel::{Config, LimitTable, ModelProfile};
use ea2p_core::policy::{self, ClusterView, Decision, Decisions, JobView, PolicyKind};
use ea2p_core::units::{secs, Nanos, NANOS_PER_SEC};

use crate::cluster::{mw, pj_to_j, Cluster, NO_JOB};
use crate::engine::{EventKind, EventQueue};
use crate::faults::{self, FaultEvent, FaultKind};
use crate::results::{self, JobRecord, RunResult, NEVER};
use crate::scenario::Scenario;
use crate::workload::{JobSource, JobSpec};

/// Why a run stopped early: a policy made an impossible decision, or (with checks on) an
/// invariant broke. Either is a bug in a policy or in the simulator.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// A decision could not be applied.
    #[error("policy {policy} at t={time_s:.3} s made an impossible decision: {detail}")]
    BadDecision {
        /// Policy name.
        policy: String,
        /// Simulated time, seconds.
        time_s: f64,
        /// What was wrong.
        detail: String,
    },
    /// The core refused the round's inputs.
    #[error("policy {policy} refused the round: {detail}")]
    Policy {
        /// Policy name.
        policy: String,
        /// The core's error.
        detail: String,
    },
    /// The scenario cannot be run as asked (a number out of range, a cap below the idle power).
    #[error("{0}")]
    Scenario(String),
    /// The run's trace could not be read (file, row, column and what was expected).
    #[error("trace: {0}")]
    Trace(String),
    /// An external policy ([`ExternalPolicy`]) failed.
    #[error("policy {policy} failed: {detail}")]
    External {
        /// Policy name.
        policy: String,
        /// What it said.
        detail: String,
    },
    /// An invariant checked after an event broke.
    #[error("invariant broken at t={time_s:.3} s: {detail}")]
    Invariant {
        /// Simulated time, seconds.
        time_s: f64,
        /// Which.
        detail: String,
    },
}

/// A scheduling policy outside the core (one written in Python, say): the engine calls it where
/// it calls the core's policies, with the same views (pending and running jobs, every round),
/// checks its decisions with [`policy::validate::validate`] and applies them the same way.
pub trait ExternalPolicy {
    /// Name in results and messages.
    fn name(&self) -> &str;
    /// One round: writes decisions (indices into `jobs`) to `out`. An `Err` stops the run with
    /// [`SimError::External`].
    fn schedule(
        &mut self,
        cluster: &ClusterView<'_>,
        jobs: &[JobView],
        out: &mut Decisions<'_>,
    ) -> Result<(), String>;
}

/// What to record beyond the results (tests use these).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Check the invariants after every event (slow: O(GPUs + jobs) per event).
    pub check_invariants: bool,
    /// Record every change of cluster power as `(time, mW)`.
    pub record_power: bool,
    /// Give every policy the views of running jobs in every round, even when it does not read
    /// them (see `PolicyKind::reads_running_jobs_when`): tests check that the results are the same.
    pub all_views: bool,
    /// Leave the per-job vectors of [`RunOutput`] (`first_starts`, `completed_at`,
    /// `completions`, `work_done`) empty: 44 bytes a job that the program's outputs do not use.
    pub skip_per_job: bool,
}

/// What a run gives.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Metrics.
    pub result: RunResult,
    /// `(time, cluster mW)` at every change that lasts, if recorded.
    pub power_trace: Vec<(Nanos, u64)>,
    /// Times each job completed (0 or 1 if all is well).
    pub completions: Vec<u32>,
    /// When each job first started, if it did.
    pub first_starts: Vec<Option<Nanos>>,
    /// When each job completed, if it did.
    pub completed_at: Vec<Option<Nanos>>,
    /// Per-GPU energy sum (unallocated, allocated), pJ, and energy from the total power, pJ.
    pub energy_pj: (u128, u128, u128),
    /// Largest excess of cluster power over the cap in force, over intervals of positive length, mW.
    pub max_over_cap_mw: u64,
    /// The run's faults (GPU failures, repairs, drains), in the order applied.
    pub faults: Vec<FaultEvent>,
    /// Work computed (goodput integrated over computing time), reference samples.
    pub work_computed: f64,
    /// Work lost to preemptions (policies' and faults'), reference samples.
    pub work_lost: f64,
    /// Work each job holds at the horizon (its total for completed jobs).
    pub work_done: Vec<f64>,
    /// Jobs waiting at the horizon (arrived, never completed, holding no GPU).
    pub left_pending: u64,
    /// Jobs running at the horizon.
    pub left_running: u64,
    /// Every job that arrived, in arrival order (empty with `skip_per_job`).
    pub jobs: Vec<results::JobOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Running,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Computing,
    Restarting,
    Checkpointing,
}

#[derive(Debug, Clone)]
struct JobState {
    status: Status,
    phase: Phase,
    cfg: Option<Config>,
    gpus: Vec<u32>,
    work_done: f64,
    rate: f64,
    phase_since: Nanos,
    gen: u32,
    work_at_ckpt: f64,
    energy_pj: u128,
    energy_at_ckpt: u128,
    power_mw: u64,
    energy_since: Nanos,
    needs_restart: bool,
    completed_at: Option<Nanos>,
    first_start: Option<Nanos>,
    list_pos: u32,
    /// When the job's state was last saved (start, checkpoint, resize): a fault loses the
    /// GPU-time since.
    saved_at: Nanos,
}

impl JobState {
    /// A job that has just arrived: pending, nothing done.
    fn arrived() -> Self {
        JobState {
            status: Status::Pending,
            phase: Phase::Computing,
            cfg: None,
            gpus: Vec::new(),
            work_done: 0.0,
            rate: 0.0,
            phase_since: 0,
            gen: 0,
            work_at_ckpt: 0.0,
            energy_pj: 0,
            energy_at_ckpt: 0,
            power_mw: 0,
            energy_since: 0,
            needs_restart: false,
            completed_at: None,
            first_start: None,
            list_pos: 0,
            saved_at: 0,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct UserAcc {
    gpus: u32,
    gpu_ns: u128,
    power_mw: u64,
    energy_pj: u128,
    since: Nanos,
}

impl UserAcc {
    fn touch(&mut self, now: Nanos) {
        let dt = (now - self.since) as u128;
        self.gpu_ns += self.gpus as u128 * dt;
        self.energy_pj += self.power_mw as u128 * dt;
        self.since = now;
    }
}

/// Counters the results need.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub events: u64,
    pub preemptions: u64,
    pub resizes: u64,
    pub checkpoints: u64,
    pub wasted_pj: u128,
    pub lost_work: f64,
    pub work_computed: f64,
    pub gpu_failures: u64,
    pub node_drains: u64,
    pub fault_preemptions: u64,
    pub fault_lost_gpu_ns: u128,
    pub skipped_decisions: u64,
}

struct Sim<'a> {
    sc: &'a Scenario,
    kind: PolicyKind,
    /// Runs instead of `kind` when set.
    external: Option<&'a mut dyn ExternalPolicy>,
    specs: Vec<ea2p_core::jobmodel::GpuSpec>,
    profiles: Vec<ModelProfile>,
    /// The power limits' effects on `profiles` on `specs`, computed once per run for the
    /// policies' limit fractions (issue 15: recomputing them in every search cost 20 % of the
    /// seed protocol's time); handed to the policies in every view.
    limit_effects: Box<LimitTable>,
    /// Jobs in the system, by slot (a slot is reused once its job completes): memory follows
    /// the jobs in the system, not the trace. Lists, events and GPU holders name slots.
    jobs: Vec<JobSpec>,
    st: Vec<JobState>,
    /// Job id (arrival order) of each slot's job.
    slot_job: Vec<u32>,
    /// Slots whose job completed, free for the next arrivals.
    free_slots: Vec<u32>,
    /// What the results need of every job that arrived (index = job id), folded in when the job
    /// leaves the system.
    records: Vec<JobRecord>,
    source: JobSource<'a>,
    /// The next job to arrive, already pulled from `source`.
    next_job: Option<JobSpec>,
    users: Vec<UserAcc>,
    queue: EventQueue,
    cluster: Cluster,
    pending: Vec<u32>,
    /// Urgent jobs in `pending`.
    urgent_pending: usize,
    running: Vec<u32>,
    round_at: Option<Nanos>,
    cap_w: Option<f64>,
    counters: Counters,
    opts: RunOptions,
    power_trace: Vec<(Nanos, u64)>,
    // Reused buffers of a round.
    views: Vec<JobView>,
    view_job: Vec<u32>,
    /// Per user, GPU-seconds and joules up to the round being built (once per round, not per job).
    user_now: Vec<(f64, f64)>,
    /// When the last round ran (rounds asked for by events wait `min_round_gap` after it).
    last_round: Option<Nanos>,
    scratch: Vec<u32>,
    decisions: Vec<Decision>,
    free: Vec<u32>,
    faults: Vec<FaultEvent>,
    next_fault: usize,
}

/// Runs `kind` on `jobs` (from [`crate::workload::generate`]) over the scenario's horizon.
pub fn run(
    sc: &Scenario,
    kind: PolicyKind,
    jobs: &[JobSpec],
    run_index: u32,
) -> Result<RunResult, SimError> {
    let opts = RunOptions {
        skip_per_job: true,
        ..RunOptions::default()
    };
    run_with(sc, kind, jobs, run_index, opts).map(|o| o.result)
}

/// [`run`] with options; returns the extra records too.
pub fn run_with(
    sc: &Scenario,
    kind: PolicyKind,
    jobs: &[JobSpec],
    run_index: u32,
    opts: RunOptions,
) -> Result<RunOutput, SimError> {
    run_source(
        sc,
        kind,
        Box::new(jobs.iter().cloned().map(Ok)),
        run_index,
        opts,
    )
}

/// [`run_with`] on jobs pulled one at a time from `source` (from [`crate::workload::source`]),
/// in arrival order: a streamed trace is never held whole.
pub fn run_source(
    sc: &Scenario,
    kind: PolicyKind,
    source: JobSource<'_>,
    run_index: u32,
    opts: RunOptions,
) -> Result<RunOutput, SimError> {
    run_inner(sc, kind, None, source, run_index, opts)
}

/// [`run_source`] with a policy from outside the core.
pub fn run_external(
    sc: &Scenario,
    policy: &mut dyn ExternalPolicy,
    source: JobSource<'_>,
    run_index: u32,
    opts: RunOptions,
) -> Result<RunOutput, SimError> {
    run_inner(sc, PolicyKind::Fifo, Some(policy), source, run_index, opts)
}

fn run_inner<'a>(
    sc: &'a Scenario,
    kind: PolicyKind,
    external: Option<&'a mut dyn ExternalPolicy>,
    source: JobSource<'a>,
    run_index: u32,
    opts: RunOptions,
) -> Result<RunOutput, SimError> {
    crate::limits::check(sc, 1).map_err(SimError::Scenario)?;
    crate::limits::check_cap_for(sc, &[kind]).map_err(SimError::Scenario)?;
    let specs = sc.specs();
    let profiles = sc.profiles();
    let limit_effects = Box::new(LimitTable::new(
        &profiles,
        &specs,
        &sc.params.limit_fractions,
    ));
    let mut sim = Sim {
        sc,
        kind,
        external,
        profiles,
        limit_effects,
        cluster: Cluster::new(&specs, &sc.gpu_counts),
        specs,
        jobs: Vec::new(),
        st: Vec::new(),
        slot_job: Vec::new(),
        free_slots: Vec::new(),
        records: Vec::new(),
        source,
        next_job: None,
        users: vec![UserAcc::default(); sc.users as usize],
        queue: EventQueue::new(),
        pending: Vec::new(),
        urgent_pending: 0,
        running: Vec::new(),
        round_at: None,
        cap_w: sc.power_cap_w,
        counters: Counters::default(),
        opts,
        power_trace: Vec::new(),
        views: Vec::new(),
        view_job: Vec::new(),
        user_now: Vec::new(),
        last_round: None,
        scratch: Vec::new(),
        decisions: Vec::new(),
        free: Vec::new(),
        faults: faults::schedule(
            &sc.faults,
            &sc.nodes,
            sc.gpu_counts.iter().sum(),
            sc.horizon(),
            sc.base_seed,
            run_index,
        ),
        next_fault: 0,
    };
    sim.run()?;
    let horizon = sc.horizon();
    let name = sim.policy_name();
    let result = results::collect(
        sc,
        &name,
        run_index,
        &sim.records,
        &sim.cluster,
        &sim.counters,
        horizon,
    );
    let (i, a) = sim.cluster.gpu_energy_pj();
    // Per-job vectors on request only: 44 bytes a job on top of the records.
    let rec = if opts.skip_per_job {
        &[][..]
    } else {
        &sim.records[..]
    };
    Ok(RunOutput {
        result,
        power_trace: sim.power_trace,
        first_starts: rec.iter().map(|r| results::at(r.first_start)).collect(),
        completed_at: rec.iter().map(|r| results::at(r.completed_at)).collect(),
        completions: rec.iter().map(|r| r.completions).collect(),
        energy_pj: (i, a, sim.cluster.cluster_energy_pj()),
        max_over_cap_mw: sim.cluster.max_over_cap_mw(),
        work_computed: sim.counters.work_computed,
        work_lost: sim.counters.lost_work,
        work_done: rec.iter().map(|r| r.work_done).collect(),
        left_pending: sim.pending.len() as u64,
        left_running: sim.running.len() as u64,
        jobs: rec
            .iter()
            .enumerate()
            .map(|(i, r)| r.outcome(i as u64))
            .collect(),
        faults: sim.faults,
    })
}

impl Sim<'_> {
    fn policy_name(&self) -> String {
        match &self.external {
            Some(p) => p.name().to_string(),
            None => self.kind.name().to_string(),
        }
    }

    fn err(&self, now: Nanos, detail: String) -> SimError {
        SimError::BadDecision {
            policy: self.policy_name(),
            time_s: secs(now),
            detail,
        }
    }

    fn run(&mut self) -> Result<(), SimError> {
        let horizon = self.sc.horizon();
        self.cluster.set_cap(0, self.cap_w);
        self.record_power(0);
        self.next_job = self.source.next().transpose()?;
        if let Some(first) = &self.next_job {
            self.queue.push(first.arrival, EventKind::Arrival);
        }
        self.queue.push(0, EventKind::Tick);
        for (i, c) in self.sc.cap_changes.iter().enumerate() {
            self.queue.push(c.at, EventKind::PowerCap(i as u32));
        }
        loop {
            // Faults are drawn before the run and merged in: one at time t comes before the
            // queue's events at t.
            let fault_at = self
                .faults
                .get(self.next_fault)
                .map_or(horizon, |f| f.at.min(horizon));
            let Some(ev) = self.queue.pop_before(fault_at) else {
                if fault_at < horizon {
                    let f = self.faults[self.next_fault];
                    self.next_fault += 1;
                    self.counters.events += 1;
                    self.apply_fault(f)?;
                    self.record_power(f.at);
                    if self.opts.check_invariants {
                        self.check(f.at)?;
                    }
                    continue;
                }
                break;
            };
            let now = ev.time;
            self.counters.events += 1;
            match ev.kind {
                EventKind::Arrival => {
                    let spec = self.next_job.take().expect("an arrival event has its job");
                    if spec.user as usize >= self.users.len() {
                        self.users
                            .resize(spec.user as usize + 1, UserAcc::default());
                    }
                    let j = self.admit(spec);
                    self.push_list(j, true);
                    self.next_job = self.source.next().transpose()?;
                    if let Some(next) = &self.next_job {
                        self.queue.push(next.arrival.max(now), EventKind::Arrival);
                    }
                    self.request_round(now);
                }
                EventKind::Completion { job, gen } => {
                    if self.st[job as usize].gen == gen
                        && self.st[job as usize].status == Status::Running
                    {
                        self.complete(job, now);
                        self.request_round(now);
                    }
                }
                EventKind::Checkpoint { job, gen } => {
                    if self.st[job as usize].gen == gen
                        && self.st[job as usize].status == Status::Running
                    {
                        self.checkpoint(job, now);
                    }
                }
                EventKind::PhaseDone { job, gen } => {
                    if self.st[job as usize].gen == gen
                        && self.st[job as usize].status == Status::Running
                    {
                        self.phase_done(job, now);
                    }
                }
                EventKind::Round => {
                    if self.round_at == Some(now) {
                        self.round_at = None;
                        self.round(now)?;
                    }
                }
                EventKind::Tick => {
                    self.round(now)?;
                    self.queue
                        .push(now + self.sc.round_interval, EventKind::Tick);
                }
                EventKind::PowerCap(i) => {
                    self.cap_w = self.sc.cap_changes[i as usize].watts;
                    self.cluster.set_cap(now, self.cap_w);
                    // The policy answers at the same instant: the over-cap state lasts no time.
                    self.round(now)?;
                }
            }
            self.record_power(now);
            if self.opts.check_invariants {
                self.check(now)?;
            }
        }
        // Close every account at the horizon.
        for j in self.running.clone() {
            self.sync(j, horizon);
        }
        for k in 0..self.pending.len() {
            self.fold(self.pending[k]);
        }
        for k in 0..self.running.len() {
            self.fold(self.running[k]);
        }
        for u in &mut self.users {
            u.touch(horizon);
        }
        self.cluster.settle(horizon);
        Ok(())
    }

    fn record_power(&mut self, now: Nanos) {
        if self.opts.record_power {
            let p = self.cluster.power_mw();
            // A level that lasts no time is replaced, so the trace holds only real steps.
            if let Some(last) = self.power_trace.last_mut() {
                if last.0 == now {
                    last.1 = p;
                }
            }
            let n = self.power_trace.len();
            if n >= 2 && self.power_trace[n - 1].0 == now && self.power_trace[n - 2].1 == p {
                self.power_trace.pop();
            }
            if self.power_trace.last().is_none_or(|&(_, q)| q != p) {
                self.power_trace.push((now, p));
            }
        }
    }

    /// Asks for a round at `now`, or, with a minimum gap between rounds, at the first instant the
    /// gap allows (one round then serves every event in between).
    fn request_round(&mut self, now: Nanos) {
        let at = match self.last_round {
            Some(last) if self.sc.min_round_gap > 0 => now.max(last + self.sc.min_round_gap),
            _ => now,
        };
        if self.round_at.is_none_or(|r| r < now) {
            self.round_at = Some(at);
            self.queue.push(at, EventKind::Round);
        }
    }

    // --- lists -------------------------------------------------------------------------------

    fn push_list(&mut self, j: u32, pending: bool) {
        let list = if pending {
            &mut self.pending
        } else {
            &mut self.running
        };
        self.st[j as usize].list_pos = list.len() as u32;
        list.push(j);
        if pending && self.jobs[j as usize].urgent {
            self.urgent_pending += 1;
        }
    }

    fn remove_list(&mut self, j: u32, pending: bool) {
        let pos = self.st[j as usize].list_pos as usize;
        let list = if pending {
            &mut self.pending
        } else {
            &mut self.running
        };
        debug_assert_eq!(list[pos], j);
        list.swap_remove(pos);
        if let Some(&moved) = list.get(pos) {
            self.st[moved as usize].list_pos = pos as u32;
        }
        if pending && self.jobs[j as usize].urgent {
            self.urgent_pending -= 1;
        }
    }

    // --- job state ---------------------------------------------------------------------------

    /// Brings a running job's energy and progress up to `now`.
    fn sync(&mut self, j: u32, now: Nanos) {
        let s = &mut self.st[j as usize];
        s.energy_pj += s.power_mw as u128 * (now - s.energy_since) as u128;
        s.energy_since = now;
        if s.status == Status::Running && s.phase == Phase::Computing {
            let before = s.work_done;
            s.work_done =
                (s.work_done + s.rate * secs(now - s.phase_since)).min(self.jobs[j as usize].work);
            self.counters.work_computed += s.work_done - before;
        }
        s.phase_since = now;
    }

    fn set_job_power(&mut self, j: u32, per_gpu_mw: u64, now: Nanos) {
        let user = self.jobs[j as usize].user as usize;
        self.users[user].touch(now);
        let s = &mut self.st[j as usize];
        let new = per_gpu_mw * s.gpus.len() as u64;
        self.users[user].power_mw = self.users[user].power_mw - s.power_mw + new;
        s.power_mw = new;
        self.cluster.set_power(&s.gpus, per_gpu_mw, now);
    }

    fn enter_computing(&mut self, j: u32, now: Nanos) {
        let cfg = self.st[j as usize]
            .cfg
            .expect("a running job has a configuration");
        let m = self.jobs[j as usize].model as usize;
        let perf = LimitTable::evaluate(
            Some(&self.limit_effects),
            m,
            &self.profiles[m],
            &self.specs,
            &cfg,
        )
        .expect("configuration checked when applied");
        self.set_job_power(j, mw(perf.power_per_gpu_w), now);
        let s = &mut self.st[j as usize];
        s.phase = Phase::Computing;
        s.phase_since = now;
        s.rate = perf.goodput;
        s.gen = s.gen.wrapping_add(1);
        let remaining = (self.jobs[j as usize].work - s.work_done).max(0.0);
        let dt = libm::ceil(remaining / perf.goodput * NANOS_PER_SEC as f64) as Nanos;
        let gen = s.gen;
        self.queue
            .push(now + dt, EventKind::Completion { job: j, gen });
        let ck = self.sc.checkpoint_interval;
        if ck < dt {
            self.queue
                .push(now + ck, EventKind::Checkpoint { job: j, gen });
        }
    }

    fn enter_pause(&mut self, j: u32, phase: Phase, dur: Nanos, now: Nanos) {
        let ty = self.st[j as usize].cfg.expect("running").gpu_type as usize;
        self.set_job_power(j, mw(self.specs[ty].allocated_idle_w), now);
        let s = &mut self.st[j as usize];
        s.phase = phase;
        s.phase_since = now;
        s.gen = s.gen.wrapping_add(1);
        let gen = s.gen;
        self.queue
            .push(now + dur, EventKind::PhaseDone { job: j, gen });
    }

    /// Computes again, or restarts first if the job lost its GPUs since it last computed.
    fn resume(&mut self, j: u32, now: Nanos) {
        if self.st[j as usize].needs_restart && self.sc.restart_time > 0 {
            self.enter_pause(j, Phase::Restarting, self.sc.restart_time, now);
        } else {
            self.st[j as usize].needs_restart = false;
            self.enter_computing(j, now);
        }
    }

    fn check_cfg(&self, j: u32, cfg: &Config, now: Nanos) -> Result<(), SimError> {
        let spec = &self.jobs[j as usize];
        let m = spec.model as usize;
        let table = Some(&*self.limit_effects);
        LimitTable::evaluate(table, m, &self.profiles[m], &self.specs, cfg).map_err(|e| {
            self.err(
                now,
                format!(
                    "job {}: {} GPUs of type {}, batch {}, limit {} W: {}",
                    spec.id,
                    cfg.gpus,
                    cfg.gpu_type,
                    cfg.batch,
                    cfg.limit_w,
                    crate::words::config_error(&e)
                ),
            )
        })?;
        if spec.rigid {
            let r = spec.request;
            if r.gpus != cfg.gpus
                || r.batch != cfg.batch
                || r.gpu_type.is_some_and(|t| t != cfg.gpu_type)
            {
                return Err(self.err(
                    now,
                    format!(
                        "rigid job {} moved off its request {r:?} to {cfg:?}",
                        spec.id
                    ),
                ));
            }
        }
        Ok(())
    }

    fn start(&mut self, j: u32, cfg: Config, now: Nanos) -> Result<(), SimError> {
        if self.st[j as usize].status != Status::Pending {
            return Err(self.err(now, format!("start of job {} which is not pending", j)));
        }
        self.check_cfg(j, &cfg, now)?;
        let ty = cfg.gpu_type as usize;
        let idle = mw(self.specs[ty].allocated_idle_w);
        let Some(gpus) = self.cluster.allocate(ty, cfg.gpus, j, idle, now) else {
            if self.cluster.out_of_service_unheld(ty) > 0 {
                // The policy counted GPUs that a drain keeps (it cannot see drains, e.g. those
                // of a job it just preempted): the start is not applied, the job waits.
                self.counters.skipped_decisions += 1;
                return Ok(());
            }
            return Err(self.err(
                now,
                format!(
                    "job {} wants {} GPUs of type {ty}, {} free",
                    j,
                    cfg.gpus,
                    self.cluster.free_count(ty)
                ),
            ));
        };
        self.remove_list(j, true);
        self.push_list(j, false);
        let user = self.jobs[j as usize].user as usize;
        self.users[user].touch(now);
        self.users[user].gpus += cfg.gpus;
        self.users[user].power_mw += idle * cfg.gpus as u64;
        let s = &mut self.st[j as usize];
        s.status = Status::Running;
        s.first_start.get_or_insert(now);
        s.cfg = Some(cfg);
        s.gpus = gpus;
        s.power_mw = idle * cfg.gpus as u64;
        s.energy_since = now;
        s.phase_since = now;
        s.saved_at = now;
        self.resume(j, now);
        Ok(())
    }

    fn release(&mut self, j: u32, now: Nanos) {
        let user = self.jobs[j as usize].user as usize;
        self.users[user].touch(now);
        let s = &mut self.st[j as usize];
        self.users[user].gpus -= s.gpus.len() as u32;
        self.users[user].power_mw -= s.power_mw;
        s.power_mw = 0;
        let gpus = std::mem::take(&mut s.gpus);
        self.cluster.release(&gpus, now);
    }

    fn preempt(&mut self, j: u32, now: Nanos) -> Result<(), SimError> {
        if self.st[j as usize].status != Status::Running {
            return Err(self.err(now, format!("preemption of job {} which is not running", j)));
        }
        self.sync(j, now);
        let s = &mut self.st[j as usize];
        self.counters.lost_work += s.work_done - s.work_at_ckpt;
        self.counters.wasted_pj += s.energy_pj - s.energy_at_ckpt;
        s.work_done = s.work_at_ckpt;
        s.energy_at_ckpt = s.energy_pj;
        s.status = Status::Pending;
        s.cfg = None;
        s.needs_restart = true;
        s.gen = s.gen.wrapping_add(1);
        self.counters.preemptions += 1;
        self.release(j, now);
        self.remove_list(j, false);
        self.push_list(j, true);
        Ok(())
    }

    fn resize(&mut self, j: u32, cfg: Config, now: Nanos) -> Result<(), SimError> {
        if self.st[j as usize].status != Status::Running {
            return Err(self.err(now, format!("resize of job {} which is not running", j)));
        }
        self.check_cfg(j, &cfg, now)?;
        let cur = self.st[j as usize].cfg.expect("running");
        self.sync(j, now);
        if cur.gpu_type == cfg.gpu_type && cur.gpus == cfg.gpus && cur.batch == cfg.batch {
            // A power limit alone: applied at once, no restart.
            self.st[j as usize].cfg = Some(cfg);
            if self.st[j as usize].phase == Phase::Computing {
                self.enter_computing(j, now);
            }
            return Ok(());
        }
        let ty = cfg.gpu_type as usize;
        let own = if cur.gpu_type == cfg.gpu_type {
            cur.gpus
        } else {
            0
        };
        // GPUs of a drained node do not return to the pool, and policies do not see drains: a
        // resize that would need them is not applied (the job keeps its configuration).
        let own_back = if cur.gpu_type == cfg.gpu_type {
            let gpus = &self.st[j as usize].gpus;
            gpus.iter().filter(|&&g| self.cluster.in_service(g)).count() as u32
        } else {
            0
        };
        if self.cluster.free_count(ty) + own_back < cfg.gpus {
            if own_back < own || self.cluster.out_of_service_unheld(ty) > 0 {
                self.counters.skipped_decisions += 1;
                return Ok(());
            }
            return Err(self.err(
                now,
                format!("resize of job {j} to {cfg:?}: not enough free GPUs"),
            ));
        }
        // Checkpoint first: a resize loses no work.
        let s = &mut self.st[j as usize];
        s.work_at_ckpt = s.work_done;
        s.energy_at_ckpt = s.energy_pj;
        s.saved_at = now;
        self.release(j, now);
        let idle = mw(self.specs[ty].allocated_idle_w);
        let gpus = self
            .cluster
            .allocate(ty, cfg.gpus, j, idle, now)
            .expect("checked above");
        let user = self.jobs[j as usize].user as usize;
        self.users[user].touch(now);
        self.users[user].gpus += cfg.gpus;
        self.users[user].power_mw += idle * cfg.gpus as u64;
        let s = &mut self.st[j as usize];
        s.gpus = gpus;
        s.cfg = Some(cfg);
        s.power_mw = idle * cfg.gpus as u64;
        s.needs_restart = true;
        self.counters.resizes += 1;
        self.resume(j, now);
        Ok(())
    }

    fn complete(&mut self, j: u32, now: Nanos) {
        self.sync(j, now);
        let s = &mut self.st[j as usize];
        s.work_done = self.jobs[j as usize].work;
        s.status = Status::Done;
        s.completed_at = Some(now);
        s.gen = s.gen.wrapping_add(1);
        self.release(j, now);
        self.remove_list(j, false);
        self.fold(j);
        self.free_slots.push(j);
    }

    /// Gives an arriving job a slot (a freed one first) and its record; returns the slot.
    fn admit(&mut self, spec: JobSpec) -> u32 {
        let id = self.records.len() as u32;
        self.records.push(JobRecord {
            arrival: spec.arrival,
            deadline: spec.deadline.unwrap_or(NEVER),
            isolated_s: spec.isolated_s,
            user: spec.user,
            completions: 0,
            completed_at: NEVER,
            first_start: NEVER,
            energy_j: 0.0,
            work_done: 0.0,
        });
        match self.free_slots.pop() {
            Some(j) => {
                // The generation goes on from the slot's last job, so its stale events (an
                // older generation) never match the new one.
                let gen = self.st[j as usize].gen.wrapping_add(1);
                self.st[j as usize] = JobState {
                    gen,
                    gpus: std::mem::take(&mut self.st[j as usize].gpus),
                    ..JobState::arrived()
                };
                self.jobs[j as usize] = spec;
                self.slot_job[j as usize] = id;
                j
            }
            None => {
                self.jobs.push(spec);
                self.st.push(JobState::arrived());
                self.slot_job.push(id);
                (self.jobs.len() - 1) as u32
            }
        }
    }

    /// Copies what the results need of slot `j`'s job into its record (at completion, or at
    /// the horizon for jobs still in the system).
    fn fold(&mut self, j: u32) {
        let s = &self.st[j as usize];
        let r = &mut self.records[self.slot_job[j as usize] as usize];
        r.completions += u32::from(s.completed_at.is_some());
        r.completed_at = s.completed_at.unwrap_or(NEVER);
        r.first_start = s.first_start.unwrap_or(NEVER);
        r.energy_j = pj_to_j(s.energy_pj);
        r.work_done = s.work_done;
    }

    fn mark_checkpoint(&mut self, j: u32, now: Nanos) {
        let s = &mut self.st[j as usize];
        s.work_at_ckpt = s.work_done;
        s.energy_at_ckpt = s.energy_pj;
        s.saved_at = now;
        self.counters.checkpoints += 1;
    }

    fn checkpoint(&mut self, j: u32, now: Nanos) {
        if self.st[j as usize].phase != Phase::Computing {
            return;
        }
        self.sync(j, now);
        if self.sc.checkpoint_time > 0 {
            self.enter_pause(j, Phase::Checkpointing, self.sc.checkpoint_time, now);
        } else {
            self.mark_checkpoint(j, now);
            let gen = self.st[j as usize].gen;
            self.queue.push(
                now + self.sc.checkpoint_interval,
                EventKind::Checkpoint { job: j, gen },
            );
        }
    }

    fn phase_done(&mut self, j: u32, now: Nanos) {
        self.sync(j, now);
        match self.st[j as usize].phase {
            Phase::Restarting => {
                // The restart's energy did no work: wasted. The job is now at its checkpoint.
                let s = &mut self.st[j as usize];
                self.counters.wasted_pj += s.energy_pj - s.energy_at_ckpt;
                s.energy_at_ckpt = s.energy_pj;
                s.needs_restart = false;
            }
            Phase::Checkpointing => self.mark_checkpoint(j, now),
            Phase::Computing => {}
        }
        self.enter_computing(j, now);
    }

    // --- faults ------------------------------------------------------------------------------

    fn apply_fault(&mut self, f: FaultEvent) -> Result<(), SimError> {
        let now = f.at;
        match f.kind {
            FaultKind::GpuFail(g) => {
                self.counters.gpu_failures += 1;
                self.cluster.take_out(g, true, now);
                let h = self.cluster.holder(g);
                if h != NO_JOB {
                    self.fault_preempt(h, now)?;
                }
            }
            FaultKind::GpuRepair(g) => self.cluster.put_back(g, true, now),
            FaultKind::DrainStart(n) => {
                self.counters.node_drains += 1;
                for g in self.sc.nodes[n as usize].gpu_ids() {
                    self.cluster.take_out(g, false, now);
                }
            }
            FaultKind::DrainForce(n) => {
                for g in self.sc.nodes[n as usize].gpu_ids() {
                    let h = self.cluster.holder(g);
                    if h != NO_JOB {
                        self.fault_preempt(h, now)?;
                    }
                }
            }
            FaultKind::DrainEnd(n) => {
                for g in self.sc.nodes[n as usize].gpu_ids() {
                    self.cluster.put_back(g, false, now);
                }
            }
        }
        // Capacity changed, or a job went back to the queue: the policy decides again.
        self.request_round(now);
        Ok(())
    }

    /// A fault takes a running job's GPUs: preempted like a policy preemption (work since the
    /// last checkpoint lost, restart when it runs again), and the GPU-time since its state was
    /// last saved counted as lost.
    fn fault_preempt(&mut self, j: u32, now: Nanos) -> Result<(), SimError> {
        let s = &self.st[j as usize];
        self.counters.fault_lost_gpu_ns += s.gpus.len() as u128 * (now - s.saved_at) as u128;
        self.counters.fault_preemptions += 1;
        self.preempt(j, now)
    }

    // --- rounds ------------------------------------------------------------------------------

    fn round(&mut self, now: Nanos) -> Result<(), SimError> {
        self.last_round = Some(now);
        // A full decision buffer means "apply these and ask again"; a few passes always suffice
        // because each pass starts at least one job or changes nothing.
        for _ in 0..8 {
            let full = (0..self.specs.len()).all(|t| self.cluster.free_count(t) == 0);
            if full && self.external.is_none() && !self.kind.acts_on_full_cluster() {
                break; // the policy could only start jobs: nothing to decide
            }
            self.build_views(now);
            let cap = (self.cluster.len() * 2 + 16).min(self.views.len() * 2 + 16);
            self.decisions.clear();
            self.decisions.resize(cap, Decision::Preempt { job: 0 });
            self.scratch.clear();
            self.scratch.resize(self.views.len(), 0);
            self.free.clear();
            self.free
                .extend((0..self.specs.len()).map(|t| self.cluster.free_count(t)));
            let view = ClusterView {
                now,
                gpu_specs: &self.specs,
                total: self.cluster.totals(),
                free: &self.free,
                power_cap_w: self.cap_w,
                models: &self.profiles,
                limit_effects: Some(&self.limit_effects),
            };
            let mut out = Decisions::new(&mut self.decisions);
            if let Some(ext) = self.external.as_deref_mut() {
                let r = ext.schedule(&view, &self.views, &mut out);
                r.map_err(|detail| SimError::External {
                    policy: ext.name().to_string(),
                    detail,
                })?;
                // Held to the core's rules before anything is applied.
                policy::validate::validate(&view, &self.views, out.as_slice(), &mut self.scratch)
                    .map_err(|(k, e)| SimError::BadDecision {
                    policy: ext.name().to_string(),
                    time_s: secs(now),
                    detail: format!("decision {k} of the round: {e}"),
                })?;
            } else {
                policy::schedule(
                    self.kind,
                    &self.sc.params,
                    &view,
                    &self.views,
                    &mut self.scratch,
                    &mut out,
                )
                .map_err(|e| SimError::Policy {
                    policy: self.kind.name().to_string(),
                    detail: crate::words::policy_error(&e),
                })?;
            }
            let n = out.len();
            let full = out.is_full();
            for k in 0..n {
                match self.decisions[k] {
                    Decision::Start { job, cfg } => {
                        self.start(self.view_job[job as usize], cfg, now)?
                    }
                    Decision::Resize { job, cfg } => {
                        self.resize(self.view_job[job as usize], cfg, now)?
                    }
                    Decision::Preempt { job } => self.preempt(self.view_job[job as usize], now)?,
                }
            }
            if !full {
                break;
            }
        }
        Ok(())
    }

    fn build_views(&mut self, now: Nanos) {
        self.views.clear();
        self.view_job.clear();
        // Each user's consumption up to now, once per round (u128 -> f64 is not free).
        self.user_now.clear();
        self.user_now.extend(self.users.iter().map(|u| {
            let dt = (now - u.since) as u128;
            (
                (u.gpu_ns + u.gpus as u128 * dt) as f64 / NANOS_PER_SEC as f64,
                pj_to_j(u.energy_pj + u.power_mw as u128 * dt),
            )
        }));
        let reads = self.external.is_some()
            || self
                .kind
                .reads_running_jobs_when(self.pending.len(), self.urgent_pending);
        let lists = if reads || self.opts.all_views { 2 } else { 1 };
        for li in 0..lists {
            let list = if li == 0 {
                &self.pending
            } else {
                &self.running
            };
            for &j in list {
                let spec = &self.jobs[j as usize];
                let s = &self.st[j as usize];
                let mut done = s.work_done;
                if s.status == Status::Running && s.phase == Phase::Computing {
                    done = (done + s.rate * secs(now - s.phase_since)).min(spec.work);
                }
                let (user_gpu_s, user_energy_j) = self.user_now[spec.user as usize];
                self.views.push(JobView {
                    id: spec.id,
                    model: spec.model,
                    user: spec.user,
                    arrival: spec.arrival,
                    remaining_work: spec.work - done,
                    deadline: spec.deadline,
                    urgent: spec.urgent,
                    rigid: spec.rigid,
                    request: spec.request,
                    running: if s.status == Status::Running {
                        s.cfg
                    } else {
                        None
                    },
                    work_at_risk: (done - s.work_at_ckpt).max(0.0),
                    user_gpu_s,
                    user_energy_j,
                });
                self.view_job.push(j);
            }
        }
    }

    // --- results and checks ------------------------------------------------------------------

    fn check(&self, now: Nanos) -> Result<(), SimError> {
        let bad = |detail: String| SimError::Invariant {
            time_s: secs(now),
            detail,
        };
        let mut held = 0usize;
        for &j in &self.running {
            let s = &self.st[j as usize];
            let cfg = s
                .cfg
                .ok_or_else(|| bad(format!("running job {j} has no configuration")))?;
            if s.gpus.len() != cfg.gpus as usize {
                return Err(bad(format!(
                    "job {j} holds {} GPUs, configured for {}",
                    s.gpus.len(),
                    cfg.gpus
                )));
            }
            for &g in &s.gpus {
                if self.cluster.holder(g) != j {
                    return Err(bad(format!(
                        "job {j} lists GPU {g}, held by {}",
                        self.cluster.holder(g)
                    )));
                }
                if self.cluster.gpu_type(g) != cfg.gpu_type {
                    return Err(bad(format!("job {j} holds GPU {g} of the wrong type")));
                }
            }
            held += s.gpus.len();
        }
        let holders = (0..self.cluster.len() as u32)
            .filter(|&g| self.cluster.holder(g) != crate::cluster::NO_JOB)
            .count();
        if holders != held {
            return Err(bad(format!("{holders} GPUs have a holder but running jobs list {held}: a GPU is held twice or leaked")));
        }
        let mut free_n = vec![0u32; self.specs.len()];
        let mut out_n = vec![0u32; self.specs.len()];
        for g in 0..self.cluster.len() as u32 {
            let t = self.cluster.gpu_type(g) as usize;
            let h = self.cluster.holder(g);
            if h != NO_JOB && self.cluster.is_failed(g) {
                return Err(bad(format!("job {h} runs on failed GPU {g}")));
            }
            if self.cluster.is_free(g) {
                if h != NO_JOB || !self.cluster.in_service(g) {
                    return Err(bad(format!(
                        "GPU {g} is in the free pool but held or out of service"
                    )));
                }
                free_n[t] += 1;
            } else if h == NO_JOB {
                if self.cluster.in_service(g) {
                    return Err(bad(format!(
                        "GPU {g} is in service, unheld, not free: leaked"
                    )));
                }
                out_n[t] += 1;
            }
        }
        let mut held_n = vec![0u32; self.specs.len()];
        for &j in &self.running {
            let s = &self.st[j as usize];
            if let Some(cfg) = s.cfg {
                held_n[cfg.gpu_type as usize] += s.gpus.len() as u32;
            }
        }
        for t in 0..self.specs.len() {
            if free_n[t] != self.cluster.free_count(t)
                || free_n[t] + held_n[t] + out_n[t] != self.cluster.totals()[t]
            {
                return Err(bad(format!(
                    "type {t}: {} free + {} held + {} out of service != {} GPUs",
                    free_n[t],
                    held_n[t],
                    out_n[t],
                    self.cluster.totals()[t]
                )));
            }
        }
        if let Some(j) = self.records.iter().position(|r| r.completions > 1) {
            return Err(bad(format!(
                "job {j} completed {} times",
                self.records[j].completions
            )));
        }
        if self.external.is_none()
            && self.kind == PolicyKind::Charon
            && self.cluster.max_over_cap_mw() > 0
        {
            return Err(bad(format!(
                "Charon exceeded the cap by {} mW",
                self.cluster.max_over_cap_mw()
            )));
        }
        Ok(())
    }
}
