//! cgroup v2 counters for the attribution: the group a process runs in (`/proc/PID/cgroup`), its
//! CPU time (`cpu.stat` `usage_usec`), memory (`memory.current`) and CPUs
//! (`cpuset.cpus.effective`), and the groups matching a pattern, all under a sysfs root.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a cgroup cannot be used for attribution.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The process is under cgroup v1 only (no `0::` line), which has no unified `cpu.stat`.
    #[error("{path}: no cgroup v2 entry (a \"0::/path\" line): this machine uses cgroup v1, which ea2p does not read")]
    V1 {
        /// The `/proc/PID/cgroup` file.
        path: String,
    },
    /// The group lacks the file of a controller.
    #[error("{path}: missing (the {controller} controller is not enabled for this group)")]
    MissingController {
        /// The file expected.
        path: String,
        /// The controller that provides it.
        controller: &'static str,
    },
    /// A file is not what the kernel writes.
    #[error("{path}: {what}")]
    Malformed {
        /// The file.
        path: String,
        /// What was expected.
        what: &'static str,
    },
}

fn read_small(path: &Path, buf: &mut String) -> Result<(), CgroupError> {
    buf.clear();
    fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_string(buf))
        .map(|_| ())
        .map_err(|source| CgroupError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// The cgroup v2 path (`/system.slice/x.scope`) of `pid`, from `ROOT/PID/cgroup`.
pub fn process_cgroup(proc_root: &Path, pid: u32) -> Result<String, CgroupError> {
    let path = proc_root.join(pid.to_string()).join("cgroup");
    let mut buf = String::new();
    read_small(&path, &mut buf)?;
    buf.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
        .ok_or(CgroupError::V1 {
            path: path.display().to_string(),
        })
}

/// One cgroup v2 group's counters.
#[derive(Debug, Clone)]
pub struct Cgroup {
    /// The group's path under the hierarchy, as given.
    pub name: String,
    dir: PathBuf,
    buf: String,
}

/// One read of a group's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupUsage {
    /// CPU time of every process in the group and its descendants, ever, nanoseconds.
    pub cpu_ns: u64,
    /// `memory.current`, bytes (`None` without the memory controller).
    pub memory_bytes: Option<u64>,
}

impl Cgroup {
    /// The group `name` (`/system.slice/job_1`, or relative) under `SYSFS/fs/cgroup`; checks that
    /// it is a v2 group with `cpu.stat`.
    pub fn open(sysfs_root: &Path, name: &str) -> Result<Cgroup, CgroupError> {
        let base = sysfs_root.join("fs/cgroup");
        if !base.join("cgroup.controllers").exists() {
            return Err(CgroupError::V1 {
                path: base.join("cgroup.controllers").display().to_string(),
            });
        }
        let dir = base.join(name.trim_start_matches('/'));
        let mut g = Cgroup {
            name: name.to_string(),
            dir,
            buf: String::new(),
        };
        if !g.dir.join("cpu.stat").exists() {
            return Err(CgroupError::MissingController {
                path: g.dir.join("cpu.stat").display().to_string(),
                controller: "cpu",
            });
        }
        g.usage()?;
        Ok(g)
    }

    /// Reads `cpu.stat` and `memory.current`.
    pub fn usage(&mut self) -> Result<CgroupUsage, CgroupError> {
        let stat = self.dir.join("cpu.stat");
        read_small(&stat, &mut self.buf)?;
        let usec = self
            .buf
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| CgroupError::Malformed {
                path: stat.display().to_string(),
                what: "expected a line \"usage_usec N\"",
            })?;
        let mem = self.dir.join("memory.current");
        let memory_bytes = match read_small(&mem, &mut self.buf) {
            Ok(()) => Some(
                self.buf
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| CgroupError::Malformed {
                        path: mem.display().to_string(),
                        what: "expected a byte count",
                    })?,
            ),
            Err(_) => None,
        };
        Ok(CgroupUsage {
            cpu_ns: usec.saturating_mul(1000),
            memory_bytes,
        })
    }

    /// CPUs the group may use (`cpuset.cpus.effective`), when the cpuset controller is on.
    pub fn cpus(&mut self) -> Option<u32> {
        read_small(&self.dir.join("cpuset.cpus.effective"), &mut self.buf).ok()?;
        crate::procfs::parse_cpu_list(&self.buf)
    }
}

