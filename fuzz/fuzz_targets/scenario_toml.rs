//! Arbitrary text through the scenario parser: it never panics, and every error names the file
//! (and, for errors inside the text, the line); the checks of `eas_sim::limits` never panic on
//! what parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match eas_sim::scenario::parse_str(text, "fuzz.toml", None) {
        Ok(scenario) => {
            // A scenario that parses is usable: its derived tables can be built.
            let _ = scenario.specs();
            let _ = scenario.profiles();
            let _ = scenario.horizon();
            // The whole-scenario checks and warnings never panic, whatever the numbers.
            let _ = eas_sim::limits::check(&scenario, scenario.seeds);
            let _ = eas_sim::limits::check_cap_for(&scenario, &ea2p_core::policy::PolicyKind::ALL);
            let _ = eas_sim::limits::warnings(&scenario);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("fuzz.toml"),
                "error does not name the file: {msg}"
            );
        }
    }
});
