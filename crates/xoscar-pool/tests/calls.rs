//! Calls on every transport: multiplexing, single flight, leases, one-way sends, cancellation,
//! timeouts, limits, and use outside a runtime.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use bytes::Bytes;
use common::{Sleepy, addresses, eventually, message, run, sleep_for, start};
use xoscar_pool::testing::Echo;
use xoscar_pool::{Message, Pool, PoolConfig, PoolError, ServerConfig};
use xoscar_transport::TransportConfig;
use xoscar_wire::Limits;

/// Answers read together are put in their calls' slots under one lock for a run of them (32
/// at most), and their callers woken once it is released: every caller of a batch larger than
/// that run is woken, with its own answer.
#[test]
fn every_call_of_a_batch_answered_together_gets_its_own_answer() {
    run(async {
        for address in addresses() {
            let server = start(&address, Echo, ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            for _ in 0..5 {
                let calls = (0..200u64).map(|i| {
                    let (pool, endpoint) = (pool.clone(), server.local_addr().clone());
                    let request = Message::new(Bytes::new(), vec![Bytes::from(i.to_string())]);
                    tokio::spawn(async move { (i, pool.call(&endpoint, request).await) })
                });
                for call in calls.collect::<Vec<_>>() {
                    let (i, reply) = call.await.unwrap();
                    let reply = reply.unwrap_or_else(|e| panic!("{address}: {e}"));
                    assert_eq!(reply.payloads[0], Bytes::from(i.to_string()), "{address}");
                }
            }
            assert_eq!(pool.stats().leases_in_flight, 0, "{address}");
        }
    });
}

#[test]
fn many_calls_in_flight_on_one_connection_are_matched_by_id() {
    run(async {
        for address in addresses() {
            let server = start(&address, Sleepy::default(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            // Later calls finish first: responses come back in reverse order.
            let calls = (0..64u64).map(|i| {
                let (pool, endpoint) = (pool.clone(), server.local_addr().clone());
                tokio::spawn(async move {
                    let request = Message::new(
                        Bytes::from((64 - i).to_string()),
                        vec![Bytes::from(i.to_string())],
                    );
                    (i, pool.call(&endpoint, request).await)
                })
            });
            for call in calls.collect::<Vec<_>>() {
                let (i, reply) = call.await.unwrap();
                let reply = reply.unwrap_or_else(|e| panic!("{address}: {e}"));
                assert_eq!(reply.payloads[0], Bytes::from(i.to_string()), "{address}");
            }
            let stats = pool.stats();
            assert_eq!(
                (stats.connects, stats.open_connections, stats.leases_in_flight),
                (1, 1, 0),
                "{address}"
            );
        }
    });
}

#[test]
fn concurrent_first_calls_share_one_dial() {
    run(async {
        for address in addresses() {
            let server = start(&address, Echo, ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let endpoint = server.local_addr().clone();
            let calls: Vec<_> = (0..50)
                .map(|_| {
                    let (pool, endpoint) = (pool.clone(), endpoint.clone());
                    tokio::spawn(async move { pool.call(&endpoint, message("hi")).await })
                })
                .collect();
            for call in calls {
                call.await.unwrap().unwrap();
            }
            assert_eq!(pool.stats().connects, 1, "{address}");
            assert!(eventually(Duration::from_secs(5), || server.connections() == 1).await);
        }
    });
}

#[test]
fn one_way_sends_arrive_and_release_their_leases() {
    run(async {
        for address in addresses() {
            let handler = Sleepy::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            for _ in 0..10 {
                pool.notify(server.local_addr(), message("one-way")).await.unwrap();
            }
            assert!(
                eventually(Duration::from_secs(5), || handler.notified.load(SeqCst) == 10).await,
                "{address}"
            );
            assert!(
                eventually(Duration::from_secs(5), || pool.stats().leases_in_flight == 0).await,
                "{address}"
            );
        }
    });
}

#[test]
fn dropping_a_call_cancels_it_on_the_server_and_releases_its_lease() {
    run(async {
        for address in addresses() {
            let handler = Sleepy::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let endpoint = server.local_addr().clone();
            let call = tokio::spawn({
                let pool = pool.clone();
                async move { pool.call(&endpoint, sleep_for(60_000)).await }
            });
            assert!(eventually(Duration::from_secs(5), || handler.started.load(SeqCst) == 1).await);
            assert_eq!(pool.stats().leases_in_flight, 1);
            call.abort();
            assert!(call.await.unwrap_err().is_cancelled());
            assert_eq!(
                pool.stats().leases_in_flight,
                0,
                "{address}: the lease is released at once"
            );
            assert!(
                eventually(Duration::from_secs(5), || handler.dropped.load(SeqCst) == 1).await,
                "{address}: the server dropped the handler future"
            );
            // The connection is still good.
            pool.call(server.local_addr(), sleep_for(0)).await.unwrap();
        }
    });
}

#[test]
fn a_call_timeout_is_its_own_error_and_cancels_the_call() {
    run(async {
        for address in addresses() {
            let handler = Sleepy::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool =
                Pool::new(PoolConfig::default().call_timeout(Duration::from_millis(100))).unwrap();
            let error = pool.call(server.local_addr(), sleep_for(60_000)).await.unwrap_err();
            assert!(matches!(error, PoolError::CallTimedOut { .. }), "{address}: {error}");
            assert!(eventually(Duration::from_secs(5), || handler.dropped.load(SeqCst) == 1).await);
            assert_eq!(pool.stats().leases_in_flight, 0);
            // A per-call timeout overrides the pool's.
            pool.call_with_timeout(
                server.local_addr(),
                sleep_for(200),
                Some(Duration::from_secs(10)),
            )
            .await
            .unwrap();
        }
    });
}

#[test]
fn a_request_over_the_limits_fails_alone() {
    run(async {
        for address in addresses() {
            let server = start(&address, Echo, ServerConfig::default()).await;
            let transport =
                TransportConfig::default().limits(Limits::default().max_payload_len(1024));
            let pool = Pool::new(PoolConfig::default().transport(transport)).unwrap();
            let big = Message::new(Bytes::new(), vec![Bytes::from(vec![0u8; 2048])]);
            let error = pool.call(server.local_addr(), big).await.unwrap_err();
            assert!(matches!(error, PoolError::MessageTooLarge { .. }), "{address}: {error}");
            pool.call(server.local_addr(), message("small")).await.unwrap();
            assert_eq!(pool.stats().leases_in_flight, 0);
        }
    });
}

#[test]
fn dialling_nobody_is_a_connect_error_naming_the_address() {
    run(async {
        let pool = Pool::new(PoolConfig::default()).unwrap();
        let endpoint = "inproc://nobody-here".parse().unwrap();
        let error = pool.call(&endpoint, message("hello")).await.unwrap_err();
        assert!(
            matches!(&error, PoolError::Connect { address, .. } if address == "inproc://nobody-here"),
            "{error}"
        );
        assert_eq!(pool.stats().open_connections, 0);
    });
}

#[test]
fn a_lease_keeps_one_connection_for_a_transfer() {
    run(async {
        for address in addresses() {
            let server = start(&address, Echo, ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let lease = pool.lease(server.local_addr()).await.unwrap();
            assert_eq!(pool.stats().leases_in_flight, 1);
            for chunk in 0..5u8 {
                let reply = lease
                    .call(Message::new(Bytes::new(), vec![Bytes::from(vec![chunk; 100])]))
                    .await
                    .unwrap();
                assert_eq!(reply.payloads[0][0], chunk);
            }
            lease.notify(message("done")).await.unwrap();
            drop(lease);
            assert!(
                eventually(Duration::from_secs(5), || pool.stats().leases_in_flight == 0).await
            );
            assert_eq!(pool.stats().connects, 1);
        }
    });
}

#[test]
fn outside_a_runtime_a_call_is_a_typed_error() {
    let pool = Pool::new(PoolConfig::default()).unwrap();
    let endpoint = "127.0.0.1:1".parse().unwrap();
    let mut call = std::pin::pin!(pool.call(&endpoint, message("x")));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match call.as_mut().poll(&mut context) {
        std::task::Poll::Ready(Err(PoolError::NoRuntime)) => {}
        other => panic!("expected NoRuntime, got {:?}", other.map(|r| r.map(drop))),
    }
}

use std::future::Future;

#[test]
fn a_message_larger_than_the_queue_bound_still_goes_alone() {
    run(async {
        for address in addresses() {
            let server = start(&address, Echo, ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default().max_queued_bytes(1024)).unwrap();
            let big = Bytes::from(vec![3u8; 1 << 20]);
            let request = Message::new(Bytes::new(), vec![big.clone()]);
            let reply = pool.call(server.local_addr(), request).await.unwrap();
            assert_eq!(reply.payloads[0], big, "{address}");
            pool.notify(server.local_addr(), Message::new(Bytes::new(), vec![big])).await.unwrap();
        }
    });
}
