//! Alibaba PAI GPU trace (`cluster-trace-gpu-v2020`), task table `pai_task_table.csv`.
//!
//! Layout from repository `alibaba/clusterdata`, files
//! `cluster-trace-gpu-v2020/data/pai_task_table.header` and `.../README.md`: the CSV
//! has **no header row**; its columns are
//! `job_name,task_name,inst_num,status,start_time,end_time,plan_cpu,plan_mem,plan_gpu,gpu_type`.
//! Times are seconds relative to the trace start (integers or floats, empty when
//! unknown); `plan_gpu` is in percent of one GPU (100 = one GPU, empty for CPU tasks);
//! `status` is `Terminated`, `Failed`, `Running` or `Waiting`.
//!
//! A job is the run of consecutive rows with the same `job_name` (the published table
//! lists a job's tasks together); GPUs = sum over tasks of `inst_num` x
//! ceil(`plan_gpu` / 100); submit = start = earliest task start; end = latest task
//! end; duration = end - start; state = `Failed` if any task failed, `Completed` if all
//! terminated, else the first other status; GPU type = the first GPU task's `gpu_type`.
//! The user is in the separate job table (`pai_job_table.csv`, also headerless:
//! `job_name,inst_id,user,status,start_time,end_time`, from
//! `cluster-trace-gpu-v2020/data/pai_job_table.header`): without it `user` is empty;
//! with [`load_job_table`] + [`Reader::with_job_table`] each job gets its user, and its
//! submit time becomes the job table's `start_time` (the job's submission) when
//! present. That table is held in memory (one entry per job), the one part of this
//! crate whose memory grows with the trace. Times are relative to the first job's
//! submit unless an origin is given.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::Arc;

use crate::{check_duration, parse_f64, JobState, RowError, TraceJob};

/// The column names, in file order (the file itself has no header row).
pub const COLUMNS: [&str; 10] = [
    "job_name",
    "task_name",
    "inst_num",
    "status",
    "start_time",
    "end_time",
    "plan_cpu",
    "plan_mem",
    "plan_gpu",
    "gpu_type",
];

/// The job table's columns, in file order (no header row in the file).
pub const JOB_COLUMNS: [&str; 6] = [
    "job_name",
    "inst_id",
    "user",
    "status",
    "start_time",
    "end_time",
];

/// What the job table adds to a job: its user and its submission time.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    /// The hashed user.
    pub user: String,
    /// The job's submission (`start_time` of the job table), seconds on the trace clock.
    pub submit: Option<f64>,
}

/// Reads a whole `pai_job_table.csv` into a map from `job_name` to [`JobInfo`].
///
/// A `job_name` on two rows is an error (file, row, column): the table has one row per job.
pub fn load_job_table<R: BufRead>(
    input: R,
    file: &str,
) -> Result<BTreeMap<String, JobInfo>, RowError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut map = BTreeMap::new();
    let mut rec = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut rec) {
            Ok(false) => return Ok(map),
            Ok(true) => {
                let row = rec.position().map_or(0, |p| p.line());
                if rec.len() != JOB_COLUMNS.len() {
                    return Err(RowError::new(
                        file,
                        row,
                        None,
                        format!(
                            "expected {} columns ({}), found {}",
                            JOB_COLUMNS.len(),
                            JOB_COLUMNS.join(","),
                            rec.len()
                        ),
                    ));
                }
                let st = rec[4].trim();
                let submit = if st.is_empty() || st.eq_ignore_ascii_case("nan") {
                    None
                } else {
                    Some(parse_f64(
                        st,
                        file,
                        row,
                        "start_time",
                        "seconds since the trace start like 3600",
                    )?)
                };
                // One row per job (the PAI README: "each `job_name` corresponds to one
                // `inst_id`"); a second row would silently replace the first's user and
                // submission, so it is refused.
                match map.entry(rec[0].to_string()) {
                    Entry::Occupied(e) => {
                        return Err(RowError::new(
                            file,
                            row,
                            Some("job_name"),
                            format!(
                                "job `{}` appears on an earlier row too; the job table has one row per job",
                                e.key()
                            ),
                        ))
                    }
                    Entry::Vacant(e) => {
                        e.insert(JobInfo {
                            user: rec[2].to_string(),
                            submit,
                        });
                    }
                }
            }
            Err(e) => {
                let row = e.position().map_or(0, |p| p.line());
                return Err(RowError::new(
                    file,
                    row,
                    None,
                    format!("expected a CSV row of the job table: {e}"),
                ));
            }
        }
    }
}

