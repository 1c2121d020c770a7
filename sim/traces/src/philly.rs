//! Microsoft Philly job log (`cluster_job_log`).
//!
//! Layout from repository `msr-fiddle/philly-traces`, file `README.md` (schema of
//! `cluster_job_log`): a JSON array of objects with keys `status` (`Pass`, `Killed`,
//! `Failed`), `vc`, `jobid`, `user`, `submitted_time` and `attempts`, a list of
//! `{start_time, end_time, detail: [{ip, gpus: [..]}]}`. Times are
//! `YYYY-MM-DD HH:MM:SS`; an attempt's times may be missing or `None` (logging
//! errors, or still running at snapshot time).
//!
//! The reader streams: it cuts the top-level array into one object at a time by
//! bracket depth and decodes only that object, so a 6 GB log needs memory for one job.
//! It also accepts one object per line (JSON Lines). Mapping: GPUs = the largest
//! number of GPUs any attempt held; start = first attempt's start; end = last
//! attempt's end; duration = sum of the attempts' run times (attempts lacking a time
//! are not counted). Times are relative to the first job's `submitted_time` unless an
//! origin is given.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::{check_duration, parse_datetime, JobState, RowError, TraceJob};

/// Origin written by [`write()`]: 2017-08-07 00:00:00, the first day of the Philly trace.
pub const WRITE_ORIGIN: i64 = 1_502_064_000;

#[derive(Debug, Deserialize, Serialize)]
struct PJob {
    status: String,
    #[serde(default)]
    vc: Option<String>,
    jobid: String,
    user: String,
    submitted_time: Option<String>,
    #[serde(default)]
    attempts: Vec<PAttempt>,
}

#[derive(Debug, Deserialize, Serialize)]
struct PAttempt {
    start_time: Option<String>,
    end_time: Option<String>,
    #[serde(default)]
    detail: Vec<PDetail>,
}

#[derive(Debug, Deserialize, Serialize)]
struct PDetail {
    ip: String,
    gpus: Vec<String>,
}

/// Maps a Philly `status` word.
pub fn map_state(s: &str) -> JobState {
    match s {
        "Pass" => JobState::Completed,
        "Failed" => JobState::Failed,
        "Killed" => JobState::Killed,
        other => JobState::Other(other.to_string()),
    }
}

/// Streaming reader of a Philly `cluster_job_log`.
#[derive(Debug)]
pub struct Reader<R> {
    input: R,
    file: String,
    line: u64,
    origin: Option<i64>,
    buf: Vec<u8>,
    failed: bool,
}

impl<R: BufRead> Reader<R> {
    /// Reader with times relative to the first job's submit time.
    pub fn new(input: R, file: &str) -> Self {
        Self::with_origin(input, file, None)
    }

    /// Reader with times relative to `origin` (seconds since 1970-01-01 00:00:00) when given.
    pub fn with_origin(input: R, file: &str, origin: Option<i64>) -> Self {
        Reader {
            input,
            file: file.to_string(),
            line: 1,
            origin,
            buf: Vec::new(),
            failed: false,
        }
    }

