//! Buffer transfer from Python (xoscar's `buffer_ref` and `copy_to`) over the runtime's:
//! a Python buffer (memory Python owns) is exposed in a pool of this process through a
//! [`BufferSink`] whose writes run on the pool's loop (`xoscar_rs.transfer._write_into`), so
//! that a transfer that completed has put every byte into the Python buffer.
//!
//! Uses the buffer, the bridge, the errors and the pool registry.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyTuple};
use xoscar::{BufferRef, BufferSink};

use crate::bridge::{LoopBridge, current, spawn_awaitable};
use crate::buffer::SharedBytes;
use crate::errors::{invalid, to_py};
use crate::pool::local_pool;

/// A Python buffer, held weakly (a `weakref.ref`), written on its loop.
struct PythonSink {
    bridge: Arc<LoopBridge>,
    target: Arc<Py<PyAny>>,
}

impl BufferSink for PythonSink {
    fn write(
        &self,
        offset: u64,
        chunk: xoscar::wire::Payloads,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        let (bridge, target) = (self.bridge.clone(), self.target.clone());
        Box::pin(async move {
            let write = move |py: Python<'_>| {
                let parts: Vec<Py<PyAny>> = chunk
                    .iter()
                    .map(|part| SharedBytes::lend(py, part.clone()))
                    .collect::<PyResult<_>>()?;
                let write_into = py.import("xoscar_rs.transfer")?.getattr("_write_into")?;
                Ok(write_into.call1((&*target, offset, PyTuple::new(py, parts)?))?.unbind())
            };
            bridge.run(write).await.map(drop).map_err(|failure| failure.message())
        })
    }
}

/// Exposes the Python buffer `target` (a `weakref.ref` to it) of `length` bytes in this
/// process's pool at `address`; the encoded reference (a prost `BufferRef`).
#[pyfunction]
pub(crate) fn expose_buffer<'py>(
    py: Python<'py>,
    address: &str,
    target: Py<PyAny>,
    length: u64,
) -> PyResult<Bound<'py, PyBytes>> {
    let pool = local_pool(address)
        .ok_or_else(|| invalid(format!("no pool of this process at {address}")))?;
    let sink = PythonSink { bridge: current(py)?, target: Arc::new(target) };
    let exposed = pool.expose_sink(Arc::new(sink), length);
    Ok(PyBytes::new(py, &exposed.encode_to_vec()))
}

/// Stops exposing the buffer `encoded` refers to in this process's pool at `address`;
/// whether it was exposed (a finalizer calls it when the Python buffer goes).
#[pyfunction]
pub(crate) fn withdraw_buffer(address: &str, encoded: &[u8]) -> bool {
    match (local_pool(address), BufferRef::decode(encoded)) {
        (Some(pool), Ok(exposed)) => pool.withdraw_buffer(&exposed),
        _ => false,
    }
}

/// Writes each of `local` into the buffer the same index of `remote` (encoded references)
/// refers to, in chunks of `chunk_size` bytes (default: the runtime's); awaitable.
#[pyfunction]
#[pyo3(signature = (local, remote, chunk_size=None))]
pub(crate) fn copy_to<'py>(
    py: Python<'py>,
    local: Vec<PyBackedBytes>,
    remote: Vec<PyBackedBytes>,
    chunk_size: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let local: Vec<Bytes> = local.into_iter().map(Bytes::from_owner).collect();
    let remote = remote
        .iter()
        .map(|encoded| BufferRef::decode(encoded.as_ref()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(format!("not a buffer reference: {error}")))?;
    let mut copy = xoscar::copy_to(local, remote);
    if let Some(chunk_size) = chunk_size {
        copy = copy.chunk_size(chunk_size);
    }
    spawn_awaitable(py, copy.into_future(), |py, done| match done {
        Ok(()) => Ok(py.None()),
        Err(error) => Err(to_py(py, error)),
    })
}
