//! The `ea2p` Python module's native part (`ea2p._ea2p`): the same sampler as the `ea2p`
//! program, on its own native threads, with regions that cost microseconds. The Python package
//! (`python/ea2p/__init__.py`) adds the decorator and re-exports these.

use std::path::PathBuf;

use ea2p_core::metrics::DEFAULT_CARBON_INTENSITY_G_PER_KWH;
use ea2p_sampler::{Devices, DiscoverOptions, Measurement, Monitor, MonitorHandle, MonitorOptions};
use pyo3::create_exception;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

create_exception!(
    _ea2p,
    Ea2pError,
    PyRuntimeError,
    "An ea2p error: a monitor that cannot start, bad options."
);
create_exception!(
    _ea2p,
    RegionError,
    Ea2pError,
    "A region call that cannot be honoured: begin of an open name, end of a name not open."
);

fn ea2p_error(e: impl std::fmt::Display) -> PyErr {
    Ea2pError::new_err(e.to_string())
}

/// serde_json value -> Python object (dicts, lists, floats, ints, strings, None).
fn to_py(py: Python<'_>, v: &serde_json::Value) -> PyResult<PyObject> {
    Ok(match v {
        serde_json::Value::Null => py.None(),
        serde_json::Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => i.into_pyobject(py)?.into_any().unbind(),
            None => n
                .as_f64()
                .unwrap_or(f64::NAN)
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        },
        serde_json::Value::String(s) => s.into_pyobject(py)?.into_any().unbind(),
        serde_json::Value::Array(a) => {
            let list = PyList::empty(py);
            for x in a {
                list.append(to_py(py, x)?)?;
            }
            list.into_any().unbind()
        }
        serde_json::Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any().unbind()
        }
    })
}

fn serialize_to_py<T: serde::Serialize>(py: Python<'_>, v: &T) -> PyResult<PyObject> {
    let value = serde_json::to_value(v).map_err(ea2p_error)?;
    to_py(py, &value)
}

/// The energy of one region.
#[pyclass(name = "Measurement", module = "ea2p", frozen)]
struct PyMeasurement {
    inner: Measurement,
}

#[pymethods]
impl PyMeasurement {
    /// Region name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// Start, seconds since the monitor started.
    #[getter]
    fn start_s(&self) -> f64 {
        self.inner.start_s
    }
    /// End, seconds since the monitor started.
    #[getter]
    fn end_s(&self) -> f64 {
        self.inner.end_s
    }
    /// Seconds.
    #[getter]
    fn duration_s(&self) -> f64 {
        self.inner.duration_s
    }
    /// Joules, over components not nested in another.
    #[getter]
    fn total_j(&self) -> f64 {
        self.inner.total_j
    }
    /// Energy-delay product, J·s.
    #[getter]
    fn edp_js(&self) -> f64 {
        self.inner.edp_js
    }
    /// Per component: dicts with name, kind (measured/estimated), source, energy_j, nested.
    #[getter]
    fn components(&self, py: Python<'_>) -> PyResult<PyObject> {
        serialize_to_py(py, &self.inner.components)
    }
    /// The measurement as a dict (e.g. a row for pandas).
    fn to_dict(&self, py: Python<'_>) -> PyResult<PyObject> {
        serialize_to_py(py, &self.inner)
    }
    /// The measurement as JSON text.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner).map_err(ea2p_error)
    }
    fn __repr__(&self) -> String {
        format!(
            "Measurement(name={:?}, duration_s={:.6}, total_j={:.6}, edp_js={:.6})",
            self.inner.name, self.inner.duration_s, self.inner.total_j, self.inner.edp_js
        )
    }
}

/// `with monitor.region("name") as r:` — measures the block; `r.measurement` afterwards.
#[pyclass(name = "Region", module = "ea2p")]
struct PyRegion {
    handle: MonitorHandle,
    name: String,
    measurement: Option<Py<PyMeasurement>>,
}

#[pymethods]
impl PyRegion {
    fn __enter__(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        slf.handle
            .begin(&slf.name)
            .map_err(|e| RegionError::new_err(e.to_string()))?;
        Ok(slf)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        _exc: &Bound<'_, pyo3::types::PyTuple>,
    ) -> PyResult<bool> {
        // `end` waits for a reading of every source after the boundary: without the GIL, so
        // that Python threads (a fake counter's writer, the program's own) keep running.
        let (handle, name) = (self.handle.clone(), self.name.clone());
        let m = py
            .allow_threads(move || handle.end(&name))
            .map_err(|e| RegionError::new_err(e.to_string()))?;
        self.measurement = Some(Py::new(py, PyMeasurement { inner: m })?);
        Ok(false)
    }

    /// The region's measurement, once the block has exited (else None).
    #[getter]
    fn measurement(&self, py: Python<'_>) -> Option<Py<PyMeasurement>> {
        self.measurement.as_ref().map(|m| m.clone_ref(py))
    }
}

/// The sampler: started on creation, stopped by `stop()` or at the end of a `with` block.
#[pyclass(name = "Monitor", module = "ea2p", subclass)]
struct PyMonitor {
    monitor: Option<Monitor>,
    handle: MonitorHandle,
    summary: Option<PyObject>,
}

