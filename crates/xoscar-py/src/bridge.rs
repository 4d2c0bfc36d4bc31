//! Between the runtime's threads and an asyncio loop, both ways, without the GIL on the
//! runtime's side.
//!
//! Each loop that uses the runtime gets one [`LoopBridge`]: a queue of jobs and a socket pair
//! whose reading end the loop watches (`loop.add_reader`). A runtime thread pushes a job and,
//! if the queue was empty, writes one byte; the loop then runs every queued job in one go
//! (under the GIL it holds anyway). So a runtime thread never waits for the GIL, and under
//! load one wake-up carries many jobs. Jobs run in the order pushed: calls handed to an
//! actor start in the order they arrived.
//!
//! Two kinds of work cross it:
//! - Python awaits Rust ([`spawn_awaitable`]): the asyncio future returned resolves through
//!   the queue; cancelling it drops the Rust future (a call: cancelled in the actor's process).
//! - Rust awaits Python ([`LoopBridge::run`]): a coroutine started as a task on the loop;
//!   dropping the Rust future cancels the task (the method gets `CancelledError` where it
//!   waits, as in xoscar).
//!
//! The bottom of the crate: uses nothing else of it.

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use futures_util::StreamExt;
use futures_util::future::{AbortHandle, abortable};
use futures_util::stream::FuturesUnordered;
use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use tokio::sync::{mpsc, oneshot};
use xoscar::{CancellationToken, Failure};

/// Makes a Python value under the GIL, on the loop.
type Make = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;

enum Job {
    /// Resolves an asyncio future with what `outcome` makes (or raises); if that future was
    /// cancelled, hands the outcome to `late` instead (when there is one).
    Resolve { future: Py<PyAny>, outcome: Make, late: Option<Arc<LateAnswer>> },
    /// Starts the coroutine `make` gives as a task; its outcome goes to `done` (at once if
    /// `make` gives bytes instead: the outcome itself).
    Start { make: Make, done: Done, task: Arc<Mutex<TaskSlot>> },
    /// Cancels a task started by a `Start` (after its first step: see `cancel_soon`).
    Cancel(Arc<Py<PyAny>>),
}

/// A started coroutine's task, as its Rust waiter sees it.
enum TaskSlot {
    NotStarted,
    /// Its waiter wants it cancelled, and its outcome still: start it, then cancel it.
    CancelWhenStarted,
    Started(Arc<Py<PyAny>>),
    /// The waiter is gone: do not start it (or cancel it once started).
    Abandoned,
}

/// One asyncio loop's side of the bridge.
pub(crate) struct LoopBridge {
    /// Not bounded by count here, because each job is bounded where it comes from: a
    /// `Resolve` per operation a Python caller awaits (its own concurrency), a `Start` per
    /// call an actor's runner hands over (at most its concurrency limit per actor, the rest
    /// waiting in bounded mailboxes) or per chunk a transfer writes (its window), a `Cancel`
    /// per started task. The loop empties it at each wake-up.
    jobs: Mutex<Vec<Job>>,
    /// Written (one byte) when `jobs` stops being empty; the loop reads `reader`.
    writer: UnixStream,
    reader: UnixStream,
    /// `xoscar_rs._actor.complete`: awaits a coroutine and hands its outcome to a [`Done`].
    complete: Py<PyAny>,
    event_loop: Py<PyAny>,
    /// See [`LoopBridge::ready`].
    ready: Py<PyAny>,
    /// The runtime task polling this loop's pending work; made on first use.
    driver: OnceLock<Driver>,
}

/// One runtime task that polls every pending operation of one loop: a task per call cost a
/// spawn, and often a thread's wake-up, each. Its queue holds operations Python awaits, so it
/// is bounded by what the loop's callers have in flight, as tasks would be.
struct Driver {
    queue: mpsc::UnboundedSender<Work>,
    task: tokio::task::AbortHandle,
}

