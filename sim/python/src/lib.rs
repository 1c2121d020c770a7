//! The `eas_sim` Python module's native part (`eas_sim._eas_sim`): the simulator's own scenario
//! loader, engine and JSON serialisation, and policies written in Python run by the Rust engine.
//! The Python package (`python/eas_sim/__init__.py`) turns the JSON this part returns into
//! Python objects, so what Python gets is what `eas-sim ... --json` writes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use ea2p_core::jobmodel::{evaluate, Config, GpuSpec, ModelProfile};
use ea2p_core::policy::{ClusterView, Decision, Decisions, JobView, PolicyKind};
use ea2p_core::units::secs;
use eas_sim::public_trace::SharedTally;
use eas_sim::results::{Comparison, PolicySummary, RunResult};
use eas_sim::scenario::{self, Scenario};
use eas_sim::sim::{self, ExternalPolicy, RunOptions, SimError};
use eas_sim::{report, workload};
use pyo3::create_exception;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

create_exception!(
    _eas_sim,
    EasSimError,
    PyRuntimeError,
    "A simulation that could not run: a trace that cannot be read, an invariant broken."
);
create_exception!(
    _eas_sim,
    ScenarioError,
    PyValueError,
    "A scenario that does not load: the program's message (file, line, column, what was expected)."
);
create_exception!(
    _eas_sim,
    DecisionError,
    PyValueError,
    "A policy's decision the core refused: names the policy, the time, the job and the reason."
);

// --- scenarios ----------------------------------------------------------------------------

/// A resolved scenario: fields a file, a string or a dict leaves out come from the seed protocol.
#[pyclass(name = "Scenario", module = "eas_sim", frozen)]
#[derive(Clone)]
struct PyScenario {
    inner: Scenario,
}

fn scenario_error(e: scenario::ScenarioError) -> PyErr {
    ScenarioError::new_err(e.to_string())
}

/// Python value -> TOML value, for a scenario given as a dict.
fn to_toml(v: &Bound<'_, PyAny>, path: &str) -> PyResult<toml::Value> {
    if let Ok(b) = v.downcast::<PyBool>() {
        return Ok(toml::Value::Boolean(b.is_true()));
    }
    if let Ok(i) = v.downcast::<PyInt>() {
        return Ok(toml::Value::Integer(i.extract()?));
    }
    if let Ok(f) = v.downcast::<PyFloat>() {
        return Ok(toml::Value::Float(f.value()));
    }
    if let Ok(s) = v.downcast::<PyString>() {
        return Ok(toml::Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = v.downcast::<PyDict>() {
        let mut t = toml::Table::new();
        for (k, x) in d.iter() {
            let key: String = k.extract().map_err(|_| {
                ScenarioError::new_err(format!("scenario dict: {path}: keys must be strings"))
            })?;
            let sub = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if !x.is_none() {
                t.insert(key, to_toml(&x, &sub)?);
            }
        }
        return Ok(toml::Value::Table(t));
    }
    if v.downcast::<PyList>().is_ok() || v.downcast::<PyTuple>().is_ok() {
        let items = v
            .try_iter()?
            .enumerate()
            .map(|(i, x)| to_toml(&x?, &format!("{path}[{i}]")))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(toml::Value::Array(items));
    }
    Err(ScenarioError::new_err(format!(
        "scenario dict: {path}: expected a bool, number, string, list or dict, got {}",
        v.get_type().name()?
    )))
}

fn from_dict(d: &Bound<'_, PyDict>) -> PyResult<Scenario> {
    let toml::Value::Table(t) = to_toml(d.as_any(), "")? else {
        unreachable!("a dict gives a table")
    };
    let text =
        toml::to_string(&t).map_err(|e| ScenarioError::new_err(format!("scenario dict: {e}")))?;
    scenario::parse_str(&text, "<dict>", None).map_err(|e| {
        // Lines and columns are those of the dict written as TOML: show the line.
        let line = text.lines().nth(e.line.saturating_sub(1)).unwrap_or("");
        if e.line == 0 {
            scenario_error(e)
        } else {
            ScenarioError::new_err(format!("{e} (the dict as TOML, line {}: {line})", e.line))
        }
    })
}

#[pymethods]
impl PyScenario {
    /// Reads a scenario file (TOML), as `eas-sim --scenario FILE` does.
    #[staticmethod]
    fn from_file(path: PathBuf) -> PyResult<Self> {
        Scenario::from_file(&path)
            .map(|inner| PyScenario { inner })
            .map_err(scenario_error)
    }

    /// Parses scenario TOML text; `name` stands for the file in messages.
    #[staticmethod]
    #[pyo3(signature = (text, name = "<string>"))]
    fn from_toml(text: &str, name: &str) -> PyResult<Self> {
        scenario::parse_str(text, name, None)
            .map(|inner| PyScenario { inner })
            .map_err(scenario_error)
    }

    /// A scenario from a dict shaped like the TOML file (tables as dicts, arrays as lists).
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyDict>) -> PyResult<Self> {
        from_dict(d).map(|inner| PyScenario { inner })
    }

    /// The built-in seed protocol (what `eas-sim scenario` prints).
    #[staticmethod]
    fn seed_protocol() -> Self {
        PyScenario {
            inner: Scenario::seed_protocol(),
        }
    }

    /// Scenario name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Simulated hours.
    #[getter]
    fn hours(&self) -> f64 {
        self.inner.hours
    }

    /// Seeds (independent runs).
    #[getter]
    fn seeds(&self) -> u32 {
        self.inner.seeds
    }

    /// GPU type names (index = type id).
    #[getter]
    fn gpu_types(&self) -> Vec<String> {
        self.inner
            .gpu_types
            .iter()
            .map(|g| g.name.clone())
            .collect()
    }

    /// GPUs of each type.
    #[getter]
    fn gpu_counts(&self) -> Vec<u32> {
        self.inner.gpu_counts.clone()
    }

    /// Model names (index = model id).
    #[getter]
    fn models(&self) -> Vec<String> {
        self.inner
            .models
            .iter()
            .map(|(m, _)| m.name.clone())
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "Scenario({:?} from {}: {} h, {} seeds)",
            self.inner.name, self.inner.origin, self.inner.hours, self.inner.seeds
        )
    }
}

