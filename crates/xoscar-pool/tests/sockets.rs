//! TCP and Unix sockets in real time, with timeouts made short: reaping, a server that dies
//! mid-call, malformed input, a blackholed relay, and per-runtime isolation. Deadlines are
//! asserted as upper bounds with generous slack, polling rather than sleeping.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Sleepy, eventually, message, run, sleep_for, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use xoscar_pool::testing::Echo;
use xoscar_pool::{Pool, PoolConfig, PoolError, ServerConfig};
use xoscar_transport::Address;

const SLACK: Duration = Duration::from_secs(3);

fn socket_addresses() -> Vec<Address> {
    common::addresses().into_iter().filter(|a| !matches!(a, Address::Inproc(_))).collect()
}

#[test]
fn idle_connections_are_reaped_and_the_next_call_reconnects() {
    run(async {
        let idle = Duration::from_millis(200);
        for address in socket_addresses() {
            let server = start(&address, Echo, ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default().idle_timeout(idle)).unwrap();
            pool.call(server.local_addr(), message("a")).await.unwrap();
            let released = Instant::now();
            assert_eq!(pool.stats().open_connections, 1);
            let closed = eventually(idle + SLACK, || {
                pool.stats().open_connections == 0 && server.connections() == 0
            })
            .await;
            assert!(closed, "{address}: not reaped within T + slack");
            assert!(released.elapsed() >= idle, "{address}: reaped before T");
            pool.call(server.local_addr(), message("b")).await.unwrap();
            assert_eq!((pool.stats().connects, pool.stats().reaps), (2, 1), "{address}");
        }
    });
}

#[test]
fn calls_in_flight_fail_at_once_when_the_server_task_is_aborted() {
    run(async {
        for address in socket_addresses() {
            let handler = Sleepy::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let endpoint = server.local_addr().clone();
            let calls: Vec<_> = (0..8)
                .map(|_| {
                    let (pool, endpoint) = (pool.clone(), endpoint.clone());
                    tokio::spawn(async move { pool.call(&endpoint, sleep_for(30_000)).await })
                })
                .collect();
            assert!(eventually(SLACK, || handler.started.load(Ordering::SeqCst) == 8).await);
            let killed = Instant::now();
            server.abort();
            for call in calls {
                let error = call.await.unwrap().unwrap_err();
                assert!(
                    matches!(&error, PoolError::ConnectionLost { address, .. } if *address == endpoint.to_string()),
                    "{error}"
                );
            }
            assert!(
                killed.elapsed() < SLACK,
                "{address}: calls failed only after {:?}",
                killed.elapsed()
            );
            assert_eq!(
                pool.stats().open_connections,
                0,
                "{address}: the dead connection left the pool"
            );
        }
    });
}

#[test]
fn malformed_frames_close_only_that_connection() {
    run(async {
        let server = start(&"127.0.0.1:0".parse().unwrap(), Echo, ServerConfig::default()).await;
        let pool = Pool::new(PoolConfig::default()).unwrap();
        pool.call(server.local_addr(), message("before")).await.unwrap();

        // A raw peer: a valid handshake, then a frame of unknown kind.
        let mut raw = TcpStream::connect(server.local_addr().to_string()).await.unwrap();
        let mut hello = bytes::BytesMut::new();
        xoscar_wire::Handshake::new(Default::default()).encode(&mut hello);
        raw.write_all(&hello).await.unwrap();
        assert!(eventually(SLACK, || server.connections() == 2).await);
        raw.write_all(&[0xEE, 0, 0, 0, 0, 0, 0, 0]).await.unwrap();
        assert!(
            eventually(SLACK, || server.connections() == 1).await,
            "the bad connection is closed"
        );
        // The raw peer sees the close after the server's handshake.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(SLACK, raw.read_to_end(&mut rest)).await.unwrap();
        assert!(rest.starts_with(&xoscar_wire::MAGIC));

        pool.call(server.local_addr(), message("after")).await.unwrap();
        assert_eq!(pool.stats().connects, 1, "everyone else keeps their connection");
    });
}

/// A TCP relay that can freeze both directions while keeping its sockets open, the way a NAT
/// that lost its session does.
struct Relay {
    address: Address,
    frozen: Arc<AtomicBool>,
}

impl Relay {
    async fn start(target: Address) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::tcp(listener.local_addr().unwrap());
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = frozen.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let outbound = TcpStream::connect(target.to_string()).await.unwrap();
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                tokio::spawn(pump(in_read, out_write, flag.clone()));
                tokio::spawn(pump(out_read, in_write, flag.clone()));
            }
        });
        Relay { address, frozen }
    }
}

/// Copies bytes unless frozen; frozen, it holds what it read and keeps both sockets open.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else { return };
        if n == 0 {
            return;
        }
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
        // Once frozen and thawed, this connection stays dead: a lost NAT session never returns.
        if frozen.load(Ordering::SeqCst) {
            return;
        }
    }
}

