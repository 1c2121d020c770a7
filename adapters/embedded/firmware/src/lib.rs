//! The firmware's run, shared by the firmware (`src/main.rs`) and the `sample-cost` measurement.
#![no_std]

use cortex_m_semihosting::{hprint, hprintln};

use ea2p_meter::feed::{GapReason, MeterFeed};
use ea2p_meter::fixed::Fixed;
use ea2p_meter::run::{sample_until_done, Verdict, TOLERANCE};
use ea2p_meter::sensor::{Ina219, ShuntConfig, CONVERSION_NS};
use ea2p_meter::sim::{self, Script, Sim};

/// The board's shunt; the script's load flows through the same one.
pub const SHUNT: ShuntConfig = ShuntConfig::BREAKOUT_0R1;

/// Plays `script` through the simulated INA219, the real driver and the core; prints
/// `energy_j=<measured> expected_j=<exact>`, the fold's anomalies by reason and the meter's
/// fault causes; true when the run passes
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
    let mut feed = MeterFeed::new(CONVERSION_NS);
    let readings = sample_until_done(&mut meter, &mut sim.clock(), &mut feed);
    let r = feed.report();
    let v = Verdict::of(script, &r, readings);
    hprint!(
        "energy_j={} expected_j={} rel_err_ppm={} readings={} samples={} refused={}",
        Fixed(r.energy_j, 6),
        Fixed(v.expected_j, 6),
        Fixed(v.relative_error * 1e6, 1),
        readings,
        r.samples,
        r.refused(),
    );
    // Every reason with a gap, with the time its gaps cover (the fold's anomalies).
    for reason in GapReason::ALL {
        let t = r.anomaly(reason);
        if t.count > 0 {
            hprint!(
                " {}={} {}_s={}",
                reason.as_str(),
                t.count,
                reason.as_str(),
                Fixed(t.covered_ns as f64 / 1e9, 3)
            );
        }
    }
    let c = r.causes;
    hprintln!(
        " gap_runs={} without_readings_s={} covered_s={} peak_w={} peak_window_s={} bus_errors={} nacks={} overflow={} clipped={} not_ready={} out_of_range={} negative={} not_taken={}",
        r.gap_runs,
        Fixed(r.without_readings_ns as f64 / 1e9, 3),
        Fixed(r.covered_ns as f64 / 1e9, 3),
        Fixed(r.peak_w, 3),
        Fixed(r.peak_window_ns as f64 / 1e9, 3),
        c.bus_errors,
        c.nacks,
        c.overflow,
        c.clipped,
        c.not_ready,
        c.out_of_range,
        c.negative,
        r.not_taken,
    );
    if !v.all_accounted {
        hprintln!("FAIL: readings and samples + anomalies differ");
    }
    if !v.faults_counted {
        hprintln!(
            "FAIL: anomaly counts (causes or gap reasons) are not the script's injected faults"
        );
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