#[derive(Debug)]
struct Partial {
    row: u64,
    id: String,
    start: Option<f64>,
    end: Option<f64>,
    gpus: u32,
    gpu_type: Option<String>,
    failed: bool,
    other: Option<String>,
}

/// Streaming reader of a PAI `pai_task_table.csv`, yielding one [`TraceJob`] per job.
#[derive(Debug)]
pub struct Reader<R> {
    csv: csv::Reader<R>,
    file: String,
    origin: Option<f64>,
    pending: Option<Partial>,
    record: csv::StringRecord,
    done: bool,
    jobs: Option<Arc<BTreeMap<String, JobInfo>>>,
}

impl<R: BufRead> Reader<R> {
    /// Reader with times relative to the first job's submit time.
    pub fn new(input: R, file: &str) -> Self {
        Self::with_origin(input, file, None)
    }

    /// Reader with times relative to `origin` (seconds on the trace clock) when given.
    pub fn with_origin(input: R, file: &str, origin: Option<f64>) -> Self {
        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        Reader {
            csv,
            file: file.to_string(),
            origin,
            pending: None,
            record: csv::StringRecord::new(),
            done: false,
            jobs: None,
        }
    }

    /// Adds the job table (from [`load_job_table`]): users and submission times. A job the
    /// table does not list keeps an empty user and its first task's start as submission.
    ///
    /// The table may be shared (an `Arc`), so that runs reading the same trace load it once.
    pub fn with_job_table(mut self, jobs: impl Into<Arc<BTreeMap<String, JobInfo>>>) -> Self {
        self.jobs = Some(jobs.into());
        self
    }

    fn opt_time(&self, i: usize, row: u64) -> Result<Option<f64>, RowError> {
        let s = self.record.get(i).unwrap_or("").trim();
        if s.is_empty() || s.eq_ignore_ascii_case("nan") {
            return Ok(None);
        }
        parse_f64(
            s,
            &self.file,
            row,
            COLUMNS[i],
            "seconds since the trace start like 3600",
        )
        .map(Some)
    }

    fn parse_task(&self, row: u64) -> Result<Partial, RowError> {
        if self.record.len() != COLUMNS.len() {
            return Err(RowError::new(
                &self.file,
                row,
                None,
                format!(
                    "expected {} columns ({}), found {}",
                    COLUMNS.len(),
                    COLUMNS.join(","),
                    self.record.len()
                ),
            ));
        }
        let inst = parse_f64(
            &self.record[2],
            &self.file,
            row,
            "inst_num",
            "an instance count like 1",
        )?;
        let plan = self.record[8].trim();
        let plan_gpu = if plan.is_empty() || plan.eq_ignore_ascii_case("nan") {
            0.0
        } else {
            parse_f64(
                plan,
                &self.file,
                row,
                "plan_gpu",
                "a percentage of one GPU like 100",
            )?
        };
        if inst < 0.0 || plan_gpu < 0.0 {
            return Err(RowError::new(
                &self.file,
                row,
                Some(if inst < 0.0 { "inst_num" } else { "plan_gpu" }),
                "expected a non-negative number".into(),
            ));
        }
        let gpus = (inst.round() * (plan_gpu / 100.0).ceil()).min(f64::from(u32::MAX)) as u32;
        let status = self.record[3].trim();
        let gt = self.record[9].trim();
        Ok(Partial {
            row,
            id: self.record[0].to_string(),
            start: self.opt_time(4, row)?,
            end: self.opt_time(5, row)?,
            gpus,
            gpu_type: (gpus > 0 && !gt.is_empty()).then(|| gt.to_string()),
            failed: status == "Failed",
            other: (status != "Failed" && status != "Terminated").then(|| status.to_string()),
        })
    }

