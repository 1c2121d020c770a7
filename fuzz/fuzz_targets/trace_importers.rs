//! Arbitrary bytes through every trace importer (the first byte picks the format): no panic, the
//! stream ends (never more items than bytes), every error names the file and a row, and every job
//! read has sane fields.
#![no_main]

use eas_traces::{read, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = match selector % 3 {
        0 => Format::Helios,
        1 => Format::Philly,
        _ => Format::Alibaba,
    };
    let rows = match read(format, body, "fuzz.trace") {
        Ok(rows) => rows,
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.trace"), "{e}");
            return;
        }
    };
    let mut items = 0usize;
    for item in rows {
        items += 1;
        assert!(items <= body.len() + 2, "the reader does not advance");
        match item {
            Ok(job) => {
                assert!(job.submit_s.is_finite(), "{job:?}");
                if let Some(d) = job.duration_s {
                    assert!(d.is_finite() && d >= 0.0, "{job:?}");
                }
            }
            Err(e) => {
                assert!(e.row >= 1);
                assert!(e.to_string().starts_with("fuzz.trace: row"), "{e}");
            }
        }
    }
});
