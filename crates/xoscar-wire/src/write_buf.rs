//! The outgoing byte queue: encoded heads and untouched payload buffers, written vectored.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Smallest block the head scratch grows by; heads of consecutive frames share it.
const SCRATCH_BLOCK: usize = 8 * 1024;

/// A queue of bytes to write: frame heads (prefix, length table, envelope) encoded into a shared
/// scratch block, and payload [`Bytes`] queued as they are, never copied.
///
/// It implements [`bytes::Buf`] with [`Buf::chunks_vectored`], so a writer that supports vectored
/// I/O sends many frames, heads and payloads alike, with one `writev`. Consecutive heads with no
/// payload between them stay contiguous and take a single I/O slice.
#[derive(Debug, Default)]
pub struct WriteBuf {
    /// Sealed segments, oldest first.
    sealed: VecDeque<Bytes>,
    /// Heads encoded after the last sealed segment: logically the queue's tail. Its spare
    /// capacity is the block the next heads are encoded into, reused once written.
    open: BytesMut,
    /// Bytes in `sealed`.
    sealed_len: usize,
}

impl WriteBuf {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// True when everything queued is one contiguous chunk ([`Buf::chunk`] holds it all), so a
    /// plain write can send it: cheaper in the kernel than a vectored write of one slice.
    pub fn is_contiguous(&self) -> bool {
        match self.sealed.len() {
            0 => true,
            1 => self.open.is_empty(),
            _ => false,
        }
    }

    /// Room for a head of `len` bytes at the queue's tail.
    pub(crate) fn head_space(&mut self, len: usize) -> &mut BytesMut {
        if self.open.capacity() - self.open.len() < len {
            // The block is full: what it holds becomes a sealed segment, the rest moves on.
            self.seal_open();
            self.open.reserve(len.max(SCRATCH_BLOCK));
        }
        &mut self.open
    }

    /// Appends a buffer as it is, after everything queued so far.
    pub(crate) fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.seal_open();
        self.sealed_len += bytes.len();
        self.sealed.push_back(bytes);
    }

    fn seal_open(&mut self) {
        if self.open.is_empty() {
            return;
        }
        // `split` keeps the block's spare capacity in `open` for the next heads.
        let head = self.open.split().freeze();
        self.sealed_len += head.len();
        self.sealed.push_back(head);
    }
}

impl Buf for WriteBuf {
    fn remaining(&self) -> usize {
        self.sealed_len + self.open.len()
    }

    fn chunk(&self) -> &[u8] {
        match self.sealed.front() {
            Some(front) => front,
            None => &self.open,
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining(), "advance past the end of a WriteBuf");
        while cnt > 0 {
            let Some(front) = self.sealed.front_mut() else {
                self.open.advance(cnt);
                return;
            };
            let step = cnt.min(front.len());
            front.advance(step);
            self.sealed_len -= step;
            cnt -= step;
            if front.is_empty() {
                self.sealed.pop_front();
            }
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        let open = (!self.open.is_empty()).then_some(&self.open[..]);
        for chunk in self.sealed.iter().map(|b| &b[..]).chain(open) {
            if filled == dst.len() {
                break;
            }
            dst[filled] = IoSlice::new(chunk);
            filled += 1;
        }
        filled
    }
}
