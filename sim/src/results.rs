//! Results of a run, and their aggregation over seeds (mean and 95% Student-t interval).

use ea2p_core::metrics;
use ea2p_core::units::{kwh, secs, Nanos};
use serde::{Deserialize, Serialize};

use crate::cluster::{pj_to_j, Cluster};
use crate::scenario::Scenario;
use crate::sim::Counters;

/// Utilisation of one GPU type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utilisation {
    /// GPU type name.
    pub gpu: String,
    /// Allocated GPU-time over available GPU-time, in [0, 1].
    pub utilisation: f64,
}

/// Metrics of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Policy name.
    pub policy: String,
    /// Run index (0-based).
    pub run: u32,
    /// RNG seed of the run's workload.
    pub seed: u64,
    /// Jobs that arrived before the horizon.
    pub jobs_arrived: u64,
    /// Jobs completed before the horizon.
    pub jobs_completed: u64,
    /// Completed jobs per simulated hour.
    pub jobs_per_hour: f64,
    /// Energy of every GPU over the horizon, kWh.
    pub energy_kwh: f64,
    /// Part of it drawn by allocated GPUs (busy or allocated-idle), kWh.
    pub energy_busy_kwh: f64,
    /// Part of it drawn by unallocated idle GPUs, kWh.
    pub energy_idle_kwh: f64,
    /// Mean over completed jobs of the job's EDP (its GPUs' energy x its completion time), J·s.
    pub edp: Option<f64>,
    /// Mean job completion time (arrival to completion), completed jobs, seconds.
    pub mean_jct_s: Option<f64>,
    /// 95th percentile (nearest rank) of job completion time, seconds.
    pub p95_jct_s: Option<f64>,
    /// Time of the last completion, seconds.
    pub makespan_s: f64,
    /// Jobs with a deadline that is already decided: completed, or deadline before the horizon.
    pub deadlines: u64,
    /// Of those, missed (completed late, or not completed by a past deadline).
    pub deadlines_missed: u64,
    /// `deadlines_missed / deadlines`.
    pub deadline_miss_rate: Option<f64>,
    /// Jain's index over users of their mean finish-time fairness `JCT / isolated run time`.
    pub fairness: Option<f64>,
    /// Utilisation per GPU type.
    pub utilisation: Vec<Utilisation>,
    /// Highest cluster power over the horizon, W.
    pub peak_power_w: f64,
    /// Preemptions.
    pub preemptions: u64,
    /// Reconfigurations of running jobs (checkpoint + restart).
    pub resizes: u64,
    /// Energy that did no lasting work: compute lost to preemptions and restarts, kWh.
    pub wasted_energy_kwh: f64,
    /// Events processed.
    pub events: u64,
    /// Fault metrics, present when the scenario injects faults (`[faults]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultResult>,
}

/// What faults did to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultResult {
    /// GPU failures.
    pub gpu_failures: u64,
    /// Node drains begun.
    pub node_drains: u64,
    /// Jobs preempted by a failure or a drain's end of grace (also counted in `preemptions`).
    pub fault_preemptions: u64,
    /// GPU-hours whose work faults threw away: each preempted job's GPUs x the time since its
    /// state was last saved (start, checkpoint or resize).
    pub lost_gpu_hours: f64,
    /// GPU-hours out of service and held by no job (failed, or drained and empty).
    pub down_gpu_hours: f64,
    /// Policy decisions not applied because they counted GPUs a drain keeps (policies do not
    /// see drains).
    pub skipped_decisions: u64,
}

/// What the results keep of one job once it has left the system (or at the horizon): 64 bytes,
/// so a million-job run keeps 64 MB of them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobRecord {
    pub arrival: Nanos,
    /// [`NEVER`] if none.
    pub deadline: Nanos,
    pub isolated_s: f64,
    pub user: u32,
    /// Times the job completed (1 at most, checked by the invariants).
    pub completions: u32,
    /// [`NEVER`] if it did not complete.
    pub completed_at: Nanos,
    /// [`NEVER`] if it never started.
    pub first_start: Nanos,
    pub energy_j: f64,
    pub work_done: f64,
}

/// One job's outcome (`eas_sim.run(..., jobs=True)` in Python): times in seconds, `None` for
/// what did not happen before the horizon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobOutcome {
    /// Job id (arrival order).
    pub id: u64,
    /// User id.
    pub user: u32,
    /// Arrival, s.
    pub arrival_s: f64,
    /// Deadline, s.
    pub deadline_s: Option<f64>,
    /// Run time alone on the cluster in its requested configuration, s.
    pub isolated_s: f64,
    /// First start, s.
    pub first_start_s: Option<f64>,
    /// Completion, s.
    pub completed_at_s: Option<f64>,
    /// Completion time (arrival to completion), s.
    pub jct_s: Option<f64>,
    /// Energy of the job's GPUs, J.
    pub energy_j: f64,
    /// Work done (reference samples; the job's total if completed).
    pub work_done: f64,
}

