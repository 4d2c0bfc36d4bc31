//! One frame's trip through the codec, and the raw limit doing the same job, shared by the
//! criterion bench (`benches/wire.rs`) and the callgrind example (`fixed_actor_calls wire`).
//!
//! Ours encodes a request frame into a [`WriteBuf`] (a payload this small is copied next to
//! the envelope, as every sender of one does), copies what is queued into the read buffer (the
//! socket's copy), decodes it and takes the header and payload a handler is given
//! ([`xoscar_wire::ReceivedFrame::into_parts`], as the pool's readers do); raw writes a 4-byte
//! length and the payload into the read buffer and cuts it off again, one copy of the
//! payload.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use xoscar_wire::{Frame, FrameDecoder, FrameEncoder, Payloads, WriteBuf};

/// The state one side of the comparison keeps between trips.
#[derive(Default)]
pub struct WireTrip {
    encoder: FrameEncoder,
    decoder: FrameDecoder,
    out: WriteBuf,
    wire: BytesMut,
}

impl WireTrip {
    /// Encodes a request carrying `payload` (and a 6-byte header), copies it to the read
    /// buffer, decodes it, and takes its header and payloads.
    #[inline]
    pub fn ours(&mut self, payload: &'static [u8]) -> (Bytes, Payloads) {
        let frame = Frame::request(1, Bytes::from_static(b"header"), [Bytes::from_static(payload)]);
        self.encoder.encode(frame, &mut self.out).expect("encode");
        self.wire.reserve(self.out.remaining());
        while self.out.has_remaining() {
            let n = self.out.chunk().len();
            self.wire.extend_from_slice(self.out.chunk());
            self.out.advance(n);
        }
        self.decoder
            .decode_received(&mut self.wire)
            .expect("decode")
            .expect("a whole frame")
            .into_parts()
    }

    /// A 4-byte length prefix and the payload, through the same read buffer.
    #[inline]
    pub fn raw(&mut self, payload: &[u8]) -> Bytes {
        self.wire.reserve(4 + payload.len());
        self.wire.put_u32_le(payload.len() as u32);
        self.wire.extend_from_slice(payload);
        let len = self.wire.get_u32_le() as usize;
        self.wire.split_to(len).freeze()
    }
}

/// A payload of `len` bytes, static: ours wraps it in a `Bytes` per trip with no reference
/// count and no call ([`Bytes::from_static`]), as moving a payload into a frame takes none;
/// raw copies from it. Making and freeing the payload is left out on both sides. The header
/// is static too, so the trip leaves out what a shared one adds: an actor ref's cached
/// header is one count taken when the frame is built and given back when the encoder drops
/// it.
pub fn static_payload(len: usize) -> &'static [u8] {
    vec![7u8; len].leak()
}
