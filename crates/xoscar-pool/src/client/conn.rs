//! One caller-side connection as its users see it: its [`State`] under one lock, and the
//! wake-ups between callers and the connection's driver task (writer woken when a frame is
//! queued, callers woken when the queue has room, the liveness watch when the first lease is
//! taken, the driver when a close is asked for).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use xoscar_transport::Address;
use xoscar_wire::{Envelope, Frame, FrameEncoder};

use super::encoded::EncodedBatch;
use super::state::{Ending, Outcome, Outgoing, Refused, Sent, State, Verdicts, Waiter};
use crate::signal::Signal;
use crate::stats::Counters;
use crate::sync::{Mutex, MutexGuard};
use crate::{Message, PoolError};

/// The shared half of one connection; its driver task holds the socket.
pub(crate) struct Conn {
    pub(crate) endpoint: Address,
    pub(crate) label: Arc<str>,
    state: Mutex<State>,
    /// A frame was queued while the writer had nothing to do.
    pub(crate) wake_writer: Signal,
    /// The queue fell below its bound, or stopped taking frames: waiting callers look again.
    room: Notify,
    /// The first lease was taken: the liveness watch starts.
    pub(crate) became_busy: Signal,
    /// The server reads nothing more from us (a final go-away): the writer hands back what it
    /// took but has not fed yet, instead of writing it into the void. An atomic beside the
    /// state, so the writer looks at it per frame without the lock.
    refused: AtomicBool,
    /// A close was asked for, or became ready (the last lease of a dropped pool went).
    pub(crate) close_requested: Signal,
    pub(crate) counters: Arc<Counters>,
}

