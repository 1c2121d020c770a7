//! Arbitrary file contents through the Linux adapters' parsers: the procfs parsers directly, and
//! RAPL discovery and reading over a powercap zone whose files hold the input. No panic; a zone
//! either becomes a source with a sane description or a problem that names its file.
#![no_main]

use std::path::Path;

use ea2p_core::source::{Quantity, Source};
use ea2p_linux::{procfs, rapl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let p = Path::new("fuzz");
    let _ = procfs::parse_stat(&text, p);
    let _ = procfs::parse_meminfo(&text, p);
    if let Ok(st) = procfs::parse_pid_stat(&text, p) {
        assert!(text.contains('(') && text.contains(')'));
        let _ = st;
    }
    let _ = rapl::zone_indices(&text);

    // A zone whose three files are cut from the input.
    let parts: Vec<&[u8]> = data.splitn(3, |&b| b == b'|').collect();
    let [name, energy, max] = parts[..] else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let zone = tmp.path().join("class/powercap/intel-rapl:0");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::write(zone.join("name"), name).unwrap();
    std::fs::write(zone.join("energy_uj"), energy).unwrap();
    std::fs::write(zone.join("max_energy_range_uj"), max).unwrap();
    let found = rapl::discover(tmp.path()).expect("the zone directory exists");
    assert_eq!(found.sources.len() + found.problems.len(), 1);
    for p in &found.problems {
        assert!(p.to_string().contains("intel-rapl:0"), "{p}");
    }
    for mut s in found.sources {
        assert!(matches!(
            s.info().quantity,
            Quantity::EnergyCounter {
                max_ticks: Some(_),
                ..
            }
        ));
        assert!(s.read(0).is_ok());
    }
});
