//! What one server connection's read side, write side and handler tasks share: the requests
//! running in their own tasks (each with its abort handle), the one-way messages waiting for
//! the handler, the flow-control load, and the queues to the writer.
//!
//! The load (requests in their own tasks plus one-way messages not yet handled) and the bytes
//! held are atomics beside the lock, so the read side checks its limits per frame without
//! locking; every change to them is also made under the lock where the map or queue behind it
//! changes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};

use bytes::{Buf, Bytes};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use xoscar_transport::{Activity, FrameWriter};
use xoscar_wire::{Envelope, Frame, FrameEncoder, Limits, WriteBuf, pb};

use crate::Message;
use crate::config::ResolvedServerConfig;
use crate::id_map::IdMap;
use crate::signal::Signal;

use super::writer::{Alone, SharedWriter};

struct Running {
    /// The handler's task; `None` for a request held by a [`super::Responder`].
    abort: Option<AbortHandle>,
    bytes: usize,
    /// The caller cancelled it but still waits for the answer (a `Responder`'s request only).
    cancelled: bool,
    /// Held by a `Responder` of a handler that queues requests ([`super::Handler::QUEUES`]),
    /// and not begun yet: a cancel the caller waits on is answered at once.
    queued: bool,
    /// A response stream's credit: how many more items may be sent (`None`: not a stream).
    credit: Option<u32>,
}

/// The most credit one response stream holds at once, whatever its caller grants: with the
/// stream count bounded by `max_in_flight`, the items a server queues for streams are bounded
/// even for a caller that grants without reading.
pub(crate) const MAX_STREAM_CREDIT: u32 = 1024;

/// What became of a stream item handed to [`ServerConn::send_item`].
pub(crate) enum ItemSent {
    Queued,
    /// No credit left: here is the item back, to send once credit comes.
    NoCredit(Frame),
    /// The request is not an open stream (never one, answered, or cancelled).
    NotOpen {
        is_stream: bool,
    },
}

pub(crate) struct State {
    in_flight: IdMap<u64, Running>,
    /// One-way messages queued for the handler or being handled (at most one at a time).
    pub(crate) notify_backlog: usize,
    pub(crate) notify_queue: VecDeque<(Message, usize)>,
    pub(crate) notify_worker: Option<AbortHandle>,
    /// Answers as values (with the bytes each holds), for an in-process writer; `encoded`
    /// takes them otherwise.
    replies: VecDeque<(Frame, usize)>,
    /// Answers encoded, for a writer over a byte stream (`None` in-process).
    encoded: Option<EncodedReplies>,
    /// Pongs, keep-alives and go-aways: written before answers.
    control: VecDeque<Frame>,
}

impl State {
    /// Nothing is queued for the writer: no control frame and no answer.
    fn writes_nothing(&self) -> bool {
        self.control.is_empty()
            && self.replies.is_empty()
            && self.encoded.as_ref().is_none_or(|encoded| encoded.frames.is_empty())
    }
}

/// Answers encoded as they are queued (under the lock their queueing takes anyway), for a
/// writer over a byte stream: it takes the bytes whole, with no frame moved, encoded or dropped
/// per answer on its side.
struct EncodedReplies {
    encoder: FrameEncoder,
    bytes: WriteBuf,
    /// Each answer's length in `bytes`, and the bytes it holds against the budget, in order.
    frames: VecDeque<(usize, usize)>,
}

