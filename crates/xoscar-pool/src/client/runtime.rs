//! Per-runtime caller state: the connections this runtime made, single-flight dialling, and
//! the reaper (one per pool and runtime, holding only weak references).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use xoscar_transport::Address;

use super::conn::{Conn, LeaseGuard};
use super::driver::{EndGuard, Liveness, drive};
use super::state::Ending;
use crate::stats::Counters;
use crate::{PoolError, ResolvedPoolConfig};

type DialResult = Option<Result<Arc<Conn>, PoolError>>;

/// How often [`RuntimeState::lease`] dials afresh after finding a closing connection.
const LEASE_ATTEMPTS: usize = 5;

enum Slot {
    Ready(Arc<Conn>),
    /// A dial is under way; every caller waits for the same one.
    Dialling(watch::Receiver<DialResult>),
}

/// What one runtime's callers share.
pub(crate) struct RuntimeState {
    config: ResolvedPoolConfig,
    counters: Arc<Counters>,
    /// Looked up on every call: foldhash (seeded per process) instead of SipHash, which cost
    /// about 200 instructions per call on a Unix socket path.
    slots: Mutex<HashMap<Address, Slot, foldhash::fast::RandomState>>,
    /// Every connection this runtime made that still lives, in the map or not (one leaving
    /// it may still hold leases): their leases add up to the pool's `leases_in_flight`. Those
    /// gone are dropped from it at every dial, so it holds the live ones and those gone since
    /// the last dial.
    made: Mutex<Vec<Weak<Conn>>>,
    /// Dropping it stops the reaper.
    stop_reaper: Mutex<Option<oneshot::Sender<()>>>,
}

impl RuntimeState {
    /// The state, without its reaper: [`RuntimeState::start_reaper`] starts it once the state
    /// is in the pool's map (and outside that map's lock: a task spawned while its runtime
    /// shuts down is dropped on the spot, and its drop takes that lock).
    pub(crate) fn new(config: ResolvedPoolConfig, counters: Arc<Counters>) -> Arc<Self> {
        Arc::new(RuntimeState {
            config,
            counters,
            slots: Mutex::new(HashMap::default()),
            made: Mutex::new(Vec::new()),
            stop_reaper: Mutex::new(None),
        })
    }

    /// Starts the reaper on the current runtime. `on_runtime_gone` runs when the reaper task
    /// is dropped, i.e. when the runtime shuts down (or at once, if it is shutting down now).
    pub(crate) fn start_reaper(
        self: &Arc<Self>,
        on_runtime_gone: impl FnOnce(&Weak<RuntimeState>) + Send + 'static,
    ) {
        let (stop_tx, stop_rx) = oneshot::channel();
        *self.stop_reaper.lock() = Some(stop_tx);
        let weak = Arc::downgrade(self);
        let sentinel = Sentinel { state: weak.clone(), on_drop: Some(Box::new(on_runtime_gone)) };
        tokio::spawn(reaper(
            weak,
            stop_rx,
            self.config.idle_timeout(),
            self.config.reap_interval(),
            sentinel,
        ));
    }

    /// The connection to `endpoint`, dialling it if there is none (concurrent first callers
    /// share one dial).
    pub(crate) async fn connection(
        self: &Arc<Self>,
        endpoint: &Address,
    ) -> Result<Arc<Conn>, PoolError> {
        let mut dial = {
            let mut slots = self.slots.lock();
            match slots.get(endpoint) {
                Some(Slot::Ready(conn)) if conn.is_accepting() => return Ok(conn.clone()),
                Some(Slot::Dialling(dial)) => dial.clone(),
                _ => {
                    let (tx, rx) = watch::channel(None);
                    slots.insert(endpoint.clone(), Slot::Dialling(rx.clone()));
                    drop(slots);
                    self.spawn_dial(endpoint.clone(), tx);
                    rx
                }
            }
        };
        match dial.wait_for(Option::is_some).await {
            Ok(result) => result.clone().expect("waited for Some"),
            // Unreachable while the dial's guard reports on drop; an error, never a spin.
            Err(_) => Err(PoolError::DialAborted { address: endpoint.to_string() }),
        }
    }

