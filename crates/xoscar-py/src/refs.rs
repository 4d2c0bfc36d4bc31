//! Refs to Python actors and what Python calls on them: call, tell, create, look up, has,
//! destroy. Every call is awaitable from asyncio and runs on the runtime without the GIL;
//! cancelling the awaiting task drops the call, which cancels it in the actor's process.
//!
//! Uses the actor and the errors.

use std::future::IntoFuture;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use tokio::sync::Semaphore;
use xoscar::{ActorRef, Address, Placement, ReplyStream};

use crate::actor::{PyActor, PyStream};
use crate::bridge::{
    PendingCall, drive_detached, spawn_awaitable, spawn_cancellable, spawn_detached,
};
use crate::buffer::SharedBytes;
use crate::errors::{invalid, to_py};

/// How many tells this process may have sent and not yet seen accepted.
const TELLS_IN_FLIGHT: usize = 4096;

/// The permits of [`TELLS_IN_FLIGHT`].
static TELLS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(TELLS_IN_FLIGHT)));

/// The pools this process's tells reached over connections no counter says have closed since:
/// a tell to one of them returns once queued. Cleared whenever the caller reaps a connection
/// or finds one dead (then any of them may need a new dial). Bounded by the addresses this
/// process told, and emptied at each such change.
struct Connected {
    addresses: std::collections::HashSet<String>,
    /// The caller's reaps plus dead peers when `addresses` was last valid.
    closes: u64,
}

static CONNECTED: LazyLock<parking_lot::Mutex<Connected>> = LazyLock::new(|| {
    parking_lot::Mutex::new(Connected { addresses: Default::default(), closes: 0 })
});

impl Connected {
    fn closes() -> Option<u64> {
        xoscar::caller().ok().map(|caller| {
            let stats = caller.stats();
            stats.reaps + stats.dead_peers
        })
    }

    /// `Some` if a tell to `address` may return once queued.
    fn check(address: &Address) -> Option<()> {
        let closes = Self::closes()?;
        let mut connected = CONNECTED.lock();
        if connected.closes != closes {
            connected.addresses.clear();
            connected.closes = closes;
            return None;
        }
        connected.addresses.contains(&address.to_string()).then_some(())
    }

    fn mark(address: &Address) {
        let Some(closes) = Self::closes() else { return };
        let mut connected = CONNECTED.lock();
        if connected.closes == closes {
            connected.addresses.insert(address.to_string());
        }
    }
}

/// A reference to a Python actor `(address, uid)`: cheap to make, no I/O until called.
#[pyclass(frozen, name = "Ref")]
pub(crate) struct NativeRef {
    inner: ActorRef<PyActor>,
}

/// What an awaited operation gives Python: its value made by `value`, or its error raised.
fn answer<T>(
    value: impl FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>>,
) -> impl FnOnce(Python<'_>, Result<T, xoscar::ActorError>) -> PyResult<Py<PyAny>> {
    move |py, outcome| match outcome {
        Ok(output) => value(py, output),
        Err(error) => Err(to_py(py, error)),
    }
}

/// Bytes lent to Python (no copy): a read-only buffer object.
fn bytes(py: Python<'_>, bytes: Bytes) -> PyResult<Py<PyAny>> {
    SharedBytes::lend(py, bytes)
}

fn located(py: Python<'_>, found: ActorRef<PyActor>) -> PyResult<Py<PyAny>> {
    Ok((found.address().to_string(), found.uid()).into_pyobject(py)?.into_any().unbind())
}

fn plain<T: for<'a> IntoPyObject<'a>>(py: Python<'_>, value: T) -> PyResult<Py<PyAny>> {
    value.into_py_any(py)
}

fn parse(address: &str) -> PyResult<Address> {
    address.parse().map_err(invalid)
}

/// Python's bytes as `Bytes`, without a copy: the bytes object is kept alive instead.
fn shared(bytes: PyBackedBytes) -> Bytes {
    Bytes::from_owner(bytes)
}

#[pymethods]
impl NativeRef {
    #[new]
    fn new(address: &str, uid: &str) -> PyResult<Self> {
        Ok(NativeRef { inner: ActorRef::new(parse(address)?, uid) })
    }

    /// The address of the pool the actor lives in.
    #[getter]
    fn address(&self) -> String {
        self.inner.address().to_string()
    }

    /// The actor's uid.
    #[getter]
    fn uid(&self) -> &str {
        self.inner.uid()
    }

