//! Links ea2p-core into a `#![no_std]` crate with its own panic handler. If any dependency of core
//! brings in std, std's `panic_impl` collides with the one below and the build fails.
#![no_std]

use core::panic::PanicInfo;

use ea2p_core::counter::{CounterSpec, EnergyCounter};
use ea2p_core::estimate::CpuModel;
use ea2p_core::integrate::{EnergyTrack, SeriesKind};

/// Uses the core so that it is really compiled and linked, not just named.
pub fn exercise() -> f64 {
    let mut counter = EnergyCounter::new(CounterSpec::new(1e-6).with_max_ticks(999));
    counter.update(0, 990);
    counter.update(1_000_000, 5);
    let mut track = EnergyTrack::new(SeriesKind::PowerSamples, 0);
    let _ = track.push_power(0, CpuModel::from_tdp(65.0).power(0.5).watts);
    let _ = track.push_power(1_000_000_000, 10.0);
    counter.total_j() + track.total_j()
}

#[panic_handler]
fn panic(_info: &PanicInfo<'_>) -> ! {
    loop {}
}
