//! One caller-side connection's shared state: leases (atomic with reaping), the table of calls
//! waiting for a response, and the queue to the connection's writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use xoscar_transport::Address;
use xoscar_wire::Frame;

use crate::id_map::IdMap;
use crate::last_seen::LastSeen;
use crate::stats::Counters;
use crate::{Message, PoolError};

/// What a waiting call is told.
pub(crate) enum Outcome {
    /// The response.
    Response(Message),
    /// The server never saw the request (it was past the go-away's last accepted id):
    /// send it again on a fresh connection.
    Retry,
    /// The call failed.
    Failed(PoolError),
}

/// Something for the writer: a frame, and the lease (of a one-way send) to release once the
/// frame is written.
pub(crate) struct Outgoing {
    pub(crate) frame: Frame,
    pub(crate) lease: Option<LeaseGuard>,
}

/// Why a connection ended.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    /// Closed by the idle reaper.
    Reaped,
    /// The server said go-away and everything it accepted was answered.
    GoneAway,
    /// The pool (or its runtime) is gone.
    Dropped,
    /// The peer closed or the connection broke.
    Lost(String),
    /// A ping went unanswered.
    Dead(Duration),
}

struct LeaseState {
    leases: usize,
    idle_since: Instant,
    busy_since: Instant,
    /// Set once: no lease may be taken any more.
    closing: bool,
}

struct Waiting {
    calls: IdMap<u64, oneshot::Sender<Outcome>>,
    /// Set when the connection ended: no call may register any more.
    ended: Option<Ending>,
    /// The go-away's last accepted id, once one arrived.
    last_accepted: Option<u64>,
}

/// The shared half of one connection; its driver task holds the socket.
pub(crate) struct Conn {
    pub(crate) endpoint: Address,
    pub(crate) label: Arc<str>,
    leases: Mutex<LeaseState>,
    waiting: Mutex<Waiting>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    next_id: AtomicU64,
    last_received: LastSeen,
    next_nonce: AtomicU64,
    /// Wakes the liveness timer when the first lease is taken.
    pub(crate) became_busy: Notify,
    /// Asks the driver to close (reaped, or the pool is gone), with the reason.
    pub(crate) close_requested: Notify,
    close_reason: Mutex<Option<Ending>>,
    pub(crate) counters: Arc<Counters>,
}

impl Conn {
    pub(crate) fn new(
        endpoint: Address,
        outgoing: mpsc::UnboundedSender<Outgoing>,
        counters: Arc<Counters>,
    ) -> Self {
        let now = Instant::now();
        Conn {
            label: endpoint.to_string().into(),
            endpoint,
            leases: Mutex::new(LeaseState {
                leases: 0,
                idle_since: now,
                busy_since: now,
                closing: false,
            }),
            waiting: Mutex::new(Waiting {
                calls: IdMap::default(),
                ended: None,
                last_accepted: None,
            }),
            outgoing,
            next_id: AtomicU64::new(1),
            last_received: LastSeen::new(),
            next_nonce: AtomicU64::new(1),
            became_busy: Notify::new(),
            close_requested: Notify::new(),
            close_reason: Mutex::new(None),
            counters,
        }
    }

    /// Takes a lease, unless the connection is closing (then the caller dials afresh).
    pub(crate) fn try_lease(self: &Arc<Self>) -> Option<LeaseGuard> {
        let mut state = self.leases.lock();
        if state.closing {
            return None;
        }
        state.leases += 1;
        if state.leases == 1 {
            state.busy_since = Instant::now();
            self.became_busy.notify_one();
        }
        drop(state);
        self.counters.leases_in_flight.fetch_add(1, Relaxed);
        Some(LeaseGuard { conn: self.clone() })
    }

    fn release(&self) {
        let mut state = self.leases.lock();
        state.leases -= 1;
        if state.leases == 0 {
            state.idle_since = Instant::now();
        }
        drop(state);
        self.counters.leases_in_flight.fetch_sub(1, Relaxed);
    }

    /// Marks the connection closing if it has held no lease for `idle`. Under the same lock as
    /// [`Conn::try_lease`], so a lease and a reap never both succeed.
    pub(crate) fn try_reap(&self, now: Instant, idle: Duration) -> bool {
        let mut state = self.leases.lock();
        if state.closing || state.leases > 0 || now.duration_since(state.idle_since) < idle {
            return false;
        }
        state.closing = true;
        true
    }

    /// Asks the driver to close the connection for `reason`.
    pub(crate) fn request_close(&self, reason: Ending) {
        self.mark_closing();
        self.close_reason.lock().get_or_insert(reason);
        self.close_requested.notify_one();
    }

