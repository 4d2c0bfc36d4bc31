//! Padding the envelope of a frame with a large payload, so that the kernel's copy of the
//! payload into a TCP socket's buffers runs at full speed.
//!
//! The encoder queues a large payload by reference, right after the frame's head (prefix,
//! length table, envelope). Sending it, the kernel copies head and payload into socket buffer
//! pages. We take those to begin at a page boundary when the write starts (what the
//! measurements below fit, for one call at a time); the encoder sees only what its own queue
//! holds before the frame. So the payload's bytes land `head` bytes (plus what was queued
//! before the frame) past a page boundary, while they are read from wherever the payload lies:
//! a buffer of 128 KiB or more from glibc's `malloc` starts 16 bytes past one.
//!
//! When the destination of that copy lies a few bytes past its source, modulo 4096, each load
//! of the copy seems to the CPU to depend on the stores just before it (4K aliasing), and the
//! copy crawls. A 1 MiB echo over loopback TCP, client and server in one thread, behind an
//! 18-byte head, took 580 to 680 µs with the payload 16 bytes past a page boundary (landing 2
//! bytes ahead of its source) or 6 bytes past it (12 ahead). It took 275 to 360 µs with the
//! payload 4092 or 4082 bytes past one (22 and 32 ahead) and 80 or 2112 past one (landing
//! behind its source); the raw echo took 280 to 340 µs. `perf` put the kernel's copy from the
//! sender at 59 % of the slow echo's samples, against 17 % of the raw one's.
//!
//! So when the payload would land 1 to [`ALIASED_AHEAD`] − 1 bytes ahead of its source, the
//! envelope is written that many bytes longer (`hot::write_padded`, the same message in valid
//! protobuf) to move it past the window.

use bytes::Bytes;

/// Payloads from this size up are worth the check: below it the copy is short, and the
/// encoder copies payloads of up to [`crate::INLINE_PAYLOAD_MAX`] bytes into the head anyway.
pub(crate) const MIN_ALIGNED_PAYLOAD: usize = 64 * 1024;

/// Destinations this many bytes or more ahead of their source copy at full speed: 22 did in
/// the measurements above, 12 and 2 did not; two bytes of margin.
pub(crate) const ALIASED_AHEAD: usize = 24;

/// The page size the distance is taken modulo.
const PAGE: usize = 4096;

/// How many bytes longer to write the envelope of a frame whose head takes `head_len` bytes,
/// queued behind `queued` bytes, and whose one payload is `payload`: `None` when none (and
/// for a payload under [`MIN_ALIGNED_PAYLOAD`]).
pub(crate) fn envelope_padding(payload: &Bytes, queued: usize, head_len: usize) -> Option<usize> {
    if payload.len() < MIN_ALIGNED_PAYLOAD {
        return None;
    }
    let ahead = landing_ahead(payload.as_ptr() as usize, queued + head_len);
    (ahead > 0 && ahead < ALIASED_AHEAD).then(|| ALIASED_AHEAD - ahead)
}

/// How far past its source address `source` (modulo a page) a payload lands when it follows
/// `before` bytes of the same write, the write starting at a page boundary.
pub(crate) fn landing_ahead(source: usize, before: usize) -> usize {
    before.wrapping_sub(source) % PAGE
}

#[cfg(test)]
mod tests {
    use bytes::{Buf, BytesMut};
    use prost::Message;

    use super::*;
    use crate::{Envelope, Frame, FrameDecoder, FrameEncoder, PAYLOAD_LEN_SIZE, PREFIX_LEN};
    use crate::{WriteBuf, pb};

    /// Requests and responses with small fields, at every offset of a page, alone in the
    /// queue or behind another frame: the payload never lands 1 to 23 bytes ahead of its
    /// source, and the frame decodes as it was, through our reader and prost's alike.
    #[test]
    fn a_large_payload_never_lands_just_ahead_of_its_source() {
        let block = Bytes::from(vec![5u8; MIN_ALIGNED_PAYLOAD + PAGE]);
        let envelopes = [
            Envelope::Request(pb::Request { id: 1, ..Default::default() }),
            Envelope::Request(pb::Request {
                id: 300,
                header: Bytes::from_static(b"hdr"),
                timeout_us: 9,
                stream_credit: 0,
            }),
            Envelope::Response(pb::Response { id: 7, ..Default::default() }),
            Envelope::Response(pb::Response {
                id: 16_000,
                header: Bytes::from_static(b"h"),
                more: true,
                status: 3,
            }),
        ];
        let mut padded = 0;
        for envelope in envelopes {
            for queued in [0usize, 37] {
                for offset in 0..PAGE {
                    let payload = block.slice(offset..offset + MIN_ALIGNED_PAYLOAD);
                    let frame = Frame::new(envelope.clone(), [payload.clone()]);
                    let mut out = WriteBuf::new();
                    out.put_head(&vec![0; queued]);
                    FrameEncoder::default().encode(frame.clone(), &mut out).unwrap();
                    let head_len = out.remaining() - queued - payload.len();
                    let ahead = landing_ahead(payload.as_ptr() as usize, queued + head_len);
                    assert!(
                        ahead == 0 || ahead >= ALIASED_AHEAD,
                        "{envelope:?} at {offset} behind {queued}: {ahead} bytes ahead"
                    );
                    let unpadded = PREFIX_LEN + PAYLOAD_LEN_SIZE + envelope.encoded_len();
                    if head_len == unpadded && offset % 251 != 0 {
                        continue;
                    }
                    padded += usize::from(head_len != unpadded);
                    let mut wire = BytesMut::new();
                    while out.has_remaining() {
                        wire.extend_from_slice(out.chunk());
                        out.advance(out.chunk().len());
                    }
                    let envelope_bytes = wire[queued + PREFIX_LEN + PAYLOAD_LEN_SIZE..]
                        [..head_len - PREFIX_LEN - PAYLOAD_LEN_SIZE]
                        .to_vec();
                    let by_prost = match &envelope {
                        Envelope::Request(_) => {
                            Envelope::Request(pb::Request::decode(&envelope_bytes[..]).unwrap())
                        }
                        _ => Envelope::Response(pb::Response::decode(&envelope_bytes[..]).unwrap()),
                    };
                    assert_eq!(by_prost, envelope, "prost reads the padded envelope alike");
                    let _ = wire.split_to(queued);
                    let decoded = FrameDecoder::default().decode(&mut wire).unwrap();
                    assert_eq!(decoded, Some(frame), "at {offset} behind {queued}");
                }
            }
        }
        assert!(padded > 0, "some offsets needed padding");
    }

    #[test]
    fn small_payloads_are_never_padded() {
        let block = Bytes::from(vec![5u8; MIN_ALIGNED_PAYLOAD + PAGE]);
        for offset in 0..PAGE {
            let payload = block.slice(offset..offset + MIN_ALIGNED_PAYLOAD - 1);
            assert_eq!(envelope_padding(&payload, 0, 18), None);
        }
    }
}
