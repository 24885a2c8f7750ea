//! `plait._native`: thin `PyO3` bindings over `plait-core`. This crate converts types,
//! maps errors to Python exceptions and forwards calls; the engine's logic (and its tests)
//! live in `plait-core`.

use plait_core::{
    decode_token as core_decode_token, Access, AccessKind, ConfigError as CoreConfigError,
    ExploreError, Explorer as CoreExplorer, ExplorerConfig, Strategy, TokenError as CoreTokenError,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

pyo3::create_exception!(
    plait._native,
    TokenError,
    PyValueError,
    "A token could not be decoded (not a plait token, another version, or damaged)."
);
pyo3::create_exception!(
    plait._native,
    ConfigError,
    PyValueError,
    "The exploration's configuration is invalid; the message names the argument."
);
pyo3::create_exception!(
    plait._native,
    ReplayDivergence,
    PyRuntimeError,
    "The program stopped following the schedule of the token being replayed."
);
pyo3::create_exception!(
    plait._native,
    Nondeterminism,
    PyRuntimeError,
    "The program behaved differently under the same schedule."
);

fn config_err(e: &CoreConfigError) -> PyErr {
    match e {
        CoreConfigError::BadToken(t) => token_err(t),
        other => ConfigError::new_err(other.to_string()),
    }
}

fn token_err(e: &CoreTokenError) -> PyErr {
    TokenError::new_err(e.to_string())
}

fn explore_err(e: &ExploreError) -> PyErr {
    let msg = e.to_string();
    match e {
        ExploreError::Nondeterminism { .. } => Nondeterminism::new_err(msg),
        ExploreError::ReplayDivergence { .. } => ReplayDivergence::new_err(msg),
        ExploreError::InvalidArgument(_) => PyValueError::new_err(msg),
        ExploreError::Protocol(_) => PyRuntimeError::new_err(msg),
    }
}

/// A budget or bound that must be positive (`zero_ok` false) or non-negative.
fn count_arg<T: TryFrom<i64>>(argument: &str, value: i64, zero_ok: bool) -> PyResult<T> {
    let ok = if zero_ok { value >= 0 } else { value > 0 };
    let what = if zero_ok { "non-negative" } else { "positive" };
    if !ok {
        return Err(ConfigError::new_err(format!(
            "{argument} must be {what}, got {value}"
        )));
    }
    T::try_from(value)
        .map_err(|_| ConfigError::new_err(format!("{argument} is too large: {value}")))
}

fn actor_id(v: &Bound<'_, PyAny>) -> PyResult<u32> {
    v.extract::<u32>().map_err(|_| {
        PyValueError::new_err(format!(
            "actor ids are integers in 0..2**32, got {}",
            v.repr().map_or_else(|_| "?".to_string(), |r| r.to_string())
        ))
    })
}

/// Drives one exploration; see `plait-core`'s `Explorer`.
///
/// Not `unsendable`: with the threads backend, each controlled OS thread calls the explorer
/// at its own scheduling points (one at a time, handing a baton), so the object must be
/// usable from whichever thread holds the baton. The core explorer is `Send + Sync` (plain
/// data, no interior mutability), and the `PyO3` borrow flag turns any accidental concurrent
/// call into a Python `RuntimeError` instead of a data race.
#[pyclass(module = "plait._native", name = "Explorer")]
struct Explorer {
    inner: CoreExplorer,
    /// Reused buffers, so a decision does not allocate on the hot path.
    runnable: Vec<u32>,
    accesses: Vec<Access>,
}

#[pymethods]
impl Explorer {
    #[new]
    #[pyo3(signature = (
        *,
        strategy = "dfs",
        seed = 0,
        max_executions = None,
        max_seconds = None,
        preemption_bound = None,
        delay_bound = None,
        pct_depth = 3,
        stop_on_first = true,
        token = None,
        settings = Vec::new(),
        python_version = (3, 11),
        execution_offset = 0,
        execution_stride = 1,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        strategy: &str,
        seed: i128,
        max_executions: Option<i64>,
        max_seconds: Option<f64>,
        preemption_bound: Option<i64>,
        delay_bound: Option<i64>,
        pct_depth: i64,
        stop_on_first: bool,
        token: Option<String>,
        settings: Vec<u8>,
        python_version: (u8, u8),
        execution_offset: i64,
        execution_stride: i64,
    ) -> PyResult<Self> {
        let strategy: Strategy = strategy.parse().map_err(|e| config_err(&e))?;
        let seed = u64::try_from(seed).map_err(|_| {
            ConfigError::new_err(format!("seed must be an integer in 0..2**64, got {seed}"))
        })?;
        let config = ExplorerConfig {
            strategy,
            seed,
            max_executions: max_executions
                .map(|v| count_arg("max_executions", v, false))
                .transpose()?,
            max_seconds,
            preemption_bound: preemption_bound
                .map(|v| count_arg("preemption_bound", v, true))
                .transpose()?,
            delay_bound: delay_bound
                .map(|v| count_arg("delay_bound", v, true))
                .transpose()?,
            pct_depth: count_arg("pct_depth", pct_depth, false)?,
            stop_on_first,
            token,
            settings,
            python_version,
            execution_offset: count_arg("execution_offset", execution_offset, true)?,
            execution_stride: count_arg("execution_stride", execution_stride, false)?,
        };
        let inner = CoreExplorer::new(config).map_err(|e| config_err(&e))?;
        Ok(Explorer {
            inner,
            runnable: Vec::new(),
            accesses: Vec::new(),
        })
    }

    /// Starts the next execution; False when the exploration is over.
    fn start_execution(&mut self) -> PyResult<bool> {
        self.inner.start_execution().map_err(|e| explore_err(&e))
    }

    /// The actor to run next among `runnable` (in default order).
    #[pyo3(signature = (runnable, current))]
    fn choose_actor(&mut self, runnable: &Bound<'_, PyAny>, current: Option<u32>) -> PyResult<u32> {
        self.runnable.clear();
        if let Ok(list) = runnable.cast::<PyList>() {
            for item in list.iter() {
                self.runnable.push(actor_id(&item)?);
            }
        } else if let Ok(tuple) = runnable.cast::<PyTuple>() {
            for item in tuple.iter() {
                self.runnable.push(actor_id(&item)?);
            }
        } else {
            for item in runnable.try_iter()? {
                self.runnable.push(actor_id(&item?)?);
            }
        }
        self.inner
            .choose_actor(&self.runnable, current)
            .map_err(|e| explore_err(&e))
    }

    /// A recorded choice in `range(n)`; 0 is the default.
    fn choose(&mut self, n: u32) -> PyResult<u32> {
        self.inner.choose(n).map_err(|e| explore_err(&e))
    }

    /// The footprint of the step `actor` just ran: `(key, is_write)` pairs.
    fn record_step(&mut self, actor: u32, accesses: &Bound<'_, PyAny>) -> PyResult<()> {
        self.accesses.clear();
        for item in accesses.try_iter()? {
            let (key, is_write): (u64, bool) = item?.extract()?;
            let kind = if is_write {
                AccessKind::Write
            } else {
                AccessKind::Read
            };
            self.accesses.push(Access { key, kind });
        }
        self.inner.record_step(actor, &self.accesses);
        Ok(())
    }

    /// Ends the current execution.
    fn end_execution(&mut self, failed: bool) -> PyResult<()> {
        self.inner
            .end_execution(failed)
            .map_err(|e| explore_err(&e))
    }

    /// The token of the current (or last finished) execution.
    fn token(&self) -> String {
        self.inner.token()
    }

    /// The seed of the current execution: seed `random` with it.
    fn execution_seed(&self) -> u64 {
        self.inner.execution_seed()
    }

    /// The settings in force (in replay, the token's).
    fn settings<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.settings())
    }

    /// Index of the next decision in the current execution.
    #[getter]
    fn decision(&self) -> u64 {
        self.inner.decision()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("executions", s.executions)?;
        d.set_item("failures", s.failures)?;
        d.set_item("exhausted", s.exhausted)?;
        d.set_item("bounded", s.bounded)?;
        d.set_item("steps", s.steps)?;
        d.set_item("max_decisions", s.max_decisions)?;
        d.set_item("redundant", s.redundant)?;
        d.set_item("elapsed", s.elapsed_seconds)?;
        d.set_item("strategy", s.strategy)?;
        d.set_item(
            "stopped_by",
            s.stopped_by.map(plait_core::StopReason::as_str),
        )?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let s = self.inner.stats();
        format!(
            "<plait._native.Explorer strategy={} executions={} failures={}>",
            s.strategy, s.executions, s.failures
        )
    }
}