    /// A lease on the connection to `endpoint`. A connection that is closing refuses leases;
    /// then this forgets it and dials afresh (a few times at most).
    pub(crate) fn lease<'a>(
        self: &'a Arc<Self>,
        endpoint: &'a Address,
    ) -> impl Future<Output = Result<LeaseGuard, PoolError>> + Send + 'a {
        // The common case needs no await: a connection is there and takes the lease. The rest
        // (dialling, waiting for a dial) is boxed, which keeps every call's future small.
        let ready = self.try_lease(endpoint);
        async move {
            match ready {
                Some(lease) => Ok(lease),
                None => Box::pin(self.lease_slowly(endpoint)).await,
            }
        }
    }

    /// The leases held now on the connections this runtime made.
    pub(crate) fn leases(&self) -> usize {
        let made: Vec<Arc<Conn>> = self.made.lock().iter().filter_map(Weak::upgrade).collect();
        made.iter().map(|conn| conn.state().leases()).sum()
    }

    /// Counts `conn` among the connections this runtime made (and forgets those gone).
    fn count_made(&self, conn: &Arc<Conn>) {
        let mut made = self.made.lock();
        made.retain(|conn| conn.strong_count() > 0);
        made.push(Arc::downgrade(conn));
    }

    /// A lease on the connection to `endpoint` if one is there and takes it, at once.
    pub(crate) fn try_lease(&self, endpoint: &Address) -> Option<LeaseGuard> {
        self.ready(endpoint)?.try_lease_owned()
    }

    /// The connection to `endpoint`, if one is made (it may refuse leases).
    pub(crate) fn ready(&self, endpoint: &Address) -> Option<Arc<Conn>> {
        match self.slots.lock().get(endpoint) {
            Some(Slot::Ready(conn)) => Some(conn.clone()),
            _ => None,
        }
    }

    /// [`RuntimeState::lease`] when [`RuntimeState::try_lease`] found none: dials, or waits
    /// for a dial under way.
    pub(crate) async fn lease_slowly(
        self: &Arc<Self>,
        endpoint: &Address,
    ) -> Result<LeaseGuard, PoolError> {
        for _ in 0..LEASE_ATTEMPTS {
            let conn = self.connection(endpoint).await?;
            if let Some(lease) = conn.try_lease() {
                return Ok(lease);
            }
            self.forget(&conn);
        }
        Err(PoolError::ConnectionLost {
            address: endpoint.to_string(),
            reason: format!("every connection was closing, {LEASE_ATTEMPTS} times"),
            sent: false,
            source: None,
        })
    }

    /// Dials in its own task, so the connection is made even if every waiting caller gives up.
    fn spawn_dial(self: &Arc<Self>, endpoint: Address, done: watch::Sender<DialResult>) {
        let mut guard = DialGuard { state: Arc::downgrade(self), endpoint, done: Some(done) };
        let transport = self.config.transport().clone();
        let liveness = Liveness {
            interval: self.config.heartbeat_interval(),
            timeout: self.config.heartbeat_timeout(),
        };
        let max_queued_bytes = self.config.max_queued_bytes();
        let counters = self.counters.clone();
        tokio::spawn(async move {
            let result = xoscar_transport::connect(&guard.endpoint, &transport).await;
            let Some(state) = guard.state.upgrade() else { return };
            let channel = match result {
                Ok(channel) => channel,
                Err(error) => {
                    tracing::debug!(endpoint = %guard.endpoint, %error, "connect failed");
                    let error = PoolError::connect(&guard.endpoint.to_string(), error);
                    guard.finish(Err(error));
                    return;
                }
            };
            let encoder = channel.encoder();
            let conn =
                Arc::new(Conn::new(guard.endpoint.clone(), counters, max_queued_bytes, encoder));
            tracing::debug!(endpoint = %guard.endpoint, "connected");
            let weak = guard.state.clone();
            // Made before the spawn: if the driver never runs, its drop still ends the
            // connection, so no call waits on it forever.
            let end_guard = EndGuard::new(
                conn.clone(),
                Box::new(move |conn: &Arc<Conn>| {
                    if let Some(state) = weak.upgrade() {
                        state.forget(conn);
                    }
                }),
            );
            state.count_made(&conn);
            state.slots.lock().insert(guard.endpoint.clone(), Slot::Ready(conn.clone()));
            drop(state);
            tokio::spawn(drive(end_guard, channel, liveness));
            guard.finish(Ok(conn));
        });
    }

    /// Removes `conn` from the map if it is still the one there.
    pub(crate) fn forget(&self, conn: &Arc<Conn>) {
        let mut slots = self.slots.lock();
        if matches!(slots.get(&conn.endpoint), Some(Slot::Ready(current)) if Arc::ptr_eq(current, conn))
        {
            slots.remove(&conn.endpoint);
        }
    }

    /// One reaper pass: closes every connection that has held no lease for `idle`.
    pub(crate) fn reap(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let mut reaped = Vec::new();
        self.slots.lock().retain(|_, slot| match slot {
            Slot::Ready(conn) if conn.try_reap(now, idle) => {
                reaped.push(conn.clone());
                false
            }
            _ => true,
        });
        for conn in &reaped {
            self.counters.reaped();
            tracing::debug!(endpoint = %conn.label, "reaping idle connection");
            conn.request_close(Ending::Reaped);
        }
        reaped.len()
    }
}

