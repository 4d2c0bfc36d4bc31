//! A framed duplex channel and its independent halves.

use std::sync::Arc;

use xoscar_wire::{Frame, FrameEncoder, Limits, ReceivedFrame, WriteBuf, pb};

#[cfg(feature = "inproc")]
use crate::inproc;
#[cfg(any(feature = "tcp", feature = "uds"))]
use crate::stream::{StreamReader, StreamWriter};
use crate::{Activity, TransportError};

/// A connection that carries [`Frame`]s both ways, after a successful handshake.
///
/// Use it whole, or [`Channel::split`] it into a [`FrameReader`] and a [`FrameWriter`] that can
/// live in different tasks. Dropping the writer (or both halves) closes the sending direction:
/// the peer's reader sees a clean end of stream.
pub struct Channel {
    reader: FrameReader,
    writer: FrameWriter,
    peer_hello: Option<pb::Hello>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("peer", &self.reader.peer).finish_non_exhaustive()
    }
}

impl Channel {
    pub(crate) fn new(
        reader: FrameReader,
        writer: FrameWriter,
        peer_hello: Option<pb::Hello>,
    ) -> Self {
        Channel { reader, writer, peer_hello }
    }

    /// A channel over one end of an in-process connection (no handshake: both ends are the
    /// same build).
    #[cfg(feature = "inproc")]
    pub(crate) fn inproc((reader, writer): inproc::Halves, peer: Arc<str>) -> Self {
        let reader = FrameReader::new(ReaderKind::Inproc(reader), peer.clone());
        Channel::new(reader, FrameWriter::new(WriterKind::Inproc(writer), peer), None)
    }

    /// The peer: the address dialled, or what is known of an accepted peer (its TCP socket
    /// address; for Unix and in-process peers, the listener's address).
    pub fn peer(&self) -> &str {
        &self.reader.peer
    }

    /// The `Hello` the peer sent in its handshake (`None` in-process, where there is none).
    pub fn peer_hello(&self) -> Option<&pb::Hello> {
        self.peer_hello.as_ref()
    }

    /// Whether the peer is this process: an in-process channel, or a socket whose peer's
    /// `Hello` carries this process's mark. Taken on the peer's word (it cannot be checked),
    /// so it is for tuning only, never for trust: a server flushes answers in parts only to
    /// a peer in another process, which can start on them while the rest are made.
    pub fn peer_in_this_process(&self) -> bool {
        match &self.peer_hello {
            None => true,
            Some(hello) => crate::process::is_this_process(hello.process),
        }
    }

    /// Splits into halves that can be used from different tasks.
    pub fn split(self) -> (FrameReader, FrameWriter) {
        (self.reader, self.writer)
    }

    /// See [`FrameReader::recv`].
    pub async fn recv(&mut self) -> Result<Option<ReceivedFrame>, TransportError> {
        self.reader.recv().await
    }

    /// See [`FrameReader::try_recv`].
    pub fn try_recv(&mut self) -> Option<Result<ReceivedFrame, TransportError>> {
        self.reader.try_recv()
    }

    /// See [`FrameWriter::send`].
    pub async fn send(&mut self, frame: Frame) -> Result<(), TransportError> {
        self.writer.send(frame).await
    }

    /// See [`FrameWriter::try_feed`].
    pub fn try_feed(&mut self, frame: Frame) -> Result<Option<Frame>, TransportError> {
        self.writer.try_feed(frame)
    }

    /// See [`FrameWriter::feed`].
    pub async fn feed(&mut self, frame: Frame) -> Result<(), TransportError> {
        self.writer.feed(frame).await
    }

    /// See [`FrameWriter::flush`].
    pub async fn flush(&mut self) -> Result<(), TransportError> {
        self.writer.flush().await
    }

    /// See [`FrameWriter::encoder`].
    pub fn encoder(&self) -> Option<FrameEncoder> {
        self.writer.encoder()
    }
}

/// Frames encoded ahead were handed to an in-process writer, which takes frames as values.
#[cfg(feature = "inproc")]
fn encoded_in_process(peer: &str) -> TransportError {
    TransportError::Io {
        operation: "feed encoded frames to",
        address: peer.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "an in-process channel takes frames as values, not bytes",
        ),
    }
}

/// The receiving half of a [`Channel`].
pub struct FrameReader {
    kind: ReaderKind,
    peer: Arc<str>,
}

pub(crate) enum ReaderKind {
    #[cfg(any(feature = "tcp", feature = "uds"))]
    Stream(StreamReader),
    #[cfg(feature = "inproc")]
    Inproc(inproc::Receiver),
}

impl FrameReader {
    pub(crate) fn new(kind: ReaderKind, peer: Arc<str>) -> Self {
        FrameReader { kind, peer }
    }

