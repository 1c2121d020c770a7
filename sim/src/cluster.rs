//! The cluster: every GPU's holder and power, and exact energy.
//!
//! Power is kept in integer milliwatts (watts from the model, rounded down once per state change)
//! and energy in integer picojoules (mW x ns), so sums are exact: the cluster's energy computed
//! from its total power equals the sum of every GPU's energy to the picojoule, and an idle cluster
//! uses exactly idle power x GPUs x time.

use std::collections::BTreeSet;

use ea2p_core::jobmodel::GpuSpec;
use ea2p_core::units::Nanos;

/// No job holds the GPU.
pub const NO_JOB: u32 = u32::MAX;

/// Watts to integer milliwatts, rounded down (so a policy's sum in watts bounds the truth).
#[inline]
pub fn mw(watts: f64) -> u64 {
    if watts <= 0.0 {
        0
    } else {
        libm::floor(watts * 1000.0) as u64
    }
}

/// Picojoules (mW x ns) to joules.
#[inline]
pub fn pj_to_j(pj: u128) -> f64 {
    pj as f64 * 1e-12
}

/// GPUs and their energy.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// GPU type specs.
    pub specs: Vec<GpuSpec>,
    gpu_type: Vec<u8>,
    holder: Vec<u32>,
    power_mw: Vec<u64>,
    since: Vec<Nanos>,
    energy_idle_pj: Vec<u128>,
    energy_alloc_pj: Vec<u128>,
    alloc_ns: Vec<u128>,
    /// Free GPU ids per type; allocation takes the lowest, whatever the release order.
    free: Vec<BTreeSet<u32>>,
    total_per_type: Vec<u32>,
    idle_mw: Vec<u64>,
    total_mw: u64,
    total_since: Nanos,
    cluster_energy_pj: u128,
    peak_mw: u64,
    cap_mw: Option<u64>,
    max_over_cap_mw: u64,
    /// Failures in force per GPU (a counter, so overlapping faults nest).
    failed: Vec<u16>,
    /// Drains in force per GPU (of its node).
    drained: Vec<u16>,
    /// Since when a GPU is out of service and unheld, if it is.
    down_since: Vec<Option<Nanos>>,
    down_ns: u128,
}

impl Cluster {
    /// A cluster with `counts[t]` GPUs of type `t`, all idle at time 0.
    pub fn new(specs: &[GpuSpec], counts: &[u32]) -> Self {
        let n: u32 = counts.iter().sum();
        let mut gpu_type = Vec::with_capacity(n as usize);
        for (t, &c) in counts.iter().enumerate() {
            gpu_type.extend(std::iter::repeat_n(t as u8, c as usize));
        }
        let idle_mw: Vec<u64> = specs.iter().map(|s| mw(s.idle_w)).collect();
        let power_mw: Vec<u64> = gpu_type.iter().map(|&t| idle_mw[t as usize]).collect();
        let mut free = vec![BTreeSet::new(); specs.len()];
        for (g, &t) in gpu_type.iter().enumerate() {
            free[t as usize].insert(g as u32);
        }
        let total_mw = power_mw.iter().sum();
        Cluster {
            specs: specs.to_vec(),
            holder: vec![NO_JOB; n as usize],
            since: vec![0; n as usize],
            energy_idle_pj: vec![0; n as usize],
            energy_alloc_pj: vec![0; n as usize],
            alloc_ns: vec![0; specs.len()],
            power_mw,
            gpu_type,
            free,
            total_per_type: counts.to_vec(),
            idle_mw,
            total_mw,
            total_since: 0,
            cluster_energy_pj: 0,
            peak_mw: 0,
            cap_mw: None,
            max_over_cap_mw: 0,
            failed: vec![0; n as usize],
            drained: vec![0; n as usize],
            down_since: vec![None; n as usize],
            down_ns: 0,
        }
    }

    /// Number of GPUs.
    pub fn len(&self) -> usize {
        self.holder.len()
    }

    /// No GPU at all.
    pub fn is_empty(&self) -> bool {
        self.holder.is_empty()
    }

    /// GPUs per type.
    pub fn totals(&self) -> &[u32] {
        &self.total_per_type
    }

    /// Free GPUs of type `t`.
    pub fn free_count(&self, t: usize) -> u32 {
        self.free[t].len() as u32
    }

    /// Current cluster power, in mW.
    pub fn power_mw(&self) -> u64 {
        self.total_mw
    }

    /// Sets the power cap that over-cap intervals are measured against.
    pub fn set_cap(&mut self, now: Nanos, cap_w: Option<f64>) {
        self.advance(now);
        self.cap_mw = cap_w.map(mw);
    }

    /// Integrates the cluster's total power up to `now`; peak and over-cap power count only
    /// intervals of positive length (a state that lasts no time draws no energy).
    fn advance(&mut self, now: Nanos) {
        if now > self.total_since {
            let dt = (now - self.total_since) as u128;
            self.cluster_energy_pj += self.total_mw as u128 * dt;
            self.peak_mw = self.peak_mw.max(self.total_mw);
            if let Some(c) = self.cap_mw {
                self.max_over_cap_mw = self.max_over_cap_mw.max(self.total_mw.saturating_sub(c));
            }
            self.total_since = now;
        }
    }