/// An operation the driver polls to its end.
type Work = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl Drop for LoopBridge {
    fn drop(&mut self) {
        // Owned here: the operations still pending end with the loop's bridge.
        if let Some(driver) = self.driver.get() {
            driver.task.abort();
        }
    }
}

impl LoopBridge {
    fn new(py: Python<'_>, event_loop: Bound<'_, PyAny>) -> PyResult<Arc<Self>> {
        let (writer, reader) = UnixStream::pair()?;
        writer.set_nonblocking(true)?;
        reader.set_nonblocking(true)?;
        let complete = py.import("xoscar_rs._actor")?.getattr("complete")?.unbind();
        let ready = event_loop.call_method0("create_future")?;
        ready.call_method1("set_result", (py.None(),))?;
        let bridge = Arc::new(LoopBridge {
            jobs: Mutex::new(Vec::new()),
            writer,
            reader,
            complete,
            event_loop: event_loop.clone().unbind(),
            ready: ready.unbind(),
            driver: OnceLock::new(),
        });
        let drain = Drain { bridge: Arc::downgrade(&bridge) };
        event_loop.call_method1("add_reader", (bridge.reader.as_raw_fd(), drain))?;
        Ok(bridge)
    }

    fn push(&self, job: Job) {
        let was_empty = {
            let mut jobs = self.jobs.lock();
            jobs.push(job);
            jobs.len() == 1
        };
        if was_empty {
            // At most a byte or two is ever unread (one per empty-to-busy turn between two
            // drains), so this never finds the socket full; a failure means the loop's end is
            // gone, and nobody is left to run the job anyway.
            let _ = (&self.writer).write(&[1]);
        }
    }

    /// Runs the queued jobs, on the loop.
    fn drain(&self, py: Python<'_>) {
        let mut byte = [0u8; 64];
        while matches!((&self.reader).read(&mut byte), Ok(n) if n > 0) {}
        let jobs = std::mem::take(&mut *self.jobs.lock());
        for job in jobs {
            if let Err(error) = self.run_job(py, job) {
                error.print(py);
            }
        }
    }

    fn run_job(&self, py: Python<'_>, job: Job) -> PyResult<()> {
        match job {
            Job::Resolve { future, outcome, late } => {
                let future = future.bind(py);
                let made = outcome(py);
                if future.call_method0(intern!(py, "done"))?.is_truthy()? {
                    // Cancelled meanwhile: the answer to the cancel, if it is asked for.
                    if let Some(late) = late {
                        late.arrived(py, Box::new(move |_| made))?;
                    }
                } else {
                    settle(future, made)?;
                }
            }
            Job::Start { make, done, task } => {
                if matches!(*task.lock(), TaskSlot::Abandoned) {
                    return Ok(());
                }
                let coroutine = match make(py) {
                    Ok(coroutine) => coroutine,
                    Err(error) => {
                        done.send(Err(error.to_string()));
                        return Ok(());
                    }
                };
                // Bytes: the outcome, made at once (a plain method that could run now).
                if let Ok(outcome) = coroutine.bind(py).cast::<pyo3::types::PyBytes>() {
                    done.send(Ok(Value::Bytes(shared_bytes(outcome.clone()))));
                    return Ok(());
                }
                let wrapped = self.complete.bind(py).call1((coroutine, done))?;
                let started = self.event_loop.bind(py).call_method1("create_task", (wrapped,))?;
                let mut slot = task.lock();
                match *slot {
                    TaskSlot::Abandoned | TaskSlot::CancelWhenStarted => {
                        self.cancel_soon(&started)?;
                    }
                    _ => {}
                }
                if !matches!(*slot, TaskSlot::Abandoned) {
                    *slot = TaskSlot::Started(Arc::new(started.unbind()));
                }
            }
            Job::Cancel(task) => self.cancel_soon(task.bind(py))?,
        }
        Ok(())
    }

