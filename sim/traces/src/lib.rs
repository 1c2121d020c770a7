//! Readers and writers of public GPU-cluster trace formats for EAS-Sim.
//!
//! Every reader turns one format into the same neutral record, [`TraceJob`], and
//! **streams**: it is an iterator over `Result<TraceJob, RowError>` reading from any
//! [`BufRead`], so memory does not grow with the trace length. Adaptors applied while
//! streaming: [`SkipBad`] (skip bad rows, counting them), [`Window`] (`from`, `to`,
//! `speedup`) and [`FailurePolicy`] filtering via [`keep_job`]. Writers produce files
//! that the readers read back (used by `eas-sim gen-trace`).
//!
//! Formats: [`helios`] (SenseTime Helios CSV), [`philly`] (Microsoft Philly
//! `cluster_job_log` JSON) and [`alibaba`] (Alibaba PAI `pai_task_table` CSV).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;
use std::io::BufRead;

pub mod alibaba;
pub mod helios;
pub mod input;
pub mod philly;
mod time;

pub use time::{format_datetime, parse_datetime};

/// One job of a trace, independent of the simulator and of the source format.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceJob {
    /// The trace's job identifier (Helios `job_id`, Philly `jobid`, Alibaba `job_name`).
    pub id: String,
    /// The (hashed) user who submitted the job; empty when the format does not say.
    pub user: String,
    /// Arrival: seconds since the trace origin (see each reader for the origin).
    pub submit_s: f64,
    /// When the job first started running, same clock; `None` if never started or not logged.
    pub start_s: Option<f64>,
    /// When the job ended, same clock; `None` if still running or not logged.
    pub end_s: Option<f64>,
    /// GPUs the job requested (0 for CPU-only jobs).
    pub gpus: u32,
    /// GPU model the trace ran the job on, when the trace says (Alibaba `gpu_type`).
    pub gpu_type: Option<String>,
    /// How the job ended.
    pub state: JobState,
    /// Time the job ran, in seconds (not counting queueing); `None` if unknown.
    pub duration_s: Option<f64>,
}

/// How a trace job ended, reduced to what a scheduler study needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobState {
    /// Finished successfully (Helios `COMPLETED`, Philly `Pass`, Alibaba `Terminated`).
    Completed,
    /// Ended by an error (Helios `FAILED`/`TIMEOUT`/`NODE_FAIL`, Philly `Failed`, Alibaba `Failed`).
    Failed,
    /// Stopped by the user or the system (Helios `CANCELLED`, Philly `Killed`, Alibaba `Stopped`...).
    Killed,
    /// Any other status word, kept verbatim (e.g. `Running`, `SUSPENDED`).
    Other(String),
}

impl TraceJob {
    /// The work the job did: run time x GPUs, in GPU-seconds on the trace's GPU type.
    ///
    /// `None` when the run time is unknown. This is the one place the formula lives.
    pub fn work_gpu_s(&self) -> Option<f64> {
        self.duration_s.map(|d| d * f64::from(self.gpus))
    }
}

/// A bad row: which file, which line, which column, and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct RowError {
    /// The file (or stream name) given to the reader.
    pub file: String,
    /// 1-based line number where the bad record starts; 0 when the error is not in a
    /// row (the file cannot be opened).
    pub row: u64,
    /// The column (field name) at fault, if one.
    pub column: Option<String>,
    /// What was wrong, e.g. "expected an integer, found 'x'".
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.row == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        match &self.column {
            Some(c) => write!(
                f,
                "{}: row {}, column {}: {}",
                self.file, self.row, c, self.message
            ),
            None => write!(f, "{}: row {}: {}", self.file, self.row, self.message),
        }
    }
}

impl RowError {
    pub(crate) fn new(file: &str, row: u64, column: Option<&str>, message: String) -> Self {
        RowError {
            file: file.to_string(),
            row,
            column: column.map(str::to_string),
            message,
        }
    }
}

/// Which trace format a file is in (the `format = "..."` of a scenario's arrival source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SenseTime Helios `cluster_log.csv`.
    Helios,
    /// Microsoft Philly `cluster_job_log` (JSON array or one object per line).
    Philly,
    /// Alibaba PAI `pai_task_table.csv` (no header row).
    Alibaba,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "helios" => Ok(Format::Helios),
            "philly" => Ok(Format::Philly),
            "alibaba" | "pai" => Ok(Format::Alibaba),
            _ => Err(format!(
                "unknown trace format '{s}': expected helios, philly or alibaba"
            )),
        }
    }
}