/// A scenario from what a caller gave: None (the seed protocol), a Scenario, a dict, TOML text
/// (a str with a newline or an `=`) or a path.
fn scenario_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Scenario> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Scenario::seed_protocol());
    };
    if let Ok(s) = obj.downcast::<PyScenario>() {
        return Ok(s.get().inner.clone());
    }
    if let Ok(d) = obj.downcast::<PyDict>() {
        return from_dict(d);
    }
    if let Ok(s) = obj.downcast::<PyString>() {
        let s = s.to_cow()?;
        if s.contains('\n') || s.contains('=') {
            return scenario::parse_str(&s, "<string>", None).map_err(scenario_error);
        }
    }
    let path: PathBuf = obj.extract().map_err(|_| {
        PyTypeError::new_err(
            "scenario: expected None, an eas_sim.Scenario, a dict, TOML text or a path",
        )
    })?;
    Scenario::from_file(&path).map_err(scenario_error)
}

/// The program's `--hours` and `--seeds` overrides, with its checks.
fn with_overrides(mut sc: Scenario, hours: Option<f64>, seeds: Option<u32>) -> PyResult<Scenario> {
    if let Some(h) = hours {
        if !(h > 0.0 && h.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "hours: expected a positive number of hours, got {h}"
            )));
        }
        sc.hours = h;
    }
    if let Some(s) = seeds {
        if s == 0 {
            return Err(PyValueError::new_err("seeds: expected at least 1"));
        }
        sc.seeds = s;
    }
    Ok(sc)
}

fn parse_policy(s: &str) -> PyResult<PolicyKind> {
    PolicyKind::from_name(s.trim()).ok_or_else(|| {
        let all: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.name()).collect();
        PyValueError::new_err(format!(
            "unknown policy {s:?}: expected one of {}",
            all.join(", ")
        ))
    })
}

// --- what a Python policy sees ----------------------------------------------------------------

/// Per run: what every round's objects share.
struct RunCtx {
    specs: Vec<GpuSpec>,
    profiles: Vec<ModelProfile>,
    type_names: Vec<Py<PyString>>,
    model_names: Vec<Py<PyString>>,
}