    fn settle_gpu(&mut self, g: usize, now: Nanos) {
        let dt = (now - self.since[g]) as u128;
        let e = self.power_mw[g] as u128 * dt;
        if self.holder[g] == NO_JOB {
            self.energy_idle_pj[g] += e;
        } else {
            self.energy_alloc_pj[g] += e;
            self.alloc_ns[self.gpu_type[g] as usize] += dt;
        }
        self.since[g] = now;
    }

    fn set_gpu(&mut self, g: usize, holder: u32, power_mw: u64, now: Nanos) {
        self.advance(now);
        self.settle_gpu(g, now);
        self.total_mw = self.total_mw - self.power_mw[g] + power_mw;
        self.power_mw[g] = power_mw;
        self.holder[g] = holder;
    }

    /// Gives `k` free GPUs of type `t` to `job` at `power_mw` each; `None` (and nothing changed)
    /// if fewer than `k` are free.
    pub fn allocate(
        &mut self,
        t: usize,
        k: u32,
        job: u32,
        power_mw: u64,
        now: Nanos,
    ) -> Option<Vec<u32>> {
        if self.free[t].len() < k as usize {
            return None;
        }
        let mut got = Vec::with_capacity(k as usize);
        for _ in 0..k {
            let g = self.free[t].pop_first()?;
            debug_assert_eq!(self.holder[g as usize], NO_JOB, "a free GPU has a holder");
            self.set_gpu(g as usize, job, power_mw, now);
            got.push(g);
        }
        Some(got)
    }

    /// Sets the power of GPUs a job holds.
    pub fn set_power(&mut self, gpus: &[u32], power_mw: u64, now: Nanos) {
        for &g in gpus {
            let h = self.holder[g as usize];
            self.set_gpu(g as usize, h, power_mw, now);
        }
    }

    /// Returns a job's GPUs to the free pool, at idle power; a failed or drained GPU goes out of
    /// service instead.
    pub fn release(&mut self, gpus: &[u32], now: Nanos) {
        for &g in gpus {
            let t = self.gpu_type[g as usize] as usize;
            let idle = self.idle_mw[t];
            self.set_gpu(g as usize, NO_JOB, idle, now);
            if self.in_service(g) {
                self.free[t].insert(g);
            }
            self.update_down(g, now);
        }
    }

    /// Neither failed nor on a drained node.
    pub fn in_service(&self, g: u32) -> bool {
        self.failed[g as usize] == 0 && self.drained[g as usize] == 0
    }

    /// GPU `g` has failed and is not repaired yet.
    pub fn is_failed(&self, g: u32) -> bool {
        self.failed[g as usize] > 0
    }

    /// GPU `g` is in the free pool (allocation takes only from there).
    pub fn is_free(&self, g: u32) -> bool {
        self.free[self.gpu_type[g as usize] as usize].contains(&g)
    }

    /// A GPU out of service that no job holds is powered off (0 W): under repair or maintenance
    /// it draws nothing, and policies (Charon's committed power) count only free and held GPUs.
    fn update_down(&mut self, g: u32, now: Nanos) {
        let unheld = self.holder[g as usize] == NO_JOB;
        let down = !self.in_service(g) && unheld;
        match (self.down_since[g as usize], down) {
            (None, true) => {
                self.set_gpu(g as usize, NO_JOB, 0, now);
                self.down_since[g as usize] = Some(now);
            }
            (Some(since), false) => {
                self.down_ns += (now - since) as u128;
                self.down_since[g as usize] = None;
                if unheld {
                    let idle = self.idle_mw[self.gpu_type[g as usize] as usize];
                    self.set_gpu(g as usize, NO_JOB, idle, now);
                }
            }
            _ => {}
        }
    }

    /// Takes GPU `g` out of service (`failure`: it failed; otherwise its node is drained). The
    /// caller preempts a job holding a failed GPU; a drained GPU stays with its job.
    pub fn take_out(&mut self, g: u32, failure: bool, now: Nanos) {
        let c = if failure {
            &mut self.failed[g as usize]
        } else {
            &mut self.drained[g as usize]
        };
        *c = c.saturating_add(1);
        self.free[self.gpu_type[g as usize] as usize].remove(&g);
        self.update_down(g, now);
    }

    /// Undoes one [`Cluster::take_out`]: an unheld GPU back in service returns to the free pool.
    pub fn put_back(&mut self, g: u32, failure: bool, now: Nanos) {
        let c = if failure {
            &mut self.failed[g as usize]
        } else {
            &mut self.drained[g as usize]
        };
        *c = c.saturating_sub(1);
        if self.in_service(g) && self.holder[g as usize] == NO_JOB {
            self.free[self.gpu_type[g as usize] as usize].insert(g);
        }
        self.update_down(g, now);
    }

    /// GPUs of type `t` out of service and held by no job.
    pub fn out_of_service_unheld(&self, t: usize) -> u32 {
        (0..self.holder.len())
            .filter(|&g| self.gpu_type[g] as usize == t && self.down_since[g].is_some())
            .count() as u32
    }

