//! Frame encoding: heads into a [`WriteBuf`], payloads queued without copying.

use bytes::BufMut;

use crate::{Frame, Limits, PAYLOAD_LEN_SIZE, PREFIX_LEN, WireError, WriteBuf};

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
    pub fn encode(&self, frame: Frame, out: &mut WriteBuf) -> Result<(), WireError> {
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
