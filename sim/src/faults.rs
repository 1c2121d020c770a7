//! Fault injection: GPU failures and node drains.
//!
//! A run's faults are drawn before it starts, from their own RNG stream (seeded from the
//! scenario's seed and the run index, but not the workload's stream), so enabling faults never
//! changes the arrivals, and every policy of a comparison meets the same faults on the same seed.
//!
//! - **GPU failures**: each GPU fails after an exponential time of mean `gpu_mtbf_h` while it is
//!   up, and is back `repair_h` later. A job holding a failed GPU is preempted at once: the work
//!   since its last checkpoint is lost and it goes back to the queue.
//! - **Node drains**: each node is drained at Poisson times (`node_drains_per_day`); it then
//!   takes no new job for `drain_h`. Jobs already on it may run on for `drain_grace_h`; those
//!   still there then are preempted as by a failure (work since the last checkpoint lost).
//!
//! A failed or drained GPU that no job holds is powered off (0 W) until it is back in service:
//! under repair or maintenance it draws nothing, and the policies' power accounting (Charon's
//! committed power) counts only free and held GPUs. A job may keep running on a drained node's
//! GPUs during the grace. Policies do not see drains: a decision that counted GPUs a drain keeps
//! (a drained job's GPUs after a preemption or resize) is not applied and is counted as skipped.

use ea2p_core::units::Nanos;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Mixed into the run's seed so that the fault stream is not the workload's.
const FAULT_STREAM: u64 = 0x6661_756c_7473_2121; // "faults!!"

/// One node of the cluster: a run of consecutive GPU ids of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeDef {
    /// GPU type index.
    pub gpu_type: u8,
    /// Id of its first GPU (ids are numbered type by type, nodes in file order).
    pub first_gpu: u32,
    /// GPUs on the node.
    pub gpus: u32,
}

impl NodeDef {
    /// The node's GPU ids.
    pub fn gpu_ids(&self) -> std::ops::Range<u32> {
        self.first_gpu..self.first_gpu + self.gpus
    }
}

/// Lays out nodes `(type, gpus)` given in file order on the cluster's GPU ids, which are
/// numbered type by type (all GPUs of type 0, then type 1...).
pub fn layout(nodes: &[(u8, u32)], types: usize) -> Vec<NodeDef> {
    let mut per_type = vec![0u32; types];
    for &(t, k) in nodes {
        per_type[t as usize] += k;
    }
    let mut next = vec![0u32; types];
    let mut acc = 0;
    for t in 0..types {
        next[t] = acc;
        acc += per_type[t];
    }
    nodes
        .iter()
        .map(|&(t, k)| {
            let first = next[t as usize];
            next[t as usize] += k;
            NodeDef {
                gpu_type: t,
                first_gpu: first,
                gpus: k,
            }
        })
        .collect()
}

/// A fault written in the scenario file (tests, "what if" studies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripted {
    /// GPU `gpu` fails at `at` (and is repaired `repair_h` later).
    Fail {
        /// When.
        at: Nanos,
        /// GPU id.
        gpu: u32,
    },
    /// Node `node` (file order, counting each `count`) is drained at `at`.
    Drain {
        /// When.
        at: Nanos,
        /// Node index.
        node: u32,
    },
}

/// The scenario's `[faults]` table, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Mean time between failures of one GPU, hours; `None`: no random failures.
    pub gpu_mtbf_h: Option<f64>,
    /// Time a failed GPU takes to come back.
    pub repair: Nanos,
    /// Drains per node per day (Poisson); 0: no random drains.
    pub node_drains_per_day: f64,
    /// Time a drained node takes no new job.
    pub drain: Nanos,
    /// Time jobs already on a drained node may run on before they are preempted.
    pub drain_grace: Nanos,
    /// Faults at fixed times.
    pub scripted: Vec<Scripted>,
}

/// Default repair time: 4 h (assumed; a swap or reboot by an operator).
pub const DEFAULT_REPAIR_H: f64 = 4.0;
/// Default drain (maintenance window): 2 h (assumed).
pub const DEFAULT_DRAIN_H: f64 = 2.0;
/// Default grace given to running jobs on a drained node: 30 min (assumed).
pub const DEFAULT_DRAIN_GRACE_H: f64 = 0.5;

impl Default for Faults {
    fn default() -> Self {
        Faults {
            gpu_mtbf_h: None,
            repair: hours(DEFAULT_REPAIR_H),
            node_drains_per_day: 0.0,
            drain: hours(DEFAULT_DRAIN_H),
            drain_grace: hours(DEFAULT_DRAIN_GRACE_H),
            scripted: Vec::new(),
        }
    }
}

impl Faults {
    /// Any fault at all (results then carry the fault metrics).
    pub fn enabled(&self) -> bool {
        self.gpu_mtbf_h.is_some() || self.node_drains_per_day > 0.0 || !self.scripted.is_empty()
    }
}

fn hours(h: f64) -> Nanos {
    ea2p_core::units::nanos_from_secs(h * 3600.0)
}

/// What happens to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A GPU fails.
    GpuFail(u32),
    /// A GPU is repaired.
    GpuRepair(u32),
    /// A node is drained: no new job on it.
    DrainStart(u32),
    /// The drain's grace is over: jobs still on the node are preempted.
    DrainForce(u32),
    /// The node is back in service.
    DrainEnd(u32),
}

/// A fault at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultEvent {
    /// When.
    pub at: Nanos,
    /// What.
    pub kind: FaultKind,
}

