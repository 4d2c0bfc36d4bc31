//! Wire codec: encode + decode of one frame, beside a 4-byte length prefix doing the same trip
//! through one buffer. Both copy the payload once (as a socket read would); nothing else.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use xoscar_wire::{Frame, FrameDecoder, FrameEncoder, WriteBuf};

fn encode_decode(c: &mut Criterion) {
    for (name, size) in [("64 B", 64usize), ("1 MiB", 1 << 20)] {
        // Static: cloning it per frame takes no reference count, as a payload moved into a
        // frame would not (the raw side copies from it, no count either).
        let payload = Bytes::from_static(vec![7u8; size].leak());
        let mut group = c.benchmark_group(format!("wire encode+decode {name}"));
        if size >= 1 << 20 {
            group.throughput(Throughput::Bytes(size as u64));
        }
        let encoder = FrameEncoder::default();
        let mut decoder = FrameDecoder::default();
        let mut out = WriteBuf::new();
        let mut wire = BytesMut::new();
        group.bench_function("ours", |b| {
            b.iter(|| {
                let frame = Frame::request(1, Bytes::from_static(b"header"), [payload.clone()]);
                encoder.encode(frame, &mut out).unwrap();
                wire.reserve(out.remaining());
                while out.has_remaining() {
                    let n = out.chunk().len();
                    wire.extend_from_slice(out.chunk());
                    out.advance(n);
                }
                black_box(decoder.decode(&mut wire).unwrap().unwrap())
            })
        });
        group.bench_function("raw", |b| {
            b.iter(|| {
                wire.reserve(4 + size);
                wire.put_u32_le(size as u32);
                wire.extend_from_slice(&payload);
                let len = wire.get_u32_le() as usize;
                black_box(wire.split_to(len).freeze())
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = encode_decode
}
criterion_main!(benches);
