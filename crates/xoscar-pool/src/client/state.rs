//! The state of one caller-side connection as plain data, changed only under its one lock
//! (`Conn` holds it): leases and reaping, request ids and the calls waiting for answers, the
//! queues to the writer, go-away and the end. No I/O and no clock of its own: time is passed
//! in, so every transition can be tested and model-checked without sockets.
//!
//! The invariants it keeps:
//! - a lease and a reap never both succeed: a reap needs zero leases and stops all leasing;
//! - request ids are handed out in the order requests are queued, and the writer takes them in
//!   that order, so "id ≤ last_sent" is exactly "may have been written";
//! - every registered call gets exactly one outcome: its response, `Retry` (never written, or
//!   past a go-away's last accepted id) or `Failed`; it waits in the call's slot until the
//!   caller takes it; a cancelled call gets none (its future is gone, its slot with it) and its
//!   request is skipped if it was not yet taken by the writer;
//! - every queued one-way message is told `Written` once flushed or `NotSent` if the
//!   connection ends (or refuses it) first;
//! - queued bytes stay below `max_queued_bytes` plus one frame.
//!
//! For a writer over a byte stream (TCP, Unix sockets), requests and one-way messages are
//! encoded as they are queued, under the lock, into one buffer the writer takes whole
//! (`super::encoded`): no copy of a frame is queued, moved or dropped per call. In-process,
//! frames are queued as values (a copy of each), as the channel moves them. The invariants
//! are the same either way.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use xoscar_transport::TransportError;
use xoscar_wire::{Envelope, Frame, FrameEncoder, WireError, pb};

use super::encoded::{Encoded, EncodedBatch};
use crate::id_map::IdMap;
use crate::{Message, PoolError};

/// What a waiting call is told.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The answer.
    Response(Message),
    /// The request was never seen by the server (never written, or past a go-away's last
    /// accepted id): send it again on a fresh connection.
    Retry,
    /// The call failed.
    Failed(PoolError),
}

/// A plain call's slot in the connection's state: the caller's waker until the outcome
/// arrives, then the outcome until the caller takes it (and the slot with it). A slot instead
/// of a `oneshot` per call: no allocation, and the lock it is kept under is taken anyway.
pub(crate) enum CallSlot {
    /// No outcome yet; the waker of the caller's last poll, if it polled.
    Waiting(Option<Waker>),
    /// The outcome, for the caller to take.
    Ready(Outcome),
}

/// Where a call's outcome is delivered.
pub(crate) enum Waiter {
    /// A plain call: its slot.
    Call(CallSlot),
    /// A response stream: its items, then its last outcome (flagged `true`). Unbounded, but
    /// never longer than the credit the stream granted: an item beyond the credit breaks the
    /// protocol and ends the connection. `credit`: how many items the server may still send.
    Stream { events: mpsc::UnboundedSender<(Outcome, bool)>, credit: u32 },
}

impl Waiter {
    /// A plain call's waiter, before its caller polls.
    pub(crate) fn call() -> Self {
        Waiter::Call(CallSlot::Waiting(None))
    }

    /// A plain call's waiter holding its caller's waker from the start.
    pub(crate) fn call_waking(waker: &Waker) -> Self {
        Waiter::Call(CallSlot::Waiting(Some(waker.clone())))
    }

    /// True while the request is wanted on the wire: a call not yet answered (nor given up
    /// by a go-away or the end), or a stream.
    fn is_waiting(&self) -> bool {
        !matches!(self, Waiter::Call(CallSlot::Ready(_)))
    }

    /// Hands over the last outcome: a call keeps it in its slot and gives back its caller's
    /// waker (to wake outside the lock); a stream is told at once.
    fn finish(&mut self, outcome: Outcome) -> Option<Waker> {
        match self {
            Waiter::Call(slot) => match std::mem::replace(slot, CallSlot::Ready(outcome)) {
                CallSlot::Waiting(waker) => waker,
                // Answered already: the first outcome stands.
                CallSlot::Ready(first) => {
                    *slot = CallSlot::Ready(first);
                    None
                }
            },
            Waiter::Stream { events, .. } => {
                let _ = events.send((outcome, true));
                None
            }
        }
    }
}

/// What a one-way message's sender is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Handed to the transport and flushed.
    Written,
    /// Never written: the connection went away or ended first. Safe to send elsewhere.
    NotSent,
}

