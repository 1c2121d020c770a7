//! Links ea2p-core into a `#![no_std]` crate with its own panic handler. If any dependency of core
//! brings in std, std's `panic_impl` collides with the one below and the build fails.
#![no_std]

use core::panic::PanicInfo;

use ea2p_core::counter::{CounterSpec, EnergyCounter};
use ea2p_core::estimate::CpuModel;
use ea2p_core::fold::Fold;
use ea2p_core::format::MarkerKind;
use ea2p_core::integrate::{EnergyTrack, SeriesKind};
use ea2p_core::session::Session;
use ea2p_core::source::{truncated, Component, Provenance, Quantity, RawReading, SourceInfo};

/// Uses the core so that it is really compiled and linked, not just named.
pub fn exercise() -> f64 {
    let mut counter = EnergyCounter::new(CounterSpec::new(1e-6).with_max_ticks(999));
    counter.update(0, 990);
    counter.update(1_000_000, 5);
    let mut track = EnergyTrack::new(SeriesKind::PowerSamples, 0);
    let _ = track.push_power(0, CpuModel::from_tdp(65.0).power(0.5).watts);
    let _ = track.push_power(1_000_000_000, 10.0);
    counter.total_j() + track.total_j() + pipeline()
}

/// The measuring session and the fold, with fixed capacities and no allocator.
fn pipeline() -> f64 {
    let mut session: Session<2, 2> = Session::new();
    let mut fold: Fold<2, 2> = Fold::default();
    let info = SourceInfo {
        component: Component::CpuPackage,
        index: 0,
        provenance: Provenance::Measured,
        quantity: Quantity::EnergyCounter {
            joules_per_tick: 1e-6,
            max_ticks: Some(999_999),
        },
        update_period_ns: 1_000_000,
        max_power_w: Some(100.0),
        name: truncated("package-0"),
    };
    let _ = session.add_source(0, info);
    let _ = session.handle_marker(0, MarkerKind::Begin, "r");
    let mut total = 0.0;
    for i in 0..20u64 {
        let _ = session.handle_reading(0, i * 1_000_000, RawReading::Counter(i * 10_000));
        while let Some(r) = session.poll_record() {
            let _ = fold.handle(&r);
        }
        while let Some(r) = fold.poll_region() {
            total += r.total_j;
        }
    }
    fold.finish();
    total + fold.components().first().map_or(0.0, |c| c.energy_j)
}

#[panic_handler]
fn panic(_info: &PanicInfo<'_>) -> ! {
    loop {}
}
