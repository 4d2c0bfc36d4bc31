//! Hard limits on what a peer may make us buffer.

use crate::{Frame, WireError};

/// Limits checked against every frame's prefix **before** any memory is reserved for it.
///
/// Both ends should agree on them: an encoder refuses a frame its own limits forbid, so a frame
/// that would be refused by the peer fails at the sender with a clear error.
///
/// ```
/// use xoscar_wire::Limits;
/// let limits = Limits::default().max_payload_len(64 << 20).max_payloads(16);
/// assert_eq!(limits.get_max_payload_len(), 64 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_envelope_len: usize,
    max_payloads: usize,
    max_payload_len: u64,
    max_reserve_ahead: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_envelope_len: 1 << 20,
            max_payloads: 1024,
            max_payload_len: 256 << 20,
            max_reserve_ahead: 2 << 20,
        }
    }
}

impl Limits {
    /// The most bytes one envelope (protobuf part of a frame, or the handshake's `Hello`) may
    /// have. Default: 1 MiB.
    pub fn max_envelope_len(mut self, bytes: usize) -> Self {
        self.max_envelope_len = bytes.min(u32::MAX as usize);
        self
    }

    /// The most payload buffers one frame may carry (at most 65,535, the width of the field).
    /// Default: 1,024.
    pub fn max_payloads(mut self, count: usize) -> Self {
        self.max_payloads = count.min(u16::MAX as usize);
        self
    }

    /// The most bytes all payload buffers of one frame may add up to. Default: 256 MiB.
    pub fn max_payload_len(mut self, bytes: u64) -> Self {
        self.max_payload_len = bytes;
        self
    }

    /// The most bytes the decoder reserves ahead of the bytes that actually arrived. A frame that
    /// fits in this is read into one allocation sized from its prefix; a larger one grows its
    /// buffer geometrically as its bytes arrive, so a hostile length cannot reserve memory up
    /// front. Default: 2 MiB (so 1 MiB payloads take one allocation). Minimum: 4 KiB.
    pub fn max_reserve_ahead(mut self, bytes: usize) -> Self {
        self.max_reserve_ahead = bytes.max(4096);
        self
    }

    /// See [`Limits::max_envelope_len`].
    pub fn get_max_envelope_len(&self) -> usize {
        self.max_envelope_len
    }

    /// See [`Limits::max_payloads`].
    pub fn get_max_payloads(&self) -> usize {
        self.max_payloads
    }

    /// See [`Limits::max_payload_len`].
    pub fn get_max_payload_len(&self) -> u64 {
        self.max_payload_len
    }

    /// See [`Limits::max_reserve_ahead`].
    pub fn get_max_reserve_ahead(&self) -> usize {
        self.max_reserve_ahead
    }

    /// Checks a whole frame against these limits, as the encoder does before queueing it.
    /// Returns the envelope's encoded length. In-process channels, which never encode, check
    /// frames the same way ([`Limits::admit`]) so that a frame is refused alike on every
    /// transport.
    pub fn check_frame(&self, frame: &Frame) -> Result<usize, WireError> {
        let envelope_len = frame.envelope.encoded_len();
        self.check_envelope(envelope_len as u64)?;
        self.check_payload_count(frame.payloads.len())?;
        self.check_payload_total(frame.payload_len())?;
        Ok(envelope_len)
    }

    /// The checks of [`Limits::check_frame`], with the same errors, without its length: a
    /// call's or answer's envelope is measured only when a bound on its length (its header's
    /// plus the most its other fields take) is over the limit. For callers that refuse a frame
    /// before queueing it.
    #[inline]
    pub fn admit(&self, frame: &Frame) -> Result<(), WireError> {
        match frame.envelope.len_bound() {
            Some(bound) if bound <= self.max_envelope_len => {}
            _ => self.check_envelope(frame.envelope.encoded_len() as u64)?,
        }
        self.check_payload_count(frame.payloads.len())?;
        self.check_payload_total(frame.payload_len())
    }

    pub(crate) fn check_envelope(&self, len: u64) -> Result<(), WireError> {
        if len > self.max_envelope_len as u64 {
            return Err(WireError::EnvelopeTooLarge { len, max: self.max_envelope_len });
        }
        Ok(())
    }

    pub(crate) fn check_payload_count(&self, count: usize) -> Result<(), WireError> {
        if count > self.max_payloads {
            return Err(WireError::TooManyPayloads { count, max: self.max_payloads });
        }
        Ok(())
    }

    pub(crate) fn check_payload_total(&self, len: u64) -> Result<(), WireError> {
        if len > self.max_payload_len {
            return Err(WireError::PayloadTooLarge { len, max: self.max_payload_len });
        }
        Ok(())
    }
}
