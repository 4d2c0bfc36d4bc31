//! Frame encoding: heads into a [`WriteBuf`], payloads queued without copying.

use bytes::{Buf, BufMut, Bytes};

use crate::hot::{SMALL_ENVELOPE_MAX, SmallEnvelope};
use crate::{Envelope, Frame, Limits, PAYLOAD_LEN_SIZE, PREFIX_LEN, WireError, WriteBuf, align};

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
        // written in one pass straight into the write queue's block, prefix, envelope and a
        // small payload together; everything else goes the general way.
        if frame.payloads.len() <= 1
            && let Some(done) =
                self.encode_small(&frame.envelope, None, frame.payloads.first(), out)
        {
            return done;
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
        if frame.payloads.len() <= 1
            && let Some(done) =
                self.encode_small(&frame.envelope, Some(request_id), frame.payloads.first(), out)
        {
            return done;
        }
        // A large header, several payloads or another kind: rare enough for a copy (its
        // buffers counted, not copied).
        let mut frame = frame.clone();
        if let Envelope::Request(request) = &mut frame.envelope {
            request.id = request_id;
        }
        self.encode_any(frame, out)
    }

    /// A frame of `envelope` and at most one payload, its request written under
    /// `request_id` if given, in one pass: the envelope straight into `out`'s room after
    /// the prefix and length, then the prefix before it and a small payload after it, and
    /// the whole queued at once. `None` (nothing queued) when the envelope is not a request
    /// or response with a small header: the general path takes it.
    #[inline]
    fn encode_small(
        &self,
        envelope: &Envelope,
        request_id: Option<u64>,
        payload: Option<&Bytes>,
        out: &mut WriteBuf,
    ) -> Option<Result<(), WireError>> {
        let payload_len = payload.map_or(0, Bytes::len);
        let copied_len = match payload_len > INLINE_PAYLOAD_MAX {
            true => 0,
            false => payload_len,
        };
        let envelope_at = match payload {
            Some(_) => SMALL_PREFIX_ROOM,
            None => PREFIX_LEN,
        };
        // What is queued before this frame, for aligning a large payload (`align.rs`).
        let queued = match payload_len >= align::MIN_ALIGNED_PAYLOAD {
            true => out.remaining(),
            false => 0,
        };
        let room = out.room(envelope_at + SMALL_ENVELOPE_MAX + copied_len);
        let envelope_room: &mut SmallEnvelope = (&mut room
            [envelope_at..envelope_at + SMALL_ENVELOPE_MAX])
            .try_into()
            .expect("as much room was asked for");
        let envelope_len = envelope.write_small(request_id, envelope_room)?;
        let envelope_len = match payload {
            Some(payload) if payload_len >= align::MIN_ALIGNED_PAYLOAD => self.pad_envelope(
                envelope,
                request_id,
                payload,
                queued,
                envelope_room,
                envelope_len,
            ),
            _ => envelope_len,
        };
        // In `Limits::check_frame`'s order, so the same frame fails with the same error.
        if let Err(error) = self.check_small(envelope_len, payload.is_some(), payload_len) {
            return Some(Err(error));
        }
        room[0] = envelope.kind() as u8;
        room[1] = 0;
        room[2..4].copy_from_slice(&u16::from(payload.is_some()).to_le_bytes());
        room[4..8].copy_from_slice(&(envelope_len as u32).to_le_bytes());
        if payload.is_some() {
            room[PREFIX_LEN..SMALL_PREFIX_ROOM]
                .copy_from_slice(&(payload_len as u64).to_le_bytes());
        }
        let head_len = envelope_at + envelope_len;
        match payload {
            Some(payload) if payload_len > INLINE_PAYLOAD_MAX => {
                out.commit(head_len);
                out.push(payload.clone());
            }
            Some(payload) => {
                room[head_len..head_len + payload_len].copy_from_slice(payload);
                out.commit(head_len + payload_len);
            }
            None => out.commit(head_len),
        }
        Some(Ok(()))
    }

    /// The limits' checks of a frame of one envelope `envelope_len` bytes long and at most
    /// one payload (`payload_len` bytes), in [`Limits::check_frame`]'s order.
    #[inline]
    fn check_small(
        &self,
        envelope_len: usize,
        has_payload: bool,
        payload_len: usize,
    ) -> Result<(), WireError> {
        self.limits.check_envelope(envelope_len as u64)?;
        self.limits.check_payload_count(usize::from(has_payload))?;
        self.limits.check_payload_total(payload_len as u64)
    }

    /// The length of `envelope`, written `envelope_len` bytes long in `room`, after it is
    /// rewritten longer where the kernel would copy `payload` (queued after the head, behind
    /// `queued` bytes) at a distance from its source that stalls the copy (`align.rs`), if
    /// the limits leave room for that. Only for large payloads: kept out of line, off the
    /// small frames' path.
    #[cold]
    #[inline(never)]
    fn pad_envelope(
        &self,
        envelope: &Envelope,
        request_id: Option<u64>,
        payload: &Bytes,
        queued: usize,
        room: &mut SmallEnvelope,
        envelope_len: usize,
    ) -> usize {
        let head_len = SMALL_PREFIX_ROOM + envelope_len;
        let Some(extra) = align::envelope_padding(payload, queued, head_len) else {
            return envelope_len;
        };
        // One byte more than asked may be spent (`hot::write_padded`).
        if envelope_len + extra + 1 > self.limits.get_max_envelope_len() {
            return envelope_len;
        }
        // Nothing is written when it returns `None`: the envelope in `room` stays as it was.
        envelope.write_small_padded(request_id, extra, room).unwrap_or(envelope_len)
    }

    /// Any frame: checked, then its head encoded in place and its payloads queued.
    fn encode_any(&self, frame: Frame, out: &mut WriteBuf) -> Result<(), WireError> {
        let envelope_len = self.limits.check_frame(&frame)?;

        let head_len = PREFIX_LEN + PAYLOAD_LEN_SIZE * frame.payloads.len() + envelope_len;
        let mut head = &mut out.room(head_len)[..head_len];
        // Kind, flags (none defined in version 1), payload count, envelope length, then the
        // length table.
        head.put_u8(frame.envelope.kind() as u8);
        head.put_u8(0);
        head.put_u16_le(frame.payloads.len() as u16);
        head.put_u32_le(envelope_len as u32);
        for payload in frame.payloads.iter() {
            head.put_u64_le(payload.len() as u64);
        }
        frame.envelope.encode_raw(&mut head);
        debug_assert!(head.is_empty(), "the head is as long as measured");
        out.commit(head_len);
        for payload in frame.payloads {
            if payload.len() <= INLINE_PAYLOAD_MAX {
                out.put_head(&payload);
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

    /// An empty queue whose block holds stale bytes where the next frame is written (a
    /// long head written out in full): a byte the encoder queues without writing it shows.
    fn stale_queue() -> WriteBuf {
        let mut queue = WriteBuf::new();
        queue.put_head(&[0xa5; 2048]);
        queue.advance(2048);
        queue
    }

    /// What is queued after `encoded`, or its error, which must leave nothing queued.
    fn queued(encoded: Result<(), WireError>, queue: WriteBuf) -> Result<BytesMut, WireError> {
        if encoded.is_err() {
            assert_eq!(queue.remaining(), 0, "a refused frame queued bytes");
        }
        encoded.map(|()| queue.flatten())
    }

    /// What `encode` gives, what the general path gives, and what `encode_borrowed` gives
    /// under the frame's own id, for the same frame, each into a queue with stale bytes.
    fn every_way(encoder: &FrameEncoder, frame: Frame) -> [Result<BytesMut, WireError>; 3] {
        let (mut fast, mut general, mut borrowed) = (stale_queue(), stale_queue(), stale_queue());
        let id = match &frame.envelope {
            Envelope::Request(request) => request.id,
            _ => 0,
        };
        let lent = queued(encoder.encode_borrowed(&frame, id, &mut borrowed), borrowed);
        let fast = queued(encoder.encode(frame.clone(), &mut fast), fast);
        let general = queued(encoder.encode_any(frame, &mut general), general);
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
