//! Property tests of the attribution rule: shares in `[0, 1]`, disjoint process sets never
//! attributed more than the machine's energy, and a command alone on an idle machine gets all.

use ea2p_core::attribution::{Allocation, Attribution, CpuTime};
use proptest::prelude::*;

/// One interval: energy, idle power, duration, the busy time of the machine's other processes,
/// and each set's CPU time.
fn intervals(sets: usize) -> impl Strategy<Value = Vec<(f64, f64, f64, u64, Vec<u64>)>> {
    prop::collection::vec(
        (
            0.0f64..500.0,
            0.0f64..200.0,
            0.001f64..2.0,
            0u64..1_000_000,
            prop::collection::vec(0u64..1_000_000, sets),
        ),
        1..40,
    )
}

proptest! {
    /// Disjoint process sets, all unrestricted or all pinned to their own part of the CPUs (a
    /// partition, as cpusets of different jobs are), never sum above the machine's energy, and
    /// every share is in [0, 1]. (A mix, an unrestricted command beside pinned jobs, can claim
    /// idle energy the pinned jobs' allocation also holds: the README says so.)
    #[test]
    fn disjoint_sets_never_exceed_the_machine(
        ivs in intervals(3),
        pinned in any::<bool>(),
        online in 3u32..64,
    ) {
        let mut sets = [Attribution::default(); 3];
        let mut machine = 0.0;
        for (e, idle_w, dt, others, cmd) in &ivs {
            let busy = others + cmd.iter().sum::<u64>();
            machine += e;
            for (k, a) in sets.iter_mut().enumerate() {
                // Set k may use CPUs [k * online / 3, (k + 1) * online / 3): disjoint.
                let allowed = (k as u32 + 1) * online / 3 - k as u32 * online / 3;
                let alloc = pinned.then_some(Allocation { allowed, online });
                a.add_cpu(*e, *idle_w, *dt, CpuTime { machine_busy: busy, command: cmd[k] }, alloc);
                prop_assert!((0.0..=1.0).contains(&a.share()));
                prop_assert!(a.command_idle_j <= a.idle_j * (1.0 + 1e-9) + 1e-9);
            }
        }
        let sum: f64 = sets.iter().map(Attribution::command_j).sum();
        prop_assert!(sum <= machine * (1.0 + 1e-9) + 1e-9, "{sum} > {machine}");
    }

    /// A command alone on an otherwise idle machine (all busy time is its own) gets every joule.
    #[test]
    fn alone_gets_everything(ivs in intervals(1)) {
        let mut a = Attribution::default();
        for (e, idle_w, dt, _, cmd) in &ivs {
            let t = cmd[0].max(1);
            a.add_cpu(*e, *idle_w, *dt, CpuTime { machine_busy: t, command: t }, None);
        }
        prop_assert!((a.command_j() - a.energy_j).abs() <= 1e-9 * a.energy_j.max(1.0));
    }

    /// Memory shares of disjoint sets whose resident bytes fit in the used memory never exceed
    /// the component's energy.
    #[test]
    fn memory_shares(e in 0.0f64..1e4, rss in prop::collection::vec(0u64..1u64 << 40, 1..5), extra in 0u64..1u64 << 40) {
        let used = rss.iter().sum::<u64>() + extra;
        let total: f64 = rss.iter().map(|&r| {
            let mut a = Attribution::default();
            a.add_memory(e, r, used);
            prop_assert!((0.0..=1.0).contains(&a.share()));
            Ok(a.command_j())
        }).collect::<Result<Vec<_>, TestCaseError>>()?.iter().sum();
        prop_assert!(total <= e * (1.0 + 1e-9) + 1e-9);
    }
}
