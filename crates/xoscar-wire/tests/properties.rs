//! Property tests: random frames round-trip through any split of the byte stream; random and
//! mutated bytes give frames or typed errors, never a panic or an unbounded allocation.

mod common;

use bytes::BytesMut;
use proptest::prelude::*;
use xoscar_wire::{Frame, FrameDecoder, Limits};

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

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
