//! Counters a user can read from a pool.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A snapshot of a pool's counters ([`crate::Pool::stats`]), over all runtimes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connections open now.
    pub open_connections: usize,
    /// Leases held now: calls in flight, one-way sends not yet written, transfer leases.
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

/// The live counters behind [`PoolStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) open_connections: AtomicUsize,
    pub(crate) leases_in_flight: AtomicUsize,
    pub(crate) connects: AtomicU64,
    pub(crate) reaps: AtomicU64,
    pub(crate) dead_peers: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> PoolStats {
        PoolStats {
            open_connections: self.open_connections.load(Relaxed),
            leases_in_flight: self.leases_in_flight.load(Relaxed),
            connects: self.connects.load(Relaxed),
            reaps: self.reaps.load(Relaxed),
            dead_peers: self.dead_peers.load(Relaxed),
            runtimes: 0,
        }
    }
}
