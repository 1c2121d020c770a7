//! Arbitrary text through the value parsers of `ea2p`'s flags (durations, device lists,
//! numbers, addresses). No panic; what is accepted lies in the range each error states.
#![no_main]

use ea2p::{cpu_tdp, estimate_cmd, prometheus, values, Devices};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(ns) = values::parse_duration(&s) {
        assert!(
            ns >= 1 && ns as f64 <= values::MAX_DURATION_S * 1e9,
            "{s:?}: {ns}"
        );
    }
    if let Ok(g) = values::parse_carbon_intensity(&s) {
        assert!(
            (0.0..=values::MAX_CARBON_INTENSITY).contains(&g),
            "{s:?}: {g}"
        );
    }
    if let Ok(w) = cpu_tdp::parse_tdp(&s) {
        assert!(w.is_finite() && w > 0.0, "{s:?}: {w}");
    }
    if let Ok(u) = estimate_cmd::parse_utilisation(&s) {
        assert!((0.0..=1.0).contains(&u), "{s:?}: {u}");
    }
    if let Ok(n) = estimate_cmd::parse_threads(&s) {
        assert!(n >= 1, "{s:?}: {n}");
    }
    if let Ok(n) = estimate_cmd::parse_packages(&s) {
        assert!(n >= 1, "{s:?}: {n}");
    }
    if let Ok(g) = estimate_cmd::parse_gib(&s) {
        assert!(g.is_finite() && g > 0.0, "{s:?}: {g}");
    }
    let _ = prometheus::parse_addr(&s);
    if let Ok(d) = s.parse::<Devices>() {
        // A device list that parses prints no nonsense back.
        let _ = format!("{d:?}");
    }
});