/// One server connection's shared half.
pub(crate) struct ServerConn {
    pub(crate) peer: String,
    /// The peer's process id, for Unix-socket peers (`SO_PEERCRED`).
    pub(crate) peer_pid: Option<u32>,
    /// The caller is in another process (by its handshake's word, see
    /// `Channel::peer_in_this_process`): it can start on answers while more are made, so a
    /// long run of them goes out in parts.
    pub(crate) caller_elsewhere: bool,
    /// The frame limits of the connection's writer: an answer over them fails alone.
    pub(crate) limits: Limits,
    pub(crate) config: Arc<ResolvedServerConfig>,
    state: Mutex<State>,
    /// Requests running in their own tasks plus one-way messages not yet handled.
    load: AtomicUsize,
    /// Bytes held: requests being handled, one-way messages not yet handled, answers not yet
    /// written.
    buffered: AtomicUsize,
    /// Open response streams, counted in `load` too. They do not count against
    /// `max_in_flight` when the read side decides whether to read on: a stream needs the
    /// caller's credit frames read to make progress. Their own number is bounded instead
    /// (streams over `max_in_flight` are refused).
    streams: AtomicUsize,
    /// The read side waits for room: wake it when some is made.
    paused: AtomicBool,
    /// Reading is over: once everything accepted is answered, the writer closes.
    closing: AtomicBool,
    /// Room was made while the read side waited for it, or the load fell to zero (the idle
    /// watch waits for that).
    pub(crate) progress: Notify,
    /// Something was queued for the writer, or it may have to close now.
    pub(crate) wake_writer: Signal,
    /// A request held by a `Responder` was cancelled (or every request was): its holders
    /// check whether theirs is still in flight. Rare, so one notify for all is enough.
    pub(crate) responders_changed: Notify,
    /// When bytes last arrived.
    pub(crate) reads: Activity,
    /// The connection's writer, shared by its two sides and, for an answer given alone, the
    /// handler's task (see [`ServerConn::finish`]).
    pub(crate) writer: SharedWriter,
    /// The read side waits for the socket (no frame buffered, nothing it wrote unflushed).
    read_side_waiting: AtomicBool,
    /// An answer written from a handler's task was not all flushed: the write side flushes.
    unflushed: AtomicBool,
}

/// The bytes a message is counted as against the budget.
pub(crate) fn message_bytes(message: &Message) -> usize {
    message.header.len() + message.payloads.iter().map(|p| p.len()).sum::<usize>()
}

fn frame_bytes(frame: &Frame) -> usize {
    frame.payloads.iter().map(|p| p.len()).sum::<usize>() + frame.envelope.encoded_len()
}

impl ServerConn {
    pub(crate) fn new(
        peer: String,
        peer_pid: Option<u32>,
        caller_elsewhere: bool,
        limits: Limits,
        config: Arc<ResolvedServerConfig>,
        reads: Activity,
        writer: FrameWriter,
    ) -> Self {
        let encoder = writer.encoder();
        let encoded = encoder.map(|encoder| EncodedReplies {
            encoder,
            bytes: WriteBuf::new(),
            frames: VecDeque::new(),
        });
        ServerConn {
            peer,
            peer_pid,
            caller_elsewhere,
            limits,
            config,
            state: Mutex::new(State {
                in_flight: IdMap::default(),
                notify_backlog: 0,
                notify_queue: VecDeque::new(),
                notify_worker: None,
                replies: VecDeque::new(),
                encoded,
                control: VecDeque::new(),
            }),
            load: AtomicUsize::new(0),
            buffered: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            progress: Notify::new(),
            wake_writer: Signal::default(),
            responders_changed: Notify::new(),
            reads,
            writer: SharedWriter::new(writer),
            read_side_waiting: AtomicBool::new(false),
            unflushed: AtomicBool::new(false),
        }
    }

    /// Marks the read side as waiting for the socket, or not. Relaxed: the mark is a hint of
    /// whether an answer would go out alone; a stale one changes which task writes an answer,
    /// never whether it is written (the writer's slot decides who writes). Set twice per
    /// wait, so not the `xchg` a sequentially consistent store costs.
    pub(crate) fn set_read_side_waiting(&self, waiting: bool) {
        self.read_side_waiting.store(waiting, Relaxed);
    }

    /// Whether an answer written from a handler's task left bytes to flush; clears the mark.
    pub(crate) fn take_unflushed(&self) -> bool {
        self.unflushed.load(SeqCst) && self.unflushed.swap(false, SeqCst)
    }

    /// True while the connection is under its limits: the read side may read another frame.
    pub(crate) fn has_room(&self) -> bool {
        self.load.load(SeqCst) - self.streams.load(SeqCst).min(self.load.load(SeqCst))
            < self.config.max_in_flight
            && self.buffered.load(SeqCst) < self.config.max_buffered_bytes
    }

