//! The measured command's share of a component that several processes share (CPU packages and
//! their subdomains, DRAM): the one place where the attribution rule lives. The machine's figure
//! stays measured (or estimated); what this module gives is *attributed*, a third label.
//!
//! The rule, per interval between two reads of the CPU-time counters:
//!
//! - a CPU component's energy is split into an **idle part**, `min(idle power x interval,
//!   energy)` with the idle power from the fitted CPU model or a measured baseline, and a
//!   **dynamic part**, the rest;
//! - the dynamic part goes to the command by its share of all busy CPU time in the interval
//!   (command CPU time / machine busy CPU time); CPU time the command reports beyond the
//!   machine's busy time in an interval (its counters are read a moment apart, and a process
//!   found late brings its earlier time with it) is carried to the next intervals, never
//!   beyond the machine's busy time, so shares stay within `[0, 1]`;
//! - the idle part goes to the command by its allocation when it is restricted (allowed CPUs /
//!   online CPUs, when fewer than all), otherwise by the same CPU-time share; an interval in
//!   which no CPU was busy keeps the previous interval's CPU-time share;
//! - a memory component's energy goes by resident-memory share (command resident bytes / used
//!   bytes, clamped to `[0, 1]`).
//!
//! Everything is fed by the adapters: no clock, no file.

use serde::Serialize;

/// CPU time over one interval, in one unit for both figures (the adapters use nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTime {
    /// Busy CPU time of the whole machine (all CPUs, not idle, not I/O wait).
    pub machine_busy: u64,
    /// CPU time of the command (its process tree, exited children included, or its cgroup).
    pub command: u64,
}

impl CpuTime {
    /// The command's share of the busy CPU time in `[0, 1]`; `None` when nothing was busy.
    pub fn share(&self) -> Option<f64> {
        if self.machine_busy == 0 && self.command == 0 {
            return None;
        }
        // The two counters come from different kernel accounting (ticks against a cgroup's
        // microseconds): the command can read slightly above the machine; it gets all of it.
        let total = self.machine_busy.max(self.command);
        Some(self.command as f64 / total as f64)
    }
}

/// The CPUs the command may run on, when it is restricted (affinity or cpuset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// CPUs the command may run on that are online.
    pub allowed: u32,
    /// Online CPUs.
    pub online: u32,
}

impl Allocation {
    /// `allowed / online` when the command is restricted to fewer than all online CPUs.
    pub fn restricted_share(&self) -> Option<f64> {
        (self.online > 0 && self.allowed < self.online)
            .then(|| self.allowed as f64 / self.online as f64)
    }
}

/// How the idle part of a CPU component was attributed over a run (the last interval's basis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IdleBasis {
    /// Allowed CPUs over online CPUs.
    #[serde(rename = "allocation")]
    Allocation,
    /// The command's share of busy CPU time.
    #[serde(rename = "cpu-time")]
    CpuTime,
}

/// Attributed energy of one component, accumulated interval by interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Attribution {
    /// The component's energy over the intervals seen, joules.
    pub energy_j: f64,
    /// Of which the idle part (zero for memory), joules.
    pub idle_j: f64,
    /// The idle part attributed to the command, joules.
    pub command_idle_j: f64,
    /// The dynamic part attributed to the command (all of it, for memory), joules.
    pub command_dynamic_j: f64,
    /// The last CPU-time share seen, for intervals in which nothing was busy.
    last_cpu_share: Option<f64>,
    /// Whether the idle part went by allocation in the last CPU interval.
    by_allocation: bool,
    /// Command CPU time not yet matched by machine busy time (see the module docs).
    carry: u64,
}

/// A non-negative, finite energy (anything else counts as 0: the fold has flagged it already).
fn joules(e: f64) -> f64 {
    if e.is_finite() && e > 0.0 {
        e
    } else {
        0.0
    }
}

impl Attribution {
    /// Adds one interval of a CPU component: `energy_j` spent over `dt_s` seconds, `idle_w` the
    /// component's idle power, `cpu` the CPU time in the interval, `allocation` the command's
    /// CPUs when known.
    pub fn add_cpu(
        &mut self,
        energy_j: f64,
        idle_w: f64,
        dt_s: f64,
        cpu: CpuTime,
        allocation: Option<Allocation>,
    ) {
        let energy = joules(energy_j);
        let idle = libm::fmin(joules(idle_w) * joules(dt_s), energy);
        let dynamic = energy - idle;
        let wanted = cpu.command.saturating_add(self.carry);
        let used = wanted.min(cpu.machine_busy);
        self.carry = wanted - used;
        let this = (cpu.machine_busy > 0).then(|| used as f64 / cpu.machine_busy as f64);
        let cpu_share = this.or(self.last_cpu_share).unwrap_or(0.0);
        if this.is_some() {
            self.last_cpu_share = this;
        }
        let alloc = allocation.and_then(|a| a.restricted_share());
        self.by_allocation = alloc.is_some();
        let idle_share = alloc.unwrap_or(cpu_share);
        self.energy_j += energy;
        self.idle_j += idle;
        self.command_idle_j += idle * idle_share;
        self.command_dynamic_j += dynamic * cpu_share;
    }

    /// Adds one interval of a memory component: `energy_j`, and the command's resident bytes
    /// against the machine's used bytes.
    pub fn add_memory(&mut self, energy_j: f64, command_bytes: u64, used_bytes: u64) {
        let energy = joules(energy_j);
        let share = if used_bytes == 0 {
            0.0
        } else {
            libm::fmin(command_bytes as f64 / used_bytes as f64, 1.0)
        };
        self.energy_j += energy;
        self.command_dynamic_j += energy * share;
    }