/// Why a connection ended.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    /// Closed by the idle reaper.
    Reaped,
    /// The server went away and then closed.
    GoneAway,
    /// The pool (or its runtime) is gone.
    Dropped,
    /// The peer closed or the connection broke.
    Lost {
        /// What happened.
        reason: String,
        /// The transport's error, if one caused it.
        source: Option<Arc<TransportError>>,
    },
    /// Nothing arrived for this long while a lease was held, a ping included.
    Dead(Duration),
}

impl Ending {
    pub(crate) fn lost(reason: impl Into<String>) -> Self {
        Ending::Lost { reason: reason.into(), source: None }
    }

    /// The error a call that may have been written gets, or one that was not (`sent`).
    pub(crate) fn error(&self, address: &str, sent: bool) -> PoolError {
        let address = address.to_string();
        let lost = |reason: &str| PoolError::ConnectionLost {
            address: address.clone(),
            reason: reason.to_string(),
            sent,
            source: None,
        };
        match self {
            Ending::Dead(silent_for) => {
                PoolError::ConnectionTimedOut { address, silent_for: *silent_for, sent }
            }
            Ending::Lost { reason, source } => PoolError::ConnectionLost {
                address,
                reason: reason.clone(),
                sent,
                source: source.clone(),
            },
            Ending::Reaped => lost("closed by the idle reaper"),
            Ending::GoneAway => lost("the server went away before answering"),
            Ending::Dropped => lost("the pool or its runtime was dropped"),
        }
    }
}

/// A frame waiting for the writer as a value (in-process), in the order it was queued.
pub(crate) enum Queued {
    Request { id: u64, frame: Frame, bytes: usize },
    Notify { frame: Frame, bytes: usize, sent: oneshot::Sender<Sent> },
}

/// What [`State::answer`] did.
pub(crate) enum Answered {
    /// A plain call's outcome is in its slot; its caller's waker, if it polled.
    Call(Option<Waker>),
    /// A stream was told its last outcome and is gone.
    Stream,
}

/// What the writer takes next.
pub(crate) struct Outgoing {
    pub(crate) frame: Frame,
    /// Counted against the queue bound until written (0 for control frames).
    pub(crate) bytes: usize,
    /// A one-way message's sender, told once the frame is flushed.
    pub(crate) sent: Option<oneshot::Sender<Sent>>,
}

/// Why a frame was not queued.
pub(crate) enum Refused {
    /// Over the queue bound: wait for room, then try again.
    Full,
    /// The connection takes no more frames (going away or ended): nothing was sent.
    Closed,
    /// Over the frame limits, found as it was encoded (callers check the same limits first,
    /// so this does not happen): nothing was sent.
    TooLarge(WireError),
}

/// What [`State::go_away`] and [`State::end`] leave for the caller to deliver outside the
/// lock: the callers to wake (their outcomes are in their slots) and the one-way senders to
/// tell.
#[derive(Default)]
pub(crate) struct Verdicts {
    pub(crate) wakers: Vec<Waker>,
    pub(crate) notifies: Vec<oneshot::Sender<Sent>>,
}

impl Verdicts {
    /// Wakes every caller and tells every sender.
    pub(crate) fn deliver(self) {
        for waker in self.wakers {
            waker.wake();
        }
        for sender in self.notifies {
            let _ = sender.send(Sent::NotSent);
        }
    }

    fn finish(&mut self, waiter: &mut Waiter, outcome: Outcome) {
        self.wakers.extend(waiter.finish(outcome));
    }
}

/// The bytes a frame is counted as against the queue bound: its header and payloads (the
/// envelope's few other bytes are not worth a varint computation per call).
pub(crate) fn counted_bytes(frame: &Frame) -> usize {
    let header = match &frame.envelope {
        Envelope::Request(request) => request.header.len(),
        Envelope::Notify(notify) => notify.header.len(),
        _ => 0,
    };
    header + frame.payloads.iter().map(|p| p.len()).sum::<usize>()
}

