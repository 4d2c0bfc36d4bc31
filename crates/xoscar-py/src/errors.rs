//! What a runtime error becomes in Python: one of `xoscar_rs.errors`' classes (xoscar's
//! names), or the builtin that means the same (`TimeoutError`, `asyncio.CancelledError`),
//! with the runtime's message and its kind (`ActorError::kind`) as the `kind` attribute.
//!
//! Uses nothing else of the crate.

use pyo3::prelude::*;
use xoscar::ActorError;

/// The Python exception for `error`.
pub(crate) fn to_py(py: Python<'_>, error: ActorError) -> PyErr {
    raise(py, &error).unwrap_or_else(|failed| failed)
}

fn raise(py: Python<'_>, error: &ActorError) -> PyResult<PyErr> {
    let class = match error {
        ActorError::NotFound { .. } => errors_class(py, "ActorNotExist")?,
        ActorError::AlreadyExists { .. } => errors_class(py, "ActorAlreadyExist")?,
        ActorError::Connection(_) => errors_class(py, "ServerClosed")?,
        ActorError::CallTimedOut { .. } => py.import("builtins")?.getattr("TimeoutError")?,
        ActorError::Cancelled { .. } => py.import("asyncio")?.getattr("CancelledError")?,
        _ => errors_class(py, "XoscarError")?,
    };
    let exception = class.call1((error.to_string(),))?;
    // Builtins take no new attributes; xoscar_rs.errors' classes do.
    let _ = exception.setattr("kind", error.kind());
    Ok(PyErr::from_value(exception))
}

fn errors_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("xoscar_rs.errors")?.getattr(name)
}

/// A Python exception for a bad argument given from Python (an address, say).
pub(crate) fn invalid(message: impl std::fmt::Display) -> PyErr {
    PyErr::new::<pyo3::exceptions::PyValueError, _>(message.to_string())
}
