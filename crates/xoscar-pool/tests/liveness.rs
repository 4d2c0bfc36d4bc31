//! The heartbeat does not misfire and does not miss: a large answer arriving slowly keeps its
//! connection alive; a ping goes out ahead of queued bulk data and its grace runs from when it
//! was written; a transfer into a blackhole is still declared dead; a server that stopped
//! reading at its limits keeps its callers' heartbeats fed; an open response stream whose
//! peer goes silent is declared dead.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{header, inproc, run, run_paused, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use xoscar_pool::{Handler, Message, Pool, PoolConfig, PoolError, ServerConfig};
use xoscar_transport::{Channel, TransportConfig, listen};
use xoscar_wire::{Envelope, Frame, FrameKind, Handshake, pb};

fn heartbeat(interval_ms: u64, timeout_ms: u64) -> PoolConfig {
    PoolConfig::default()
        .heartbeat_interval(Duration::from_millis(interval_ms))
        .heartbeat_timeout(Duration::from_millis(timeout_ms))
}

/// The bytes of `frame` as they go on a socket.
fn encoded(frame: Frame) -> Vec<u8> {
    use bytes::Buf;
    let mut out = xoscar_wire::WriteBuf::new();
    xoscar_wire::FrameEncoder::default().encode(frame, &mut out).unwrap();
    out.copy_to_bytes(out.remaining()).to_vec()
}

#[test]
fn a_large_answer_arriving_slowly_keeps_its_connection_alive() {
    run(async {
        // A raw TCP server that answers the first request with 4 MiB, 64 KiB every 40 ms:
        // about 2.6 s for one frame, many times the 150 + 300 ms heartbeat.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = xoscar_transport::Address::tcp(listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut hello = BytesMut::new();
            Handshake::new(pb::Hello::default()).encode(&mut hello);
            socket.write_all(&hello).await.unwrap();
            let (mut buffer, limits) = (BytesMut::new(), xoscar_wire::Limits::default());
            while Handshake::decode(&mut buffer, &limits).unwrap().is_none() {
                socket.read_buf(&mut buffer).await.unwrap();
            }
            let mut decoder = xoscar_wire::FrameDecoder::new(limits);
            let request = loop {
                if let Some(frame) = decoder.decode(&mut buffer).unwrap() {
                    break frame;
                }
                socket.read_buf(&mut buffer).await.unwrap();
            };
            let Envelope::Request(request) = request.envelope else { panic!("not a request") };
            let big = Bytes::from(vec![9u8; 4 << 20]);
            let bytes = encoded(Frame::response(request.id, Bytes::new(), vec![big]));
            for chunk in bytes.chunks(64 * 1024) {
                socket.write_all(chunk).await.unwrap();
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            socket
        });
        let pool = Pool::new(heartbeat(150, 300)).unwrap();
        let answer = pool.call(&endpoint, header("big, slowly")).await;
        let answer = answer.unwrap_or_else(|e| panic!("a slow but moving answer was cut: {e}"));
        assert_eq!(answer.payloads[0].len(), 4 << 20);
        assert_eq!(pool.stats().dead_peers, 0);
        drop(server.await.unwrap());
    });
}

/// Accepts one in-process connection.
async fn accept(listener: &mut xoscar_transport::Listener) -> Channel {
    listener.accept().await.unwrap().handshake().await.unwrap()
}