#[test]
fn a_blackholed_connection_fails_its_calls_with_a_timeout_and_the_next_call_redials() {
    run(async {
        let server =
            start(&"127.0.0.1:0".parse().unwrap(), Sleepy::default(), ServerConfig::default())
                .await;
        let relay = Relay::start(server.local_addr().clone()).await;
        let (interval, timeout) = (Duration::from_millis(300), Duration::from_millis(600));
        let pool = Pool::new(
            PoolConfig::default().heartbeat_interval(interval).heartbeat_timeout(timeout),
        )
        .unwrap();
        pool.call(&relay.address, message("through the relay")).await.unwrap();

        relay.frozen.store(true, Ordering::SeqCst);
        let frozen_at = Instant::now();
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let (pool, endpoint) = (pool.clone(), relay.address.clone());
                tokio::spawn(async move { pool.call(&endpoint, sleep_for(0)).await })
            })
            .collect();
        for call in calls {
            let error = call.await.unwrap().unwrap_err();
            assert!(matches!(error, PoolError::ConnectionTimedOut { .. }), "{error}");
        }
        let took = frozen_at.elapsed();
        assert!(took < interval + timeout + SLACK, "dead-peer verdict after {took:?}");
        assert_eq!(pool.stats().dead_peers, 1);

        relay.frozen.store(false, Ordering::SeqCst);
        pool.call(&relay.address, message("fresh connection")).await.unwrap();
        assert_eq!(pool.stats().connects, 2);
    });
}

#[test]
fn each_runtime_has_its_own_connections_and_they_close_with_it() {
    run(async {
        let server = start(&"127.0.0.1:0".parse().unwrap(), Echo, ServerConfig::default()).await;
        let pool = Pool::new(PoolConfig::default()).unwrap();
        // The long-lived connection of this (the test's) runtime.
        pool.call(server.local_addr(), message("main")).await.unwrap();
        assert_eq!(pool.stats().runtimes, 1);

        let threads: Vec<_> = (0..10)
            .map(|_| {
                let (pool, endpoint) = (pool.clone(), server.local_addr().clone());
                std::thread::spawn(move || {
                    let runtime =
                        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    runtime.block_on(async {
                        pool.call(&endpoint, message("from a thread")).await.unwrap();
                    });
                    // The runtime drops here, with its connection.
                })
            })
            .collect();
        // Joined off this runtime, which must keep serving meanwhile.
        tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| t.join().unwrap()))
            .await
            .unwrap();
        assert_eq!(pool.stats().connects, 11, "one connection per runtime");
        let settled = eventually(SLACK, || server.connections() == 1).await;
        assert!(
            settled,
            "the server's count falls back to the long-lived one: {}",
            server.connections()
        );
        assert_eq!(pool.stats().runtimes, 1, "the dropped runtimes left the pool");
        assert_eq!(pool.stats().open_connections, 1);
        pool.call(server.local_addr(), message("still fine")).await.unwrap();
    });
}

#[test]
fn a_reply_is_not_held_back_by_a_partly_received_next_request() {
    run(async {
        let server = start(&"127.0.0.1:0".parse().unwrap(), Echo, ServerConfig::default()).await;
        let mut raw = TcpStream::connect(server.local_addr().to_string()).await.unwrap();
        let mut bytes = bytes::BytesMut::new();
        xoscar_wire::Handshake::new(Default::default()).encode(&mut bytes);
        let mut out = xoscar_wire::WriteBuf::new();
        let encoder = xoscar_wire::FrameEncoder::default();
        encoder
            .encode(
                xoscar_wire::Frame::request(1, bytes::Bytes::from_static(b"first"), vec![]),
                &mut out,
            )
            .unwrap();
        encoder
            .encode(
                xoscar_wire::Frame::request(2, bytes::Bytes::from_static(b"second"), vec![]),
                &mut out,
            )
            .unwrap();
        use bytes::Buf;
        let frames = out.copy_to_bytes(out.remaining());
        // The whole first request and half of the second, which never completes.
        bytes.extend_from_slice(&frames[..frames.len() - 4]);
        raw.write_all(&bytes).await.unwrap();

        let mut reader = tokio::io::BufReader::new(raw);
        let mut handshake = [0u8; xoscar_wire::HANDSHAKE_PREFIX_LEN];
        reader.read_exact(&mut handshake).await.unwrap();
        let hello_len = u32::from_le_bytes(handshake[8..12].try_into().unwrap()) as usize;
        let mut hello = vec![0u8; hello_len];
        reader.read_exact(&mut hello).await.unwrap();
        let mut prefix = [0u8; xoscar_wire::PREFIX_LEN];
        let replied = tokio::time::timeout(SLACK, reader.read_exact(&mut prefix)).await;
        assert!(replied.is_ok(), "the reply to the first request was held back");
        assert_eq!(prefix[0], xoscar_wire::FrameKind::Response as u8);
    });
}