/// A running job's configuration.
#[pyclass(name = "Config", module = "eas_sim", frozen)]
struct PyConfig {
    /// GPU type name.
    #[pyo3(get)]
    gpu_type: Py<PyString>,
    /// GPU type index.
    #[pyo3(get)]
    gpu_type_index: u8,
    /// GPU count.
    #[pyo3(get)]
    gpus: u32,
    /// Total batch.
    #[pyo3(get)]
    batch: u32,
    /// Power limit per GPU, W.
    #[pyo3(get)]
    limit_w: f64,
}

#[pymethods]
impl PyConfig {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Config(gpu_type={}, gpus={}, batch={}, limit_w={})",
            self.gpu_type.bind(py),
            self.gpus,
            self.batch,
            self.limit_w
        )
    }
}

/// What a policy sees of one job: the core's `JobView`, times in seconds, names for indices.
#[pyclass(name = "Job", module = "eas_sim", frozen)]
struct PyJob {
    /// Job id (arrival order; ties in every ordering are broken by it).
    #[pyo3(get)]
    id: u64,
    /// Model name.
    #[pyo3(get)]
    model: Py<PyString>,
    /// User id.
    #[pyo3(get)]
    user: u32,
    /// Arrival, s.
    #[pyo3(get)]
    arrival_s: f64,
    /// Work left, reference samples.
    #[pyo3(get)]
    remaining_work: f64,
    /// Deadline, s, or None.
    #[pyo3(get)]
    deadline_s: Option<f64>,
    /// Urgent (deadline-critical) rather than best effort.
    #[pyo3(get)]
    urgent: bool,
    /// Rigid jobs keep their requested type, GPU count and batch.
    #[pyo3(get)]
    rigid: bool,
    /// Requested GPU type name, or None for any.
    #[pyo3(get)]
    requested_gpu_type: Option<Py<PyString>>,
    /// Requested GPU count.
    #[pyo3(get)]
    requested_gpus: u32,
    /// Requested total batch.
    #[pyo3(get)]
    requested_batch: u32,
    /// Current configuration if running, None if pending.
    #[pyo3(get)]
    running: Option<Py<PyConfig>>,
    /// Reference samples since the last checkpoint: lost if preempted now.
    #[pyo3(get)]
    work_at_risk: f64,
    /// GPU-seconds the job's user has consumed so far.
    #[pyo3(get)]
    user_gpu_s: f64,
    /// Joules the job's user has consumed so far.
    #[pyo3(get)]
    user_energy_j: f64,
    index: u32,
    view: JobView,
}

#[pymethods]
impl PyJob {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Job(id={}, model={}, remaining_work={}, {})",
            self.id,
            self.model.bind(py),
            self.remaining_work,
            if self.running.is_some() {
                "running"
            } else {
                "pending"
            }
        )
    }
}

/// What the model predicts of a configuration for a job's remaining work.
#[pyclass(name = "Prediction", module = "eas_sim", frozen, get_all)]
struct PyPrediction {
    /// Samples per second.
    throughput: f64,
    /// Reference samples per second (throughput x statistical efficiency).
    goodput: f64,
    /// Power per GPU while training, W.
    power_per_gpu_w: f64,
    /// Power of all the job's GPUs, W.
    job_power_w: f64,
    /// Time to finish the remaining work, s.
    time_s: f64,
    /// Energy to finish it, J.
    energy_j: f64,
}

#[pymethods]
impl PyPrediction {
    fn __repr__(&self) -> String {
        format!(
            "Prediction(time_s={:.1}, energy_j={:.1}, goodput={:.2}, job_power_w={:.1})",
            self.time_s, self.energy_j, self.goodput, self.job_power_w
        )
    }
}

/// One scheduling round, as a policy sees it.
#[pyclass(name = "State", module = "eas_sim", frozen)]
struct PyState {
    /// Simulated time, s.
    #[pyo3(get)]
    now_s: f64,
    /// Pending jobs (arrival order is not promised: sort them).
    #[pyo3(get)]
    pending: Py<PyList>,
    /// Running jobs.
    #[pyo3(get)]
    running: Py<PyList>,
    /// Free GPUs of each type (index = type).
    #[pyo3(get)]
    free: Vec<u32>,
    /// GPUs of each type.
    #[pyo3(get)]
    total: Vec<u32>,
    /// Cluster power cap, W, or None.
    #[pyo3(get)]
    power_cap_w: Option<f64>,
    ctx: Arc<RunCtx>,
}

