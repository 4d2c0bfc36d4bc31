//! Framing over byte streams (TCP and Unix sockets): the handshake, a read loop over our
//! sans-I/O decoder, and vectored writes of a [`WriteBuf`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xoscar_wire::{
    AUTH_NONCE_LEN, AuthRole, AuthToken, Frame, FrameDecoder, FrameEncoder, Handshake, Limits,
    ReceivedFrame, WireError, WriteBuf, pb,
};

use crate::{Activity, TransportConfig, TransportError};

/// The read half of a socket, type-erased so TCP and Unix sockets share one code path.
pub(crate) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a socket, type-erased likewise.
pub(crate) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// What an xoscar-rs peer sends in its first `Hello`: its agent, its process's mark, and a
/// nonce when it authenticates.
pub(crate) fn our_hello(auth_nonce: Option<[u8; AUTH_NONCE_LEN]>) -> pb::Hello {
    pb::Hello {
        auth_proof: Default::default(),
        agent: concat!("xoscar-rs/", env!("CARGO_PKG_VERSION")).into(),
        auth_nonce: auth_nonce.map(|n| Bytes::copy_from_slice(&n)).unwrap_or_default(),
        process: crate::process::mark(),
    }
}

/// Sends our handshake, then reads and checks the peer's; with a shared secret on either end,
/// a second round proves both know it (`xoscar_wire::AuthToken`): the dialer's proof first,
/// the acceptor's only once the dialer's checks out. Bytes that arrive after the
/// peer's handshake (the start of its first frames) stay in the reader's buffer, and none of
/// them is read as a frame before the peer is authenticated.
pub(crate) async fn handshake(
    reader: &mut StreamReader,
    write: &mut BoxWrite,
    peer: &str,
    role: AuthRole,
    token: Option<&AuthToken>,
) -> Result<Handshake, TransportError> {
    let refuse = |reason| TransportError::AuthFailed { peer: peer.to_string(), reason };
    let our_nonce = match token {
        Some(_) => Some(fresh_nonce(peer)?),
        None => None,
    };
    send_handshake(write, peer, our_hello(our_nonce)).await?;
    let theirs = read_handshake(reader, peer, None).await?;
    let (token, our_nonce) = match (token.zip(our_nonce), theirs.hello.auth_nonce.is_empty()) {
        (None, true) => return Ok(theirs),
        (None, false) => {
            return Err(refuse(
                "the peer authenticates with a shared secret and this end has none \
                 (set XOSCAR_AUTH_TOKEN or the transport's auth token)",
            ));
        }
        (Some(_), true) => {
            return Err(refuse(
                "the peer does not authenticate: it has no shared secret (XOSCAR_AUTH_TOKEN)",
            ));
        }
        (Some(ours), false) => ours,
    };
    let their_nonce = &theirs.hello.auth_nonce[..];
    if their_nonce.len() != AUTH_NONCE_LEN {
        return Err(refuse("the peer's authentication nonce is not 32 bytes"));
    }
    let (dialer_nonce, acceptor_nonce, their_role) = match role {
        AuthRole::Dialer => (&our_nonce[..], their_nonce, AuthRole::Acceptor),
        AuthRole::Acceptor => (their_nonce, &our_nonce[..], AuthRole::Dialer),
    };
    let proof = token.proof(role, dialer_nonce, acceptor_nonce);
    let proof = pb::Hello { auth_proof: Bytes::copy_from_slice(&proof), ..Default::default() };
    let mismatch = "the peer's proof does not match: it has another shared secret";
    match role {
        // The acceptor gives no proof to a peer that has not proved itself: a stranger must
        // not collect proofs to test guesses of the secret against offline.
        AuthRole::Acceptor => {
            let closed = "the peer closed instead of proving it knows the shared secret";
            let theirs_proof = read_handshake(reader, peer, Some(refuse(closed))).await?;
            let proved = &theirs_proof.hello.auth_proof;
            if !token.verify(their_role, dialer_nonce, acceptor_nonce, proved) {
                return Err(refuse(mismatch));
            }
            send_handshake(write, peer, proof).await?;
        }
        AuthRole::Dialer => {
            send_handshake(write, peer, proof).await?;
            let refused = "the peer refused our proof: it has another shared secret";
            let theirs_proof = read_handshake(reader, peer, Some(refuse(refused))).await?;
            let proved = &theirs_proof.hello.auth_proof;
            if !token.verify(their_role, dialer_nonce, acceptor_nonce, proved) {
                return Err(refuse(mismatch));
            }
        }
    }
    Ok(theirs)
}

fn fresh_nonce(peer: &str) -> Result<[u8; AUTH_NONCE_LEN], TransportError> {
    let mut nonce = [0; AUTH_NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|error| TransportError::Io {
        operation: "draw an authentication nonce for",
        address: peer.to_string(),
        source: io::Error::other(error.to_string()),
    })?;
    Ok(nonce)
}

async fn send_handshake(
    write: &mut BoxWrite,
    peer: &str,
    hello: pb::Hello,
) -> Result<(), TransportError> {
    let mut bytes = BytesMut::new();
    Handshake::new(hello).encode(&mut bytes);
    write.write_all(&bytes).await.map_err(|e| TransportError::from_channel_io(peer, e))?;
    write.flush().await.map_err(|e| TransportError::from_channel_io(peer, e))
}

