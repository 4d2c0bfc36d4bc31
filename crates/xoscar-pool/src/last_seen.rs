//! When a connection last received a frame, readable and writable without a lock (the reader
//! writes it on every frame; the liveness and idle watches read it).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

/// An instant stored as nanoseconds since the connection's start, in one atomic.
#[derive(Debug)]
pub(crate) struct LastSeen {
    epoch: Instant,
    since_epoch_ns: AtomicU64,
}

impl LastSeen {
    /// Starts at now.
    pub(crate) fn new() -> Self {
        LastSeen { epoch: Instant::now(), since_epoch_ns: AtomicU64::new(0) }
    }

    /// Records that a frame arrived now.
    pub(crate) fn touch(&self) {
        let ns = Instant::now().duration_since(self.epoch).as_nanos() as u64;
        self.since_epoch_ns.store(ns, Relaxed);
    }

    /// When the last frame arrived (the start, if none did).
    pub(crate) fn get(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.since_epoch_ns.load(Relaxed))
    }
}