/// Group paths under `SYSFS/fs/cgroup` matching `pattern`, segment by segment, where `*` in a
/// segment matches any run of characters (`system.slice/slurmstepd.scope/job_*`); sorted.
pub fn matching(sysfs_root: &Path, pattern: &str) -> Vec<String> {
    let base = sysfs_root.join("fs/cgroup");
    let mut found = vec![String::new()];
    for seg in pattern
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
    {
        let mut next = Vec::new();
        for prefix in &found {
            let Ok(entries) = fs::read_dir(base.join(prefix)) else {
                continue;
            };
            for e in entries.filter_map(Result::ok) {
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                let name = e.file_name();
                if let (true, Some(n)) = (is_dir, name.to_str()) {
                    if glob_segment(seg, n) {
                        next.push(if prefix.is_empty() {
                            n.to_string()
                        } else {
                            format!("{prefix}/{n}")
                        });
                    }
                }
            }
        }
        found = next;
    }
    found.retain(|f| !f.is_empty());
    found.sort();
    found
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_segment(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(k) => rest = &rest[k + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let cg = d.path().join("fs/cgroup");
        for (g, usec) in [
            ("a/job_1", 10),
            ("a/job_22", 20),
            ("a/other", 5),
            ("b/job_3", 1),
        ] {
            fs::create_dir_all(cg.join(g)).unwrap();
            fs::write(
                cg.join(g).join("cpu.stat"),
                format!("usage_usec {usec}\nuser_usec 1\n"),
            )
            .unwrap();
        }
        fs::write(cg.join("cgroup.controllers"), "cpu memory\n").unwrap();
        fs::write(cg.join("a/job_1/memory.current"), "4096\n").unwrap();
        fs::write(cg.join("a/job_1/cpuset.cpus.effective"), "0-1\n").unwrap();
        d
    }

    #[test]
    fn groups_and_counters() {
        let d = tree();
        assert_eq!(matching(d.path(), "a/job_*"), ["a/job_1", "a/job_22"]);
        assert_eq!(matching(d.path(), "*/job_*").len(), 3);
        assert!(matching(d.path(), "c/*").is_empty());
        let mut g = Cgroup::open(d.path(), "/a/job_1").unwrap();
        assert_eq!(
            g.usage().unwrap(),
            CgroupUsage {
                cpu_ns: 10_000,
                memory_bytes: Some(4096)
            }
        );
        assert_eq!(g.cpus(), Some(2));
        assert_eq!(
            Cgroup::open(d.path(), "a/job_22")
                .unwrap()
                .usage()
                .unwrap()
                .memory_bytes,
            None
        );
        let e = Cgroup::open(d.path(), "a/none").unwrap_err().to_string();
        assert!(e.contains("cpu controller"), "{e}");
        fs::remove_file(d.path().join("fs/cgroup/cgroup.controllers")).unwrap();
        assert!(Cgroup::open(d.path(), "a/job_1")
            .unwrap_err()
            .to_string()
            .contains("v1"));
    }

    #[test]
    fn process_groups() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("7")).unwrap();
        fs::write(d.path().join("7/cgroup"), "0::/user.slice/x.scope\n").unwrap();
        assert_eq!(process_cgroup(d.path(), 7).unwrap(), "/user.slice/x.scope");
        fs::write(d.path().join("7/cgroup"), "4:cpu,cpuacct:/x\n").unwrap();
        assert!(matches!(
            process_cgroup(d.path(), 7),
            Err(CgroupError::V1 { .. })
        ));
        assert!(glob_segment("job_*_x", "job_12_x"));
        assert!(!glob_segment("job_*_x", "job_12_y"));
        assert!(!glob_segment("ab*ba", "aba"));
    }
}