    /// Marks the read side as waiting for room (or not), so that releases wake it.
    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, SeqCst);
    }

    /// Reading is over (see [`ServerConn::start_closing`]).
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(SeqCst)
    }

    /// No request in flight and no one-way message waiting.
    pub(crate) fn is_quiet(&self) -> bool {
        self.load.load(SeqCst) == 0
    }

    /// Reading is over: the writer closes once everything accepted is answered.
    pub(crate) fn start_closing(&self) {
        self.closing.store(true, SeqCst);
        self.wake_writer.notify();
    }

    /// Registers a request whose handler moved to its own task (`abort`), or that a
    /// `Responder` will answer (`None`). Called with the lock held by the caller across the
    /// spawn, so the task cannot finish before it is registered.
    /// `queued`: a `Responder`'s request that waits in a queue until it is begun.
    pub(crate) fn register(
        &self,
        state: &mut State,
        id: u64,
        abort: Option<AbortHandle>,
        bytes: usize,
        queued: bool,
    ) {
        self.load.fetch_add(1, SeqCst);
        self.buffered.fetch_add(bytes, SeqCst);
        let running = Running { abort, bytes, cancelled: false, queued, credit: None };
        if let Some(earlier) = state.in_flight.insert(id, running) {
            // A caller that reuses the id of a request still in flight breaks the protocol;
            // the earlier request is cancelled (its answer could not be told apart anyway)
            // so that nothing leaks.
            tracing::warn!(peer = %self.peer, id, "request id reused while in flight; cancelling the earlier one");
            earlier.abort.as_ref().inspect(|task| task.abort());
            self.release_request(&earlier);
        }
    }

    /// Counts a one-way message of `bytes` that waits for the handler.
    pub(crate) fn add_notify(&self, state: &mut State, bytes: usize) {
        state.notify_backlog += 1;
        self.load.fetch_add(1, SeqCst);
        self.buffered.fetch_add(bytes, SeqCst);
    }

    /// A one-way message of `bytes` was handled.
    pub(crate) fn notify_done(&self, state: &mut State, bytes: usize) {
        state.notify_backlog -= 1;
        self.release(1, bytes);
    }

    /// A handler task finished: queues its answer, unless the request was cancelled. (An
    /// answer over the frame limits is refused by the writer's encoder, which then writes the
    /// `TOO_LARGE` answer saying so.)
    ///
    /// The only request in flight, answered with nothing queued before it while the read side
    /// waits for the socket, is written from here, the handler's task: nothing else would go
    /// out with it, and the connection's task is not woken for one frame. Any other answer
    /// is queued for the write side, which writes a run of them at once. (Not a stream's
    /// last answer: its items may be in the write side's hands, and must go out first.)
    pub(crate) fn finish(&self, id: u64, reply: Frame) -> bool {
        let mut state = self.state.lock();
        let Some(running) = state.in_flight.remove(&id) else { return false };
        let reply = if running.credit.is_none()
            && state.in_flight.is_empty()
            && state.writes_nothing()
            && self.read_side_waiting.load(Relaxed)
        {
            drop(state);
            let reply = match self.writer.write_alone(reply) {
                Alone::Fed { unflushed } => {
                    if unflushed {
                        self.unflushed.store(true, SeqCst);
                        self.wake_writer.notify();
                    }
                    // Its bytes are the writer's now, bounded by its queue's high-water mark,
                    // as the read side's inline answers are.
                    self.release_running(&running, running.bytes);
                    return true;
                }
                Alone::Busy(reply) => reply,
                Alone::TooLarge(error) => self.too_large(id, &error),
            };
            state = self.state.lock();
            reply
        } else {
            reply
        };
        let bytes = frame_bytes(&reply);
        // The request's bytes become the answer's: one step, before the writer can see the
        // answer (and release its bytes once written).
        match bytes.cmp(&running.bytes) {
            std::cmp::Ordering::Greater => self.buffered.fetch_add(bytes - running.bytes, SeqCst),
            std::cmp::Ordering::Less => self.buffered.fetch_sub(running.bytes - bytes, SeqCst),
            std::cmp::Ordering::Equal => 0,
        };
        // The write side takes everything queued before it waits again: only an answer queued
        // behind nothing must wake it (the first of a run of answers; the others would cost
        // the signal's atomic operations each for nothing).
        let behind_nothing = state.writes_nothing();
        self.push_reply(&mut state, id, reply, bytes);
        drop(state);
        if behind_nothing {
            self.wake_writer.notify();
        }
        self.release_running(&running, 0);
        true
    }

    /// The caller cancelled request `id`: aborts its task.
    pub(crate) fn cancel(&self, id: u64) {
        let running = self.state.lock().in_flight.remove(&id);
        if let Some(running) = running {
            self.stop(&running);
            self.release_request(&running);
        }
    }

    /// Request `id` (just registered) is a response stream with `credit` items of credit (at
    /// most [`MAX_STREAM_CREDIT`]). False when `max_in_flight` streams are open already: the
    /// stream is refused (the caller answered at once), not queued.
    pub(crate) fn open_stream(&self, id: u64, credit: u32) -> bool {
        let mut state = self.state.lock();
        let Some(running) = state.in_flight.get_mut(&id) else { return true };
        if self.streams.load(SeqCst) >= self.config.max_in_flight {
            return false;
        }
        self.streams.fetch_add(1, SeqCst);
        running.credit = Some(credit.min(MAX_STREAM_CREDIT));
        true
    }

    /// The caller granted response stream `id` more credit: wakes its producer.
    pub(crate) fn add_credit(&self, id: u64, items: u32) {
        let mut state = self.state.lock();
        if let Some(Running { credit: Some(credit), .. }) = state.in_flight.get_mut(&id) {
            *credit = credit.saturating_add(items).min(MAX_STREAM_CREDIT);
            drop(state);
            self.responders_changed.notify_waiters();
        }
    }

    /// Queues `item` (a `more` response) for stream `id` if it has credit left.
    pub(crate) fn send_item(&self, id: u64, item: Frame) -> ItemSent {
        let mut state = self.state.lock();
        let Some(running) = state.in_flight.get_mut(&id) else {
            return ItemSent::NotOpen { is_stream: true };
        };
        match &mut running.credit {
            None => ItemSent::NotOpen { is_stream: false },
            Some(_) if running.cancelled => ItemSent::NotOpen { is_stream: true },
            Some(0) => ItemSent::NoCredit(item),
            Some(credit) => {
                *credit -= 1;
                let bytes = frame_bytes(&item);
                self.buffered.fetch_add(bytes, SeqCst);
                self.push_reply(&mut state, id, item, bytes);
                drop(state);
                self.wake_writer.notify();
                ItemSent::Queued
            }
        }
    }

    /// Whether request `id` is an open response stream.
    pub(crate) fn is_stream(&self, id: u64) -> bool {
        self.state.lock().in_flight.get(&id).is_some_and(|running| running.credit.is_some())
    }

    /// The caller cancelled request `id` and still waits for its answer. A task is aborted and
    /// answered with status `CANCELLED`; a `Responder`'s holder is told and answers itself.
    pub(crate) fn cancel_answering(&self, id: u64) {
        let mut state = self.state.lock();
        let Some(running) = state.in_flight.get_mut(&id) else { return };
        match &running.abort {
            Some(task) => {
                task.abort();
                drop(state);
                // If the task finished first, its answer is already queued and this is a no-op.
                self.finish(id, cancelled(id));
            }
            // Still waiting in its holder's queue: nothing of it ran, so the server answers.
            // Marked cancelled under this lock first, so a `begin` between here and `finish`
            // already reads it as cancelled.
            None if running.queued => {
                running.cancelled = true;
                drop(state);
                self.finish(id, cancelled(id));
                self.responders_changed.notify_waiters();
            }
            None => {
                running.cancelled = true;
                drop(state);
                self.responders_changed.notify_waiters();
            }
        }
    }

    /// The holder of request `id`'s responder begins its work: a cancel is its own to answer
    /// from now on. False if the request is over or cancelled already (skip the work).
    pub(crate) fn begin(&self, id: u64) -> bool {
        let mut state = self.state.lock();
        match state.in_flight.get_mut(&id) {
            Some(running) => {
                running.queued = false;
                !running.cancelled
            }
            None => false,
        }
    }

    /// A request left the in-flight map: its slot in the load and its bytes are free.
    fn release_request(&self, running: &Running) {
        self.release_running(running, running.bytes);
    }

    /// A request left the in-flight map: its slot in the load and `bytes` of the budget are
    /// free (not its own when they became its answer's).
    fn release_running(&self, running: &Running, bytes: usize) {
        if running.credit.is_some() {
            self.streams.fetch_sub(1, SeqCst);
        }
        self.release(1, bytes);
    }

    /// Ends every open response stream: no more credit can come (the read side is over).
    /// Their producers see the cancel; nothing more is sent for them.
    pub(crate) fn cancel_streams(&self) {
        let ended: Vec<Running> = {
            let mut state = self.state.lock();
            let ids: Vec<u64> = state
                .in_flight
                .iter()
                .filter(|(_, running)| running.credit.is_some())
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| state.in_flight.remove(id)).collect()
        };
        if ended.is_empty() {
            return;
        }
        for running in &ended {
            self.release_request(running);
        }
        self.responders_changed.notify_waiters();
    }

    /// `count` of the load and `bytes` of the budget are done: wakes the read side if it waits
    /// for room or (load now zero) for quiet, and the writer if a close may be due.
    fn release(&self, count: usize, bytes: usize) {
        let quiet = count > 0 && self.load.fetch_sub(count, SeqCst) == count;
        if bytes > 0 {
            self.buffered.fetch_sub(bytes, SeqCst);
        }
        if quiet || self.paused.load(SeqCst) {
            // Every waiter: the idle watch and the wait for room both register one, and each
            // registers before looking, so nothing is missed without a stored permit.
            self.progress.notify_waiters();
        }
        if quiet && self.closing.load(SeqCst) {
            self.wake_writer.notify();
        }
    }

    /// Queues a frame for the writer; control frames go first. The control lane stays small
    /// while the writer is blocked: a pong replaces one already waiting (any pong proves life,
    /// so a flood of pings read meanwhile queues one), and go-aways are at most two.
    pub(crate) fn queue(&self, frame: Frame, control: bool) {
        let mut state = self.state.lock();
        if control {
            let waiting_pong = matches!(frame.envelope, Envelope::Pong(_))
                .then(|| state.control.iter_mut().find(|f| matches!(f.envelope, Envelope::Pong(_))))
                .flatten();
            match waiting_pong {
                Some(waiting) => *waiting = frame,
                None => state.control.push_back(frame),
            }
        } else {
            let bytes = frame_bytes(&frame);
            self.buffered.fetch_add(bytes, SeqCst);
            let id = match &frame.envelope {
                Envelope::Response(response) => response.id,
                _ => 0,
            };
            self.push_reply(&mut state, id, frame, bytes);
        }
        drop(state);
        self.wake_writer.notify();
    }

    /// Queues answer `reply` to request `id`, holding `bytes`: encoded at once for a writer
    /// over a byte stream, else as a value. One over the frame limits is refused by the
    /// encoder with nothing queued, and its `TOO_LARGE` answer goes in its place (checked
    /// there, not before, so that a fitting answer is measured once).
    fn push_reply(&self, state: &mut State, id: u64, reply: Frame, bytes: usize) {
        let State { encoded, replies, .. } = state;
        let Some(encoded) = encoded else {
            replies.push_back((reply, bytes));
            return;
        };
        let before = encoded.bytes.remaining();
        let Err(error) = encoded.encoder.encode(reply, &mut encoded.bytes) else {
            encoded.frames.push_back((encoded.bytes.remaining() - before, bytes));
            return;
        };
        let too_large = self.too_large(id, &error);
        match encoded.encoder.encode(too_large.clone(), &mut encoded.bytes) {
            Ok(()) => encoded.frames.push_back((encoded.bytes.remaining() - before, bytes)),
            // Limits so tight that even this breaks them: the write side feeds it as a value,
            // and its refusal ends the connection, as for any frame it cannot write.
            Err(_) => replies.push_back((too_large, bytes)),
        }
    }

    /// Takes what the writer should write next: every control frame, then answers (as values
    /// into `out`, or encoded into `encoded`, after them) up to about 64 KiB (at least one), so
    /// a pong never waits behind more than one large answer. Returns the bytes the answers
    /// hold, to release once written.
    pub(crate) fn take_batch(&self, out: &mut Vec<Frame>, encoded: &mut WriteBuf) -> usize {
        const BATCH_BYTES: usize = 64 * 1024;
        let mut state = self.state.lock();
        out.extend(state.control.drain(..));
        let mut bytes = 0;
        while bytes < BATCH_BYTES
            && let Some((frame, size)) = state.replies.pop_front()
        {
            out.push(frame);
            bytes += size;
        }
        let Some(queued) = &mut state.encoded else { return bytes };
        if queued.bytes.remaining() <= BATCH_BYTES {
            bytes += queued.frames.drain(..).map(|(_, held)| held).sum::<usize>();
            encoded.append(&mut queued.bytes);
            return bytes;
        }
        let mut taken = 0;
        while let Some(&(len, held)) = queued.frames.front() {
            if taken > 0 && taken + len > BATCH_BYTES {
                break;
            }
            queued.frames.pop_front();
            (taken, bytes) = (taken + len, bytes + held);
        }
        encoded.append(&mut queued.bytes.split_to(taken));
        bytes
    }

    /// Answers of `bytes` were written.
    pub(crate) fn written(&self, bytes: usize) {
        if bytes > 0 {
            self.release(0, bytes);
        }
    }

    /// True once the writer should close: reading is over and everything accepted is answered
    /// and written.
    pub(crate) fn should_close(&self) -> bool {
        if !self.closing.load(SeqCst) || !self.is_quiet() {
            return false;
        }
        let state = self.state.lock();
        state.replies.is_empty()
            && state.control.is_empty()
            && state.encoded.as_ref().is_none_or(|encoded| encoded.frames.is_empty())
    }

    /// Cancels every request in flight: its caller is gone, so nobody waits for the answers.
    /// One-way messages already read are still handed to the handler.
    pub(crate) fn cancel_requests(&self) {
        let cancelled = std::mem::take(&mut self.state.lock().in_flight);
        for running in cancelled.into_values() {
            self.stop(&running);
            self.release_request(&running);
        }
    }

    /// True once every one-way message read has been handled.
    pub(crate) fn notifies_done(&self) -> bool {
        self.state.lock().notify_backlog == 0
    }

    /// Stops every handler task of this connection (the connection task itself ended or was
    /// aborted, as by `Server::abort`).
    pub(crate) fn abort_all(&self) {
        let mut state = self.state.lock();
        for (_, running) in state.in_flight.drain() {
            running.abort.inspect(AbortHandle::abort);
        }
        self.streams.store(0, SeqCst);
        self.responders_changed.notify_waiters();
        if let Some(worker) = state.notify_worker.take() {
            worker.abort();
        }
        state.notify_queue.clear();
    }

    /// Stops a cancelled request: aborts its task, or tells a responder's holder.
    fn stop(&self, running: &Running) {
        match &running.abort {
            Some(task) => task.abort(),
            None => self.responders_changed.notify_waiters(),
        }
    }

    /// Whether request `id` was cancelled: answered already, cancelled by its caller (who may
    /// still wait for the answer), or dropped with its connection.
    pub(crate) fn is_cancelled(&self, id: u64) -> bool {
        self.state.lock().in_flight.get(&id).is_none_or(|running| running.cancelled)
    }

    /// The lock, for the notify chain in `dispatch`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }
}

