//! Explicit cancellation: [`ActorRef::call_cancellable`], and [`Cancellation`], through which
//! a handler sees the cancel and answers early.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;
use xoscar_pool::PoolError;

use crate::client::{Reach, Waiting};
use crate::envelope::{Answer, Delivery, Sink};
use crate::{Actor, ActorError, ActorRef, Handler};

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
/// clean up, and answer. A caller that cancelled with [`ActorRef::call_cancellable`] gets that
/// answer (xoscar: a method that catches the cancel and returns a value gives the caller that
/// value); a caller that dropped its call gets nothing. A handler that takes its cancellation
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

/// Where a watched call stands, shared by its caller and its envelope: still queued, begun
/// by the actor, or given up by its caller while still queued.
const QUEUED: u8 = 0;
const BEGUN: u8 = 1;
const ABANDONED: u8 = 2;

/// A caller in this process that may cancel and still wait for the answer.
pub(crate) struct Watched<R> {
    reply: oneshot::Sender<Answer<R>>,
    cancel: CancellationToken,
    stage: Arc<AtomicU8>,
}

impl<R: Send + 'static> Sink<R> for Watched<R> {
    fn send(self, result: Answer<R>) {
        let _ = self.reply.send(result);
    }

    fn is_cancelled(&self) -> bool {
        self.reply.is_closed() || self.cancel.is_cancelled()
    }

    fn begin(&mut self) -> bool {
        !self.is_cancelled()
            && self
                .stage
                .compare_exchange(QUEUED, BEGUN, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    async fn cancelled(&mut self) {
        tokio::select! {
            () = self.reply.closed() => {}
            () = self.cancel.cancelled() => {}
        }
    }
}

impl<A: Actor> ActorRef<A> {
    /// [`ActorRef::call`] that `cancel` cancels while this call still waits for the answer:
    ///
    /// - a message still in the actor's mailbox (queued behind others) returns
    ///   [`ActorError::Cancelled`] at once, and the actor skips it when it gets there;
    /// - a handler still waiting is dropped where it waits ([`ActorError::Cancelled`]),
    ///   unless it took its [`crate::Context::cancellation`]: then it runs on, and this
    ///   returns what it answers;
    /// - cancelled after the answer came, or racing it, the answer is returned;
    /// - cancelled before sending, nothing is sent.
    ///
    /// The same in this process and across processes, where the cancel travels as a frame on
    /// the call's connection. Dropping the future cancels as [`ActorRef::call`] does.
    pub async fn call_cancellable<M: Send + 'static>(
        &self,
        message: M,
        cancel: &CancellationToken,
    ) -> Result<A::Reply, ActorError>
    where
        A: Handler<M>,
    {
        let answer = async {
            if cancel.is_cancelled() {
                return Err(ActorError::cancelled(self));
            }
            match self.reach()? {
                Reach::Local(cell) => {
                    let (reply, answer) = oneshot::channel::<Answer<A::Reply>>();
                    let stage = Arc::new(AtomicU8::new(QUEUED));
                    let sink = Watched { reply, cancel: cancel.clone(), stage: stage.clone() };
                    let queued = cell.queued_at();
                    let delivery = Box::new(Delivery { message, sink, deadline: None, queued });
                    tokio::select! {
                        biased;
                        // Waiting for room in a full mailbox: cancelled, never queued.
                        () = cancel.cancelled() => return Err(ActorError::cancelled(self)),
                        posted = cell.post(delivery) => posted?,
                    }
                    let mut answer = std::pin::pin!(answer);
                    let answered = tokio::select! {
                        biased;
                        // Both cancel-safe: the receiver is polled by reference.
                        answered = &mut answer => Some(answered),
                        () = cancel.cancelled() => None,
                    };
                    let answered = match answered {
                        Some(answered) => answered,
                        // Still queued behind other messages: given up at once, and the actor
                        // skips it when it gets there.
                        None if stage
                            .compare_exchange(
                                QUEUED,
                                ABANDONED,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok() =>
                        {
                            return Err(ActorError::cancelled(self));
                        }
                        // Begun: the handler answers the cancel (or is dropped where it waits).
                        None => answer.await,
                    };
                    match answered {
                        Ok(answer) => answer.map_err(|error| *error),
                        Err(_) => Err(ActorError::stopped(self)),
                    }
                }
                Reach::Remote(client, endpoint) => {
                    match self.call_remote(client, &endpoint, message, Waiting::Until(cancel)).await
                    {
                        Err(ActorError::Connection(PoolError::Cancelled { .. })) => {
                            Err(ActorError::cancelled(self))
                        }
                        answer => answer,
                    }
                }
            }
        }
        .await;
        answer.inspect_err(crate::metrics::call_failed)
    }
}
