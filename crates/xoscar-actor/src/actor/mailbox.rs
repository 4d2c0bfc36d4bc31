//! An actor's mailbox: a bounded queue of many senders and one receiver, under one lock.
//!
//! tokio's bounded channel, which this replaces, made five atomic read-modify-writes per
//! message (its semaphore, the block's slot and ready bit, the receiver's waker) and about 190
//! instructions between sending and receiving. Here a message costs one lock taken and released
//! to send; the receiver takes a run of messages under one lock too, and a sender wakes it only
//! when it waits.
//!
//! - **Bounded.** At most `capacity` messages wait; a sender finding it full waits for room
//!   ([`Sender::send`]) or gets its message back ([`Sender::try_send`]). While senders wait for
//!   room, [`Sender::try_send`] refuses newcomers, so that room freed is left to those
//!   waiting (one is woken per message taken out); a newcomer that then waits joins them, and
//!   may find room in its first look.
//! - **Closing.** [`Receiver::close`] (or dropping the receiver) refuses new messages and wakes
//!   the senders waiting for room; what was queued before can still be received. When every
//!   sender is gone and the queue is empty, the receiver gets `None`.
//! - **Cooperative.** A receive spends the task's tokio budget, as tokio's channels do, so an
//!   actor whose mailbox never empties still yields its thread to other tasks.
//! - **Cancel-safe.** A receive dropped while it waits loses no message: one is only taken
//!   out of the queue by a receive that returns it. A send dropped while it waits drops its
//!   own message unsent and leaves nothing behind.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// A new mailbox holding at most `capacity` (at least 1) messages.
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            senders: 1,
            waiting: 0,
            receiver: None,
        }),
        closed: AtomicBool::new(false),
        room: Notify::new(),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

/// Why [`Sender::try_send`] gave its message back.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    /// No room (or senders wait for room before this one).
    Full(T),
    /// The receiver closed or is gone.
    Closed(T),
}

/// The receiver closed or is gone: the message [`Sender::send`] could not queue.
#[derive(Debug)]
pub(crate) struct SendError<T>(pub(crate) T);

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Set once the receiver closed or is gone. Set under the lock, so a reader holding it
    /// needs no ordering of its own; [`Sender::is_closed`] reads it without the lock.
    closed: AtomicBool,
    /// Senders waiting for room: one is woken for each message taken out while any wait.
    room: Notify,
}

impl<T> Shared<T> {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

struct State<T> {
    /// Bounded by `capacity`: every way in checks it under this lock.
    queue: VecDeque<T>,
    capacity: usize,
    /// Live [`Sender`]s: at none, an empty queue ends the receiver.
    senders: usize,
    /// Senders waiting for room; while there are any, `try_send` refuses newcomers.
    waiting: usize,
    /// The receiver, when it waits for a message.
    receiver: Option<Waker>,
}

/// The sending half; cloned, one per place that sends.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half: the actor's task.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `value` if there is room and no sender waits for it.
    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut state = self.shared.state.lock();
        if self.shared.is_closed() {
            return Err(TrySendError::Closed(value));
        }
        if state.waiting > 0 || state.queue.len() >= state.capacity {
            return Err(TrySendError::Full(value));
        }
        state.queue.push_back(value);
        let receiver = state.receiver.take();
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        Ok(())
    }

    /// Queues `value`, waiting for room while the mailbox is full. Cancel-safe: dropped while
    /// it waits, it drops `value` unsent.
    pub(crate) async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let value = match self.try_send(value) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(value)) => return Err(SendError(value)),
            Err(TrySendError::Full(value)) => value,
        };
        let mut waiter = Waiting::new(&self.shared);
        let mut room = std::pin::pin!(self.shared.room.notified());
        loop {
            // Registered before looking, so that room made after the look wakes this.
            room.as_mut().enable();
            {
                let mut state = self.shared.state.lock();
                if self.shared.is_closed() {
                    return Err(SendError(value));
                }
                if state.queue.len() < state.capacity {
                    state.queue.push_back(value);
                    waiter.leave(&mut state);
                    let receiver = state.receiver.take();
                    drop(state);
                    if let Some(receiver) = receiver {
                        receiver.wake();
                    }
                    return Ok(());
                }
            }
            room.as_mut().await;
            room.set(self.shared.room.notified());
        }
    }

    /// True once the receiver closed or is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.state.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.senders -= 1;
        let receiver = if state.senders == 0 { state.receiver.take() } else { None };
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }
}

/// A sender's place among those waiting for room, given up when it leaves (queued, refused
/// or dropped while it waits).
struct Waiting<'a, T> {
    shared: &'a Shared<T>,
    counted: bool,
}

impl<'a, T> Waiting<'a, T> {
    fn new(shared: &'a Shared<T>) -> Self {
        shared.state.lock().waiting += 1;
        Waiting { shared, counted: true }
    }

    /// Leaves under the lock already held.
    fn leave(&mut self, state: &mut State<T>) {
        if std::mem::take(&mut self.counted) {
            state.waiting -= 1;
        }
    }
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        if self.counted {
            self.shared.state.lock().waiting -= 1;
        }
    }
}

impl<T> Receiver<T> {
    /// The next message, and up to `limit - 1` more behind it appended to `run` (oldest
    /// first), all taken out under one lock; `None` once the mailbox is closed or every sender
    /// is gone, and nothing is left. Cancel-safe.
    pub(crate) async fn recv_run(&mut self, run: &mut VecDeque<T>, limit: usize) -> Option<T> {
        poll_fn(|cx| self.poll_recv_run(cx, run, limit)).await
    }

    /// The next message (see [`Self::recv_run`]). Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv_run(cx, &mut VecDeque::new(), 1)).await
    }

    fn poll_recv_run(
        &mut self,
        cx: &mut Context<'_>,
        run: &mut VecDeque<T>,
        limit: usize,
    ) -> Poll<Option<T>> {
        // A receive spends the task's budget, as tokio's channels do: an actor whose mailbox
        // never empties still yields its thread now and then.
        let budget = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let mut state = self.shared.state.lock();
        let Some(first) = state.queue.pop_front() else {
            if self.shared.is_closed() || state.senders == 0 {
                return Poll::Ready(None);
            }
            match &mut state.receiver {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                receiver => *receiver = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        };
        let more = state.queue.len().min(limit.saturating_sub(1));
        // Skipped when empty: an empty drain still costs about 100 instructions, a third of
        // receiving one message.
        if more > 0 {
            run.extend(state.queue.drain(..more));
        }
        let wake = state.waiting.min(1 + more);
        drop(state);
        budget.made_progress();
        for _ in 0..wake {
            self.shared.room.notify_one();
        }
        Poll::Ready(Some(first))
    }

    /// Refuses new messages and wakes the senders waiting for room (they get theirs back);
    /// what is queued can still be received.
    pub(crate) fn close(&mut self) {
        let state = self.shared.state.lock();
        self.shared.closed.store(true, Ordering::Release);
        drop(state);
        self.shared.room.notify_waiters();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        // Dropped outside the lock: a message's drop is user code, and may send.
        let left = std::mem::take(&mut self.shared.state.lock().queue);
        drop(left);
    }
}

#[cfg(test)]
mod tests;
