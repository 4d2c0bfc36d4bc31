//! Feeds arbitrary bytes to the handshake and frame decoders, split into pieces whose sizes come
//! from the input itself, under small limits. Any panic, hang or runaway allocation is a bug:
//! every bad input must end in a typed `WireError`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use xoscar_wire::{FrameDecoder, Handshake, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&piece, data)) = data.split_first() else { return };
    let piece = usize::from(piece).max(1);
    let limits = Limits::default()
        .max_envelope_len(4096)
        .max_payload_len(1 << 20)
        .max_payloads(64)
        .max_reserve_ahead(64 * 1024);

    let mut buffer = BytesMut::new();
    let mut decoder = FrameDecoder::new(limits);
    let mut handshaken = false;
    for chunk in data.chunks(piece) {
        buffer.extend_from_slice(chunk);
        if !handshaken {
            match Handshake::decode(&mut buffer, &limits) {
                Ok(Some(_)) => handshaken = true,
                Ok(None) => continue,
                // A bad handshake: try the same bytes as frames, to reach the frame decoder too.
                Err(_) => handshaken = true,
            }
        }
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(frame)) => assert!(frame.payload_len() <= limits.get_max_payload_len()),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        // Memory reserved stays proportional to what arrived.
        assert!(buffer.capacity() <= 4 * buffer.len().max(64 * 1024) + 8192);
    }
    let _ = decoder.decode_eof(&mut buffer);
});
