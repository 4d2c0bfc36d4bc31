//! The caller side: [`Pool`], its calls, one-way sends and transfer leases.

mod call;
mod conn;
mod driver;
mod encoded;
#[cfg(all(test, xoscar_loom))]
mod loom_model;
mod recent;
mod runtime;
pub(crate) mod state;
mod stream;

use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::{Handle, Id as RuntimeId};
use tokio_util::sync::CancellationToken;
use xoscar_transport::Address;
use xoscar_wire::{Envelope, Frame, pb};

use crate::id_map::IdMap;
use crate::stats::Counters;
use crate::{ConfigError, Message, PoolConfig, PoolError, PoolStats, ResolvedPoolConfig};
use call::PlainCall;
use conn::{Conn, LeaseGuard};
pub use recent::{Endpoint, RecentConnection};
use runtime::RuntimeState;
use state::{Outcome, Refused, Sent};
pub use stream::{DEFAULT_STREAM_WINDOW, MAX_STREAM_WINDOW, ResponseStream};

/// How many times a call or one-way message is sent again, on fresh connections, after
/// connections that ended before writing it (go-away, a lost connection) before it fails.
pub(crate) const MAX_SENDS: usize = 5;

/// The caller side of the protocol: calls endpoints over long-lived multiplexed connections.
///
/// - One connection per (runtime, endpoint); concurrent first calls share one dial.
/// - Many calls in flight on one connection, answered in any order.
/// - Each call holds a lease on its connection until its response, its error, or until its
///   future is dropped (which also sends a cancel). A connection with no lease for
///   `idle_timeout` is closed by the reaper; one that goes silent while leased is declared dead
///   by the heartbeat.
/// - Requests wait for room when the connection's outgoing queue holds `max_queued_bytes`.
/// - A request that a connection ended (or a server refused) before it was written is sent
///   again on a fresh connection, so a go-away never fails a call.
/// - Caller state is kept per tokio runtime: I/O belongs to the runtime that made it, and when
///   a runtime shuts down its connections close and its state leaves the pool.
///
/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<PoolShared>,
}

struct PoolShared {
    config: ResolvedPoolConfig,
    counters: Arc<Counters>,
    runtimes: Mutex<IdMap<RuntimeId, Arc<RuntimeState>>>,
    /// The connection of the last plain call that looked one up, so that calls to one
    /// endpoint in a row skip both maps (see [`RecentConnection`]). One entry: a caller
    /// alternating endpoints misses and pays a check of the endpoint and a second lock.
    recent: RecentConnection,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool with `config`, after applying the environment; a malformed environment value is
    /// an error naming the variable.
    pub fn new(config: PoolConfig) -> Result<Self, ConfigError> {
        Ok(Pool {
            shared: Arc::new(PoolShared {
                config: config.resolve()?,
                counters: Arc::default(),
                runtimes: Mutex::new(IdMap::default()),
                recent: RecentConnection::default(),
            }),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &ResolvedPoolConfig {
        &self.shared.config
    }

    /// Counters over every runtime.
    pub fn stats(&self) -> PoolStats {
        let mut stats = self.shared.counters.snapshot();
        let runtimes: Vec<Arc<RuntimeState>> =
            self.shared.runtimes.lock().values().cloned().collect();
        stats.runtimes = runtimes.len();
        stats.leases_in_flight = runtimes.iter().map(|runtime| runtime.leases()).sum();
        stats
    }

    /// Sends `request` to `endpoint` and waits for the response, within the pool's call
    /// timeout if one is set.
    ///
    /// Dropping the future releases the call's lease and tells the server to cancel it.
    #[inline]
    pub fn call<'a>(
        &'a self,
        endpoint: &'a Address,
        request: Message,
    ) -> impl Future<Output = Result<Message, PoolError>> + Send + 'a {
        self.call_with_timeout(endpoint, request, self.shared.config.call_timeout())
    }

    /// [`Pool::call`] with its own timeout (`None`: wait as long as the connection lives).
    #[inline]
    pub fn call_with_timeout<'a>(
        &'a self,
        endpoint: &'a Address,
        request: Message,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Message, PoolError>> + Send + 'a {
        self.timed_call(endpoint, request, timeout, None)
    }

