//! What the estimators and the attribution need from `/proc`: system CPU utilisation
//! (`/proc/stat`), installed and used memory (`/proc/meminfo`), and the CPU time and resident
//! memory of a process tree (`/proc/PID/stat`, `/proc/PID/task/*/children` or a scan of
//! `/proc/*/stat` for parents), all read under a root directory given by the caller.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a procfs file could not be used: which file, and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The file's content is not what the kernel writes.
    #[error("{path}: {what}")]
    Malformed {
        /// The file.
        path: String,
        /// What was expected.
        what: String,
    },
}

fn read(path: &Path) -> Result<String, ProcError> {
    crate::bounded::read_to_string(path, crate::bounded::PROC_FILE_MAX).map_err(|source| {
        ProcError::Io {
            path: path.display().to_string(),
            source,
        }
    })
}

fn malformed(path: &Path, what: impl Into<String>) -> ProcError {
    ProcError::Malformed {
        path: path.display().to_string(),
        what: what.into(),
    }
}

/// Aggregate CPU times from the first line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Ticks spent doing anything but idling.
    pub busy: u64,
    /// Ticks idle or waiting for I/O.
    pub idle: u64,
}

impl CpuTimes {
    /// Utilisation in `[0, 1]` between two readings (`None` if no tick elapsed).
    pub fn utilisation_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let busy = self.busy.saturating_sub(earlier.busy);
        let idle = self.idle.saturating_sub(earlier.idle);
        let total = busy.saturating_add(idle);
        (total > 0).then(|| busy as f64 / total as f64)
    }
}

/// Parses the `cpu ` line of `/proc/stat`: user nice system idle iowait irq softirq steal
/// (guest time is already inside user and nice, so it is not added again).
pub fn parse_stat(text: &str, path: &Path) -> Result<CpuTimes, ProcError> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| malformed(path, "expected a line starting with \"cpu \""))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| malformed(path, "expected integers after \"cpu\""))?;
    if fields.len() < 4 {
        return Err(malformed(
            path,
            "expected at least 4 counters after \"cpu\"",
        ));
    }
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    Ok(CpuTimes {
        busy: [0, 1, 2, 5, 6, 7]
            .iter()
            .fold(0u64, |a, &i| a.saturating_add(get(i))),
        idle: get(3).saturating_add(get(4)),
    })
}

/// Reads `ROOT/stat`.
pub fn cpu_times(proc_root: &Path) -> Result<CpuTimes, ProcError> {
    let path = proc_root.join("stat");
    parse_stat(&read(&path)?, &path)
}

/// The machine's CPU utilisation between successive reads of `ROOT/stat`: one small file per
/// read, what both estimators need (the RAM model no longer walks `/proc/*/stat`).
#[derive(Debug, Clone)]
pub struct UtilisationMeter {
    path: PathBuf,
    last: Option<CpuTimes>,
    buf: String,
}

impl UtilisationMeter {
    /// A meter of `ROOT/stat`; nothing is read yet.
    pub fn new(proc_root: &Path) -> Self {
        UtilisationMeter {
            path: proc_root.join("stat"),
            last: None,
            buf: String::new(),
        }
    }

    /// Reads the counters; returns the utilisation in `[0, 1]` since the previous read (`None` on
    /// the first read or when no tick elapsed).
    pub fn read(&mut self) -> Result<Option<f64>, ProcError> {
        use std::io::Read;
        self.buf.clear();
        // Bounded: the `cpu ` line is the first; 64 KiB holds it on any machine.
        crate::bounded::open_regular(&self.path)
            .and_then(|f| f.take(64 * 1024).read_to_string(&mut self.buf))
            .map_err(|source| ProcError::Io {
                path: self.path.display().to_string(),
                source,
            })?;
        let t = parse_stat(&self.buf, &self.path)?;
        let u = self.last.and_then(|l| t.utilisation_since(&l));
        self.last = Some(t);
        Ok(u)
    }
}

/// Memory figures from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemTotal`.
    pub total_bytes: u64,
    /// `MemAvailable` (or `MemFree` on kernels older than 3.14).
    pub available_bytes: u64,
}

