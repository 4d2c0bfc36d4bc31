//! What one server connection's read side, write side and handler tasks share: the requests
//! in flight (each with the abort handle of its task), the one-way messages waiting for the
//! handler, the flow-control budget, the queues to the writer, and the connection's phase.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use xoscar_transport::Activity;
use xoscar_wire::Frame;

use crate::Message;
use crate::config::ResolvedServerConfig;
use crate::id_map::IdMap;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading and serving.
    Serving,
    /// A go-away was sent: still reading and serving everything that arrives, until the
    /// caller closes its sending side.
    Draining,
    /// Reading is over: answer what was accepted, then close.
    Closing,
}

struct Running {
    abort: AbortHandle,
    bytes: usize,
}

pub(crate) struct State {
    in_flight: IdMap<u64, Running>,
    /// One-way messages queued for the handler or being handled (at most one at a time).
    pub(crate) notify_backlog: usize,
    pub(crate) notify_queue: VecDeque<(Message, usize)>,
    pub(crate) notify_worker: Option<AbortHandle>,
    /// Bytes held: requests being handled, one-way messages not yet handled, answers not yet
    /// written.
    buffered: usize,
    replies: VecDeque<(Frame, usize)>,
    /// Pongs, keep-alives and go-aways: written before answers.
    control: VecDeque<Frame>,
    pub(crate) last_accepted: u64,
    pub(crate) phase: Phase,
    /// The read side is waiting for room: wake it when some is made.
    paused: bool,
}

impl State {
    /// Counts `bytes` more against the budget.
    pub(crate) fn add_buffered(&mut self, bytes: usize) {
        self.buffered += bytes;
    }

    /// A one-way message of `bytes` was handled.
    pub(crate) fn notify_done(&mut self, bytes: usize) {
        self.notify_backlog -= 1;
        self.buffered -= bytes;
    }
}

/// One server connection's shared half.
pub(crate) struct ServerConn {
    pub(crate) peer: String,
    pub(crate) config: Arc<ResolvedServerConfig>,
    pub(crate) state: Mutex<State>,
    /// Room was made while the read side waited for it, or the connection became quiet (no
    /// request in flight, no one-way message waiting).
    pub(crate) progress: Notify,
    /// Something was queued for the writer, or it may have to close now.
    pub(crate) wake_writer: Notify,
    /// When bytes last arrived.
    pub(crate) reads: Activity,
}

/// The bytes a message is counted as against the budget.
pub(crate) fn message_bytes(message: &Message) -> usize {
    message.header.len() + message.payloads.iter().map(|p| p.len()).sum::<usize>()
}

fn frame_bytes(frame: &Frame) -> usize {
    frame.payloads.iter().map(|p| p.len()).sum::<usize>() + frame.envelope.encoded_len()
}

impl ServerConn {
    pub(crate) fn new(peer: String, config: Arc<ResolvedServerConfig>, reads: Activity) -> Self {
        ServerConn {
            peer,
            config,
            state: Mutex::new(State {
                in_flight: IdMap::default(),
                notify_backlog: 0,
                notify_queue: VecDeque::new(),
                notify_worker: None,
                buffered: 0,
                replies: VecDeque::new(),
                control: VecDeque::new(),
                last_accepted: 0,
                phase: Phase::Serving,
                paused: false,
            }),
            progress: Notify::new(),
            wake_writer: Notify::new(),
            reads,
        }
    }

    /// The phase, while the connection is under its limits (the read side may read another
    /// frame). `None` at a limit; then the read side counts as paused, so the next release
    /// wakes it.
    pub(crate) fn room(&self) -> Option<Phase> {
        let mut state = self.state.lock();
        let room = state.in_flight.len() + state.notify_backlog < self.config.max_in_flight
            && state.buffered < self.config.max_buffered_bytes;
        state.paused = !room;
        room.then_some(state.phase)
    }

    /// No request in flight and no one-way message waiting.
    pub(crate) fn is_quiet(&self) -> bool {
        let state = self.state.lock();
        state.in_flight.is_empty() && state.notify_backlog == 0
    }