#[test]
fn a_ping_overtakes_queued_bulk_data_and_its_grace_runs_from_when_it_was_written() {
    run_paused(async {
        let mut listener = listen(&inproc(), &TransportConfig::default()).await.unwrap();
        let endpoint = listener.local_addr().clone();
        // Reads one frame every 1.5 s, answers pings as it reads them, and answers the call
        // once it has read the call and the eight bulk messages. Records the kinds it read.
        let kinds = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let server = tokio::spawn({
            let kinds = kinds.clone();
            async move {
                let mut channel = accept(&mut listener).await;
                let (mut call, mut bulk) = (None, 0);
                loop {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    let Ok(Some(frame)) = channel.recv().await else { return };
                    let frame = frame.into_frame();
                    kinds.lock().push(frame.envelope.kind());
                    match frame.envelope {
                        Envelope::Request(request) => call = Some(request),
                        Envelope::Notify(_) => bulk += 1,
                        Envelope::Ping(pb::Ping { nonce }) => {
                            let pong = Frame::new(Envelope::Pong(pb::Pong { nonce }), vec![]);
                            channel.send(pong).await.unwrap();
                        }
                        _ => {}
                    }
                    if bulk == 8
                        && let Some(call) = call.take()
                    {
                        let answer = Frame::response(call.id, call.header, vec![]);
                        channel.send(answer).await.unwrap();
                    }
                }
            }
        });
        // The in-process channel holds one frame: the writer waits on the reader like a
        // socket whose buffers are full.
        let config = heartbeat(1000, 2000)
            .idle_timeout(Duration::ZERO)
            .transport(TransportConfig::default().inproc_capacity(1));
        let pool = Pool::new(config).unwrap();
        let call = tokio::spawn({
            let (pool, endpoint) = (pool.clone(), endpoint.clone());
            async move { pool.call(&endpoint, header("call")).await }
        });
        tokio::task::yield_now().await;
        let bulk: Vec<_> = (0..8)
            .map(|_| {
                let (pool, endpoint) = (pool.clone(), endpoint.clone());
                let big = Message::new(Bytes::new(), vec![Bytes::from(vec![1u8; 1 << 20])]);
                tokio::spawn(async move { pool.notify(&endpoint, big).await })
            })
            .collect();
        let answer = call.await.unwrap();
        answer.unwrap_or_else(|e| panic!("the connection was declared dead: {e}"));
        for send in bulk {
            send.await.unwrap().unwrap();
        }
        server.abort();
        let kinds = kinds.lock().clone();
        let ping = kinds.iter().position(|k| *k == FrameKind::Ping).expect("a ping was sent");
        assert!(ping <= 3, "the ping waited behind bulk data: read order {kinds:?}");
        assert_eq!(pool.stats().dead_peers, 0);
    });
}

#[test]
fn a_transfer_into_a_blackhole_is_declared_dead_even_though_its_ping_cannot_be_written() {
    run_paused(async {
        let mut listener = listen(&inproc(), &TransportConfig::default()).await.unwrap();
        let endpoint = listener.local_addr().clone();
        let frozen = tokio::spawn(async move {
            let _channel = accept(&mut listener).await;
            std::future::pending::<()>().await
        });
        let config = heartbeat(1000, 2000)
            .idle_timeout(Duration::ZERO)
            .transport(TransportConfig::default().inproc_capacity(1));
        let pool = Pool::new(config).unwrap();
        drop(pool.lease(&endpoint).await.unwrap());
        let started = Instant::now();
        let lease = pool.lease(&endpoint).await.unwrap();
        // Fills the one-frame channel; the call's request then waits forever to be written,
        // and the ping queues behind it.
        let first = Message::new(Bytes::new(), vec![Bytes::from(vec![0u8; 1024])]);
        lease.notify(first).await.unwrap();
        let error = lease.call(header("anyone?")).await.unwrap_err();
        assert!(matches!(error, PoolError::ConnectionTimedOut { .. }), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(3), "dead at interval + timeout");
        assert_eq!(pool.stats().dead_peers, 1);
        frozen.abort();
    });
}

/// A handler that takes 10 s and counts how many run at once.
#[derive(Clone, Default)]
struct Slow {
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Handler for Slow {
    async fn call(&self, request: Message) -> Message {
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_secs(10)).await;
        self.running.fetch_sub(1, SeqCst);
        request
    }
}