#[pymethods]
impl PyMonitor {
    #[new]
    #[pyo3(signature = (devices=None, interval_ms=1.0, output=None, sysfs_root=None, procfs_root=None, cpu_tdp=None, carbon_intensity=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        devices: Option<&str>,
        interval_ms: f64,
        output: Option<PathBuf>,
        sysfs_root: Option<PathBuf>,
        procfs_root: Option<PathBuf>,
        cpu_tdp: Option<f64>,
        carbon_intensity: Option<f64>,
    ) -> PyResult<Self> {
        let devices = match devices {
            Some(d) => d.parse::<Devices>().map_err(ea2p_error)?,
            None => Devices::default(),
        };
        if !(interval_ms.is_finite() && interval_ms > 0.0) {
            return Err(ea2p_error(format!(
                "interval_ms must be a positive number of milliseconds, found {interval_ms}"
            )));
        }
        let env_root = |var: &str, default: &str| {
            std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        let options = MonitorOptions {
            discover: DiscoverOptions {
                sysfs_root: sysfs_root.unwrap_or_else(|| env_root("EA2P_SYSFS_ROOT", "/sys")),
                procfs_root: procfs_root.unwrap_or_else(|| env_root("EA2P_PROCFS_ROOT", "/proc")),
                devices,
                cpu_tdp,
            },
            interval: (interval_ms * 1e6).max(1.0) as u64,
            output,
            carbon_intensity: carbon_intensity.unwrap_or(DEFAULT_CARBON_INTENSITY_G_PER_KWH),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            rank: None,
            hostname: None,
            attribute: Default::default(),
            per_cgroup: None,
        };
        // Discovery (NVML start-up among it) runs without the GIL: other Python threads go on.
        let monitor = py
            .allow_threads(|| Monitor::start(options))
            .map_err(ea2p_error)?;
        Ok(PyMonitor {
            handle: monitor.handle(),
            monitor: Some(monitor),
            summary: None,
        })
    }

    /// Opens region `name` now; regions nest and overlap under different names.
    fn begin(&self, name: &str) -> PyResult<()> {
        self.handle
            .begin(name)
            .map_err(|e| RegionError::new_err(e.to_string()))
    }

    /// Closes region `name` now and returns its Measurement (once every source has been read
    /// after the boundary; the GIL is released meanwhile).
    fn end(&self, py: Python<'_>, name: &str) -> PyResult<PyMeasurement> {
        let handle = self.handle.clone();
        py.allow_threads(move || handle.end(name))
            .map(|inner| PyMeasurement { inner })
            .map_err(|e| RegionError::new_err(e.to_string()))
    }

    /// A context manager measuring its block: `with monitor.region("epoch-3") as r: ...`.
    fn region(&self, name: String) -> PyRegion {
        PyRegion {
            handle: self.handle.clone(),
            name,
            measurement: None,
        }
    }

    /// Energy per component since the start: `{"t_s": ..., "components": [...]}`.
    fn current(&self, py: Python<'_>) -> PyResult<PyObject> {
        let (t, comps) = self.handle.current();
        let d = PyDict::new(py);
        d.set_item("t_s", t)?;
        d.set_item("components", serialize_to_py(py, &comps)?)?;
        Ok(d.into_any().unbind())
    }

    /// Sources that could not be used, one sentence each, with the reason and the fix.
    #[getter]
    fn notes(&self) -> Vec<String> {
        self.monitor
            .as_ref()
            .map(|m| m.notes().to_vec())
            .unwrap_or_default()
    }

    /// True until `stop()`.
    #[getter]
    fn running(&self) -> bool {
        self.monitor.is_some()
    }

    /// Stops sampling, completes the profile file and returns the summary as a dict (the same
    /// fields as `ea2p run --json`). Calling it again returns the same summary.
    fn stop(&mut self, py: Python<'_>) -> PyResult<PyObject> {
        if let Some(monitor) = self.monitor.take() {
            let (summary, profile) = py.allow_threads(|| monitor.finish(None));
            let dict = serialize_to_py(py, &summary)?;
            if let Some(p) = profile {
                let d = dict.bind(py).downcast::<PyDict>()?;
                d.set_item("profile", p.path.display().to_string())?;
                d.set_item("profile_frames", p.frames)?;
                d.set_item("profile_error", p.failed)?;
            }
            self.summary = Some(dict);
        }
        Ok(self
            .summary
            .as_ref()
            .map_or_else(|| py.None(), |s| s.clone_ref(py)))
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(
        &mut self,
        py: Python<'_>,
        _exc: &Bound<'_, pyo3::types::PyTuple>,
    ) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }
}

impl Drop for PyMonitor {
    fn drop(&mut self) {
        // A monitor dropped without stop(): finish the file anyway.
        if let Some(m) = self.monitor.take() {
            let _ = m.finish(None);
        }
    }
}

/// What `ea2p sources` prints, as data: `{"sources": [...], "not_available": [...]}`.
#[pyfunction]
#[pyo3(signature = (sysfs_root=None, procfs_root=None, cpu_tdp=None))]
fn sources(
    py: Python<'_>,
    sysfs_root: Option<PathBuf>,
    procfs_root: Option<PathBuf>,
    cpu_tdp: Option<f64>,
) -> PyResult<PyObject> {
    let env_root = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let options = DiscoverOptions {
        sysfs_root: sysfs_root.unwrap_or_else(|| env_root("EA2P_SYSFS_ROOT", "/sys")),
        procfs_root: procfs_root.unwrap_or_else(|| env_root("EA2P_PROCFS_ROOT", "/proc")),
        devices: Devices::default(),
        cpu_tdp,
    };
    let report = py.allow_threads(|| ea2p_sampler::sources(&options));
    serialize_to_py(py, &report)
}

#[pymodule]
fn _ea2p(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMonitor>()?;
    m.add_class::<PyMeasurement>()?;
    m.add_class::<PyRegion>()?;
    m.add_function(wrap_pyfunction!(sources, m)?)?;
    m.add("Ea2pError", m.py().get_type::<Ea2pError>())?;
    m.add("RegionError", m.py().get_type::<RegionError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
