//! Which share of a GPU's energy belongs to the measured process tree, when other processes use
//! the same GPU.
//!
//! NVML meters energy per board, not per process. What it does give per process is the GPU
//! memory held and, on Maxwell and later, streaming-multiprocessor (SM) utilisation samples. The
//! share is the measured pids' part of the SM utilisation when there is any, else their part of
//! the GPU memory, else all or nothing when only measured (or only other) processes run.
//! [`ProcessProbe`] collects these per GPU, [`ActivityTally`] sums them over a run or window, and
//! [`energy_share`] is the pure computation for one probe.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::backend::{BackendError, GpuBackend, GpuProcess, ProcessUtilization};

/// What a share was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareBasis {
    /// Sum of per-process SM utilisation samples.
    SmUtilization,
    /// GPU memory held (no utilisation samples in the period).
    Memory,
    /// Only measured processes, or only other processes, ran on the GPU.
    Exclusive,
}

/// The measured processes' share of one GPU's energy over a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    /// In `[0, 1]`.
    pub fraction: f64,
    /// What it was computed from.
    pub basis: ShareBasis,
}

/// The share of a GPU's activity that belongs to `pids`, from the processes running on it and the
/// utilisation samples of the period. `None` when there is nothing to go on: no process ran, or
/// measured and other processes ran together with neither utilisation samples nor memory figures
/// for all of them.
pub fn energy_share(
    processes: &[GpuProcess],
    samples: &[ProcessUtilization],
    pids: &BTreeSet<u32>,
) -> Option<Share> {
    let mut sm_by_pid: BTreeMap<u32, u64> = BTreeMap::new();
    for s in samples {
        *sm_by_pid.entry(s.pid).or_default() += u64::from(s.sm_percent);
    }
    share_of(&sm_by_pid, processes, pids)
}

/// The one share formula: SM utilisation summed per pid, else memory, else all or nothing.
fn share_of(
    sm_by_pid: &BTreeMap<u32, u64>,
    processes: &[GpuProcess],
    pids: &BTreeSet<u32>,
) -> Option<Share> {
    let sm_total: u64 = sm_by_pid.values().sum();
    if sm_total > 0 {
        let ours: u64 = sm_by_pid
            .iter()
            .filter(|(pid, _)| pids.contains(pid))
            .map(|(_, v)| v)
            .sum();
        return Some(Share {
            fraction: fraction(ours as f64, sm_total as f64),
            basis: ShareBasis::SmUtilization,
        });
    }
    if processes.is_empty() {
        return None;
    }
    let ours_count = processes.iter().filter(|p| pids.contains(&p.pid)).count();
    if ours_count == processes.len() || ours_count == 0 {
        return Some(Share {
            fraction: if ours_count == 0 { 0.0 } else { 1.0 },
            basis: ShareBasis::Exclusive,
        });
    }
    let memory: Option<Vec<(u32, u64)>> = processes
        .iter()
        .map(|p| p.used_memory_bytes.map(|m| (p.pid, m)))
        .collect();
    let memory = memory?;
    let total: u64 = memory.iter().map(|(_, m)| m).sum();
    if total == 0 {
        return None;
    }
    let ours: u64 = memory
        .iter()
        .filter(|(pid, _)| pids.contains(pid))
        .map(|(_, m)| m)
        .sum();
    Some(Share {
        fraction: fraction(ours as f64, total as f64),
        basis: ShareBasis::Memory,
    })
}

/// Activity of one GPU accumulated over many probes, for the share over a whole run or window.
///
/// One probe is a poor basis on its own: on an H100 shared by two time-sliced processes, each
/// probe 500 ms apart returned one sample per process, often 99% for one and nothing for the
/// other, alternating; summed over ten probes the split was 453:430, close to the even split the
/// time slicing gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityTally {
    sm_by_pid: BTreeMap<u32, u64>,
    processes: BTreeMap<u32, GpuProcess>,
    probes: u64,
}

