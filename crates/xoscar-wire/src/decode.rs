//! Incremental, limit-checked frame decoding that hands out slices of the read buffer.

use bytes::{Buf, BytesMut};

use crate::hot::HotEnvelope;
use crate::received::{InPlace, ReceivedFrame};
use crate::{
    Envelope, Frame, FrameKind, Limits, PAYLOAD_LEN_SIZE, PREFIX_LEN, Payloads, WireError,
};

/// What the prefix of the frame being read announced, kept while its bytes arrive.
#[derive(Debug, Clone, Copy)]
struct PendingFrame {
    kind: FrameKind,
    payload_count: usize,
    envelope_len: usize,
    /// Prefix + length table + envelope + payloads.
    total_len: usize,
}

/// Decodes frames from a growing read buffer, without I/O.
///
/// Feed it the bytes read so far; it returns a frame once the whole frame is buffered and
/// leaves the rest for the next call. Every length is checked against the [`Limits`] as soon as
/// it is known, before any memory is reserved for it; memory is then reserved at most
/// [`Limits::max_reserve_ahead`] bytes (or as many as already arrived, if more) ahead of the
/// data, so a peer must send bytes to make the buffer grow.
#[derive(Debug, Clone, Default)]
pub struct FrameDecoder {
    limits: Limits,
    pending: Option<PendingFrame>,
}

