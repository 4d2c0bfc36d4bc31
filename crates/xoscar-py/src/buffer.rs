//! [`SharedBytes`]: runtime bytes lent to Python without a copy, as a read-only object with the
//! buffer protocol (`memoryview`, `pickle.loads` and `bytes()` take it).
//!
//! The bottom of the crate with the bridge: uses nothing else of it.

use std::ffi::{c_int, c_void};

use bytes::Bytes;
use pyo3::ffi;
use pyo3::prelude::*;

/// Read-only bytes owned by the runtime, lent to Python.
#[pyclass(frozen, name = "SharedBytes")]
pub(crate) struct SharedBytes {
    bytes: Bytes,
}

impl SharedBytes {
    /// `bytes` as a Python object (no copy).
    pub(crate) fn lend(py: Python<'_>, bytes: Bytes) -> PyResult<Py<PyAny>> {
        Ok(Py::new(py, SharedBytes { bytes })?.into_any())
    }
}

#[pymethods]
impl SharedBytes {
    /// # Safety
    ///
    /// Called by the interpreter with a view to fill, as the buffer protocol says.
    #[allow(unsafe_code)]
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let bytes = &slf.get().bytes;
        let length = ffi::Py_ssize_t::try_from(bytes.len())
            .map_err(|_| pyo3::exceptions::PyBufferError::new_err("too large a buffer"))?;
        // SAFETY: `view` comes from the interpreter; the memory is `bytes`', which nothing
        // changes (read-only: the last argument but one) and which lives as long as this
        // object, and the view holds a reference to this object (PyBuffer_FillInfo takes one)
        // until it is released.
        let status = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                bytes.as_ptr() as *mut c_void,
                length,
                1,
                flags,
            )
        };
        if status == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    /// Nothing to release: the view's reference to this object keeps the bytes.
    #[allow(unsafe_code)]
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    fn __len__(&self) -> usize {
        self.bytes.len()
    }
}