impl ActivityTally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one probe of the GPU (failed queries add nothing).
    pub fn add(&mut self, activity: &GpuActivity) {
        self.probes += 1;
        if let Ok(samples) = &activity.utilization {
            for s in samples {
                *self.sm_by_pid.entry(s.pid).or_default() += u64::from(s.sm_percent);
            }
        }
        if let Ok(processes) = &activity.processes {
            for p in processes {
                self.processes
                    .entry(p.pid)
                    .and_modify(|e| {
                        e.used_memory_bytes = match (e.used_memory_bytes, p.used_memory_bytes) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            (a, b) => a.or(b),
                        }
                    })
                    .or_insert(*p);
            }
        }
    }

    /// Probes added.
    pub fn probes(&self) -> u64 {
        self.probes
    }

    /// The share of `pids` over everything added: summed SM utilisation, else the largest
    /// memory each process held, else all or nothing (see [`energy_share`]).
    pub fn share(&self, pids: &BTreeSet<u32>) -> Option<Share> {
        let processes: Vec<GpuProcess> = self.processes.values().copied().collect();
        share_of(&self.sm_by_pid, &processes, pids)
    }
}

fn fraction(part: f64, whole: f64) -> f64 {
    (part / whole).clamp(0.0, 1.0)
}

/// What one GPU was doing, per process, at one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuActivity {
    /// NVML index of the GPU.
    pub gpu_index: u32,
    /// Processes running on it (sorted by pid), or why the list could not be read.
    pub processes: Result<Vec<GpuProcess>, BackendError>,
    /// Utilisation samples since the previous probe, or why they could not be read (not
    /// supported before Maxwell, or under some virtualisation).
    pub utilization: Result<Vec<ProcessUtilization>, BackendError>,
}

impl GpuActivity {
    /// [`energy_share`] of this probe; a failed utilisation query counts as no samples.
    pub fn share(&self, pids: &BTreeSet<u32>) -> Option<Share> {
        let processes = self.processes.as_deref().unwrap_or(&[]);
        let samples = self.utilization.as_deref().unwrap_or(&[]);
        energy_share(processes, samples, pids)
    }
}

/// Polls the running processes and utilisation samples of the selected GPUs. Each probe asks only
/// for the samples newer than the previous probe's newest, so consecutive probes cover
/// consecutive periods.
#[derive(Debug)]
pub struct ProcessProbe<B: GpuBackend> {
    backend: Arc<B>,
    gpus: Vec<(u32, u64)>,
}

impl<B: GpuBackend> ProcessProbe<B> {
    /// A probe of the GPUs with these NVML indices.
    pub fn new(backend: Arc<B>, gpu_indices: &[u32]) -> Self {
        Self {
            backend,
            gpus: gpu_indices.iter().map(|&i| (i, 0)).collect(),
        }
    }

    /// NVML indices of the probed GPUs.
    pub fn gpu_indices(&self) -> Vec<u32> {
        self.gpus.iter().map(|(i, _)| *i).collect()
    }