    /// Why a close was requested.
    pub(crate) fn close_reason(&self) -> Ending {
        self.close_reason.lock().clone().unwrap_or(Ending::Dropped)
    }

    /// After a go-away: true once every call the server accepted has its response.
    pub(crate) fn go_away_done(&self) -> bool {
        let waiting = self.waiting.lock();
        waiting.last_accepted.is_some_and(|last| waiting.calls.keys().all(|&id| id > last))
    }

    /// No new leases from now on.
    pub(crate) fn mark_closing(&self) {
        self.leases.lock().closing = true;
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.leases.lock().closing
    }

    /// Leases held now.
    pub(crate) fn lease_count(&self) -> usize {
        self.leases.lock().leases
    }

    /// When the current busy period began (the first lease after an idle one).
    pub(crate) fn busy_since(&self) -> Instant {
        self.leases.lock().busy_since
    }

    /// Records that a frame arrived.
    pub(crate) fn touch(&self) {
        self.last_received.touch();
    }

    /// When the last frame arrived (the connection's start if none did).
    pub(crate) fn last_received(&self) -> Instant {
        self.last_received.get()
    }

    pub(crate) fn next_nonce(&self) -> u64 {
        self.next_nonce.fetch_add(1, Relaxed)
    }

    /// Registers a call; the receiver gets its outcome.
    pub(crate) fn register(&self) -> Result<(u64, oneshot::Receiver<Outcome>), PoolError> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock();
        if let Some(ending) = &waiting.ended {
            return Err(self.error_for(ending));
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        waiting.calls.insert(id, tx);
        Ok((id, rx))
    }

    /// Forgets a call (its future was dropped). True if it was still waiting, so a cancel
    /// should be sent.
    pub(crate) fn unregister(&self, id: u64) -> bool {
        self.waiting.lock().calls.remove(&id).is_some()
    }

    /// Hands a response to its call. False for an id nobody waits for (a cancelled call whose
    /// response crossed the cancel).
    pub(crate) fn resolve(&self, id: u64, response: Message) -> bool {
        let waiter = self.waiting.lock().calls.remove(&id);
        match waiter {
            Some(waiter) => {
                let _ = waiter.send(Outcome::Response(response));
                true
            }
            None => false,
        }
    }

    /// Records a go-away: no new leases; calls past `last_accepted` will be retried.
    /// Returns [`Conn::go_away_done`].
    pub(crate) fn go_away(&self, last_accepted: u64) -> bool {
        self.mark_closing();
        self.waiting.lock().last_accepted = Some(last_accepted);
        self.go_away_done()
    }

    /// Ends the connection: no more registrations, every waiting call gets its outcome.
    pub(crate) fn end(&self, ending: Ending) {
        self.mark_closing();
        let (calls, last_accepted) = {
            let mut waiting = self.waiting.lock();
            if waiting.ended.is_some() {
                return;
            }
            waiting.ended = Some(ending.clone());
            (std::mem::take(&mut waiting.calls), waiting.last_accepted)
        };
        for (id, waiter) in calls {
            let outcome = match last_accepted {
                // The server never saw it: safe to send again elsewhere.
                Some(last) if id > last => Outcome::Retry,
                _ => Outcome::Failed(self.error_for(&ending)),
            };
            let _ = waiter.send(outcome);
        }
    }

    fn error_for(&self, ending: &Ending) -> PoolError {
        let address = self.label.to_string();
        match ending {
            Ending::Dead(silent_for) => {
                PoolError::ConnectionTimedOut { address, silent_for: *silent_for }
            }
            Ending::Lost(reason) => PoolError::ConnectionLost { address, reason: reason.clone() },
            Ending::Reaped => {
                PoolError::ConnectionLost { address, reason: "closed by the idle reaper".into() }
            }
            Ending::GoneAway => {
                PoolError::ConnectionLost { address, reason: "the server went away".into() }
            }
            Ending::Dropped => {
                PoolError::ConnectionLost { address, reason: "the pool was dropped".into() }
            }
        }
    }

    /// Queues a frame for the writer. False if the driver is gone.
    pub(crate) fn queue(&self, frame: Frame, lease: Option<LeaseGuard>) -> bool {
        self.outgoing.send(Outgoing { frame, lease }).is_ok()
    }
}

/// One lease on a connection; released on drop, so it can never leak or go negative.
pub(crate) struct LeaseGuard {
    pub(crate) conn: Arc<Conn>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.conn.release();
    }
}
