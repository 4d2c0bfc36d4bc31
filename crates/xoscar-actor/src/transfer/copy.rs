//! Buffer transfer (xoscar's `copy_to`): local byte buffers written into buffers other pools
//! expose, in chunks, over one lease per destination.
//!
//! Zero-copy on both ends: the caller's `Bytes` are sliced into chunks and written to the
//! socket by reference; the serving pool copies each chunk from its read buffer straight into
//! the target (the one copy a write into the target's memory needs). In this process a chunk
//! is copied once, into the target.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use prost::Message as _;
use xoscar_pool::{Lease, Message};
use xoscar_wire::Payloads;

use crate::ActorError;
use crate::actor::core::Core;
use crate::call::client::{Place, place};
use crate::pb::{self, request::Kind};
use crate::transfer::buffer::{self, BufferRef};
use crate::wire::header::{self, Answer};

/// The chunk size of [`copy_to`] unless set: 4 MiB.
pub const DEFAULT_CHUNK_SIZE: usize = 4 << 20;

/// Chunks of one [`copy_to`] in flight at once, per destination pool, unless set.
pub const DEFAULT_CHUNKS_IN_FLIGHT: usize = 4;

/// Writes chunks into one exposed buffer (and others of the same pool), holding one lease on
/// the connection to its pool from [`BufferRef::writer`] until dropped: the reaper never
/// closes that connection in between, however long the pauses between writes, and the
/// heartbeat watches it.
pub struct BufferWriter {
    route: Route,
}

enum Route {
    /// The buffer's pool lives in this process.
    Local(Arc<Core>),
    Remote(Box<Lease>),
}

impl std::fmt::Debug for BufferWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let route = match &self.route {
            Route::Local(core) => format!("local {}", core.address),
            Route::Remote(lease) => format!("remote {}", lease.endpoint()),
        };
        f.debug_struct("BufferWriter").field("route", &route).finish()
    }
}

impl BufferRef {
    /// A writer for this buffer (and any other of its pool): resolves the pool and, for one in
    /// another process, takes a lease on the connection to it.
    pub async fn writer(&self) -> Result<BufferWriter, ActorError> {
        let address = self.address()?;
        let route = match place(&address)? {
            (_, Place::Local(core)) => Route::Local(core),
            (client, Place::Remote(endpoint)) => {
                Route::Remote(Box::new(client.pool.lease(&endpoint).await?))
            }
        };
        Ok(BufferWriter { route })
    }
}

impl BufferWriter {
    /// Writes `chunk` into `target` at `offset` and waits until it is in. Checked against the
    /// target's length before anything is sent. Several writes may run at once.
    pub async fn write(
        &self,
        target: &BufferRef,
        offset: u64,
        chunk: Bytes,
    ) -> Result<(), ActorError> {
        let size = chunk.len() as u64;
        if offset.checked_add(size).is_none_or(|end| end > target.len()) {
            let reason = format!("{size} bytes run past the end ({} bytes)", target.len());
            return Err(target.error(offset, reason));
        }
        match &self.route {
            Route::Local(core) => {
                buffer::write(core, target.id(), target.key(), offset, Payloads::from([chunk]))
                    .await
            }
            Route::Remote(lease) => {
                let write = pb::BufferWrite { buffer: target.id(), offset, key: target.key() };
                let request = pb::Request { kind: Some(Kind::WriteBuffer(write)) };
                let request = Message::new(request.encode_to_vec(), vec![chunk]);
                let response = lease.call(request).await?;
                match header::answer(response, lease.endpoint())? {
                    Answer::Done(_) => Ok(()),
                    Answer::Body(_) => Err(target.error(offset, "a write answered with a body")),
                }
            }
        }
    }
}