/// Reads one handshake; a close before it is complete is `on_close`, or a lost connection.
async fn read_handshake(
    reader: &mut StreamReader,
    peer: &str,
    on_close: Option<TransportError>,
) -> Result<Handshake, TransportError> {
    loop {
        match Handshake::decode(&mut reader.buffer, reader.decoder.limits()) {
            Ok(Some(theirs)) => return Ok(theirs),
            Ok(None) => {}
            Err(source) => {
                return Err(TransportError::Handshake { peer: peer.to_string(), source });
            }
        }
        let filled = match reader.fill(peer).await {
            Ok(n) => n,
            Err(TransportError::ConnectionLost { .. }) if on_close.is_some() => 0,
            Err(error) => return Err(error),
        };
        if filled == 0 {
            return Err(on_close.unwrap_or_else(|| TransportError::ConnectionLost {
                peer: peer.to_string(),
                reason: format!("closed during the handshake after {} bytes", reader.buffer.len()),
            }));
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
/// The most one read takes while no frame's head is pending (see [`StreamReader::fill`]).
const BLIND_READ_MAX: usize = 64 * 1024;

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
    ///
    /// Its size follows what the decoder knows, so that no frame's bytes are copied to make
    /// room for the rest of it (`BytesMut::reserve` moves what a block holds when it grows
    /// it, up to a whole large frame):
    /// - Inside a frame whose head is read, the decoder has made room for the rest (or for
    ///   the next stretch of a frame larger than `Limits::max_reserve_ahead`), and a read
    ///   takes what fits. Nothing is reserved here: topping the room up near the frame's end
    ///   moved the whole frame read so far.
    /// - Between frames a read takes at most [`BLIND_READ_MAX`] bytes. The spare room may be
    ///   the tail of the block the last large frame was read into, megabytes of it, and
    ///   filled blind it would take most of the next large frame before its head says
    ///   whether it fits there. Loopback TCP delivers a 1 MiB frame in one or two reads.
    async fn fill(&mut self, peer: &str) -> Result<usize, TransportError> {
        let spare = self.buffer.capacity() - self.buffer.len();
        let read = match self.decoder.pending_frame_len() {
            Some(_) if spare > 0 => self.io.read_buf(&mut self.buffer).await,
            _ => {
                if spare < MIN_READ_ROOM {
                    self.buffer.reserve(READ_CHUNK);
                }
                self.io.read_buf(&mut (&mut self.buffer).limit(BLIND_READ_MAX)).await
            }
        };
        let read = read.map_err(|e| TransportError::from_channel_io(peer, e))?;
        if read > 0 {
            self.activity.touch();
        }
        Ok(read)
    }

    /// The next frame if it is already buffered whole (or the error its bytes are); `None`
    /// when it has to be read first, or the stream ended. Never reads.
    #[inline]
    pub(crate) fn try_recv(&mut self, peer: &str) -> Option<Result<ReceivedFrame, TransportError>> {
        if self.finished {
            return None;
        }
        match self.decoder.decode_received(&mut self.buffer) {
            Ok(frame) => frame.map(Ok),
            Err(source) => {
                self.finished = true;
                Some(Err(TransportError::Protocol { peer: peer.to_string(), source }))
            }
        }
    }

    pub(crate) async fn recv(
        &mut self,
        peer: &str,
    ) -> Result<Option<ReceivedFrame>, TransportError> {
        if self.finished {
            return Ok(None);
        }
        let result = self.next_frame(peer).await;
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result
    }

    async fn next_frame(&mut self, peer: &str) -> Result<Option<ReceivedFrame>, TransportError> {
        loop {
            if let Some(received) = self.try_recv(peer) {
                return received.map(Some);
            }
            if self.fill(peer).await? == 0 {
                return match self.decoder.decode_received_eof(&mut self.buffer) {
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

    pub(crate) fn limits(&self) -> xoscar_wire::Limits {
        *self.encoder.limits()
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

    /// Encodes `frame` into the queue unless the queue is at its high-water mark (then it is
    /// given back: `feed` flushes).
    pub(crate) fn try_feed(
        &mut self,
        frame: Frame,
        peer: &Arc<str>,
    ) -> Result<Option<Frame>, TransportError> {
        if self.queue.remaining() >= self.high_water {
            return Ok(Some(frame));
        }
        self.encoder
            .encode(frame, &mut self.queue)
            .map_err(|source| TransportError::Protocol { peer: peer.to_string(), source })?;
        Ok(None)
    }

    /// The encoder frames for this writer are encoded with (its limits).
    pub(crate) fn encoder(&self) -> &FrameEncoder {
        &self.encoder
    }

    /// Moves all of `frames` (encoded with [`StreamWriter::encoder`]'s settings) to the end of
    /// the queue, unless the queue is at its high-water mark: then nothing is taken (false).
    pub(crate) fn try_append(&mut self, frames: &mut WriteBuf) -> bool {
        if self.queue.remaining() >= self.high_water {
            return false;
        }
        self.queue.append(frames);
        true
    }

    /// [`StreamWriter::try_append`], flushing first when the queue is at its high-water mark.
    pub(crate) async fn append(
        &mut self,
        frames: &mut WriteBuf,
        peer: &Arc<str>,
    ) -> Result<(), TransportError> {
        if self.queue.remaining() >= self.high_water {
            self.flush(peer).await?;
        }
        self.queue.append(frames);
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
