//! [`Header`]: the opaque bytes a call or an answer carries before its payloads, held inline
//! when short.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, Range};

use bytes::{Bytes, BytesMut};

/// Headers of up to this many bytes are held inline by [`Header::copy_from_slice`] (and so
/// by the decoder): a [`Header`] is then 48 bytes, 16 more than a [`Bytes`].
pub const HEADER_INLINE_MAX: usize = 46;

/// The header of a request or response: bytes opaque to the wire and the pool.
///
/// Either a [`Bytes`] (what a sender builds it from, kept as it is, never copied) or, for a
/// header of at most [`HEADER_INLINE_MAX`] bytes that the decoder read, a copy held inline.
/// A decoded header cut from the read buffer as a `Bytes` would share the buffer's reference
/// count with the frame's payload: taken and dropped once more per frame, two atomic
/// operations that cost more than copying a few dozen bytes (the 64 B frame's trip in
/// `benches/wire.rs` took about a fifth less time without them).
///
/// It reads as a byte slice (`Deref<Target = [u8]>`) and compares by content (with another
/// header, a `Bytes`, bytes or a string), whichever way it is held.
///
/// ```
/// use bytes::Bytes;
/// use xoscar_wire::Header;
///
/// let shared = Header::from(Bytes::from_static(b"uid"));
/// let inline = Header::copy_from_slice(b"uid");
/// assert_eq!(shared, inline);
/// assert_eq!(&inline[..], b"uid");
/// assert_eq!(inline.into_bytes(), Bytes::from_static(b"uid"));
/// ```
#[derive(Clone)]
pub struct Header(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; HEADER_INLINE_MAX] },
    Shared(Bytes),
}

impl Header {
    /// An empty header (no allocation).
    #[inline]
    pub const fn new() -> Self {
        Header(Repr::Shared(Bytes::new()))
    }

    /// A header from a static slice (no allocation, no copy).
    #[inline]
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        Header(Repr::Shared(Bytes::from_static(bytes)))
    }

    /// A copy of `bytes`: inline when at most [`HEADER_INLINE_MAX`] long, else in a
    /// [`Bytes`] of its own (an allocation).
    #[inline]
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        match inline(bytes) {
            Some(header) => header,
            None => Header(Repr::Shared(Bytes::copy_from_slice(bytes))),
        }
    }

    /// `buf[at]` held inline, for a range of at most [`HEADER_INLINE_MAX`] bytes within `buf`
    /// (else `None`). When `buf` holds [`HEADER_INLINE_MAX`] bytes from the range's start, as
    /// the decoder's read buffer nearly always does (the payload follows), they are copied
    /// whole: a copy of fixed length is a few moves, where one of the header's own length was
    /// a call of `memcpy`. The bytes past the header's end are never read.
    #[inline]
    pub(crate) fn inline_from(buf: &[u8], at: Range<usize>) -> Option<Self> {
        let len =
            u8::try_from(at.len()).ok().filter(|&len| usize::from(len) <= HEADER_INLINE_MAX)?;
        let bytes = match buf.get(at.start..at.start + HEADER_INLINE_MAX) {
            Some(whole) => whole.try_into().ok()?,
            None => {
                let mut bytes = [0u8; HEADER_INLINE_MAX];
                bytes[..at.len()].copy_from_slice(buf.get(at)?);
                bytes
            }
        };
        Some(Header(Repr::Inline { len, bytes }))
    }

    /// `bytes`, held inline (a copy) when at most [`HEADER_INLINE_MAX`] long, else as it is.
    #[inline]
    pub fn inline_or_shared(bytes: Bytes) -> Self {
        match inline(&bytes) {
            Some(header) => header,
            None => Header(Repr::Shared(bytes)),
        }
    }

    /// The header as a [`Bytes`]: the one it holds, or a copy of an inline one (an
    /// allocation unless empty).
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Shared(bytes) => bytes,
            Repr::Inline { len: 0, .. } => Bytes::new(),
            Repr::Inline { len, bytes } => Bytes::copy_from_slice(&bytes[..usize::from(len)]),
        }
    }

    /// The bytes, as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared(bytes) => bytes,
        }
    }
}