pub(crate) struct State {
    leases: usize,
    idle_since: Instant,
    busy_since: Instant,
    /// False once closing: no lease may be taken any more.
    accepting: bool,
    next_id: u64,
    calls: IdMap<u64, Waiter>,
    /// Data frames as values, for an in-process writer; `encoded` takes them otherwise.
    queue: VecDeque<Queued>,
    /// Data frames encoded, for a writer over a byte stream (`None` in-process).
    encoded: Option<Encoded<oneshot::Sender<Sent>>>,
    /// Pings, pongs and cancels: written before anything in `queue`, and not counted against
    /// its bound (a cancel must not wait for room). Small by construction: one ping at a time,
    /// pongs coalesced into one, at most one cancel per call that was written.
    control: VecDeque<Frame>,
    queued_bytes: usize,
    max_queued_bytes: usize,
    /// The highest request id the writer has taken: ids up to it may have reached the peer.
    last_sent_id: u64,
    /// No new requests or one-way messages: the connection is going away or ended.
    write_closed: bool,
    /// Our sending side is shut (or the connection ended): nothing more is written.
    fin_sent: bool,
    go_away_seen: bool,
    ended: bool,
    close_request: Option<Ending>,
}

impl State {
    /// `encoder`: the writer's, if it writes bytes (then data frames are encoded as they are
    /// queued); `None` for a writer that takes frames as values.
    pub(crate) fn new(
        now: Instant,
        max_queued_bytes: usize,
        encoder: Option<FrameEncoder>,
    ) -> Self {
        State {
            leases: 0,
            idle_since: now,
            busy_since: now,
            accepting: true,
            next_id: 1,
            calls: IdMap::default(),
            queue: VecDeque::new(),
            encoded: encoder.map(Encoded::new),
            control: VecDeque::new(),
            queued_bytes: 0,
            max_queued_bytes,
            last_sent_id: 0,
            write_closed: false,
            fin_sent: false,
            go_away_seen: false,
            ended: false,
            close_request: None,
        }
    }

    // ---- leases and reaping ----

    /// Takes a lease unless closing. `Some(true)` when it is the first (the connection
    /// became busy). The clock is read only then: most leases are not the first.
    pub(crate) fn try_lease(&mut self, now: impl FnOnce() -> Instant) -> Option<bool> {
        if !self.accepting {
            return None;
        }
        self.leases += 1;
        if self.leases == 1 {
            self.busy_since = now();
        }
        Some(self.leases == 1)
    }

    /// Releases a lease. True when it was the last one and the driver waits for that (a
    /// close was asked for, or the server went away).
    pub(crate) fn release(&mut self, now: impl FnOnce() -> Instant) -> bool {
        self.leases -= 1;
        if self.leases > 0 {
            return false;
        }
        self.idle_since = now();
        self.close_request.is_some() || self.go_away_seen
    }

    /// Stops leasing if the connection has held no lease for `idle`. A lease and a reap never
    /// both succeed: both happen under the one lock, and a reap needs zero leases.
    pub(crate) fn try_reap(&mut self, now: Instant, idle: Duration) -> bool {
        if !self.accepting || self.leases > 0 || now.duration_since(self.idle_since) < idle {
            return false;
        }
        self.accepting = false;
        true
    }

    pub(crate) fn leases(&self) -> usize {
        self.leases
    }

    /// When the current busy period began, if a lease is held.
    pub(crate) fn busy_since(&self) -> Option<Instant> {
        (self.leases > 0).then_some(self.busy_since)
    }

    pub(crate) fn is_accepting(&self) -> bool {
        self.accepting
    }

    /// Asks for a close (the first reason sticks); no lease may be taken any more.
    pub(crate) fn request_close(&mut self, reason: Ending) {
        self.accepting = false;
        self.close_request.get_or_insert(reason);
    }

    /// A requested close that may happen now: a reaped connection closes at once; one whose
    /// pool is gone once its last lease (a call in flight, a message being written, a
    /// transfer) is released.
    pub(crate) fn close_ready(&self) -> Option<Ending> {
        match &self.close_request {
            Some(Ending::Dropped) if self.leases > 0 => None,
            other => other.clone(),
        }
    }

    // ---- queueing ----

    fn is_full(&self) -> bool {
        self.queued_bytes >= self.max_queued_bytes
    }

    /// True when nothing waits for the writer (a push then has to wake it).
    fn writer_idle(&self) -> bool {
        self.queue.is_empty()
            && self.control.is_empty()
            && self.encoded.as_ref().is_none_or(Encoded::is_empty)
    }

    /// A call whose request was not taken by the writer yet stopped waiting: an encoded
    /// request must now be looked at (and cut out) as it is taken. (A request queued as a
    /// value is looked at anyway.)
    fn unsent_call_gone(&mut self, id: u64) {
        if id > self.last_sent_id
            && let Some(encoded) = &mut self.encoded
        {
            encoded.request_gone();
        }
    }

