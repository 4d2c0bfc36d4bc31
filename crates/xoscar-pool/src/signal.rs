//! A wake-up for the one task that waits on it: a flag and an `AtomicWaker`. It keeps one
//! permit like tokio's `Notify::notify_one` (a signal sent while nobody waits is not lost), but
//! costs a couple of atomic operations where `Notify` takes a lock to add and remove each
//! waiter: on the per-call path (the writer waiting for a frame, the liveness watch waiting for
//! a lease) that lock was about 400 instructions per call.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;

#[derive(Debug, Default)]
pub(crate) struct Signal {
    set: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    /// Wakes the waiter, or leaves a permit for its next wait.
    pub(crate) fn notify(&self) {
        self.set.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Completes once signalled, taking the permit. Cancel safe: a signal that arrives after
    /// the future is dropped stays as the permit. One waiter at a time.
    pub(crate) async fn notified(&self) {
        poll_fn(|cx| {
            if self.set.swap(false, Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // Looked at again after registering: a signal in between is not missed.
            if self.set.swap(false, Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
        })
        .await
    }
}