fn type_index(ctx: &RunCtx, py: Python<'_>, t: &Bound<'_, PyAny>, job: u64) -> PyResult<u8> {
    if let Ok(i) = t.extract::<u8>() {
        if (i as usize) < ctx.specs.len() {
            return Ok(i);
        }
    } else if let Ok(name) = t.extract::<String>() {
        if let Some(i) = ctx
            .type_names
            .iter()
            .position(|n| n.bind(py).to_cow().is_ok_and(|s| *s == *name))
        {
            return Ok(i as u8);
        }
    }
    let names: Vec<String> = ctx
        .type_names
        .iter()
        .map(|n| n.bind(py).to_string())
        .collect();
    Err(DecisionError::new_err(format!(
        "job {job}: unknown GPU type {}: expected one of {} (or their indices 0..{})",
        t.repr()?,
        names.join(", "),
        names.len()
    )))
}

#[pymethods]
impl PyState {
    /// GPU type names (index = type).
    #[getter]
    fn gpu_types(&self, py: Python<'_>) -> Vec<Py<PyString>> {
        self.ctx
            .type_names
            .iter()
            .map(|n| n.clone_ref(py))
            .collect()
    }

    /// Highest power limit of each GPU type, W (a limit of this much is no limit).
    #[getter]
    fn max_power_w(&self) -> Vec<f64> {
        self.ctx.specs.iter().map(|s| s.max_w).collect()
    }

    /// Lowest power limit of each GPU type, W.
    #[getter]
    fn min_power_limit_w(&self) -> Vec<f64> {
        self.ctx.specs.iter().map(|s| s.min_limit_w).collect()
    }

    /// The model's prediction for `job`'s remaining work in a configuration (defaults: the
    /// job's requested type, count and batch, no power limit), or None if the configuration
    /// does not run (the model has no figures for the type, too many GPUs, batch out of range).
    #[pyo3(signature = (job, gpu_type = None, gpus = None, batch = None, limit_w = None))]
    fn predict(
        &self,
        py: Python<'_>,
        job: PyRef<'_, PyJob>,
        gpu_type: Option<&Bound<'_, PyAny>>,
        gpus: Option<u32>,
        batch: Option<u32>,
        limit_w: Option<f64>,
    ) -> PyResult<Option<PyPrediction>> {
        let v = &job.view;
        let ty = match gpu_type {
            Some(t) => type_index(&self.ctx, py, t, v.id)?,
            None => v.request.gpu_type.ok_or_else(|| {
                PyValueError::new_err(format!(
                    "predict: job {} asked for any GPU type: give gpu_type",
                    v.id
                ))
            })?,
        };
        let cfg = Config {
            gpu_type: ty,
            gpus: gpus.unwrap_or(v.request.gpus),
            batch: batch.unwrap_or(v.request.batch),
            limit_w: limit_w.unwrap_or(self.ctx.specs[ty as usize].max_w),
        };
        let Some(model) = self.ctx.profiles.get(v.model as usize) else {
            return Ok(None);
        };
        Ok(evaluate(model, &self.ctx.specs, &cfg)
            .ok()
            .map(|p| PyPrediction {
                throughput: p.throughput,
                goodput: p.goodput,
                power_per_gpu_w: p.power_per_gpu_w,
                job_power_w: p.job_power_w(cfg.gpus),
                time_s: v.remaining_work / p.goodput,
                energy_j: p.joules_per_sample(cfg.gpus) * v.remaining_work,
            }))
    }
}

// --- decisions ------------------------------------------------------------------------------

/// Start a pending job: `job` (a Job or its id) on `gpus` GPUs of `gpu_type` (name or index),
/// total batch `batch` (default: the job's requested batch), power limit `limit_w` per GPU
/// (default: none).
#[pyclass(name = "Start", module = "eas_sim", frozen, get_all)]
struct PyStart {
    job: PyObject,
    gpu_type: PyObject,
    gpus: u32,
    batch: Option<u32>,
    limit_w: Option<f64>,
}