    /// Registers a call and queues its request (encoded, or a copy) under the next id, in one
    /// step, so ids reach the writer in the order they were given. On success: the id, and
    /// whether the writer must be woken.
    pub(crate) fn queue_request(
        &mut self,
        frame: &Frame,
        waiter: Waiter,
    ) -> Result<(u64, bool), Refused> {
        if self.write_closed {
            return Err(Refused::Closed);
        }
        if self.is_full() {
            return Err(Refused::Full);
        }
        let id = self.next_id;
        let bytes = counted_bytes(frame);
        let wake = self.writer_idle();
        match &mut self.encoded {
            Some(encoded) => {
                encoded.push_request(frame, id, bytes).map_err(Refused::TooLarge)?;
            }
            None => {
                let mut frame = frame.clone();
                if let Envelope::Request(request) = &mut frame.envelope {
                    request.id = id;
                }
                self.queue.push_back(Queued::Request { id, frame, bytes });
            }
        }
        self.next_id += 1;
        self.calls.insert(id, waiter);
        self.queued_bytes += bytes;
        Ok((id, wake))
    }

    /// Queues a one-way message; `sent` is told when it is written or refused. On success:
    /// whether the writer must be woken.
    pub(crate) fn queue_notify(
        &mut self,
        frame: &Frame,
        sent: oneshot::Sender<Sent>,
    ) -> Result<bool, Refused> {
        if self.write_closed {
            return Err(Refused::Closed);
        }
        if self.is_full() {
            return Err(Refused::Full);
        }
        let bytes = counted_bytes(frame);
        let wake = self.writer_idle();
        match &mut self.encoded {
            Some(encoded) => encoded.push_notify(frame, bytes, sent).map_err(Refused::TooLarge)?,
            None => self.queue.push_back(Queued::Notify { frame: frame.clone(), bytes, sent }),
        }
        self.queued_bytes += bytes;
        Ok(wake)
    }

    /// Queues a control frame ahead of all data. A pong replaces one already waiting (any
    /// pong proves life). Returns whether the writer must be woken; dropped once our sending
    /// side is shut.
    pub(crate) fn queue_control(&mut self, frame: Frame) -> bool {
        if self.fin_sent {
            return false;
        }
        if let Envelope::Pong(pong) = &frame.envelope
            && let Some(waiting) =
                self.control.iter_mut().find(|f| matches!(f.envelope, Envelope::Pong(_)))
        {
            waiting.envelope = Envelope::Pong(*pong);
            return false;
        }
        let wake = self.writer_idle();
        self.control.push_back(frame);
        wake
    }

    /// Forgets a call whose future was dropped. If its request may have been written, queues a
    /// cancel for it (returns whether the writer must be woken); if not, the writer will skip
    /// it.
    pub(crate) fn cancel(&mut self, id: u64) -> bool {
        // An answered call needs no cancel; nor does one never written.
        match self.calls.remove(&id) {
            Some(waiter) if waiter.is_waiting() && id <= self.last_sent_id => {}
            Some(waiter) if waiter.is_waiting() => {
                self.unsent_call_gone(id);
                return false;
            }
            _ => return false,
        }
        self.queue_control(Frame::new(Envelope::Cancel(pb::Cancel { id, answer: false }), vec![]))
    }

    /// An explicit cancel of call `id`, whose caller still waits for the answer. `None` when
    /// its request was never written: the call is forgotten and the writer skips it. Otherwise
    /// whether the writer must be woken for the cancel queued (none when the answer is in).
    pub(crate) fn cancel_answering(&mut self, id: u64) -> Option<bool> {
        if !self.calls.get(&id).is_some_and(Waiter::is_waiting) {
            return Some(false);
        }
        if id > self.last_sent_id {
            self.calls.remove(&id);
            self.unsent_call_gone(id);
            return None;
        }
        let cancel = pb::Cancel { id, answer: true };
        Some(self.queue_control(Frame::new(Envelope::Cancel(cancel), vec![])))
    }

