//! Frame encoding: heads into a [`WriteBuf`], payloads queued without copying.

use bytes::{Buf, BufMut, Bytes};

use crate::hot::SMALL_ENVELOPE_MAX;
use crate::{
    Envelope, Frame, FrameKind, Limits, PAYLOAD_LEN_SIZE, PREFIX_LEN, WireError, WriteBuf, align,
};

/// Room for the prefix and one payload length before a small envelope in the head scratch.
const SMALL_PREFIX_ROOM: usize = PREFIX_LEN + PAYLOAD_LEN_SIZE;

/// Payloads up to this many bytes are copied into the head instead of being queued by
/// reference: copying a few bytes costs less than a separate I/O slice (and its refcount), and
/// a frame made of one contiguous chunk goes out with a plain write. Larger payloads are never
/// copied.
pub const INLINE_PAYLOAD_MAX: usize = 256;

/// Encodes frames into a [`WriteBuf`], refusing any frame the [`Limits`] forbid.
#[derive(Debug, Clone, Default)]
pub struct FrameEncoder {
    limits: Limits,
}

impl FrameEncoder {
    /// An encoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        FrameEncoder { limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Queues `frame` at the end of `out`. On error nothing is queued.
    #[inline]
    pub fn encode(&self, frame: Frame, out: &mut WriteBuf) -> Result<(), WireError> {
        // Calls and answers (a request or response, a small header, at most one payload) are
        // written in one pass into one stack buffer, prefix and envelope together, and copied
        // once; everything else goes the general way.
        if frame.payloads.len() <= 1 {
            let mut head = [0u8; SMALL_PREFIX_ROOM + SMALL_ENVELOPE_MAX];
            let room = &mut head[SMALL_PREFIX_ROOM..];
            if let Some(envelope_len) = frame.envelope.write_small(None, room) {
                let (kind, payload) = (frame.envelope.kind(), frame.payloads.first());
                let envelope_len =
                    self.align_envelope(&frame.envelope, None, payload, out, room, envelope_len);
                return self.encode_small(kind, payload, &mut head, envelope_len, out);
            }
        }
        self.encode_any(frame, out)
    }

    /// [`Self::encode`] from a borrowed frame, a request written under `request_id` in place
    /// of its own id (any other frame as it is): for a sender that keeps its frame (to send
    /// it again elsewhere) and gives each sending an id of its own, without a copy of the
    /// frame. Small payloads are copied as `encode` copies them; larger ones are queued by
    /// reference (one count each). On error nothing is queued.
    #[inline]
    pub fn encode_borrowed(
        &self,
        frame: &Frame,
        request_id: u64,
        out: &mut WriteBuf,
    ) -> Result<(), WireError> {
        if frame.payloads.len() <= 1 {
            let mut head = [0u8; SMALL_PREFIX_ROOM + SMALL_ENVELOPE_MAX];
            let room = &mut head[SMALL_PREFIX_ROOM..];
            if let Some(envelope_len) = frame.envelope.write_small(Some(request_id), room) {
                let (kind, payload) = (frame.envelope.kind(), frame.payloads.first());
                let envelope_len = self.align_envelope(
                    &frame.envelope,
                    Some(request_id),
                    payload,
                    out,
                    room,
                    envelope_len,
                );
                return self.encode_small(kind, payload, &mut head, envelope_len, out);
            }
        }
        // A large header, several payloads or another kind: rare enough for a copy (its
        // buffers counted, not copied).
        let mut frame = frame.clone();
        if let Envelope::Request(request) = &mut frame.envelope {
            request.id = request_id;
        }
        self.encode_any(frame, out)
    }

    /// The length of `envelope` as it is left in `room`, where it was written `envelope_len`
    /// bytes long: rewritten longer when the kernel would copy `payload` (queued after the
    /// head, behind what `out` holds) at a distance from its source that stalls the copy
    /// (`align.rs`), if the limits leave room for that. Small payloads, nearly every frame,
    /// pass with one comparison.
    #[inline]
    fn align_envelope(
        &self,
        envelope: &Envelope,
        request_id: Option<u64>,
        payload: Option<&Bytes>,
        out: &WriteBuf,
        room: &mut [u8],
        envelope_len: usize,
    ) -> usize {
        match payload {
            Some(payload) if payload.len() >= align::MIN_ALIGNED_PAYLOAD => {
                self.pad_envelope(envelope, request_id, payload, out, room, envelope_len)
            }
            _ => envelope_len,
        }
    }

