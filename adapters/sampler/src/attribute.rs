//! The I/O side of the attribution: reads the machine's and the command's CPU time and memory
//! (its process tree, or its cgroup v2 group) every [`ATTRIBUTION_PERIOD_NS`], and feeds each
//! interval, with the energy the session counted for every shared component, to the rule in
//! [`ea2p_core::attribution`]. The reads happen at the CPU model's rate, not at every RAPL read.

use std::path::{Path, PathBuf};

use ea2p_core::attribution::{Allocation, Attribution, CpuTime};
use ea2p_core::source::{Component, SourceInfo};
use ea2p_core::units::{secs, Nanos};
use ea2p_linux::cgroup::{self, Cgroup};
use ea2p_linux::procfs::{self, MachineMeter};
use serde::Serialize;

/// How often the process and cgroup counters are read (the CPU model's rate: `/proc/stat` moves
/// in 10 ms ticks, so shorter intervals would mostly measure rounding).
pub const ATTRIBUTION_PERIOD_NS: Nanos = 100_000_000;

/// Reads per second: used memory and the command's allowed CPUs, which move slowly, are read
/// once in this many steps (each procfs file costs ~20 us on a small VM).
const PER_SECOND: u32 = (1_000_000_000 / ATTRIBUTION_PERIOD_NS) as u32;

/// Whose share `ea2p run` reports (`--attribute`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AttributeMode {
    /// The command's process tree (children that exited included).
    #[default]
    Tree,
    /// The cgroup v2 group the command runs in.
    OwnCgroup,
    /// A given cgroup v2 group (path under the hierarchy).
    Cgroup(String),
    /// No attribution.
    None,
}

impl std::str::FromStr for AttributeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "tree" => Ok(AttributeMode::Tree),
            "cgroup" => Ok(AttributeMode::OwnCgroup),
            "none" => Ok(AttributeMode::None),
            s => match s.strip_prefix("cgroup:") {
                Some(p) if !p.trim().is_empty() => Ok(AttributeMode::Cgroup(p.trim().to_string())),
                _ => Err(format!(
                    "expected tree, cgroup, cgroup:PATH or none, found {s:?}"
                )),
            },
        }
    }
}

/// Where the idle power of the CPU components comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum IdlePower {
    /// The fitted CPU model at zero load (all packages), named.
    Model {
        /// Watts, all packages.
        watts: f64,
        /// The model, in words.
        name: String,
    },
    /// Measured before the command started: average watts per source (profile order).
    Baseline {
        /// Seconds measured.
        seconds: f64,
        /// Watts per source.
        watts: Vec<f64>,
    },
}

/// What the command's figures are read from.
#[derive(Debug)]
enum Who {
    Tree(Box<procfs::TreeMeter>),
    Cgroup(Box<Cgroup>),
}

/// How each source is attributed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    Cpu { idle_w: f64 },
    Nested { package: usize },
    Memory,
    Skip,
}

/// The latest read of the counters.
#[derive(Debug, Clone, Copy)]
struct Mark {
    t: Nanos,
    pid: u32,
    machine_busy_ns: u64,
    command_ns: u64,
}

/// Reads the counters and keeps the per-source accumulators (the pipeline holds the latter so
/// that region markers can copy them).
#[derive(Debug)]
pub struct Attributor {
    who: Who,
    proc_root: PathBuf,
    machine: MachineMeter,
    online: Option<u32>,
    rules: Vec<Rule>,
    last: Option<(Mark, Vec<f64>)>,
    method: String,
    idle_from: String,
    note: Option<String>,
    covered_ns: Nanos,
    reads: u32,
    /// The command's allowed CPUs, read once a second.
    allowed: Option<u32>,
}

/// One read of the counters, taken without the pipeline's lock.
#[derive(Debug)]
pub struct Counters {
    mark: Mark,
    used_bytes: u64,
    /// `None` for a cgroup without the memory controller: memory is then not attributed.
    command_bytes: Option<u64>,
    allocation: Option<Allocation>,
}

