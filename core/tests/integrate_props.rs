//! Property tests of power integration and windows.

use ea2p_core::integrate::{window_energy, EnergyPoint, EnergyTrack, SeriesKind};
use proptest::prelude::*;

/// Twice the exact trapezoid energy of integer milliwatt breakpoints, in mW x ns, as an integer:
/// sum (p0 + p1) * dt, computed without rounding.
fn exact_twice_mw_ns(samples: &[(u64, u64)]) -> u128 {
    samples
        .windows(2)
        .map(|w| (w[0].1 as u128 + w[1].1 as u128) * (w[1].0 - w[0].0) as u128)
        .sum()
}

fn breakpoints() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec((1u64..5_000_000_000, 0u64..1_000_000), 2..100).prop_map(|v| {
        let mut t = 0;
        v.into_iter()
            .map(|(dt, mw)| {
                t += dt;
                (t, mw)
            })
            .collect()
    })
}

fn track(samples: &[(u64, u64)]) -> (EnergyTrack, Vec<EnergyPoint>) {
    let mut tr = EnergyTrack::new(SeriesKind::PowerSamples, 0);
    let pts = samples
        .iter()
        .map(|&(t, mw)| tr.push_power(t, mw as f64 / 1000.0).unwrap())
        .collect();
    (tr, pts)
}

proptest! {
    /// A piecewise-linear power signal sampled at its breakpoints integrates exactly (to f64
    /// rounding of the exact integer result).
    #[test]
    fn piecewise_linear_is_exact(samples in breakpoints()) {
        let (tr, _) = track(&samples);
        // mW x ns / 2 -> J: 1e-3 * 1e-9 / 2.
        let exact = exact_twice_mw_ns(&samples) as f64 * 0.5e-12;
        let got = tr.total_j();
        prop_assert!((got - exact).abs() <= exact.abs() * 1e-12 + 1e-9, "{got} vs {exact}");
        let peak = samples.iter().map(|s| s.1).max().unwrap() as f64 / 1000.0;
        prop_assert_eq!(tr.peak_w(), peak);
    }

    /// Windows cut at arbitrary times sum to the whole, and a window between two breakpoints
    /// equals the exact integral there.
    #[test]
    fn windows_sum_to_the_whole(
        samples in breakpoints(),
        cuts in prop::collection::vec(0.0f64..1.0, 0..20),
        kind_is_counter in any::<bool>(),
    ) {
        let (tr, pts) = track(&samples);
        let (t0, t1) = (samples[0].0, samples.last().unwrap().0);
        let kind = if kind_is_counter { SeriesKind::Counter } else { SeriesKind::PowerSamples };
        let pts: Vec<EnergyPoint> = if kind_is_counter {
            // The same cumulative energies seen as counter totals.
            let mut ct = EnergyTrack::new(SeriesKind::Counter, 0);
            pts.iter().map(|p| ct.push_energy(p.t, p.energy_j).unwrap()).collect()
        } else {
            pts
        };
        let mut edges: Vec<u64> = cuts.iter().map(|f| t0 + ((t1 - t0) as f64 * f) as u64).collect();
        edges.push(t0);
        edges.push(t1);
        edges.sort_unstable();
        let mut sum = 0.0;
        for w in edges.windows(2) {
            sum += window_energy(&pts, kind, w[0], w[1], 0).unwrap().energy_j;
        }
        let total = tr.total_j();
        prop_assert!((sum - total).abs() <= total * 1e-9 + 1e-6, "{sum} vs {total}");
        // Between breakpoints i and i+1 the window is that segment's trapezoid.
        let i = samples.len() / 2 - 1;
        let w = window_energy(&pts, kind, samples[i].0, samples[i + 1].0, 0).unwrap();
        let exact = exact_twice_mw_ns(&samples[i..=i + 1]) as f64 * 0.5e-12;
        prop_assert!((w.energy_j - exact).abs() <= exact * 1e-9 + 1e-6);
    }
}