impl Conn {
    /// `encoder`: the writer's, if it writes bytes (see [`State::new`]).
    pub(crate) fn new(
        endpoint: Address,
        counters: Arc<Counters>,
        max_queued_bytes: usize,
        encoder: Option<FrameEncoder>,
    ) -> Self {
        Conn {
            label: endpoint.to_string().into(),
            endpoint,
            state: Mutex::new(State::new(Instant::now(), max_queued_bytes, encoder)),
            wake_writer: Signal::default(),
            room: Notify::new(),
            became_busy: Signal::default(),
            refused: AtomicBool::new(false),
            close_requested: Signal::default(),
            counters,
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Takes a lease, unless the connection is closing (then the caller dials afresh).
    pub(crate) fn try_lease(self: &Arc<Self>) -> Option<LeaseGuard> {
        self.clone().try_lease_owned()
    }

    /// [`Conn::try_lease`] with a reference of its own, which the lease keeps.
    pub(crate) fn try_lease_owned(self: Arc<Self>) -> Option<LeaseGuard> {
        let first = self.state.lock().try_lease(Instant::now)?;
        Some(self.leased(first))
    }

    /// The guard of a lease just taken under the lock; `first`: it made the connection busy
    /// (the liveness watch starts).
    fn leased(self: Arc<Self>, first: bool) -> LeaseGuard {
        if first {
            self.became_busy.notify();
        }
        self.counters.leased();
        LeaseGuard { conn: self, held: true }
    }

    /// [`Conn::try_lease_owned`], then [`Conn::try_queue_call_waking`] on that lease, under
    /// one lock (a plain call's first two steps; each lock round trip is two atomic
    /// read-modify-writes). `None` when the connection takes no lease. Otherwise the lease,
    /// and the call's id or why its request was not queued: the lease is kept either way (a
    /// full queue is waited on with it).
    pub(crate) fn try_lease_and_call(
        self: Arc<Self>,
        frame: &Frame,
        waker: &Waker,
    ) -> Option<(LeaseGuard, Result<u64, Refused>)> {
        let (first, queued) = {
            let mut state = self.state.lock();
            let first = state.try_lease(Instant::now)?;
            (first, state.queue_request(frame, Waiter::call_waking(waker)))
        };
        let queued = queued.map(|(id, wake)| {
            if wake {
                self.wake_writer.notify();
            }
            id
        });
        Some((self.leased(first), queued))
    }

    fn release(&self) {
        let close_ready = self.state.lock().release(Instant::now);
        self.after_release(close_ready);
    }

    /// What follows a lease's release outside the lock; `close_ready`: it was the last one
    /// and the driver waits for that.
    fn after_release(&self, close_ready: bool) {
        self.counters.released();
        if close_ready {
            self.close_requested.notify();
        }
    }

    /// Marks the connection closing if it has held no lease for `idle`.
    pub(crate) fn try_reap(&self, now: Instant, idle: Duration) -> bool {
        self.state.lock().try_reap(now, idle)
    }

    /// Asks the driver to close the connection for `reason`.
    pub(crate) fn request_close(&self, reason: Ending) {
        self.state.lock().request_close(reason);
        self.close_requested.notify();
    }

    pub(crate) fn is_accepting(&self) -> bool {
        self.state.lock().is_accepting()
    }

    /// Registers a call and queues a copy of its request now, unless the queue is over its
    /// bound (`Full`) or takes no more requests (`Closed`: nothing was sent). Its outcome is
    /// then polled with [`Conn::poll_outcome`].
    pub(crate) fn try_queue_call(&self, frame: &Frame) -> Result<u64, Refused> {
        self.try_queue(frame, Waiter::call())
    }

    /// [`Conn::try_queue_call`] with `waker` in the call's slot from the start, so that the
    /// caller need not poll the slot until it is woken.
    pub(crate) fn try_queue_call_waking(
        &self,
        frame: &Frame,
        waker: &Waker,
    ) -> Result<u64, Refused> {
        self.try_queue(frame, Waiter::call_waking(waker))
    }

    /// The outcome of call `id` once it is in; `Ready(None)` if the call is not waiting here
    /// (its slot was taken already). Cancel-safe: an outcome stays in the slot until a poll
    /// returns it.
    pub(crate) fn poll_outcome(&self, id: u64, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        self.state.lock().take_outcome(id, cx.waker())
    }

    /// Registers `waiter` and queues a copy of its request now (see `try_queue_call`).
    pub(crate) fn try_queue(&self, frame: &Frame, waiter: Waiter) -> Result<u64, Refused> {
        let (id, wake) = self.state.lock().queue_request(frame, waiter)?;
        if wake {
            self.wake_writer.notify();
        }
        Ok(id)
    }

    /// Hands an item to response stream `id`; `Err` when it breaks the protocol.
    pub(crate) fn stream_item(&self, id: u64, item: Message) -> Result<(), &'static str> {
        self.state.lock().stream_item(id, item)
    }

    /// Grants response stream `id` more credit.
    pub(crate) fn grant(&self, id: u64, items: u32) {
        if self.state.lock().grant(id, items) {
            self.wake_writer.notify();
        }
    }

    /// [`Conn::try_queue_call`], waiting for room while the queue is over its bound. `None`
    /// when the connection takes no more requests (nothing was sent).
    pub(crate) async fn queue_call(&self, frame: &Frame) -> Result<Option<u64>, PoolError> {
        loop {
            match self.try_queue_call(frame) {
                Ok(queued) => return Ok(Some(queued)),
                Err(Refused::Closed) => return Ok(None),
                Err(Refused::Full) => self.wait_for_room().await,
                Err(Refused::TooLarge(error)) => {
                    return Err(PoolError::too_large(&self.label, error));
                }
            }
        }
    }

    /// Queues a copy of a one-way message, waiting while the queue is over its bound; the
    /// receiver is told when it is written. `None` when the connection takes no more frames.
    pub(crate) async fn queue_notify(
        &self,
        frame: &Frame,
    ) -> Result<Option<oneshot::Receiver<Sent>>, PoolError> {
        loop {
            let (sent, told) = oneshot::channel();
            let result = self.state.lock().queue_notify(frame, sent);
            match result {
                Ok(wake) => {
                    if wake {
                        self.wake_writer.notify();
                    }
                    return Ok(Some(told));
                }
                Err(Refused::Closed) => return Ok(None),
                Err(Refused::Full) => Box::pin(self.wait_for_room()).await,
                Err(Refused::TooLarge(error)) => {
                    return Err(PoolError::too_large(&self.label, error));
                }
            }
        }
    }

    /// Completes once the queue has room or takes no more frames. Registered before looking,
    /// so a wake-up between the look and the wait is not lost.
    pub(crate) async fn wait_for_room(&self) {
        let room = self.room.notified();
        tokio::pin!(room);
        room.as_mut().enable();
        let ready = {
            let state = self.state.lock();
            state.has_room() || state.is_write_closed()
        };
        if !ready {
            room.await;
        }
    }

    /// Queues a control frame (ping, pong, cancel) ahead of all data.
    pub(crate) fn queue_control(&self, frame: Frame) {
        if self.state.lock().queue_control(frame) {
            self.wake_writer.notify();
        }
    }

    /// Forgets a call whose future was dropped, sending a cancel if its request may have been
    /// written.
    pub(crate) fn cancel(&self, id: u64) {
        let wake = {
            let mut state = self.state.lock();
            // A cancelled stream may also have been the last one holding a closing side open.
            state.cancel(id) || state.should_finish()
        };
        if wake {
            self.wake_writer.notify();
        }
    }

    /// Cancels call `id` while its caller still waits for the answer. False when its request
    /// was never written: the call is forgotten, and the server never sees it.
    pub(crate) fn cancel_answering(&self, id: u64) -> bool {
        let cancelled = self.state.lock().cancel_answering(id);
        match cancelled {
            None => false,
            Some(wake) => {
                if wake {
                    self.wake_writer.notify();
                }
                true
            }
        }
    }

    /// Takes what the writer should write next, under one lock: every control frame, then
    /// queued frames up to about 64 KiB (at least one), so a ping waits behind at most that
    /// much or one large frame. Says what to do when nothing was taken.
    pub(crate) fn take_outgoing(&self, out: &mut Taken) -> Next {
        const BATCH_BYTES: usize = 64 * 1024;
        let mut state = self.state.lock();
        let had_room = state.has_room();
        let mut bytes = 0;
        while bytes < BATCH_BYTES
            && let Some(outgoing) = state.next_outgoing()
        {
            bytes += outgoing.bytes;
            out.frames.push_back(outgoing);
        }
        if bytes < BATCH_BYTES {
            state.take_encoded(&mut out.encoded, BATCH_BYTES - bytes);
        }
        let next = if !out.is_empty() {
            Next::Write
        } else if state.should_finish() {
            Next::Finish
        } else {
            Next::Wait
        };
        let made_room = !had_room && state.has_room();
        drop(state);
        if made_room {
            self.room.notify_waiters();
        }
        next
    }

    /// What the writer took but never fed (all of `taken`), the connection ending first:
    /// their requests count as never sent (so they are sent again elsewhere) and one-way
    /// senders are told `NotSent`.
    pub(crate) fn unfed(&self, taken: &mut Taken) {
        let mut first_request = None;
        let mut senders = Vec::new();
        for outgoing in taken.frames.drain(..) {
            if let Envelope::Request(request) = &outgoing.frame.envelope {
                first_request.get_or_insert(request.id);
            }
            senders.extend(outgoing.sent);
        }
        let encoded = std::mem::take(&mut taken.encoded);
        // Encoded frames come after the frames taken as values.
        first_request = first_request.or(encoded.first_request);
        senders.extend(encoded.senders);
        if let Some(id) = first_request {
            self.state.lock().unfed_from(id);
        }
        for sender in senders {
            let _ = sender.send(Sent::NotSent);
        }
    }

    /// Frames of `bytes` are flushed: frees their room and tells their senders.
    pub(crate) fn written(&self, bytes: usize, senders: &mut Vec<oneshot::Sender<Sent>>) {
        if bytes > 0 && self.state.lock().written(bytes) {
            self.room.notify_waiters();
        }
        for sender in senders.drain(..) {
            let _ = sender.send(Sent::Written);
        }
    }

    /// Records a go-away naming `last_accepted`.
    pub(crate) fn go_away(&self, last_accepted: u64) {
        if last_accepted != u64::MAX {
            self.refused.store(true, Relaxed);
        }
        let verdicts = self.state.lock().go_away(last_accepted);
        self.after_closing(verdicts);
    }

    /// True once the server reads nothing more from us (see `refused`).
    pub(crate) fn is_refused(&self) -> bool {
        self.refused.load(Relaxed)
    }

    /// Ends the connection: every waiting call and queued message learns its outcome.
    pub(crate) fn end(&self, ending: Ending) {
        let verdicts = self.state.lock().end(ending, &self.label);
        self.after_closing(verdicts);
    }

    fn after_closing(&self, verdicts: Verdicts) {
        verdicts.deliver();
        // Callers waiting for room must look again: the queue takes nothing more.
        self.room.notify_waiters();
        self.wake_writer.notify();
        self.close_requested.notify();
    }
}

/// What the writer took in one go, written in this order: frames as values (control frames,
/// then in-process data frames), then encoded data frames.
#[derive(Default)]
pub(crate) struct Taken {
    pub(crate) frames: VecDeque<Outgoing>,
    pub(crate) encoded: EncodedBatch<oneshot::Sender<Sent>>,
}

impl Taken {
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.encoded.is_empty()
    }
}