    pub(crate) fn phase(&self) -> Phase {
        self.state.lock().phase
    }

    /// Moves to `phase`; the writer looks again (it may have to close now).
    pub(crate) fn set_phase(&self, phase: Phase) {
        self.state.lock().phase = phase;
        self.wake_writer.notify_one();
    }

    /// Records a request the read side accepted.
    pub(crate) fn accept(&self, id: u64) {
        let mut state = self.state.lock();
        state.last_accepted = state.last_accepted.max(id);
    }

    /// Registers a request whose handler moved to its own task. Called with the lock held by
    /// the caller across the spawn, so the task cannot finish before it is registered.
    pub(crate) fn register(state: &mut State, id: u64, abort: AbortHandle, bytes: usize) {
        state.in_flight.insert(id, Running { abort, bytes });
        state.buffered += bytes;
    }

    /// A handler task finished: queues its answer, unless the request was cancelled.
    pub(crate) fn finish(&self, id: u64, reply: Frame) -> bool {
        let mut state = self.state.lock();
        let Some(running) = state.in_flight.remove(&id) else { return false };
        state.buffered -= running.bytes;
        let bytes = frame_bytes(&reply);
        state.buffered += bytes;
        state.replies.push_back((reply, bytes));
        self.after_release(state, true);
        true
    }

    /// The caller cancelled request `id`: aborts its task.
    pub(crate) fn cancel(&self, id: u64) {
        let mut state = self.state.lock();
        let Some(running) = state.in_flight.remove(&id) else { return };
        running.abort.abort();
        state.buffered -= running.bytes;
        self.after_release(state, false);
    }

    /// Wakes whoever waits for what a release may have changed: the writer (an answer was
    /// queued, or a close may be due now), the read side (room, or quiet for its idle watch).
    pub(crate) fn after_release(&self, state: parking_lot::MutexGuard<'_, State>, queued: bool) {
        let quiet = state.in_flight.is_empty() && state.notify_backlog == 0;
        let wake_reader = state.paused || quiet;
        drop(state);
        if queued || quiet {
            self.wake_writer.notify_one();
        }
        if wake_reader {
            self.progress.notify_one();
        }
    }

    /// Queues a frame for the writer; control frames go first.
    pub(crate) fn queue(&self, frame: Frame, control: bool) {
        let mut state = self.state.lock();
        if control {
            state.control.push_back(frame);
        } else {
            let bytes = frame_bytes(&frame);
            state.buffered += bytes;
            state.replies.push_back((frame, bytes));
        }
        drop(state);
        self.wake_writer.notify_one();
    }

    /// Takes what the writer should write next: every control frame, then answers up to about
    /// 64 KiB (at least one), so a pong never waits behind more than one large answer. Returns
    /// the answers' byte count, to release once written.
    pub(crate) fn take_batch(&self, out: &mut Vec<Frame>) -> usize {
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
        bytes
    }

    /// Answers of `bytes` were written.
    pub(crate) fn written(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut state = self.state.lock();
        state.buffered -= bytes;
        let wake_reader = state.paused;
        drop(state);
        if wake_reader {
            self.progress.notify_one();
        }
    }

    /// True once the writer should close: reading is over and everything accepted is answered
    /// and written.
    pub(crate) fn should_close(&self) -> bool {
        let state = self.state.lock();
        state.phase == Phase::Closing
            && state.in_flight.is_empty()
            && state.notify_backlog == 0
            && state.replies.is_empty()
            && state.control.is_empty()
    }

    /// Cancels every request in flight: its caller is gone, so nobody waits for the answers.
    /// One-way messages already read are still handed to the handler.
    pub(crate) fn cancel_requests(&self) {
        let mut state = self.state.lock();
        let cancelled = std::mem::take(&mut state.in_flight);
        for running in cancelled.into_values() {
            running.abort.abort();
            state.buffered -= running.bytes;
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
            running.abort.abort();
        }
        if let Some(worker) = state.notify_worker.take() {
            worker.abort();
        }
        state.notify_queue.clear();
    }
}
