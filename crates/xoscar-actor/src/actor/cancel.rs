//! How a handler sees that its call was cancelled: each context's [`CallSignal`], and the
//! [`Cancellation`] a handler takes from it to answer early. The caller's side is
//! `ActorRef::call_cancellable`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// The call being handled was cancelled.
const CANCELLED: u64 = 1;
/// The handler took its [`Cancellation`]: it answers a cancel itself.
const OBSERVED: u64 = 2;
/// The low bits above are flags; the rest counts the calls a context has handled.
const FLAGS: u64 = CANCELLED | OBSERVED;
const ONE_CALL: u64 = 4;

/// One context's cancel signal, reused from call to call: the state of the current call
/// (generation + flags), and a wake-up for those waiting on it.
#[derive(Default)]
pub(crate) struct CallSignal {
    state: AtomicU64,
    changed: Notify,
}

impl CallSignal {
    /// The current call is over: its handles read as cancelled from now on (and their waiters
    /// wake); the next call starts with nothing cancelled and nobody watching.
    pub(crate) fn end(&self) {
        let state = self.state.load(Ordering::Relaxed);
        self.state.store((state & !FLAGS).wrapping_add(ONE_CALL), Ordering::Release);
        // Only a handler that took its cancellation can have left a waiter.
        if state & OBSERVED != 0 {
            self.changed.notify_waiters();
        }
    }

    /// The caller cancelled the current call: wakes its watchers. Returns whether the handler
    /// watches (then it answers for itself).
    pub(crate) fn cancel(&self) -> bool {
        let state = self.state.fetch_or(CANCELLED, Ordering::AcqRel);
        self.changed.notify_waiters();
        state & OBSERVED != 0
    }

    /// The handler takes its cancellation: from now on it answers a cancel itself.
    pub(crate) fn watch(self: &Arc<Self>) -> Cancellation {
        let state = self.state.fetch_or(OBSERVED, Ordering::AcqRel);
        Cancellation { signal: self.clone(), generation: state & !FLAGS }
    }
}

/// The cancellation of the call a handler is handling, from [`crate::Context::cancellation`].
///
/// Taking it tells the actor that the handler answers a cancel itself: when the caller
/// cancels, the handler is no longer dropped where it waits; it runs on, should notice
/// ([`Cancellation::is_cancelled`], or race [`Cancellation::cancelled`] against its work),
/// clean up, and answer. A caller that cancelled with
/// [`crate::ActorRef::call_cancellable`] gets that answer (xoscar: a method that catches
/// the cancel and returns a value gives the caller that value); a caller that dropped its
/// call gets nothing. A handler that takes its cancellation
/// and ignores it runs to the end, and its serial actor waits for it.
///
/// It speaks for the call that was being handled when it was taken: once that call is over,
/// it reads as cancelled.
#[derive(Clone)]
pub struct Cancellation {
    signal: Arc<CallSignal>,
    generation: u64,
}

impl std::fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellation").field("cancelled", &self.is_cancelled()).finish()
    }
}

impl Cancellation {
    /// Whether the caller cancelled the call (or gave up on it: dropped it, timed out, lost
    /// its connection), or the call is over.
    pub fn is_cancelled(&self) -> bool {
        let state = self.signal.state.load(Ordering::Acquire);
        state & !FLAGS != self.generation || state & CANCELLED != 0
    }

    /// Completes once [`Cancellation::is_cancelled`] holds.
    pub async fn cancelled(&self) {
        loop {
            let changed = self.signal.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the check, so a cancel in between still wakes us.
            changed.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            changed.await;
        }
    }
}
