//! The engine's hook for policies outside the core (`ExternalPolicy`, what the Python module
//! uses): the core's own policies run through it give the built-in results exactly (so an
//! external policy sees the same views), and its bad decisions are refused by the core's check.

use ea2p_core::policy::{
    self, ClusterView, Decision, Decisions, JobView, PolicyKind, PolicyParams,
};
use eas_sim::public_trace::SharedTally;
use eas_sim::scenario::Scenario;
use eas_sim::sim::{self, ExternalPolicy, RunOptions, SimError};
use eas_sim::workload;

/// A core policy behind the external hook.
struct Wrapped {
    kind: PolicyKind,
    params: PolicyParams,
    scratch: Vec<u32>,
}

impl ExternalPolicy for Wrapped {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn schedule(
        &mut self,
        cluster: &ClusterView<'_>,
        jobs: &[JobView],
        out: &mut Decisions<'_>,
    ) -> Result<(), String> {
        self.scratch.resize(jobs.len(), 0);
        policy::schedule(
            self.kind,
            &self.params,
            cluster,
            jobs,
            &mut self.scratch,
            out,
        )
        .map_err(|e| format!("{e:?}"))
    }
}

fn scenario() -> Scenario {
    let mut sc = Scenario::seed_protocol();
    sc.hours = 4.0;
    sc
}

#[test]
fn every_core_policy_through_the_hook_gives_the_built_in_results() {
    let sc = scenario();
    let opts = RunOptions {
        check_invariants: true,
        ..RunOptions::default()
    };
    for kind in PolicyKind::ALL {
        for run in 0..2 {
            let src = workload::source(&sc, run, SharedTally::default()).unwrap();
            let built_in = sim::run_source(&sc, kind, src, run, opts).unwrap();
            let mut p = Wrapped {
                kind,
                params: sc.params,
                scratch: Vec::new(),
            };
            let src = workload::source(&sc, run, SharedTally::default()).unwrap();
            let external = sim::run_external(&sc, &mut p, src, run, opts).unwrap();
            let (a, b) = (built_in.result, external.result);
            // The hook asks in every round, also on a full cluster: more events, same outcome.
            assert_eq!(
                (a.events <= b.events, RunResultNoEvents(&a)),
                (true, RunResultNoEvents(&b)),
                "{} run {run}",
                kind.name()
            );
            assert_eq!(built_in.jobs, external.jobs);
        }
    }
}

/// A run's results less the event count.
#[derive(Debug)]
struct RunResultNoEvents<'a>(&'a eas_sim::results::RunResult);

impl PartialEq for RunResultNoEvents<'_> {
    fn eq(&self, other: &Self) -> bool {
        let mut a = self.0.clone();
        a.events = other.0.events;
        a == *other.0
    }
}

/// Starts the first pending job on more GPUs than its type has.
struct Greedy;

impl ExternalPolicy for Greedy {
    fn name(&self) -> &str {
        "greedy"
    }

    fn schedule(
        &mut self,
        cluster: &ClusterView<'_>,
        jobs: &[JobView],
        out: &mut Decisions<'_>,
    ) -> Result<(), String> {
        if let Some(i) = jobs.iter().position(|j| j.running.is_none()) {
            let cfg = ea2p_core::jobmodel::Config {
                gpu_type: 0,
                gpus: cluster.total[0] + 1,
                batch: 4096,
                limit_w: cluster.gpu_specs[0].max_w,
            };
            let _ = out.push(Decision::Start { job: i as u32, cfg });
        }
        Ok(())
    }
}

#[test]
fn a_bad_external_decision_is_refused_by_the_core_with_the_job_and_reason() {
    let sc = scenario();
    let src = workload::source(&sc, 0, SharedTally::default()).unwrap();
    let e = sim::run_external(&sc, &mut Greedy, src, 0, RunOptions::default()).unwrap_err();
    let SimError::BadDecision { policy, detail, .. } = &e else {
        panic!("expected a refused decision, got {e}");
    };
    assert_eq!(policy, "greedy");
    assert!(
        detail.starts_with("decision 0 of the round: job 0: "),
        "{detail}"
    );
    assert!(
        detail.contains("does not run") || detail.contains("more GPUs"),
        "{detail}"
    );
}