impl FrameDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        FrameDecoder { limits, pending: None }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The whole length (prefix, length table, envelope and payloads) of the frame whose head
    /// was read but whose rest has not all arrived; `None` between frames, when what comes
    /// next is unknown.
    ///
    /// A reader uses it to size its next read: between frames it cannot know how large the
    /// next one is, and bytes it reads into a buffer too small for that frame are copied when
    /// the decoder makes room for the rest.
    pub fn pending_frame_len(&self) -> Option<usize> {
        self.pending.map(|pending| pending.total_len)
    }

    /// Takes the next whole frame off the front of `src`, or returns `Ok(None)` when more bytes
    /// are needed (having reserved room for some of them in `src`).
    ///
    /// After an error the stream is unusable: framing is lost.
    // Inlined (its general path is not): a call left its result to be moved through memory.
    #[inline]
    pub fn decode_received(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<ReceivedFrame>, WireError> {
        // A frame whose head came earlier is read in place too, once it is whole.
        let whole = self.pending.is_none_or(|pending| src.len() >= pending.total_len);
        if whole && let Some(frame) = self.decode_in_place(src) {
            self.pending = None;
            return Ok(Some(ReceivedFrame::in_place(frame)));
        }
        Ok(self.decode_any(src)?.map(ReceivedFrame::from))
    }

    /// [`Self::decode_received`], the frame as a [`Frame`] value.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        Ok(self.decode_received(src)?.map(ReceivedFrame::into_frame))
    }

    /// [`Self::decode_received`] for any frame, whole or not, valid or not. Kept out of line:
    /// inlined beside the one-pass path it made the decoder large enough that the small calls
    /// of `bytes` it makes were no longer inlined, and the 64 B trip took 8 % longer for it.
    #[inline(never)]
    fn decode_any(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        let pending = match self.pending {
            Some(pending) => pending,
            None => match self.read_head(src)? {
                Some(pending) => {
                    self.pending = Some(pending);
                    pending
                }
                None => return Ok(None),
            },
        };
        if src.len() < pending.total_len {
            let missing = pending.total_len - src.len();
            src.reserve(missing.min(self.limits.get_max_reserve_ahead().max(src.len())));
            return Ok(None);
        }
        self.pending = None;
        let table_end = PREFIX_LEN + PAYLOAD_LEN_SIZE * pending.payload_count;
        let envelope_end = table_end + pending.envelope_len;
        // Lengths were checked against the limits and the total in `read_head`. They are read
        // before the buffer is cut: the whole frame is then cut off `src` once, and its pieces
        // off that, one reference count each, but the last piece, which takes the rest.
        let mut table = &src[PREFIX_LEN..table_end];
        let (mut inline, spilled): ([usize; 2], Vec<usize>);
        let lengths: &[usize] = match pending.payload_count {
            count @ 0..=2 => {
                inline = [0; 2];
                for len in &mut inline[..count] {
                    *len = table.get_u64_le() as usize;
                }
                &inline[..count]
            }
            count => {
                spilled = (0..count).map(|_| table.get_u64_le() as usize).collect();
                &spilled
            }
        };
        let hot = HotEnvelope::read(pending.kind, &src[table_end..envelope_end]);
        let mut rest = src.split_to(pending.total_len).freeze();
        rest.advance(table_end);
        let envelope = match hot {
            Some(hot) => {
                rest.advance(hot.header.start);
                let header = match lengths.is_empty() {
                    // The header is the last piece: it takes the rest.
                    true => {
                        rest.truncate(hot.header.len());
                        std::mem::take(&mut rest)
                    }
                    false => {
                        let header = rest.split_to(hot.header.len());
                        rest.advance(pending.envelope_len - hot.header.end);
                        header
                    }
                };
                match hot.kind() {
                    FrameKind::Request => Envelope::Request(hot.into_request(header)),
                    FrameKind::Notify => Envelope::Notify(HotEnvelope::into_notify(header)),
                    _ => Envelope::Response(hot.into_response(header)),
                }
            }
            None => Envelope::decode(pending.kind, rest.split_to(pending.envelope_len))?,
        };
        // A plain loop: collecting through an iterator cost about 100 instructions per frame.
        // `split_to` of the whole rest takes it without a count.
        let mut payloads = Payloads::new();
        payloads.reserve_exact(lengths.len());
        for &len in lengths {
            payloads.push(rest.split_to(len));
        }
        Ok(Some(Frame { envelope, payloads }))
    }

    /// The common frame in one pass: a call, an answer or a one-way message (a request,
    /// response or notify with at most one payload, its envelope in the plain shape), whole at
    /// the front of `src` and within the limits, cut off `src` with one reference count. `None`
    /// for anything else, with `src` untouched: the general path then decodes it, or says what
    /// is wrong with it.
    #[inline]
    fn decode_in_place(&self, src: &mut BytesMut) -> Option<InPlace> {
        let prefix: [u8; PREFIX_LEN] = src.get(..PREFIX_LEN)?.try_into().ok()?;
        let kind = match FrameKind::from_byte(prefix[0])? {
            kind @ (FrameKind::Request | FrameKind::Response | FrameKind::Notify) => kind,
            _ => return None,
        };
        let payload_count = usize::from(u16::from_le_bytes([prefix[2], prefix[3]]));
        let envelope_len = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
        let envelope_len = envelope_len as usize;
        if prefix[1] != 0
            || payload_count > 1
            || payload_count > self.limits.get_max_payloads()
            || envelope_len > self.limits.get_max_envelope_len()
        {
            return None;
        }
        let table_end = PREFIX_LEN + PAYLOAD_LEN_SIZE * payload_count;
        let payload_len = match payload_count {
            0 => 0,
            _ => u64::from_le_bytes(src.get(PREFIX_LEN..table_end)?.try_into().ok()?),
        };
        if payload_len > self.limits.get_max_payload_len() {
            return None;
        }
        let envelope_end = table_end + envelope_len;
        let payload_len = usize::try_from(payload_len).ok()?;
        if src.len() < envelope_end.checked_add(payload_len)? {
            return None;
        }
        // Offsets are kept in 32 bits; an envelope ending past that is read the general way.
        let payload_start = u32::try_from(envelope_end).ok()?;
        let hot = HotEnvelope::read(kind, &src[table_end..envelope_end])?;
        let frame = src.split_to(envelope_end + payload_len).freeze();
        Some(InPlace {
            frame,
            id: hot.id,
            third: hot.third,
            // prost's narrowing of a `uint32` or enum field.
            last: hot.last as u32,
            // Within the envelope, so at most `payload_start`.
            header_start: (table_end + hot.header.start) as u32,
            header_end: (table_end + hot.header.end) as u32,
            payload_start,
            kind,
            has_payload: payload_count == 1,
        })
    }

    /// Like [`Self::decode_received`], for when the stream has ended: bytes of an incomplete
    /// frame are a [`WireError::Truncated`] error; an empty buffer is a clean end (`Ok(None)`).
    pub fn decode_received_eof(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<ReceivedFrame>, WireError> {
        match self.decode_received(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(WireError::Truncated { buffered: src.len() }),
        }
    }

    /// [`Self::decode_received_eof`], the frame as a [`Frame`] value.
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        Ok(self.decode_received_eof(src)?.map(ReceivedFrame::into_frame))
    }

    /// Parses and checks the prefix and length table, once both are buffered.
    fn read_head(&self, src: &BytesMut) -> Result<Option<PendingFrame>, WireError> {
        if src.len() < PREFIX_LEN {
            return Ok(None);
        }
        let kind = FrameKind::try_from(src[0])?;
        let flags = src[1];
        if flags != 0 {
            return Err(WireError::ReservedFlags { what: "frame prefix", flags: flags.into() });
        }
        let payload_count = u16::from_le_bytes([src[2], src[3]]) as usize;
        let envelope_len = u32::from_le_bytes([src[4], src[5], src[6], src[7]]) as usize;
        self.limits.check_payload_count(payload_count)?;
        self.limits.check_envelope(envelope_len as u64)?;

        let table_end = PREFIX_LEN + PAYLOAD_LEN_SIZE * payload_count;
        if src.len() < table_end {
            return Ok(None);
        }
        let mut table = &src[PREFIX_LEN..table_end];
        let mut payload_total: u64 = 0;
        for _ in 0..payload_count {
            payload_total = payload_total.saturating_add(table.get_u64_le());
            self.limits.check_payload_total(payload_total)?;
        }
        // Bounded by the limits, so this fits in usize on 64-bit targets; checked for others.
        let total_len = usize::try_from(payload_total)
            .ok()
            .and_then(|payloads| payloads.checked_add(table_end + envelope_len))
            .ok_or(WireError::PayloadTooLarge {
                len: payload_total,
                max: self.limits.get_max_payload_len(),
            })?;
        Ok(Some(PendingFrame { kind, payload_count, envelope_len, total_len }))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;
    use crate::{FrameEncoder, WriteBuf, pb};

    fn wire(frames: Vec<Frame>) -> BytesMut {
        let (encoder, mut out) = (FrameEncoder::default(), WriteBuf::new());
        for frame in frames {
            encoder.encode(frame, &mut out).unwrap();
        }
        out.flatten()
    }

    /// Everything `decode` (`fast`) or the general path alone gives for `src`, fed in two
    /// pieces cut at `split` (so a frame's head may come before the rest of it): the frames,
    /// then the error or the bytes left.
    fn all(
        mut src: BytesMut,
        split: usize,
        limits: Limits,
        fast: bool,
    ) -> (Vec<Frame>, Result<usize, String>) {
        let mut rest = src.split_off(split.min(src.len()));
        let mut decoder = FrameDecoder::new(limits);
        let mut frames = Vec::new();
        loop {
            let next = match fast {
                true => decoder.decode(&mut src),
                false => decoder.decode_any(&mut src),
            };
            match next {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) if !rest.is_empty() => src.extend_from_slice(&rest.split()),
                Ok(None) => return (frames, Ok(src.len())),
                Err(error) => return (frames, Err(error.to_string())),
            }
        }
    }

    #[test]
    fn the_pending_length_is_known_from_a_head_until_its_frame_is_whole() {
        let frame = Frame::request(3, Bytes::from_static(b"h"), vec![Bytes::from(vec![1; 500])]);
        let whole = wire(vec![frame.clone()]);
        let mut decoder = FrameDecoder::default();
        assert_eq!(decoder.pending_frame_len(), None, "nothing read yet");
        let mut src = BytesMut::from(&whole[..PREFIX_LEN]);
        assert_eq!(decoder.decode(&mut src).unwrap(), None);
        assert_eq!(decoder.pending_frame_len(), None, "the length table is still to come");
        src.extend_from_slice(&whole[PREFIX_LEN..PREFIX_LEN + PAYLOAD_LEN_SIZE + 4]);
        assert_eq!(decoder.decode(&mut src).unwrap(), None);
        assert_eq!(decoder.pending_frame_len(), Some(whole.len()));
        src.extend_from_slice(&whole[PREFIX_LEN + PAYLOAD_LEN_SIZE + 4..]);
        assert_eq!(decoder.decode(&mut src).unwrap(), Some(frame));
        assert_eq!(decoder.pending_frame_len(), None, "between frames again");
    }

    proptest! {
        /// The one-pass path for calls, answers and one-way messages takes what the general
        /// path takes, gives the same frames, and leaves (or refuses) what it leaves, for
        /// valid and mangled bytes, tight limits, and frames whose head came in an earlier
        /// piece alike.
        #[test]
        fn the_one_pass_path_decodes_as_the_general_one(
            calls in proptest::collection::vec(
                (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..40),
                 proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
                 0u8..3, any::<u32>()),
                1..4),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
            cut in any::<prop::sample::Index>(),
            split in any::<prop::sample::Index>(),
            limit in 0usize..400,
        ) {
            let frames = calls.into_iter().map(|(id, header, payload, kind, extra)| {
                let header = Bytes::from(header);
                let envelope = match kind {
                    0 => Envelope::Response(pb::Response {
                        id, header, more: extra % 2 == 0, status: extra as i32 % 3,
                    }),
                    1 => Envelope::Request(pb::Request {
                        id, header, timeout_us: u64::from(extra), stream_credit: extra / 7,
                    }),
                    _ => Envelope::Notify(pb::Notify { header }),
                };
                Frame::new(envelope, payload.into_iter().map(Bytes::from).collect::<Vec<_>>())
            }).collect();
            let mut src = wire(frames);
            for (index, byte) in flips {
                let at = index.index(src.len());
                src[at] ^= byte;
            }
            src.truncate(cut.index(src.len() + 1));
            for limits in [
                Limits::default(),
                Limits::default().max_envelope_len(limit).max_payload_len(limit as u64).max_payloads(limit % 2),
            ] {
                let split = split.index(src.len() + 1);
                prop_assert_eq!(
                    all(src.clone(), split, limits, true),
                    all(src.clone(), split, limits, false)
                );
            }
        }
    }
}
