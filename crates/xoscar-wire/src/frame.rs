//! Frames as values: what the codec reads and writes, and what in-process channels move.

use bytes::Bytes;
use prost::Message;

use crate::{FrameKind, Payloads, WireError, hot, pb};

impl TryFrom<u8> for FrameKind {
    type Error = WireError;

    fn try_from(byte: u8) -> Result<Self, WireError> {
        FrameKind::from_byte(byte).ok_or(WireError::UnknownKind(byte))
    }
}

/// The protobuf part of a frame, one variant per [`FrameKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// A request expecting a response with the same id.
    Request(pb::Request),
    /// The response to a request.
    Response(pb::Response),
    /// A one-way message.
    Notify(pb::Notify),
    /// The caller gave up on a request.
    Cancel(pb::Cancel),
    /// A liveness probe.
    Ping(pb::Ping),
    /// The answer to a probe.
    Pong(pb::Pong),
    /// The sender is closing the connection gracefully.
    GoAway(pb::GoAway),
    /// More credit for a response stream.
    Credit(pb::Credit),
}

impl Envelope {
    /// The kind byte this envelope is written with.
    pub fn kind(&self) -> FrameKind {
        match self {
            Envelope::Request(_) => FrameKind::Request,
            Envelope::Response(_) => FrameKind::Response,
            Envelope::Notify(_) => FrameKind::Notify,
            Envelope::Cancel(_) => FrameKind::Cancel,
            Envelope::Ping(_) => FrameKind::Ping,
            Envelope::Pong(_) => FrameKind::Pong,
            Envelope::GoAway(_) => FrameKind::GoAway,
            Envelope::Credit(_) => FrameKind::Credit,
        }
    }

    /// The length of the encoded protobuf message.
    pub fn encoded_len(&self) -> usize {
        match self {
            Envelope::Request(m) => hot::request_len(m),
            Envelope::Response(m) => hot::response_len(m),
            Envelope::Notify(m) => m.encoded_len(),
            Envelope::Cancel(m) => m.encoded_len(),
            Envelope::Ping(m) => m.encoded_len(),
            Envelope::Pong(m) => m.encoded_len(),
            Envelope::GoAway(m) => m.encoded_len(),
            Envelope::Credit(m) => m.encoded_len(),
        }
    }

    /// Appends the protobuf message to `dst`, which must have room for [`Self::encoded_len`].
    pub(crate) fn encode_raw(&self, dst: &mut impl bytes::BufMut) {
        match self {
            Envelope::Request(m) => hot::write_request(m, dst),
            Envelope::Response(m) => hot::write_response(m, dst),
            Envelope::Notify(m) => m.encode_raw(dst),
            Envelope::Cancel(m) => m.encode_raw(dst),
            Envelope::Ping(m) => m.encode_raw(dst),
            Envelope::Pong(m) => m.encode_raw(dst),
            Envelope::GoAway(m) => m.encode_raw(dst),
            Envelope::Credit(m) => m.encode_raw(dst),
        }
    }

    /// At least [`Self::encoded_len`], cheaply, for a request or response: its header's
    /// length plus the most its other fields take. `None` for other kinds.
    #[inline]
    pub(crate) fn len_bound(&self) -> Option<usize> {
        match self {
            Envelope::Request(m) => Some(m.header.len() + hot::FIXED_FIELDS_MAX),
            Envelope::Response(m) => Some(m.header.len() + hot::FIXED_FIELDS_MAX),
            _ => None,
        }
    }

    /// Writes a request or response with a small header into `buf` (at least
    /// `hot::SMALL_ENVELOPE_MAX` long): its length. `None` for any other envelope. A request
    /// is written under `request_id` if given, else under its own id.
    #[inline]
    pub(crate) fn write_small(
        &self,
        request_id: Option<u64>,
        buf: &mut hot::SmallEnvelope,
    ) -> Option<usize> {
        match self {
            Envelope::Request(m) => hot::write_small_request(m, request_id.unwrap_or(m.id), buf),
            Envelope::Response(m) => hot::write_small_response(m, buf),
            _ => None,
        }
    }

