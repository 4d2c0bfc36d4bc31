//! The one error type of this crate.

use crate::FrameKind;

/// Why bytes could not be read as, or a frame could not be written as, protocol frames.
///
/// Every variant means the connection that produced it cannot continue: framing is lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The handshake did not start with the protocol magic: the peer does not speak xoscar-rs.
    #[error("bad handshake magic {found:02x?}, expected {expected:02x?} (not an xoscar-rs peer)")]
    BadMagic {
        /// The four bytes received.
        found: [u8; 4],
        /// [`crate::MAGIC`].
        expected: [u8; 4],
    },
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: ours is {ours}, the peer's is {theirs}")]
    VersionMismatch {
        /// [`crate::PROTOCOL_VERSION`].
        ours: u16,
        /// The version the peer announced.
        theirs: u16,
    },
    /// The prefix names a frame kind this version does not know.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// Flag bits that version 1 reserves were set.
    #[error("reserved flag bits {flags:#04x} set in a {what}")]
    ReservedFlags {
        /// Where: "frame prefix" or "handshake".
        what: &'static str,
        /// The flag bits received.
        flags: u16,
    },
    /// The envelope is longer than [`crate::Limits::max_envelope_len`].
    #[error("envelope of {len} bytes exceeds the limit of {max} bytes")]
    EnvelopeTooLarge {
        /// The announced envelope length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The frame has more payload buffers than [`crate::Limits::max_payloads`].
    #[error("{count} payload buffers exceed the limit of {max}")]
    TooManyPayloads {
        /// The announced number of payloads.
        count: usize,
        /// The limit in force.
        max: usize,
    },
    /// The payloads add up to more than [`crate::Limits::max_payload_len`].
    #[error("payloads of {len} bytes exceed the limit of {max} bytes per frame")]
    PayloadTooLarge {
        /// The announced total (saturating at `u64::MAX`).
        len: u64,
        /// The limit in force.
        max: u64,
    },
    /// The envelope bytes are not a valid protobuf message of the frame's kind.
    #[error("malformed {kind:?} envelope: {source}")]
    MalformedEnvelope {
        /// The kind named by the prefix.
        kind: FrameKind,
        /// What prost found wrong.
        #[source]
        source: prost::DecodeError,
    },
    /// The handshake's `Hello` bytes are not a valid protobuf message.
    #[error("malformed handshake Hello: {source}")]
    MalformedHello {
        /// What prost found wrong.
        #[source]
        source: prost::DecodeError,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: {buffered} bytes of an incomplete frame were buffered")]
    Truncated {
        /// How many bytes of the incomplete frame had arrived.
        buffered: usize,
    },
}
