//! Counters a user can read from a pool.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A snapshot of a pool's counters ([`crate::Pool::stats`]), over all runtimes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connections open now.
    pub open_connections: usize,
    /// Leases held now: calls in flight, one-way sends not yet written, transfer leases (on
    /// the runtimes counted in `runtimes`).
    pub leases_in_flight: usize,
    /// Connections established since the pool was made.
    pub connects: u64,
    /// Connections closed by the idle reaper.
    pub reaps: u64,
    /// Connections declared dead because a ping went unanswered.
    pub dead_peers: u64,
    /// Tokio runtimes with caller state in the pool now (each has its own connections and
    /// reaper; a runtime's state leaves when the runtime shuts down).
    pub runtimes: usize,
}

/// The live counters behind [`PoolStats`]; each change is also reported through the
/// `metrics` facade: gauges moved by one at each change (see [`publish`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) open_connections: AtomicUsize,
    // No lease count here: each connection counts its leases under its lock, and
    // `Pool::stats` adds them up. A pool-wide count moved by every call was two atomic
    // read-modify-writes per call, on one cache line shared by every thread that calls.
    pub(crate) connects: AtomicU64,
    pub(crate) reaps: AtomicU64,
    pub(crate) dead_peers: AtomicU64,
    /// The leases gauge, looked up in the recorder at the first lease: it moves twice per
    /// call, and a lookup each time (building its key, asking the recorder) cost more than
    /// the rest of leasing.
    leases_gauge: OnceLock<metrics::Gauge>,
}

/// Names of the caller pool's metrics (see docs/runtime.md, "Metrics").
pub(crate) mod names {
    /// Gauge: connections open now.
    pub const CONNECTIONS: &str = "xoscar_client_connections";
    /// Gauge: leases held now (calls in flight, unsent one-way messages, transfers).
    pub const LEASES: &str = "xoscar_client_leases";
    /// Counter: connections established.
    pub const CONNECTS: &str = "xoscar_client_connects_total";
    /// Counter: connections closed by the idle reaper.
    pub const REAPS: &str = "xoscar_client_reaps_total";
    /// Counter: connections declared dead (a ping went unanswered).
    pub const DEAD_PEERS: &str = "xoscar_client_dead_peers_total";
}

/// Moves a process-wide gauge by one. Increments and decrements, never `set` from a total
/// read a moment before: two threads setting totals they read in the other order would
/// leave the gauge wrong for good.
pub(crate) fn publish(name: &'static str, up: bool) {
    let gauge = metrics::gauge!(name);
    if up { gauge.increment(1.0) } else { gauge.decrement(1.0) }
}

impl Counters {
    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Relaxed);
        self.open_connections.fetch_add(1, Relaxed);
        metrics::counter!(names::CONNECTS).increment(1);
        publish(names::CONNECTIONS, true);
    }

    pub(crate) fn closed(&self, dead: bool) {
        self.open_connections.fetch_sub(1, Relaxed);
        publish(names::CONNECTIONS, false);
        if dead {
            self.dead_peers.fetch_add(1, Relaxed);
            metrics::counter!(names::DEAD_PEERS).increment(1);
        }
    }

    pub(crate) fn reaped(&self) {
        self.reaps.fetch_add(1, Relaxed);
        metrics::counter!(names::REAPS).increment(1);
    }

    /// A lease was taken: moves the leases gauge (nothing when no recorder is installed).
    pub(crate) fn leased(&self) {
        self.leases_gauge().increment(1.0);
    }

    /// A lease was released: moves the leases gauge back.
    pub(crate) fn released(&self) {
        self.leases_gauge().decrement(1.0);
    }

    fn leases_gauge(&self) -> &metrics::Gauge {
        self.leases_gauge.get_or_init(|| metrics::gauge!(names::LEASES))
    }

    pub(crate) fn snapshot(&self) -> PoolStats {
        PoolStats {
            open_connections: self.open_connections.load(Relaxed),
            // Filled in by `Pool::stats`, from the connections.
            leases_in_flight: 0,
            connects: self.connects.load(Relaxed),
            reaps: self.reaps.load(Relaxed),
            dead_peers: self.dead_peers.load(Relaxed),
            runtimes: 0,
        }
    }
}
