//! The ranges every number of a scenario and of the command line must lie in, and the checks
//! that need the whole scenario (what the run will allocate, how many events it will make).
//!
//! Why ranges: a number sized by the user becomes an allocation (jobs drawn, seeds held, nodes
//! expanded) or a count of events; integer nanoseconds overflow past about 5.12 million hours.
//! Each limit is far above any study we know of and far below what breaks; every error states
//! the range.

use ea2p_core::policy::PolicyKind;

use crate::scenario::{Arrivals, Scenario};

/// Longest horizon, hours (about 11.4 years; u64 nanoseconds hold 5.12 million hours).
pub const MAX_HOURS: f64 = 100_000.0;
/// Longest time a scenario or trace may give (a run time, an interval, a deadline), seconds:
/// the longest horizon.
pub const MAX_SECONDS: f64 = MAX_HOURS * 3600.0;
/// Most seeds (independent runs) of one comparison.
pub const MAX_SEEDS: u32 = 10_000;
/// Most worker threads.
pub const MAX_THREADS: usize = 1024;
/// Most GPUs in a cluster (and in one request).
pub const MAX_GPUS: u64 = 1_000_000;
/// Most nodes in a cluster (each `count` expanded).
pub const MAX_NODES: u64 = 1_000_000;
/// Most users.
pub const MAX_USERS: u32 = 1_000_000;
/// Highest Poisson arrival rate, jobs per second.
pub const MAX_RATE_PER_S: f64 = 1_000.0;
/// Most jobs one run may be expected to draw (rate x horizon).
pub const MAX_JOBS_PER_RUN: f64 = 10_000_000.0;
/// Most jobs a comparison holds at once: it draws every seed's workload before running
/// (about 80 bytes a job, so 1.6 GB).
pub const MAX_JOBS_HELD: f64 = 20_000_000.0;
/// Most scheduling rounds one run may have (horizon / round interval).
pub const MAX_ROUNDS_PER_RUN: f64 = 100_000_000.0;
/// Most faults (GPU failures and node drains) one run may be expected to draw.
pub const MAX_FAULTS_PER_RUN: f64 = 1_000_000.0;
/// Most jobs `gen-trace` writes in one file.
pub const MAX_GEN_JOBS: u64 = 50_000_000;
/// Most rows of a trace in the simulator's own CSV format (it is loaded whole).
pub const MAX_TRACE_ROWS: usize = 10_000_000;
/// Largest power figure (a GPU's, a cap), watts.
pub const MAX_WATTS: f64 = 1e9;
/// Largest weight (mix, GPU counts).
pub const MAX_WEIGHT: f64 = 1e9;
/// Largest job size in reference samples.
pub const MAX_SAMPLES: f64 = 1e18;
/// Longest name (scenario, GPU type, model), bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Largest scenario file, bytes.
pub const MAX_SCENARIO_BYTES: u64 = 4 << 20;

/// `x` as a number in `[lo, hi]` (`lo_open`: `(lo, hi]`), else the message
/// "`what`: expected a number in [lo, hi], found x".
pub fn range(x: f64, what: &str, lo: f64, lo_open: bool, hi: f64) -> Result<f64, String> {
    let above = if lo_open { x > lo } else { x >= lo };
    if above && x <= hi {
        Ok(x)
    } else {
        let open = if lo_open { "(" } else { "[" };
        let sign = match (lo_open, lo == 0.0) {
            (true, true) => "a positive number ",
            (false, true) => "a number >= 0 ",
            _ => "a number ",
        };
        Err(format!(
            "{what}: expected {sign}in {open}{lo}, {hi}], found {}",
            short(x)
        ))
    }
}

