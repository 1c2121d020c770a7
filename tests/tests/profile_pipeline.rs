//! End to end across crates: a RAPL zone in a fake sysfs tree (ea2p-linux) is read through the
//! source interface, its counter followed by core's `EnergyCounter` (with a wrap), the readings
//! written as profile frames (core's format), the file damaged and cut, and the energy of the
//! whole run and of a region recomputed from the frames that survive.

use std::fs;

use ea2p_core::counter::EnergyCounter;
use ea2p_core::format::{
    encode, Decoder, Record, Sample, SampleFlags, SkipReason, SourceDecl, MAX_FRAME_LEN,
};
use ea2p_core::integrate::{window_energy, EnergyPoint, EnergyTrack, SeriesKind};
use ea2p_core::source::{RawReading, Source};

const MS: u64 = 1_000_000;

#[test]
fn rapl_readings_survive_the_file_format_and_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let zone = tmp.path().join("class/powercap/intel-rapl:0");
    fs::create_dir_all(&zone).unwrap();
    fs::write(zone.join("name"), "package-0\n").unwrap();
    fs::write(zone.join("max_energy_range_uj"), "999999\n").unwrap();
    fs::write(zone.join("constraint_0_power_limit_uw"), "100000000\n").unwrap();
    let energy = zone.join("energy_uj");
    fs::write(&energy, "900000\n").unwrap();

    let mut found = ea2p_linux::rapl::discover(tmp.path()).unwrap();
    let src = &mut found.sources[0];
    let spec = src.info().counter_spec().expect("RAPL is a counter");
    let mut counter = EnergyCounter::new(spec);
    let mut track = EnergyTrack::new(SeriesKind::Counter, 10 * MS);

    // The profile: one source declaration, then a sample per millisecond at a steady 20 W
    // (20 000 uJ per ms), wrapping the 1 J counter every 50 ms.
    let mut file = Vec::new();
    let mut buf = [0u8; MAX_FRAME_LEN];
    let mut put = |r: &Record, file: &mut Vec<u8>| {
        let n = encode(r, &mut buf).unwrap();
        file.extend_from_slice(&buf[..n]);
    };
    put(
        &Record::Source(SourceDecl {
            id: 0,
            info: src.info().clone(),
        }),
        &mut file,
    );
    let mut raw_uj = 900_000u64;
    for i in 0..200u64 {
        let t = i * MS;
        if i > 0 {
            raw_uj = (raw_uj + 20_000) % 1_000_000;
            fs::write(&energy, format!("{raw_uj}\n")).unwrap();
        }
        let RawReading::Counter(raw) = src.read(t).unwrap() else {
            panic!("a counter reading")
        };
        let update = counter.update(t, raw);
        let point = track.push_energy(t, counter.total_j()).unwrap();
        let mut flags = SampleFlags(0);
        if update.event == ea2p_core::counter::CounterEvent::Wrapped {
            flags = flags.with(SampleFlags::WRAP);
        }
        put(
            &Record::Sample(Sample {
                source: 0,
                t_ns: t,
                raw: RawReading::Counter(raw),
                energy_j: point.energy_j,
                power_w: point.power_w as f32,
                flags,
            }),
            &mut file,
        );
    }
    // 199 intervals of 20 000 uJ, across four wraps, exactly.
    assert_eq!(counter.total_ticks(), 199 * 20_000);
    assert_eq!(counter.stats().wraps, 4);

    // A crash cuts the file mid-frame, and a flipped byte damages one frame in the middle.
    let mut damaged = file[..file.len() - 7].to_vec();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;

    let mut points = Vec::new();
    let mut skipped = Vec::new();
    for item in Decoder::new(&damaged) {
        match item {
            Ok(Record::Sample(s)) => points.push(EnergyPoint {
                t: s.t_ns,
                energy_j: s.energy_j,
                power_w: f64::from(s.power_w),
                after_gap: false,
            }),
            Ok(_) => {}
            Err(s) => skipped.push(s.reason),
        }
    }
    assert_eq!(skipped.last(), Some(&SkipReason::TruncatedTail));
    assert!(skipped.len() <= 3, "{skipped:?}");
    // Everything but the damaged frame(s) and the cut last one came back.
    assert!(points.len() >= 200 - 3, "{}", points.len());

    // The energy of a region, from the surviving frames: 50 ms to 150 ms at 20 W = 2 J.
    let w = window_energy(&points, SeriesKind::Counter, 50 * MS, 150 * MS, MS).unwrap();
    assert!((w.energy_j - 2.0).abs() < 1e-9, "{}", w.energy_j);
    // And of the whole recorded run up to the last surviving sample.
    let last = points.last().unwrap();
    assert!((last.energy_j - (last.t / MS) as f64 * 0.02).abs() < 1e-9);
}