    /// Hands `work` (polled once already) to this loop's driver.
    fn drive(&self, work: Work) {
        let driver = self.driver.get_or_init(|| {
            let (queue, mut incoming) = mpsc::unbounded_channel::<Work>();
            let task = pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
                let mut running = FuturesUnordered::new();
                loop {
                    tokio::select! {
                        biased;
                        // Both cancel-safe: a finished operation or a received one is never lost.
                        Some(()) = running.next(), if !running.is_empty() => {}
                        work = incoming.recv() => match work {
                            Some(work) => running.push(work),
                            None => break,
                        },
                    }
                }
            });
            Driver { queue, task: task.abort_handle() }
        });
        // Fails only once the driver is gone (the bridge is dropping): the work is dropped.
        let _ = driver.queue.send(work);
    }

    /// An asyncio future of this loop that is done already (its result None): what an
    /// operation that finished at once gives to be awaited. One per loop, shared.
    pub(crate) fn ready<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.ready.bind(py).clone())
    }

    /// Cancels `task` once its first step ran (a task cancelled before it starts never runs
    /// its coroutine, which then could not report how it ended): `call_soon` runs after the
    /// step `create_task` scheduled.
    fn cancel_soon(&self, task: &Bound<'_, PyAny>) -> PyResult<()> {
        let cancel = task.getattr("cancel")?;
        self.event_loop.bind(task.py()).call_method1("call_soon", (cancel,))?;
        Ok(())
    }

    /// Runs the coroutine `make` gives as a task on this loop and waits (on the runtime, off
    /// the GIL) for its value. Dropping the future cancels the task.
    pub(crate) async fn run(
        &self,
        make: impl for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send + 'static,
    ) -> Result<Value, Failure> {
        self.run_watching(make, std::future::pending()).await
    }

    /// [`LoopBridge::run`] that, once `cancelled` completes, cancels the task (the coroutine
    /// gets `CancelledError` where it waits) and still waits for how it ends: a coroutine
    /// that catches the cancel and returns, returns that.
    pub(crate) async fn run_watching(
        &self,
        make: impl for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send + 'static,
        cancelled: impl Future<Output = ()>,
    ) -> Result<Value, Failure> {
        let (sender, mut receiver) = oneshot::channel();
        let task = Arc::new(Mutex::new(TaskSlot::NotStarted));
        let done = Done { sender: Mutex::new(Some(sender)) };
        self.push(Job::Start { make: Box::new(make), done, task: task.clone() });
        let guard = CancelOnDrop { bridge: self, task };
        // Both branches are cancel-safe: a oneshot receiver and a notification lose nothing.
        let outcome = tokio::select! {
            biased;
            outcome = &mut receiver => outcome,
            () = cancelled => {
                guard.cancel();
                receiver.await
            }
        };
        guard.disarm();
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(raised)) => Err(Failure::msg(raised)),
            Err(_) => Err(Failure::msg("the asyncio loop of this pool stopped before answering")),
        }
    }
}

/// Cancels the task of a [`LoopBridge::run`] whose waiter is dropped.
struct CancelOnDrop<'a> {
    bridge: &'a LoopBridge,
    task: Arc<Mutex<TaskSlot>>,
}

impl CancelOnDrop<'_> {
    /// Cancels the task, to be awaited still.
    fn cancel(&self) {
        let mut slot = self.task.lock();
        match &*slot {
            TaskSlot::NotStarted => *slot = TaskSlot::CancelWhenStarted,
            TaskSlot::Started(task) => self.bridge.push(Job::Cancel(task.clone())),
            TaskSlot::CancelWhenStarted | TaskSlot::Abandoned => {}
        }
    }

    fn disarm(self) {
        *self.task.lock() = TaskSlot::Abandoned;
        std::mem::forget(self);
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let slot = std::mem::replace(&mut *self.task.lock(), TaskSlot::Abandoned);
        if let TaskSlot::Started(task) = slot {
            self.bridge.push(Job::Cancel(task));
        }
    }
}

