//! SenseTime Helios job logs (`cluster_log.csv`).
//!
//! Layout from the public release, repository `S-Lab-System-Group/HeliosData`, file
//! `README.md` ("Schema and Description" of `cluster_log.csv`): a CSV with a header row
//! `job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue`;
//! times are `YYYY-MM-DD HH:MM:SS`, `duration` and `queue` are seconds, `state` is one
//! of `COMPLETED`, `CANCELLED`, `FAILED`, `TIMEOUT`, `NODE_FAIL`.
//! Columns are found by header name, so their order and extra columns do not matter.
//! Times become seconds since the first row's `submit_time` unless an origin is given.

use std::io::{BufRead, Write};

use crate::{check_duration, parse_datetime, parse_f64, parse_u32, JobState, RowError, TraceJob};

/// The header the writer emits (and the columns the reader needs, except `vc`,
/// `cpu_num`, `node_num` and `queue`, which it ignores).
pub const HEADER: [&str; 12] = [
    "job_id",
    "user",
    "vc",
    "gpu_num",
    "cpu_num",
    "node_num",
    "state",
    "submit_time",
    "start_time",
    "end_time",
    "duration",
    "queue",
];

/// Origin written by [`write()`]: 2020-04-01 00:00:00, the start of the Helios traces.
pub const WRITE_ORIGIN: i64 = 1_585_699_200;

const NEEDED: [&str; 8] = [
    "job_id",
    "user",
    "gpu_num",
    "state",
    "submit_time",
    "start_time",
    "end_time",
    "duration",
];

/// Streaming reader of a Helios `cluster_log.csv`.
#[derive(Debug)]
pub struct Reader<R> {
    csv: csv::Reader<R>,
    file: String,
    cols: [usize; 8],
    origin: Option<i64>,
    record: csv::ByteRecord,
}

/// Maps a Helios `state` word.
pub fn map_state(s: &str) -> JobState {
    match s {
        "COMPLETED" => JobState::Completed,
        "FAILED" | "TIMEOUT" | "NODE_FAIL" => JobState::Failed,
        "CANCELLED" => JobState::Killed,
        other => JobState::Other(other.to_string()),
    }
}

impl<R: BufRead> Reader<R> {
    /// Reads the header of `input`; times are relative to the first row's submit time.
    ///
    /// Fails (row 1) when the header lacks a needed column.
    pub fn new(input: R, file: &str) -> Result<Self, RowError> {
        Self::with_origin(input, file, None)
    }

