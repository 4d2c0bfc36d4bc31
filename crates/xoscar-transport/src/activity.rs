//! When one half of a channel last moved bytes, readable from other tasks while that half is in
//! use (the pool's liveness and idle watches read it; the half's own I/O writes it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

/// The last time a [`crate::FrameReader`] received bytes, at the granularity of each read (a
/// large frame arriving slowly moves it on every read, not once per frame), or a
/// [`crate::FrameWriter`] made progress after waiting for its peer (see
/// [`crate::FrameWriter::activity`]).
///
/// Cheap to clone; clones watch the same half. Uses tokio's clock, so it follows a paused clock
/// in tests.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Clock>);

#[derive(Debug)]
struct Clock {
    epoch: Instant,
    since_epoch_ns: AtomicU64,
}

impl Activity {
    /// Starts at now (the channel's birth counts as activity).
    pub(crate) fn new() -> Self {
        Activity(Arc::new(Clock { epoch: Instant::now(), since_epoch_ns: AtomicU64::new(0) }))
    }

    /// Records that bytes moved now.
    pub(crate) fn touch(&self) {
        let ns = Instant::now().duration_since(self.0.epoch).as_nanos() as u64;
        self.0.since_epoch_ns.store(ns, Relaxed);
    }

    /// When bytes last moved (the channel's start, if none did).
    pub fn last(&self) -> Instant {
        self.0.epoch + Duration::from_nanos(self.0.since_epoch_ns.load(Relaxed))
    }
}
