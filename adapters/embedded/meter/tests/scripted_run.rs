//! The firmware's whole run on the host: the real driver against the simulated chip playing
//! `Script::DEMO`, accounted by the core, judged against the script's exact energy.
use ea2p_core::source::ReadErrorKind;
use ea2p_meter::feed::{GapReason, MeterFeed};
use ea2p_meter::run::{sample_until_done, Verdict};
use ea2p_meter::sensor::{Ina219, ShuntConfig, CONVERSION_NS};
use ea2p_meter::sim::{self, Breakpoint, Injected, Script, Sim};

fn run(script: &Script) -> (ea2p_meter::feed::Report, Verdict) {
    let sim = Sim::new(script);
    let mut meter = Ina219::new(sim.bus(), sim::ADDRESS, ShuntConfig::BREAKOUT_0R1).unwrap();
    let mut feed = MeterFeed::new(CONVERSION_NS);
    let readings = sample_until_done(&mut meter, &mut sim.clock(), &mut feed);
    let report = feed.report();
    (report, Verdict::of(script, &report, readings))
}

#[test]
fn the_demo_script_passes_with_every_fault_counted() {
    let (r, v) = run(&Script::DEMO);
    assert!(v.passed(), "{r:?} {v:?}");
    assert_eq!(r.samples, 1001 - 4);
    let c = r.causes;
    assert_eq!((c.nacks, c.overflow, c.clipped, c.not_ready), (1, 1, 1, 1));
    // The fold's reasons: the NACK and the missing conversion gave no value, the overflowed and
    // the clipped conversions a wrong one; each gap covers the 10 ms since the last sample.
    let other = r.anomaly(GapReason::ReadError(ReadErrorKind::Other));
    let malformed = r.anomaly(GapReason::ReadError(ReadErrorKind::Malformed));
    assert_eq!((other.count, other.covered_ns), (2, 20_000_000));
    assert_eq!((malformed.count, malformed.covered_ns), (2, 20_000_000));
    assert_eq!(r.refused(), 4);
    // Each fault leaves 20 ms without a sample, whose energy is the trapezoid over it.
    assert_eq!((r.gap_runs, r.without_readings_ns), (4, 80_000_000));
    // 10 W for 3 s, over the fold's 10 ms windows.
    assert!((r.peak_w - 10.0).abs() < 1e-9, "{}", r.peak_w);
    assert_eq!(r.peak_window_ns, 10_000_000);
    assert_eq!(r.covered_ns, 10_000_000_000);
    assert!(v.relative_error.abs() < 1e-4, "{}", v.relative_error);
}

#[test]
fn a_fault_at_a_power_peak_is_caught_by_the_check() {
    // One 20 ms spike to 3 A at 5 V (15 W instead of 2.5 W), and the spike's sample is dropped:
    // the interpolation misses 12.5 W x 10 ms x 2 / 2 = 0.125 J of 5.125 J, which the check sees.
    const SPIKE: Script = Script {
        period_ns: 10_000_000,
        bus_mv: 5_000,
        shunt_uohm: 100_000,
        profile: &[
            Breakpoint {
                t_ns: 0,
                current_ua: 500_000,
            },
            Breakpoint {
                t_ns: 1_000_000_000,
                current_ua: 500_000,
            },
            Breakpoint {
                t_ns: 1_010_000_000,
                current_ua: 3_000_000,
            },
            Breakpoint {
                t_ns: 1_020_000_000,
                current_ua: 500_000,
            },
            Breakpoint {
                t_ns: 2_000_000_000,
                current_ua: 500_000,
            },
        ],
        faults: &[(101, Injected::Nack)],
    };
    let (r, v) = run(&SPIKE);
    assert!(v.all_accounted && v.faults_counted, "{v:?}");
    assert!(!v.passed(), "{r:?} {v:?}");
    assert!((r.energy_j - 5.0).abs() < 1e-9, "{}", r.energy_j);
    assert!((v.expected_j - 5.125).abs() < 1e-9);
}

#[test]
fn a_miscounted_fault_fails_the_verdict() {
    // The same run judged against a script that claims one more fault than happened.
    let (r, _) = run(&Script::DEMO);
    let claims = Script {
        faults: &[
            (250, Injected::Overflow),
            (400, Injected::Nack),
            (401, Injected::Nack),
            (700, Injected::Clipped),
            (900, Injected::NoConversion),
        ],
        ..Script::DEMO
    };
    let v = Verdict::of(&claims, &r, 1001);
    assert!(!v.faults_counted);
    assert!(!v.passed());
    // A script that names the same number of faults but of another kind: the causes and the
    // fold's reasons (two malformed, two without a value) no longer match it.
    let claims = Script {
        faults: &[
            (250, Injected::Overflow),
            (400, Injected::Clipped),
            (700, Injected::Clipped),
            (900, Injected::NoConversion),
        ],
        ..Script::DEMO
    };
    assert!(!Verdict::of(&claims, &r, 1001).faults_counted);
    let v = Verdict::of(&Script::DEMO, &r, 1000);
    assert!(!v.all_accounted, "a reading missing from the account");
}