/// `bytes` inline, if they fit.
#[inline]
fn inline(bytes: &[u8]) -> Option<Header> {
    Header::inline_from(bytes, 0..bytes.len())
}

impl Default for Header {
    /// [`Header::new`]: empty.
    #[inline]
    fn default() -> Self {
        Header::new()
    }
}

impl Deref for Header {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Header {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for Header {
    /// A byte string, ASCII escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.as_slice().escape_ascii())
    }
}

impl PartialEq for Header {
    fn eq(&self, other: &Header) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Header {}

impl PartialEq<[u8]> for Header {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for Header {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl PartialEq<Bytes> for Header {
    fn eq(&self, other: &Bytes) -> bool {
        self.as_slice() == &other[..]
    }
}

impl PartialEq<Vec<u8>> for Header {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == &other[..]
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Header {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Header {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_slice() == *other
    }
}

impl PartialEq<str> for Header {
    fn eq(&self, other: &str) -> bool {
        self.as_slice() == other.as_bytes()
    }
}

impl PartialEq<&str> for Header {
    fn eq(&self, other: &&str) -> bool {
        self.as_slice() == other.as_bytes()
    }
}

impl PartialEq<String> for Header {
    fn eq(&self, other: &String) -> bool {
        self.as_slice() == other.as_bytes()
    }
}

impl Hash for Header {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl From<Bytes> for Header {
    /// Kept as it is: no copy.
    #[inline]
    fn from(bytes: Bytes) -> Self {
        Header(Repr::Shared(bytes))
    }
}

impl From<BytesMut> for Header {
    /// Frozen: no copy.
    fn from(bytes: BytesMut) -> Self {
        Header(Repr::Shared(bytes.freeze()))
    }
}

impl From<Vec<u8>> for Header {
    /// Taken over: no copy.
    fn from(bytes: Vec<u8>) -> Self {
        Header(Repr::Shared(bytes.into()))
    }
}

impl From<String> for Header {
    /// Taken over: no copy.
    fn from(text: String) -> Self {
        Header(Repr::Shared(text.into()))
    }
}

impl From<&'static [u8]> for Header {
    /// [`Header::from_static`].
    fn from(bytes: &'static [u8]) -> Self {
        Header::from_static(bytes)
    }
}

impl<const N: usize> From<&'static [u8; N]> for Header {
    /// [`Header::from_static`].
    fn from(bytes: &'static [u8; N]) -> Self {
        Header::from_static(bytes)
    }
}

impl From<&'static str> for Header {
    /// [`Header::from_static`] of its bytes.
    fn from(text: &'static str) -> Self {
        Header::from_static(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_headers_are_inline_and_long_ones_shared_and_both_read_the_same() {
        let short = vec![3u8; HEADER_INLINE_MAX];
        let long = vec![4u8; HEADER_INLINE_MAX + 1];
        assert!(matches!(Header::copy_from_slice(&short).0, Repr::Inline { .. }));
        assert!(matches!(Header::copy_from_slice(&long).0, Repr::Shared(_)));
        assert!(matches!(
            Header::inline_or_shared(Bytes::from(short.clone())).0,
            Repr::Inline { .. }
        ));
        assert!(matches!(Header::inline_or_shared(Bytes::from(long.clone())).0, Repr::Shared(_)));
        for bytes in [&[][..], &short, &long] {
            let (copied, shared) =
                (Header::copy_from_slice(bytes), Header::from(Bytes::copy_from_slice(bytes)));
            assert_eq!(&copied[..], bytes);
            assert_eq!(copied, shared);
            assert_eq!(copied.clone().into_bytes(), bytes);
            assert_eq!(format!("{copied:?}"), format!("{shared:?}"));
        }
        assert_eq!(std::mem::size_of::<Header>(), 48);
    }

    #[test]
    fn debug_prints_a_byte_string() {
        assert_eq!(format!("{:?}", Header::copy_from_slice(b"a\"\x01")), r#"b"a\"\x01""#);
    }
}