/// A number as a user can read it: `1e300`, not three hundred digits.
pub fn short(x: f64) -> String {
    let a = x.abs();
    if a.is_finite() && a != 0.0 && !(1e-6..1e9).contains(&a) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A name is at most [`MAX_NAME_BYTES`] bytes, not empty, without control characters (it is
/// printed to terminals and written to CSV and SVG).
pub fn name(s: &str, what: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!("{what}: expected a name, found an empty one"));
    }
    if s.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{what}: expected at most {MAX_NAME_BYTES} bytes, found {} bytes",
            s.len()
        ));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{what}: {:?} holds the control character U+{:04X}; expected printable text",
            s, c as u32
        ));
    }
    Ok(())
}

/// The checks on a whole scenario, after the command line has changed it (`--hours`,
/// `--seeds`, `--gpu-mtbf-h`...): what one run draws and how many events it makes must stay
/// within the limits above. `held_seeds` is how many seeds' workloads are held at once.
pub fn check(sc: &Scenario, held_seeds: u32) -> Result<(), String> {
    range(sc.hours, "hours", 0.0, true, MAX_HOURS)?;
    if !(1..=MAX_SEEDS).contains(&sc.seeds) {
        return Err(format!(
            "seeds: expected a number in [1, {MAX_SEEDS}], found {}",
            sc.seeds
        ));
    }
    let secs = sc.hours * 3600.0;
    if let Arrivals::Poisson(rate) = sc.arrivals {
        let per_run = rate * secs;
        if per_run > MAX_JOBS_PER_RUN {
            return Err(format!(
                "poisson_rate_per_s x hours: {rate} jobs/s over {} h is {per_run:.3e} jobs a run; expected at most {MAX_JOBS_PER_RUN:.0} (lower the rate or the hours)",
                sc.hours
            ));
        }
        let held = per_run * f64::from(held_seeds.max(1));
        if held > MAX_JOBS_HELD {
            return Err(format!(
                "seeds x jobs a run: {} seeds x {per_run:.3e} jobs = {held:.3e} jobs held at once; expected at most {MAX_JOBS_HELD:.0} (fewer seeds, a lower rate or fewer hours)",
                held_seeds
            ));
        }
    }
    let round_s = ea2p_core::units::secs(sc.round_interval);
    let rounds = secs / round_s.max(1e-9);
    if rounds > MAX_ROUNDS_PER_RUN {
        return Err(format!(
            "hours / round_interval_s: {} h at one round every {} s is {rounds:.3e} rounds; expected at most {MAX_ROUNDS_PER_RUN:.0}",
            sc.hours,
            short(round_s)
        ));
    }
    let gpus: u64 = sc.gpu_counts.iter().map(|&c| u64::from(c)).sum();
    let mut faults = sc.faults.scripted.len() as f64;
    if let Some(m) = sc.faults.gpu_mtbf_h {
        faults += gpus as f64 * sc.hours / m;
    }
    faults += sc.nodes.len() as f64 * sc.faults.node_drains_per_day * sc.hours / 24.0;
    if faults > MAX_FAULTS_PER_RUN {
        return Err(format!(
            "faults: {gpus} GPUs and {} nodes over {} h with gpu_mtbf_h = {:?} and node_drains_per_day = {} give about {faults:.3e} faults a run; expected at most {MAX_FAULTS_PER_RUN:.0}",
            sc.nodes.len(),
            sc.hours,
            sc.faults.gpu_mtbf_h,
            sc.faults.node_drains_per_day
        ));
    }
    Ok(())
}

/// The cluster's power with every GPU idle, watts: no schedule draws less.
pub fn idle_floor_w(sc: &Scenario) -> f64 {
    sc.gpu_types
        .iter()
        .zip(&sc.gpu_counts)
        .map(|(g, &c)| g.spec.idle_w * f64::from(c))
        .sum()
}