    /// [`Self::write_small`], the envelope written `extra` bytes longer as the same message
    /// (`hot::write_padded` says how, and how much it can take).
    pub(crate) fn write_small_padded(
        &self,
        request_id: Option<u64>,
        extra: usize,
        buf: &mut hot::SmallEnvelope,
    ) -> Option<usize> {
        match self {
            Envelope::Request(m) => {
                hot::write_padded_request(m, request_id.unwrap_or(m.id), extra, buf)
            }
            Envelope::Response(m) => hot::write_padded_response(m, extra, buf),
            _ => None,
        }
    }

    /// Decodes the envelope of a `kind` frame. `bytes` fields come out as slices of `buf`.
    pub(crate) fn decode(kind: FrameKind, buf: Bytes) -> Result<Self, WireError> {
        let wrap = |source| WireError::MalformedEnvelope { kind, source };
        Ok(match kind {
            FrameKind::Request => Envelope::Request(pb::Request::decode(buf).map_err(wrap)?),
            FrameKind::Response => Envelope::Response(pb::Response::decode(buf).map_err(wrap)?),
            FrameKind::Notify => Envelope::Notify(pb::Notify::decode(buf).map_err(wrap)?),
            FrameKind::Cancel => Envelope::Cancel(pb::Cancel::decode(buf).map_err(wrap)?),
            FrameKind::Ping => Envelope::Ping(pb::Ping::decode(buf).map_err(wrap)?),
            FrameKind::Pong => Envelope::Pong(pb::Pong::decode(buf).map_err(wrap)?),
            FrameKind::GoAway => Envelope::GoAway(pb::GoAway::decode(buf).map_err(wrap)?),
            FrameKind::Credit => Envelope::Credit(pb::Credit::decode(buf).map_err(wrap)?),
        })
    }
}

/// One frame: an envelope and the out-of-band payload buffers that travel after it.
///
/// Payloads are never copied by the codec: encoding queues them as they are, decoding hands out
/// slices of the read buffer.
// Laid out in this order on purpose (`repr(C)`). With the envelope first, its request's last
// field (a `u32`) sat against the payloads, and the decoder's move of a frame into its result
// copied the two as one range, in 16-byte loads 4 bytes off the stores that had just written
// the payloads: loads a store cannot forward to, which wait for those stores to reach the
// cache (a quarter of the decoder's samples in a wall-clock profile). Payloads first took the
// 64 B wire trip from 79 to 71 ns (pinned criterion rounds). (The decoder now hands back a
// `ReceivedFrame`, and moves a `Frame` only for frames held whole and for `decode`.)
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(C)]
pub struct Frame {
    /// Raw buffers, in order. Empty for most control frames.
    pub payloads: Payloads,
    /// The protobuf part.
    pub envelope: Envelope,
}

impl Frame {
    /// A frame with the given envelope and payloads.
    pub fn new(envelope: Envelope, payloads: impl Into<Payloads>) -> Self {
        Frame { envelope, payloads: payloads.into() }
    }

    /// A request frame.
    pub fn request(id: u64, header: Bytes, payloads: impl Into<Payloads>) -> Self {
        Frame::new(
            Envelope::Request(pb::Request { id, header, timeout_us: 0, stream_credit: 0 }),
            payloads,
        )
    }

    /// A response frame carrying a handler's answer (status OK).
    pub fn response(id: u64, header: Bytes, payloads: impl Into<Payloads>) -> Self {
        Frame::new(Envelope::Response(pb::Response { id, header, ..Default::default() }), payloads)
    }

    /// The sum of the payload lengths.
    pub fn payload_len(&self) -> u64 {
        self.payloads.iter().map(|p| p.len() as u64).sum()
    }
}