impl Drop for RuntimeState {
    fn drop(&mut self) {
        // Each closes once its last lease is released: calls in flight get their answers and
        // one-way messages being written are written.
        for slot in self.slots.get_mut().values() {
            if let Slot::Ready(conn) = slot {
                conn.request_close(Ending::Dropped);
            }
        }
    }
}

/// Reports the outcome of one dial to everyone waiting for it, and on drop without an outcome
/// (the dial task was dropped with its runtime, or panicked) reports that instead, so nobody
/// waits on a dial that will never finish.
struct DialGuard {
    state: Weak<RuntimeState>,
    endpoint: Address,
    done: Option<watch::Sender<DialResult>>,
}

impl DialGuard {
    fn finish(&mut self, result: Result<Arc<Conn>, PoolError>) {
        if result.is_err()
            && let Some(state) = self.state.upgrade()
        {
            let mut slots = state.slots.lock();
            if matches!(slots.get(&self.endpoint), Some(Slot::Dialling(_))) {
                slots.remove(&self.endpoint);
            }
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(Some(result));
        }
    }
}

impl Drop for DialGuard {
    fn drop(&mut self) {
        if self.done.is_some() {
            self.finish(Err(PoolError::DialAborted { address: self.endpoint.to_string() }));
        }
    }
}

/// Told when a runtime's reaper task ends (with the runtime, or with the pool).
type OnRuntimeGone = Box<dyn FnOnce(&Weak<RuntimeState>) + Send>;

/// Lives in the reaper task: when the task is dropped (the runtime shut down), tells the pool.
struct Sentinel {
    state: Weak<RuntimeState>,
    on_drop: Option<OnRuntimeGone>,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        if let Some(on_drop) = self.on_drop.take() {
            on_drop(&self.state);
        }
    }
}

async fn reaper(
    state: Weak<RuntimeState>,
    mut stop: oneshot::Receiver<()>,
    idle: Option<Duration>,
    interval: Option<Duration>,
    _sentinel: Sentinel,
) {
    let (Some(idle), Some(interval)) = (idle, interval) else {
        // Reaping is off; the task still carries the sentinel.
        let _ = stop.await;
        return;
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticker.tick() => {}
        }
        let Some(state) = state.upgrade() else { return };
        state.reap(idle);
    }
}