    fn finish(&mut self, p: Partial) -> Result<TraceJob, RowError> {
        let info = self.jobs.as_ref().and_then(|m| m.get(&p.id));
        let user = info.map(|i| i.user.clone()).unwrap_or_default();
        let start = p.start;
        let submit = info.and_then(|i| i.submit).or(start).ok_or_else(|| {
            RowError::new(
                &self.file,
                p.row,
                Some("start_time"),
                "expected a start time on at least one task of the job, found none".into(),
            )
        })?;
        let origin = *self.origin.get_or_insert(submit);
        let state = if p.failed {
            JobState::Failed
        } else if let Some(o) = p.other {
            JobState::Other(o)
        } else {
            JobState::Completed
        };
        Ok(TraceJob {
            id: p.id,
            user,
            submit_s: submit - origin,
            start_s: start.map(|s| s - origin),
            end_s: p.end.map(|e| e - origin),
            gpus: p.gpus,
            gpu_type: p.gpu_type,
            state,
            duration_s: check_duration(
                match (start, p.end) {
                    (Some(s), Some(e)) => Some(e - s),
                    _ => None,
                },
                &self.file,
                p.row,
                "end_time",
            )?,
        })
    }
}

fn merge(acc: &mut Partial, t: Partial) {
    acc.start = match (acc.start, t.start) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    acc.end = match (acc.end, t.end) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    acc.gpus = acc.gpus.saturating_add(t.gpus);
    if acc.gpu_type.is_none() {
        acc.gpu_type = t.gpu_type;
    }
    acc.failed |= t.failed;
    if acc.other.is_none() {
        acc.other = t.other;
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<TraceJob, RowError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                let p = self.pending.take()?;
                return Some(self.finish(p));
            }
            let mut record = std::mem::take(&mut self.record);
            let got = self.csv.read_record(&mut record);
            self.record = record;
            match got {
                Ok(false) => self.done = true,
                Ok(true) => {
                    let row = self.record.position().map_or(0, |p| p.line());
                    let task = match self.parse_task(row) {
                        Ok(t) => t,
                        Err(e) => return Some(Err(e)),
                    };
                    match self.pending.take() {
                        Some(mut acc) if acc.id == task.id => {
                            merge(&mut acc, task);
                            self.pending = Some(acc);
                        }
                        Some(prev) => {
                            self.pending = Some(task);
                            return Some(self.finish(prev));
                        }
                        None => self.pending = Some(task),
                    }
                }
                Err(e) => {
                    let row = e.position().map_or(0, |p| p.line());
                    return Some(Err(RowError::new(
                        &self.file,
                        row,
                        None,
                        format!("expected a CSV row of the task table: {e}"),
                    )));
                }
            }
        }
    }
}

/// Writes `jobs` as a headerless `pai_task_table.csv`, one task (`worker`, one
/// instance, `plan_gpu` = 100 x GPUs) per job; `Killed` is written `Failed` (PAI has no killed status). `start_time` is the job's arrival and
/// `end_time` arrival + duration (else its end), whole seconds, as in the real table.
pub fn write<W: Write, I: IntoIterator<Item = TraceJob>>(out: W, jobs: I) -> std::io::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    for j in jobs {
        let status = match &j.state {
            JobState::Completed => "Terminated",
            JobState::Failed => "Failed",
            JobState::Killed => "Failed",
            JobState::Other(s) => s.as_str(),
        };
        let end = j.duration_s.map(|d| j.submit_s + d).or(j.end_s);
        w.write_record([
            j.id.as_str(),
            "worker",
            "1",
            status,
            &format!("{}", j.submit_s.round()),
            &end.map(|e| format!("{}", e.round())).unwrap_or_default(),
            "600",
            "29.3",
            &(u64::from(j.gpus) * 100).to_string(),
            j.gpu_type.as_deref().unwrap_or(""),
        ])?;
    }
    w.flush()
}

/// Writes the matching headerless `pai_job_table.csv` (user and submission of each
/// job; `inst_id` repeats the job name), for [`load_job_table`].
pub fn write_job_table<W: Write, I: IntoIterator<Item = TraceJob>>(
    out: W,
    jobs: I,
) -> std::io::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    for j in jobs {
        let status = match &j.state {
            JobState::Completed => "Terminated",
            JobState::Failed | JobState::Killed => "Failed",
            JobState::Other(s) => s.as_str(),
        };
        let end = j.duration_s.map(|d| j.submit_s + d).or(j.end_s);
        w.write_record([
            j.id.as_str(),
            j.id.as_str(),
            j.user.as_str(),
            status,
            &format!("{}", j.submit_s.round()),
            &end.map(|e| format!("{}", e.round())).unwrap_or_default(),
        ])?;
    }
    w.flush()
}