/// Called by the loop when the bridge's socket is readable: runs the queued jobs.
#[pyclass(frozen)]
struct Drain {
    bridge: std::sync::Weak<LoopBridge>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        if let Some(bridge) = self.bridge.upgrade() {
            bridge.drain(py);
        }
    }
}

/// A Python `bytes` as `Bytes`, without a copy: the object is kept alive instead (and let go
/// of off the GIL later, through PyO3's pool of pending releases).
pub(crate) fn shared_bytes(bytes: Bound<'_, pyo3::types::PyBytes>) -> bytes::Bytes {
    bytes::Bytes::from_owner(pyo3::pybacked::PyBackedBytes::from(bytes))
}

/// What a coroutine run by [`LoopBridge::run`] returned: bytes are held as `Bytes` on the
/// loop, so that the runtime's side reads them without the GIL.
pub(crate) enum Value {
    /// A `bytes` value.
    Bytes(bytes::Bytes),
    /// Any other value.
    Object(Py<PyAny>),
}

/// A coroutine's outcome, handed from the loop (`done(ok, value)`) to its Rust waiter.
#[pyclass(frozen)]
pub(crate) struct Done {
    sender: Mutex<Option<oneshot::Sender<Result<Value, String>>>>,
}

impl Done {
    fn send(&self, outcome: Result<Value, String>) {
        if let Some(sender) = self.sender.lock().take() {
            // The waiter is gone when the call was cancelled: nothing to hand over.
            let _ = sender.send(outcome);
        }
    }
}

#[pymethods]
impl Done {
    fn __call__(&self, ok: bool, value: Bound<'_, PyAny>) {
        self.send(match (ok, value.cast::<pyo3::types::PyBytes>()) {
            (true, Ok(bytes)) => Ok(Value::Bytes(shared_bytes(bytes.clone()))),
            (true, Err(_)) => Ok(Value::Object(value.unbind())),
            (false, _) => Err(value.str().map(|text| text.to_string()).unwrap_or_default()),
        });
    }
}

thread_local! {
    /// The bridge of the loop last seen running on this thread, with that loop (held, so
    /// that its address cannot be reused by another loop while it is cached here).
    static CURRENT: RefCell<Option<(Py<PyAny>, Arc<LoopBridge>)>> = const { RefCell::new(None) };
}

/// Keeps a loop's bridge alive as long as the loop (an attribute of the loop object): a thread
/// that runs several loops in turn finds each one's bridge again.
#[pyclass(frozen)]
struct BridgeOfLoop {
    bridge: Arc<LoopBridge>,
}

/// The attribute of a loop that holds its [`BridgeOfLoop`].
const BRIDGE_ATTRIBUTE: &str = "_xoscar_rs_bridge";

/// The bridge of the loop running on this thread (made on first use; one per loop, owned by
/// the loop; cached for the thread's last loop).
pub(crate) fn current(py: Python<'_>) -> PyResult<Arc<LoopBridge>> {
    let running = pyo3_async_runtimes::get_running_loop(py)?;
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        if let Some((event_loop, bridge)) = &*current
            && event_loop.is(&running)
        {
            return Ok(bridge.clone());
        }
        let bridge = match running.getattr(BRIDGE_ATTRIBUTE) {
            Ok(held) => held.cast::<BridgeOfLoop>()?.get().bridge.clone(),
            Err(_) => {
                let bridge = LoopBridge::new(py, running.clone())?;
                running.setattr(BRIDGE_ATTRIBUTE, BridgeOfLoop { bridge: bridge.clone() })?;
                bridge
            }
        };
        *current = Some((running.unbind(), bridge.clone()));
        Ok(bridge)
    })
}

