//! The caller side: [`Pool`], its calls, one-way sends and transfer leases.

mod conn;
mod driver;
mod runtime;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::{Handle, Id as RuntimeId};
use xoscar_transport::Address;
use xoscar_wire::{Envelope, Frame, pb};

use crate::id_map::IdMap;
use crate::stats::Counters;
use crate::{ConfigError, Message, PoolConfig, PoolError, PoolStats, ResolvedPoolConfig};
use conn::{Conn, LeaseGuard, Outcome};
use runtime::RuntimeState;

/// How many times a call is sent again after go-aways before it fails.
const MAX_SENDS: usize = 5;

/// The caller side of the protocol: calls endpoints over long-lived multiplexed connections.
///
/// - One connection per (runtime, endpoint); concurrent first calls share one dial.
/// - Many calls in flight on one connection, answered in any order.
/// - Each call holds a lease on its connection until its response, its error, or until its
///   future is dropped (which also sends a cancel). A connection with no lease for
///   `idle_timeout` is closed by the reaper; one that goes silent while leased is declared dead
///   by the heartbeat.
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
            }),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &ResolvedPoolConfig {
        &self.shared.config
    }

    /// Counters over every runtime.
    pub fn stats(&self) -> PoolStats {
        self.shared.counters.snapshot()
    }

    /// How many runtimes have state in the pool now.
    pub fn runtime_count(&self) -> usize {
        self.shared.runtimes.lock().len()
    }

    /// Sends `request` to `endpoint` and waits for the response, within the pool's call
    /// timeout if one is set.
    ///
    /// Dropping the future releases the call's lease and tells the server to cancel it.
    pub async fn call(&self, endpoint: &Address, request: Message) -> Result<Message, PoolError> {
        self.call_with_timeout(endpoint, request, self.shared.config.call_timeout()).await
    }

    /// [`Pool::call`] with its own timeout (`None`: wait as long as the connection lives).
    pub async fn call_with_timeout(
        &self,
        endpoint: &Address,
        request: Message,
        timeout: Option<Duration>,
    ) -> Result<Message, PoolError> {
        let Some(timeout) = timeout else { return self.call_untimed(endpoint, request).await };
        match tokio::time::timeout(timeout, self.call_untimed(endpoint, request)).await {
            Ok(result) => result,
            Err(_) => Err(PoolError::CallTimedOut { address: endpoint.to_string(), timeout }),
        }
    }

    async fn call_untimed(
        &self,
        endpoint: &Address,
        request: Message,
    ) -> Result<Message, PoolError> {
        let runtime = self.runtime()?;
        for _ in 0..MAX_SENDS {
            let lease = runtime.lease(endpoint).await?;
            match call_once(&lease.conn, &request, &self.shared.config).await {
                Outcome::Response(response) => return Ok(response),
                Outcome::Retry => continue,
                Outcome::Failed(error) => return Err(error),
            }
        }
        Err(PoolError::ConnectionLost {
            address: endpoint.to_string(),
            reason: format!("the server went away {MAX_SENDS} times before answering"),
        })
    }

    /// Sends a one-way message: no response. Returns once the frame is queued; its lease is
    /// held until the frame is written.
    pub async fn notify(&self, endpoint: &Address, message: Message) -> Result<(), PoolError> {
        let runtime = self.runtime()?;
        let frame =
            Frame::new(Envelope::Notify(pb::Notify { header: message.header }), message.payloads);
        check_limits(&self.shared.config, endpoint, &frame)?;
        let lease = runtime.lease(endpoint).await?;
        let conn = lease.conn.clone();
        if conn.queue(frame, Some(lease)) {
            Ok(())
        } else {
            Err(lost(&conn, "the connection closed before the message was queued"))
        }
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
    /// closed (0 when reaping is off).
    pub fn reap_now(&self) -> Result<usize, PoolError> {
        let runtime = self.runtime()?;
        Ok(self.shared.config.idle_timeout().map_or(0, |idle| runtime.reap(idle)))
    }

    /// This runtime's state, made (with its reaper) on first use.
    fn runtime(&self) -> Result<Arc<RuntimeState>, PoolError> {
        let handle = Handle::try_current().map_err(|_| PoolError::NoRuntime)?;
        let id = handle.id();
        let mut runtimes = self.shared.runtimes.lock();
        if let Some(state) = runtimes.get(&id) {
            return Ok(state.clone());
        }
        let pool = Arc::downgrade(&self.shared);
        let state = RuntimeState::start(
            self.shared.config.clone(),
            self.shared.counters.clone(),
            move |gone| {
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
            },
        );
        runtimes.insert(id, state.clone());
        Ok(state)
    }
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

    /// A call on the leased connection. It is not retried elsewhere: if the connection ends,
    /// the call fails.
    pub async fn call(&self, request: Message) -> Result<Message, PoolError> {
        let conn = &self.guard.conn;
        match call_once(conn, &request, &self.config).await {
            Outcome::Response(response) => Ok(response),
            Outcome::Retry => Err(lost(conn, "the server went away before seeing the request")),
            Outcome::Failed(error) => Err(error),
        }
    }

    /// A one-way send on the leased connection.
    pub fn notify(&self, message: Message) -> Result<(), PoolError> {
        let conn = &self.guard.conn;
        let frame =
            Frame::new(Envelope::Notify(pb::Notify { header: message.header }), message.payloads);
        check_limits(&self.config, &conn.endpoint, &frame)?;
        if conn.queue(frame, None) { Ok(()) } else { Err(lost(conn, "the connection closed")) }
    }
}

/// Checks the request against the limits, registers it, queues its frame and waits for its
/// outcome. If the future is dropped first, the call is unregistered and a cancel is sent.
async fn call_once(conn: &Arc<Conn>, request: &Message, config: &ResolvedPoolConfig) -> Outcome {
    let mut frame = Frame::request(0, request.header.clone(), request.payloads.clone());
    if let Err(error) = check_limits(config, &conn.endpoint, &frame) {
        return Outcome::Failed(error);
    }
    let (id, outcome) = match conn.register() {
        Ok(registered) => registered,
        Err(error) => return Outcome::Failed(error),
    };
    if let Envelope::Request(request) = &mut frame.envelope {
        request.id = id;
    }
    let mut in_flight = InFlight { conn, id, waiting: true };
    conn.queue(frame, None);
    let outcome = outcome.await;
    in_flight.waiting = false;
    // The sender is only dropped unsent if the connection was torn down mid-flight.
    outcome.unwrap_or_else(|_| Outcome::Failed(lost(conn, "the connection was dropped")))
}

/// A registered call whose outcome has not arrived; dropping it cancels the call.
struct InFlight<'a> {
    conn: &'a Arc<Conn>,
    id: u64,
    waiting: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.waiting && self.conn.unregister(self.id) {
            let cancel = Frame::new(Envelope::Cancel(pb::Cancel { id: self.id }), vec![]);
            self.conn.queue(cancel, None);
        }
    }
}

/// The frame limits apply before anything is queued, so an oversized message fails alone.
fn check_limits(
    config: &ResolvedPoolConfig,
    endpoint: &Address,
    frame: &Frame,
) -> Result<(), PoolError> {
    config.transport().get_limits().check_frame(frame).map(drop).map_err(|error| PoolError::Send {
        address: endpoint.to_string(),
        reason: error.to_string(),
    })
}

fn lost(conn: &Conn, reason: &str) -> PoolError {
    PoolError::ConnectionLost { address: conn.label.to_string(), reason: reason.to_string() }
}
