//! Arbitrary file contents through the perf power PMU's parsers, directly and through discovery
//! of a PMU directory whose files hold the input (with a backend that opens nothing). No panic;
//! parsed values are sane; every problem names its file.
#![no_main]

use std::io;
use std::path::Path;

use ea2p_linux::perf::{
    self, parse_cpumask, parse_event_config, parse_scale, parse_unit, PerfBackend, PerfCounter,
    PmuEvent, PowerPmu, MAX_CPUS,
};
use libfuzzer_sys::fuzz_target;

struct Refuse;

impl PerfBackend for Refuse {
    fn open(&self, _: &PowerPmu, _: &PmuEvent, _: u32) -> io::Result<Box<dyn PerfCounter>> {
        Err(io::Error::from_raw_os_error(19))
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let p = Path::new("fuzz");
    let _ = parse_event_config(&text, p);
    if let Ok(v) = parse_scale(&text, p) {
        assert!(v.is_finite() && v > 0.0);
    }
    let _ = parse_unit(&text, p);
    if let Ok(cpus) = parse_cpumask(&text, p) {
        assert!(!cpus.is_empty() && cpus.len() <= MAX_CPUS);
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }

    // A PMU whose type, cpumask and one event's three files are cut from the input.
    let parts: Vec<&[u8]> = data.splitn(5, |&b| b == b'|').collect();
    let [ty, mask, event, scale, unit] = parts[..] else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bus/event_source/devices/power");
    std::fs::create_dir_all(dir.join("events")).unwrap();
    std::fs::write(dir.join("type"), ty).unwrap();
    std::fs::write(dir.join("cpumask"), mask).unwrap();
    std::fs::write(dir.join("events/energy-pkg"), event).unwrap();
    std::fs::write(dir.join("events/energy-pkg.scale"), scale).unwrap();
    std::fs::write(dir.join("events/energy-pkg.unit"), unit).unwrap();
    match perf::discover_with(tmp.path(), tmp.path(), &Refuse) {
        Ok(found) => {
            assert!(found.sources.is_empty(), "the backend opens nothing");
            assert!(!found.problems.is_empty());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
