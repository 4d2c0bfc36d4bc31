#![allow(dead_code)] // each test binary uses a different part
//! Helpers shared by the wire tests.

use bytes::{Buf, Bytes, BytesMut};
use proptest::prelude::*;
use xoscar_wire::{Envelope, Frame, FrameEncoder, Limits, WriteBuf, pb};

/// Flattens everything an encoder queued into one contiguous buffer, as a socket would carry it.
pub fn flatten(mut out: WriteBuf) -> BytesMut {
    let mut wire = BytesMut::with_capacity(out.remaining());
    while out.has_remaining() {
        let n = out.chunk().len();
        wire.extend_from_slice(out.chunk());
        out.advance(n);
    }
    wire
}

/// The bytes of one frame.
pub fn encode(frame: Frame, limits: Limits) -> BytesMut {
    let mut out = WriteBuf::new();
    FrameEncoder::new(limits).encode(frame, &mut out).expect("frame within limits");
    flatten(out)
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Any envelope, with short random headers.
pub fn envelope() -> impl Strategy<Value = Envelope> {
    prop_oneof![
        (any::<u64>(), bytes(64)).prop_map(|(id, header)| {
            Envelope::Request(pb::Request {
                id,
                header,
                timeout_us: id % 3 * 1_000,
                stream_credit: (id % 5) as u32,
            })
        }),
        (any::<u64>(), bytes(64), 0..2i32).prop_map(|(id, header, status)| Envelope::Response(
            pb::Response { id, header, status, more: id % 2 == 1 }
        )),
        bytes(64).prop_map(|header| Envelope::Notify(pb::Notify { header })),
        (any::<u64>(), any::<bool>())
            .prop_map(|(id, answer)| Envelope::Cancel(pb::Cancel { id, answer })),
        any::<u64>().prop_map(|nonce| Envelope::Ping(pb::Ping { nonce })),
        any::<u64>().prop_map(|nonce| Envelope::Pong(pb::Pong { nonce })),
        (any::<u64>(), any::<u32>())
            .prop_map(|(id, items)| Envelope::Credit(pb::Credit { id, items })),
        (any::<u64>(), ".{0,20}").prop_map(|(last_accepted_id, reason)| Envelope::GoAway(
            pb::GoAway { last_accepted_id, reason }
        )),
    ]
}

/// Any frame with up to 5 payloads of up to 300 bytes.
pub fn frame() -> impl Strategy<Value = Frame> {
    (envelope(), proptest::collection::vec(bytes(300), 0..5))
        .prop_map(|(envelope, payloads)| Frame::new(envelope, payloads))
}