/// Writes each of `local` into the buffer at the same index of `remote`, from offset 0 (xoscar's
/// `copy_to`): chunked ([`CopyTo::chunk_size`], 4 MiB by default), several chunks in flight
/// per destination, one lease per destination pool for the whole transfer. Await it. Fails
/// with [`ActorError::Buffer`] naming the buffer and offset of the first chunk that failed;
/// before anything is sent if the lists differ in length or a local buffer is longer than
/// its target.
///
/// ```no_run
/// # async fn demo(target: xoscar_actor::BufferRef) -> Result<(), xoscar_actor::ActorError> {
/// let weights = bytes::Bytes::from(vec![7u8; 64 << 20]);
/// xoscar_actor::copy_to(vec![weights], vec![target]).chunk_size(8 << 20).await?;
/// # Ok(())
/// # }
/// ```
pub fn copy_to(local: Vec<Bytes>, remote: Vec<BufferRef>) -> CopyTo {
    CopyTo { local, remote, chunk_size: DEFAULT_CHUNK_SIZE, in_flight: DEFAULT_CHUNKS_IN_FLIGHT }
}

/// A buffer transfer ([`copy_to`]); await it.
#[must_use = "a transfer does nothing until awaited"]
#[derive(Debug)]
pub struct CopyTo {
    local: Vec<Bytes>,
    remote: Vec<BufferRef>,
    chunk_size: usize,
    in_flight: usize,
}

impl CopyTo {
    /// The size of each chunk, at least 1 byte. Default: [`DEFAULT_CHUNK_SIZE`] (4 MiB). A
    /// chunk must fit the frame limits of the connection (256 MiB per payload by default).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// How many chunks are in flight at once, per destination pool, at least 1: the
    /// transfer as a whole keeps up to this many times the number of destination pools in
    /// flight, in whatever mix of destinations its chunks come in. Default:
    /// [`DEFAULT_CHUNKS_IN_FLIGHT`] (4).
    pub fn in_flight(mut self, chunks: usize) -> Self {
        self.in_flight = chunks.max(1);
        self
    }

    async fn run(self) -> Result<(), ActorError> {
        let CopyTo { local, remote, chunk_size, in_flight } = self;
        if local.len() != remote.len() {
            let reason = format!("{} local buffers for {} targets", local.len(), remote.len());
            return Err(match remote.first() {
                Some(target) => target.error(0, reason),
                None => ActorError::Buffer { address: String::new(), buffer: 0, offset: 0, reason },
            });
        }
        for (bytes, target) in local.iter().zip(&remote) {
            if bytes.len() as u64 > target.len() {
                let reason = format!(
                    "a local buffer of {} bytes is longer than its target ({} bytes)",
                    bytes.len(),
                    target.len()
                );
                return Err(target.error(0, reason));
            }
        }
        // One writer (one lease) per destination pool, taken before the first chunk.
        let mut writers: Vec<BufferWriter> = Vec::new();
        let mut by_address: HashMap<String, usize> = HashMap::new();
        let mut chunks: Vec<(usize, BufferRef, u64, Bytes)> = Vec::new();
        for (bytes, target) in local.into_iter().zip(remote) {
            let writer = match by_address.get(target.address_text()) {
                Some(&writer) => writer,
                None => {
                    writers.push(target.writer().await?);
                    by_address.insert(target.address_text().to_owned(), writers.len() - 1);
                    writers.len() - 1
                }
            };
            for start in (0..bytes.len()).step_by(chunk_size) {
                let end = (start + chunk_size).min(bytes.len());
                chunks.push((writer, target.clone(), start as u64, bytes.slice(start..end)));
            }
        }
        let writers = &writers;
        let parallel = in_flight * writers.len().max(1);
        stream::iter(chunks)
            .map(|(writer, target, offset, chunk)| async move {
                writers[writer].write(&target, offset, chunk).await
            })
            .buffer_unordered(parallel)
            .try_collect::<()>()
            .await
    }
}

impl IntoFuture for CopyTo {
    type Output = Result<(), ActorError>;
    type IntoFuture = BoxFuture<'static, Result<(), ActorError>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
