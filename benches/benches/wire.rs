//! Wire codec: encode + decode of one frame, beside a 4-byte length prefix doing the same trip
//! through one buffer ([`WireTrip`] says what each copies).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xoscar_benches::wire_trip::{WireTrip, static_payload};

fn encode_decode(c: &mut Criterion) {
    for (name, size) in [("64 B", 64usize), ("1 MiB", 1 << 20)] {
        let payload = static_payload(size);
        let mut group = c.benchmark_group(format!("wire encode+decode {name}"));
        if size >= 1 << 20 {
            group.throughput(Throughput::Bytes(size as u64));
        }
        // `Bencher::iter` passes each output through `black_box` itself; doing it here too
        // copied the decoded frame once more per trip.
        let mut trip = WireTrip::default();
        group.bench_function("ours", |b| b.iter(|| trip.ours(payload)));
        let mut trip = WireTrip::default();
        group.bench_function("raw", |b| b.iter(|| trip.raw(payload)));
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