/// Opens a reader of `format` over `input`; `file` names the source in errors.
///
/// The returned iterator streams: one record is held at a time.
pub fn read<'a, R: BufRead + 'a>(
    format: Format,
    input: R,
    file: &str,
) -> Result<Box<dyn Iterator<Item = Result<TraceJob, RowError>> + 'a>, RowError> {
    Ok(match format {
        Format::Helios => Box::new(helios::Reader::new(input, file)?),
        Format::Philly => Box::new(philly::Reader::new(input, file)),
        Format::Alibaba => Box::new(alibaba::Reader::new(input, file)),
    })
}

/// Opens the trace file at `path` in `format` and streams it (a buffered reader).
///
/// For the scenario source `arrivals = { trace = "file", format = "helios" }`; errors
/// name `path`.
pub fn open(
    path: &std::path::Path,
    format: Format,
) -> Result<Box<dyn Iterator<Item = Result<TraceJob, RowError>>>, RowError> {
    let what = format!("the {format:?} trace");
    if format == Format::Philly {
        // JSON: one job object may span many lines; its size is bounded by the reader.
        let (input, name) = open_buffered(path, &what)?;
        return read(format, input, &name);
    }
    let (input, name) = open_rows(path, &what)?;
    read(format, input, &name)
}

/// Opens an Alibaba PAI task table at `path` and streams it with its job table (see
/// [`alibaba::Reader::with_job_table`]); errors name `path`.
pub fn open_alibaba_with_jobs(
    path: &std::path::Path,
    jobs: std::sync::Arc<std::collections::BTreeMap<String, alibaba::JobInfo>>,
) -> Result<Box<dyn Iterator<Item = Result<TraceJob, RowError>>>, RowError> {
    let (input, name) = open_rows(path, "the Alibaba task table")?;
    Ok(Box::new(
        alibaba::Reader::new(input, &name).with_job_table(jobs),
    ))
}

/// Reads a whole PAI `pai_job_table.csv` at `path` (see [`alibaba::load_job_table`]);
/// errors name `path`.
pub fn load_alibaba_job_table(
    path: &std::path::Path,
) -> Result<std::collections::BTreeMap<String, alibaba::JobInfo>, RowError> {
    let (input, name) = open_rows(path, "the Alibaba job table")?;
    alibaba::load_job_table(input, &name)
}

/// A regular file (see [`input::open_regular`]) opened with a 64 KiB buffer, and its name
/// for errors.
fn open_buffered(
    path: &std::path::Path,
    what: &str,
) -> Result<(std::io::BufReader<std::fs::File>, String), RowError> {
    let name = path.display().to_string();
    let file = input::open_regular(path)
        .map_err(|e| RowError::new(&name, 0, None, format!("cannot open {what}: {e}")))?;
    Ok((std::io::BufReader::with_capacity(1 << 16, file), name))
}

/// [`open_buffered`] for a CSV file: rows longer than [`input::MAX_ROW_BYTES`] are errors.
type CsvInput = std::io::BufReader<input::RowLimit<std::fs::File>>;

fn open_rows(path: &std::path::Path, what: &str) -> Result<(CsvInput, String), RowError> {
    let (buffered, name) = open_buffered(path, what)?;
    let file = buffered.into_inner();
    let limited = input::RowLimit::new(file, input::MAX_ROW_BYTES);
    Ok((std::io::BufReader::with_capacity(1 << 16, limited), name))
}

/// Writes `jobs` in `format` to `out`; times are written relative to the format's origin.
pub fn write<W: std::io::Write, I: IntoIterator<Item = TraceJob>>(
    format: Format,
    out: W,
    jobs: I,
) -> std::io::Result<()> {
    match format {
        Format::Helios => helios::write(out, jobs),
        Format::Philly => philly::write(out, jobs),
        Format::Alibaba => alibaba::write(out, jobs),
    }
}

/// Skips bad rows while streaming, counting them (never silently: see [`SkipBad::skipped`]).
#[derive(Debug)]
pub struct SkipBad<I> {
    inner: I,
    skipped: u64,
    first_error: Option<RowError>,
}

impl<I> SkipBad<I> {
    /// Wraps a reader.
    pub fn new(inner: I) -> Self {
        SkipBad {
            inner,
            skipped: 0,
            first_error: None,
        }
    }
    /// How many rows were skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
    /// The first error met, to show the user what kind of rows were skipped.
    pub fn first_error(&self) -> Option<&RowError> {
        self.first_error.as_ref()
    }
}

impl<I: Iterator<Item = Result<TraceJob, RowError>>> Iterator for SkipBad<I> {
    type Item = TraceJob;
    fn next(&mut self) -> Option<TraceJob> {
        loop {
            match self.inner.next()? {
                Ok(j) => return Some(j),
                Err(e) => {
                    self.skipped += 1;
                    if self.first_error.is_none() {
                        self.first_error = Some(e);
                    }
                }
            }
        }
    }
}

/// What to do with jobs that failed or were killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Leave them out of the workload.
    Drop,
    /// Keep them: they occupy their GPUs for the duration they ran, as in the trace.
    #[default]
    KeepWithDuration,
}

