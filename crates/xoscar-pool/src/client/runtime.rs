//! Per-runtime caller state: the connections this runtime made, single-flight dialling, and
//! the reaper (one per pool and runtime, holding only weak references).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use xoscar_transport::Address;

use super::conn::{Conn, Ending, LeaseGuard};
use super::driver::{Liveness, drive};
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
    slots: Mutex<HashMap<Address, Slot>>,
    /// Dropping it stops the reaper.
    _stop_reaper: oneshot::Sender<()>,
}

impl RuntimeState {
    /// Creates the state and starts its reaper on the current runtime. `on_runtime_gone`
    /// runs when the reaper task is dropped, i.e. when the runtime shuts down.
    pub(crate) fn start(
        config: ResolvedPoolConfig,
        counters: Arc<Counters>,
        on_runtime_gone: impl FnOnce(&Weak<RuntimeState>) + Send + 'static,
    ) -> Arc<Self> {
        let (stop_tx, stop_rx) = oneshot::channel();
        let state = Arc::new(RuntimeState {
            config,
            counters,
            slots: Mutex::new(HashMap::new()),
            _stop_reaper: stop_tx,
        });
        let weak = Arc::downgrade(&state);
        let sentinel = Sentinel { state: weak.clone(), on_drop: Some(Box::new(on_runtime_gone)) };
        tokio::spawn(reaper(
            weak,
            stop_rx,
            state.config.idle_timeout(),
            state.config.reap_interval(),
            sentinel,
        ));
        state
    }

    /// The connection to `endpoint`, dialling it if there is none (concurrent first callers
    /// share one dial).
    pub(crate) async fn connection(
        self: &Arc<Self>,
        endpoint: &Address,
    ) -> Result<Arc<Conn>, PoolError> {
        loop {
            let mut dial = {
                let mut slots = self.slots.lock();
                match slots.get(endpoint) {
                    Some(Slot::Ready(conn)) if !conn.is_closing() => return Ok(conn.clone()),
                    Some(Slot::Dialling(dial)) => dial.clone(),
                    _ => {
                        let (tx, rx) = watch::channel(None);
                        slots.insert(endpoint.clone(), Slot::Dialling(rx.clone()));
                        self.spawn_dial(endpoint.clone(), tx);
                        rx
                    }
                }
            };
            match dial.wait_for(Option::is_some).await {
                Ok(result) => return result.clone().expect("waited for Some"),
                // The dial task was dropped (its runtime is shutting down): look again.
                Err(_) => continue,
            }
        }
    }

    /// A lease on the connection to `endpoint`. A connection the reaper is closing refuses
    /// leases; then this forgets it and dials afresh (a few times at most).
    pub(crate) async fn lease(
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
        })
    }

    /// Dials in its own task, so the connection is made even if every waiting caller gives up.
    fn spawn_dial(self: &Arc<Self>, endpoint: Address, done: watch::Sender<DialResult>) {
        let weak = Arc::downgrade(self);
        let transport = self.config.transport().clone();
        let liveness = Liveness {
            interval: self.config.heartbeat_interval(),
            timeout: self.config.heartbeat_timeout(),
        };
        let counters = self.counters.clone();
        tokio::spawn(async move {
            let result = xoscar_transport::connect(&endpoint, &transport).await;
            let Some(state) = weak.upgrade() else { return };
            let channel = match result {
                Ok(channel) => channel,
                Err(error) => {
                    let mut slots = state.slots.lock();
                    if matches!(slots.get(&endpoint), Some(Slot::Dialling(_))) {
                        slots.remove(&endpoint);
                    }
                    drop(slots);
                    tracing::debug!(%endpoint, %error, "connect failed");
                    let _ = done.send(Some(Err(PoolError::connect(&endpoint.to_string(), error))));
                    return;
                }
            };
            let (outgoing_tx, outgoing_rx) = mpsc::unbounded_channel();
            let conn = Arc::new(Conn::new(endpoint.clone(), outgoing_tx, counters));
            tracing::debug!(%endpoint, "connected");
            state.slots.lock().insert(endpoint, Slot::Ready(conn.clone()));
            drop(state);
            let forget = move |conn: &Arc<Conn>| {
                if let Some(state) = weak.upgrade() {
                    state.forget(conn);
                }
            };
            tokio::spawn(drive(conn.clone(), channel, outgoing_rx, liveness, forget));
            let _ = done.send(Some(Ok(conn)));
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
            self.counters.reaps.fetch_add(1, Relaxed);
            tracing::debug!(endpoint = %conn.label, "reaping idle connection");
            conn.request_close(Ending::Reaped);
        }
        reaped.len()
    }
}

impl Drop for RuntimeState {
    fn drop(&mut self) {
        for slot in self.slots.get_mut().values() {
            if let Slot::Ready(conn) = slot {
                conn.request_close(Ending::Dropped);
            }
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
