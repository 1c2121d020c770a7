//! Arbitrary bytes through every trace importer (the first byte picks the format; from 0xF0 on,
//! the Alibaba task table with a job table: the bytes up to the first NUL are the job table): no
//! panic, the stream ends (never more items than bytes), every error names the file and a row,
//! and every job read has sane fields.
#![no_main]

use eas_traces::{alibaba, read, Format, RowError, TraceJob};
use libfuzzer_sys::fuzz_target;

type Rows<'a> = Box<dyn Iterator<Item = Result<TraceJob, RowError>> + 'a>;

/// The Alibaba reader with the job table in `data` before its first NUL, or `None` when the
/// job table is refused (with an error that names its file and row).
fn with_job_table(data: &[u8]) -> Option<(Rows<'_>, &[u8])> {
    let cut = data.iter().position(|&b| b == 0)?;
    let (table, body) = (&data[..cut], &data[cut + 1..]);
    match alibaba::load_job_table(table, "fuzz.jobs") {
        Ok(jobs) => {
            for (name, info) in &jobs {
                assert!(info.submit.is_none_or(f64::is_finite), "{name}: {info:?}");
            }
            let rows: Rows<'_> =
                Box::new(alibaba::Reader::new(body, "fuzz.trace").with_job_table(jobs));
            Some((rows, body))
        }
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.jobs"), "{e}");
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (rows, body) = if selector >= 0xF0 {
        match with_job_table(body) {
            Some(x) => x,
            None => return,
        }
    } else {
        let format = match selector % 3 {
            0 => Format::Helios,
            1 => Format::Philly,
            _ => Format::Alibaba,
        };
        match read(format, body, "fuzz.trace") {
            Ok(rows) => (rows, body),
            Err(e) => {
                assert!(e.to_string().starts_with("fuzz.trace"), "{e}");
                return;
            }
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
