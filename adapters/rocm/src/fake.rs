//! A scriptable [`AmdBackend`] for tests.

use std::sync::Mutex;

use crate::backend::{AmdBackend, BackendError, EnergyCount};

/// One fake AMD GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeAmdGpu {
    /// Marketing name.
    pub name: Option<String>,
    /// Energy accumulator in ticks; `None`: not supported.
    pub ticks: Option<u64>,
    /// Micro-joules per tick.
    pub resolution_uj: f32,
    /// Average power in micro-watts; `None`: not supported.
    pub power_uw: Option<u64>,
    /// Power cap in micro-watts.
    pub cap_uw: Option<u64>,
    /// True once the GPU is gone: every query fails.
    pub gone: bool,
}

impl FakeAmdGpu {
    /// An MI250X-like GPU: 15.3 uJ ticks, 500 W cap, 300 W average power.
    pub fn mi250x(ticks: u64) -> Self {
        Self {
            name: Some("AMD Instinct MI250X".to_owned()),
            ticks: Some(ticks),
            resolution_uj: 15.3,
            power_uw: Some(300_000_000),
            cap_uw: Some(500_000_000),
            gone: false,
        }
    }
}

/// A backend of [`FakeAmdGpu`]s, changed through [`FakeAmd::update`].
#[derive(Debug)]
pub struct FakeAmd {
    gpus: Mutex<Vec<FakeAmdGpu>>,
}

impl FakeAmd {
    /// A backend with these GPUs.
    pub fn new(gpus: Vec<FakeAmdGpu>) -> Self {
        Self {
            gpus: Mutex::new(gpus),
        }
    }

    /// Changes GPU `index` (panics if there is none: a test bug).
    pub fn update(&self, index: u32, f: impl FnOnce(&mut FakeAmdGpu)) {
        f(&mut self.gpus.lock().unwrap_or_else(|e| e.into_inner())[index as usize]);
    }

    fn with<T>(
        &self,
        index: u32,
        f: impl FnOnce(&FakeAmdGpu) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let gpus = self.gpus.lock().unwrap_or_else(|e| e.into_inner());
        match gpus.get(index as usize) {
            Some(g) if !g.gone => f(g),
            _ => Err(BackendError::Gone(format!("fake GPU {index} removed"))),
        }
    }
}

impl AmdBackend for FakeAmd {
    fn library(&self) -> &'static str {
        "fake"
    }
    fn short_name(&self) -> &'static str {
        "fake"
    }
    fn device_count(&self) -> u32 {
        self.gpus.lock().unwrap_or_else(|e| e.into_inner()).len() as u32
    }
    fn name(&self, index: u32) -> Option<String> {
        self.with(index, |g| Ok(g.name.clone())).ok().flatten()
    }
    fn energy(&self, index: u32) -> Result<EnergyCount, BackendError> {
        self.with(index, |g| {
            g.ticks
                .map(|ticks| EnergyCount {
                    ticks,
                    resolution_uj: g.resolution_uj,
                    timestamp_ns: 0,
                })
                .ok_or(BackendError::NotSupported)
        })
    }
    fn average_power_uw(&self, index: u32) -> Result<u64, BackendError> {
        self.with(index, |g| g.power_uw.ok_or(BackendError::NotSupported))
    }
    fn power_cap_uw(&self, index: u32) -> Option<u64> {
        self.with(index, |g| Ok(g.cap_uw)).ok().flatten()
    }
}
