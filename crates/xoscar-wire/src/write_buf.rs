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
    /// How much of `open` was written already. A cursor rather than `BytesMut::advance`: once
    /// all is written the block is cleared and refilled from its start, where advancing moved
    /// its start and the next head had to move it back (about 25 instructions per flush).
    open_written: usize,
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
            1 => self.open_unwritten().is_empty(),
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
        if self.open_unwritten().is_empty() {
            self.clear_open();
            return;
        }
        // `split` keeps the block's spare capacity in `open` for the next heads.
        let mut head = self.open.split();
        head.advance(std::mem::take(&mut self.open_written));
        let head = head.freeze();
        self.sealed_len += head.len();
        self.sealed.push_back(head);
    }

    /// The part of the open block not written yet.
    fn open_unwritten(&self) -> &[u8] {
        &self.open[self.open_written..]
    }

    /// Everything in the open block was written: it is refilled from its start.
    fn clear_open(&mut self) {
        self.open.clear();
        self.open_written = 0;
    }
}

#[cfg(test)]
impl WriteBuf {
    /// Everything queued, in one buffer, as a socket would receive it (for tests).
    pub(crate) fn flatten(mut self) -> BytesMut {
        let mut wire = BytesMut::new();
        while self.has_remaining() {
            let n = self.chunk().len();
            wire.extend_from_slice(self.chunk());
            self.advance(n);
        }
        wire
    }
}

impl Buf for WriteBuf {
    fn remaining(&self) -> usize {
        self.sealed_len + self.open.len() - self.open_written
    }

    fn chunk(&self) -> &[u8] {
        match self.sealed.front() {
            Some(front) => front,
            None => self.open_unwritten(),
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining(), "advance past the end of a WriteBuf");
        while cnt > 0 {
            let Some(front) = self.sealed.front_mut() else {
                self.open_written += cnt;
                if self.open_written == self.open.len() {
                    self.clear_open();
                }
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
        let open = Some(self.open_unwritten()).filter(|open| !open.is_empty());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Heads, pushed buffers and partial writes in a long pseudo-random mix: what is left to
    /// write is always exactly what went in and was not written yet, in order.
    #[test]
    fn what_is_left_is_what_went_in_and_was_not_written() {
        let mut queue = WriteBuf::new();
        let mut expected = std::collections::VecDeque::new();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for step in 0..20_000u64 {
            let byte = step as u8;
            match next(4) {
                0 => {
                    let len = next(3 * SCRATCH_BLOCK as u64 / 2) as usize;
                    queue.head_space(len).extend(std::iter::repeat_n(byte, len));
                    expected.extend(std::iter::repeat_n(byte, len));
                }
                1 => {
                    let len = next(300) as usize;
                    queue.push(Bytes::from(vec![byte; len]));
                    expected.extend(std::iter::repeat_n(byte, len));
                }
                _ => {
                    let written = next(queue.remaining() as u64 + 1) as usize;
                    queue.advance(written);
                    expected.drain(..written);
                }
            }
            assert_eq!(queue.remaining(), expected.len());
            let mut slices = [IoSlice::new(&[]); 64];
            let filled = queue.chunks_vectored(&mut slices);
            let left: Vec<u8> = slices[..filled].iter().flat_map(|s| s.iter().copied()).collect();
            assert!(expected.iter().copied().take(left.len()).eq(left.iter().copied()));
            assert_eq!(queue.chunk(), &left[..queue.chunk().len()]);
            if queue.is_contiguous() {
                assert_eq!(queue.chunk().len(), queue.remaining());
            }
        }
    }
}
