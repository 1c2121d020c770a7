//! The firmware's whole run on the host: the real driver against the simulated chip playing
//! `Script::DEMO`, accounted by the core, judged against the script's exact energy.
use ea2p_meter::feed::MeterFeed;
use ea2p_meter::run::{sample_until_done, Verdict};
use ea2p_meter::sensor::{Ina219, ShuntConfig};
use ea2p_meter::sim::{self, Breakpoint, Injected, Script, Sim};

fn run(script: &Script) -> (ea2p_meter::feed::Report, Verdict) {
    let sim = Sim::new(script);
    let mut meter = Ina219::new(sim.bus(), sim::ADDRESS, ShuntConfig::BREAKOUT_0R1).unwrap();
    let mut feed = MeterFeed::new(script.period_ns * 3 / 2);
    let readings = sample_until_done(&mut meter, &mut sim.clock(), &mut feed);
    let report = feed.report();
    (report, Verdict::of(script, &report, readings))
}

#[test]
fn the_demo_script_passes_with_every_fault_counted() {
    let (r, v) = run(&Script::DEMO);
    assert!(v.passed(), "{r:?} {v:?}");
    assert_eq!(r.samples, 1001 - 4);
    let a = r.anomalies;
    assert_eq!((a.nacks, a.overflow, a.clipped, a.not_ready), (1, 1, 1, 1));
    // Each fault leaves one 20 ms gap, interpolated.
    assert_eq!((r.gaps, r.gap_ns), (4, 80_000_000));
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
    let v = Verdict::of(&Script::DEMO, &r, 1000);
    assert!(!v.all_accounted, "a reading missing from the account");
}
