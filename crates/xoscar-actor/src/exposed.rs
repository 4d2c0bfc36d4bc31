//! The bytes a pool exposes for writes by reference ([`SharedBuffer`], or a file) and the
//! registry of them a pool keeps, by random id and secret key. The references, the writes and
//! `copy_to` are the transfer layer's.
//!
//! Uses nothing else of this crate.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use parking_lot::{Mutex, MutexGuard};

/// A byte buffer of fixed length that callers can write into by reference once exposed
/// ([`crate::PoolHandle::expose_buffer`]), and that its owner reads (or keeps writing) meanwhile.
/// Cheap to clone; clones share the bytes.
#[derive(Clone)]
pub struct SharedBuffer {
    bytes: Arc<Mutex<Box<[u8]>>>,
}

impl SharedBuffer {
    /// A buffer of `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        SharedBuffer { bytes: Arc::new(Mutex::new(vec![0; len].into_boxed_slice())) }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.lock().len()
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, locked: writes into the buffer wait while this is held. Its length is fixed:
    /// the guard gives the bytes, not the allocation.
    pub fn lock(&self) -> BufferGuard<'_> {
        BufferGuard(self.bytes.lock())
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.lock().to_vec()
    }
}

/// The bytes of a [`SharedBuffer`], locked ([`SharedBuffer::lock`]): dereferences to `[u8]`.
pub struct BufferGuard<'a>(MutexGuard<'a, Box<[u8]>>);

impl std::ops::Deref for BufferGuard<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for BufferGuard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl std::fmt::Debug for BufferGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferGuard").field("len", &self.0.len()).finish()
    }
}

impl std::fmt::Debug for SharedBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBuffer").field("len", &self.len()).finish()
    }
}

/// Where the bytes written into an exposed buffer go when the pool does not hold them itself
/// (memory a host language owns, such as a Python buffer): each chunk once, with its offset,
/// already checked to lie within the buffer's length; the write is answered (and the next
/// chunk of that writer sent, within its window) when the returned future completes. Chunks of
/// one transfer may come in any order, several at once.
pub trait BufferSink: Send + Sync + 'static {
    /// Writes `chunk` (its parts, in order) at `offset`; the error text reaches the writer.
    fn write(
        &self,
        offset: u64,
        chunk: xoscar_wire::Payloads,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;
}

/// A buffer a pool exposes.
#[derive(Clone)]
pub(crate) enum Exposed {
    Memory(SharedBuffer),
    /// Bytes held elsewhere, reached through a sink.
    Sink {
        sink: Arc<dyn BufferSink>,
        len: u64,
    },
    #[cfg(unix)]
    File {
        file: Arc<std::fs::File>,
        len: u64,
    },
}

impl Exposed {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Exposed::Memory(buffer) => buffer.len() as u64,
            Exposed::Sink { len, .. } => *len,
            #[cfg(unix)]
            Exposed::File { len, .. } => *len,
        }
    }
}

/// The buffers one pool exposes: by id, with their secret key.
#[derive(Default)]
pub(crate) struct ExposedBuffers {
    by_id: Mutex<HashMap<u64, (u64, Exposed), RandomState>>,
}

impl ExposedBuffers {
    /// Exposes `exposed` under a fresh id; returns the id and its key.
    pub(crate) fn insert(&self, exposed: Exposed) -> (u64, u64) {
        // A thread-local CSPRNG seeded by the OS (rand's ChaCha12): ids and keys a peer
        // cannot guess from the ones it was given.
        let key = rand::random::<u64>();
        let mut by_id = self.by_id.lock();
        let id = loop {
            let id = rand::random::<u64>();
            if id != 0 && !by_id.contains_key(&id) {
                break id;
            }
        };
        by_id.insert(id, (key, exposed));
        (id, key)
    }

    /// Stops exposing buffer `id` if `key` is its key; whether it did.
    pub(crate) fn withdraw(&self, id: u64, key: u64) -> bool {
        let mut by_id = self.by_id.lock();
        let held = by_id.get(&id).is_some_and(|(held, _)| *held == key);
        held && by_id.remove(&id).is_some()
    }

    /// Buffer `id`, if `key` is its key.
    pub(crate) fn get(&self, id: u64, key: u64) -> Option<Exposed> {
        self.by_id.lock().get(&id).filter(|(held, _)| *held == key).map(|(_, e)| e.clone())
    }
}
