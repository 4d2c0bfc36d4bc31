//! What travels through the pool: an opaque application header and payload buffers.

use bytes::Bytes;
use xoscar_wire::Payloads;

/// A request, a one-way message or a response: an opaque header (the actor layer puts the
/// actor uid, message type or error details here) and out-of-band payload buffers, which are
/// never copied on their way through the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Opaque to the pool.
    pub header: Bytes,
    /// Raw buffers, in order.
    pub payloads: Payloads,
}

impl Message {
    /// A message with `header` and `payloads`. Give the payloads as an array (`[payload]`)
    /// to build it without an allocation: one payload is stored inline, while a `Vec` is an
    /// allocation of its own.
    pub fn new(header: impl Into<Bytes>, payloads: impl Into<Payloads>) -> Self {
        Message { header: header.into(), payloads: payloads.into() }
    }
}
