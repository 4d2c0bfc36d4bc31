//! Handlers that fail or outlive their callers, on every transport: a panic fails its own call
//! and nothing else; aborting the server or losing the caller stops the handlers; a server
//! shuts down cleanly after a panic.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use common::{Scripted, addresses, eventually, header, run, start};
use xoscar_pool::{Pool, PoolConfig, PoolError, ServerConfig, serve};
use xoscar_transport::{TransportConfig, listen};

const BOUND: Duration = Duration::from_secs(10);

fn assert_panicked(error: &PoolError, expected: &str, address: &str) {
    match error {
        PoolError::HandlerPanicked { message: Some(message), address: at } => {
            assert_eq!(message, expected, "{address}");
            assert_eq!(at, address);
        }
        other => panic!("{address}: expected HandlerPanicked, got {other:?}"),
    }
    assert!(!error.is_retry_safe(), "the handler ran");
}

#[test]
fn a_handler_panicking_on_its_first_poll_fails_only_its_own_call() {
    run(async {
        for address in addresses() {
            let handler = Scripted::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let endpoint = server.local_addr().clone();
            // A slow call in flight on the same connection while the other one panics.
            let slow = tokio::spawn({
                let (pool, endpoint) = (pool.clone(), endpoint.clone());
                async move { pool.call(&endpoint, header("sleep:300")).await }
            });
            assert!(eventually(BOUND, || handler.started.load(SeqCst) == 1).await);
            let error = pool.call(&endpoint, header("panic")).await.unwrap_err();
            assert_panicked(&error, "scripted panic", &endpoint.to_string());
            let slow = slow.await.unwrap().unwrap();
            assert_eq!(&slow.header[..], b"sleep:300", "{address}: the other call went on");
            pool.call(&endpoint, header("after")).await.unwrap();
            let stats = pool.stats();
            assert_eq!(
                (stats.connects, stats.open_connections),
                (1, 1),
                "{address}: one connection throughout"
            );
            assert_eq!(server.connections(), 1, "{address}");
        }
    });
}

#[test]
fn a_handler_panicking_after_an_await_fails_its_call_and_shutdown_still_completes() {
    run(async {
        for address in addresses() {
            let handler = Scripted::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let endpoint = server.local_addr().clone();
            let error = tokio::time::timeout(BOUND, pool.call(&endpoint, header("panic-after:20")))
                .await
                .expect("a call whose handler panicked after an await must not hang")
                .unwrap_err();
            assert_panicked(&error, "scripted panic after 20 ms", &endpoint.to_string());
            pool.call(&endpoint, header("still serving")).await.unwrap();
            assert_eq!(pool.stats().connects, 1, "{address}");
            // The server forgot the request: a graceful shutdown has nothing left to wait for.
            tokio::time::timeout(BOUND, server.shutdown())
                .await
                .unwrap_or_else(|_| panic!("{address}: shutdown hung after a panic"));
        }
    });
}

#[test]
fn a_panicking_one_way_handler_leaves_the_connection_serving() {
    run(async {
        for address in addresses() {
            let handler = Scripted::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let endpoint = server.local_addr().clone();
            pool.notify(&endpoint, header("before")).await.unwrap();
            pool.notify(&endpoint, header("panic")).await.unwrap();
            pool.notify(&endpoint, header("after")).await.unwrap();
            assert_eq!(&pool.call(&endpoint, header("call")).await.unwrap().header[..], b"call");
            assert!(
                eventually(BOUND, || handler.notes.lock().len() == 2).await,
                "{address}: {:?}",
                handler.notes.lock()
            );
            assert_eq!(*handler.notes.lock(), ["before", "after"], "{address}");
            assert_eq!(pool.stats().connects, 1, "{address}");
        }
    });
}