    /// The peer (see [`Channel::peer`]).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The next frame if it already waits in this reader whole (or the error its bytes are),
    /// without waiting and without reading: what [`FrameReader::recv`] would return at once.
    /// `None` when `recv` would have to wait, or the reader ended (`recv` then says how).
    ///
    /// Cheaper than `recv` for a frame that is already here: a reader taking a batch of
    /// frames off one read takes them with this, and awaits `recv` only once it runs dry.
    #[inline]
    pub fn try_recv(&mut self) -> Option<Result<ReceivedFrame, TransportError>> {
        match &mut self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            ReaderKind::Stream(reader) => reader.try_recv(&self.peer),
            #[cfg(feature = "inproc")]
            ReaderKind::Inproc(receiver) => receiver.try_recv().map(|frame| Ok(frame.into())),
        }
    }

    /// When this half last received bytes: on every read, so a large frame arriving slowly
    /// keeps it moving. A handle that stays valid while the reader is used elsewhere.
    pub fn activity(&self) -> Activity {
        match &self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            ReaderKind::Stream(reader) => reader.activity().clone(),
            #[cfg(feature = "inproc")]
            ReaderKind::Inproc(receiver) => receiver.activity().clone(),
        }
    }

    /// The next frame; `Ok(None)` when the peer closed its sending direction at a frame
    /// boundary (a clean end of stream). A frame read off a socket is kept as the buffer it
    /// arrived in, its common kinds read in place ([`ReceivedFrame`]); one from an in-process
    /// channel is held whole, as it was sent.
    ///
    /// Errors: [`TransportError::ConnectionLost`] when the connection broke (reset, or closed
    /// inside a frame), [`TransportError::Protocol`] for bytes that are not valid frames or
    /// break the limits. After an error the reader yields nothing more.
    ///
    /// Cancel safe: dropping the future loses no bytes; the next call resumes.
    pub async fn recv(&mut self) -> Result<Option<ReceivedFrame>, TransportError> {
        match &mut self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            ReaderKind::Stream(reader) => reader.recv(&self.peer).await,
            #[cfg(feature = "inproc")]
            ReaderKind::Inproc(receiver) => Ok(receiver.recv().await.map(ReceivedFrame::from)),
        }
    }
}

/// The sending half of a [`Channel`].
pub struct FrameWriter {
    kind: WriterKind,
    peer: Arc<str>,
}

pub(crate) enum WriterKind {
    #[cfg(any(feature = "tcp", feature = "uds"))]
    Stream(StreamWriter),
    #[cfg(feature = "inproc")]
    Inproc(inproc::Sender),
}

impl FrameWriter {
    pub(crate) fn new(kind: WriterKind, peer: Arc<str>) -> Self {
        FrameWriter { kind, peer }
    }