#[test]
fn a_server_paused_at_its_limit_keeps_callers_heartbeats_fed() {
    run_paused(async {
        let slow = Slow::default();
        // One request at a time: the other two wait unread; the caller's pings too.
        let config = ServerConfig::default().max_in_flight(1);
        let server = start(&inproc(), slow.clone(), config).await;
        let pool = Pool::new(heartbeat(1000, 2000)).unwrap();
        let started = Instant::now();
        let calls: Vec<_> = (0..3)
            .map(|i| {
                let (pool, endpoint) = (pool.clone(), server.local_addr().clone());
                tokio::spawn(async move { pool.call(&endpoint, header(format!("{i}"))).await })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap_or_else(|e| panic!("misfired: {e}"));
        }
        assert_eq!(started.elapsed(), Duration::from_secs(30), "one after another");
        assert_eq!(slow.most.load(SeqCst), 1, "the server held to its limit");
        assert_eq!(pool.stats().dead_peers, 0);
    });
}

#[test]
fn a_call_outliving_a_graceful_shutdown_by_far_is_answered_not_declared_dead() {
    run_paused(async {
        let handler = common::Scripted::default();
        let server = start(&inproc(), handler.clone(), ServerConfig::default()).await;
        // Heartbeat 1 s + 2 s; the call takes 60 s. After the go-away the caller shuts its
        // sending side, so its pings cannot go out; the server keeps it fed while it answers.
        let pool = Pool::new(heartbeat(1000, 2000)).unwrap();
        let endpoint = server.local_addr().clone();
        let call = tokio::spawn({
            let (pool, endpoint) = (pool.clone(), endpoint.clone());
            async move { pool.call(&endpoint, header("sleep:60000")).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let started = Instant::now();
        server.shutdown().await;
        let answer = call.await.unwrap().unwrap_or_else(|e| panic!("the call failed: {e}"));
        assert_eq!(&answer.header[..], b"sleep:60000");
        assert_eq!(started.elapsed(), Duration::from_secs(59), "shutdown waited for the answer");
        assert_eq!(pool.stats().dead_peers, 0);
    });
}

#[test]
fn after_a_quick_pong_the_next_ping_comes_one_interval_later() {
    run_paused(async {
        let mut listener = listen(&inproc(), &TransportConfig::default()).await.unwrap();
        let endpoint = listener.local_addr().clone();
        // Never answers the call; answers every ping at once, and counts them.
        let pings = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn({
            let pings = pings.clone();
            async move {
                let mut channel = accept(&mut listener).await;
                while let Ok(Some(frame)) = channel.recv().await {
                    let frame = frame.into_frame();
                    if let Envelope::Ping(pb::Ping { nonce }) = frame.envelope {
                        pings.fetch_add(1, SeqCst);
                        let pong = Frame::new(Envelope::Pong(pb::Pong { nonce }), vec![]);
                        channel.send(pong).await.unwrap();
                    }
                }
            }
        });
        let config = heartbeat(1000, 5000).idle_timeout(Duration::ZERO);
        let pool = Pool::new(config).unwrap();
        let call = tokio::spawn({
            let (pool, endpoint) = (pool.clone(), endpoint.clone());
            async move { pool.call(&endpoint, header("never answered")).await }
        });
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        // One ping per second of silence after each pong: 10 in 10.5 s (not one per
        // interval + timeout, which would be 2).
        assert_eq!(pings.load(SeqCst), 10);
        assert_eq!(pool.stats().dead_peers, 0);
        call.abort();
        server.abort();
    });
}

#[test]
fn an_open_stream_whose_peer_goes_silent_is_declared_dead() {
    run_paused(async {
        let mut listener = listen(&inproc(), &TransportConfig::default()).await.unwrap();
        let endpoint = listener.local_addr().clone();
        // Answers the stream request with two items, then neither reads nor writes again.
        let silent = tokio::spawn(async move {
            let mut channel = accept(&mut listener).await;
            let Ok(Some(frame)) = channel.recv().await else { return };
            let frame = frame.into_frame();
            let Envelope::Request(request) = frame.envelope else { panic!("not a request") };
            assert_eq!(request.stream_credit, 4);
            for _ in 0..2 {
                let item = pb::Response { id: request.id, more: true, ..Default::default() };
                channel.send(Frame::new(Envelope::Response(item), vec![])).await.unwrap();
            }
            std::future::pending::<()>().await
        });
        let pool = Pool::new(heartbeat(1000, 2000).idle_timeout(Duration::ZERO)).unwrap();
        let started = Instant::now();
        let mut stream = pool.call_stream(&endpoint, header("stream"), 4).await.unwrap();
        for _ in 0..2 {
            stream.next().await.unwrap().unwrap();
        }
        let error = stream.next().await.unwrap().unwrap_err();
        assert!(matches!(error, PoolError::ConnectionTimedOut { .. }), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(3), "dead at interval + timeout");
        assert!(stream.next().await.is_none());
        assert_eq!(pool.stats().dead_peers, 1);
        silent.abort();
    });
}
