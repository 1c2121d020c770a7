//! Properties of the profile format: round trip, truncation at every byte, random damage.

use std::collections::BTreeMap;

use ea2p_core::format::*;
use ea2p_core::source::{
    truncated, Component, Provenance, Quantity, RawReading, ReadErrorKind, SourceInfo,
};
use proptest::prelude::*;

fn text<const N: usize>() -> impl Strategy<Value = heapless::String<N>> {
    // Up to N + 8 chars, multi-byte included, so truncation at char boundaries is exercised.
    proptest::string::string_regex(&format!("\\PC{{0,{}}}", N + 8))
        .unwrap()
        .prop_map(|s| truncated::<N>(&s))
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        -1e12f64..1e12,
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE)
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (
        (text(), text(), text(), any::<u32>(), any::<u64>()),
        (any::<u64>(), any::<u64>(), any::<u64>()),
        (text(), text(), any::<Option<u32>>(), any::<Option<u32>>()),
    )
        .prop_map(
            |(
                (hostname, os, cpu_model, logical_cpus, memory_bytes),
                (start_unix_ns, monotonic_origin_ns, interval_ns),
                (ea2p_version, command, rank, world_size),
            )| Header {
                magic: MAGIC,
                version: VERSION,
                host: HostInfo {
                    hostname,
                    os,
                    cpu_model,
                    logical_cpus,
                    memory_bytes,
                },
                start_unix_ns,
                monotonic_origin_ns,
                interval_ns,
                ea2p_version,
                command,
                rank,
                world_size,
            },
        )
}

fn component() -> impl Strategy<Value = Component> {
    prop_oneof![
        Just(Component::CpuPackage),
        Just(Component::CpuCores),
        Just(Component::Uncore),
        Just(Component::Dram),
        Just(Component::Platform),
        Just(Component::Gpu),
        Just(Component::Rail),
    ]
}

fn provenance() -> impl Strategy<Value = Provenance> {
    prop_oneof![Just(Provenance::Measured), Just(Provenance::Estimated)]
}

fn source_decl() -> impl Strategy<Value = SourceDecl> {
    let quantity = prop_oneof![
        (finite(), any::<Option<u64>>()).prop_map(|(joules_per_tick, max_ticks)| {
            Quantity::EnergyCounter {
                joules_per_tick,
                max_ticks,
            }
        }),
        any::<u64>().prop_map(|averaging_ns| Quantity::Power { averaging_ns }),
    ];
    (
        any::<u16>(),
        component(),
        any::<u32>(),
        provenance(),
        quantity,
        any::<u64>(),
        proptest::option::of(finite()),
        text(),
    )
        .prop_map(
            |(id, component, index, provenance, quantity, update_period_ns, max_power_w, name)| {
                SourceDecl {
                    id,
                    info: SourceInfo {
                        component,
                        index,
                        provenance,
                        quantity,
                        update_period_ns,
                        max_power_w,
                        name,
                    },
                }
            },
        )
}

fn sample() -> impl Strategy<Value = Sample> {
    let raw = prop_oneof![
        any::<u64>().prop_map(RawReading::Counter),
        any::<u64>().prop_map(RawReading::PowerMilliwatts),
    ];
    (
        any::<u16>(),
        any::<u64>(),
        raw,
        finite(),
        -1e6f32..1e6,
        any::<u8>(),
    )
        .prop_map(|(source, t_ns, raw, energy_j, power_w, flags)| Sample {
            source,
            t_ns,
            raw,
            energy_j,
            power_w,
            flags: SampleFlags(flags),
        })
}

fn gap() -> impl Strategy<Value = Gap> {
    let kind = prop_oneof![
        Just(ReadErrorKind::PermissionDenied),
        Just(ReadErrorKind::Gone),
        Just(ReadErrorKind::Malformed),
        Just(ReadErrorKind::Other),
    ];
    let reason = prop_oneof![
        kind.prop_map(GapReason::ReadError),
        Just(GapReason::DeviceLost),
        Just(GapReason::SourceFailed),
        Just(GapReason::Overrun),
        Just(GapReason::CounterReset),
        Just(GapReason::ImplausibleDelta),
        Just(GapReason::OutOfRange),
        Just(GapReason::OutOfOrder),
        Just(GapReason::InvalidValue),
        Just(GapReason::WrongKind),
    ];
    (any::<u16>(), any::<u64>(), any::<u64>(), reason).prop_map(
        |(source, from_ns, to_ns, reason)| Gap {
            source,
            from_ns,
            to_ns,
            reason,
        },
    )
}

