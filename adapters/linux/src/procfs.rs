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
}
