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
#[derive(Default)]
pub struct WriteBuf {
    /// Sealed segments, oldest first.
    sealed: VecDeque<Bytes>,
    /// The scratch block heads are encoded into, initialized in full once when it is made:
    /// an encoder writes a head straight into it and then queues what it wrote
    /// ([`Self::commit`]), with no stack copy to zero and move and no capacity check per
    /// field. `open[open_written..open_end]` is queued (logically the queue's tail); the
    /// bytes after `open_end` are room, holding whatever was written there before.
    open: BytesMut,
    /// End of the heads queued in `open`.
    open_end: usize,
    /// How much of `open` was written already. A cursor rather than `BytesMut::advance`: once
    /// all is written the block is refilled from its start, where advancing moved its start
    /// and the next head had to move it back (about 25 instructions per flush).
    open_written: usize,
    /// Bytes in `sealed`.
    sealed_len: usize,
}

impl std::fmt::Debug for WriteBuf {
    /// The queue's shape, not the scratch block's stale bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBuf")
            .field("remaining", &self.remaining())
            .field("sealed_segments", &self.sealed.len())
            .field("open_queued", &(self.open_end - self.open_written))
            .finish()
    }
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

    /// Room for a head of up to `len` bytes at the queue's tail: a slice at least `len` long,
    /// holding stale bytes. Nothing in it is queued until [`Self::commit`].
    #[inline]
    pub(crate) fn room(&mut self, len: usize) -> &mut [u8] {
        if self.open.len() - self.open_end < len {
            self.grow_open(len);
        }
        &mut self.open[self.open_end..]
    }

    /// Queues the first `len` bytes of the slice [`Self::room`] gave last, which must be at
    /// least that long.
    #[inline]
    pub(crate) fn commit(&mut self, len: usize) {
        debug_assert!(self.open_end + len <= self.open.len(), "commit past the room given");
        self.open_end += len;
    }

    /// Copies `bytes` to the queue's tail.
    pub(crate) fn put_head(&mut self, bytes: &[u8]) {
        self.room(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// The block has less than `len` bytes of room: what it holds becomes a sealed segment,
    /// and if the rest of it is still too small, a new block (the old one's allocation when
    /// everything cut from it was written and dropped) is made and initialized.
    #[cold]
    fn grow_open(&mut self, len: usize) {
        self.seal_open();
        if self.open.len() < len {
            self.open.clear();
            self.open.resize(len.max(SCRATCH_BLOCK), 0);
        }
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

    /// Moves everything queued in `other` to the end of this queue, leaving `other` empty, without
    /// copying: an empty queue takes `other`'s place whole (its scratch block with it), and
    /// otherwise `other`'s segments are moved over.
    ///
    /// A sender that encodes frames ahead, away from the writer, hands them over this way.
    pub fn append(&mut self, other: &mut WriteBuf) {
        if other.is_empty() {
            // Nothing to move; sealing this queue's open block would only split it.
            return;
        }
        if self.is_empty() {
            std::mem::swap(self, other);
            other.clear_open();
            return;
        }
        other.seal_open();
        self.seal_open();
        self.sealed_len += std::mem::take(&mut other.sealed_len);
        self.sealed.append(&mut other.sealed);
    }

    /// Takes the first `at` bytes off the front, as a queue of their own, without copying
    /// (buffers straddling `at` are split, one reference count each).
    ///
    /// # Panics
    ///
    /// If `at` is more than [`Buf::remaining`].
    pub fn split_to(&mut self, at: usize) -> WriteBuf {
        assert!(at <= self.remaining(), "split_to past the end of a WriteBuf");
        let mut front = WriteBuf::new();
        if at == 0 {
            return front;
        }
        self.seal_open();
        let mut left = at;
        while left > 0 {
            let segment = self.sealed.front_mut().expect("enough bytes were counted");
            let piece = match segment.len() <= left {
                true => self.sealed.pop_front().expect("just looked"),
                false => segment.split_to(left),
            };
            left -= piece.len();
            self.sealed_len -= piece.len();
            front.sealed_len += piece.len();
            front.sealed.push_back(piece);
        }
        front
    }

    /// The heads queued in the open block become a sealed segment; the block's room after
    /// them stays open for the next heads.
    fn seal_open(&mut self) {
        if !self.open_unwritten().is_empty() {
            let mut head = self.open.split_to(self.open_end);
            head.advance(self.open_written);
            let head = head.freeze();
            self.sealed_len += head.len();
            self.sealed.push_back(head);
        }
        self.clear_open();
    }

    /// The part of the open block queued and not written yet.
    #[inline]
    fn open_unwritten(&self) -> &[u8] {
        &self.open[self.open_written..self.open_end]
    }

    /// Nothing in the open block is queued: it is refilled from its start.
    #[inline]
    fn clear_open(&mut self) {
        self.open_end = 0;
        self.open_written = 0;
    }

    /// [`Buf::advance`] with sealed segments queued: through them, then into the open block.
    fn advance_sealed(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining(), "advance past the end of a WriteBuf");
        while cnt > 0 {
            let Some(front) = self.sealed.front_mut() else {
                return self.advance(cnt);
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
    #[inline]
    fn remaining(&self) -> usize {
        self.sealed_len + self.open_end - self.open_written
    }

    #[inline]
    fn chunk(&self) -> &[u8] {
        match self.sealed.front() {
            Some(front) => front,
            None => self.open_unwritten(),
        }
    }

    #[inline]
    fn advance(&mut self, cnt: usize) {
        if !self.sealed.is_empty() {
            return self.advance_sealed(cnt);
        }
        // Only heads in the open block are queued: the common case, one cursor moved. Checked
        // before the sum, which a count near `usize::MAX` would wrap round.
        assert!(cnt <= self.open_end - self.open_written, "advance past the end of a WriteBuf");
        let written = self.open_written + cnt;
        match written == self.open_end {
            true => self.clear_open(),
            false => self.open_written = written,
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

    /// Advancing past what is queued is refused, whatever the count, and with only heads
    /// queued as with buffers pushed too (the two ways `advance` goes).
    #[test]
    fn advancing_past_the_end_is_refused() {
        for pushed in [false, true] {
            for cnt in [4, usize::MAX] {
                let mut queue = WriteBuf::new();
                queue.put_head(b"abc");
                if pushed {
                    queue.push(Bytes::from_static(b"d"));
                }
                queue.advance(1);
                let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    queue.advance(cnt);
                }));
                let message = refused.expect_err("advanced past the end");
                let message = message.downcast_ref::<&str>().copied().unwrap_or_default();
                assert_eq!(message, "advance past the end of a WriteBuf", "pushed {pushed}");
            }
        }
    }

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
            match next(5) {
                0 => {
                    let len = next(3 * SCRATCH_BLOCK as u64 / 2) as usize;
                    queue.put_head(&vec![byte; len]);
                    expected.extend(std::iter::repeat_n(byte, len));
                }
                1 => {
                    let len = next(300) as usize;
                    queue.push(Bytes::from(vec![byte; len]));
                    expected.extend(std::iter::repeat_n(byte, len));
                }
                2 => {
                    let written = next(queue.remaining() as u64 + 1) as usize;
                    queue.advance(written);
                    expected.drain(..written);
                }
                _ => {
                    // Split off a front part and append it to a queue of its own, which is
                    // then written in full; or split and append the rest back (a round trip).
                    let at = next(queue.remaining() as u64 + 1) as usize;
                    let mut front = queue.split_to(at);
                    if next(2) == 0 {
                        // Appended to an empty queue, or behind bytes not written yet.
                        let mut other = WriteBuf::new();
                        let before: &[u8] = if next(2) == 0 { b"abc" } else { b"" };
                        other.put_head(before);
                        other.append(&mut front);
                        assert!(front.is_empty());
                        let taken = other.flatten();
                        assert_eq!(&taken[..before.len()], before);
                        assert!(expected.drain(..at).eq(taken[before.len()..].iter().copied()));
                    } else {
                        front.append(&mut queue);
                        assert!(queue.is_empty());
                        queue = front;
                    }
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
