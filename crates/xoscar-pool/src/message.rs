//! What travels through the pool: an opaque application header and payload buffers.

use xoscar_wire::{Header, Payloads};

/// A request, a one-way message or a response: an opaque header (the actor layer puts the
/// actor uid, message type or error details here) and out-of-band payload buffers, which are
/// never copied on their way through the pool.
///
/// A header received from a peer is held inline when short ([`Header`]); one built by a
/// sender travels as the `Bytes` it was built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Opaque to the pool.
    pub header: Header,
    /// Raw buffers, in order.
    pub payloads: Payloads,
}

impl Message {
    /// A message with `header` (a `Bytes`, a `Vec<u8>`, a static slice or string...) and
    /// `payloads`. Give the payloads as an array (`[payload]`) to build it without an
    /// allocation: one payload is stored inline, while a `Vec` is an allocation of its own.
    pub fn new(header: impl Into<Header>, payloads: impl Into<Payloads>) -> Self {
        Message { header: header.into(), payloads: payloads.into() }
    }
}