/// Polls `work` once on this thread, off the GIL and inside the runtime, with a waker that
/// does nothing (whoever takes it on polls it again): what it sends first leaves now, in the
/// order Python made the calls.
fn poll_here<W>(py: Python<'_>, work: &mut Pin<Box<W>>) -> Poll<W::Output>
where
    W: Future + Send,
    W::Output: Send,
{
    let runtime = pyo3_async_runtimes::tokio::get_runtime();
    py.detach(|| {
        let _inside = runtime.enter();
        work.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    })
}

/// Hands `work` to the running loop's driver after polling it once here (as
/// [`spawn_awaitable`] does, with nobody awaiting the outcome): the driver polls the loop's
/// calls too, so that a send waiting for a dial or for room resumes in order with them.
pub(crate) fn drive_detached<W>(py: Python<'_>, work: W) -> PyResult<()>
where
    W: Future<Output = ()> + Send + 'static,
{
    let bridge = current(py)?;
    let mut work = Box::pin(work);
    if poll_here(py, &mut work).is_pending() {
        bridge.drive(work);
    }
    Ok(())
}

/// Sets an asyncio future's result, or its exception.
fn settle(future: &Bound<'_, PyAny>, outcome: PyResult<Py<PyAny>>) -> PyResult<()> {
    let py = future.py();
    match outcome {
        Ok(value) => future.call_method1(intern!(py, "set_result"), (value,))?,
        Err(error) => future.call_method1(intern!(py, "set_exception"), (error.value(py),))?,
    };
    Ok(())
}

/// Returns an asyncio future (of the running loop) that resolves with what `convert` makes of
/// `work`'s output. `work` is polled once here, before this returns, so that what it sends
/// first (a call) leaves in the order Python made the calls; then it runs on the runtime.
/// Cancelling the asyncio future drops `work`.
pub(crate) fn spawn_awaitable<'py, T, W, C>(
    py: Python<'py>,
    work: W,
    convert: C,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
    W: Future<Output = T> + Send + 'static,
    C: for<'a> FnOnce(Python<'a>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let (future, task) = spawn_resolving(py, work, convert, None)?;
    if let Some(task) = task {
        future.call_method1("add_done_callback", (AbortOnCancel { task },))?;
    }
    Ok(future)
}

/// [`spawn_awaitable`] for a call `make` builds around a cancellation token. The awaiter that
/// sees the asyncio future cancelled calls the [`PendingCall`]'s `cancel()` (the call is
/// cancelled where it is, and answers) and then `late()` for that answer. (No done callback
/// on the future: the one awaiter knows, and a callback per call costs a loop turn.)
pub(crate) fn spawn_cancellable<'py, T, W, C>(
    py: Python<'py>,
    make: impl FnOnce(CancellationToken) -> W,
    convert: C,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PendingCall>)>
where
    T: Send + 'static,
    W: Future<Output = T> + Send + 'static,
    C: for<'a> FnOnce(Python<'a>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let token = CancellationToken::new();
    let late = Arc::new(LateAnswer { slot: Mutex::new(LateSlot::Waiting) });
    let (future, task) = spawn_resolving(py, make(token.clone()), convert, Some(late.clone()))?;
    let bridge = current(py)?;
    let pending = Bound::new(py, PendingCall { late, task, bridge, token })?;
    Ok((future, pending))
}

/// The common part: the future, and the task if `work` did not end at its first poll.
fn spawn_resolving<'py, T, W, C>(
    py: Python<'py>,
    work: W,
    convert: C,
    late: Option<Arc<LateAnswer>>,
) -> PyResult<(Bound<'py, PyAny>, Option<AbortHandle>)>
where
    T: Send + 'static,
    W: Future<Output = T> + Send + 'static,
    C: for<'a> FnOnce(Python<'a>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let bridge = current(py)?;
    let future = bridge.event_loop.bind(py).call_method0("create_future")?;
    let mut work = Box::pin(work);
    match poll_here(py, &mut work) {
        Poll::Ready(output) => {
            settle(&future, convert(py, output))?;
            Ok((future, None))
        }
        Poll::Pending => {
            let target = future.clone().unbind();
            let waiter = Arc::downgrade(&bridge);
            let (work, abort) = abortable(async move {
                let output = work.await;
                let outcome: Make = Box::new(move |py| convert(py, output));
                if let Some(waiter) = waiter.upgrade() {
                    waiter.push(Job::Resolve { future: target, outcome, late });
                }
            });
            bridge.drive(Box::pin(async move {
                let _ = work.await;
            }));
            Ok((future, Some(abort)))
        }
    }
}

