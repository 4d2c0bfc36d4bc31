//! The header of every call and tell, `Request { call | tell: Delivery { uid, message } }`,
//! encoded and decoded by hand on the hot path: the bytes are exactly prost's (the tests check
//! both ways), but a call builds its header in one buffer and the serving pool reads the uid and
//! message name as slices of the received header, without allocating. Anything else (other
//! kinds, unusual field order or repeats) goes through prost.

use bytes::Bytes;
use prost::encoding::{
    WireType, decode_varint, encode_key, encode_varint, encoded_len_varint, key_len,
};

/// Field numbers of `Request.kind` and of `Delivery`.
const CALL: u32 = 1;
const TELL: u32 = 2;
const UID: u32 = 1;
const MESSAGE: u32 = 2;
const HOPS: u32 = 3;

/// A call (`tell == false`) or tell for `message` on actor `uid`, forwarded `hops` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivery<'a> {
    pub(crate) tell: bool,
    pub(crate) uid: &'a str,
    pub(crate) message: &'a str,
    pub(crate) hops: u32,
}

fn hops_len(hops: u32) -> usize {
    if hops == 0 { 0 } else { key_len(HOPS) + encoded_len_varint(u64::from(hops)) }
}

fn text_len(tag: u32, text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(text.len() as u64) + text.len()
    }
}

fn put_text(tag: u32, text: &str, buf: &mut Vec<u8>) {
    if !text.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(text.len() as u64, buf);
        buf.extend_from_slice(text.as_bytes());
    }
}

/// The request header of `delivery`.
pub(crate) fn encode(delivery: Delivery<'_>) -> Bytes {
    let kind = if delivery.tell { TELL } else { CALL };
    let inner =
        text_len(UID, delivery.uid) + text_len(MESSAGE, delivery.message) + hops_len(delivery.hops);
    let mut buf = Vec::with_capacity(key_len(kind) + encoded_len_varint(inner as u64) + inner);
    encode_key(kind, WireType::LengthDelimited, &mut buf);
    encode_varint(inner as u64, &mut buf);
    put_text(UID, delivery.uid, &mut buf);
    put_text(MESSAGE, delivery.message, &mut buf);
    if delivery.hops > 0 {
        encode_key(HOPS, WireType::Varint, &mut buf);
        encode_varint(u64::from(delivery.hops), &mut buf);
    }
    buf.into()
}

/// A call or tell as it arrived: uid and message name are the header's bytes, unchecked. The
/// pool's maps are looked up by bytes, so the hot path needs no UTF-8 check: a name that is
/// not UTF-8 is simply not found, and [`Received::text`] checks it where text is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received<'a> {
    pub(crate) tell: bool,
    pub(crate) uid: &'a [u8],
    pub(crate) message: &'a [u8],
    pub(crate) hops: u32,
}

impl<'a> Received<'a> {
    /// As text, to send on: `None` if the uid or the message name is not UTF-8.
    pub(crate) fn text(self) -> Option<Delivery<'a>> {
        let (uid, message) =
            (std::str::from_utf8(self.uid).ok()?, std::str::from_utf8(self.message).ok()?);
        Some(Delivery { tell: self.tell, uid, message, hops: self.hops })
    }
}

/// Reads a varint off the front of `buf`: a one-byte one (nearly every key and length in a
/// header) in place, a longer one with prost's generic reader.
#[inline]
fn varint(buf: &mut &[u8]) -> Option<u64> {
    match buf.first() {
        Some(&byte) if byte < 0x80 => {
            *buf = &buf[1..];
            Some(byte.into())
        }
        _ => decode_varint(buf).ok(),
    }
}

/// Reads a length-delimited field's key and body off the front of `buf`.
fn field<'a>(buf: &mut &'a [u8]) -> Option<(u32, &'a [u8])> {
    let key = varint(buf)?;
    if key & 7 != WireType::LengthDelimited as u64 || key >> 3 > u64::from(u32::MAX) {
        return None;
    }
    let len = usize::try_from(varint(buf)?).ok()?;
    if len > buf.len() {
        return None;
    }
    let (body, rest) = buf.split_at(len);
    *buf = rest;
    Some(((key >> 3) as u32, body))
}

/// The call or tell in `header`, if it is one in the plain layout `encode` writes (fields in
/// any order, repeats resolved last-wins as prost does). `None`: decode it with prost.
pub(crate) fn decode(header: &[u8]) -> Option<Received<'_>> {
    exactly_as_encoded(header).or_else(|| decode_fields(header))
}

