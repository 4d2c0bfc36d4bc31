//! Hand-written reading and writing of the two envelopes on every call's path, `Request` and
//! `Response`, and reading of the one on every one-way message's, `Notify`.
//!
//! Writing gives the bytes prost would write (fields in number order, defaults left out), from
//! two small stack buffers around the header: prost's generic path checks capacity and length
//! at every byte. A property test checks the bytes and lengths are prost's.
//!
//! prost's generic decoding of these costs more than the rest of a small frame's trip: each
//! `bytes` field is a slice of a slice of the read buffer, with a reference count taken and
//! dropped at every level. Here the envelope is read in place from the buffer, and the decoder
//! keeps the frame as that one buffer with where its header and payload lie
//! ([`crate::ReceivedFrame`]).
//!
//! Only the plain shape is read here: each known field at most once, with its own wire type,
//! varints of at most nine bytes. Anything else (unknown or repeated fields, longer varints,
//! malformed bytes) returns `None` and the caller decodes with prost instead, so what a
//! frame means, and every error, is prost's. A property test checks the two agree.

use std::ops::Range;

use bytes::{BufMut, Bytes};

use crate::{FrameKind, pb};

/// A hot envelope read in place: its fields, and where its `header` bytes lie in the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HotEnvelope {
    kind: FrameKind,
    pub(crate) id: u64,
    /// The `header` field's bytes, as a range of the envelope (empty when absent).
    pub(crate) header: Range<usize>,
    /// Field 3: a request's `timeout_us`, a response's `more`.
    pub(crate) third: u64,
    /// Field 4 of a request (`stream_credit`), field 5 of a response (`status`).
    pub(crate) last: u64,
}

impl HotEnvelope {
    /// Reads a `kind` envelope from `buf` if it is a hot kind in the plain shape: the fields
    /// in number order, as prost (and this runtime) writes them, each at most once.
    pub(crate) fn read(kind: FrameKind, buf: &[u8]) -> Option<HotEnvelope> {
        // The key of the last field, which differs between a request and a response (both
        // varints); a notify has a shape of its own.
        let last_key = match kind {
            FrameKind::Request => 4 << 3,
            FrameKind::Response => 5 << 3,
            FrameKind::Notify => return Self::read_notify(buf),
            _ => return None,
        };
        let mut hot = HotEnvelope { kind, id: 0, header: 0..0, third: 0, last: 0 };
        let mut pos = 0;
        // One pass in field order, no loop: a field out of order (or unknown, or repeated) is
        // left where it is, so `pos` stops short of the end and prost reads the envelope.
        if buf.first() == Some(&(1 << 3)) {
            pos = 1;
            hot.id = varint(buf, &mut pos)?;
        }
        if buf.get(pos) == Some(&(2 << 3 | 2)) {
            pos += 1;
            let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
            let end = pos.checked_add(len).filter(|&end| end <= buf.len())?;
            hot.header = pos..end;
            pos = end;
        }
        if buf.get(pos) == Some(&(3 << 3)) {
            pos += 1;
            hot.third = varint(buf, &mut pos)?;
        }
        if buf.get(pos) == Some(&last_key) {
            pos += 1;
            hot.last = varint(buf, &mut pos)?;
        }
        (pos == buf.len()).then_some(hot)
    }

    /// A notify, whose one field is its header (field 1).
    fn read_notify(buf: &[u8]) -> Option<HotEnvelope> {
        let mut hot =
            HotEnvelope { kind: FrameKind::Notify, id: 0, header: 0..0, third: 0, last: 0 };
        if buf.first() == Some(&(1 << 3 | 2)) {
            let mut pos = 1;
            let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
            let end = pos.checked_add(len).filter(|&end| end == buf.len())?;
            hot.header = pos..end;
        }
        (hot.header.end == buf.len()).then_some(hot)
    }

    /// The request, given the `header` bytes cut from the buffer (the narrowing cast is
    /// prost's own for a `uint32` field).
    pub(crate) fn into_request(self, header: Bytes) -> pb::Request {
        pb::Request { id: self.id, header, timeout_us: self.third, stream_credit: self.last as u32 }
    }

    /// The response, given the `header` bytes (prost's casts for `bool` and enum fields).
    pub(crate) fn into_response(self, header: Bytes) -> pb::Response {
        pb::Response { id: self.id, header, more: self.third != 0, status: self.last as i32 }
    }

    /// A notify, given its `header` bytes.
    pub(crate) fn into_notify(header: Bytes) -> pb::Notify {
        pb::Notify { header }
    }