#[pymethods]
impl PyStart {
    #[new]
    #[pyo3(signature = (job, gpu_type, gpus, batch = None, limit_w = None))]
    fn new(
        job: PyObject,
        gpu_type: PyObject,
        gpus: u32,
        batch: Option<u32>,
        limit_w: Option<f64>,
    ) -> Self {
        PyStart {
            job,
            gpu_type,
            gpus,
            batch,
            limit_w,
        }
    }
}

/// Change a running job's configuration (another type, count or batch costs a checkpoint and a
/// restart; a power limit alone does not). Arguments as for Start.
#[pyclass(name = "Resize", module = "eas_sim", frozen, get_all)]
struct PyResize {
    job: PyObject,
    gpu_type: PyObject,
    gpus: u32,
    batch: Option<u32>,
    limit_w: Option<f64>,
}

#[pymethods]
impl PyResize {
    #[new]
    #[pyo3(signature = (job, gpu_type, gpus, batch = None, limit_w = None))]
    fn new(
        job: PyObject,
        gpu_type: PyObject,
        gpus: u32,
        batch: Option<u32>,
        limit_w: Option<f64>,
    ) -> Self {
        PyResize {
            job,
            gpu_type,
            gpus,
            batch,
            limit_w,
        }
    }
}

/// Stop a running job (a Job or its id); work since its last checkpoint is lost.
#[pyclass(name = "Preempt", module = "eas_sim", frozen, get_all)]
struct PyPreempt {
    job: PyObject,
}

#[pymethods]
impl PyPreempt {
    #[new]
    fn new(job: PyObject) -> Self {
        PyPreempt { job }
    }
}

/// A Python object with `schedule(state)`, run by the engine as an [`ExternalPolicy`]. An
/// exception it raises (or a decision that does not parse) is kept and re-raised as is.
struct PyPolicy<'py> {
    py: Python<'py>,
    obj: Bound<'py, PyAny>,
    name: String,
    ctx: Arc<RunCtx>,
    error: Option<PyErr>,
    /// Job id -> index of the round, built only when a decision names a job by id.
    by_id: HashMap<u64, u32>,
    /// Rounds run.
    rounds: u64,
}

fn policy_name(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(n) = obj.getattr("name") {
        if let Ok(s) = n.extract::<String>() {
            return Ok(s);
        }
    }
    Ok(obj.get_type().name()?.to_string())
}

impl<'py> PyPolicy<'py> {
    fn new(py: Python<'py>, obj: Bound<'py, PyAny>, sc: &Scenario) -> PyResult<Self> {
        if !obj.hasattr("schedule")? {
            return Err(PyTypeError::new_err(format!(
                "policy {}: expected a policy name or an object with a schedule(state) method",
                obj.repr()?
            )));
        }
        let name = policy_name(&obj)?;
        let ctx = Arc::new(RunCtx {
            specs: sc.specs(),
            profiles: sc.profiles(),
            type_names: sc
                .gpu_types
                .iter()
                .map(|g| PyString::new(py, &g.name).unbind())
                .collect(),
            model_names: sc
                .models
                .iter()
                .map(|(m, _)| PyString::new(py, &m.name).unbind())
                .collect(),
        });
        Ok(PyPolicy {
            py,
            obj,
            name,
            ctx,
            error: None,
            by_id: HashMap::new(),
            rounds: 0,
        })
    }

