//! A hwmon energy channel through the core's measuring session: the counter rules of RAPL
//! (wrap, reset, stall, impossible jump) apply to `energyN_input` read by `ea2p_linux::hwmon`.

use std::fs;
use std::path::Path;

use ea2p_core::format::{GapReason, Record, SampleFlags};
use ea2p_core::session::Session;
use ea2p_core::source::Source;
use ea2p_linux::hwmon;

const TOP: u64 = i64::MAX as u64;
const MS: u64 = 1_000_000;

/// Reads the channel at `t`, hands the reading to the session, returns the records it wrote.
fn step(
    s: &mut Session<4>,
    src: &mut hwmon::HwmonSource,
    file: &Path,
    t: u64,
    uj: u64,
) -> Vec<Record> {
    fs::write(file, format!("{uj}\n")).unwrap();
    let raw = src.read(t).unwrap();
    s.handle_reading(0, t, raw).unwrap();
    std::iter::from_fn(|| s.poll_record()).collect()
}

fn gaps(records: &[Record]) -> Vec<GapReason> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Gap(g) => Some(g.reason),
            _ => None,
        })
        .collect()
}

fn flags(records: &[Record]) -> Vec<SampleFlags> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Sample(x) => Some(x.flags),
            _ => None,
        })
        .collect()
}

#[test]
fn wraps_resets_stalls_and_jumps_of_an_energy_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("class/hwmon/hwmon3");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("name"), "amd_energy\n").unwrap();
    fs::write(dir.join("energy1_label"), "Esocket0\n").unwrap();
    let file = dir.join("energy1_input");
    fs::write(&file, format!("{}\n", TOP - 400_000)).unwrap();
    let found = hwmon::discover(tmp.path()).unwrap();
    let (mut sources, bad) = hwmon::sources(&found);
    assert!(bad.is_empty(), "{bad:?}");
    let mut src = sources.remove(0);
    assert_eq!(src.component_name(), "amd_energy:Esocket0");
    let mut s: Session<4> = Session::new();
    s.add_source(0, src.info().clone()).unwrap();
    while s.poll_record().is_some() {}

    // Baseline near the top of hwmon's signed 64-bit range.
    step(&mut s, &mut src, &file, 0, TOP - 400_000);
    // 100 ms later it has wrapped: 400_001 + 600_000 uJ, about 10 W.
    let r = step(&mut s, &mut src, &file, 100 * MS, 600_000);
    assert!(gaps(&r).is_empty(), "{r:?}");
    assert!(flags(&r)[0].contains(SampleFlags::WRAP), "{r:?}");
    let live = s.live(0).unwrap();
    assert!((live.energy_j - 1.000_001).abs() < 1e-9, "{live:?}");

    // Backwards, not from near the top: a reset, flagged, nothing added.
    let r = step(&mut s, &mut src, &file, 200 * MS, 500);
    assert_eq!(gaps(&r), [GapReason::CounterReset], "{r:?}");
    assert!((s.live(0).unwrap().energy_j - 1.000_001).abs() < 1e-9);

    // A stall of 100 ms (the same value read again), then the jump: energy of the stall, kept.
    step(&mut s, &mut src, &file, 300 * MS, 1_000_500);
    step(&mut s, &mut src, &file, 350 * MS, 1_000_500);
    let r = step(&mut s, &mut src, &file, 400 * MS, 2_000_500);
    assert!(gaps(&r).is_empty(), "{r:?}");
    assert!((s.live(0).unwrap().energy_j - 3.000_001).abs() < 1e-9);

    // A jump no sensor can make (1 EJ in 100 ms, above 100 kW): rejected, counted, not added.
    let r = step(&mut s, &mut src, &file, 500 * MS, 1_000_000_000_000_000_000);
    assert_eq!(gaps(&r), [GapReason::ImplausibleDelta], "{r:?}");
    let live = s.live(0).unwrap();
    assert!((live.energy_j - 3.000_001).abs() < 1e-9, "{live:?}");
    assert_eq!(live.refused, 2);

    // Above hwmon's range: the read itself fails, with the file and the bound named.
    fs::write(&file, format!("{}\n", TOP + 1)).unwrap();
    let e = src.read(600 * MS).unwrap_err();
    assert!(e.message.contains("energy1_input"), "{e}");
}
