//! Buffers an actor pool exposes by reference ([`BufferRef`]) for callers to write into
//! (xoscar's `buffer_ref`), and the pool's side of those writes.

use std::sync::Arc;

use xoscar_transport::Address;
use xoscar_wire::Payloads;

use crate::ActorError;
use crate::actor::core::Core;
use crate::actor::handle::PoolHandle;
use crate::exposed::{BufferSink, Exposed, SharedBuffer};

/// A reference to a buffer exposed by an actor pool: its pool's address, its id there, its
/// length and its secret key. A prost message (fields `address = 1`, `id = 2`, `len = 3`,
/// `key = 4`), so it travels inside messages; write into it with [`crate::copy_to`] or
/// [`BufferRef::writer`].
///
/// The id and the key are 128 random bits together: only a holder of the reference can write
/// into the buffer. Errors and `Debug` show the id, never the key.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
#[prost(skip_debug)]
pub struct BufferRef {
    #[prost(string, tag = "1")]
    address: String,
    #[prost(uint64, tag = "2")]
    id: u64,
    #[prost(uint64, tag = "3")]
    len: u64,
    #[prost(fixed64, tag = "4")]
    key: u64,
}

impl std::fmt::Debug for BufferRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferRef")
            .field("address", &self.address)
            .field("id", &self.id)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl BufferRef {
    /// The address of the buffer's pool, as text.
    pub fn address_text(&self) -> &str {
        &self.address
    }

    /// The buffer's id in its pool.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The buffer's secret key, which a write must carry with its id.
    pub(crate) fn key(&self) -> u64 {
        self.key
    }

    /// The buffer's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address of the buffer's pool; an error if it does not parse (a reference built
    /// by a peer).
    pub fn address(&self) -> Result<Address, ActorError> {
        self.address.parse().map_err(|error| self.error(0, format!("bad address: {error}")))
    }

    /// An error about the chunk at `offset` of this buffer.
    pub(crate) fn error(&self, offset: u64, reason: impl Into<String>) -> ActorError {
        ActorError::Buffer {
            address: self.address.clone(),
            buffer: self.id,
            offset,
            reason: reason.into(),
        }
    }
}

impl PoolHandle {
    /// Exposes `buffer` for writes by reference, from this process or others, until
    /// [`PoolHandle::withdraw_buffer`] (or the pool's end). Returns its reference, to hand to
    /// writers inside a message.
    pub fn expose_buffer(&self, buffer: SharedBuffer) -> BufferRef {
        self.expose(Exposed::Memory(buffer))
    }

    /// Exposes the first `len` bytes of `file` for writes by reference: each chunk is written
    /// at its offset (`pwrite`) on the runtime's blocking threads.
    #[cfg(unix)]
    pub fn expose_file(&self, file: std::fs::File, len: u64) -> BufferRef {
        self.expose(Exposed::File { file: Arc::new(file), len })
    }

    /// Exposes a buffer of `len` bytes held elsewhere: each chunk written into it goes to
    /// `sink` (bounds checked here first). For a host that owns the memory (the Python
    /// package's `buffer_ref`).
    pub fn expose_sink(&self, sink: Arc<dyn BufferSink>, len: u64) -> BufferRef {
        self.expose(Exposed::Sink { sink, len })
    }

    /// Stops exposing the buffer: later writes fail with [`ActorError::Buffer`]. Returns
    /// whether it was exposed.
    pub fn withdraw_buffer(&self, buffer: &BufferRef) -> bool {
        self.core.buffers.withdraw(buffer.id, buffer.key)
    }

    fn expose(&self, exposed: Exposed) -> BufferRef {
        let len = exposed.len();
        let (id, key) = self.core.buffers.insert(exposed);
        BufferRef { address: self.core.address.to_string(), id, len, key }
    }
}

/// Writes `chunk` (its payloads, in order) into buffer `id` of `core` at `offset`, if `key`
/// is its key.
pub(crate) async fn write(
    core: &Core,
    id: u64,
    key: u64,
    offset: u64,
    chunk: Payloads,
) -> Result<(), ActorError> {
    let target = BufferRef { address: core.address.to_string(), id, len: 0, key: 0 };
    let exposed = core.buffers.get(id, key);
    let Some(exposed) = exposed else {
        // A wrong key reads as no buffer at all: it tells a guesser nothing.
        return Err(target.error(offset, "no such buffer (never exposed, or withdrawn)"));
    };
    let size: u64 = chunk.iter().map(|part| part.len() as u64).sum();
    let past_end = |len: u64| {
        let reason = || format!("{size} bytes run past the end ({len} bytes)");
        offset.checked_add(size).is_none_or(|end| end > len).then(|| target.error(offset, reason()))
    };
    match exposed {
        Exposed::Memory(buffer) => {
            // Checked under the lock the copy holds: the owner may swap the buffer meanwhile.
            let mut bytes = buffer.lock();
            if let Some(error) = past_end(bytes.len() as u64) {
                return Err(error);
            }
            let mut at = offset as usize;
            for part in &chunk {
                bytes[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
            Ok(())
        }
        Exposed::Sink { sink, len } => {
            if let Some(error) = past_end(len) {
                return Err(error);
            }
            sink.write(offset, chunk).await.map_err(|reason| target.error(offset, reason))
        }
        #[cfg(unix)]
        Exposed::File { file, len } => {
            use std::os::unix::fs::FileExt;
            if let Some(error) = past_end(len) {
                return Err(error);
            }
            let written = tokio::task::spawn_blocking(move || {
                let mut at = offset;
                for part in &chunk {
                    file.write_all_at(part, at)?;
                    at += part.len() as u64;
                }
                Ok::<_, std::io::Error>(())
            });
            match written.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(target.error(offset, format!("write: {error}"))),
                Err(error) => Err(target.error(offset, format!("the write task ended: {error}"))),
            }
        }
    }
}