impl JobRecord {
    /// The record of job `id` with times in seconds and options for what did not happen.
    pub(crate) fn outcome(&self, id: u64) -> JobOutcome {
        JobOutcome {
            id,
            user: self.user,
            arrival_s: secs(self.arrival),
            deadline_s: at(self.deadline).map(secs),
            isolated_s: self.isolated_s,
            first_start_s: at(self.first_start).map(secs),
            completed_at_s: at(self.completed_at).map(secs),
            jct_s: at(self.completed_at).map(|t| secs(t - self.arrival)),
            energy_j: self.energy_j,
            work_done: self.work_done,
        }
    }
}

/// "None" in a [`JobRecord`]'s times (no simulated time reaches it).
pub(crate) const NEVER: Nanos = Nanos::MAX;

/// A record's time as an option.
pub(crate) fn at(t: Nanos) -> Option<Nanos> {
    (t != NEVER).then_some(t)
}

/// Builds a run's results from every job's record (index = job id, arrival order).
pub(crate) fn collect(
    sc: &Scenario,
    policy: &str,
    run: u32,
    jobs: &[JobRecord],
    cluster: &Cluster,
    c: &Counters,
    horizon: Nanos,
) -> RunResult {
    let hours = secs(horizon) / 3600.0;
    let mut jcts = Vec::new();
    let mut edps = Vec::new();
    let mut makespan = 0.0f64;
    let (mut deadlines, mut missed) = (0u64, 0u64);
    let nusers = jobs.iter().map(|j| j.user + 1).max().unwrap_or(0) as usize;
    let mut rho_sum = vec![0.0f64; nusers];
    let mut rho_n = vec![0u32; nusers];
    for spec in jobs {
        match at(spec.completed_at) {
            Some(t) => {
                let jct = secs(t - spec.arrival);
                jcts.push(jct);
                edps.push(metrics::edp(spec.energy_j, jct));
                makespan = makespan.max(secs(t));
                if let Some(d) = at(spec.deadline) {
                    deadlines += 1;
                    missed += (t > d) as u64;
                }
                if let Some(r) = metrics::finish_time_fairness(jct, spec.isolated_s) {
                    rho_sum[spec.user as usize] += r;
                    rho_n[spec.user as usize] += 1;
                }
            }
            None => {
                if let Some(d) = at(spec.deadline) {
                    if d < horizon {
                        deadlines += 1;
                        missed += 1;
                    }
                }
            }
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let rhos: Vec<f64> = rho_sum
        .iter()
        .zip(&rho_n)
        .filter(|(_, &n)| n > 0)
        .map(|(s, &n)| s / n as f64)
        .collect();
    let (idle_pj, alloc_pj) = cluster.gpu_energy_pj();
    let utilisation = sc
        .gpu_types
        .iter()
        .enumerate()
        .map(|(t, g)| {
            let avail = sc.gpu_counts[t] as f64 * horizon as f64;
            Utilisation {
                gpu: g.name.clone(),
                utilisation: if avail > 0.0 {
                    cluster.allocated_ns()[t] as f64 / avail
                } else {
                    0.0
                },
            }
        })
        .collect();
    RunResult {
        policy: policy.to_string(),
        run,
        seed: sc.base_seed.wrapping_add(run as u64),
        jobs_arrived: jobs.len() as u64,
        jobs_completed: jcts.len() as u64,
        jobs_per_hour: jcts.len() as f64 / hours,
        energy_kwh: kwh(pj_to_j(cluster.cluster_energy_pj())),
        energy_busy_kwh: kwh(pj_to_j(alloc_pj)),
        energy_idle_kwh: kwh(pj_to_j(idle_pj)),
        edp: mean(&edps),
        mean_jct_s: mean(&jcts),
        p95_jct_s: percentile(&mut jcts, 0.95),
        makespan_s: makespan,
        deadlines,
        deadlines_missed: missed,
        deadline_miss_rate: metrics::deadline_miss_rate(missed, deadlines),
        fairness: metrics::jain_index(&rhos),
        utilisation,
        peak_power_w: cluster.peak_mw() as f64 / 1000.0,
        preemptions: c.preemptions,
        resizes: c.resizes,
        wasted_energy_kwh: kwh(pj_to_j(c.wasted_pj)),
        events: c.events,
        faults: sc.faults.enabled().then(|| FaultResult {
            gpu_failures: c.gpu_failures,
            node_drains: c.node_drains,
            fault_preemptions: c.fault_preemptions,
            lost_gpu_hours: c.fault_lost_gpu_ns as f64 / 3.6e12,
            down_gpu_hours: cluster.down_ns() as f64 / 3.6e12,
            skipped_decisions: c.skipped_decisions,
        }),
    }
}

/// Nearest-rank percentile; `None` for no values.
pub fn percentile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = libm::ceil(q * v.len() as f64).max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

/// A metric over seeds: mean and half-width of the 95% Student-t interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    /// Mean over the runs where the metric is defined (`null` if none).
    pub mean: Option<f64>,
    /// Half-width of the 95% interval (`null` with fewer than two values).
    pub ci95: Option<f64>,
}

/// Two-sided 95% Student-t quantiles `t(0.975, df)` for df = 1..=30 (standard tables, e.g.
/// NIST/SEMATECH e-Handbook of Statistical Methods, table 1.3.6.7.2).
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// `t(0.975, df)`: the table up to 30, then the same handbook's 40, 60, 100 and the normal limit
/// 1.960, interpolated in `1/df` (accurate to 0.001).
pub fn t975(df: usize) -> f64 {
    if df == 0 {
        return f64::NAN;
    }
    if df <= 30 {
        return T975[df - 1];
    }
    let pts = [
        (30.0, 2.042),
        (40.0, 2.021),
        (60.0, 2.000),
        (100.0, 1.984),
        (f64::INFINITY, 1.960),
    ];
    let x = 1.0 / df as f64;
    for w in pts.windows(2) {
        let (d0, t0) = w[0];
        let (d1, t1) = w[1];
        if (df as f64) <= d1 {
            let (x0, x1) = (1.0 / d0, if d1.is_infinite() { 0.0 } else { 1.0 / d1 });
            return t0 + (t1 - t0) * (x0 - x) / (x0 - x1);
        }
    }
    1.960
}

impl Stat {
    /// Mean and 95% interval of the defined values.
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Stat {
        let v: Vec<f64> = values
            .into_iter()
            .flatten()
            .filter(|x| x.is_finite())
            .collect();
        let n = v.len();
        if n == 0 {
            return Stat {
                mean: None,
                ci95: None,
            };
        }
        let m = v.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Stat {
                mean: Some(m),
                ci95: None,
            };
        }
        let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1) as f64;
        Stat {
            mean: Some(m),
            ci95: Some(t975(n - 1) * libm::sqrt(var / n as f64)),
        }
    }
}