    /// Which of the three it is.
    pub(crate) fn kind(&self) -> FrameKind {
        self.kind
    }
}

/// The length of a request as prost writes it.
pub(crate) fn request_len(request: &pb::Request) -> usize {
    scalar_len(request.id)
        + header_len(&request.header)
        + scalar_len(request.timeout_us)
        + scalar_len(request.stream_credit.into())
}

/// The length of a response as prost writes it.
pub(crate) fn response_len(response: &pb::Response) -> usize {
    scalar_len(response.id)
        + header_len(&response.header)
        + scalar_len(response.more.into())
        + scalar_len(enum_value(response.status))
}

/// Appends `request` as prost writes it.
pub(crate) fn write_request(request: &pb::Request, dst: &mut impl BufMut) {
    let mut buf = [0u8; SMALL_ENVELOPE_MAX];
    match write_small(&Fields::of_request(request), &mut buf) {
        Some(len) => dst.put_slice(&buf[..len]),
        None => write_large(&Fields::of_request(request), dst),
    }
}

/// Appends `response` as prost writes it.
pub(crate) fn write_response(response: &pb::Response, dst: &mut impl BufMut) {
    let mut buf = [0u8; SMALL_ENVELOPE_MAX];
    match write_small(&Fields::of_response(response), &mut buf) {
        Some(len) => dst.put_slice(&buf[..len]),
        None => write_large(&Fields::of_response(response), dst),
    }
}

/// Writes `request`, under the id `id`, into `buf` when its header is at most
/// [`SMALL_HEADER`] bytes: its length. `None` otherwise (nothing written).
#[inline]
pub(crate) fn write_small_request(
    request: &pb::Request,
    id: u64,
    buf: &mut SmallEnvelope,
) -> Option<usize> {
    write_small(&Fields { id, ..Fields::of_request(request) }, buf)
}

/// [`write_small_request`] for a response.
#[inline]
pub(crate) fn write_small_response(
    response: &pb::Response,
    buf: &mut SmallEnvelope,
) -> Option<usize> {
    write_small(&Fields::of_response(response), buf)
}

/// [`write_small_request`], `extra` bytes longer (see [`write_padded`]).
pub(crate) fn write_padded_request(
    request: &pb::Request,
    id: u64,
    extra: usize,
    buf: &mut SmallEnvelope,
) -> Option<usize> {
    write_padded(&Fields { id, ..Fields::of_request(request) }, extra, buf)
}

/// [`write_small_response`], `extra` bytes longer (see [`write_padded`]).
pub(crate) fn write_padded_response(
    response: &pb::Response,
    extra: usize,
    buf: &mut SmallEnvelope,
) -> Option<usize> {
    write_padded(&Fields::of_response(response), extra, buf)
}

/// Headers up to this long are written with the fields around them in one copy.
const SMALL_HEADER: usize = 64;

/// The most bytes a hot envelope's fields other than the header's bytes take: a key and a
/// ten-byte varint for each of three scalars, the header's key and length.
pub(crate) const FIXED_FIELDS_MAX: usize = 3 * 11 + 11;

/// The most bytes an envelope with a small header takes: a key and a ten-byte varint per
/// scalar field, the header's key, length and bytes.
pub(crate) const SMALL_ENVELOPE_MAX: usize = FIXED_FIELDS_MAX + SMALL_HEADER;

/// Room for an envelope with a small header: a fixed length, so that the writer's bounds
/// checks compare against a constant.
pub(crate) type SmallEnvelope = [u8; SMALL_ENVELOPE_MAX];

/// A hot envelope's fields in number order: a varint (1), the header (2), two varints.
struct Fields<'a> {
    id: u64,
    header: &'a [u8],
    after: [(u8, u64); 2],
}

impl<'a> Fields<'a> {
    #[inline]
    fn of_request(request: &'a pb::Request) -> Self {
        let after = [(3, request.timeout_us), (4, request.stream_credit.into())];
        Fields { id: request.id, header: &request.header, after }
    }

    #[inline]
    fn of_response(response: &'a pb::Response) -> Self {
        let after = [(3, response.more.into()), (5, enum_value(response.status))];
        Fields { id: response.id, header: &response.header, after }
    }
}

/// Writes `fields` into `buf`, leaving out zeros as prost does, if the header is small: the
/// length written.
#[inline]
fn write_small(fields: &Fields<'_>, buf: &mut SmallEnvelope) -> Option<usize> {
    let header = fields.header;
    if header.len() > SMALL_HEADER {
        return None;
    }
    let mut len = put_field(buf, 1, fields.id);
    len = put_header(buf, len, header);
    for (field, value) in fields.after {
        len += put_field(&mut buf[len..], field, value);
    }
    Some(len)
}