#[test]
fn aborting_the_server_drops_every_handler_future() {
    run(async {
        for address in addresses() {
            let handler = Scripted::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let calls: Vec<_> = (0..4)
                .map(|_| {
                    let (pool, endpoint) = (pool.clone(), server.local_addr().clone());
                    tokio::spawn(async move { pool.call(&endpoint, header("sleep:60000")).await })
                })
                .collect();
            assert!(eventually(BOUND, || handler.started.load(SeqCst) == 4).await, "{address}");
            server.abort();
            assert!(
                eventually(BOUND, || handler.dropped.load(SeqCst) == 4).await,
                "{address}: {} of 4 handler futures dropped",
                handler.dropped.load(SeqCst)
            );
            for call in calls {
                let error = call.await.unwrap().unwrap_err();
                assert!(matches!(error, PoolError::ConnectionLost { sent: true, .. }), "{error}");
            }
        }
    });
}

#[test]
fn a_caller_that_goes_away_cancels_its_requests_on_the_server() {
    run(async {
        for address in addresses() {
            let handler = Scripted::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let endpoint = server.local_addr().clone();
            // The caller lives on its own runtime, which shuts down with calls in flight.
            let caller = std::thread::spawn(move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let pool = Pool::new(PoolConfig::default()).unwrap();
                runtime.block_on(async {
                    for _ in 0..3 {
                        let (pool, endpoint) = (pool.clone(), endpoint.clone());
                        tokio::spawn(
                            async move { pool.call(&endpoint, header("sleep:60000")).await },
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                });
                drop(runtime);
            });
            assert!(eventually(BOUND, || handler.started.load(SeqCst) == 3).await, "{address}");
            caller.join().unwrap();
            assert!(
                eventually(BOUND, || handler.dropped.load(SeqCst) == 3).await,
                "{address}: the lost caller's handlers were not cancelled ({} of 3)",
                handler.dropped.load(SeqCst)
            );
            assert!(eventually(BOUND, || server.connections() == 0).await, "{address}");
        }
    });
}

#[test]
fn serving_outside_a_runtime_is_an_error_not_a_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let address = common::inproc();
    let listener = runtime.block_on(listen(&address, &TransportConfig::default())).unwrap();
    let error = serve(listener, Scripted::default(), ServerConfig::default()).unwrap_err();
    assert!(matches!(error, PoolError::NoRuntime), "{error}");
}

#[test]
fn graceful_shutdown_answers_calls_in_flight_then_completes() {
    run(async {
        for address in addresses() {
            let handler = Scripted::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let endpoint = server.local_addr().clone();
            let call = tokio::spawn({
                let (pool, endpoint) = (pool.clone(), endpoint.clone());
                async move { pool.call(&endpoint, header("sleep:200")).await }
            });
            assert!(eventually(BOUND, || handler.started.load(SeqCst) == 1).await);
            tokio::time::timeout(BOUND, server.shutdown()).await.expect("shutdown completes");
            let answer = call.await.unwrap().unwrap();
            assert_eq!(&answer.header[..], b"sleep:200", "{address}: answered before the close");
            assert_eq!(server.connections(), 0, "{address}");
            assert_eq!(handler.dropped.load(SeqCst), 0, "{address}: nothing was cut");
        }
    });
}

#[test]
fn a_caller_reusing_a_request_id_leaks_nothing_and_shutdown_still_completes() {
    common::run_paused(async {
        let handler = Scripted::default();
        let server = start(&common::inproc(), handler.clone(), ServerConfig::default()).await;
        // A raw caller that breaks the protocol: the same id twice while the first runs.
        let mut channel =
            xoscar_transport::connect(server.local_addr(), &TransportConfig::default())
                .await
                .unwrap();
        for _ in 0..2 {
            let request =
                xoscar_wire::Frame::request(7, bytes::Bytes::from_static(b"sleep:1000"), vec![]);
            channel.send(request).await.unwrap();
        }
        let answer = channel.recv().await.unwrap().unwrap().into_frame();
        assert!(matches!(answer.envelope, xoscar_wire::Envelope::Response(ref r) if r.id == 7));
        assert_eq!(handler.dropped.load(SeqCst), 1, "the earlier request was cancelled");
        // Shutdown goes away; the caller closes; nothing is left in flight, so it completes.
        let shutdown = server.shutdown();
        let go_away = channel.recv().await.unwrap().unwrap().into_frame();
        assert!(matches!(go_away.envelope, xoscar_wire::Envelope::GoAway(_)), "{go_away:?}");
        drop(channel);
        tokio::time::timeout(BOUND, shutdown).await.expect("shutdown completes");
    });
}
