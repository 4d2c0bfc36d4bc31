//! The wire format of xoscar-rs: frame layout, protobuf envelopes, and a sans-I/O codec with hard
//! limits and zero-copy payloads.
//!
//! Place in the stack: **`xoscar-wire`** < `xoscar-transport` < `xoscar-pool` < `xoscar-router`
//! < `xoscar-actor` < `xoscar`. This crate knows nothing of sockets or of the tokio runtime: it
//! turns [`Frame`] values into bytes and back. `xoscar-transport` drives it over real I/O.
//!
//! # Byte layout
//!
//! All integers are little-endian. A connection starts with one **handshake** from each end:
//!
//! ```text
//! offset  size  field
//! 0       4     magic         b"XOSR"
//! 4       2     version       u16, 1 for this crate (PROTOCOL_VERSION)
//! 6       2     flags         u16, must be 0
//! 8       4     hello_len     u32, at most MAX_HELLO_LEN (1024)
//! 12      n     hello         protobuf xoscar.wire.v1.Hello (agent, auth nonce or proof)
//! ```
//!
//! After it, each end sends **frames**:
//!
//! ```text
//! offset      size          field
//! 0           1             kind           u8: 1 Request, 2 Response, 3 Notify, 4 Cancel,
//!                                              5 Ping, 6 Pong, 7 GoAway, 8 Credit
//! 1           1             flags          u8, must be 0 in version 1
//! 2           2             payload_count  u16, at most Limits::max_payloads
//! 4           4             envelope_len   u32, at most Limits::max_envelope_len
//! 8           8 × count     payload_len[]  u64 each; their sum at most Limits::max_payload_len
//! 8 + 8×count envelope_len  envelope       protobuf message chosen by `kind` (proto/ files)
//! …           payload_len[i] payload[i]    raw bytes, in order, no padding
//! ```
//!
//! Every length is checked against the [`Limits`] the moment it is read, before any memory is
//! reserved for what it announces.
//!
//! # Worked example
//!
//! A request with id 7, header `"hi"` and one 3-byte payload `"abc"`. Its envelope is the
//! protobuf `Request { id: 7, header: "hi" }`: `08 07` (field 1, varint 7) `12 02 68 69`
//! (field 2, length 2, "hi"), 6 bytes.
//!
//! ```
//! use bytes::{Buf, Bytes, BytesMut};
//! use xoscar_wire::{Frame, FrameDecoder, FrameEncoder, WriteBuf};
//!
//! let frame = Frame::request(7, Bytes::from_static(b"hi"), vec![Bytes::from_static(b"abc")]);
//! let mut out = WriteBuf::new();
//! FrameEncoder::default().encode(frame.clone(), &mut out).unwrap();
//!
//! let mut wire = BytesMut::new();
//! while out.has_remaining() {
//!     let chunk = out.chunk();
//!     wire.extend_from_slice(chunk);
//!     let n = chunk.len();
//!     out.advance(n);
//! }
//! assert_eq!(
//!     &wire[..],
//!     &[
//!         1, 0, // kind Request, flags
//!         1, 0, // one payload
//!         6, 0, 0, 0, // envelope of 6 bytes
//!         3, 0, 0, 0, 0, 0, 0, 0, // payload 0 is 3 bytes
//!         0x08, 7, 0x12, 2, b'h', b'i', // Request { id: 7, header: "hi" }
//!         b'a', b'b', b'c', // payload 0
//!     ][..]
//! );
//!
//! // Decoding is incremental: a partial frame yields nothing and waits for more bytes.
//! let mut decoder = FrameDecoder::default();
//! let mut partial = wire.split_to(10);
//! assert!(decoder.decode(&mut partial).unwrap().is_none());
//! partial.unsplit(wire);
//! assert_eq!(decoder.decode(&mut partial).unwrap(), Some(frame));
//! ```
//!
//! A hostile length is refused before anything is reserved:
//!
//! ```
//! use bytes::BytesMut;
//! use xoscar_wire::{FrameDecoder, Limits, WireError};
//!
//! let mut decoder = FrameDecoder::new(Limits::default().max_payload_len(1024));
//! // Request, one payload, empty envelope, payload of 2^40 bytes.
//! let mut src = BytesMut::from(&[1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0][..]);
//! let error = decoder.decode(&mut src).unwrap_err();
//! assert!(matches!(error, WireError::PayloadTooLarge { len: 1_099_511_627_776, max: 1024 }));
//! assert!(src.capacity() < 4096);
//! ```

mod align;
mod auth;
mod decode;
mod encode;
mod error;
mod frame;
mod handshake;
mod hot;
mod kind;
mod limits;
mod payloads;
mod received;
mod write_buf;

/// The protobuf envelopes, generated from `proto/xoscar/wire/v1/frames.proto` by
/// `cargo xtask proto` (protox + prost-build, no system `protoc`). `bytes` fields are
/// [`bytes::Bytes`], so decoding slices the read buffer instead of copying.
#[allow(clippy::all, clippy::pedantic)]
pub mod pb {
    include!("generated/xoscar.wire.v1.rs");
}

pub use auth::{
    AUTH_NONCE_LEN, AUTH_PROOF_LEN, AuthRole, AuthToken, BadAuthToken, MIN_AUTH_TOKEN_LEN,
};
pub use decode::FrameDecoder;
pub use encode::{FrameEncoder, INLINE_PAYLOAD_MAX};
pub use error::WireError;
pub use frame::{Envelope, Frame};
pub use handshake::{HANDSHAKE_PREFIX_LEN, Handshake, MAGIC, MAX_HELLO_LEN, PROTOCOL_VERSION};
pub use kind::FrameKind;
pub use limits::Limits;
pub use payloads::Payloads;
pub use received::{ReceivedFrame, RequestHead, ResponseHead};
pub use write_buf::WriteBuf;

/// Bytes of the fixed frame prefix: kind, flags, payload count, envelope length.
pub const PREFIX_LEN: usize = 8;

/// Bytes of each entry of the payload length table.
pub const PAYLOAD_LEN_SIZE: usize = 8;