impl Attributor {
    /// An attributor for `mode` over the sources `infos`, or `None` for `--attribute none`; a
    /// cgroup that cannot be used falls back to the process tree, with a note saying why.
    pub fn new(
        mode: &AttributeMode,
        proc_root: &Path,
        sysfs_root: &Path,
        infos: &[SourceInfo],
        idle: &IdlePower,
        pid: u32,
    ) -> Option<Attributor> {
        let (who, method, note) = match mode {
            AttributeMode::None => return None,
            AttributeMode::Tree => (tree(proc_root), "process tree".to_string(), None),
            AttributeMode::OwnCgroup | AttributeMode::Cgroup(_) => {
                let opened = match mode {
                    AttributeMode::Cgroup(p) => Cgroup::open(sysfs_root, p),
                    _ => cgroup::process_cgroup(proc_root, pid)
                        .and_then(|p| Cgroup::open(sysfs_root, &p)),
                };
                match opened {
                    Ok(g) => {
                        let m = format!("cgroup {}", g.name);
                        (Who::Cgroup(Box::new(g)), m, None)
                    }
                    Err(e) => (
                        tree(proc_root),
                        "process tree".to_string(),
                        Some(format!("cgroup attribution not available ({e}): attributed by the process tree instead")),
                    ),
                }
            }
        };
        let (idle_from, rules) = idle_rules(idle, infos);
        Some(Attributor {
            who,
            proc_root: proc_root.to_path_buf(),
            machine: MachineMeter::new(proc_root, PER_SECOND),
            reads: 0,
            allowed: None,
            online: procfs::online_cpus(sysfs_root).ok(),
            rules,
            last: None,
            method,
            idle_from,
            note,
            covered_ns: 0,
        })
    }

    /// Uses another idle power (a measured baseline) from the next interval on.
    pub fn set_idle(&mut self, idle: &IdlePower, infos: &[SourceInfo]) {
        (self.idle_from, self.rules) = idle_rules(idle, infos);
    }

    /// Why the asked-for mode was not used, if it was not.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Reads the machine's and the command's counters (`None` when one cannot be read, e.g. the
    /// command just exited: the interval is skipped, the shares come from the others).
    pub fn read(&mut self, t: Nanos, pid: u32) -> Option<Counters> {
        let m = self.machine.read().ok()?;
        let pid_changed = self.last.as_ref().is_some_and(|(l, _)| l.pid != pid);
        if pid_changed {
            self.reads = 0;
        }
        let (command_ns, command_bytes, allowed) = match &mut self.who {
            Who::Tree(meter) => {
                let u = meter.read(pid).ok()?;
                if u.processes == 0 {
                    return None;
                }
                if self.reads % PER_SECOND == 0 {
                    self.allowed = procfs::allowed_cpus(&self.proc_root, pid).ok();
                }
                let allowed = self.allowed;
                (
                    procfs::ticks_to_ns(u.cpu_ticks),
                    Some(u.rss_pages.saturating_mul(page_size())),
                    allowed,
                )
            }
            Who::Cgroup(g) => {
                let u = g.usage().ok()?;
                if self.reads % PER_SECOND == 0 {
                    self.allowed = g.cpus();
                }
                let cpus = self.allowed;
                (u.cpu_ns, u.memory_bytes, cpus)
            }
        };
        self.reads = self.reads.wrapping_add(1);
        let allocation = match (allowed, self.online) {
            (Some(a), Some(o)) => Some(Allocation {
                allowed: a.min(o),
                online: o,
            }),
            _ => None,
        };
        Some(Counters {
            mark: Mark {
                t,
                pid,
                machine_busy_ns: m.busy_ns,
                command_ns,
            },
            used_bytes: m.used_bytes,
            command_bytes,
            allocation,
        })
    }

    /// Feeds the interval since the previous read: `energies` are the session's live totals per
    /// source (profile order), `acc` the accumulators.
    pub fn step(&mut self, c: Counters, energies: &[f64], acc: &mut [Attribution]) {
        let prev = self.last.replace((c.mark, energies.to_vec()));
        let Some((p, e0)) = prev else { return };
        // A new root (the command, spawned after the monitor started): what was attributed to
        // the monitor's own process before does not count; a fresh start.
        if p.pid != c.mark.pid {
            acc.fill(Attribution::default());
            self.covered_ns = 0;
            return;
        }
        if c.mark.t <= p.t {
            return;
        }
        let dt = secs(c.mark.t - p.t);
        self.covered_ns += c.mark.t - p.t;
        let cpu = CpuTime {
            machine_busy: c.mark.machine_busy_ns.saturating_sub(p.machine_busy_ns),
            command: c.mark.command_ns.saturating_sub(p.command_ns),
        };
        let de =
            |k: usize| energies.get(k).copied().unwrap_or(0.0) - e0.get(k).copied().unwrap_or(0.0);
        let mut package_share = vec![None; acc.len()];
        for (k, rule) in self.rules.iter().enumerate() {
            let Some(a) = acc.get_mut(k) else { continue };
            match *rule {
                Rule::Cpu { idle_w } => {
                    let before = *a;
                    a.add_cpu(de(k), idle_w, dt, cpu, c.allocation);
                    package_share[k] = Some(a.since(&before).share_or_latest());
                }
                Rule::Memory => {
                    if let Some(bytes) = c.command_bytes {
                        a.add_memory(de(k), bytes, c.used_bytes);
                    }
                }
                Rule::Nested { .. } | Rule::Skip => {}
            }
        }
        for (k, rule) in self.rules.iter().enumerate() {
            if let (Rule::Nested { package }, Some(a)) = (*rule, acc.get_mut(k)) {
                let share = package_share
                    .get(package)
                    .copied()
                    .flatten()
                    .unwrap_or(cpu.share().unwrap_or(0.0));
                a.add_nested(de(k), share);
            }
        }
    }