    /// [`Pool::call_with_timeout`] that takes its lease on the connection `recent` remembers,
    /// when that is this pool's connection to `endpoint` on this runtime and still takes
    /// leases, instead of looking the connection up; otherwise it looks it up and `recent`
    /// remembers it for the next call. For a caller that calls one endpoint again and again
    /// ([`Endpoint`] wraps this). Behaves as [`Pool::call_with_timeout`] in every other way.
    #[inline]
    pub fn call_remembering<'a>(
        &'a self,
        endpoint: &'a Address,
        request: Message,
        timeout: Option<Duration>,
        recent: &'a RecentConnection,
    ) -> impl Future<Output = Result<Message, PoolError>> + Send + 'a {
        self.timed_call(endpoint, request, timeout, Some(recent))
    }

    #[inline]
    fn timed_call<'a>(
        &'a self,
        endpoint: &'a Address,
        request: Message,
        timeout: Option<Duration>,
        recent: Option<&'a RecentConnection>,
    ) -> impl Future<Output = Result<Message, PoolError>> + Send + 'a {
        let mut frame = Frame::request(0, request.header, request.payloads);
        if let (Some(timeout), Envelope::Request(sent)) = (timeout, &mut frame.envelope) {
            // The budget travels with the request so the server can skip work nobody awaits.
            sent.timeout_us = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        }
        PlainCall::new(self, endpoint, frame, timeout, recent)
    }

    /// [`Pool::call`] that `cancel` cancels while the caller still awaits it (xoscar: a
    /// method that catches the cancel and returns a value gives its caller that value).
    ///
    /// - Cancelled before its request is written: it is never sent, and the call fails at
    ///   once with [`PoolError::Cancelled`] (`sent: false`).
    /// - Cancelled while the server handles it: the server tells the handler
    ///   ([`crate::Responder::is_cancelled`]) and this call returns what the handler answers
    ///   afterwards, or [`PoolError::Cancelled`] if the handler stopped without answering (a
    ///   handler run by [`crate::Handler::call`] is dropped where it waits).
    /// - Cancelled after the answer arrived: the answer is returned; the cancel is harmless.
    ///
    /// Dropping the future cancels as [`Pool::call`] does (nobody waits for an answer).
    pub async fn call_cancellable(
        &self,
        endpoint: &Address,
        request: Message,
        cancel: &CancellationToken,
    ) -> Result<Message, PoolError> {
        let mut frame = Frame::request(0, request.header, request.payloads);
        let timeout = self.shared.config.call_timeout();
        if let (Some(timeout), Envelope::Request(sent)) = (timeout, &mut frame.envelope) {
            sent.timeout_us = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        }
        let call = Box::pin(self.send_cancellable(endpoint, &frame, cancel));
        let Some(timeout) = timeout else { return call.await };
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(PoolError::CallTimedOut { address: endpoint.to_string(), timeout }),
        }
    }

    /// The send loop of [`Pool::call_cancellable`]: a lease, the call on it, and again on a
    /// fresh connection after a `Retry`, until `cancel` ends it.
    async fn send_cancellable(
        &self,
        endpoint: &Address,
        frame: &Frame,
        cancel: &CancellationToken,
    ) -> Result<Message, PoolError> {
        let runtime = self.runtime()?;
        check_frame(&self.shared.config, endpoint, frame)?;
        for _ in 0..MAX_SENDS {
            let lease = tokio::select! {
                biased;
                // A cancel while dialling: nothing was sent.
                () = cancel.cancelled() => {
                    let address = endpoint.to_string();
                    return Err(PoolError::Cancelled { address, sent: false });
                }
                lease = runtime.lease(endpoint) => lease?,
            };
            match call_on_until(&lease.conn, frame, cancel).await {
                Outcome::Response(response) => return Ok(response),
                Outcome::Retry => continue,
                Outcome::Failed(error) => return Err(error),
            }
        }
        Err(unsent(endpoint, format!("connections ended before sending it, {MAX_SENDS} times")))
    }

    /// Sends a one-way message: no response. Returns once the message is written to the
    /// connection (so dropping the pool or its runtime afterwards cannot lose it), waiting for
    /// room while the connection's queue is full. A connection that goes away or ends before
    /// writing it is replaced and the message sent on the fresh one.
    ///
    /// One-way messages from one caller to one endpoint are written, and handed to the
    /// server's handler, in the order their `notify` calls returned, as long as they travel on
    /// one connection. The pool keeps one connection per endpoint and replaces it only when it
    /// ends (no lease for `idle_timeout`, lost, dead, or gone away); a message sent on the new
    /// connection can reach the handler before older ones the server has read but not yet
    /// handled.
    pub async fn notify(&self, endpoint: &Address, message: Message) -> Result<(), PoolError> {
        let runtime = self.runtime()?;
        let frame =
            Frame::new(Envelope::Notify(pb::Notify { header: message.header }), message.payloads);
        check_frame(&self.shared.config, endpoint, &frame)?;
        for _ in 0..MAX_SENDS {
            let lease = runtime.lease(endpoint).await?;
            match notify_once(&lease.conn, &frame).await {
                Ok(Sent::Written) => return Ok(()),
                Ok(Sent::NotSent) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(unsent(endpoint, format!("connections ended before sending it, {MAX_SENDS} times")))
    }

    /// Takes a lease on the connection to `endpoint` for a transfer of several frames that
    /// must share it: the connection is neither reaped nor left silent-unchecked (the heartbeat
    /// runs) until the [`Lease`] is dropped.
    pub async fn lease(&self, endpoint: &Address) -> Result<Lease, PoolError> {
        let guard = self.runtime()?.lease(endpoint).await?;
        Ok(Lease { guard, config: self.shared.config.clone() })
    }

    /// Runs one reaper pass now over this runtime's connections, closing those that have held
    /// no lease for `idle_timeout`, as the reaper would on its next tick. Returns how many it
    /// closed (0 when reaping is off). For benchmarks and tests (feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn reap_now(&self) -> Result<usize, PoolError> {
        let runtime = self.runtime()?;
        Ok(self.shared.config.idle_timeout().map_or(0, |idle| runtime.reap(idle)))
    }

    /// This runtime's state, made (with its reaper) on first use.
    fn runtime(&self) -> Result<Arc<RuntimeState>, PoolError> {
        Ok(self.runtime_state(current_runtime()?))
    }

    /// The state of runtime `id`, the current one, made (with its reaper) on first use.
    fn runtime_state(&self, id: RuntimeId) -> Arc<RuntimeState> {
        if let Some(state) = self.shared.runtimes.lock().get(&id) {
            return state.clone();
        }
        let state = RuntimeState::new(self.shared.config.clone(), self.shared.counters.clone());
        {
            let mut runtimes = self.shared.runtimes.lock();
            if let Some(existing) = runtimes.get(&id) {
                // Another caller on this runtime got there first; ours never started.
                return existing.clone();
            }
            runtimes.insert(id, state.clone());
        }
        let pool = Arc::downgrade(&self.shared);
        state.start_reaper(move |gone| {
            let Some(pool) = pool.upgrade() else { return };
            let mut runtimes = pool.runtimes.lock();
            if runtimes
                .get(&id)
                .is_some_and(|current| std::ptr::eq(Arc::as_ptr(current), gone.as_ptr()))
            {
                let state = runtimes.remove(&id);
                // Dropped outside the lock: its Drop asks every connection to close.
                drop(runtimes);
                drop(state);
            }
        });
        state
    }
}