fn marker() -> impl Strategy<Value = Marker> {
    (
        any::<u32>(),
        any::<bool>(),
        any::<u64>(),
        text(),
        any::<Option<u32>>(),
    )
        .prop_map(|(region, begin, t_ns, name, parent)| Marker {
            region,
            kind: if begin {
                MarkerKind::Begin
            } else {
                MarkerKind::End
            },
            t_ns,
            name,
            parent,
        })
}

fn source_total() -> impl Strategy<Value = SourceTotal> {
    (
        any::<u16>(),
        finite(),
        finite(),
        finite(),
        provenance(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(source, energy_j, avg_w, peak_w, provenance, samples, rejected)| SourceTotal {
                source,
                energy_j,
                avg_w,
                peak_w,
                provenance,
                samples,
                rejected,
            },
        )
}

fn end() -> impl Strategy<Value = End> {
    let exit = prop_oneof![
        any::<i32>().prop_map(ExitStatus::Code),
        any::<i32>().prop_map(ExitStatus::Signal),
        Just(ExitStatus::Unknown),
    ];
    (any::<u64>(), exit).prop_map(|(t_ns, exit)| End { t_ns, exit })
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        header().prop_map(Record::Header),
        source_decl().prop_map(Record::Source),
        sample().prop_map(Record::Sample),
        gap().prop_map(Record::Gap),
        marker().prop_map(Record::Marker),
        source_total().prop_map(Record::SourceTotal),
        end().prop_map(Record::End),
    ]
}

/// Encodes records into one file; returns it and each frame's byte range (delimiter included).
fn file_of(records: &[Record]) -> (Vec<u8>, Vec<std::ops::Range<usize>>) {
    let mut file = Vec::new();
    let mut ranges = Vec::new();
    let mut buf = [0u8; MAX_FRAME_LEN];
    for r in records {
        let n = encode(r, &mut buf).expect("every record fits MAX_FRAME_LEN");
        ranges.push(file.len()..file.len() + n);
        file.extend_from_slice(&buf[..n]);
    }
    (file, ranges)
}

fn decode_all(input: &[u8]) -> (Vec<Record>, Vec<Skipped>) {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for item in Decoder::new(input) {
        match item {
            Ok(r) => records.push(r),
            Err(s) => skipped.push(s),
        }
    }
    (records, skipped)
}

/// Reads `input` through a `FrameSplitter` in chunks of `chunk` bytes.
fn split_all(input: &[u8], chunk: usize, buf_len: usize) -> (Vec<Record>, Vec<Skipped>) {
    let mut buf = vec![0u8; buf_len];
    let mut splitter = FrameSplitter::new(&mut buf);
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for mut piece in input.chunks(chunk.max(1)) {
        while let Some(item) = splitter.next(&mut piece) {
            match item {
                Ok(r) => records.push(r),
                Err(s) => skipped.push(s),
            }
        }
        assert!(piece.is_empty());
    }
    skipped.extend(splitter.finish());
    (records, skipped)
}

/// True if `sub` appears in `all` in order (not necessarily contiguously).
fn is_subsequence(sub: &[Record], all: &[Record]) -> bool {
    let mut it = all.iter();
    sub.iter().all(|s| it.any(|a| a == s))
}

