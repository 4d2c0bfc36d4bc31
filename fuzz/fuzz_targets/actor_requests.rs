//! Hostile requests to an actor pool, in-process (no sockets, so fast): the input is split
//! into a request header and payloads, sent as a pool-level call, and the pool must answer
//! every one (an error answer is fine) within the hang bound and keep serving. This reaches
//! the actor layer's decoding of request headers (calls, tells, batches, streams, creates,
//! has, destroy) and of message bodies.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use xoscar_fuzz::{HANG, fixture};
use xoscar_pool::Message;

fuzz_target!(|data: &[u8]| {
    let (runtime, pool) = fixture();
    // First byte: where the header ends (in 1/256ths of the rest); then payloads split at
    // every 0xFF byte of what is left.
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = rest.len() * usize::from(cut) / 256;
    let (header, body) = rest.split_at(cut);
    let payloads: Vec<Bytes> = if body.is_empty() {
        Vec::new()
    } else {
        body.split(|&b| b == 0xFF).map(Bytes::copy_from_slice).collect()
    };
    let address = pool.addresses()[0].clone();
    runtime.block_on(async {
        let caller = xoscar_actor::caller().unwrap();
        let request = Message::new(Bytes::copy_from_slice(header), payloads);
        let answered = tokio::time::timeout(HANG, caller.call(&address, request)).await;
        assert!(answered.is_ok(), "the pool did not answer a hostile request within {HANG:?}");
        xoscar_fuzz::ensure_target(pool).await;
    });
});