/// The id of the runtime this runs on; [`PoolError::NoRuntime`] outside one.
fn current_runtime() -> Result<RuntimeId, PoolError> {
    Ok(Handle::try_current().map_err(|_| PoolError::NoRuntime)?.id())
}

/// A lease on one connection, for a transfer that must keep it: calls and one-way sends made
/// through it all use that connection, which is not reaped while the lease lives. Dropping it
/// releases the lease.
pub struct Lease {
    guard: LeaseGuard,
    config: ResolvedPoolConfig,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("endpoint", &self.guard.conn.label).finish_non_exhaustive()
    }
}

impl Lease {
    /// The endpoint this lease's connection reaches.
    pub fn endpoint(&self) -> &Address {
        &self.guard.conn.endpoint
    }

    /// A call on the leased connection. It is never moved to another connection: if this one
    /// goes away or ends before the request is written, the call fails with an error whose
    /// [`PoolError::is_retry_safe`] is true.
    pub async fn call(&self, request: Message) -> Result<Message, PoolError> {
        let conn = &self.guard.conn;
        let frame = Frame::request(0, request.header, request.payloads);
        check_frame(&self.config, &conn.endpoint, &frame)?;
        match call_on(conn, &frame).await {
            Outcome::Response(response) => Ok(response),
            Outcome::Retry => Err(unsent(&conn.endpoint, "the connection ended before sending it")),
            Outcome::Failed(error) => Err(error),
        }
    }

    /// A one-way send on the leased connection; returns once written (see [`Pool::notify`]).
    pub async fn notify(&self, message: Message) -> Result<(), PoolError> {
        let conn = &self.guard.conn;
        let frame =
            Frame::new(Envelope::Notify(pb::Notify { header: message.header }), message.payloads);
        check_frame(&self.config, &conn.endpoint, &frame)?;
        match notify_once(conn, &frame).await? {
            Sent::Written => Ok(()),
            Sent::NotSent => Err(unsent(&conn.endpoint, "the connection ended before sending it")),
        }
    }
}