#[derive(Debug, Clone)]
enum Damage {
    Flip(u8),
    Overwrite(u8),
    Delete,
    InsertBefore(u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (1u8..=255).prop_map(Damage::Flip),
        any::<u8>().prop_map(Damage::Overwrite),
        Just(Damage::Delete),
        any::<u8>().prop_map(Damage::InsertBefore),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_every_variant(records in prop::collection::vec(record(), 1..12)) {
        let mut buf = [0u8; MAX_FRAME_LEN];
        for r in &records {
            let n = encode(r, &mut buf).unwrap();
            prop_assert!(n <= MAX_FRAME_LEN);
            prop_assert_eq!(buf[n - 1], 0);
            prop_assert!(!buf[..n - 1].contains(&0));
            // One byte short of the frame is refused, not truncated.
            prop_assert_eq!(encode(r, &mut buf[..n - 1]), Err(EncodeError::BufferTooSmall));
        }
        let (file, _) = file_of(&records);
        let (got, skipped) = decode_all(&file);
        prop_assert_eq!(&got, &records);
        prop_assert!(skipped.is_empty());
        let (got, skipped) = split_all(&file, 7, MAX_FRAME_LEN);
        prop_assert_eq!(&got, &records);
        prop_assert!(skipped.is_empty());
    }

    #[test]
    fn truncation_at_every_offset_keeps_whole_frames(
        records in prop::collection::vec(record(), 1..6),
        chunk in 1usize..64,
    ) {
        let (file, ranges) = file_of(&records);
        for cut in 0..=file.len() {
            let whole = ranges.iter().take_while(|r| r.end <= cut).count();
            let on_boundary = cut == 0 || ranges.iter().any(|r| r.end == cut);
            let (got, skipped) = decode_all(&file[..cut]);
            prop_assert_eq!(&got[..], &records[..whole], "cut at {}", cut);
            let tail = ranges.get(whole).map_or(0, |r| r.start);
            let expected: Vec<Skipped> = if on_boundary {
                vec![]
            } else {
                vec![Skipped {
                    offset: tail as u64,
                    len: (cut - tail) as u64,
                    reason: SkipReason::TruncatedTail,
                }]
            };
            prop_assert_eq!(&skipped, &expected, "cut at {}", cut);
            let (got, skipped_stream) = split_all(&file[..cut], chunk, MAX_FRAME_LEN);
            prop_assert_eq!(&got[..], &records[..whole]);
            prop_assert_eq!(&skipped_stream, &expected);
        }
    }

    #[test]
    fn damage_loses_only_damaged_frames(
        records in prop::collection::vec(record(), 1..10),
        hits in prop::collection::vec((any::<prop::sample::Index>(), damage()), 1..6),
        chunk in 1usize..200,
    ) {
        let (file, ranges) = file_of(&records);
        // Damage in original coordinates; the last hit at a position wins.
        let hits: BTreeMap<usize, Damage> =
            hits.into_iter().map(|(i, d)| (i.index(file.len()), d)).collect();
        let mut damaged_pos = vec![false; file.len()];
        let mut out = Vec::with_capacity(file.len() + hits.len());
        for (i, &b) in file.iter().enumerate() {
            match hits.get(&i) {
                None => out.push(b),
                Some(Damage::Flip(m)) => { out.push(b ^ m); damaged_pos[i] = true; }
                Some(Damage::Overwrite(v)) => { out.push(*v); damaged_pos[i] = true; }
                Some(Damage::Delete) => damaged_pos[i] = true,
                Some(Damage::InsertBefore(v)) => {
                    out.push(*v);
                    out.push(b);
                    damaged_pos[i] = true;
                    if i > 0 { damaged_pos[i - 1] = true; }
                }
            }
        }
        // A frame survives if its bytes and delimiter, and the delimiter before it, are untouched.
        let intact: Vec<Record> = ranges
            .iter()
            .zip(&records)
            .filter(|(r, _)| {
                let before = r.start.checked_sub(1).is_some_and(|p| damaged_pos[p]);
                !before && !damaged_pos[(*r).clone()].iter().any(|&d| d)
            })
            .map(|(_, rec)| rec.clone())
            .collect();
        let (got, skipped) = decode_all(&out);
        prop_assert!(is_subsequence(&intact, &got), "lost an intact frame");
        prop_assert!(is_subsequence(&got, &records), "produced a record never written");
        for s in &skipped {
            prop_assert!(s.offset + s.len <= out.len() as u64);
        }
        let (got_stream, skipped_stream) = split_all(&out, chunk, MAX_FRAME_LEN);
        prop_assert_eq!(&got_stream, &got);
        prop_assert_eq!(&skipped_stream, &skipped);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let (_, skipped) = decode_all(&bytes);
        let mut covered = 0u64;
        for s in &skipped {
            prop_assert!(s.offset >= covered);
            covered = s.offset + s.len;
        }
        prop_assert!(covered <= bytes.len() as u64);
        let _ = split_all(&bytes, 13, 64);
        let _ = probe(&bytes);
    }
}

fn sample_record(t: u64) -> Record {
    Record::Sample(Sample {
        source: 3,
        t_ns: t,
        raw: RawReading::Counter(123_456_789),
        energy_j: 42.5,
        power_w: 180.25,
        flags: SampleFlags::default().with(SampleFlags::WRAP),
    })
}

fn full_header(version: u16) -> Header {
    Header {
        magic: MAGIC,
        version,
        host: HostInfo {
            hostname: truncated(&"h".repeat(100)),
            os: truncated(&"o".repeat(100)),
            cpu_model: truncated(&"c".repeat(100)),
            logical_cpus: u32::MAX,
            memory_bytes: u64::MAX,
        },
        start_unix_ns: u64::MAX,
        monotonic_origin_ns: u64::MAX,
        interval_ns: u64::MAX,
        ea2p_version: truncated(&"v".repeat(100)),
        command: truncated(&"x".repeat(300)),
        rank: Some(u32::MAX),
        world_size: Some(u32::MAX),
    }
}

#[test]
fn empty_input_yields_nothing() {
    assert_eq!(decode_all(&[]), (vec![], vec![]));
    assert_eq!(split_all(&[], 4, 16), (vec![], vec![]));
    assert_eq!(probe(&[]), Err(ProbeError::Truncated));
}

#[test]
fn only_delimiters_yield_nothing() {
    let zeros = [0u8; 100];
    assert_eq!(decode_all(&zeros), (vec![], vec![]));
    assert_eq!(split_all(&zeros, 3, 16), (vec![], vec![]));
    assert_eq!(probe(&zeros), Err(ProbeError::Truncated));
}

#[test]
fn fullest_header_fits_and_padding_is_ignored() {
    let h = Record::Header(full_header(VERSION));
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode(&h, &mut buf).unwrap();
    assert!(n <= MAX_FRAME_LEN);
    let mut file = vec![0u8, 0];
    file.extend_from_slice(&buf[..n]);
    file.push(0);
    let m = encode(&sample_record(5), &mut buf).unwrap();
    file.extend_from_slice(&buf[..m]);
    assert_eq!(decode_all(&file), (vec![h, sample_record(5)], vec![]));
    assert_eq!(probe(&file), Ok(full_header(VERSION)));
}

#[test]
fn sample_frame_is_compact() {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode(&sample_record(3_600_000_000_000), &mut buf).unwrap();
    eprintln!("sample frame: {n} bytes");
    assert!(n <= 40, "sample frame is {n} bytes");
}

#[test]
fn oversize_frame_is_skipped_and_stream_resumes() {
    let mut file = vec![0x01u8; MAX_FRAME_LEN + 10];
    file.push(0);
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode(&sample_record(1), &mut buf).unwrap();
    file.extend_from_slice(&buf[..n]);
    let oversize = Skipped {
        offset: 0,
        len: MAX_FRAME_LEN as u64 + 11,
        reason: SkipReason::Oversize,
    };
    assert_eq!(decode_all(&file), (vec![sample_record(1)], vec![oversize]));
    // The splitter with a small buffer skips the long frame the same way.
    assert_eq!(
        split_all(&file, 100, MAX_FRAME_LEN),
        (vec![sample_record(1)], vec![oversize])
    );
    let (got, skipped) = split_all(&file, 5, n - 2);
    assert!(got.is_empty());
    assert_eq!(skipped.len(), 2);
    assert_eq!(skipped[1].reason, SkipReason::Oversize);
    assert_eq!(skipped[1].offset, MAX_FRAME_LEN as u64 + 11);
}

#[test]
fn damaged_crc_is_reported() {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode(&sample_record(9), &mut buf).unwrap();
    let mut frame = buf[..n].to_vec();
    frame[3] ^= 0x40;
    if frame[3] == 0 {
        frame[3] = 0x7f;
    }
    let (got, skipped) = decode_all(&frame);
    assert!(got.is_empty());
    assert_eq!(skipped.len(), 1);
    assert!(matches!(
        skipped[0].reason,
        SkipReason::BadCrc | SkipReason::BadCobs
    ));
}

#[test]
fn wrong_version_and_wrong_magic_are_told_apart() {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode(&Record::Header(full_header(VERSION + 7)), &mut buf).unwrap();
    assert_eq!(
        probe(&buf[..n]),
        Err(ProbeError::UnsupportedVersion(VERSION + 7))
    );
    // Version-1 files (before the counter-anomaly gap reasons) still read.
    let n = encode(&Record::Header(full_header(1)), &mut buf).unwrap();
    assert_eq!(probe(&buf[..n]), Ok(full_header(1)));
    assert_eq!(MIN_READ_VERSION, 1);
    let mut h = full_header(VERSION);
    h.magic = *b"EA2Q";
    let n = encode(&Record::Header(h), &mut buf).unwrap();
    assert_eq!(probe(&buf[..n]), Err(ProbeError::NotAProfile));
    // A valid frame that is not a header.
    let n = encode(&sample_record(1), &mut buf).unwrap();
    assert_eq!(probe(&buf[..n]), Err(ProbeError::NotAProfile));
    // Text.
    assert_eq!(
        probe(b"time,power\n0,12.5\n\0"),
        Err(ProbeError::NotAProfile)
    );
    // A header cut short.
    let n = encode(&Record::Header(full_header(VERSION)), &mut buf).unwrap();
    assert_eq!(probe(&buf[..n - 1]), Err(ProbeError::Truncated));
}

#[test]
fn frame_layout_is_postcard_crc_cobs() {
    let rec = Record::End(End {
        t_ns: 1,
        exit: ExitStatus::Code(0),
    });
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode(&rec, &mut buf).unwrap();
    let body = postcard::to_allocvec(&rec).unwrap();
    assert_eq!(body, [6, 1, 0, 0]); // variant 6, t_ns 1, ExitStatus::Code, 0
    let mut payload = body.clone();
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&body);
    payload.extend_from_slice(&crc.to_le_bytes());
    let mut expected = Vec::new();
    // Hand COBS of `payload`: [6, 1, 0, 0, c0, c1, c2, c3].
    expected.extend_from_slice(&[3, 6, 1, 1]);
    let tail: Vec<u8> = crc.to_le_bytes().to_vec();
    // The last block: the CRC bytes, split at any zero.
    let mut block = Vec::new();
    for b in tail {
        if b == 0 {
            expected.push(block.len() as u8 + 1);
            expected.extend_from_slice(&block);
            block.clear();
        } else {
            block.push(b);
        }
    }
    expected.push(block.len() as u8 + 1);
    expected.extend_from_slice(&block);
    expected.push(0);
    assert_eq!(&buf[..n], &expected[..]);
}