/// The fault RNG of run `run`: its own stream, not the workload's.
pub fn fault_rng(base_seed: u64, run: u32) -> Pcg64 {
    Pcg64::seed_from_u64(base_seed.wrapping_add(run as u64) ^ FAULT_STREAM)
}

/// Exponential draw of mean `mean_ns` nanoseconds (at least 1 ns).
fn exp_ns(rng: &mut Pcg64, mean_ns: f64) -> Nanos {
    let u: f64 = rng.random::<f64>();
    let x = -mean_ns * libm::log(1.0 - u);
    if x >= u64::MAX as f64 {
        u64::MAX
    } else {
        (x as Nanos).max(1)
    }
}

/// Every fault of run `run` before `horizon`, in time order (ties: GPUs in id order, then nodes,
/// then scripted faults, each in its own order). Failures of one GPU alternate with repairs;
/// drains of one node do not overlap.
pub fn schedule(
    f: &Faults,
    nodes: &[NodeDef],
    gpus: u32,
    horizon: Nanos,
    base_seed: u64,
    run: u32,
) -> Vec<FaultEvent> {
    let mut out = Vec::new();
    if !f.enabled() {
        return out;
    }
    let mut rng = fault_rng(base_seed, run);
    let push_fail = |out: &mut Vec<FaultEvent>, at: Nanos, g: u32| {
        out.push(FaultEvent {
            at,
            kind: FaultKind::GpuFail(g),
        });
        let back = at.saturating_add(f.repair);
        if back < horizon {
            out.push(FaultEvent {
                at: back,
                kind: FaultKind::GpuRepair(g),
            });
        }
        back
    };
    let push_drain = |out: &mut Vec<FaultEvent>, at: Nanos, n: u32| {
        out.push(FaultEvent {
            at,
            kind: FaultKind::DrainStart(n),
        });
        let force = at.saturating_add(f.drain_grace);
        let end = at.saturating_add(f.drain);
        if force < end && force < horizon {
            out.push(FaultEvent {
                at: force,
                kind: FaultKind::DrainForce(n),
            });
        }
        if end < horizon {
            out.push(FaultEvent {
                at: end,
                kind: FaultKind::DrainEnd(n),
            });
        }
        end
    };
    if let Some(mtbf) = f.gpu_mtbf_h {
        let mean = mtbf * 3600e9;
        for g in 0..gpus {
            let mut t: Nanos = 0;
            loop {
                t = t.saturating_add(exp_ns(&mut rng, mean));
                if t >= horizon {
                    break;
                }
                t = push_fail(&mut out, t, g);
            }
        }
    }
    if f.node_drains_per_day > 0.0 {
        let mean = 86400e9 / f.node_drains_per_day;
        for n in 0..nodes.len() as u32 {
            let mut t: Nanos = 0;
            loop {
                t = t.saturating_add(exp_ns(&mut rng, mean));
                if t >= horizon {
                    break;
                }
                t = push_drain(&mut out, t, n);
            }
        }
    }
    for s in &f.scripted {
        match *s {
            Scripted::Fail { at, gpu } if at < horizon => {
                push_fail(&mut out, at, gpu);
            }
            Scripted::Drain { at, node } if at < horizon => {
                push_drain(&mut out, at, node);
            }
            _ => {}
        }
    }
    out.sort_by_key(|e| e.at); // stable: ties keep the order above
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Nanos = 3_600_000_000_000;

    #[test]
    fn layout_numbers_gpus_type_by_type() {
        let n = layout(&[(1, 4), (0, 2), (1, 4), (0, 2)], 2);
        let ids: Vec<_> = n.iter().map(|d| (d.gpu_type, d.gpu_ids())).collect();
        assert_eq!(ids, vec![(1, 4..8), (0, 0..2), (1, 8..12), (0, 2..4)]);
    }

    #[test]
    fn failures_alternate_with_repairs_and_their_rate_matches_the_mtbf() {
        let f = Faults {
            gpu_mtbf_h: Some(10.0),
            repair: H,
            ..Faults::default()
        };
        let horizon = 10_000 * H;
        let ev = schedule(&f, &[], 4, horizon, 7, 0);
        let mut down = [false; 4];
        let mut fails = 0u32;
        for e in &ev {
            match e.kind {
                FaultKind::GpuFail(g) => {
                    assert!(!down[g as usize]);
                    down[g as usize] = true;
                    fails += 1;
                }
                FaultKind::GpuRepair(g) => {
                    assert!(down[g as usize]);
                    down[g as usize] = false;
                }
                _ => unreachable!(),
            }
        }
        assert!(ev.windows(2).all(|w| w[0].at <= w[1].at));
        // Up 10 h on average, then down 1 h: 10000 h / 11 h per GPU, x 4 GPUs = 3636 expected;
        // 5 standard deviations of a Poisson count is about 300.
        assert!((fails as f64 - 3636.0).abs() < 300.0, "{fails}");
    }

    #[test]
    fn the_stream_depends_on_seed_and_run_only() {
        let f = Faults {
            gpu_mtbf_h: Some(5.0),
            node_drains_per_day: 2.0,
            ..Faults::default()
        };
        let nodes = layout(&[(0, 8), (1, 8)], 2);
        let a = schedule(&f, &nodes, 16, 100 * H, 1, 3);
        assert_eq!(a, schedule(&f, &nodes, 16, 100 * H, 1, 3));
        assert_ne!(a, schedule(&f, &nodes, 16, 100 * H, 1, 4));
        assert!(a.iter().any(|e| matches!(e.kind, FaultKind::DrainForce(_))));
        assert!(schedule(&Faults::default(), &nodes, 16, 100 * H, 1, 3).is_empty());
    }
}