/// Registers the request (its id is given as it is queued), queues a copy of its frame and
/// waits for its outcome: a [`Lease`]'s call, which stays on its connection. If the future is
/// dropped first, the call is forgotten and, if it was written, a cancel is sent.
async fn call_on(conn: &Arc<Conn>, frame: &Frame) -> Outcome {
    let id = match queue_call(conn, frame).await {
        Ok(Some(id)) => id,
        Ok(None) => return Outcome::Retry,
        Err(error) => return Outcome::Failed(error),
    };
    let mut in_flight = InFlight { conn, id, waiting: true };
    let outcome = outcome_of(conn, id).await;
    in_flight.waiting = false;
    outcome
}

/// The outcome of call `id`, waiting in its slot. Cancel-safe: an outcome not yet taken stays
/// in the slot.
async fn outcome_of(conn: &Conn, id: u64) -> Outcome {
    let outcome = poll_fn(|cx| conn.poll_outcome(id, cx)).await;
    // Every registered call gets its outcome in its slot; none only if the slot was taken.
    outcome.unwrap_or_else(|| Outcome::Failed(lost_after_sending(conn)))
}

/// [`call_on`] that `cancel` cancels while the caller still waits for the answer.
async fn call_on_until(conn: &Arc<Conn>, frame: &Frame, cancel: &CancellationToken) -> Outcome {
    let never_sent = || PoolError::Cancelled { address: conn.label.to_string(), sent: false };
    if cancel.is_cancelled() {
        return Outcome::Failed(never_sent());
    }
    let queued = tokio::select! {
        biased;
        // Waiting for room in the queue: cancelled, nothing was queued.
        () = cancel.cancelled() => return Outcome::Failed(never_sent()),
        queued = queue_call(conn, frame) => queued,
    };
    let id = match queued {
        Ok(Some(id)) => id,
        Ok(None) => return Outcome::Retry,
        Err(error) => return Outcome::Failed(error),
    };
    let mut in_flight = InFlight { conn, id, waiting: true };
    let mut outcome = std::pin::pin!(outcome_of(conn, id));
    let outcome = tokio::select! {
        biased;
        // Both branches are cancel-safe: an outcome stays in its slot until a poll takes it.
        outcome = &mut outcome => outcome,
        () = cancel.cancelled() => {
            if !conn.cancel_answering(id) {
                in_flight.waiting = false;
                return Outcome::Failed(never_sent());
            }
            outcome.await
        }
    };
    in_flight.waiting = false;
    outcome
}

/// Registers a request and queues a copy of its frame: its id, or `None` when the connection
/// takes no more requests.
async fn queue_call(conn: &Arc<Conn>, frame: &Frame) -> Result<Option<u64>, PoolError> {
    match conn.try_queue_call(frame) {
        Ok(id) => Ok(Some(id)),
        Err(Refused::Closed) => Ok(None),
        // Boxed: waiting for room is rare; out of line, it keeps every call's future small.
        Err(Refused::Full) => Box::pin(conn.queue_call(frame)).await,
        Err(Refused::TooLarge(error)) => Err(PoolError::too_large(&conn.label, error)),
    }
}

/// Queues a one-way message and waits until it is written.
async fn notify_once(conn: &Arc<Conn>, frame: &Frame) -> Result<Sent, PoolError> {
    let Some(told) = conn.queue_notify(frame).await? else { return Ok(Sent::NotSent) };
    // Dropped untold: the writer took it but the connection ended before it was flushed.
    told.await.map_err(|_| lost_after_sending(conn))
}

/// A registered call whose outcome has not arrived; dropping it cancels the call.
pub(crate) struct InFlight<'a> {
    pub(crate) conn: &'a Arc<Conn>,
    pub(crate) id: u64,
    pub(crate) waiting: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.waiting {
            self.conn.cancel(self.id);
        }
    }
}

/// The frame limits apply before anything is queued, so an oversized message fails alone.
pub(crate) fn check_frame(
    config: &ResolvedPoolConfig,
    endpoint: &Address,
    frame: &Frame,
) -> Result<(), PoolError> {
    let limits = config.transport().get_limits();
    limits.admit(frame).map_err(|error| PoolError::too_large(&endpoint.to_string(), error))
}

pub(crate) fn unsent(endpoint: &Address, reason: impl Into<String>) -> PoolError {
    PoolError::ConnectionLost {
        address: endpoint.to_string(),
        reason: reason.into(),
        sent: false,
        source: None,
    }
}

pub(crate) fn lost_after_sending(conn: &Conn) -> PoolError {
    PoolError::ConnectionLost {
        address: conn.label.to_string(),
        reason: "the connection ended before the answer arrived".into(),
        sent: true,
        source: None,
    }
}