    /// Makes the pickled `call` (`(method, kind, args, kwargs)`): an awaitable giving the pickled outcome,
    /// and the `PendingCall` whose `late()` gives it if the awaitable was cancelled (the
    /// cancel reaches the method, which may still answer, as in xoscar).
    fn call<'py>(
        &self,
        py: Python<'py>,
        call: PyBackedBytes,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PendingCall>)> {
        let target = self.inner.clone();
        let message = shared(call);
        let call = move |cancel: xoscar::CancellationToken| async move {
            target.call_cancellable(message, &cancel).await
        };
        spawn_cancellable(py, call, answer(bytes))
    }

    /// [`NativeRef::call`] that gives up after `timeout` seconds with `TimeoutError`; the
    /// deadline travels with the call. Awaitable; cancelling it drops the call.
    fn call_with_timeout<'py>(
        &self,
        py: Python<'py>,
        call: PyBackedBytes,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let target = self.inner.clone();
        let message = shared(call);
        let timeout = Duration::try_from_secs_f64(timeout).map_err(invalid)?;
        let call = async move { target.call_with_timeout(message, timeout).await };
        spawn_awaitable(py, call, answer(bytes))
    }

    /// Sends the pickled `call` without waiting for its outcome;
    /// awaitable, done once sent (as xoscar's tell: its outcome, an error too, is dropped).
    /// At most [`TELLS_IN_FLIGHT`] tells of this process wait for their pool's acceptance at
    /// once; beyond that the awaitable waits for one of them (backpressure).
    fn tell<'py>(&self, py: Python<'py>, call: PyBackedBytes) -> PyResult<Bound<'py, PyAny>> {
        let target = self.inner.clone();
        let message = shared(call);
        let connected = Connected::check(target.address());
        let permit = match connected {
            Some(_) => TELLS.clone().try_acquire_owned().ok(),
            None => None,
        };
        match (connected, permit) {
            (Some(_), Some(permit)) => {
                // Its connection is up: this first poll queues the frame, before whatever
                // this loop sends next.
                drive_detached(py, async move {
                    let _permit = permit;
                    let _ = target.tell(message).await;
                })?;
                crate::bridge::current(py)?.ready(py)
            }
            _ => {
                // A pool not reached yet (or since its connections may have closed): a send
                // after this one could overtake it while both wait for the dial, so this one
                // is awaited until accepted. So is one past the bound of tells in flight.
                let tell = async move {
                    let _permit = TELLS.clone().acquire_owned().await;
                    let accepted = target.tell(message).await.is_ok();
                    if accepted {
                        Connected::mark(target.address());
                    }
                };
                spawn_awaitable(py, tell, |py, ()| Ok(py.None()))
            }
        }
    }

    /// Opens the stream of the items of the actor's generator with the pickled id
    /// `generator`; awaitable, gives a `Stream`.
    fn stream<'py>(
        &self,
        py: Python<'py>,
        generator: PyBackedBytes,
    ) -> PyResult<Bound<'py, PyAny>> {
        let target = self.inner.clone();
        let pull = PyStream { generator: shared(generator) };
        let open = async move { target.call_stream::<PyStream, Bytes>(pull).await };
        spawn_awaitable(
            py,
            open,
            answer(|py, items| {
                let items = Arc::new(tokio::sync::Mutex::new(items));
                Ok(Py::new(py, NativeStream { items })?.into_any())
            }),
        )
    }

    /// [`NativeRef::tell`] with nobody waiting (from a finalizer): sent before whatever this
    /// thread sends next; its outcome is dropped.
    fn tell_detached(&self, py: Python<'_>, call: PyBackedBytes) {
        let target = self.inner.clone();
        let message = shared(call);
        spawn_detached(py, async move {
            let _ = target.tell(message).await;
        });
    }
}

/// The items of a generator of a Python actor, as they come (each a pickled outcome).
/// Dropping it stops the producer.
#[pyclass(frozen, name = "Stream")]
pub(crate) struct NativeStream {
    items: Arc<tokio::sync::Mutex<ReplyStream<Bytes>>>,
}

#[pymethods]
impl NativeStream {
    /// The next item; awaitable, gives `None` at the end.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let items = self.items.clone();
        let next = async move { items.lock().await.next().await };
        spawn_awaitable(py, next, |py, item| match item {
            None => Ok(py.None()),
            Some(Ok(item)) => bytes(py, item),
            Some(Err(error)) => Err(to_py(py, error)),
        })
    }
}

