//! [`Payloads`]: the out-of-band buffers of a frame, two of them without an allocation.

use std::ops::{Deref, DerefMut};

use bytes::Bytes;
use smallvec::SmallVec;

/// The payload buffers of a frame, in order.
///
/// One is stored inline, with no allocation (the common case); more spill to the heap. (Two
/// inline made every frame and message larger, and moving them cost more than it saved.)
/// Build it from an array of up to eight (`[payload]`, `[]`), from an iterator, or from a
/// `Vec<Bytes>` (itself an allocation); read it as a slice.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Payloads(SmallVec<[Bytes; 1]>);

impl Clone for Payloads {
    /// One buffer (the common case) is cloned into place; smallvec's generic clone, which
    /// extends from an iterator, cost about 40 instructions more per frame.
    #[inline]
    fn clone(&self) -> Self {
        match &self.0[..] {
            [] => Payloads::new(),
            [one] => Payloads::from([one.clone()]),
            many => Payloads(many.iter().cloned().collect()),
        }
    }
}

impl Payloads {
    /// No payloads.
    #[inline]
    pub fn new() -> Self {
        Payloads(SmallVec::new())
    }

    /// Appends a buffer.
    #[inline]
    pub fn push(&mut self, payload: Bytes) {
        self.0.push(payload);
    }

    /// Makes room for `additional` more buffers (no allocation while they fit inline).
    #[inline]
    pub fn reserve_exact(&mut self, additional: usize) {
        self.0.reserve_exact(additional);
    }
}

impl Deref for Payloads {
    type Target = [Bytes];

    #[inline]
    fn deref(&self) -> &[Bytes] {
        &self.0
    }
}

impl DerefMut for Payloads {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Bytes] {
        &mut self.0
    }
}

impl From<[Bytes; 0]> for Payloads {
    #[inline]
    fn from(_: [Bytes; 0]) -> Self {
        Payloads::new()
    }
}

impl From<[Bytes; 1]> for Payloads {
    #[inline]
    fn from([payload]: [Bytes; 1]) -> Self {
        // The second slot is past the length: never read or dropped (an empty `Bytes` is a
        // static, nothing to leak).
        Payloads(SmallVec::from_buf([payload]))
    }
}

impl From<[Bytes; 2]> for Payloads {
    #[inline]
    fn from(payloads: [Bytes; 2]) -> Self {
        payloads.into_iter().collect()
    }
}

/// Arrays of three and more spill to the heap anyway.
macro_rules! from_longer_arrays {
    ($($n:literal),*) => {$(
        impl From<[Bytes; $n]> for Payloads {
            #[inline]
            fn from(payloads: [Bytes; $n]) -> Self {
                payloads.into_iter().collect()
            }
        }
    )*};
}

from_longer_arrays!(3, 4, 5, 6, 7, 8);

impl From<Vec<Bytes>> for Payloads {
    #[inline]
    fn from(payloads: Vec<Bytes>) -> Self {
        Payloads(SmallVec::from_vec(payloads))
    }
}

impl FromIterator<Bytes> for Payloads {
    #[inline]
    fn from_iter<I: IntoIterator<Item = Bytes>>(payloads: I) -> Self {
        Payloads(payloads.into_iter().collect())
    }
}

impl Extend<Bytes> for Payloads {
    #[inline]
    fn extend<I: IntoIterator<Item = Bytes>>(&mut self, payloads: I) {
        self.0.extend(payloads);
    }
}

impl IntoIterator for Payloads {
    type Item = Bytes;
    type IntoIter = smallvec::IntoIter<[Bytes; 1]>;

    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Payloads {
    type Item = &'a Bytes;
    type IntoIter = std::slice::Iter<'a, Bytes>;

    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_buffer_is_inline_and_more_spill() {
        let b = || Bytes::from_static(b"x");
        assert!(!Payloads::from([b()]).0.spilled());
        assert!(Payloads::from([b(), b()]).0.spilled());
        assert_eq!(Payloads::from([b()]).len(), 1);
        assert_eq!(Payloads::from([]).len(), 0);
        assert_eq!(Payloads::from(vec![b(), b()]), Payloads::from([b(), b()]));
    }

    #[test]
    fn a_clone_holds_the_same_buffers_inline_or_spilled_as_the_original() {
        let b = |text: &'static str| Bytes::from_static(text.as_bytes());
        for payloads in [vec![], vec![b("a")], vec![b("a"), b("bc")], vec![b("a"), b(""), b("d")]] {
            let original = Payloads::from(payloads.clone());
            let clone = original.clone();
            assert_eq!(&clone[..], &payloads[..]);
            assert_eq!(clone.0.spilled(), payloads.len() > 1);
        }
    }
}