/// The call or tell in `header` if it is laid out exactly as [`encode`] writes one with a uid
/// and a message name shorter than 128 bytes and no hops (nearly every header): read by
/// position, without a field loop.
#[inline]
fn exactly_as_encoded(header: &[u8]) -> Option<Received<'_>> {
    const CALL_KEY: u8 = (CALL << 3) as u8 | WireType::LengthDelimited as u8;
    const TELL_KEY: u8 = (TELL << 3) as u8 | WireType::LengthDelimited as u8;
    const UID_KEY: u8 = (UID << 3) as u8 | WireType::LengthDelimited as u8;
    const MESSAGE_KEY: u8 = (MESSAGE << 3) as u8 | WireType::LengthDelimited as u8;
    let [kind @ (CALL_KEY | TELL_KEY), len, UID_KEY, uid_len, rest @ ..] = header else {
        return None;
    };
    let (len, uid_len) = (usize::from(*len), usize::from(*uid_len));
    if len >= 0x80 || uid_len >= 0x80 || len != header.len() - 2 || uid_len > rest.len() {
        return None;
    }
    let (uid, rest) = rest.split_at(uid_len);
    let [MESSAGE_KEY, message_len, message @ ..] = rest else { return None };
    if usize::from(*message_len) != message.len() || *message_len >= 0x80 {
        return None;
    }
    Some(Received { tell: *kind == TELL_KEY, uid, message, hops: 0 })
}

/// [`decode`] field by field.
fn decode_fields(header: &[u8]) -> Option<Received<'_>> {
    let mut outer = header;
    let (kind, mut inner) = field(&mut outer)?;
    if !outer.is_empty() || !(kind == CALL || kind == TELL) {
        return None;
    }
    let (mut uid, mut message, mut hops): (&[u8], &[u8], u32) = (b"", b"", 0);
    while !inner.is_empty() {
        if inner[0] == (HOPS << 3) as u8 | WireType::Varint as u8 {
            inner = &inner[1..];
            hops = u32::try_from(varint(&mut inner)?).ok()?;
            continue;
        }
        match field(&mut inner)? {
            (UID, text) => uid = text,
            (MESSAGE, text) => message = text,
            _ => return None,
        }
    }
    Some(Received { tell: kind == TELL, uid, message, hops })
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::pb::{self, request::Kind};

    fn prost_bytes(tell: bool, uid: &str, message: &str, hops: u32) -> Vec<u8> {
        let delivery = pb::Delivery { uid: uid.to_owned(), message: message.to_owned(), hops };
        let kind = if tell { Kind::Tell(delivery) } else { Kind::Call(delivery) };
        pb::Request { kind: Some(kind) }.encode_to_vec()
    }

    #[test]
    fn encodes_exactly_what_prost_encodes() {
        let long = "u".repeat(300);
        for (tell, uid, message, hops) in [
            (false, "counter-1", "Add", 0),
            (true, "x", "Bump", 1),
            (false, "", "", 0),
            (true, &*long, "M", 300),
        ] {
            let ours = encode(Delivery { tell, uid, message, hops });
            assert_eq!(ours.as_ref(), prost_bytes(tell, uid, message, hops).as_slice());
            let decoded = decode(&ours).and_then(Received::text);
            assert_eq!(decoded, Some(Delivery { tell, uid, message, hops }));
        }
    }

    proptest::proptest! {
        /// Read by position or field by field, a header means the same: for what `encode`
        /// writes (any uid, name and hops) and for those bytes mangled.
        #[test]
        fn the_positional_read_agrees_with_the_field_loop(
            tell in proptest::prelude::any::<bool>(),
            uid in "[a-z0-9-]{0,140}",
            message in "[A-Za-z]{0,140}",
            hops in 0u32..3,
            flips in proptest::collection::vec((0usize..300, proptest::prelude::any::<u8>()), 0..3),
            cut in 0usize..300,
        ) {
            let mut header = encode(Delivery { tell, uid: &uid, message: &message, hops }).to_vec();
            proptest::prop_assert_eq!(
                decode(&header).and_then(Received::text),
                Some(Delivery { tell, uid: &uid, message: &message, hops })
            );
            for (at, byte) in flips {
                if let Some(place) = header.get_mut(at) {
                    *place ^= byte;
                }
            }
            header.truncate(cut);
            proptest::prop_assert_eq!(decode(&header), decode_fields(&header));
        }
    }

    #[test]
    fn leaves_everything_else_to_prost() {
        let create = pb::Request {
            kind: Some(Kind::Create(pb::Create {
                type_name: "T".into(),
                uid: String::new(),
                placement: None,
            })),
        };
        for odd in [
            create.encode_to_vec(),
            vec![0xff, 0xff, 0xff],
            vec![0x0a, 0x05, 0x0a],       // length beyond the end
            vec![0x0a, 0x02, 0x0a, 0x01], // inner length beyond the end
            vec![0x0a, 0x02, 0x20, 0x01], // an unknown varint field inside
        ] {
            assert_eq!(decode(&odd), None, "{odd:?}");
        }
        // A uid that is not UTF-8 is read as it is (and found nowhere); as text, it is refused.
        let not_utf8 = decode(&[0x0a, 0x03, 0x0a, 0x01, 0xff]).expect("a call");
        assert_eq!(not_utf8.uid, [0xff]);
        assert_eq!(not_utf8.text(), None);
        // Repeated fields: last wins, as with prost.
        let repeated = [0x0a, 0x06, 0x0a, 0x01, b'a', 0x0a, 0x01, b'b'];
        assert_eq!(decode(&repeated).map(|d| d.uid), Some(&b"b"[..]));
        let parsed = pb::Request::decode(&repeated[..]).unwrap();
        assert!(matches!(parsed.kind, Some(Kind::Call(d)) if d.uid == "b"));
    }
}