    /// Cuts the next top-level object into `self.buf`; returns its first line, or
    /// `None` at the end.
    fn next_object(&mut self) -> Result<Option<u64>, RowError> {
        self.buf.clear();
        let (mut depth, mut in_str, mut esc) = (0u32, false, false);
        let mut start_line = 0;
        loop {
            let chunk = self.input.fill_buf().map_err(|e| {
                RowError::new(&self.file, self.line, None, format!("cannot read: {e}"))
            })?;
            if chunk.is_empty() {
                if depth > 0 {
                    return Err(RowError::new(
                        &self.file,
                        start_line,
                        None,
                        "expected the job object to be closed with '}', the file ends first".into(),
                    ));
                }
                return Ok(None);
            }
            let mut used = 0;
            let mut done = false;
            for &b in chunk {
                used += 1;
                if depth == 0 {
                    match b {
                        b'\n' => self.line += 1,
                        b'{' => {
                            depth = 1;
                            start_line = self.line;
                            self.buf.push(b);
                        }
                        b' ' | b'\t' | b'\r' | b'[' | b']' | b',' => {}
                        other => {
                            let line = self.line;
                            self.input.consume(used);
                            return Err(RowError::new(
                                &self.file,
                                line,
                                None,
                                format!(
                                    "expected a JSON array of job objects, found '{}'",
                                    other as char
                                ),
                            ));
                        }
                    }
                    continue;
                }
                self.buf.push(b);
                if b == b'\n' {
                    self.line += 1;
                }
                if self.buf.len() > crate::input::MAX_OBJECT_BYTES {
                    let msg = format!(
                        "the job object is longer than {} bytes, the most one job may hold (is the file a Philly log?)",
                        crate::input::MAX_OBJECT_BYTES
                    );
                    self.input.consume(used);
                    self.buf.clear();
                    return Err(RowError::new(&self.file, start_line, None, msg));
                }
                if in_str {
                    if esc {
                        esc = false;
                    } else if b == b'\\' {
                        esc = true;
                    } else if b == b'"' {
                        in_str = false;
                    }
                    continue;
                }
                match b {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            done = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            self.input.consume(used);
            if done {
                return Ok(Some(start_line));
            }
        }
    }

    fn time(&self, s: &Option<String>, row: u64, col: &str) -> Result<Option<i64>, RowError> {
        match s.as_deref() {
            None | Some("None") | Some("") => Ok(None),
            Some(t) => parse_datetime(t).map(Some).ok_or_else(|| {
                RowError::new(
                    &self.file,
                    row,
                    Some(col),
                    format!("expected a timestamp like 2017-10-07 01:12:09, found '{t}'"),
                )
            }),
        }
    }

    fn decode(&mut self, row: u64) -> Result<TraceJob, RowError> {
        let job: PJob = serde_json::from_slice(&self.buf).map_err(|e| {
            RowError::new(&self.file, row, None, format!("expected a Philly job object (status, jobid, user, submitted_time, attempts): {e}"))
        })?;
        let submit = self
            .time(&job.submitted_time, row, "submitted_time")?
            .ok_or_else(|| {
                RowError::new(
                    &self.file,
                    row,
                    Some("submitted_time"),
                    "expected a timestamp like 2017-10-07 01:12:09, found None".into(),
                )
            })?;
        let origin = *self.origin.get_or_insert(submit);
        let rel = |t: i64| (t - origin) as f64;
        let mut gpus = 0u32;
        let mut duration: Option<f64> = None;
        let (mut start, mut end) = (None, None);
        for (i, a) in job.attempts.iter().enumerate() {
            let s = self.time(&a.start_time, row, "attempts.start_time")?;
            let e = self.time(&a.end_time, row, "attempts.end_time")?;
            if i == 0 {
                start = s;
            }
            end = e;
            if let (Some(s), Some(e)) = (s, e) {
                let d = check_duration(Some((e - s) as f64), &self.file, row, "attempts.end_time")?;
                *duration.get_or_insert(0.0) += d.unwrap_or(0.0);
            }
            let n: usize = a.detail.iter().map(|d| d.gpus.len()).sum();
            gpus = gpus.max(u32::try_from(n).unwrap_or(u32::MAX));
        }
        Ok(TraceJob {
            id: job.jobid,
            user: job.user,
            submit_s: rel(submit),
            start_s: start.map(rel),
            end_s: end.map(rel),
            gpus,
            gpu_type: None,
            state: map_state(&job.status),
            duration_s: duration,
        })
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<TraceJob, RowError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_object() {
            Ok(None) => None,
            Ok(Some(row)) => Some(self.decode(row)),
            Err(e) => {
                // Framing is lost: stop after reporting it.
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Writes `jobs` as a Philly `cluster_job_log` JSON array, one job per line, times
/// from [`WRITE_ORIGIN`] (whole seconds). A job with a start or end gets one attempt
/// (missing times written `None`) on nodes of 8 GPUs named `m0`, `m1`, ...; a job with
/// neither gets no attempt. `vc` is `vc0`.
pub fn write<W: Write, I: IntoIterator<Item = TraceJob>>(
    mut out: W,
    jobs: I,
) -> std::io::Result<()> {
    let t = |x: Option<f64>| {
        Some(x.map_or_else(
            || "None".to_string(),
            |x| crate::format_datetime(WRITE_ORIGIN + x.round() as i64),
        ))
    };
    out.write_all(b"[")?;
    for (n, j) in jobs.into_iter().enumerate() {
        let attempts = if j.start_s.is_some() || j.end_s.is_some() {
            let detail = (0..j.gpus.div_ceil(8))
                .map(|node| PDetail {
                    ip: format!("m{node}"),
                    gpus: (0..(j.gpus - node * 8).min(8))
                        .map(|g| format!("gpu{g}"))
                        .collect(),
                })
                .collect();
            vec![PAttempt {
                start_time: t(j.start_s),
                end_time: t(j.end_s),
                detail,
            }]
        } else {
            Vec::new()
        };
        let status = match &j.state {
            JobState::Completed => "Pass".to_string(),
            JobState::Failed => "Failed".to_string(),
            JobState::Killed => "Killed".to_string(),
            JobState::Other(s) => s.clone(),
        };
        let pj = PJob {
            status,
            vc: Some("vc0".into()),
            jobid: j.id,
            user: j.user,
            submitted_time: t(Some(j.submit_s)),
            attempts,
        };
        out.write_all(if n == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut out, &pj)?;
    }
    out.write_all(b"\n]\n")?;
    out.flush()
}