    /// The peer (see [`Channel::peer`]).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The frame limits this half enforces: a frame over them is refused by
    /// [`FrameWriter::feed`]. A sender that checks first can fail one message alone instead.
    pub fn limits(&self) -> Limits {
        match &self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            WriterKind::Stream(writer) => writer.limits(),
            #[cfg(feature = "inproc")]
            WriterKind::Inproc(sender) => sender.limits(),
        }
    }

    /// When this half last made progress after waiting for the peer to take bytes (a full
    /// socket buffer, a full in-process queue); the channel's start if it never had to wait.
    /// Writes that do not wait leave it alone (no clock read on the fast path). While a write
    /// waits, it stands still: a writer stuck for long has a peer that takes nothing, while
    /// one whose waits keep ending has a slow but live peer.
    pub fn activity(&self) -> Activity {
        match &self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            WriterKind::Stream(writer) => writer.activity().clone(),
            #[cfg(feature = "inproc")]
            WriterKind::Inproc(sender) => sender.activity().clone(),
        }
    }

    /// Queues a frame without waiting for it to be written, unless more than the configured
    /// high-water mark ([`crate::TransportConfig::write_high_water`]) is queued; then writes.
    /// Call [`FrameWriter::flush`] to send what is queued. A frame over the limits is refused
    /// with [`TransportError::Protocol`] and nothing is queued. In-process, the frame is handed
    /// over at once, waiting while the peer's queue is full.
    pub async fn feed(&mut self, frame: Frame) -> Result<(), TransportError> {
        match &mut self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            WriterKind::Stream(writer) => writer.feed(frame, &self.peer).await,
            #[cfg(feature = "inproc")]
            WriterKind::Inproc(sender) => sender.send(frame, &self.peer).await,
        }
    }

    /// [`FrameWriter::feed`] when it would not wait: queues `frame` and returns `Ok(None)`,
    /// or gives it back (`Ok(Some(frame))`) when feeding it has to wait: the write queue is at
    /// its high-water mark (`feed` flushes it), or the in-process peer's queue is full. The
    /// same limits and errors as `feed`.
    ///
    /// A writer feeding a batch of frames saves an await per frame with this, and awaits
    /// `feed` only for a frame it gives back.
    pub fn try_feed(&mut self, frame: Frame) -> Result<Option<Frame>, TransportError> {
        match &mut self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            WriterKind::Stream(writer) => writer.try_feed(frame, &self.peer),
            #[cfg(feature = "inproc")]
            WriterKind::Inproc(sender) => sender.try_send(frame, &self.peer),
        }
    }

    /// The encoder this half encodes frames with, for a sender that encodes frames ahead of
    /// it (away from the writing task) and hands them over with
    /// [`FrameWriter::try_feed_encoded`]; `None` in-process, where frames are handed over as
    /// values and never encoded.
    pub fn encoder(&self) -> Option<FrameEncoder> {
        match &self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            WriterKind::Stream(writer) => Some(writer.encoder().clone()),
            #[cfg(feature = "inproc")]
            WriterKind::Inproc(_) => None,
        }
    }

    /// Queues whole frames encoded ahead with [`FrameWriter::encoder`], taking all of
    /// `frames` without copying, unless more than the high-water mark is queued: then nothing
    /// is taken and it returns `Ok(false)` ([`FrameWriter::feed_encoded`] flushes first).
    ///
    /// The bytes are written as they are: they must be whole frames from that encoder, or the
    /// peer reads garbage and ends the connection. In-process there is no encoder, and this
    /// fails with [`TransportError::Io`] (of kind [`std::io::ErrorKind::Unsupported`]).
    #[cfg_attr(not(any(feature = "tcp", feature = "uds")), allow(unused_variables))]
    pub fn try_feed_encoded(&mut self, frames: &mut WriteBuf) -> Result<bool, TransportError> {
        match &mut self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            WriterKind::Stream(writer) => Ok(writer.try_append(frames)),
            #[cfg(feature = "inproc")]
            WriterKind::Inproc(_) => Err(encoded_in_process(&self.peer)),
        }
    }

    /// [`FrameWriter::try_feed_encoded`], flushing first when the queue is at its high-water
    /// mark. Cancel safe: until it returns, `frames` keeps whatever it did not take, which is
    /// all of it or nothing.
    #[cfg_attr(not(any(feature = "tcp", feature = "uds")), allow(unused_variables))]
    pub async fn feed_encoded(&mut self, frames: &mut WriteBuf) -> Result<(), TransportError> {
        match &mut self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            WriterKind::Stream(writer) => writer.append(frames, &self.peer).await,
            #[cfg(feature = "inproc")]
            WriterKind::Inproc(_) => Err(encoded_in_process(&self.peer)),
        }
    }

    /// Writes everything queued. Cancel safe: what was not written stays queued.
    pub async fn flush(&mut self) -> Result<(), TransportError> {
        match &mut self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            WriterKind::Stream(writer) => writer.flush(&self.peer).await,
            #[cfg(feature = "inproc")]
            WriterKind::Inproc(_) => Ok(()),
        }
    }

    /// Writes what is queued without waiting: `Ok(true)` once all of it is written,
    /// `Ok(false)` when the peer cannot take more now (the rest stays queued). After `false`,
    /// somebody must [`FrameWriter::flush`] later: this registers no wake-up for when the
    /// socket can take more. For a sender that answers from a task of its own and would
    /// otherwise wake the writing task for one frame.
    pub fn try_flush(&mut self) -> Result<bool, TransportError> {
        let flush = std::pin::pin!(self.flush());
        match flush.poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            std::task::Poll::Ready(flushed) => flushed.map(|()| true),
            std::task::Poll::Pending => Ok(false),
        }
    }

    /// [`FrameWriter::feed`] then [`FrameWriter::flush`].
    pub async fn send(&mut self, frame: Frame) -> Result<(), TransportError> {
        // One dispatch instead of awaiting `feed` then `flush`: it showed on the in-process
        // round trip, where flush has nothing to do.
        match &mut self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            WriterKind::Stream(writer) => {
                writer.feed(frame, &self.peer).await?;
                writer.flush(&self.peer).await
            }
            #[cfg(feature = "inproc")]
            WriterKind::Inproc(sender) => sender.send(frame, &self.peer).await,
        }
    }

    /// Flushes, then closes the sending direction: the peer's reader sees a clean end of
    /// stream once it has read everything before it.
    pub async fn close(&mut self) -> Result<(), TransportError> {
        match &mut self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            WriterKind::Stream(writer) => writer.close(&self.peer).await,
            #[cfg(feature = "inproc")]
            WriterKind::Inproc(sender) => {
                sender.close();
                Ok(())
            }
        }
    }
}
