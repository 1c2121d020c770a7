//! Arbitrary bytes through both profile readers (whole-file decoder and chunked splitter): they
//! must never panic, must agree with each other, and must account for the input: every record
//! re-encodes to a frame that was in the input.
#![no_main]

use ea2p_core::format::{encode, probe, Decoder, FrameSplitter, Record, MAX_FRAME_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = probe(data);
    let whole: Vec<Result<Record, _>> = Decoder::new(data).collect();

    // The same bytes fed in chunks of varying sizes give the same records.
    let mut buf = [0u8; MAX_FRAME_LEN];
    let mut splitter = FrameSplitter::new(&mut buf);
    let mut chunked_records = Vec::new();
    let mut rest = data;
    let mut size = 1usize;
    while !rest.is_empty() {
        let n = size.min(rest.len());
        let mut chunk = &rest[..n];
        while let Some(item) = splitter.next(&mut chunk) {
            if let Ok(r) = item {
                chunked_records.push(r);
            }
        }
        rest = &rest[n..];
        size = size % 97 + 7;
    }
    let _ = splitter.finish();
    let whole_records: Vec<&Record> = whole.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        whole_records.len(),
        chunked_records.len(),
        "readers disagree"
    );
    for (a, b) in whole_records.iter().zip(&chunked_records) {
        assert_eq!(*a, b, "readers disagree");
    }

    // Every decoded record re-encodes to a frame present in the input.
    let mut out = [0u8; MAX_FRAME_LEN];
    for r in whole_records {
        let n = encode(r, &mut out).expect("a decoded record re-encodes");
        let frame = &out[..n];
        assert!(
            data.windows(frame.len()).any(|w| w == frame),
            "record not present in the input"
        );
    }
});