/// Where the answer of a call cancelled by its asyncio future goes.
pub(crate) struct LateAnswer {
    slot: Mutex<LateSlot>,
}

enum LateSlot {
    /// Nobody asked yet, nothing arrived.
    Waiting,
    /// `late()` was asked: this future gets the answer.
    Registered(Py<PyAny>),
    /// The answer came before anyone asked.
    Arrived(Make),
    /// Handed over.
    Done,
}

impl LateAnswer {
    /// The answer came (on the loop).
    fn arrived(&self, py: Python<'_>, outcome: Make) -> PyResult<()> {
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut *slot, LateSlot::Done) {
            LateSlot::Registered(future) => {
                drop(slot);
                let future = future.bind(py);
                if !future.call_method0("done")?.is_truthy()? {
                    settle(future, outcome(py))?;
                }
            }
            LateSlot::Waiting => *slot = LateSlot::Arrived(outcome),
            LateSlot::Arrived(_) | LateSlot::Done => {}
        }
        Ok(())
    }
}

/// A call whose asyncio future may be cancelled: `cancel()` cancels the call (without
/// dropping it), `late()` then gives the call's answer.
#[pyclass(frozen)]
pub(crate) struct PendingCall {
    late: Arc<LateAnswer>,
    task: Option<AbortHandle>,
    bridge: Arc<LoopBridge>,
    token: CancellationToken,
}

#[pymethods]
impl PendingCall {
    /// Cancels the call where it is: it still answers (`late()`).
    fn cancel(&self) {
        self.token.cancel();
    }

    /// An asyncio future for the answer of the cancelled call: the method's value if it
    /// caught the cancel and returned, its exception (`CancelledError` if it let the cancel
    /// through) otherwise. Cancelling this one drops the call for good.
    fn late<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let future = self.bridge.event_loop.bind(py).call_method0("create_future")?;
        let mut slot = self.late.slot.lock();
        match std::mem::replace(&mut *slot, LateSlot::Done) {
            LateSlot::Arrived(outcome) => {
                drop(slot);
                settle(&future, outcome(py))?;
            }
            LateSlot::Waiting => {
                *slot = LateSlot::Registered(future.clone().unbind());
                drop(slot);
                if let Some(task) = &self.task {
                    future.call_method1(
                        "add_done_callback",
                        (AbortOnCancel { task: task.clone() },),
                    )?;
                }
            }
            LateSlot::Registered(_) | LateSlot::Done => {
                drop(slot);
                let cancelled = py.import("asyncio")?.getattr("CancelledError")?.call0()?;
                future.call_method1("set_exception", (cancelled,))?;
            }
        }
        Ok(future)
    }
}

/// Runs `work` on the runtime with no one to wait for it (no loop needed): polled once here
/// first, as [`spawn_awaitable`] does, so that what it sends leaves before what this thread
/// sends next.
pub(crate) fn spawn_detached<W>(py: Python<'_>, work: W)
where
    W: Future<Output = ()> + Send + 'static,
{
    let mut work = Box::pin(work);
    if poll_here(py, &mut work).is_pending() {
        // Owned by the runtime until it ends: a tell accepted or refused, bounded by the
        // caller's connection settings.
        drop(pyo3_async_runtimes::tokio::get_runtime().spawn(work));
    }
}

/// Aborts the work behind an asyncio future that was cancelled.
#[pyclass(frozen)]
struct AbortOnCancel {
    task: AbortHandle,
}

#[pymethods]
impl AbortOnCancel {
    fn __call__(&self, future: Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.task.abort();
        }
        Ok(())
    }
}