    /// The next frame to write: control frames first, then data in queue order. Requests whose
    /// call was cancelled are skipped (their bytes freed at once).
    pub(crate) fn next_outgoing(&mut self) -> Option<Outgoing> {
        if self.fin_sent {
            return None;
        }
        if let Some(frame) = self.control.pop_front() {
            return Some(Outgoing { frame, bytes: 0, sent: None });
        }
        while let Some(queued) = self.queue.pop_front() {
            match queued {
                Queued::Request { id, frame, bytes } => {
                    // Skipped: cancelled (its slot is gone), or answered already.
                    if !self.calls.get(&id).is_some_and(Waiter::is_waiting) {
                        self.queued_bytes -= bytes;
                        continue;
                    }
                    self.last_sent_id = id;
                    return Some(Outgoing { frame, bytes, sent: None });
                }
                Queued::Notify { frame, bytes, sent } => {
                    return Some(Outgoing { frame, bytes, sent: Some(sent) });
                }
            }
        }
        None
    }

    /// Takes encoded frames for the writer, `budget` bytes of them (at least one frame),
    /// cutting out requests whose calls stopped waiting (they are never written).
    pub(crate) fn take_encoded(
        &mut self,
        batch: &mut EncodedBatch<oneshot::Sender<Sent>>,
        budget: usize,
    ) {
        let Some(encoded) = &mut self.encoded else { return };
        if self.fin_sent || encoded.is_empty() {
            return;
        }
        let calls = &self.calls;
        let is_waiting = |id| calls.get(&id).is_some_and(Waiter::is_waiting);
        self.queued_bytes -= encoded.take(batch, budget, &mut self.last_sent_id, is_waiting);
    }

    /// The writer took requests from `first_unfed` on but never handed them to the transport
    /// (the connection ended mid-batch): they count as never sent.
    pub(crate) fn unfed_from(&mut self, first_unfed: u64) {
        self.last_sent_id = self.last_sent_id.min(first_unfed - 1);
    }

    /// Frees the queue bound of frames now written. True when that made room.
    pub(crate) fn written(&mut self, bytes: usize) -> bool {
        let was_full = self.is_full();
        self.queued_bytes -= bytes;
        was_full && !self.is_full()
    }

    /// True once the writer should shut our sending side: going away, everything queued before
    /// it written, and no response stream open.
    pub(crate) fn should_finish(&self) -> bool {
        self.write_closed && !self.fin_sent && self.writer_idle() && !self.has_open_stream()
    }

    /// Whether a response stream is still open: its credit and its cancel still have to be
    /// written, so our sending side stays open (a go-away lets the server finish streams).
    fn has_open_stream(&self) -> bool {
        self.calls.values().any(|waiter| matches!(waiter, Waiter::Stream { .. }))
    }

    /// Records that our sending side is shut.
    pub(crate) fn finished(&mut self) {
        self.fin_sent = true;
        self.control.clear();
    }

    pub(crate) fn has_room(&self) -> bool {
        !self.is_full()
    }

    /// True once no new request or one-way message is taken.
    pub(crate) fn is_write_closed(&self) -> bool {
        self.write_closed
    }

    // ---- answers, go-away, end ----

    /// Hands `outcome` to call `id`. A plain call keeps it in its slot and its caller's waker
    /// comes back, to wake outside the lock; a stream's waiter is told and let go. `None` for
    /// an id nobody waits for (e.g. a cancelled call whose response crossed the cancel).
    pub(crate) fn answer(&mut self, id: u64, outcome: Outcome) -> Option<Answered> {
        // Answered before it was written (only a peer that breaks the protocol does that), a
        // request need not be written any more.
        self.unsent_call_gone(id);
        let waiter = self.calls.get_mut(&id)?;
        if let Waiter::Call(_) = waiter {
            return Some(Answered::Call(waiter.finish(outcome)));
        }
        let mut stream = self.calls.remove(&id)?;
        stream.finish(outcome);
        Some(Answered::Stream)
    }

    /// The outcome of plain call `id` if it is in (the slot goes with it); else `waker` is
    /// kept to be woken when it comes. `Ready(None)` when the call is not waiting here (a
    /// bug of the caller's, or a slot taken twice).
    pub(crate) fn take_outcome(&mut self, id: u64, waker: &Waker) -> Poll<Option<Outcome>> {
        match self.calls.get_mut(&id) {
            Some(Waiter::Call(CallSlot::Waiting(kept))) => {
                if !kept.as_ref().is_some_and(|kept| kept.will_wake(waker)) {
                    *kept = Some(waker.clone());
                }
                Poll::Pending
            }
            Some(Waiter::Call(CallSlot::Ready(_))) => match self.calls.remove(&id) {
                Some(Waiter::Call(CallSlot::Ready(outcome))) => Poll::Ready(Some(outcome)),
                _ => Poll::Ready(None),
            },
            _ => Poll::Ready(None),
        }
    }