    /// One probe of every GPU.
    pub fn sample(&mut self) -> Vec<GpuActivity> {
        let backend = &self.backend;
        self.gpus
            .iter_mut()
            .map(|(index, last_seen_us)| {
                let utilization = backend.process_utilization(*index, *last_seen_us);
                if let Ok(samples) = &utilization {
                    if let Some(newest) = samples.iter().map(|s| s.timestamp_us).max() {
                        *last_seen_us = (*last_seen_us).max(newest);
                    }
                }
                GpuActivity {
                    gpu_index: *index,
                    processes: backend.processes(*index),
                    utilization,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ProcessKind;

    fn proc(pid: u32, mem: Option<u64>) -> GpuProcess {
        GpuProcess {
            pid,
            used_memory_bytes: mem,
            kind: ProcessKind::Compute,
        }
    }

    fn util(pid: u32, sm: u32) -> ProcessUtilization {
        ProcessUtilization {
            pid,
            timestamp_us: 1,
            sm_percent: sm,
            mem_percent: 0,
        }
    }

    fn pids(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }

    #[test]
    fn utilisation_decides_when_present() {
        let procs = [proc(1, Some(100)), proc(2, Some(900))];
        let samples = [util(1, 60), util(2, 20), util(1, 20)];
        let s = energy_share(&procs, &samples, &pids(&[1])).unwrap();
        assert_eq!(s.basis, ShareBasis::SmUtilization);
        assert!((s.fraction - 0.8).abs() < 1e-12);
        let s = energy_share(&procs, &samples, &pids(&[1, 2])).unwrap();
        assert_eq!(s.fraction, 1.0);
        let s = energy_share(&procs, &samples, &pids(&[3])).unwrap();
        assert_eq!(s.fraction, 0.0);
    }

    #[test]
    fn memory_decides_without_utilisation() {
        let procs = [proc(1, Some(300)), proc(2, Some(100))];
        let zero = [util(1, 0), util(2, 0)];
        let s = energy_share(&procs, &zero, &pids(&[2])).unwrap();
        assert_eq!(s.basis, ShareBasis::Memory);
        assert!((s.fraction - 0.25).abs() < 1e-12);
    }

    #[test]
    fn sole_user_or_absent_user() {
        let procs = [proc(1, None), proc(2, None)];
        let s = energy_share(&procs, &[], &pids(&[1, 2])).unwrap();
        assert_eq!((s.fraction, s.basis), (1.0, ShareBasis::Exclusive));
        let s = energy_share(&procs, &[], &pids(&[7])).unwrap();
        assert_eq!((s.fraction, s.basis), (0.0, ShareBasis::Exclusive));
    }

    #[test]
    fn no_basis_gives_none() {
        assert_eq!(energy_share(&[], &[], &pids(&[1])), None);
        let mixed_unknown_memory = [proc(1, Some(10)), proc(2, None)];
        assert_eq!(energy_share(&mixed_unknown_memory, &[], &pids(&[1])), None);
        let zero_memory = [proc(1, Some(0)), proc(2, Some(0))];
        assert_eq!(energy_share(&zero_memory, &[], &pids(&[1])), None);
    }

    #[test]
    fn tally_sums_alternating_probes() {
        let probe = |samples: Vec<ProcessUtilization>| GpuActivity {
            gpu_index: 0,
            processes: Ok(vec![proc(1, Some(10)), proc(2, Some(30))]),
            utilization: Ok(samples),
        };
        let mut tally = ActivityTally::new();
        assert_eq!(tally.share(&pids(&[1])), None);
        for p in [
            probe(vec![util(1, 99)]),
            probe(vec![util(2, 99)]),
            probe(vec![util(2, 99)]),
            probe(vec![util(1, 50), util(2, 50)]),
        ] {
            tally.add(&p);
        }
        tally.add(&GpuActivity {
            gpu_index: 0,
            processes: Err(BackendError::NotSupported),
            utilization: Err(BackendError::NotSupported),
        });
        assert_eq!(tally.probes(), 5);
        let s = tally.share(&pids(&[1])).unwrap();
        assert_eq!(s.basis, ShareBasis::SmUtilization);
        assert!((s.fraction - 149.0 / 397.0).abs() < 1e-12);

        let mut idle = ActivityTally::new();
        idle.add(&probe(vec![]));
        let s = idle.share(&pids(&[1])).unwrap();
        assert_eq!(s.basis, ShareBasis::Memory);
        assert!((s.fraction - 0.25).abs() < 1e-12);
    }

    #[test]
    fn fraction_stays_in_unit_interval() {
        let samples = [util(1, u32::MAX), util(2, u32::MAX)];
        let s = energy_share(&[], &samples, &pids(&[1])).unwrap();
        assert!((0.0..=1.0).contains(&s.fraction));
        assert!((s.fraction - 0.5).abs() < 1e-12);
    }
}