/// Charon honours the power cap: a cap (from the start or a later change) below the cluster's
/// all-idle power cannot be met by any schedule. Checked only when Charon is among `policies`
/// (the other policies ignore the cap), so a scenario that inherits the seed protocol's 6 kW
/// cap runs every other policy on a cluster of any size.
pub fn check_cap_for(sc: &Scenario, policies: &[PolicyKind]) -> Result<(), String> {
    if !policies.contains(&PolicyKind::Charon) {
        return Ok(());
    }
    let floor = idle_floor_w(sc);
    let caps = std::iter::once(sc.power_cap_w).chain(sc.cap_changes.iter().map(|c| c.watts));
    for w in caps.flatten() {
        if w < floor {
            return Err(format!(
                "charon: the power cap of {w} W is below this cluster's all-idle power ({floor} W), so no schedule can meet it; set [policy] power_cap_w (and power_cap_changes) to at least {floor} W, or leave charon out of --policies"
            ));
        }
    }
    Ok(())
}

/// Things that make sense to run but change what was asked, each with a count: said on
/// stderr before the run.
pub fn warnings(sc: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    let largest = sc.gpu_counts.iter().copied().max().unwrap_or(0);
    match &sc.arrivals {
        Arrivals::Poisson(_) => {
            let total: f64 = sc.gpus.iter().map(|g| g.1).sum();
            let big: Vec<&(u32, f64)> = sc.gpus.iter().filter(|g| g.0 > largest).collect();
            if !big.is_empty() {
                let share: f64 =
                    big.iter().map(|g| g.1).sum::<f64>() / total.max(f64::MIN_POSITIVE);
                let counts: Vec<String> = big.iter().map(|g| g.0.to_string()).collect();
                out.push(format!(
                    "workload.gpus: {} of {} entries ask for more GPUs ({}) than the largest GPU type of the cluster has ({largest}); those jobs ({:.1} % of the draws) are cut to {largest} GPUs",
                    big.len(),
                    sc.gpus.len(),
                    counts.join(", "),
                    share * 100.0
                ));
            }
        }
        Arrivals::Trace(jobs) => {
            let mut cut = 0u64;
            let mut largest_ask = 0u32;
            for j in jobs {
                let room = match &j.gpu_type {
                    Some(g) => sc
                        .gpu_types
                        .iter()
                        .position(|t| t.name.eq_ignore_ascii_case(g))
                        .map_or(largest, |i| sc.gpu_counts[i]),
                    None => largest,
                };
                if j.gpus > room {
                    cut += 1;
                    largest_ask = largest_ask.max(j.gpus);
                }
            }
            if jobs.is_empty() {
                out.push("trace: the file holds no job (only a header row, or nothing)".into());
            }
            if cut > 0 {
                out.push(format!(
                    "trace: {cut} of {} jobs ask for more GPUs than the cluster has of their type (up to {largest_ask}); each is cut to what its type has",
                    jobs.len()
                ));
            }
        }
        Arrivals::Public(_) => {} // counted while streaming (the trace tally)
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_states_the_interval() {
        assert_eq!(range(2.0, "x", 0.0, true, 3.0), Ok(2.0));
        let e = range(f64::NAN, "hours", 0.0, true, MAX_HOURS).unwrap_err();
        assert!(e.contains("(0, 100000]") && e.contains("NaN"), "{e}");
        assert!(range(0.0, "x", 0.0, true, 1.0).is_err());
        assert!(range(0.0, "x", 0.0, false, 1.0).is_ok());
        assert!(range(f64::INFINITY, "x", 0.0, false, 1.0).is_err());
    }

    #[test]
    fn names_refuse_control_bytes() {
        assert!(name("A100", "gpu").is_ok());
        assert!(name("a\u{1b}[31m", "gpu").unwrap_err().contains("U+001B"));
        assert!(name("", "gpu").is_err());
        assert!(name(&"x".repeat(65), "gpu").is_err());
    }

    #[test]
    fn the_seed_protocol_is_within_every_limit() {
        let sc = Scenario::seed_protocol();
        check(&sc, sc.seeds).unwrap();
        check_cap_for(&sc, &PolicyKind::ALL).unwrap();
        assert!(warnings(&sc).is_empty());
    }
}
