//! An answer over the frame limits fails its own call, and nothing else, on every transport:
//! the server checks each answer and stream item before queuing it, answers that request
//! alone with `TOO_LARGE` naming the limit, and the connection and every other call on it
//! go on.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{addresses, run, start};
use xoscar_pool::{
    Handler, Message, Pool, PoolConfig, PoolError, Responder, ServerConfig, StreamError,
};

/// Answers `big` with a 2 MiB header (the envelope limit is 1 MiB), `sleep` after 300 ms with
/// its request, a `stream` with one small item, then one item of 2 MiB (recording what its
/// producer was told), and anything else with itself.
#[derive(Clone, Default)]
struct Oversized {
    producer_saw: std::sync::Arc<parking_lot::Mutex<Option<Result<(), StreamError>>>>,
}

const BIG: usize = 2 << 20;

impl Handler for Oversized {
    const RESPONDS: bool = true;

    async fn call(&self, request: Message) -> Message {
        Responder::respond_detached(self, request).await
    }

    fn respond(&self, request: Message, mut responder: Responder) {
        let saw = self.producer_saw.clone();
        tokio::spawn(async move {
            match &request.header[..] {
                b"big" => responder.respond(Message::new(vec![b'x'; BIG], Vec::new())),
                b"sleep" => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    responder.respond(request);
                }
                b"stream" => {
                    responder.send_item(Message::new(&b"small"[..], Vec::new())).await.unwrap();
                    let big = responder.send_item(Message::new(vec![b'x'; BIG], Vec::new())).await;
                    *saw.lock() = Some(big);
                }
                _ => responder.respond(request),
            }
        });
    }
}

#[test]
fn an_answer_over_the_frame_limits_fails_that_call_alone() {
    run(async {
        for address in addresses() {
            let handler = Oversized::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr().clone();
            let slow = tokio::spawn({
                let (pool, at) = (pool.clone(), at.clone());
                async move { pool.call(&at, Message::new(&b"sleep"[..], Vec::new())).await }
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            let error = pool.call(&at, Message::new(&b"big"[..], Vec::new())).await.unwrap_err();
            match &error {
                PoolError::ResponseTooLarge { reason, .. } => {
                    assert!(
                        reason.contains("exceeds the limit of 1048576 bytes"),
                        "{address}: {reason}"
                    );
                }
                other => panic!("{address}: expected ResponseTooLarge, got {other:?}"),
            }
            assert!(!error.is_retry_safe(), "the handler ran");
            let slow = slow.await.unwrap().expect("the other call in flight went on");
            assert_eq!(&slow.header[..], b"sleep", "{address}");

            let mut stream =
                pool.call_stream(&at, Message::new(&b"stream"[..], Vec::new()), 8).await.unwrap();
            let first = stream.next().await.unwrap().unwrap();
            assert_eq!(&first.header[..], b"small");
            let ended = stream.next().await.unwrap().unwrap_err();
            assert!(matches!(ended, PoolError::ResponseTooLarge { .. }), "{address}: {ended:?}");
            assert!(stream.next().await.is_none(), "{address}: the stream ended there");
            assert_eq!(*handler.producer_saw.lock(), Some(Err(StreamError::TooLarge)));

            pool.call(&at, Message::new(Bytes::from_static(b"after"), Vec::new())).await.unwrap();
            let stats = pool.stats();
            assert_eq!(
                (stats.connects, stats.open_connections),
                (1, 1),
                "{address}: one connection throughout"
            );
        }
    });
}

/// Answers at once, on the read side (its answer is written inline): `big` with a 2 MiB
/// header, anything else with itself.
struct OversizedAtOnce;

impl Handler for OversizedAtOnce {
    async fn call(&self, request: Message) -> Message {
        match &request.header[..] {
            b"big" => Message::new(vec![b'x'; BIG], Vec::new()),
            _ => request,
        }
    }
}

#[test]
fn an_answer_made_at_once_over_the_frame_limits_fails_that_call_alone() {
    run(async {
        for address in addresses() {
            let server = start(&address, OversizedAtOnce, ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr().clone();
            // Sent together, so that the answers are written in one batch around the big one.
            let call = |header: &'static [u8]| pool.call(&at, Message::new(header, Vec::new()));
            let (before, big, after) = tokio::join!(call(b"before"), call(b"big"), call(b"after"));
            match big.unwrap_err() {
                PoolError::ResponseTooLarge { reason, .. } => assert!(
                    reason.contains("exceeds the limit of 1048576 bytes"),
                    "{address}: {reason}"
                ),
                other => panic!("{address}: expected ResponseTooLarge, got {other:?}"),
            }
            assert_eq!(&before.unwrap().header[..], b"before", "{address}");
            assert_eq!(&after.unwrap().header[..], b"after", "{address}");
            assert_eq!(&call(b"later").await.unwrap().header[..], b"later", "{address}");
            let stats = pool.stats();
            assert_eq!(
                (stats.connects, stats.open_connections),
                (1, 1),
                "{address}: one connection throughout"
            );
        }
    });
}

/// Limits so tight that even the `TOO_LARGE` answer (its header names the limit) breaks them:
/// the connection ends, the call fails with the connection, and the next call dials afresh.
/// Nothing panics or hangs. Over byte streams: in-process, a channel's frames are checked
/// against the dialler's limits both ways, so the listener's do not apply.
#[test]
fn an_answer_whose_too_large_answer_breaks_the_limits_too_ends_the_connection() {
    run(async {
        for address in addresses() {
            if matches!(address, xoscar_transport::Address::Inproc(_)) {
                continue;
            }
            let limits = xoscar_wire::Limits::default().max_envelope_len(32);
            let transport = xoscar_transport::TransportConfig::default().limits(limits);
            let listener = xoscar_transport::listen(&address, &transport).await.unwrap();
            let server =
                xoscar_pool::serve(listener, Oversized::default(), ServerConfig::default())
                    .unwrap();
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr().clone();
            let call = |header: &'static [u8]| pool.call(&at, Message::new(header, Vec::new()));
            assert_eq!(&call(b"ok").await.unwrap().header[..], b"ok", "{address}");
            let error = call(b"big").await.unwrap_err();
            assert!(matches!(error, PoolError::ConnectionLost { .. }), "{address}: {error:?}");
            assert_eq!(&call(b"again").await.unwrap().header[..], b"again", "{address}");
            assert_eq!(pool.stats().connects, 2, "{address}: the second call dialled afresh");
        }
    });
}