    /// An item of response stream `id`, handed to its stream (dropped if the stream was
    /// cancelled). `Err` when the server broke the protocol: an item for a call that opened no
    /// stream, or beyond the credit granted.
    pub(crate) fn stream_item(&mut self, id: u64, item: Message) -> Result<(), &'static str> {
        match self.calls.get_mut(&id) {
            None => Ok(()),
            Some(Waiter::Call(_)) => Err("a stream item for a call that opened no stream"),
            Some(Waiter::Stream { credit: 0, .. }) => {
                Err("a stream item beyond the credit granted")
            }
            Some(Waiter::Stream { events, credit }) => {
                *credit -= 1;
                let _ = events.send((Outcome::Response(item), false));
                Ok(())
            }
        }
    }

    /// Grants response stream `id` `items` more credit: queues a `Credit` frame, merged into
    /// one still waiting for the same stream. Returns whether the writer must be woken.
    pub(crate) fn grant(&mut self, id: u64, items: u32) -> bool {
        let Some(Waiter::Stream { credit, .. }) = self.calls.get_mut(&id) else { return false };
        *credit = credit.saturating_add(items);
        let waiting = self.control.iter_mut().find_map(|frame| match &mut frame.envelope {
            Envelope::Credit(waiting) if waiting.id == id => Some(waiting),
            _ => None,
        });
        if let Some(waiting) = waiting {
            waiting.items = waiting.items.saturating_add(items);
            return false;
        }
        self.queue_control(Frame::new(Envelope::Credit(pb::Credit { id, items }), vec![]))
    }

    /// The server is going away and served nothing above `last_accepted`: no new leases or
    /// frames; calls above it are retried at once elsewhere (so every call still waiting
    /// afterwards was accepted). With `u64::MAX` ("still accepting until you close") what is
    /// queued is still written, then our side is shut; otherwise the server reads no more, so
    /// queued one-way messages are handed back unsent.
    pub(crate) fn go_away(&mut self, last_accepted: u64) -> Verdicts {
        self.accepting = false;
        self.write_closed = true;
        self.go_away_seen = true;
        let mut verdicts = Verdicts::default();
        // Calls keep their slot (with `Retry` in it) until their callers take it; streams go.
        self.calls.retain(|&id, waiter| {
            if id <= last_accepted || !waiter.is_waiting() {
                return true;
            }
            verdicts.finish(waiter, Outcome::Retry);
            matches!(waiter, Waiter::Call(_))
        });
        if last_accepted != u64::MAX {
            self.drop_queue(&mut verdicts);
        }
        verdicts
    }

    pub(crate) fn go_away_seen(&self) -> bool {
        self.go_away_seen
    }

    /// Drops every frame the writer has not taken. (Frames it took stay counted until
    /// [`State::written`].)
    fn drop_queue(&mut self, verdicts: &mut Verdicts) {
        for queued in self.queue.drain(..) {
            match queued {
                Queued::Request { bytes, .. } => self.queued_bytes -= bytes,
                Queued::Notify { bytes, sent, .. } => {
                    self.queued_bytes -= bytes;
                    verdicts.notifies.push(sent);
                }
            }
        }
        if let Some(encoded) = &mut self.encoded {
            self.queued_bytes -= encoded.clear(&mut verdicts.notifies);
        }
    }

    /// Ends the connection: nothing more is queued or written; each waiting call learns its
    /// outcome (`Retry` if it was never written, else the error for `ending`), each
    /// queued one-way message `NotSent`. Only the first ending counts.
    pub(crate) fn end(&mut self, ending: Ending, address: &str) -> Verdicts {
        let mut verdicts = Verdicts::default();
        if self.ended {
            return verdicts;
        }
        self.accepting = false;
        self.write_closed = true;
        self.fin_sent = true;
        self.control.clear();
        let last_sent_id = self.last_sent_id;
        self.calls.retain(|&id, waiter| {
            if !waiter.is_waiting() {
                return true;
            }
            let outcome = if id > last_sent_id {
                Outcome::Retry
            } else {
                Outcome::Failed(ending.error(address, true))
            };
            verdicts.finish(waiter, outcome);
            matches!(waiter, Waiter::Call(_))
        });
        self.drop_queue(&mut verdicts);
        self.ended = true;
        verdicts
    }
}
