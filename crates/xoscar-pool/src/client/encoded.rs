//! The data queue of a connection whose writer writes bytes (TCP, Unix sockets): requests and
//! one-way messages encoded as they are queued, into one buffer the writer takes whole.
//!
//! Callers encode under the connection's lock, which they take anyway to register the call:
//! no copy of a frame is queued, moved or dropped per call, and the writer takes a batch with
//! one move of the buffer. A request whose call stopped waiting before it was taken (cancelled,
//! or answered early by a peer breaking the protocol) is cut out as it is taken, so it is never
//! written. The writer takes the buffer frame by frame only after such a call, or when more
//! than a batch (about 64 KiB) waits.

use std::collections::VecDeque;

use bytes::Buf;
use xoscar_wire::{Frame, FrameEncoder, WireError, WriteBuf};

/// Frames encoded for the writer, in the order they were queued. `N`: how a one-way message's
/// sender is told it was written.
pub(crate) struct Encoded<N> {
    encoder: FrameEncoder,
    bytes: WriteBuf,
    /// What each frame in `bytes` is, in order.
    frames: VecDeque<EncodedFrame<N>>,
    /// A request in `bytes` may have stopped waiting: each request taken is then looked at,
    /// and cut out if it did. Cleared once `bytes` is empty.
    may_hold_gone: bool,
}

/// One frame in [`Encoded::bytes`].
struct EncodedFrame<N> {
    /// Its length there.
    len: usize,
    /// What it counts against the queue bound.
    counted: usize,
    what: Kind<N>,
}

enum Kind<N> {
    Request(u64),
    Notify(N),
}

/// Encoded frames the writer took, written after the frames it took as values.
pub(crate) struct EncodedBatch<N> {
    pub(crate) bytes: WriteBuf,
    /// What they count against the queue bound.
    pub(crate) counted: usize,
    /// The first request among them: if they are never fed, it and every later one count as
    /// never sent.
    pub(crate) first_request: Option<u64>,
    /// Their one-way messages' senders, told once they are flushed.
    pub(crate) senders: Vec<N>,
}

impl<N> Default for EncodedBatch<N> {
    fn default() -> Self {
        EncodedBatch {
            bytes: WriteBuf::new(),
            counted: 0,
            first_request: None,
            senders: Vec::new(),
        }
    }
}

impl<N> EncodedBatch<N> {
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn note(&mut self, frame: EncodedFrame<N>, last_sent_id: &mut u64) {
        self.counted += frame.counted;
        match frame.what {
            Kind::Request(id) => {
                self.first_request.get_or_insert(id);
                *last_sent_id = id;
            }
            Kind::Notify(sent) => self.senders.push(sent),
        }
    }
}

impl<N> Encoded<N> {
    /// An empty queue whose frames `encoder` encodes (the writer's, for its limits).
    pub(crate) fn new(encoder: FrameEncoder) -> Self {
        Encoded { encoder, bytes: WriteBuf::new(), frames: VecDeque::new(), may_hold_gone: false }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Encodes request `frame` under the id `id` at the end. On error nothing is queued.
    pub(crate) fn push_request(
        &mut self,
        frame: &Frame,
        id: u64,
        counted: usize,
    ) -> Result<(), WireError> {
        self.push(frame, id, counted, Kind::Request(id))
    }

    /// Encodes one-way `frame` at the end; `sent` goes to the batch that takes it, or to
    /// [`Encoded::clear`]'s list if it is dropped. On error nothing is queued.
    pub(crate) fn push_notify(
        &mut self,
        frame: &Frame,
        counted: usize,
        sent: N,
    ) -> Result<(), WireError> {
        self.push(frame, 0, counted, Kind::Notify(sent))
    }

    fn push(
        &mut self,
        frame: &Frame,
        request_id: u64,
        counted: usize,
        what: Kind<N>,
    ) -> Result<(), WireError> {
        let before = self.bytes.remaining();
        self.encoder.encode_borrowed(frame, request_id, &mut self.bytes)?;
        let len = self.bytes.remaining() - before;
        self.frames.push_back(EncodedFrame { len, counted, what });
        Ok(())
    }

    /// A request not taken yet may have stopped waiting: the next takes look at each one.
    pub(crate) fn request_gone(&mut self) {
        self.may_hold_gone = true;
    }

    /// Moves frames to `batch`, `budget` bytes of them (at least one frame), noting in
    /// `last_sent_id` the last request taken: all at once in the common case; one by one,
    /// cutting out requests `is_waiting` says are not waiting, once one may have stopped.
    /// Returns the bytes counted by the frames cut out (freed from the queue bound).
    pub(crate) fn take(
        &mut self,
        batch: &mut EncodedBatch<N>,
        budget: usize,
        last_sent_id: &mut u64,
        is_waiting: impl Fn(u64) -> bool,
    ) -> usize {
        if !self.may_hold_gone && self.bytes.remaining() <= budget {
            for frame in self.frames.drain(..) {
                batch.note(frame, last_sent_id);
            }
            batch.bytes.append(&mut self.bytes);
            return 0;
        }
        // `kept`: bytes at the front of `self.bytes` taken and not yet moved to the batch.
        let (mut kept, mut taken, mut freed) = (0, 0, 0);
        while let Some(next) = self.frames.front() {
            if taken > 0 && taken + next.len > budget {
                break;
            }
            let frame = self.frames.pop_front().expect("just looked");
            if let Kind::Request(id) = frame.what
                && !is_waiting(id)
            {
                batch.bytes.append(&mut self.bytes.split_to(kept));
                kept = 0;
                self.bytes.advance(frame.len);
                freed += frame.counted;
                continue;
            }
            (kept, taken) = (kept + frame.len, taken + frame.len);
            batch.note(frame, last_sent_id);
        }
        batch.bytes.append(&mut self.bytes.split_to(kept));
        if self.frames.is_empty() {
            self.may_hold_gone = false;
        }
        freed
    }

    /// Drops every frame, handing the one-way senders to `notifies`. Returns the bytes they
    /// counted against the queue bound.
    pub(crate) fn clear(&mut self, notifies: &mut Vec<N>) -> usize {
        let mut freed = 0;
        for frame in self.frames.drain(..) {
            freed += frame.counted;
            if let Kind::Notify(sent) = frame.what {
                notifies.push(sent);
            }
        }
        let left = self.bytes.remaining();
        self.bytes.advance(left);
        self.may_hold_gone = false;
        freed
    }
}