    fn job(&self, j: &JobView, index: u32) -> PyResult<Bound<'py, PyJob>> {
        let py = self.py;
        let ctx = &self.ctx;
        let running = match j.running {
            Some(c) => Some(Py::new(
                py,
                PyConfig {
                    gpu_type: ctx.type_names[c.gpu_type as usize].clone_ref(py),
                    gpu_type_index: c.gpu_type,
                    gpus: c.gpus,
                    batch: c.batch,
                    limit_w: c.limit_w,
                },
            )?),
            None => None,
        };
        Bound::new(
            py,
            PyJob {
                id: j.id,
                model: ctx.model_names[j.model as usize].clone_ref(py),
                user: j.user,
                arrival_s: secs(j.arrival),
                remaining_work: j.remaining_work,
                deadline_s: j.deadline.map(secs),
                urgent: j.urgent,
                rigid: j.rigid,
                requested_gpu_type: j
                    .request
                    .gpu_type
                    .map(|t| ctx.type_names[t as usize].clone_ref(py)),
                requested_gpus: j.request.gpus,
                requested_batch: j.request.batch,
                running,
                work_at_risk: j.work_at_risk,
                user_gpu_s: j.user_gpu_s,
                user_energy_j: j.user_energy_j,
                index,
                view: *j,
            },
        )
    }

    /// Index in the round of the job a decision names (a Job of this round, or an id).
    fn resolve(&mut self, job: &Bound<'py, PyAny>, jobs: &[JobView]) -> PyResult<u32> {
        let id = if let Ok(j) = job.downcast::<PyJob>() {
            let j = j.get();
            if jobs.get(j.index as usize).is_some_and(|v| v.id == j.id) {
                return Ok(j.index);
            }
            j.id
        } else {
            job.extract::<u64>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "policy {}: a decision's job must be an eas_sim.Job or a job id (int), got {}",
                    self.name,
                    job.get_type().name().map_or("?".into(), |n| n.to_string())
                ))
            })?
        };
        if self.by_id.is_empty() {
            self.by_id
                .extend(jobs.iter().enumerate().map(|(i, v)| (v.id, i as u32)));
        }
        self.by_id.get(&id).copied().ok_or_else(|| {
            DecisionError::new_err(format!(
                "policy {}: job {id} is not in this round (neither pending nor running)",
                self.name
            ))
        })
    }

    fn config(
        &self,
        view: &JobView,
        gpu_type: &Bound<'py, PyAny>,
        gpus: u32,
        batch: Option<u32>,
        limit_w: Option<f64>,
    ) -> PyResult<Config> {
        let ty = type_index(&self.ctx, self.py, gpu_type, view.id).map_err(|e| {
            DecisionError::new_err(format!("policy {}: {}", self.name, e.value(self.py)))
        })?;
        Ok(Config {
            gpu_type: ty,
            gpus,
            batch: batch.unwrap_or(view.request.batch),
            limit_w: limit_w.unwrap_or(self.ctx.specs[ty as usize].max_w),
        })
    }

    fn decision(&mut self, d: &Bound<'py, PyAny>, jobs: &[JobView]) -> PyResult<Decision> {
        if let Ok(s) = d.downcast::<PyStart>() {
            let s = s.get();
            let job = self.resolve(s.job.bind(self.py), jobs)?;
            let cfg = self.config(
                &jobs[job as usize],
                s.gpu_type.bind(self.py),
                s.gpus,
                s.batch,
                s.limit_w,
            )?;
            return Ok(Decision::Start { job, cfg });
        }
        if let Ok(s) = d.downcast::<PyResize>() {
            let s = s.get();
            let job = self.resolve(s.job.bind(self.py), jobs)?;
            let cfg = self.config(
                &jobs[job as usize],
                s.gpu_type.bind(self.py),
                s.gpus,
                s.batch,
                s.limit_w,
            )?;
            return Ok(Decision::Resize { job, cfg });
        }
        if let Ok(p) = d.downcast::<PyPreempt>() {
            let job = self.resolve(p.get().job.bind(self.py), jobs)?;
            return Ok(Decision::Preempt { job });
        }
        Err(PyTypeError::new_err(format!(
            "policy {}: schedule() must return eas_sim.Start, Resize or Preempt decisions (or None), got {}",
            self.name,
            d.repr()?
        )))
    }

    fn round(
        &mut self,
        cluster: &ClusterView<'_>,
        jobs: &[JobView],
        out: &mut Decisions<'_>,
    ) -> PyResult<()> {
        let py = self.py;
        self.rounds += 1;
        self.by_id.clear();
        let pending = PyList::empty(py);
        let running = PyList::empty(py);
        for (i, j) in jobs.iter().enumerate() {
            let job = self.job(j, i as u32)?;
            if j.running.is_some() {
                running.append(job)?;
            } else {
                pending.append(job)?;
            }
        }
        let state = Bound::new(
            py,
            PyState {
                now_s: secs(cluster.now),
                pending: pending.unbind(),
                running: running.unbind(),
                free: cluster.free.to_vec(),
                total: cluster.total.to_vec(),
                power_cap_w: cluster.power_cap_w,
                ctx: self.ctx.clone(),
            },
        )?;
        let ret = self.obj.call_method1(intern!(py, "schedule"), (state,))?;
        if ret.is_none() {
            return Ok(());
        }
        for item in ret.try_iter()? {
            let d = self.decision(&item?, jobs)?;
            if out.push(d).is_err() {
                return Err(DecisionError::new_err(format!(
                    "policy {}: more than {} decisions in one round (at most two per job and per GPU, plus 16)",
                    self.name,
                    out.len()
                )));
            }
        }
        Ok(())
    }
}