/// A policy's results over seeds, in the `--json` schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicySummary {
    /// Policy name.
    pub policy: String,
    /// Runs aggregated.
    pub runs: u32,
    /// Completed jobs per hour.
    pub jobs_per_hour: Stat,
    /// Energy, kWh.
    pub energy_kwh: Stat,
    /// Mean per-job EDP, J·s.
    pub edp: Stat,
    /// Mean JCT, s.
    pub mean_jct_s: Stat,
    /// p95 JCT, s.
    pub p95_jct_s: Stat,
    /// Deadline-miss rate.
    pub deadline_miss_rate: Stat,
    /// Jain's index of users' finish-time fairness.
    pub fairness: Stat,
    /// Peak power, W.
    pub peak_power_w: Stat,
    /// Preemptions per run.
    pub preemptions: Stat,
    /// Wasted energy, kWh.
    pub wasted_energy_kwh: Stat,
    /// Fault metrics over seeds, present when the scenario injects faults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultSummary>,
    /// Further metrics for the CSV and the table, kept out of the JSON so that its schema stays
    /// the documented one: makespan, busy and idle energy, resizes, utilisation per GPU type.
    #[serde(skip)]
    pub extra: Vec<(String, Stat)>,
}

impl PolicySummary {
    /// Aggregates the runs of one policy.
    pub fn of(policy: &str, runs: &[RunResult]) -> PolicySummary {
        let s = |f: &dyn Fn(&RunResult) -> Option<f64>| Stat::of(runs.iter().map(f));
        PolicySummary {
            policy: policy.to_string(),
            runs: runs.len() as u32,
            jobs_per_hour: s(&|r| Some(r.jobs_per_hour)),
            energy_kwh: s(&|r| Some(r.energy_kwh)),
            edp: s(&|r| r.edp),
            mean_jct_s: s(&|r| r.mean_jct_s),
            p95_jct_s: s(&|r| r.p95_jct_s),
            deadline_miss_rate: s(&|r| r.deadline_miss_rate),
            fairness: s(&|r| r.fairness),
            peak_power_w: s(&|r| Some(r.peak_power_w)),
            preemptions: s(&|r| Some(r.preemptions as f64)),
            wasted_energy_kwh: s(&|r| Some(r.wasted_energy_kwh)),
            faults: FaultSummary::of(runs),
            extra: {
                let mut v = vec![
                    ("makespan_s".to_string(), s(&|r| Some(r.makespan_s))),
                    (
                        "jobs_per_makespan_hour".to_string(),
                        s(&|r| {
                            (r.makespan_s > 0.0)
                                .then(|| r.jobs_completed as f64 * 3600.0 / r.makespan_s)
                        }),
                    ),
                    (
                        "energy_busy_kwh".to_string(),
                        s(&|r| Some(r.energy_busy_kwh)),
                    ),
                    (
                        "energy_idle_kwh".to_string(),
                        s(&|r| Some(r.energy_idle_kwh)),
                    ),
                    ("resizes".to_string(), s(&|r| Some(r.resizes as f64))),
                ];
                if let Some(f) = FaultSummary::of(runs) {
                    v.extend(f.named().iter().map(|(n, st)| (n.to_string(), *st)));
                }
                if let Some(first) = runs.first() {
                    for (t, u) in first.utilisation.iter().enumerate() {
                        let st = Stat::of(
                            runs.iter()
                                .map(|r| r.utilisation.get(t).map(|x| x.utilisation)),
                        );
                        v.push((format!("utilisation_{}", u.gpu), st));
                    }
                }
                v
            },
        }
    }
}