#[test]
fn fullest_records_fit_max_record_len() {
    let decl = Record::Source(SourceDecl {
        id: u16::MAX,
        info: SourceInfo {
            component: Component::Gpu,
            index: u32::MAX,
            provenance: Provenance::Estimated,
            quantity: Quantity::EnergyCounter {
                joules_per_tick: 1e-6,
                max_ticks: Some(u64::MAX),
            },
            update_period_ns: u64::MAX,
            max_power_w: Some(700.0),
            name: truncated(&"n".repeat(100)),
        },
    });
    let marker = Record::Marker(Marker {
        region: u32::MAX,
        kind: MarkerKind::End,
        t_ns: u64::MAX,
        name: truncated(&"r".repeat(100)),
        parent: Some(u32::MAX),
    });
    for rec in [Record::Header(full_header(VERSION)), decl, marker] {
        let body = postcard::to_allocvec(&rec).unwrap();
        eprintln!("{} bytes: {:?}", body.len(), core::mem::discriminant(&rec));
        assert!(body.len() <= MAX_RECORD_LEN);
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = encode(&rec, &mut buf).unwrap();
        assert_eq!(decode_all(&buf[..n]), (vec![rec], vec![]));
    }
}

#[test]
fn every_gap_reason_has_its_own_tally_slot_and_name() {
    for (i, r) in GapReason::ALL.iter().enumerate() {
        assert_eq!(r.index(), i, "{r:?}");
        let same_name = GapReason::ALL.iter().filter(|o| o.as_str() == r.as_str());
        assert_eq!(same_name.count(), 1, "{r:?}");
    }
}