impl ServerConn {
    /// `frame`, the answer to request `id`, if it fits the writer's limits; otherwise the
    /// `TOO_LARGE` answer naming the limit, so that it fails this request only (the writer
    /// would refuse it and end the connection for every request on it).
    pub(crate) fn within_limits(&self, id: u64, frame: Frame) -> Frame {
        match self.limits.admit(&frame) {
            Ok(()) => frame,
            Err(error) => self.too_large(id, &error),
        }
    }

    /// The `TOO_LARGE` answer to request `id`, whose answer broke the frame limits (`error`
    /// says which); logged.
    pub(crate) fn too_large(&self, id: u64, error: &xoscar_wire::WireError) -> Frame {
        tracing::warn!(peer = %self.peer, id, %error, "an answer breaks the frame limits; failing its request alone");
        too_large(id, error)
    }
}

/// The answer to a request whose answer broke the frame limits (`error` says which).
pub(crate) fn too_large(id: u64, error: &xoscar_wire::WireError) -> Frame {
    let status = pb::response::Status::TooLarge as i32;
    let header = Bytes::from(error.to_string());
    Frame::new(Envelope::Response(pb::Response { id, header, status, more: false }), vec![])
}

/// The answer to a request whose handler stopped at a cancel its caller still waits on.
pub(crate) fn cancelled(id: u64) -> Frame {
    ended(id, pb::response::Status::Cancelled)
}

/// The answer to a stream request refused because too many streams are open.
pub(crate) fn refused(id: u64) -> Frame {
    ended(id, pb::response::Status::Refused)
}

fn ended(id: u64, status: pb::response::Status) -> Frame {
    let response = pb::Response { id, header: Bytes::new(), status: status as i32, more: false };
    Frame::new(Envelope::Response(response), vec![])
}
