//! [`ActorRef::call_cancellable`]: a call its caller may cancel while still waiting for the
//! answer. How a handler sees the cancel is in the cancel module.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::pipeline::{Reply, Wait};
use crate::actor::cell::Cell;
use crate::actor::envelope::{Answer, Delivery, Sink};
use crate::{Actor, ActorError, ActorRef, Handler};

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
        self.request::<M, Reply>(message, Wait::Until(cancel)).await
    }
}

/// A cancellable call to an actor of this process: its cell shares the call's stage with the
/// caller, so a cancel of a call still queued answers at once and the actor skips it.
pub(crate) async fn call<A, M>(
    me: &ActorRef<A>,
    cell: &Cell<A>,
    message: M,
    cancel: &CancellationToken,
) -> Result<A::Reply, ActorError>
where
    A: Handler<M>,
    M: Send + 'static,
{
    let (reply, answer) = oneshot::channel::<Answer<A::Reply>>();
    let stage = Arc::new(AtomicU8::new(QUEUED));
    let sink = Watched { reply, cancel: cancel.clone(), stage: stage.clone() };
    let queued = cell.queued_at();
    let delivery = Box::new(Delivery { message, sink, deadline: None, queued });
    tokio::select! {
        biased;
        // Waiting for room in a full mailbox: cancelled, never queued.
        () = cancel.cancelled() => return Err(ActorError::cancelled(me)),
        posted = cell.post(delivery) => posted.map_err(|e| *e)?,
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
        // Still queued behind other messages: given up at once, and the actor skips it when
        // it gets there.
        None if stage
            .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok() =>
        {
            return Err(ActorError::cancelled(me));
        }
        // Begun: the handler answers the cancel (or is dropped where it waits).
        None => answer.await,
    };
    match answered {
        Ok(answer) => answer.map_err(|error| *error),
        Err(_) => Err(ActorError::stopped(me)),
    }
}