    /// [`Self::align_envelope`] for a large payload: kept out of line, off the small frames'
    /// path.
    #[cold]
    #[inline(never)]
    fn pad_envelope(
        &self,
        envelope: &Envelope,
        request_id: Option<u64>,
        payload: &Bytes,
        out: &WriteBuf,
        room: &mut [u8],
        envelope_len: usize,
    ) -> usize {
        let head_len = SMALL_PREFIX_ROOM + envelope_len;
        let Some(extra) = align::envelope_padding(payload, out.remaining(), head_len) else {
            return envelope_len;
        };
        // One byte more than asked may be spent (`hot::write_padded`).
        if envelope_len + extra + 1 > self.limits.get_max_envelope_len() {
            return envelope_len;
        }
        // Nothing is written when it returns `None`: the envelope in `room` stays as it was.
        envelope.write_small_padded(request_id, extra, room).unwrap_or(envelope_len)
    }

    /// A `kind` frame of at most one payload whose envelope (`envelope_len` bytes) is written
    /// in `head` after [`SMALL_PREFIX_ROOM`] bytes: the prefix goes right before it, and the
    /// whole head (with a small payload) is queued with one copy.
    fn encode_small(
        &self,
        kind: FrameKind,
        payload: Option<&Bytes>,
        head: &mut [u8; SMALL_PREFIX_ROOM + SMALL_ENVELOPE_MAX],
        envelope_len: usize,
        out: &mut WriteBuf,
    ) -> Result<(), WireError> {
        let payload_len = payload.map_or(0, Bytes::len);
        // In `Limits::check_frame`'s order, so the same frame fails with the same error.
        self.limits.check_envelope(envelope_len as u64)?;
        self.limits.check_payload_count(usize::from(payload.is_some()))?;
        self.limits.check_payload_total(payload_len as u64)?;

        let start = match payload {
            Some(_) => {
                head[PREFIX_LEN..SMALL_PREFIX_ROOM]
                    .copy_from_slice(&(payload_len as u64).to_le_bytes());
                0
            }
            None => PAYLOAD_LEN_SIZE,
        };
        head[start] = kind as u8;
        head[start + 2] = u8::from(payload.is_some());
        head[start + 4..start + 8].copy_from_slice(&(envelope_len as u32).to_le_bytes());
        let head = &head[start..SMALL_PREFIX_ROOM + envelope_len];
        match payload {
            Some(payload) if payload.len() > INLINE_PAYLOAD_MAX => {
                out.head_space(head.len()).extend_from_slice(head);
                out.push(payload.clone());
            }
            payload => {
                let payload = payload.map_or(&[][..], |payload| &payload[..]);
                let space = out.head_space(head.len() + payload.len());
                space.extend_from_slice(head);
                space.extend_from_slice(payload);
            }
        }
        Ok(())
    }