/// Writes the header field at `len` in `buf` unless `header` is empty (then nothing, as
/// prost): the length written up to its end. (Written in place at `len`: a helper taking the
/// rest of `buf` as a slice of its own cost the 64 B wire trip 14 instructions.)
#[inline(always)]
fn put_header(buf: &mut [u8], mut len: usize, header: &[u8]) -> usize {
    if !header.is_empty() {
        buf[len] = 2 << 3 | 2;
        len += 1 + put_varint(&mut buf[len + 1..], header.len() as u64);
        copy_short(&mut buf[len..len + header.len()], header);
        len += header.len();
    }
    len
}

/// `dst.copy_from_slice(src)`, a header of 4 to 16 bytes (the common one) copied with two
/// fixed-size moves that may overlap rather than a call to `memcpy`, which costs more than
/// the copy at this size.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    match n {
        8..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        _ => dst.copy_from_slice(src),
    }
}

/// The longest varint a padded field is written with: the longest [`HotEnvelope::read`] takes.
const PADDED_VARINT_MAX: usize = 9;

/// [`write_small`], spending `extra` more bytes on the same message: varints written longer
/// than they need (continuation bits over zero bits) and fields whose value is zero written
/// explicitly. Both are valid protobuf that prost, and [`HotEnvelope::read`], read as the same
/// message. It spends at most what the three varint fields can take (up to 28 bytes), and one
/// byte more than `extra` when the last byte left would have to be a field of its own.
fn write_padded(fields: &Fields<'_>, extra: usize, buf: &mut SmallEnvelope) -> Option<usize> {
    let header = fields.header;
    if header.len() > SMALL_HEADER {
        return None;
    }
    let mut left = extra;
    let mut len = put_padded_field(buf, 1, fields.id, &mut left);
    len = put_header(buf, len, header);
    for (field, value) in fields.after {
        len += put_padded_field(&mut buf[len..], field, value, &mut left);
    }
    Some(len)
}

/// [`put_field`], taking up to `left` more bytes (one more when a zero field is written for
/// a single byte left) and counting them off `left`.
fn put_padded_field(dst: &mut [u8], field: u8, value: u64, left: &mut usize) -> usize {
    let natural = varint_len(value);
    if *left == 0 || natural >= PADDED_VARINT_MAX {
        return put_field(dst, field, value);
    }
    let (varint, grown) = match value {
        // Absent by default: written explicitly it takes a key and at least one byte.
        0 => {
            let varint = left.saturating_sub(1).clamp(1, PADDED_VARINT_MAX);
            (varint, 1 + varint)
        }
        _ => {
            let varint = (natural + *left).min(PADDED_VARINT_MAX);
            (varint, varint - natural)
        }
    };
    *left = left.saturating_sub(grown);
    dst[0] = field << 3;
    1 + put_varint_exact(&mut dst[1..], value, varint)
}

/// Writes `value` as a varint of exactly `len` bytes (at least its own length): its low bits
/// first, then continuation bytes of zero bits. Returns `len`.
fn put_varint_exact(dst: &mut [u8], mut value: u64, len: usize) -> usize {
    for byte in &mut dst[..len - 1] {
        *byte = (value as u8 & 0x7f) | 0x80;
        value >>= 7;
    }
    dst[len - 1] = value as u8;
    len
}

/// Appends `fields` with a large header: the fields before it, the header by itself, then the
/// fields after it.
fn write_large(fields: &Fields<'_>, dst: &mut impl BufMut) {
    let mut buf = [0u8; 3 * 11];
    let mut len = put_field(&mut buf, 1, fields.id);
    buf[len] = 2 << 3 | 2;
    len += 1 + put_varint(&mut buf[len + 1..], fields.header.len() as u64);
    dst.put_slice(&buf[..len]);
    dst.put_slice(fields.header);
    len = 0;
    for (field, value) in fields.after {
        len += put_field(&mut buf[len..], field, value);
    }
    dst.put_slice(&buf[..len]);
}

/// Writes the key and value of a varint field unless the value is zero; returns the length.
#[inline]
fn put_field(dst: &mut [u8], field: u8, value: u64) -> usize {
    if value == 0 {
        return 0;
    }
    dst[0] = field << 3;
    1 + put_varint(&mut dst[1..], value)
}