/// Where a create puts its actor, as Python names it: `(kind, value)`.
fn placement(kind: &str, value: &str) -> PyResult<Placement> {
    Ok(match kind {
        "here" => Placement::Here,
        "address" => Placement::Address(parse(value)?),
        "sub_pool" => Placement::SubPool(value.parse().map_err(invalid)?),
        "random_sub_pool" => Placement::RandomSubPool,
        "label" => Placement::Label(value.to_owned()),
        "idle_label" => Placement::IdleLabel(value.to_owned()),
        other => return Err(invalid(format!("unknown placement {other:?}"))),
    })
}

/// Creates an actor of `type_name` from `init` through the pool at `address`, placed as
/// `(kind, value)` says; awaitable, gives `(address, uid)` of the actor.
#[pyfunction]
#[pyo3(signature = (address, type_name, init, uid=None, placement_kind="here", placement_value=""))]
pub(crate) fn create_actor<'py>(
    py: Python<'py>,
    address: &str,
    type_name: String,
    init: PyBackedBytes,
    uid: Option<String>,
    placement_kind: &str,
    placement_value: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let address = parse(address)?;
    let placement = placement(placement_kind, placement_value)?;
    let init = shared(init);
    let mut create =
        xoscar::create_actor::<PyActor>(&address, &type_name, &init).placement(placement);
    if let Some(uid) = uid {
        create = create.uid(uid);
    }
    spawn_awaitable(py, create.into_future(), answer(located))
}

/// The actor `uid` as found through the pool at `address` (for a main pool, maybe in a sub
/// pool); awaitable, gives `(address, uid)`, or raises `ActorNotExist`.
#[pyfunction]
pub(crate) fn actor_ref<'py>(
    py: Python<'py>,
    address: &str,
    uid: String,
) -> PyResult<Bound<'py, PyAny>> {
    let address = parse(address)?;
    let find = async move { xoscar::actor_ref::<PyActor>(&address, uid).await };
    spawn_awaitable(py, find, answer(located))
}

/// Whether the actor `uid` lives in the pool at `address`; awaitable.
#[pyfunction]
pub(crate) fn has_actor<'py>(
    py: Python<'py>,
    address: &str,
    uid: String,
) -> PyResult<Bound<'py, PyAny>> {
    let target = ActorRef::<PyActor>::new(parse(address)?, uid);
    let has = async move { xoscar::has_actor(&target).await };
    spawn_awaitable(py, has, answer(plain))
}

/// Destroys the actor `uid` of the pool at `address` (its `__pre_destroy__` runs); awaitable.
#[pyfunction]
pub(crate) fn destroy_actor<'py>(
    py: Python<'py>,
    address: &str,
    uid: String,
) -> PyResult<Bound<'py, PyAny>> {
    let target = ActorRef::<PyActor>::new(parse(address)?, uid);
    let destroy = async move { xoscar::destroy_actor(&target).await };
    spawn_awaitable(py, destroy, answer(plain))
}

/// Calls the Rust actor `uid` at `address` with the message its type declared under `message`,
/// `body` being its protobuf encoding; awaitable, gives the reply's protobuf encoding.
#[pyfunction]
pub(crate) fn call_named<'py>(
    py: Python<'py>,
    address: &str,
    uid: String,
    message: String,
    body: PyBackedBytes,
) -> PyResult<Bound<'py, PyAny>> {
    let address = parse(address)?;
    let body = shared(body);
    let call = async move { xoscar::call_named(&address, &uid, &message, body).await };
    spawn_awaitable(py, call, answer(bytes))
}

/// The counters of this process's caller (connections open, made, reaped as idle, found dead;
/// leases held): how its connection settings (`XOSCAR_IDLE_TIMEOUT`, ...) play out.
#[pyfunction]
pub(crate) fn caller_stats(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let stats = xoscar::caller().map_err(|error| to_py(py, error))?.stats();
    let counters = pyo3::types::PyDict::new(py);
    counters.set_item("open_connections", stats.open_connections)?;
    counters.set_item("leases_in_flight", stats.leases_in_flight)?;
    counters.set_item("connects", stats.connects)?;
    counters.set_item("reaps", stats.reaps)?;
    counters.set_item("dead_peers", stats.dead_peers)?;
    Ok(counters)
}
