//! Framing over byte streams (TCP and Unix sockets): the handshake, a read loop over our
//! sans-I/O decoder, and vectored writes of a [`WriteBuf`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xoscar_wire::{Frame, FrameDecoder, FrameEncoder, Handshake, Limits, WireError, WriteBuf, pb};

use crate::{Activity, TransportConfig, TransportError};

/// The read half of a socket, type-erased so TCP and Unix sockets share one code path.
pub(crate) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a socket, type-erased likewise.
pub(crate) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// What an xoscar-rs peer sends in its `Hello`.
pub(crate) fn our_hello() -> pb::Hello {
    pb::Hello {
        auth_proof: Default::default(),
        agent: concat!("xoscar-rs/", env!("CARGO_PKG_VERSION")).into(),
    }
}

/// Sends our handshake, then reads and checks the peer's. Bytes that arrive after the peer's
/// handshake (the start of its first frames) stay in the reader's buffer.
pub(crate) async fn handshake(
    reader: &mut StreamReader,
    write: &mut BoxWrite,
    peer: &str,
) -> Result<Handshake, TransportError> {
    let mut ours = BytesMut::new();
    Handshake::new(our_hello()).encode(&mut ours);
    write.write_all(&ours).await.map_err(|e| TransportError::from_channel_io(peer, e))?;
    write.flush().await.map_err(|e| TransportError::from_channel_io(peer, e))?;
    loop {
        match Handshake::decode(&mut reader.buffer, reader.decoder.limits()) {
            Ok(Some(theirs)) => return Ok(theirs),
            Ok(None) => {}
            Err(source) => {
                return Err(TransportError::Handshake { peer: peer.to_string(), source });
            }
        }
        if reader.fill(peer).await? == 0 {
            return Err(TransportError::ConnectionLost {
                peer: peer.to_string(),
                reason: format!("closed during the handshake after {} bytes", reader.buffer.len()),
            });
        }
    }
}

/// Reads frames from a byte stream: a read buffer and our sans-I/O decoder.
///
/// Not tokio-util's `FramedRead`: it cannot be handed bytes that arrived with the handshake
/// (it decodes only after its own next read), and the loop it would replace is a few lines.
pub(crate) struct StreamReader {
    io: BoxRead,
    buffer: BytesMut,
    decoder: FrameDecoder,
    finished: bool,
    activity: Activity,
}

/// Spare room below which the buffer grows before a read.
const MIN_READ_ROOM: usize = 4 * 1024;
/// How much it grows by (the decoder reserves more itself for large frames).
const READ_CHUNK: usize = 16 * 1024;

impl StreamReader {
    pub(crate) fn new(io: BoxRead, limits: Limits) -> Self {
        StreamReader {
            io,
            buffer: BytesMut::with_capacity(READ_CHUNK),
            decoder: FrameDecoder::new(limits),
            finished: false,
            activity: Activity::new(),
        }
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Reads once into the buffer; 0 means end of stream.
    async fn fill(&mut self, peer: &str) -> Result<usize, TransportError> {
        if self.buffer.capacity() - self.buffer.len() < MIN_READ_ROOM {
            self.buffer.reserve(READ_CHUNK);
        }
        let read = self
            .io
            .read_buf(&mut self.buffer)
            .await
            .map_err(|e| TransportError::from_channel_io(peer, e))?;
        if read > 0 {
            self.activity.touch();
        }
        Ok(read)
    }

    pub(crate) fn has_buffered(&mut self) -> bool {
        !self.finished && self.decoder.frame_ready(&self.buffer)
    }

    pub(crate) async fn recv(&mut self, peer: &str) -> Result<Option<Frame>, TransportError> {
        if self.finished {
            return Ok(None);
        }
        let result = self.next_frame(peer).await;
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result
    }

    async fn next_frame(&mut self, peer: &str) -> Result<Option<Frame>, TransportError> {
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.buffer)
                .map_err(|source| TransportError::Protocol { peer: peer.to_string(), source })?
            {
                return Ok(Some(frame));
            }
            if self.fill(peer).await? == 0 {
                return match self.decoder.decode_eof(&mut self.buffer) {
                    Ok(frame) => Ok(frame),
                    Err(WireError::Truncated { buffered }) => Err(TransportError::ConnectionLost {
                        peer: peer.to_string(),
                        reason: format!("closed inside a frame, {buffered} bytes of it received"),
                    }),
                    Err(source) => Err(TransportError::Protocol { peer: peer.to_string(), source }),
                };
            }
        }
    }
}

/// Writes once from the queue: a plain write when it is one contiguous chunk (cheaper in the
/// kernel than a vectored write of one slice), else a vectored write of many chunks.
fn poll_write_queue(
    io: &mut BoxWrite,
    cx: &mut Context<'_>,
    queue: &mut WriteBuf,
) -> Poll<io::Result<usize>> {
    if queue.is_contiguous() {
        let written = ready!(Pin::new(io).poll_write(cx, queue.chunk()))?;
        queue.advance(written);
        return Poll::Ready(Ok(written));
    }
    tokio_util::io::poll_write_buf(Pin::new(io), cx, queue)
}

/// Writes frames to a byte stream: heads encoded into a [`WriteBuf`], payloads queued by
/// reference, everything sent with vectored writes.
pub(crate) struct StreamWriter {
    io: BoxWrite,
    queue: WriteBuf,
    encoder: FrameEncoder,
    high_water: usize,
    activity: Activity,
}

impl StreamWriter {
    pub(crate) fn new(io: BoxWrite, config: &TransportConfig) -> Self {
        StreamWriter {
            io,
            queue: WriteBuf::new(),
            encoder: FrameEncoder::new(config.limits),
            high_water: config.write_high_water,
            activity: Activity::new(),
        }
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    pub(crate) async fn feed(
        &mut self,
        frame: Frame,
        peer: &Arc<str>,
    ) -> Result<(), TransportError> {
        self.encoder
            .encode(frame, &mut self.queue)
            .map_err(|source| TransportError::Protocol { peer: peer.to_string(), source })?;
        if self.queue.remaining() >= self.high_water {
            self.flush(peer).await?;
        }
        Ok(())
    }

    pub(crate) async fn flush(&mut self, peer: &Arc<str>) -> Result<(), TransportError> {
        while self.queue.has_remaining() {
            let mut waited = false;
            let written = std::future::poll_fn(|cx| {
                let poll = poll_write_queue(&mut self.io, cx, &mut self.queue);
                waited |= poll.is_pending();
                poll
            })
            .await
            .map_err(|e| TransportError::from_channel_io(peer, e))?;
            if written == 0 {
                return Err(TransportError::ConnectionLost {
                    peer: peer.to_string(),
                    reason: "the socket accepted no more bytes".into(),
                });
            }
            // Only progress after waiting for the peer is news; a write that never waits
            // needs no clock read.
            if waited {
                self.activity.touch();
            }
        }
        self.io.flush().await.map_err(|e| TransportError::from_channel_io(peer, e))
    }

    pub(crate) async fn close(&mut self, peer: &Arc<str>) -> Result<(), TransportError> {
        self.flush(peer).await?;
        self.io.shutdown().await.map_err(|e| TransportError::from_channel_io(peer, e))
    }
}
