//! The handshake each end sends first: magic, protocol version, then a `Hello` envelope.

use bytes::{Buf, BufMut, BytesMut};
use prost::Message;

use crate::{Limits, WireError, pb};

/// The first four bytes each end of a connection sends.
pub const MAGIC: [u8; 4] = *b"XOSR";

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Bytes before the `Hello` envelope: magic (4), version (2), flags (2), `Hello` length (4).
pub const HANDSHAKE_PREFIX_LEN: usize = 12;

/// The longest `Hello` accepted (an agent name, a nonce or a proof fit many times over): a
/// peer that has proved nothing yet gets no larger allocation, whatever the frame limits.
pub const MAX_HELLO_LEN: usize = 1024;

/// The handshake frame: protocol version and a [`pb::Hello`] (room for an authentication proof).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The version the sender speaks.
    pub version: u16,
    /// What the sender says about itself.
    pub hello: pb::Hello,
}

impl Handshake {
    /// Our handshake: [`PROTOCOL_VERSION`] with `hello`.
    pub fn new(hello: pb::Hello) -> Self {
        Handshake { version: PROTOCOL_VERSION, hello }
    }

    /// Appends the encoded handshake to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        let hello_len = self.hello.encoded_len();
        dst.reserve(HANDSHAKE_PREFIX_LEN + hello_len);
        dst.put_slice(&MAGIC);
        dst.put_u16_le(self.version);
        dst.put_u16_le(0); // flags: none defined in version 1
        dst.put_u32_le(hello_len as u32);
        self.hello.encode_raw(dst);
    }

    /// Takes a handshake off the front of `src`, or `Ok(None)` if more bytes are needed.
    ///
    /// Wrong magic is reported as soon as the bytes that differ arrive; a version other than
    /// [`PROTOCOL_VERSION`] as soon as the prefix is complete, before the `Hello` is read.
    pub fn decode(src: &mut BytesMut, limits: &Limits) -> Result<Option<Self>, WireError> {
        let seen = src.len().min(MAGIC.len());
        if src[..seen] != MAGIC[..seen] {
            let mut found = [0; 4];
            found[..seen].copy_from_slice(&src[..seen]);
            return Err(WireError::BadMagic { found, expected: MAGIC });
        }
        if src.len() < HANDSHAKE_PREFIX_LEN {
            return Ok(None);
        }
        let version = u16::from_le_bytes([src[4], src[5]]);
        if version != PROTOCOL_VERSION {
            return Err(WireError::VersionMismatch { ours: PROTOCOL_VERSION, theirs: version });
        }
        let flags = u16::from_le_bytes([src[6], src[7]]);
        if flags != 0 {
            return Err(WireError::ReservedFlags { what: "handshake", flags });
        }
        let hello_len = u32::from_le_bytes([src[8], src[9], src[10], src[11]]) as usize;
        let max = MAX_HELLO_LEN.min(limits.get_max_envelope_len());
        if hello_len > max {
            return Err(WireError::EnvelopeTooLarge { len: hello_len as u64, max });
        }
        if src.len() < HANDSHAKE_PREFIX_LEN + hello_len {
            return Ok(None);
        }
        src.advance(HANDSHAKE_PREFIX_LEN);
        let hello = pb::Hello::decode(src.split_to(hello_len).freeze())
            .map_err(|source| WireError::MalformedHello { source })?;
        Ok(Some(Handshake { version, hello }))
    }
}