/// Parses `/proc/meminfo` (values in kB).
pub fn parse_meminfo(text: &str, path: &Path) -> Result<MemInfo, ProcError> {
    let field = |key: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    let total = field("MemTotal").ok_or_else(|| malformed(path, "expected a MemTotal line"))?;
    let available = field("MemAvailable")
        .or_else(|| field("MemFree"))
        .ok_or_else(|| malformed(path, "expected a MemAvailable or MemFree line"))?;
    Ok(MemInfo {
        total_bytes: total.saturating_mul(1024),
        available_bytes: available.saturating_mul(1024),
    })
}

/// Reads `ROOT/meminfo`.
pub fn meminfo(proc_root: &Path) -> Result<MemInfo, ProcError> {
    let path = proc_root.join("meminfo");
    parse_meminfo(&read(&path)?, &path)
}

/// The fields of `/proc/PID/stat` that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The process id.
    pub pid: u32,
    /// Its parent.
    pub ppid: u32,
    /// User + system CPU time, in clock ticks, of the process itself.
    pub cpu_ticks: u64,
    /// User + system CPU time of its waited-for children (`cutime + cstime`): the time of
    /// descendants that already exited, so that short-lived children are not lost.
    pub children_cpu_ticks: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/PID/stat`. The command name (field 2) may contain spaces and parentheses, so the
/// fields are counted from the last `)`.
pub fn parse_pid_stat(text: &str, path: &Path) -> Result<ProcStat, ProcError> {
    let open = text
        .find('(')
        .ok_or_else(|| malformed(path, "expected \"PID (comm) ...\""))?;
    let close = text
        .rfind(')')
        .ok_or_else(|| malformed(path, "expected \"PID (comm) ...\""))?;
    let pid = text[..open]
        .trim()
        .parse()
        .map_err(|_| malformed(path, "expected the pid as the first field"))?;
    // After ")": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17) ... rss(24).
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let num = |field: usize| -> Result<u64, ProcError> {
        rest.get(field - 3)
            .and_then(|s| s.parse::<i64>().ok())
            .map(|v| v.max(0) as u64)
            .ok_or_else(|| malformed(path, format!("expected an integer in field {field}")))
    };
    Ok(ProcStat {
        pid,
        ppid: num(4)? as u32,
        cpu_ticks: num(14)?.saturating_add(num(15)?),
        children_cpu_ticks: num(16)?.saturating_add(num(17)?),
        rss_pages: num(24)?,
    })
}

/// CPU time and memory of a process and all its live descendants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeUsage {
    /// Processes found in the tree.
    pub processes: u32,
    /// CPU ticks of the live processes plus those of their exited, waited-for children.
    pub cpu_ticks: u64,
    /// Sum of the live processes' resident sets, in pages.
    pub rss_pages: u64,
}

/// Sums the usage of `root_pid` and every live descendant, found by scanning `ROOT/[0-9]*/stat`
/// for parent links (processes that vanish during the scan are skipped: they raced with exit).
pub fn tree_usage(proc_root: &Path, root_pid: u32) -> Result<TreeUsage, ProcError> {
    let all = scan(proc_root)?;
    let mut usage = TreeUsage::default();
    for p in descendants(&all, root_pid) {
        usage.processes += 1;
        usage.cpu_ticks = usage
            .cpu_ticks
            .saturating_add(p.cpu_ticks.saturating_add(p.children_cpu_ticks));
        usage.rss_pages = usage.rss_pages.saturating_add(p.rss_pages);
    }
    Ok(usage)
}

/// The pids of `root_pid` and every live descendant (sorted), e.g. to tell the measured
/// processes from others on a shared GPU.
pub fn tree_pids(proc_root: &Path, root_pid: u32) -> Result<Vec<u32>, ProcError> {
    let all = scan(proc_root)?;
    let mut pids: Vec<u32> = descendants(&all, root_pid).map(|p| p.pid).collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Every readable `ROOT/[0-9]*/stat`, sorted by pid.
fn scan(proc_root: &Path) -> Result<Vec<ProcStat>, ProcError> {
    let entries = fs::read_dir(proc_root).map_err(|source| ProcError::Io {
        path: proc_root.display().to_string(),
        source,
    })?;
    let mut all: Vec<ProcStat> = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let path: PathBuf = entry.path().join("stat");
        match crate::bounded::read_to_string(&path, crate::bounded::SYSFS_ATTR_MAX) {
            Ok(text) => {
                let st = parse_pid_stat(&text, &path)?;
                if st.pid == pid {
                    all.push(st);
                }
            }
            Err(_) => continue,
        }
    }
    all.sort_by_key(|p| p.pid);
    Ok(all)
}

/// `root` and its descendants among `all` (sorted by pid), breadth first.
fn descendants(all: &[ProcStat], root: u32) -> impl Iterator<Item = ProcStat> + '_ {
    let mut in_tree = vec![root];
    let mut i = 0;
    while i < in_tree.len() {
        let parent = in_tree[i];
        in_tree.extend(
            all.iter()
                .filter(|p| p.ppid == parent && p.pid != parent)
                .map(|p| p.pid),
        );
        i += 1;
    }
    in_tree.into_iter().filter_map(|pid| {
        all.binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .map(|k| all[k])
    })
}

/// Clock ticks per second of `/proc/stat` and `/proc/PID/stat` (`USER_HZ`): the kernel exports
/// a fixed 100 to user space on every architecture Linux runs on today.
pub const USER_HZ: u64 = 100;

/// Nanoseconds in `ticks` clock ticks.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    ticks.saturating_mul(1_000_000_000 / USER_HZ)
}

/// Reads at most `limit` bytes of `path` into `buf` (cleared first): procfs and sysfs files are
/// small, a hostile root may hold a FIFO or /dev/zero.
fn read_bounded(path: &Path, buf: &mut String, limit: u64) -> Result<(), ProcError> {
    use std::io::Read;
    buf.clear();
    fs::File::open(path)
        .and_then(|f| f.take(limit).read_to_string(buf))
        .map(|_| ())
        .map_err(|source| ProcError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// Usage of `root_pid` and its live descendants, found through
/// `ROOT/PID/task/TID/children` (a few small files for a small tree, where a scan of `/proc`
/// reads every process's); falls back to [`tree_usage`] where the kernel lacks the children
/// files (CONFIG_PROC_CHILDREN).
pub fn tree_usage_walk(proc_root: &Path, root_pid: u32) -> Result<TreeUsage, ProcError> {
    let task = proc_root.join(root_pid.to_string()).join("task");
    let first_children = task.join(root_pid.to_string()).join("children");
    if !first_children.exists() {
        return tree_usage(proc_root, root_pid);
    }
    let mut usage = TreeUsage::default();
    let mut buf = String::new();
    let mut todo = vec![root_pid];
    // A tree cannot be larger than the kernel's pid space; a hostile root cannot loop us.
    let mut seen = std::collections::BTreeSet::new();
    while let Some(pid) = todo.pop() {
        if !seen.insert(pid) || seen.len() > 1 << 22 {
            continue;
        }
        let dir = proc_root.join(pid.to_string());
        let stat = dir.join("stat");
        if read_bounded(&stat, &mut buf, 64 * 1024).is_err() {
            // Raced with its exit; its time is in its parent's cutime once reaped.
            continue;
        }
        let st = parse_pid_stat(&buf, &stat)?;
        usage.processes += 1;
        usage.cpu_ticks = usage
            .cpu_ticks
            .saturating_add(st.cpu_ticks.saturating_add(st.children_cpu_ticks));
        usage.rss_pages = usage.rss_pages.saturating_add(st.rss_pages);
        let Ok(tasks) = fs::read_dir(dir.join("task")) else {
            continue;
        };
        for t in tasks.filter_map(Result::ok) {
            if read_bounded(&t.path().join("children"), &mut buf, 1 << 20).is_ok() {
                todo.extend(buf.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
            }
        }
    }
    Ok(usage)
}

/// The usage of a process tree read often and cheaply: where the kernel has no children files,
/// the tree's pids are found by a scan of `/proc` at reads 0, 1, 2, 4, 8... below
/// `rescan_every`, then once every `rescan_every` reads, and only their own `stat` files are read in between. A child started between scans is counted from
/// the scan that finds it (its CPU time since it started included: shifted, not lost); one that
/// exits is counted in its parent's `cutime` once reaped.
#[derive(Debug, Clone)]
pub struct TreeMeter {
    proc_root: PathBuf,
    root: u32,
    pids: Vec<u32>,
    reads: u32,
    rescan_every: u32,
    walk: Option<bool>,
    buf: String,
    /// Pids found outside the tree at an earlier scan, still present: not read again (a process
    /// joins a tree only by being born in it, with a new pid).
    outside: std::collections::BTreeSet<u32>,
}

impl TreeMeter {
    /// Finds the tree's pids: lists `ROOT`, reads the `stat` of pids not seen before, and
    /// follows their parents into the tree.
    fn rescan(&mut self) -> Result<(), ProcError> {
        let entries = fs::read_dir(&self.proc_root).map_err(|source| ProcError::Io {
            path: self.proc_root.display().to_string(),
            source,
        })?;
        let mut present: Vec<u32> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
            .collect();
        present.sort_unstable();
        self.outside.retain(|p| present.binary_search(p).is_ok());
        let mut tree: std::collections::BTreeSet<u32> = self
            .pids
            .iter()
            .copied()
            .filter(|p| present.binary_search(p).is_ok())
            .collect();
        tree.insert(self.root);
        let mut pending: Vec<(u32, u32)> = Vec::new();
        for &pid in &present {
            if tree.contains(&pid) || self.outside.contains(&pid) {
                continue;
            }
            let path = self.proc_root.join(pid.to_string()).join("stat");
            if read_bounded(&path, &mut self.buf, 64 * 1024).is_err() {
                continue;
            }
            let st = parse_pid_stat(&self.buf, &path)?;
            if st.pid == pid {
                pending.push((pid, st.ppid));
            }
        }
        // Parents before children is not guaranteed (pids wrap): until nothing moves.
        loop {
            let before = pending.len();
            pending.retain(|&(pid, ppid)| {
                if pid != ppid && tree.contains(&ppid) {
                    tree.insert(pid);
                    false
                } else {
                    true
                }
            });
            if pending.len() == before {
                break;
            }
        }
        self.outside.extend(pending.iter().map(|&(pid, _)| pid));
        self.pids = tree
            .into_iter()
            .filter(|p| present.binary_search(p).is_ok())
            .collect();
        Ok(())
    }

    /// A meter of the tree under `ROOT`, rescanning every `rescan_every` reads (at least 1).
    pub fn new(proc_root: &Path, rescan_every: u32) -> Self {
        TreeMeter {
            proc_root: proc_root.to_path_buf(),
            root: 0,
            pids: Vec::new(),
            reads: 0,
            rescan_every: rescan_every.max(1),
            walk: None,
            buf: String::new(),
            outside: Default::default(),
        }
    }

    /// The usage of `root_pid`'s tree now.
    pub fn read(&mut self, root_pid: u32) -> Result<TreeUsage, ProcError> {
        let walk = *self.walk.get_or_insert_with(|| {
            let me = std::process::id().to_string();
            let children = Path::new(&me).join("task").join(&me).join("children");
            self.proc_root.join("self/task").exists() && self.proc_root.join(&children).exists()
        });
        if walk {
            return tree_usage_walk(&self.proc_root, root_pid);
        }
        if root_pid != self.root {
            self.root = root_pid;
            self.reads = 0;
            self.pids.clear();
            self.outside.clear();
        }
        // At reads 0, 1, 2, 4, 8... up to the period (a command starts its workers early), then
        // once a period.
        let early = self.reads < self.rescan_every && self.reads & self.reads.wrapping_sub(1) == 0;
        if early || self.reads % self.rescan_every == 0 {
            self.rescan()?;
        }
        self.reads += 1;
        let mut usage = TreeUsage::default();
        let mut k = 0;
        while k < self.pids.len() {
            let path = self.proc_root.join(self.pids[k].to_string()).join("stat");
            if read_bounded(&path, &mut self.buf, 64 * 1024).is_err() {
                self.pids.swap_remove(k);
                continue;
            }
            let st = parse_pid_stat(&self.buf, &path)?;
            usage.processes += 1;
            usage.cpu_ticks = usage
                .cpu_ticks
                .saturating_add(st.cpu_ticks.saturating_add(st.children_cpu_ticks));
            usage.rss_pages = usage.rss_pages.saturating_add(st.rss_pages);
            k += 1;
        }
        Ok(usage)
    }
}

/// Counts the CPUs of a kernel CPU list (`0-3,8,10-11`); `None` if it is not one.
pub fn parse_cpu_list(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    let mut n: u32 = 0;
    for part in text.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let a = part.trim().parse::<u32>().ok()?;
                (a, a)
            }
        };
        if b < a {
            return None;
        }
        n = n.checked_add((b - a).checked_add(1)?)?;
    }
    Some(n)
}

/// The CPUs `pid` may run on (`Cpus_allowed_list` of `ROOT/PID/status`), counted.
pub fn allowed_cpus(proc_root: &Path, pid: u32) -> Result<u32, ProcError> {
    let path = proc_root.join(pid.to_string()).join("status");
    let mut buf = String::new();
    read_bounded(&path, &mut buf, 64 * 1024)?;
    buf.lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(parse_cpu_list)
        .ok_or_else(|| malformed(&path, "expected a line \"Cpus_allowed_list: 0-3\""))
}

/// The online CPUs (`SYSFS/devices/system/cpu/online`), counted.
pub fn online_cpus(sysfs_root: &Path) -> Result<u32, ProcError> {
    let path = sysfs_root.join("devices/system/cpu/online");
    let mut buf = String::new();
    read_bounded(&path, &mut buf, 64 * 1024)?;
    parse_cpu_list(&buf).ok_or_else(|| malformed(&path, "expected a CPU list like 0-3,8"))
}

/// The counters the attribution reads at each step, with their buffers kept across reads:
/// `stat` at every read, `meminfo` (which moves slowly) at one read in `memory_every`.
#[derive(Debug, Clone)]
pub struct MachineMeter {
    stat: PathBuf,
    meminfo: PathBuf,
    buf: String,
    reads: u32,
    memory_every: u32,
    used_bytes: u64,
}

/// One read of the machine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineReading {
    /// Busy time of all CPUs since boot, nanoseconds.
    pub busy_ns: u64,
    /// Used memory (`MemTotal - MemAvailable`), bytes.
    pub used_bytes: u64,
}

impl MachineMeter {
    /// A meter of `ROOT/stat` and `ROOT/meminfo`, the latter read once in `memory_every` reads
    /// (at least 1).
    pub fn new(proc_root: &Path, memory_every: u32) -> Self {
        MachineMeter {
            stat: proc_root.join("stat"),
            meminfo: proc_root.join("meminfo"),
            buf: String::new(),
            reads: 0,
            memory_every: memory_every.max(1),
            used_bytes: 0,
        }
    }

    /// Reads `stat`, and `meminfo` when due (bounded); the used memory is the latest read.
    pub fn read(&mut self) -> Result<MachineReading, ProcError> {
        read_bounded(&self.stat, &mut self.buf, 64 * 1024)?;
        let t = parse_stat(&self.buf, &self.stat)?;
        if self.reads % self.memory_every == 0 {
            read_bounded(&self.meminfo, &mut self.buf, 64 * 1024)?;
            let m = parse_meminfo(&self.buf, &self.meminfo)?;
            self.used_bytes = m.total_bytes.saturating_sub(m.available_bytes);
        }
        self.reads = self.reads.wrapping_add(1);
        Ok(MachineReading {
            busy_ns: ticks_to_ns(t.busy),
            used_bytes: self.used_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line() {
        let p = Path::new("stat");
        let t = parse_stat("cpu  100 5 20 800 10 1 2 3 50 0\ncpu0 1 2 3 4\n", p).unwrap();
        assert_eq!(
            t,
            CpuTimes {
                busy: 131,
                idle: 810
            }
        );
        let later = CpuTimes {
            busy: 231,
            idle: 910,
        };
        assert_eq!(later.utilisation_since(&t), Some(0.5));
        assert_eq!(t.utilisation_since(&t), None);
        assert!(parse_stat("intr 1 2\n", p)
            .unwrap_err()
            .to_string()
            .contains("\"cpu \""));
        assert!(parse_stat("cpu  a b c d\n", p).is_err());
    }

    #[test]
    fn utilisation_meter() {
        let dir = std::env::temp_dir().join(format!("ea2p-util-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut m = UtilisationMeter::new(&dir);
        assert!(m.read().unwrap_err().to_string().contains("stat"));
        fs::write(dir.join("stat"), "cpu  100 0 0 900 0 0 0 0\n").unwrap();
        assert_eq!(m.read().unwrap(), None);
        fs::write(dir.join("stat"), "cpu  175 0 0 925 0 0 0 0\n").unwrap();
        assert_eq!(m.read().unwrap(), Some(0.75));
        fs::write(dir.join("stat"), "garbage\n").unwrap();
        assert!(m.read().is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn huge_values_saturate() {
        // Found by the sysfs_procfs_parsers fuzz target: kB x 1024 overflowed.
        let p = Path::new("meminfo");
        let m = parse_meminfo("MemTotal: 18446744073709551615 kB\nMemFree: 1 kB\n", p).unwrap();
        assert_eq!(m.total_bytes, u64::MAX);
        let t = parse_stat("cpu  18446744073709551615 1 1 1\n", p).unwrap();
        assert_eq!(t.busy, u64::MAX);
    }

    #[test]
    fn meminfo_fields() {
        let p = Path::new("meminfo");
        let m = parse_meminfo(
            "MemTotal:       16000 kB\nMemFree: 1000 kB\nMemAvailable:    8000 kB\n",
            p,
        )
        .unwrap();
        assert_eq!(m.total_bytes, 16000 * 1024);
        assert_eq!(m.available_bytes, 8000 * 1024);
        let old = parse_meminfo("MemTotal: 10 kB\nMemFree: 4 kB\n", p).unwrap();
        assert_eq!(old.available_bytes, 4096);
        assert!(parse_meminfo("MemFree: 4 kB\n", p).is_err());
    }

    #[test]
    fn pid_stat_with_awkward_command_name() {
        let p = Path::new("1234/stat");
        let text = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    250 50 7 3 20 0 1 0 100 1000000 321 18446744073709551615\n";
        let st = parse_pid_stat(text, p).unwrap();
        assert_eq!(st.pid, 1234);
        assert_eq!(st.ppid, 1);
        assert_eq!(st.cpu_ticks, 300);
        assert_eq!(st.children_cpu_ticks, 10);
        assert_eq!(st.rss_pages, 321);
        assert!(parse_pid_stat("1234 (x) S 1\n", p)
            .unwrap_err()
            .to_string()
            .contains("field"));
    }
    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n"), Some(7));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list(""), Some(0));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
        assert_eq!(parse_cpu_list("0-4294967295"), None);
    }

    #[test]
    fn walk_agrees_with_scan() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let proc_ = |pid: u32, ppid: u32, ticks: u64, children: &str| {
            let d = r.join(pid.to_string());
            fs::create_dir_all(d.join("task").join(pid.to_string())).unwrap();
            fs::write(
                d.join("stat"),
                format!("{pid} (p) S {ppid} 0 0 0 -1 0 0 0 0 0 {ticks} 0 2 0 20 0 1 0 0 0 10\n"),
            )
            .unwrap();
            fs::write(
                d.join("task").join(pid.to_string()).join("children"),
                children,
            )
            .unwrap();
        };
        proc_(10, 1, 5, "11 12 ");
        proc_(11, 10, 7, "13");
        proc_(12, 10, 1, "");
        proc_(13, 11, 2, "");
        proc_(20, 1, 100, "");
        let walk = tree_usage_walk(r, 10).unwrap();
        assert_eq!(walk, tree_usage(r, 10).unwrap());
        let mut m = TreeMeter::new(r, 3);
        m.walk = Some(false);
        for _ in 0..4 {
            assert_eq!(m.read(10).unwrap(), walk);
        }
        // Between scans, only the known pids are read: a new child waits for the next scan.
        proc_(14, 10, 50, "");
        assert_eq!(m.read(10).unwrap(), walk);
        assert_eq!(m.read(10).unwrap(), walk);
        assert_eq!(m.read(10).unwrap().cpu_ticks, walk.cpu_ticks + 52);
        assert_eq!(m.reads, 7);
        // The process outside the tree was read once, at the first scan, and is not again.
        assert_eq!(m.outside.iter().copied().collect::<Vec<_>>(), [20]);
        proc_(15, 14, 3, "");
        for _ in 0..3 {
            m.read(10).unwrap();
        }
        assert_eq!(m.read(10).unwrap().cpu_ticks, walk.cpu_ticks + 52 + 5);
        assert_eq!(m.read(10).unwrap().processes, 6);
        assert_eq!(walk.processes, 4);
        assert_eq!(walk.cpu_ticks, 5 + 7 + 1 + 2 + 4 * 2);
        assert_eq!(walk.rss_pages, 40);
        fs::write(r.join("10/status"), "Name: p\nCpus_allowed_list:\t0,2-3\n").unwrap();
        assert_eq!(allowed_cpus(r, 10).unwrap(), 3);
        assert!(allowed_cpus(r, 11).is_err());
    }
}