impl ExternalPolicy for PyPolicy<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    fn schedule(
        &mut self,
        cluster: &ClusterView<'_>,
        jobs: &[JobView],
        out: &mut Decisions<'_>,
    ) -> Result<(), String> {
        self.round(cluster, jobs, out).map_err(|e| {
            let msg = e.to_string();
            self.error = Some(e);
            msg
        })
    }
}

/// A failed run as a Python exception: the policy's own exception if it raised one, a
/// DecisionError for a decision the core refused, an EasSimError otherwise.
fn run_error(e: SimError, raised: Option<PyErr>) -> PyErr {
    if let Some(err) = raised {
        return err;
    }
    match e {
        SimError::BadDecision { .. } => DecisionError::new_err(e.to_string()),
        _ => EasSimError::new_err(e.to_string()),
    }
}

fn json_err(e: impl std::fmt::Display) -> PyErr {
    EasSimError::new_err(e.to_string())
}

/// Runs a Python policy on one seed.
fn run_python(
    py: Python<'_>,
    sc: &Scenario,
    obj: &Bound<'_, PyAny>,
    run: u32,
    opts: RunOptions,
) -> PyResult<(sim::RunOutput, u64)> {
    let mut policy = PyPolicy::new(py, obj.clone(), sc)?;
    let source =
        workload::source(sc, run, SharedTally::default()).map_err(|e| run_error(e, None))?;
    let out = sim::run_external(sc, &mut policy, source, run, opts);
    match out {
        Ok(o) => Ok((o, policy.rounds)),
        Err(e) => Err(run_error(e, policy.error.take())),
    }
}

enum Entry<'py> {
    Builtin(PolicyKind),
    Python(Bound<'py, PyAny>),
}

fn entries<'py>(policies: Option<&Bound<'py, PyAny>>) -> PyResult<Vec<Entry<'py>>> {
    let Some(list) = policies.filter(|p| !p.is_none()) else {
        return Ok(PolicyKind::ALL.iter().map(|&k| Entry::Builtin(k)).collect());
    };
    if list.downcast::<PyString>().is_ok() {
        return Err(PyTypeError::new_err(
            "policies: expected a list (of policy names or policy objects), got a str",
        ));
    }
    let mut v = Vec::new();
    for item in list.try_iter()? {
        let item = item?;
        v.push(match item.extract::<String>() {
            Ok(s) => Entry::Builtin(parse_policy(&s)?),
            Err(_) => Entry::Python(item),
        });
    }
    if v.is_empty() {
        return Err(PyValueError::new_err(
            "policies: expected at least one policy",
        ));
    }
    Ok(v)
}

fn pool(threads: Option<usize>) -> PyResult<Option<rayon::ThreadPool>> {
    threads
        .map(|n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .map_err(json_err)
        })
        .transpose()
}

