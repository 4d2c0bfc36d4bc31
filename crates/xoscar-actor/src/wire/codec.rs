//! The caller's half of a remote message, as the actor type's table gives it: the name it
//! travels under and the functions that encode it and decode its reply.

use std::any::Any;

use xoscar_transport::Address;
use xoscar_wire::Payloads;

/// The caller's half of a remote message: its name and codecs.
#[derive(Clone, Copy)]
pub(crate) struct Codec {
    pub(crate) name: &'static str,
    /// A `Batch` of the message named `name`: sent as a batch request.
    pub(crate) batch: bool,
    /// Encodes the message (given as `&mut M`, consumed: it may be left empty).
    pub(crate) encode: fn(&mut dyn Any) -> Option<Payloads>,
    /// Decodes the reply from an endpoint into the caller's `Option<Reply>` (left `None` if it
    /// is not one).
    pub(crate) decode_reply: fn(Payloads, &Address, &mut dyn Any) -> Result<(), prost::DecodeError>,
}
