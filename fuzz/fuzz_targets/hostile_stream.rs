//! A hostile peer's byte stream to an actor pool over a Unix socket: a valid handshake, then
//! the input as is. The server must end the exchange (answer, refuse, close) within the hang
//! bound whatever the bytes, and go on serving others: each input is followed by a good call
//! (after creating the target again if the input, fairly, destroyed it).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xoscar_actor::{ActorError, ActorRef};
use xoscar_fuzz::{HANG, Note, Target, fixture};
use xoscar_transport::Address;
use xoscar_wire::{Handshake, pb};

fuzz_target!(|data: &[u8]| {
    let (runtime, pool) = fixture();
    let Address::Unix(path) = pool.addresses()[1].clone() else { unreachable!() };
    runtime.block_on(async {
        let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
        let mut hello = BytesMut::new();
        Handshake::new(pb::Hello::default()).encode(&mut hello);
        let exchange = async {
            stream.write_all(&hello).await?;
            stream.write_all(data).await?;
            stream.shutdown().await?;
            let mut sink = Vec::new();
            stream.read_to_end(&mut sink).await
        };
        // A reset is an answer too; only a hang is a failure.
        let ended = tokio::time::timeout(HANG, exchange).await;
        assert!(ended.is_ok(), "the server neither answered nor closed within {HANG:?}");
        // The pool still serves: (re)create the target if the input destroyed it, then call.
        // A destroy the input sent may still run after its connection broke (requests already
        // read are not undone), so a "not found" gets a few more tries.
        let note = Note { n: 7, ..Default::default() };
        let good = ActorRef::<Target>::new(pool.addresses()[0].clone(), "t");
        for attempt in 0.. {
            xoscar_fuzz::ensure_target(pool).await;
            match good.call(note.clone()).await {
                Ok(answer) => {
                    assert_eq!(answer, note);
                    break;
                }
                Err(ActorError::NotFound { .. }) if attempt < 5 => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(error) => panic!("the pool stopped serving: {error}"),
            }
        }
    });
});
