//! The CPU time of one attribution step (read `/proc/stat`, `/proc/meminfo`, the process tree
//! and its affinity, then feed the interval to the core's rule), against this machine's real
//! `/proc`, for a tree of `sleep` processes. BENCHMARKS.md, "Attribution on and off".
//! `cargo run --release -p ea2p-sampler --example attribution_cost -- [STEPS]`

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use ea2p_core::attribution::Attribution;
use ea2p_core::source::{Component, Provenance, Quantity, SourceInfo};
use ea2p_sampler::attribute::{AttributeMode, Attributor, IdlePower};

fn main() {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut child = std::process::Command::new("sh")
        .args(["-c", "sleep 1000 & sleep 1000 & wait"])
        // Its own process group, so that the end of the bench ends the `sleep`s too; no
        // inherited output, so that nothing waiting on this program's output waits on them.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh");
    let info = |component, index| SourceInfo {
        component,
        index,
        provenance: Provenance::Measured,
        quantity: Quantity::Power { averaging_ns: 0 },
        update_period_ns: 1_000_000,
        max_power_w: None,
        name: ea2p_core::source::truncated("bench"),
    };
    let infos: Vec<SourceInfo> = (0..2)
        .flat_map(|p| {
            [
                info(Component::CpuPackage, p),
                info(Component::CpuCores, p),
                info(Component::Uncore, p),
                info(Component::Dram, p),
            ]
        })
        .collect();
    let idle = IdlePower::Model {
        watts: 20.0,
        name: "bench".into(),
    };
    let mut a = Attributor::new(
        &AttributeMode::Tree,
        Path::new("/proc"),
        Path::new("/sys"),
        &infos,
        &idle,
        child.id(),
    )
    .expect("an attributor");
    let mut acc = vec![Attribution::default(); infos.len()];
    let mut energies = vec![0.0; infos.len()];
    // Steady state: past the first second's frequent scans, as in a run longer than a second.
    for t in 0..20u64 {
        let c = a.read(t * 100_000_000, child.id()).expect("counters");
        a.step(c, &energies, &mut acc);
    }
    let mut per_step = Vec::with_capacity(steps);
    for k in 0..steps as u64 {
        energies.iter_mut().for_each(|e| *e += 1.0);
        let t0 = Instant::now();
        let c = a
            .read((20 + k) * 100_000_000, child.id())
            .expect("counters");
        a.step(c, &energies, &mut acc);
        per_step.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
    per_step.sort_by(f64::total_cmp);
    let median = per_step[steps / 2];
    let mean: f64 = per_step.iter().sum::<f64>() / steps as f64;
    println!(
        "{steps} steps (every 10th with a /proc scan for new descendants): median {median:.1} us, mean {mean:.1} us, p90 {:.1} us",
        per_step[steps * 9 / 10]
    );
    println!(
        "at 10 steps/s: {:.3} % of a core (mean)",
        mean * 10.0 / 1e6 * 100.0
    );
}
