//! Message bodies: how a message, reply or init value travels as a frame's payloads.
//!
//! A `bytes::Bytes` value (protobuf's `bytes`) is its bytes as they are, one payload, never
//! copied on its way: the socket writer sends it (or copies it into the frame's head, if
//! small), the reader hands it out as a slice of what it read, and the receiver takes that
//! slice. Sender and receiver agree because both hold the same type for a message name. Any
//! other value is its prost encoding.

use std::any::{Any, TypeId};

use bytes::{Buf, Bytes, BytesMut};
use xoscar_wire::Payloads;

/// The payloads of `message`, which is left as it was.
pub(crate) fn encode<M: prost::Message + 'static>(message: &M) -> Payloads {
    if let Some(bytes) = (message as &dyn Any).downcast_ref::<Bytes>() {
        return as_payloads(bytes.clone());
    }
    Payloads::from([message.encode_to_vec().into()])
}

/// The payloads of `message`, which is consumed: a `Bytes` is moved out of it (left empty)
/// rather than cloned, which spares its reference count a round trip (two atomic operations).
pub(crate) fn encode_taking<M: prost::Message + 'static>(message: &mut M) -> Payloads {
    if let Some(bytes) = (message as &mut dyn Any).downcast_mut::<Bytes>() {
        return as_payloads(std::mem::take(bytes));
    }
    encode(message)
}

/// A `Bytes` message as it travels: one payload, or none when empty.
fn as_payloads(bytes: Bytes) -> Payloads {
    match bytes.is_empty() {
        true => Payloads::new(),
        false => Payloads::from([bytes]),
    }
}

/// The payloads as one buffer: the only one as it is, several joined (copied).
pub(crate) fn join(mut body: Payloads) -> Bytes {
    // The only one is taken out of place (an empty static left behind): through smallvec's
    // owning iterator, it cost about 50 instructions more per message.
    match &mut body[..] {
        [] => Bytes::new(),
        [only] => std::mem::take(only),
        parts => {
            let mut joined = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
            for part in parts.iter() {
                joined.extend_from_slice(part);
            }
            joined.freeze()
        }
    }
}

/// A message from its payloads (read as one byte sequence).
pub(crate) fn decode<M: prost::Message + Default + 'static>(
    mut body: Payloads,
) -> Result<M, prost::DecodeError> {
    if TypeId::of::<M>() == TypeId::of::<Bytes>() {
        let mut message = None::<M>;
        if let Some(slot) = (&mut message as &mut dyn Any).downcast_mut::<Option<Bytes>>() {
            *slot = Some(join(body));
        }
        return Ok(message.unwrap_or_default());
    }
    match &mut body[..] {
        [] => M::decode(Bytes::new()),
        [only] => M::decode(std::mem::take(only)),
        [first, second] => M::decode(std::mem::take(first).chain(std::mem::take(second))),
        _ => M::decode(join(body)),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn a_buffer_travels_as_it_is_and_comes_back_as_a_slice() {
        for len in [1, 127, 128, 4096, 1 << 20] {
            let big = Bytes::from(vec![7u8; len]);
            let body = encode(&big);
            assert_eq!(body.len(), 1);
            assert_eq!(body[0].as_ptr(), big.as_ptr(), "the buffer itself, not a copy");
            let decoded: Bytes = decode(body).unwrap();
            assert_eq!(decoded, big);
            assert_eq!(decoded.as_ptr(), big.as_ptr(), "decoded by slicing");
        }
        assert!(encode(&Bytes::new()).is_empty());
        assert_eq!(decode::<Bytes>(Payloads::new()).unwrap(), Bytes::new());
        // Split over several payloads (a forwarded or chunked body), it is joined.
        let parts = Payloads::from([Bytes::from_static(b"ab"), Bytes::from_static(b"c")]);
        assert_eq!(decode::<Bytes>(parts).unwrap(), "abc");
    }

    #[test]
    fn small_and_other_messages_are_one_payload_and_any_split_decodes() {
        assert_eq!(encode(&42u64).len(), 1);
        let whole = 300u64.encode_to_vec();
        for parts in [vec![], vec![whole.clone()], vec![whole[..1].to_vec(), whole[1..].to_vec()]] {
            let expected = if parts.is_empty() { 0 } else { 300 };
            let body: Payloads = parts.into_iter().map(Bytes::from).collect();
            assert_eq!(decode::<u64>(body).unwrap(), expected);
        }
        let three: Payloads = whole.iter().map(|b| Bytes::copy_from_slice(&[*b])).collect();
        assert_eq!(three.len(), 3);
        assert_eq!(decode::<u64>(three).unwrap(), 300);
    }
}