/// `compare`: the comparison's JSON (what `eas-sim compare --json` writes) and, with `runs`,
/// every run's JSON line (what `--runs-json` writes).
#[pyfunction]
#[pyo3(signature = (scenario = None, policies = None, seeds = None, hours = None, runs = false, threads = None))]
fn compare_json(
    py: Python<'_>,
    scenario: Option<&Bound<'_, PyAny>>,
    policies: Option<&Bound<'_, PyAny>>,
    seeds: Option<u32>,
    hours: Option<f64>,
    runs: bool,
    threads: Option<usize>,
) -> PyResult<(String, Option<String>)> {
    let sc = with_overrides(scenario_of(scenario)?, hours, seeds)?;
    let entries = entries(policies)?;
    let kinds: Vec<PolicyKind> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Builtin(k) => Some(*k),
            Entry::Python(_) => None,
        })
        .collect();
    // The built-in policies in parallel, without the GIL; the Python ones on this thread.
    let pool = pool(threads)?;
    let builtin = py
        .allow_threads(|| {
            let go = || eas_sim::compare_runs(&sc, &kinds, &|| {});
            match &pool {
                Some(p) => p.install(go),
                None => go(),
            }
        })
        .map_err(|e| run_error(e, None))?;
    let mut builtin = builtin.into_iter();
    let opts = RunOptions {
        skip_per_job: true,
        ..RunOptions::default()
    };
    let mut all: Vec<(String, Vec<RunResult>)> = Vec::new();
    for e in &entries {
        match e {
            Entry::Builtin(k) => all.push((
                k.name().to_string(),
                builtin.next().expect("one run list per built-in policy"),
            )),
            Entry::Python(obj) => {
                let rs = (0..sc.seeds)
                    .map(|s| run_python(py, &sc, obj, s, opts).map(|(o, _)| o.result))
                    .collect::<PyResult<Vec<_>>>()?;
                let name = rs
                    .first()
                    .map_or_else(|| policy_name(obj), |r| Ok(r.policy.clone()))?;
                all.push((name, rs));
            }
        }
    }
    let cmp = Comparison {
        scenario: sc.name.clone(),
        policies: all
            .iter()
            .map(|(name, rs)| PolicySummary::of(name, rs))
            .collect(),
    };
    let text = report::json_text(&cmp).map_err(json_err)?;
    let lines = if runs {
        let mut s = String::new();
        for r in all.iter().flat_map(|(_, rs)| rs) {
            s += &serde_json::to_string(r).map_err(json_err)?;
            s.push('\n');
        }
        Some(s)
    } else {
        None
    };
    Ok((text, lines))
}

/// `run`: one policy (a name or a Python policy) on one seed: the run's JSON (what `eas-sim run
/// --json` writes), with `jobs` every job's outcome as JSON, and the rounds the policy ran.
#[pyfunction]
#[pyo3(signature = (scenario = None, policy = None, run = 0, hours = None, jobs = false))]
fn run_json(
    py: Python<'_>,
    scenario: Option<&Bound<'_, PyAny>>,
    policy: Option<&Bound<'_, PyAny>>,
    run: u32,
    hours: Option<f64>,
    jobs: bool,
) -> PyResult<(String, Option<String>, Option<u64>)> {
    let sc = with_overrides(scenario_of(scenario)?, hours, None)?;
    let opts = RunOptions {
        skip_per_job: !jobs,
        ..RunOptions::default()
    };
    let policy = policy
        .ok_or_else(|| PyTypeError::new_err("run: give policy= (a name or a policy object)"))?;
    let (out, rounds) = match policy.extract::<String>() {
        Ok(name) => {
            let kind = parse_policy(&name)?;
            let out = py
                .allow_threads(|| {
                    workload::source(&sc, run, SharedTally::default())
                        .and_then(|src| sim::run_source(&sc, kind, src, run, opts))
                })
                .map_err(|e| run_error(e, None))?;
            (out, None)
        }
        Err(_) => {
            let (o, r) = run_python(py, &sc, policy, run, opts)?;
            (o, Some(r))
        }
    };
    let text = serde_json::to_string_pretty(&out.result).map_err(json_err)? + "\n";
    let jobs = if jobs {
        Some(serde_json::to_string(&out.jobs).map_err(json_err)?)
    } else {
        None
    };
    Ok((text, jobs, rounds))
}

/// The names of the eight built-in policies, in the order reports list them.
#[pyfunction]
fn builtin_policies() -> Vec<&'static str> {
    PolicyKind::ALL.iter().map(|p| p.name()).collect()
}

#[pymodule]
fn _eas_sim(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("EasSimError", py.get_type::<EasSimError>())?;
    m.add("ScenarioError", py.get_type::<ScenarioError>())?;
    m.add("DecisionError", py.get_type::<DecisionError>())?;
    m.add_class::<PyScenario>()?;
    m.add_class::<PyJob>()?;
    m.add_class::<PyConfig>()?;
    m.add_class::<PyState>()?;
    m.add_class::<PyPrediction>()?;
    m.add_class::<PyStart>()?;
    m.add_class::<PyResize>()?;
    m.add_class::<PyPreempt>()?;
    m.add_function(wrap_pyfunction!(compare_json, m)?)?;
    m.add_function(wrap_pyfunction!(run_json, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_policies, m)?)?;
    Ok(())
}
