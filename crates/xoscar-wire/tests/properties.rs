//! Property tests: random frames round-trip through any split of the byte stream; random and
//! mutated bytes give frames or typed errors, never a panic or an unbounded allocation.

mod common;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use xoscar_wire::{
    Envelope, Frame, FrameDecoder, Limits, ReceivedFrame, RequestHead, ResponseHead,
};

use common::{encode, frame};

/// Decodes everything in `wire`, fed in pieces of the given sizes (cycled).
fn decode_in_pieces(wire: &[u8], pieces: &[usize], limits: Limits) -> Result<Vec<Frame>, String> {
    let mut decoder = FrameDecoder::new(limits);
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    let mut offset = 0;
    let mut sizes = pieces.iter().cycle();
    while offset < wire.len() {
        let step = (*sizes.next().unwrap()).clamp(1, wire.len() - offset);
        buffer.extend_from_slice(&wire[offset..offset + step]);
        offset += step;
        while let Some(frame) = decoder.decode(&mut buffer).map_err(|e| e.to_string())? {
            frames.push(frame);
        }
    }
    if let Some(frame) = decoder.decode_eof(&mut buffer).map_err(|e| e.to_string())? {
        frames.push(frame);
    }
    Ok(frames)
}

/// What each accessor of a received frame should give for `frame`.
fn check_received(received: ReceivedFrame, frame: &Frame) -> Result<(), TestCaseError> {
    prop_assert_eq!(&received, frame);
    prop_assert_eq!(received.kind(), frame.envelope.kind());
    let (request, response, header) = match &frame.envelope {
        Envelope::Request(r) => {
            let head =
                RequestHead { id: r.id, timeout_us: r.timeout_us, stream_credit: r.stream_credit };
            (Some(head), None, r.header.clone())
        }
        Envelope::Response(r) => {
            let head = ResponseHead { id: r.id, more: r.more, status: r.status };
            (None, Some(head), r.header.clone())
        }
        Envelope::Notify(n) => (None, None, n.header.clone()),
        _ => (None, None, Bytes::new()),
    };
    prop_assert_eq!(received.request(), request);
    prop_assert_eq!(received.response(), response);
    prop_assert_eq!(received.header(), &header[..]);
    prop_assert_eq!(received.clone().into_parts(), (header, frame.payloads.clone()));
    prop_assert_eq!(&received.into_frame(), frame);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A received frame, read in place or held whole, reads as the frame that was written,
    /// through each accessor, whatever pieces its bytes came in.
    #[test]
    fn received_frames_read_as_the_frames_written(
        frames in proptest::collection::vec(frame(), 1..6),
        pieces in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let mut wire = BytesMut::new();
        for frame in &frames {
            wire.extend_from_slice(&encode(frame.clone(), Limits::default()));
        }
        let (mut decoder, mut buffer, mut read) = (FrameDecoder::default(), BytesMut::new(), 0);
        let mut expected = frames.iter();
        let mut sizes = pieces.iter().cycle();
        while read < wire.len() {
            let step = (*sizes.next().unwrap()).clamp(1, wire.len() - read);
            buffer.extend_from_slice(&wire[read..read + step]);
            read += step;
            while let Some(received) = decoder.decode_received(&mut buffer).unwrap() {
                check_received(received, expected.next().expect("no more frames than written"))?;
            }
        }
        prop_assert!(expected.next().is_none(), "every frame read");
        prop_assert!(buffer.is_empty());
    }

    #[test]
    fn frames_round_trip_through_any_split(
        frames in proptest::collection::vec(frame(), 1..6),
        pieces in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let mut wire = BytesMut::new();
        for frame in &frames {
            wire.extend_from_slice(&encode(frame.clone(), Limits::default()));
        }
        let decoded = decode_in_pieces(&wire, &pieces, Limits::default()).unwrap();
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn random_bytes_never_panic(
        wire in proptest::collection::vec(any::<u8>(), 0..2048),
        pieces in proptest::collection::vec(1usize..300, 1..4),
    ) {
        let limits = Limits::default().max_payload_len(1 << 16).max_envelope_len(1 << 12);
        let _ = decode_in_pieces(&wire, &pieces, limits);
    }

    #[test]
    fn mutated_frames_give_frames_or_typed_errors(
        frames in proptest::collection::vec(frame(), 1..4),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let limits = Limits::default().max_payload_len(1 << 16);
        let mut wire = Vec::new();
        for frame in &frames {
            wire.extend_from_slice(&encode(frame.clone(), limits));
        }
        for (index, byte) in flips {
            let at = index.index(wire.len());
            wire[at] ^= byte;
        }
        wire.truncate(cut.index(wire.len() + 1));
        let _ = decode_in_pieces(&wire, &[7, 100, 1], limits);
    }
}
