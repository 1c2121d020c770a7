//! The firmware's run, shared by the firmware (`src/main.rs`) and the `sample-cost` measurement.
#![no_std]

use cortex_m_semihosting::hprintln;

use ea2p_meter::feed::MeterFeed;
use ea2p_meter::fixed::Fixed;
use ea2p_meter::run::{sample_until_done, Verdict, TOLERANCE};
use ea2p_meter::sensor::{Ina219, ShuntConfig};
use ea2p_meter::sim::{self, Script, Sim};

/// The board's shunt; the script's load flows through the same one.
pub const SHUNT: ShuntConfig = ShuntConfig::BREAKOUT_0R1;

/// Plays `script` through the simulated INA219, the real driver and the core; prints
/// `energy_j=<measured> expected_j=<exact>` and every anomaly count; true when the run passes
/// ([`Verdict::passed`]).
pub fn run(script: &Script) -> bool {
    if script.shunt_uohm != SHUNT.shunt_uohm {
        hprintln!("error: the script's shunt is not the board's");
        return false;
    }
    let sim = Sim::new(script);
    let mut meter = match Ina219::new(sim.bus(), sim::ADDRESS, SHUNT) {
        Ok(meter) => meter,
        Err(e) => {
            hprintln!("error: {}", e);
            return false;
        }
    };
    // A segment longer than 1.5 periods is a gap even if no fault was seen.
    let mut feed = MeterFeed::new(script.period_ns * 3 / 2);
    let readings = sample_until_done(&mut meter, &mut sim.clock(), &mut feed);
    let r = feed.report();
    let v = Verdict::of(script, &r, readings);
    let a = r.anomalies;
    hprintln!(
        "energy_j={} expected_j={} rel_err_ppm={} readings={} samples={} bus_errors={} nacks={} overflow={} clipped={} not_ready={} out_of_range={} rejected={} gaps={} gap_s={} gap_j={} covered_s={} peak_w={}",
        Fixed(r.energy_j, 6),
        Fixed(v.expected_j, 6),
        Fixed(v.relative_error * 1e6, 1),
        readings,
        r.samples,
        a.bus_errors,
        a.nacks,
        a.overflow,
        a.clipped,
        a.not_ready,
        a.out_of_range,
        a.rejected,
        r.gaps,
        Fixed(r.gap_ns as f64 / 1e9, 3),
        Fixed(r.gap_energy_j, 6),
        Fixed(r.covered_ns as f64 / 1e9, 3),
        Fixed(r.peak_w, 3),
    );
    if !v.all_accounted {
        hprintln!("FAIL: readings and samples + anomalies differ");
    }
    if !v.faults_counted {
        hprintln!("FAIL: anomaly counts are not the script's injected faults");
    }
    let ok = v.passed();
    hprintln!(
        "{}: |rel_err| {} tolerance {} ppm",
        if ok { "ok" } else { "FAIL" },
        if v.relative_error.abs() <= TOLERANCE {
            "<="
        } else {
            ">"
        },
        Fixed(TOLERANCE * 1e6, 0)
    );
    ok
}
