//! A scriptable [`GpuBackend`] for tests: GPUs whose counters, power, processes and presence the
//! test sets between reads.

use std::sync::Mutex;

use crate::backend::{
    Architecture, BackendError, GpuBackend, GpuProcess, PowerLimitsMw, ProcessUtilization,
};

/// One fake GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeGpu {
    /// Marketing name.
    pub name: String,
    /// `GPU-...` UUID.
    pub uuid: String,
    /// Generation.
    pub architecture: Architecture,
    /// Energy counter in mJ; `None`: not supported (pre-Volta).
    pub energy_mj: Option<u64>,
    /// Power in mW; `None`: not supported.
    pub power_mw: Option<u32>,
    /// Power limits.
    pub limits: PowerLimitsMw,
    /// Running processes.
    pub processes: Vec<GpuProcess>,
    /// Utilisation samples (all are returned whose timestamp is newer than asked).
    pub utilization: Vec<ProcessUtilization>,
    /// True once the GPU has fallen off the bus: every query fails with `Gone`.
    pub gone: bool,
}

impl FakeGpu {
    /// A Volta-or-later GPU with an energy counter at `energy_mj` and a 300 W limit.
    pub fn with_counter(
        name: &str,
        uuid: &str,
        architecture: Architecture,
        energy_mj: u64,
    ) -> Self {
        Self {
            name: name.to_owned(),
            uuid: uuid.to_owned(),
            architecture,
            energy_mj: Some(energy_mj),
            power_mw: Some(50_000),
            limits: PowerLimitsMw {
                enforced: Some(300_000),
                max_settable: Some(300_000),
            },
            processes: Vec::new(),
            utilization: Vec::new(),
            gone: false,
        }
    }

    /// An older GPU with power readings only.
    pub fn power_only(name: &str, uuid: &str, architecture: Architecture, power_mw: u32) -> Self {
        Self {
            energy_mj: None,
            power_mw: Some(power_mw),
            ..Self::with_counter(name, uuid, architecture, 0)
        }
    }
}

/// A backend made of [`FakeGpu`]s, changed through [`FakeBackend::update`].
#[derive(Debug, Default)]
pub struct FakeBackend {
    gpus: Mutex<Vec<FakeGpu>>,
    /// When set, `device_count` fails with this error (driver gone).
    count_error: Mutex<Option<BackendError>>,
}

impl FakeBackend {
    /// A backend with these GPUs, indexed in order.
    pub fn new(gpus: Vec<FakeGpu>) -> Self {
        Self {
            gpus: Mutex::new(gpus),
            count_error: Mutex::new(None),
        }
    }

    /// Changes GPU `index` (panics if there is no such GPU: a test bug).
    pub fn update(&self, index: u32, f: impl FnOnce(&mut FakeGpu)) {
        let mut gpus = self.gpus.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut gpus[index as usize]);
    }

    /// Makes `device_count` fail from now on.
    pub fn fail_device_count(&self, e: BackendError) {
        *self.count_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    }

    fn with<T>(
        &self,
        index: u32,
        f: impl FnOnce(&FakeGpu) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let gpus = self.gpus.lock().unwrap_or_else(|e| e.into_inner());
        match gpus.get(index as usize) {
            None => Err(BackendError::Gone(format!("no GPU {index}"))),
            Some(g) if g.gone => Err(BackendError::Gone("GPU has fallen off the bus".into())),
            Some(g) => f(g),
        }
    }
}

impl GpuBackend for FakeBackend {
    fn device_count(&self) -> Result<u32, BackendError> {
        if let Some(e) = self
            .count_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Err(e);
        }
        Ok(self.gpus.lock().unwrap_or_else(|e| e.into_inner()).len() as u32)
    }
    fn name(&self, index: u32) -> Result<String, BackendError> {
        self.with(index, |g| Ok(g.name.clone()))
    }
    fn uuid(&self, index: u32) -> Result<String, BackendError> {
        self.with(index, |g| Ok(g.uuid.clone()))
    }
    fn architecture(&self, index: u32) -> Result<Architecture, BackendError> {
        self.with(index, |g| Ok(g.architecture))
    }
    fn total_energy_mj(&self, index: u32) -> Result<u64, BackendError> {
        self.with(index, |g| g.energy_mj.ok_or(BackendError::NotSupported))
    }
    fn power_mw(&self, index: u32) -> Result<u32, BackendError> {
        self.with(index, |g| g.power_mw.ok_or(BackendError::NotSupported))
    }
    fn power_limits_mw(&self, index: u32) -> Result<PowerLimitsMw, BackendError> {
        self.with(index, |g| Ok(g.limits))
    }
    fn processes(&self, index: u32) -> Result<Vec<GpuProcess>, BackendError> {
        self.with(index, |g| Ok(g.processes.clone()))
    }
    fn process_utilization(
        &self,
        index: u32,
        since_us: u64,
    ) -> Result<Vec<ProcessUtilization>, BackendError> {
        self.with(index, |g| {
            Ok(g.utilization
                .iter()
                .filter(|s| s.timestamp_us > since_us)
                .copied()
                .collect())
        })
    }
    fn driver_version(&self) -> Option<String> {
        Some("fake-1.0".to_owned())
    }
}