    /// GPU-nanoseconds spent out of service and unheld (failed, or drained and empty), up to the
    /// last [`Cluster::settle`].
    pub fn down_ns(&self) -> u128 {
        self.down_ns
    }

    /// Integrates every GPU up to `now` (call at the horizon before reading energies).
    pub fn settle(&mut self, now: Nanos) {
        self.advance(now);
        for g in 0..self.holder.len() {
            self.settle_gpu(g, now);
            if let Some(since) = self.down_since[g] {
                self.down_ns += (now - since) as u128;
                self.down_since[g] = Some(now);
            }
        }
    }

    /// The job holding GPU `g`, or [`NO_JOB`].
    pub fn holder(&self, g: u32) -> u32 {
        self.holder[g as usize]
    }

    /// Type of GPU `g`.
    pub fn gpu_type(&self, g: u32) -> u8 {
        self.gpu_type[g as usize]
    }

    /// Energy integrated from the cluster's total power, picojoules.
    pub fn cluster_energy_pj(&self) -> u128 {
        self.cluster_energy_pj
    }

    /// Sum of every GPU's energy (unallocated, allocated), picojoules.
    pub fn gpu_energy_pj(&self) -> (u128, u128) {
        (
            self.energy_idle_pj.iter().sum(),
            self.energy_alloc_pj.iter().sum(),
        )
    }

    /// Allocated GPU-nanoseconds per type.
    pub fn allocated_ns(&self) -> &[u128] {
        &self.alloc_ns
    }

    /// Highest cluster power over an interval of positive length, mW.
    pub fn peak_mw(&self) -> u64 {
        self.peak_mw
    }

    /// Largest amount by which the cluster's power exceeded the cap in force, mW.
    pub fn max_over_cap_mw(&self) -> u64 {
        self.max_over_cap_mw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<GpuSpec> {
        vec![
            GpuSpec {
                idle_w: 55.0,
                allocated_idle_w: 99.0,
                max_w: 400.0,
                min_limit_w: 100.0,
            },
            GpuSpec {
                idle_w: 79.0,
                allocated_idle_w: 142.0,
                max_w: 700.0,
                min_limit_w: 200.0,
            },
        ]
    }

    #[test]
    fn idle_cluster_uses_exactly_idle_power() {
        let mut c = Cluster::new(&specs(), &[8, 8]);
        let t = 36_000_000_000_000u64;
        c.settle(t);
        let expect = (8 * 55_000 + 8 * 79_000) as u128 * t as u128;
        assert_eq!(c.cluster_energy_pj(), expect);
        assert_eq!(c.gpu_energy_pj(), (expect, 0));
    }

    #[test]
    fn allocation_moves_power_and_energy_adds_up() {
        let mut c = Cluster::new(&specs(), &[2, 1]);
        let g = c.allocate(0, 2, 7, 300_000, 1_000).unwrap();
        assert_eq!(g, vec![0, 1]);
        assert!(c.allocate(0, 1, 8, 300_000, 1_000).is_none());
        assert_eq!(c.holder(0), 7);
        c.set_power(&g, 99_000, 2_000);
        c.release(&g, 3_000);
        c.settle(4_000);
        let (idle, alloc) = c.gpu_energy_pj();
        assert_eq!(idle + alloc, c.cluster_energy_pj());
        assert_eq!(alloc, 2 * (300_000 * 1_000 + 99_000 * 1_000));
        assert_eq!(c.allocated_ns()[0], 4_000);
        assert_eq!(c.peak_mw(), 2 * 300_000 + 79_000);
    }

    #[test]
    fn out_of_service_gpus_leave_the_pool_and_draw_nothing_until_back() {
        let mut c = Cluster::new(&specs(), &[2, 0]);
        c.take_out(0, true, 0); // GPU 0 fails
        assert_eq!((c.free_count(0), c.power_mw()), (1, 55_000));
        let g = c.allocate(0, 1, 7, 300_000, 0).unwrap();
        assert_eq!(g, vec![1]);
        c.take_out(1, false, 1_000); // its node is drained: the job keeps it
        assert_eq!((c.holder(1), c.free_count(0)), (7, 0));
        c.put_back(0, true, 2_000); // repaired
        assert!(c.is_free(0) && c.in_service(0));
        c.release(&g, 3_000); // drained: out of service, not free
        assert!(!c.is_free(1) && c.out_of_service_unheld(0) == 1);
        c.put_back(1, false, 4_000);
        assert!(c.is_free(1));
        c.settle(5_000);
        // Down: GPU 0 over [0, 2000), GPU 1 over [3000, 4000).
        assert_eq!(c.down_ns(), 3_000);
        let (idle, alloc) = c.gpu_energy_pj();
        assert_eq!(alloc, 300_000 * 3_000);
        assert_eq!(idle, 55_000 * (3_000 + 1_000)); // GPU 0 from 2000, GPU 1 from 4000
        assert_eq!(idle + alloc, c.cluster_energy_pj());
    }
}