/// Decodes a token into its parts (raises `TokenError`).
#[pyfunction]
fn decode_token<'py>(py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyDict>> {
    let t = core_decode_token(token).map_err(|e| token_err(&e))?;
    let d = PyDict::new(py);
    d.set_item("version", plait_core::token::VERSION)?;
    d.set_item("strategy", Strategy::name_of_code(t.strategy))?;
    d.set_item("python_version", t.python_version)?;
    d.set_item("seed", t.seed)?;
    d.set_item("decisions", t.decisions)?;
    d.set_item("settings", PyBytes::new(py, &t.settings))?;
    let deviations: Vec<(u64, u32)> = t
        .deviations
        .iter()
        .map(|dev| (dev.decision, dev.value))
        .collect();
    d.set_item("deviations", deviations)?;
    Ok(d)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Explorer>()?;
    m.add_function(wrap_pyfunction!(decode_token, m)?)?;
    m.add("TokenError", py.get_type::<TokenError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ReplayDivergence", py.get_type::<ReplayDivergence>())?;
    m.add("Nondeterminism", py.get_type::<Nondeterminism>())?;
    m.add("STRATEGIES", Strategy::NAMES.to_vec())?;
    m.add("TOKEN_VERSION", plait_core::token::VERSION)?;
    Ok(())
}