    /// The attributed figures of every source, scaled to the energy the fold counted for it
    /// (the intervals seen cover the run but its first and last fraction of a period).
    pub fn summarise(
        &self,
        acc: &[Attribution],
        energies: &[f64],
    ) -> Vec<Option<AttributedEnergy>> {
        self.rules
            .iter()
            .zip(acc)
            .zip(energies)
            .map(|((rule, a), &e)| {
                let method = match rule {
                    Rule::Skip => return None,
                    Rule::Cpu { .. } => "cpu-time",
                    Rule::Nested { .. } => "package share",
                    Rule::Memory => "resident memory",
                };
                if a.energy_j <= 0.0 {
                    return None;
                }
                let scale = e / a.energy_j;
                Some(AttributedEnergy {
                    kind: "attributed",
                    energy_j: a.share() * e,
                    share: a.share(),
                    method,
                    idle_basis: matches!(rule, Rule::Cpu { .. }).then(|| a.idle_basis()),
                    idle_j: a.idle_j * scale,
                    dynamic_j: (a.energy_j - a.idle_j) * scale,
                    command_idle_j: a.command_idle_j * scale,
                    command_dynamic_j: a.command_dynamic_j * scale,
                })
            })
            .collect()
    }

    /// The run-wide description for the summary.
    pub fn info(&self) -> AttributionInfo {
        AttributionInfo {
            of: self.method.clone(),
            idle_power_from: self.idle_from.clone(),
            note: self.note.clone(),
            covered_s: secs(self.covered_ns),
        }
    }
}

/// The idle power's description and the rule of every source.
fn idle_rules(idle: &IdlePower, infos: &[SourceInfo]) -> (String, Vec<Rule>) {
    let packages = infos
        .iter()
        .filter(|i| i.component == Component::CpuPackage)
        .count()
        .max(1);
    match idle {
        IdlePower::Model { watts, name } => (
            format!("fitted CPU model at idle ({watts:.1} W: {name})"),
            rules(infos, |_| watts / packages as f64),
        ),
        IdlePower::Baseline { seconds, watts } => (
            format!("baseline measured for {seconds:.1} s before the command"),
            rules(infos, |k| watts.get(k).copied().unwrap_or(0.0)),
        ),
    }
}

fn rules(infos: &[SourceInfo], idle_w: impl Fn(usize) -> f64) -> Vec<Rule> {
    infos
        .iter()
        .enumerate()
        .map(|(k, i)| match i.component {
            Component::CpuPackage => Rule::Cpu { idle_w: idle_w(k) },
            Component::Platform => Rule::Cpu { idle_w: 0.0 },
            Component::CpuCores | Component::Uncore => infos
                .iter()
                .position(|p| p.component == Component::CpuPackage && p.index == i.index)
                .map_or(Rule::Skip, |package| Rule::Nested { package }),
            Component::Dram => Rule::Memory,
            // A board rail names no part of the machine: whose it is cannot be said.
            Component::Gpu | Component::Rail => Rule::Skip,
        })
        .collect()
}

/// The process tree's meter: a scan of `/proc` for new descendants once a second at most.
fn tree(proc_root: &Path) -> Who {
    Who::Tree(Box::new(procfs::TreeMeter::new(proc_root, PER_SECOND)))
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; a failure returns -1, replaced by 4 KiB.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// The command's part of one component: attributed, neither measured nor estimated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributedEnergy {
    /// Always `attributed`.
    pub kind: &'static str,
    /// Joules attributed to the command (`share` x the component's energy).
    pub energy_j: f64,
    /// In `[0, 1]`.
    pub share: f64,
    /// `cpu-time` (idle and dynamic parts), `package share` (a package's cores or uncore, at
    /// their package's share), `resident memory`.
    pub method: &'static str,
    /// For CPU components: how the idle part went (`allocation` or `cpu-time`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_basis: Option<ea2p_core::attribution::IdleBasis>,
    /// The component's idle part, joules (0 for memory and nested components).
    pub idle_j: f64,
    /// The component's dynamic part, joules.
    pub dynamic_j: f64,
    /// Of the idle part, the command's, joules.
    pub command_idle_j: f64,
    /// Of the dynamic part, the command's, joules.
    pub command_dynamic_j: f64,
}

/// How the attribution of a run was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionInfo {
    /// Whose share: `process tree` or `cgroup PATH`.
    pub of: String,
    /// Where the CPU components' idle power came from.
    pub idle_power_from: String,
    /// Why the asked-for cgroup was not used, if it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Seconds covered by the intervals the shares were computed over.
    pub covered_s: f64,
}