/// What the writer does once it has written what [`Conn::take_outgoing`] gave it.
pub(crate) enum Next {
    /// Frames were taken: write them.
    Write,
    /// Nothing more will come (going away, all written): shut our sending side.
    Finish,
    /// Nothing to write now: wait for a signal.
    Wait,
}

/// One lease on a connection; released on drop, so it can never leak or go negative.
pub(crate) struct LeaseGuard {
    pub(crate) conn: Arc<Conn>,
    /// False once released early, by [`LeaseGuard::poll_outcome_releasing`].
    held: bool,
}

impl LeaseGuard {
    /// [`Conn::poll_outcome`] that, when the outcome is in, releases this lease under the same
    /// lock (a call's last two steps); the guard then releases nothing when dropped.
    pub(crate) fn poll_outcome_releasing(
        &mut self,
        id: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Outcome>> {
        debug_assert!(self.held, "a lease released early is not polled again");
        let (outcome, close_ready) = {
            let mut state = self.conn.state.lock();
            let Poll::Ready(outcome) = state.take_outcome(id, cx.waker()) else {
                return Poll::Pending;
            };
            (outcome, state.release(Instant::now))
        };
        self.held = false;
        self.conn.after_release(close_ready);
        Poll::Ready(outcome)
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if self.held {
            self.conn.release();
        }
    }
}
