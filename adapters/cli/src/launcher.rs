//! Runs under Slurm (`srun`) or MPI (`mpirun`): each rank runs `ea2p run` around its own
//! process. The launcher's variables give the rank, the world size and the rank within the node;
//! only the first rank of each node reads the node-wide counters (RAPL, perf, GPUs, the models),
//! so a node's energy is counted once; the others record their own run (duration, regions, exit
//! code) in a profile of their own. `ea2p merge` puts the profiles together.

use std::path::{Path, PathBuf};

/// Where this process sits in a parallel job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Global rank.
    pub rank: u32,
    /// Number of ranks.
    pub world_size: u32,
    /// Rank among the ranks of this node (0 reads the node-wide counters).
    pub local_rank: u32,
    /// The launcher whose variables were found.
    pub launcher: &'static str,
}

impl Placement {
    /// True for the one rank per node that reads the node-wide counters.
    pub fn measures_node(&self) -> bool {
        self.local_rank == 0
    }
}

/// (launcher, rank, size, local rank) variables, in the order they are tried.
const LAUNCHERS: &[(&str, &str, &str, &str)] = &[
    ("slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
    (
        "open-mpi",
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "OMPI_COMM_WORLD_LOCAL_RANK",
    ),
    ("pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
];

/// The placement from an environment lookup (`std::env::var` in the program, a map in tests);
/// `None` outside a launcher. A launcher without a local rank counts every rank as node-local
/// rank 0 only when it is alone (size 1), else as not measuring, so no node is counted twice.
pub fn detect(var: impl Fn(&str) -> Option<String>) -> Option<Placement> {
    let num = |name: &str| var(name).and_then(|v| v.trim().parse::<u32>().ok());
    for &(launcher, rank, size, local) in LAUNCHERS {
        if let Some(rank) = num(rank) {
            let world_size = num(size).unwrap_or(rank + 1).max(rank + 1);
            let local_rank = num(local).unwrap_or(if world_size == 1 { 0 } else { rank });
            return Some(Placement {
                rank,
                world_size,
                local_rank,
                launcher,
            });
        }
    }
    None
}

/// The host name: `EA2P_HOSTNAME` (tests simulate nodes with it), else the kernel's.
pub fn hostname(procfs_root: &Path, var: impl Fn(&str) -> Option<String>) -> String {
    var("EA2P_HOSTNAME")
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            ea2p_linux::bounded::read_to_string(
                &procfs_root.join("sys/kernel/hostname"),
                ea2p_linux::bounded::SYSFS_ATTR_MAX,
            )
            .ok()
            .map(|s| s.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The profile path of one rank: `%r` becomes the rank and `%h` the host; a path with neither
/// gets `.rank<R>.<HOST>` before its extension (`run.ea2p` -> `run.rank3.node07.ea2p`), so ranks
/// never write the same file.
pub fn rank_path(path: &Path, rank: u32, host: &str) -> PathBuf {
    let text = path.to_string_lossy();
    if text.contains("%r") || text.contains("%h") {
        return PathBuf::from(text.replace("%r", &rank.to_string()).replace("%h", host));
    }
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let name = match path.extension() {
        Some(ext) => format!("{stem}.rank{rank}.{host}.{}", ext.to_string_lossy()),
        None => format!("{stem}.rank{rank}.{host}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn launchers() {
        assert_eq!(detect(env(&[])), None);
        let p = detect(env(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "8"),
            ("SLURM_LOCALID", "1"),
        ]))
        .unwrap();
        assert_eq!(
            (p.rank, p.world_size, p.local_rank, p.launcher),
            (5, 8, 1, "slurm")
        );
        assert!(!p.measures_node());
        let p = detect(env(&[
            ("OMPI_COMM_WORLD_RANK", "0"),
            ("OMPI_COMM_WORLD_SIZE", "2"),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "0"),
        ]))
        .unwrap();
        assert!(p.measures_node() && p.launcher == "open-mpi");
        let p = detect(env(&[("PMI_RANK", "3"), ("PMI_SIZE", "4")])).unwrap();
        assert_eq!(
            p.local_rank, 3,
            "no local rank: only a lone rank measures the node"
        );
        assert!(detect(env(&[("PMI_RANK", "x")])).is_none());
    }

    #[test]
    fn paths_and_hosts() {
        assert_eq!(
            rank_path(Path::new("out/run.ea2p"), 3, "node07"),
            Path::new("out/run.rank3.node07.ea2p")
        );
        assert_eq!(
            rank_path(Path::new("run-%h-%r.ea2p"), 1, "n2"),
            Path::new("run-n2-1.ea2p")
        );
        assert_eq!(
            rank_path(Path::new("prof"), 0, "h"),
            Path::new("prof.rank0.h")
        );
        assert_eq!(
            hostname(
                Path::new("/nonexistent"),
                env(&[("EA2P_HOSTNAME", "nodeA")])
            ),
            "nodeA"
        );
        assert_eq!(hostname(Path::new("/nonexistent"), env(&[])), "localhost");
    }
}