    /// As [`Reader::new`], with times relative to `origin` (seconds since 1970-01-01
    /// 00:00:00, e.g. from [`parse_datetime`]) when given.
    pub fn with_origin(input: R, file: &str, origin: Option<i64>) -> Result<Self, RowError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(input);
        let header = csv
            .byte_headers()
            .map_err(|e| RowError::new(file, 1, None, format!("cannot read the header: {e}")))?
            .clone();
        let mut cols = [0usize; 8];
        for (slot, name) in cols.iter_mut().zip(NEEDED) {
            *slot = header.iter().position(|h| h == name.as_bytes()).ok_or_else(|| {
                RowError::new(
                    file,
                    1,
                    Some(name),
                    format!("expected a header row naming the Helios columns ({}), this column is missing", NEEDED.join(",")),
                )
            })?;
        }
        Ok(Reader {
            csv,
            file: file.to_string(),
            cols,
            origin,
            record: csv::ByteRecord::new(),
        })
    }

    fn field(&self, i: usize, row: u64) -> Result<&str, RowError> {
        let name = NEEDED[i];
        let raw = self.record.get(self.cols[i]).ok_or_else(|| {
            RowError::new(
                &self.file,
                row,
                Some(name),
                "expected a value, the row is too short".into(),
            )
        })?;
        std::str::from_utf8(raw)
            .map_err(|_| RowError::new(&self.file, row, Some(name), "expected UTF-8 text".into()))
    }

    fn time(&self, i: usize, row: u64) -> Result<Option<i64>, RowError> {
        let s = self.field(i, row)?;
        if s.is_empty() || s == "None" {
            return Ok(None);
        }
        parse_datetime(s).map(Some).ok_or_else(|| {
            RowError::new(
                &self.file,
                row,
                Some(NEEDED[i]),
                format!("expected a timestamp like 2020-04-01 10:00:00, found '{s}'"),
            )
        })
    }

    fn parse_row(&mut self, row: u64) -> Result<TraceJob, RowError> {
        let submit = self.time(4, row)?.ok_or_else(|| {
            RowError::new(
                &self.file,
                row,
                Some("submit_time"),
                "expected a timestamp like 2020-04-01 10:00:00, found ''".into(),
            )
        })?;
        let start = self.time(5, row)?;
        let end = self.time(6, row)?;
        let origin = *self.origin.get_or_insert(submit);
        let rel = |t: i64| (t - origin) as f64;
        let dur = self.field(7, row)?;
        let duration_s = if dur.is_empty() {
            None
        } else {
            Some(parse_f64(
                dur,
                &self.file,
                row,
                "duration",
                "a number of seconds",
            )?)
        };
        let duration_s = check_duration(duration_s, &self.file, row, "duration")?;
        Ok(TraceJob {
            id: self.field(0, row)?.to_string(),
            user: self.field(1, row)?.to_string(),
            submit_s: rel(submit),
            start_s: start.map(rel),
            end_s: end.map(rel),
            gpus: parse_u32(self.field(2, row)?, &self.file, row, "gpu_num")?,
            gpu_type: None,
            state: map_state(self.field(3, row)?),
            duration_s,
        })
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<TraceJob, RowError>;
    fn next(&mut self) -> Option<Self::Item> {
        let mut record = std::mem::take(&mut self.record);
        let got = self.csv.read_byte_record(&mut record);
        self.record = record;
        match got {
            Ok(false) => None,
            Ok(true) => {
                let row = self.record.position().map_or(0, |p| p.line());
                Some(self.parse_row(row))
            }
            Err(e) => {
                let row = e.position().map_or(0, |p| p.line());
                Some(Err(RowError::new(
                    &self.file,
                    row,
                    None,
                    format!("expected a CSV row with the header's columns: {e}"),
                )))
            }
        }
    }
}

pub(crate) fn fmt_time(t: Option<f64>, origin: i64) -> String {
    t.map(|t| crate::format_datetime(origin + t.round() as i64))
        .unwrap_or_default()
}

/// Writes `jobs` as a Helios `cluster_log.csv` with times from [`WRITE_ORIGIN`]
/// (rounded to whole seconds, as in the real trace). `vc` is `vc0`; `cpu_num`,
/// `node_num` are derived from the GPUs (8 GPUs per node, 4 CPUs per GPU); `queue`
/// is start minus submit.
pub fn write<W: Write, I: IntoIterator<Item = TraceJob>>(out: W, jobs: I) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(HEADER)?;
    for j in jobs {
        let state = match &j.state {
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Killed => "CANCELLED",
            JobState::Other(s) => s.as_str(),
        };
        let queue = j
            .start_s
            .map(|s| format!("{}", (s - j.submit_s).round()))
            .unwrap_or_default();
        w.write_record([
            j.id.as_str(),
            j.user.as_str(),
            "vc0",
            &j.gpus.to_string(),
            &(j.gpus.max(1) * 4).to_string(),
            &j.gpus.div_ceil(8).max(1).to_string(),
            state,
            &fmt_time(Some(j.submit_s), WRITE_ORIGIN),
            &fmt_time(j.start_s, WRITE_ORIGIN),
            &fmt_time(j.end_s, WRITE_ORIGIN),
            &j.duration_s.map(|d| d.to_string()).unwrap_or_default(),
            &queue,
        ])?;
    }
    w.flush()
}