/// Writes `value` as a varint; returns its length.
#[inline]
fn put_varint(dst: &mut [u8], mut value: u64) -> usize {
    let mut len = 0;
    while value >= 0x80 {
        dst[len] = (value as u8) | 0x80;
        value >>= 7;
        len += 1;
    }
    dst[len] = value as u8;
    len + 1
}

/// An enum field's value on the wire: a negative one is sign-extended to ten bytes.
fn enum_value(value: i32) -> u64 {
    i64::from(value) as u64
}

/// Bytes of a varint field with this value: none for zero.
fn scalar_len(value: u64) -> usize {
    match value {
        0 => 0,
        _ => 1 + varint_len(value),
    }
}

/// Bytes of the header field: none when empty.
fn header_len(header: &[u8]) -> usize {
    match header.len() {
        0 => 0,
        len => 1 + varint_len(len as u64) + len,
    }
}

/// Bytes of `value` as a varint: seven bits per byte.
fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads a varint of at most nine bytes at `pos` (a longer one, or one cut short, is prost's
/// to judge), moving `pos` past it.
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    // Keys and small values are one byte.
    let first = *buf.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(first.into());
    }
    let mut value = 0u64;
    for (i, &byte) in buf.get(*pos..)?.iter().take(9).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *pos += i + 1;
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    /// What the tests compare: either envelope.
    #[derive(Debug, PartialEq)]
    enum Envelope {
        Request(pb::Request),
        Response(pb::Response),
        Notify(pb::Notify),
    }

    fn read_back(kind: FrameKind, bytes: &[u8]) -> Option<Envelope> {
        let hot = HotEnvelope::read(kind, bytes)?;
        let header = Bytes::copy_from_slice(&bytes[hot.header.clone()]);
        Some(match hot.kind() {
            FrameKind::Request => Envelope::Request(hot.into_request(header)),
            FrameKind::Notify => Envelope::Notify(HotEnvelope::into_notify(header)),
            _ => Envelope::Response(hot.into_response(header)),
        })
    }

    #[test]
    fn a_request_prost_wrote_is_read_the_same() {
        let request = pb::Request {
            id: 300,
            header: Bytes::from_static(b"hi"),
            timeout_us: 7,
            stream_credit: 9,
        };
        let bytes = request.encode_to_vec();
        assert_eq!(read_back(FrameKind::Request, &bytes), Some(Envelope::Request(request)));
    }

    #[test]
    fn a_response_prost_wrote_is_read_the_same() {
        let response = pb::Response {
            id: u64::MAX >> 1,
            header: Bytes::from_static(b"x"),
            more: true,
            status: 3,
        };
        let bytes = response.encode_to_vec();
        assert_eq!(read_back(FrameKind::Response, &bytes), Some(Envelope::Response(response)));
    }

    /// One protobuf field as bytes: a key and a value of its wire type.
    fn field() -> impl Strategy<Value = Vec<u8>> {
        let varint_bytes = prop_oneof![
            any::<u64>().prop_map(|v| {
                let mut b = Vec::new();
                prost::encoding::encode_varint(v, &mut b);
                b
            }),
            // Non-minimal and over-long varints.
            proptest::collection::vec(0x80u8..=0xff, 0..11).prop_map(|mut b| {
                b.push(0);
                b
            }),
        ];
        // Mostly the keys of the hot envelopes' fields, sometimes any.
        let key = prop_oneof![
            8 => prop::sample::select(vec![0x08u64, 0x0a, 0x12, 0x18, 0x20, 0x28]),
            1 => (0u64..8, 0u64..6).prop_map(|(field, wire_type)| (field << 3) | wire_type),
        ];
        (key, varint_bytes, proptest::collection::vec(any::<u8>(), 0..12)).prop_map(
            |(key, varint, bytes)| {
                let mut out = Vec::new();
                prost::encoding::encode_varint(key, &mut out);
                match key & 7 {
                    0 => out.extend(varint),
                    2 => {
                        prost::encoding::encode_varint(bytes.len() as u64, &mut out);
                        out.extend(bytes);
                    }
                    _ => out.extend(bytes),
                }
                out
            },
        )
    }

    proptest! {
        /// Whatever the fast path reads, prost reads the same.
        #[test]
        fn what_is_read_here_is_what_prost_reads(
            fields in proptest::collection::vec(field(), 0..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes: Vec<u8> = fields.concat();
            // Sometimes cut short.
            if cut.index(4) == 0 {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            if let Some(hot) = read_back(FrameKind::Request, &bytes) {
                let prost = pb::Request::decode(&bytes[..]).map(Envelope::Request);
                prop_assert_eq!(Some(hot), prost.ok());
            }
            if let Some(hot) = read_back(FrameKind::Response, &bytes) {
                let prost = pb::Response::decode(&bytes[..]).map(Envelope::Response);
                prop_assert_eq!(Some(hot), prost.ok());
            }
            if let Some(hot) = read_back(FrameKind::Notify, &bytes) {
                let prost = pb::Notify::decode(&bytes[..]).map(Envelope::Notify);
                prop_assert_eq!(Some(hot), prost.ok());
            }
        }

        /// Everything this runtime sends takes the fast path.
        #[test]
        fn what_prost_writes_is_read_here(
            id in 0..u64::MAX >> 1, header in proptest::collection::vec(any::<u8>(), 0..40),
            third in 0..u64::MAX >> 1, last in any::<u32>(), more in any::<bool>(), status in 0..5i32,
        ) {
            let request = pb::Request { id, header: header.clone().into(), timeout_us: third, stream_credit: last };
            let bytes = request.encode_to_vec();
            prop_assert_eq!(read_back(FrameKind::Request, &bytes), Some(Envelope::Request(request)));
            let response = pb::Response { id, header: header.clone().into(), more, status };
            let bytes = response.encode_to_vec();
            prop_assert_eq!(read_back(FrameKind::Response, &bytes), Some(Envelope::Response(response)));
            let notify = pb::Notify { header: header.into() };
            let bytes = notify.encode_to_vec();
            prop_assert_eq!(read_back(FrameKind::Notify, &bytes), Some(Envelope::Notify(notify)));
        }
    }

    proptest! {
        /// The bytes written here, and their length, are prost's.
        #[test]
        fn what_is_written_here_is_what_prost_writes(
            id in any::<u64>(), header in proptest::collection::vec(any::<u8>(), 0..200),
            third in any::<u64>(), last in any::<u32>(), more in any::<bool>(), status in any::<i32>(),
        ) {
            let request = pb::Request { id, header: header.clone().into(), timeout_us: third, stream_credit: last };
            let mut bytes = BytesMut::new();
            write_request(&request, &mut bytes);
            prop_assert_eq!(&bytes[..], &request.encode_to_vec()[..]);
            prop_assert_eq!(request_len(&request), request.encoded_len());
            let response = pb::Response { id, header: header.into(), more, status };
            let mut bytes = BytesMut::new();
            write_response(&response, &mut bytes);
            prop_assert_eq!(&bytes[..], &response.encode_to_vec()[..]);
            prop_assert_eq!(response_len(&response), response.encoded_len());
        }
    }

    #[test]
    fn zeros_and_extremes_are_written_as_prost_writes_them() {
        for id in [0, 1, 127, 128, u64::MAX] {
            for status in [0, 1, -1, i32::MIN, i32::MAX] {
                let response = pb::Response { id, header: Bytes::new(), more: id == 1, status };
                let mut bytes = BytesMut::new();
                write_response(&response, &mut bytes);
                assert_eq!(&bytes[..], &response.encode_to_vec()[..]);
                assert_eq!(response_len(&response), response.encoded_len());
            }
        }
    }

    #[test]
    fn other_shapes_are_left_to_prost() {
        // A ten-byte varint (u64::MAX), a repeated field, an unknown field, a cut-short header,
        // a field of the other hot kind, and a cold kind.
        let max_id = pb::Request { id: u64::MAX, ..Default::default() }.encode_to_vec();
        assert_eq!(HotEnvelope::read(FrameKind::Request, &max_id), None);
        assert_eq!(HotEnvelope::read(FrameKind::Request, &[8, 1, 8, 2]), None);
        assert_eq!(HotEnvelope::read(FrameKind::Request, &[8, 1, 0x30, 1]), None);
        assert_eq!(HotEnvelope::read(FrameKind::Request, &[0x12, 5, 1, 2]), None);
        assert_eq!(HotEnvelope::read(FrameKind::Request, &[0x28, 1]), None);
        assert_eq!(HotEnvelope::read(FrameKind::Ping, &[]), None);
        // A notify's header repeated, or followed by an unknown field.
        assert_eq!(HotEnvelope::read(FrameKind::Notify, &[0x0a, 1, 7, 0x0a, 0]), None);
        assert_eq!(HotEnvelope::read(FrameKind::Notify, &[0x0a, 0, 0x10, 1]), None);
    }
}
