//! Message bodies: the prost encoding of a message, reply or init value, carried as the
//! frame's payloads. A large `bytes::Bytes` message (or reply) travels as its few prefix bytes
//! plus the buffer itself, so it is never copied on its way: the socket writer sends it with
//! `writev`, the reader hands it out as a slice of what it read, and prost decodes the chained
//! payloads by slicing too.

use std::any::Any;

use bytes::{Buf, Bytes, BytesMut};
use prost::encoding::{WireType, encode_key, encode_varint};
use xoscar_wire::Payloads;

/// From this size on a `Bytes` body goes by reference; below it, one copy is cheaper than a
/// second payload.
const BY_REFERENCE: usize = 4096;

/// The payloads of `message`.
pub(crate) fn encode<M: prost::Message + 'static>(message: &M) -> Payloads {
    if let Some(bytes) = (message as &dyn Any).downcast_ref::<Bytes>()
        && bytes.len() >= BY_REFERENCE
    {
        // What prost writes for a `Bytes` message (protobuf's BytesValue): field 1, its
        // length, the bytes.
        let mut prefix = Vec::with_capacity(11);
        encode_key(1, WireType::LengthDelimited, &mut prefix);
        encode_varint(bytes.len() as u64, &mut prefix);
        return Payloads::from_vec(vec![prefix.into(), bytes.clone()]);
    }
    Payloads::from_buf([message.encode_to_vec().into()])
}

/// The payloads as one buffer: the only one as it is, several joined (copied).
pub(crate) fn join(body: Payloads) -> Bytes {
    let mut parts = body.into_iter();
    match (parts.next(), parts.next()) {
        (None, _) => Bytes::new(),
        (Some(only), None) => only,
        (Some(first), Some(second)) => {
            let mut joined = BytesMut::from(&first[..]);
            joined.extend_from_slice(&second);
            for part in parts {
                joined.extend_from_slice(&part);
            }
            joined.freeze()
        }
    }
}

/// A message from its payloads (read as one byte sequence).
pub(crate) fn decode<M: prost::Message + Default>(body: Payloads) -> Result<M, prost::DecodeError> {
    let mut parts = body.into_iter();
    match (parts.next(), parts.next()) {
        (None, _) => M::decode(Bytes::new()),
        (Some(only), None) => M::decode(only),
        (Some(first), Some(second)) => {
            let rest: Vec<Bytes> = parts.collect();
            if rest.is_empty() {
                return M::decode(first.chain(second));
            }
            let mut joined = BytesMut::new();
            for part in [first, second].into_iter().chain(rest) {
                joined.extend_from_slice(&part);
            }
            M::decode(joined.freeze())
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn a_large_buffer_goes_by_reference_and_decodes_as_prost_wrote_it() {
        let big = Bytes::from(vec![7u8; 1 << 20]);
        let body = encode(&big);
        assert_eq!(body.len(), 2);
        assert_eq!(body[1].as_ptr(), big.as_ptr(), "the buffer itself, not a copy");
        let joined: Vec<u8> = body.iter().flat_map(|part| part.iter().copied()).collect();
        assert_eq!(joined, big.encode_to_vec(), "the same bytes prost writes");
        let decoded: Bytes = decode(body).unwrap();
        assert_eq!(decoded, big);
        assert_eq!(decoded.as_ptr(), big.as_ptr(), "decoded by slicing");
    }

    #[test]
    fn small_and_other_messages_are_one_payload_and_any_split_decodes() {
        let small = Bytes::from_static(b"tiny");
        assert_eq!(encode(&small).len(), 1);
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