    /// Adds one interval of a component nested in another (a package's cores or uncore): its
    /// energy at the share its package got in the same interval.
    pub fn add_nested(&mut self, energy_j: f64, package_share: f64) {
        let energy = joules(energy_j);
        let share = libm::fmin(libm::fmax(package_share, 0.0), 1.0);
        self.energy_j += energy;
        self.command_dynamic_j += energy * if share.is_nan() { 0.0 } else { share };
    }

    /// Energy attributed to the command, joules.
    pub fn command_j(&self) -> f64 {
        self.command_idle_j + self.command_dynamic_j
    }

    /// The command's share of the energy seen, in `[0, 1]` (0 when no energy was seen).
    pub fn share(&self) -> f64 {
        if self.energy_j > 0.0 {
            libm::fmin(self.command_j() / self.energy_j, 1.0)
        } else {
            0.0
        }
    }

    /// How the idle part went in the last CPU interval.
    pub fn idle_basis(&self) -> IdleBasis {
        if self.by_allocation {
            IdleBasis::Allocation
        } else {
            IdleBasis::CpuTime
        }
    }

    /// The attribution between `earlier` (a copy taken before) and `self`: a region's part.
    pub fn since(&self, earlier: &Attribution) -> Attribution {
        Attribution {
            energy_j: libm::fmax(self.energy_j - earlier.energy_j, 0.0),
            idle_j: libm::fmax(self.idle_j - earlier.idle_j, 0.0),
            command_idle_j: libm::fmax(self.command_idle_j - earlier.command_idle_j, 0.0),
            command_dynamic_j: libm::fmax(self.command_dynamic_j - earlier.command_dynamic_j, 0.0),
            last_cpu_share: self.last_cpu_share,
            by_allocation: self.by_allocation,
            carry: self.carry,
        }
    }

    /// The share over this span of intervals, or the latest CPU-time share when the span holds
    /// no energy yet (a region shorter than one interval).
    pub fn share_or_latest(&self) -> f64 {
        if self.energy_j > 0.0 {
            self.share()
        } else {
            self.last_cpu_share.unwrap_or(0.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alone_busy_gets_everything() {
        let mut a = Attribution::default();
        let cpu = CpuTime {
            machine_busy: 100,
            command: 100,
        };
        a.add_cpu(40.0, 10.0, 1.0, cpu, None);
        assert_eq!(a.command_j(), 40.0);
        assert_eq!(a.share(), 1.0);
    }

    #[test]
    fn half_the_busy_time_gets_half() {
        let mut a = Attribution::default();
        let cpu = CpuTime {
            machine_busy: 200,
            command: 100,
        };
        a.add_cpu(40.0, 10.0, 1.0, cpu, None);
        assert_eq!(a.idle_j, 10.0);
        assert_eq!(a.command_idle_j, 5.0);
        assert_eq!(a.command_dynamic_j, 15.0);
        assert_eq!(a.share(), 0.5);
    }

    #[test]
    fn pinned_to_one_of_two_gets_all_dynamic_half_idle() {
        let mut a = Attribution::default();
        let cpu = CpuTime {
            machine_busy: 100,
            command: 100,
        };
        let alloc = Allocation {
            allowed: 1,
            online: 2,
        };
        a.add_cpu(30.0, 10.0, 1.0, cpu, Some(alloc));
        assert_eq!(a.command_idle_j, 5.0);
        assert_eq!(a.command_dynamic_j, 20.0);
        assert_eq!(a.idle_basis(), IdleBasis::Allocation);
        // Allowed on every online CPU is not restricted.
        let all = Allocation {
            allowed: 2,
            online: 2,
        };
        assert_eq!(all.restricted_share(), None);
    }

    #[test]
    fn idle_interval_keeps_the_last_share_and_hostile_values_count_zero() {
        let mut a = Attribution::default();
        a.add_cpu(
            10.0,
            5.0,
            1.0,
            CpuTime {
                machine_busy: 4,
                command: 1,
            },
            None,
        );
        a.add_cpu(5.0, 5.0, 1.0, CpuTime::default(), None);
        assert_eq!(a.command_j(), 0.25 * 15.0);
        a.add_cpu(f64::NAN, f64::INFINITY, -1.0, CpuTime::default(), None);
        assert_eq!(a.energy_j, 15.0);
        let mut m = Attribution::default();
        m.add_memory(8.0, 1, 4);
        m.add_memory(8.0, 9, 0);
        assert_eq!(m.command_j(), 2.0);
    }

    #[test]
    fn time_seen_late_is_carried_not_lost() {
        let mut a = Attribution::default();
        let seen = |m, c| CpuTime {
            machine_busy: m,
            command: c,
        };
        // The command's child is found in the second interval, with its first interval's time.
        a.add_cpu(10.0, 0.0, 1.0, seen(100, 0), None);
        a.add_cpu(10.0, 0.0, 1.0, seen(100, 150), None);
        a.add_cpu(10.0, 0.0, 1.0, seen(100, 50), None);
        assert_eq!(a.command_j(), 20.0);
        assert_eq!(a.carry, 0);
    }

    #[test]
    fn region_part_is_the_difference() {
        let mut a = Attribution::default();
        let busy = CpuTime {
            machine_busy: 2,
            command: 1,
        };
        a.add_cpu(10.0, 0.0, 1.0, busy, None);
        let before = a;
        a.add_cpu(10.0, 0.0, 1.0, busy, None);
        let r = a.since(&before);
        assert_eq!(r.energy_j, 10.0);
        assert_eq!(r.command_j(), 5.0);
        assert_eq!(
            Attribution::default()
                .since(&Attribution::default())
                .share_or_latest(),
            0.0
        );
    }
}