/// Whether a job enters the workload under `policy` (completed and other jobs always do).
pub fn keep_job(job: &TraceJob, policy: FailurePolicy) -> bool {
    match policy {
        FailurePolicy::KeepWithDuration => true,
        FailurePolicy::Drop => !matches!(job.state, JobState::Failed | JobState::Killed),
    }
}

/// Time window and rescaling applied while streaming (`--from`, `--to`, `--speedup`).
///
/// A job is kept when `from_s <= submit_s < to_s`. Its times then become
/// `(t - from_s) / speedup`, so the window starts at 0 and arrivals come `speedup`
/// times faster. Run times (`duration_s`) are not scaled: the work is physical.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Start of the window, seconds on the trace clock.
    pub from_s: f64,
    /// End of the window (exclusive), seconds on the trace clock.
    pub to_s: f64,
    /// Arrival-rate multiplier (> 0); 1 keeps the trace's pace.
    pub speedup: f64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            from_s: f64::NEG_INFINITY,
            to_s: f64::INFINITY,
            speedup: 1.0,
        }
    }
}

impl Window {
    /// A checked window: `from_s < to_s` and a finite `speedup > 0`, else a message
    /// saying what was expected (for `--from`, `--to`, `--speedup`).
    pub fn new(from_s: f64, to_s: f64, speedup: f64) -> Result<Self, String> {
        if !(speedup.is_finite() && speedup > 0.0) {
            return Err(format!(
                "--speedup: expected a number above 0, found {speedup}"
            ));
        }
        if from_s.is_nan() || to_s.is_nan() || from_s >= to_s {
            return Err(format!("--from {from_s} must be before --to {to_s}"));
        }
        Ok(Window {
            from_s,
            to_s,
            speedup,
        })
    }

    /// Maps a trace time into the window's clock: `(t - from_s) / speedup`
    /// (`from_s` counts as 0 when unbounded).
    pub fn rescale(&self, t: f64) -> f64 {
        let origin = if self.from_s.is_finite() {
            self.from_s
        } else {
            0.0
        };
        (t - origin) / self.speedup
    }

    /// Applies the window to one job: `None` if outside, else the rescaled job.
    pub fn apply(&self, mut job: TraceJob) -> Option<TraceJob> {
        if !(job.submit_s >= self.from_s && job.submit_s < self.to_s) {
            return None;
        }
        job.submit_s = self.rescale(job.submit_s);
        job.start_s = job.start_s.map(|t| self.rescale(t));
        job.end_s = job.end_s.map(|t| self.rescale(t));
        Some(job)
    }
}

/// 64-bit FNV-1a: a fixed, portable hash (never std's randomly keyed one).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Picks a model for a job whose trace does not say, deterministically.
///
/// Hashes (seed as 8 little-endian bytes, then the job id's bytes) with [`fnv1a64`],
/// takes it modulo the total weight, and returns the index of the entry of `weights`
/// whose cumulative range holds it. Same seed and id, same model, on every machine.
/// Returns `None` if the weights sum to 0.
pub fn assign_model(seed: u64, job_id: &str, weights: &[u64]) -> Option<usize> {
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return None;
    }
    let mut bytes = seed.to_le_bytes().to_vec();
    bytes.extend_from_slice(job_id.as_bytes());
    let mut r = fnv1a64(&bytes) % total;
    for (i, w) in weights.iter().enumerate() {
        if r < *w {
            return Some(i);
        }
        r -= w;
    }
    None
}

/// Parses a run of optional float seconds, shared by the CSV readers.
/// A run time must be a finite, non-negative number of seconds: an end before its start is a bad
/// row, never a negative duration passed on to the simulator.
pub(crate) fn check_duration(
    d: Option<f64>,
    file: &str,
    row: u64,
    col: &str,
) -> Result<Option<f64>, RowError> {
    match d {
        Some(v) if !(v.is_finite() && v >= 0.0) => Err(RowError::new(
            file,
            row,
            Some(col),
            format!("expected an end not before the start (a duration >= 0 s), found {v} s"),
        )),
        _ => Ok(d),
    }
}

pub(crate) fn parse_f64(
    s: &str,
    file: &str,
    row: u64,
    col: &str,
    what: &str,
) -> Result<f64, RowError> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            RowError::new(
                file,
                row,
                Some(col),
                format!("expected {what}, found '{s}'"),
            )
        })
}

/// Parses a non-negative integer GPU or instance count.
pub(crate) fn parse_u32(s: &str, file: &str, row: u64, col: &str) -> Result<u32, RowError> {
    s.trim().parse::<u32>().map_err(|_| {
        RowError::new(
            file,
            row,
            Some(col),
            format!("expected a non-negative integer, found '{s}'"),
        )
    })
}
