//! A pool of this process, started from Python: a main pool with its sub pools (Python
//! processes running `xoscar_rs._subpool`), or, in such a process, the sub pool itself. Both
//! serve Python actors of either kind; their methods run on the asyncio loop the pool was
//! started from.
//!
//! Uses the bridge, the actor and the errors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3_async_runtimes::tokio::get_runtime;
use xoscar::actor::extension::WeakPoolHandle;
use xoscar::{
    ActorPool, ActorPoolBuilder, Address, MainPool, PoolHandle, Recovery, SubPool, SubPoolInfo,
    SubPoolSettings,
};

use crate::actor::{CONCURRENT_LIMIT, PyActor, TYPE_NAME};
use crate::bridge::{LoopBridge, current, spawn_awaitable};
use crate::errors::{invalid, to_py};

/// A running pool of this process. Dropped (garbage-collected) it stops at once, killing its
/// sub pools; `stop()` stops it gracefully.
#[pyclass(frozen, name = "Pool")]
pub(crate) struct NativePool {
    address: String,
    /// Its entry in [`POOLS`].
    id: u64,
    running: Mutex<Option<Running>>,
}

enum Running {
    // Boxed: the two differ in size by hundreds of bytes, and one is made per pool.
    Main(Box<MainPool>),
    Sub(Box<ActorPool>),
}

impl Running {
    async fn shutdown(self) {
        match self {
            Running::Main(pool) => pool.shutdown().await,
            Running::Sub(pool) => pool.shutdown().await,
        }
    }
}

impl Running {
    fn handle(&self) -> &PoolHandle {
        match self {
            Running::Main(pool) => pool.handle(),
            Running::Sub(pool) => pool.handle(),
        }
    }
}

/// The pools of this process by address, held weakly, each with the id of its `NativePool`:
/// what `buffer_ref` exposes buffers in. Bounded by the pools this process runs (each leaves
/// when stopped or dropped, and only itself: a pool started later at the same address stays).
static POOLS: LazyLock<Mutex<HashMap<String, (u64, WeakPoolHandle)>>> =
    LazyLock::new(Mutex::default);

/// Tells `NativePool`s apart in [`POOLS`].
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The pool of this process at `address`, if one runs there.
pub(crate) fn local_pool(address: &str) -> Option<PoolHandle> {
    POOLS.lock().get(address).and_then(|(_, pool)| pool.upgrade())
}

impl NativePool {
    fn new(address: &Address, running: Running) -> Self {
        let address = address.to_string();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        POOLS.lock().insert(address.clone(), (id, running.handle().downgrade()));
        NativePool { address, id, running: Mutex::new(Some(running)) }
    }

    fn forget(&self) {
        let mut pools = POOLS.lock();
        if pools.get(&self.address).is_some_and(|(id, _)| *id == self.id) {
            pools.remove(&self.address);
        }
    }
}

impl Drop for NativePool {
    fn drop(&mut self) {
        self.forget();
        if let Some(running) = self.running.get_mut().take() {
            // Dropped by Python's collector, off the runtime: the pool's tasks are aborted
            // and its processes killed from within it.
            let _inside = get_runtime().enter();
            drop(running);
        }
    }
}

#[pymethods]
impl NativePool {
    /// The address its actors' refs carry.
    #[getter]
    fn external_address(&self) -> &str {
        &self.address
    }

    /// Its sub pools: `(index, label, address, pid)` each.
    fn sub_pools(&self) -> Vec<(usize, String, String, u32)> {
        match &*self.running.lock() {
            Some(Running::Main(pool)) => pool.sub_pools().into_iter().map(describe).collect(),
            _ => Vec::new(),
        }
    }

    /// Stops gracefully: every accepted message is handled and every actor's
    /// `__pre_destroy__` runs, within the pool's grace period; sub pools end. A second stop
    /// does nothing.
    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let running = self.running.lock().take();
        self.forget();
        let stopping = async move {
            if let Some(running) = running {
                running.shutdown().await;
            }
        };
        spawn_awaitable(py, stopping, |py, ()| Ok(py.None()))
    }
}

fn describe(info: SubPoolInfo) -> (usize, String, String, u32) {
    (info.index, info.label, info.address.to_string(), info.pid)
}

/// Registers Python actors, built and run on `host`'s loop, and the Rust actor types an
/// extension built on this one registered ([`crate::register_rust_actors`]).
fn python_actors(builder: ActorPoolBuilder, host: Arc<LoopBridge>) -> ActorPoolBuilder {
    let builder = builder.register_concurrent(TYPE_NAME, CONCURRENT_LIMIT, move |init: Bytes| {
        Ok(PyActor::new(init, host.clone()))
    });
    crate::rust_actors::with_rust_actors(builder)
}

/// One sub pool to start: its label and the environment variables it gets.
type SubPoolSpec = (String, Vec<(String, String)>);

/// Starts a main pool at `address`, labelled `label`, with `sub_pools`, each a process
/// running `program` (the Python interpreter and its arguments), recovered as `recovery`
/// says (`"actors"`, `"process"` or `"off"`). Awaitable; gives a `Pool`.
#[pyfunction]
pub(crate) fn start_pool<'py>(
    py: Python<'py>,
    address: &str,
    sub_pools: Vec<SubPoolSpec>,
    program: (String, Vec<String>),
    label: String,
    recovery: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let address: Address = address.parse().map_err(invalid)?;
    let recovery = match recovery {
        "actors" => Recovery::Actors,
        "process" => Recovery::Process,
        "off" => Recovery::Off,
        other => return Err(invalid(format!("unknown recovery {other:?}"))),
    };
    let host = current(py)?;
    let sub_address = match &address {
        // Sub pools listen on the main pool's host, on ports of their own.
        Address::Tcp { host, .. } => Address::Tcp { host: host.clone(), port: 0 },
        _ => Address::tcp(([127, 0, 0, 1], 0).into()),
    };
    let starting = async move {
        let mut builder = MainPool::builder(python_actors(ActorPool::builder(address), host))
            .label(label)
            .recovery(recovery);
        for (label, env) in sub_pools {
            let mut sub_pool = SubPool::new()
                .label(label)
                .address(sub_address.clone())
                .program(&program.0, &program.1);
            for (key, value) in env {
                sub_pool = sub_pool.env(key, value);
            }
            builder = builder.sub_pool(sub_pool);
        }
        builder.start().await
    };
    spawn_awaitable(py, starting, |py, started| {
        let pool = started.map_err(|error| to_py(py, error))?;
        Ok(Py::new(py, NativePool::new(&pool.address().clone(), Running::Main(Box::new(pool))))?
            .into_any())
    })
}

/// In a sub pool's process (started by a main pool): starts its pool, tells the main pool it
/// serves, and gives the `Pool`. This process exits when the main pool goes.
#[pyfunction]
pub(crate) fn serve_sub_pool(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let settings = SubPoolSettings::from_env()
        .ok_or_else(|| invalid("this process was not started as a sub pool"))?
        .map_err(invalid)?;
    let host = current(py)?;
    let serving = async move { settings.serve(|builder| python_actors(builder, host)).await };
    spawn_awaitable(py, serving, |py, served| {
        let pool = served.map_err(|error| to_py(py, error))?;
        Ok(Py::new(py, NativePool::new(&pool.address().clone(), Running::Sub(Box::new(pool))))?
            .into_any())
    })
}