/// [`FaultResult`] over seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultSummary {
    /// GPU failures per run.
    pub gpu_failures: Stat,
    /// Node drains per run.
    pub node_drains: Stat,
    /// Jobs preempted by faults per run.
    pub fault_preemptions: Stat,
    /// GPU-hours of work lost to faults per run.
    pub lost_gpu_hours: Stat,
    /// GPU-hours out of service per run.
    pub down_gpu_hours: Stat,
}

impl FaultSummary {
    /// `None` unless every run has fault metrics.
    fn of(runs: &[RunResult]) -> Option<FaultSummary> {
        let f: Vec<&FaultResult> = runs
            .iter()
            .map(|r| r.faults.as_ref())
            .collect::<Option<_>>()?;
        if f.is_empty() {
            return None;
        }
        let s = |g: &dyn Fn(&FaultResult) -> f64| Stat::of(f.iter().map(|x| Some(g(x))));
        Some(FaultSummary {
            gpu_failures: s(&|x| x.gpu_failures as f64),
            node_drains: s(&|x| x.node_drains as f64),
            fault_preemptions: s(&|x| x.fault_preemptions as f64),
            lost_gpu_hours: s(&|x| x.lost_gpu_hours),
            down_gpu_hours: s(&|x| x.down_gpu_hours),
        })
    }

    /// Named metrics, for the CSV.
    pub fn named(&self) -> [(&'static str, Stat); 5] {
        [
            ("gpu_failures", self.gpu_failures),
            ("node_drains", self.node_drains),
            ("fault_preemptions", self.fault_preemptions),
            ("lost_gpu_hours", self.lost_gpu_hours),
            ("down_gpu_hours", self.down_gpu_hours),
        ]
    }
}

/// The `--json` document of `compare`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Scenario name.
    pub scenario: String,
    /// One entry per policy, in the order asked.
    pub policies: Vec<PolicySummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn student_t_interval() {
        let s = Stat::of([Some(1.0), Some(2.0), Some(3.0), None]);
        assert_eq!(s.mean, Some(2.0));
        // sd = 1, n = 3: 4.303 / sqrt(3)
        assert!((s.ci95.unwrap() - 4.303 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(Stat::of([Some(5.0)]).ci95, None);
        assert_eq!(Stat::of([None]).mean, None);
        assert!((t975(40) - 2.021).abs() < 1e-9);
        assert!((t975(1000) - 1.962).abs() < 0.002);
    }

    #[test]
    fn nearest_rank_percentile() {
        let mut v: Vec<f64> = (1..=100).map(|x| x as f64).collect();
        assert_eq!(percentile(&mut v, 0.95), Some(95.0));
        assert_eq!(percentile(&mut [3.0], 0.95), Some(3.0));
        assert_eq!(percentile(&mut [], 0.95), None);
    }
}