    /// Any frame: checked, then its head encoded in place and its payloads queued.
    fn encode_any(&self, frame: Frame, out: &mut WriteBuf) -> Result<(), WireError> {
        let envelope_len = self.limits.check_frame(&frame)?;

        let head_len = PREFIX_LEN + PAYLOAD_LEN_SIZE * frame.payloads.len() + envelope_len;
        let head = out.head_space(head_len);
        // Kind, flags (none defined in version 1), payload count, envelope length, then the
        // length table: one copy for up to two payloads.
        let mut prefix = [0u8; PREFIX_LEN + 2 * PAYLOAD_LEN_SIZE];
        prefix[0] = frame.envelope.kind() as u8;
        prefix[2..4].copy_from_slice(&(frame.payloads.len() as u16).to_le_bytes());
        prefix[4..8].copy_from_slice(&(envelope_len as u32).to_le_bytes());
        let mut end = PREFIX_LEN;
        for payload in frame.payloads.iter().take(2) {
            prefix[end..end + 8].copy_from_slice(&(payload.len() as u64).to_le_bytes());
            end += PAYLOAD_LEN_SIZE;
        }
        head.put_slice(&prefix[..end]);
        for payload in frame.payloads.iter().skip(2) {
            head.put_u64_le(payload.len() as u64);
        }
        frame.envelope.encode_raw(head);
        for payload in frame.payloads {
            if payload.len() <= INLINE_PAYLOAD_MAX {
                out.head_space(payload.len()).extend_from_slice(&payload);
            } else {
                out.push(payload);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;
    use crate::pb;

    /// What `encode` gives, what the general path gives, and what `encode_borrowed` gives
    /// under the frame's own id, for the same frame.
    fn every_way(encoder: &FrameEncoder, frame: Frame) -> [Result<BytesMut, WireError>; 3] {
        let (mut fast, mut general, mut borrowed) =
            (WriteBuf::new(), WriteBuf::new(), WriteBuf::new());
        let id = match &frame.envelope {
            Envelope::Request(request) => request.id,
            _ => 0,
        };
        let lent = encoder.encode_borrowed(&frame, id, &mut borrowed).map(|()| borrowed.flatten());
        let fast = encoder.encode(frame.clone(), &mut fast).map(|()| fast.flatten());
        let general = encoder.encode_any(frame, &mut general).map(|()| general.flatten());
        [fast, general, lent]
    }

    proptest! {
        /// Calls and answers take the one-pass path; it writes the general path's bytes and
        /// refuses what it refuses, with the same error.
        #[test]
        fn the_one_pass_path_writes_and_refuses_as_the_general_one(
            id in any::<u64>(),
            header in proptest::collection::vec(any::<u8>(), 0..100),
            payload in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..400)),
            response in any::<bool>(),
            status in any::<i32>(),
            limit in 0usize..200,
        ) {
            let header = Bytes::from(header);
            let envelope = match response {
                true => Envelope::Response(pb::Response { id, header, more: id % 2 == 0, status }),
                false => Envelope::Request(pb::Request {
                    id, header, timeout_us: id / 3, stream_credit: status as u32,
                }),
            };
            let payloads: Vec<Bytes> = payload.into_iter().map(Bytes::from).collect();
            let frame = Frame::new(envelope, payloads);
            let [fast, general, lent] = every_way(&FrameEncoder::default(), frame.clone());
            let fast = fast.unwrap();
            prop_assert_eq!(&fast, &general.unwrap());
            prop_assert_eq!(&fast, &lent.unwrap());
            // Tight limits: the same frames are refused, with the same error.
            let tight = Limits::default()
                .max_envelope_len(limit)
                .max_payload_len(limit as u64)
                .max_payloads(limit % 2);
            let [fast, general, lent] = every_way(&FrameEncoder::new(tight), frame);
            let fast = fast.map_err(|e| e.to_string());
            prop_assert_eq!(&fast, &general.map_err(|e| e.to_string()));
            prop_assert_eq!(&fast, &lent.map_err(|e| e.to_string()));
        }

        /// A borrowed frame is written under the id given, in place of its own (a request's),
        /// and the frame lent is left as it was: the bytes are those of the frame with that id.
        #[test]
        fn a_borrowed_frame_is_written_under_the_id_given(
            own in any::<u64>(),
            given in any::<u64>(),
            header_len in 0usize..100,
            payloads in proptest::collection::vec(0usize..400, 0..3),
        ) {
            let header = Bytes::from(vec![7u8; header_len]);
            let payloads: Vec<Bytes> =
                payloads.into_iter().map(|n| Bytes::from(vec![1u8; n])).collect();
            let lent = Frame::request(own, header, payloads);
            let before = lent.clone();
            let mut borrowed = WriteBuf::new();
            FrameEncoder::default().encode_borrowed(&lent, given, &mut borrowed).unwrap();
            prop_assert_eq!(&lent, &before);
            let mut renamed = lent;
            if let Envelope::Request(request) = &mut renamed.envelope {
                request.id = given;
            }
            let mut owned = WriteBuf::new();
            FrameEncoder::default().encode(renamed, &mut owned).unwrap();
            prop_assert_eq!(borrowed.flatten(), owned.flatten());
        }
    }
}
