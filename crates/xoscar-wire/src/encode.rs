//! Frame encoding: heads into a [`WriteBuf`], payloads queued without copying.

use bytes::{BufMut, Bytes};

use crate::hot::SMALL_ENVELOPE_MAX;
use crate::{Frame, Limits, PAYLOAD_LEN_SIZE, PREFIX_LEN, WireError, WriteBuf};

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
            if let Some(envelope_len) = frame.envelope.write_small(&mut head[SMALL_PREFIX_ROOM..]) {
                return self.encode_small(frame, &mut head, envelope_len, out);
            }
        }
        self.encode_any(frame, out)
    }

    /// A frame of at most one payload whose envelope (`envelope_len` bytes) is written in
    /// `head` after [`SMALL_PREFIX_ROOM`] bytes: the prefix goes right before it, and the
    /// whole head (with a small payload) is queued with one copy.
    fn encode_small(
        &self,
        mut frame: Frame,
        head: &mut [u8; SMALL_PREFIX_ROOM + SMALL_ENVELOPE_MAX],
        envelope_len: usize,
        out: &mut WriteBuf,
    ) -> Result<(), WireError> {
        let payload = frame.payloads.pop();
        let payload_len = payload.as_ref().map_or(0, Bytes::len);
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
        head[start] = frame.envelope.kind() as u8;
        head[start + 2] = u8::from(payload.is_some());
        head[start + 4..start + 8].copy_from_slice(&(envelope_len as u32).to_le_bytes());
        let head = &head[start..SMALL_PREFIX_ROOM + envelope_len];
        match payload {
            Some(payload) if payload.len() > INLINE_PAYLOAD_MAX => {
                out.head_space(head.len()).extend_from_slice(head);
                out.push(payload);
            }
            payload => {
                let payload = payload.as_deref().unwrap_or_default();
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
    use crate::{Envelope, pb};

    /// What `encode` gives, and what the general path gives, for the same frame.
    fn both_ways(encoder: &FrameEncoder, frame: Frame) -> [Result<BytesMut, WireError>; 2] {
        let (mut fast, mut general) = (WriteBuf::new(), WriteBuf::new());
        let fast = encoder.encode(frame.clone(), &mut fast).map(|()| fast.flatten());
        let general = encoder.encode_any(frame, &mut general).map(|()| general.flatten());
        [fast, general]
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
            let [fast, general] = both_ways(&FrameEncoder::default(), frame.clone());
            prop_assert_eq!(fast.unwrap(), general.unwrap());
            // Tight limits: the same frames are refused, with the same error.
            let tight = Limits::default()
                .max_envelope_len(limit)
                .max_payload_len(limit as u64)
                .max_payloads(limit % 2);
            let [fast, general] = both_ways(&FrameEncoder::new(tight), frame);
            prop_assert_eq!(fast.map_err(|e| e.to_string()), general.map_err(|e| e.to_string()));
        }
    }
}
