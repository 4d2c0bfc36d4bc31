//! [`Endpoint`], [`RecentConnection`] and the pool's own one-entry memory behind a plain
//! [`Pool::call`]: calls that take their lease on the connection of the last call. Each remembered connection is used only while the pool's own lookup would have
//! given it: same pool, same runtime, same endpoint, still taking leases. Reaped, gone away,
//! declared dead, another pool's or another runtime's, it is looked up (and dialled) afresh,
//! and the call succeeds.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{TEST_TIMEOUT, echo_server, inproc, message, pool_with, run_paused, settle, start};
use xoscar_pool::testing::Echo;
use xoscar_pool::{
    Handler, Message, Pool, PoolConfig, PoolError, RecentConnection, ServerConfig, serve,
};
use xoscar_transport::{TransportConfig, listen};

const T: Duration = Duration::from_secs(1);

/// Answers every call with its own name, so a test sees which server a call reached.
struct Named(&'static str);

impl Handler for Named {
    async fn call(&self, _: Message) -> Message {
        Message::new(Bytes::from_static(self.0.as_bytes()), vec![])
    }
}

#[test]
fn calls_through_an_endpoint_share_one_connection_and_redial_after_a_reap() {
    run_paused(async {
        let server = start(&inproc(), Echo, ServerConfig::default()).await;
        let pool = pool_with(T);
        let endpoint = pool.endpoint(server.local_addr().clone());
        assert_eq!(endpoint.address(), server.local_addr());
        for _ in 0..10 {
            let answer = endpoint.clone().call(message("a")).await.unwrap();
            assert_eq!(answer.header, "a");
        }
        assert_eq!(pool.stats().connects, 1, "one connection for every call");
        assert_eq!(pool.stats().leases_in_flight, 0, "each call released its lease");

        tokio::time::sleep(2 * T).await;
        settle().await;
        let stats = pool.stats();
        assert_eq!((stats.open_connections, stats.reaps), (0, 1), "the idle connection went");

        // The remembered connection takes no lease any more: the call dials afresh.
        assert_eq!(endpoint.call(message("b")).await.unwrap().header, "b");
        assert_eq!(endpoint.call(message("c")).await.unwrap().header, "c");
        assert_eq!(pool.stats().connects, 2);
    });
}

#[test]
fn a_remembered_connection_never_carries_a_call_to_another_endpoint() {
    run_paused(async {
        let first = start(&inproc(), Named("first"), ServerConfig::default()).await;
        let second = start(&inproc(), Named("second"), ServerConfig::default()).await;
        let pool = pool_with(T);
        let recent = RecentConnection::default();
        for _ in 0..3 {
            for (server, name) in [(&first, "first"), (&second, "second")] {
                let answer = pool
                    .call_remembering(server.local_addr(), message("x"), None, &recent)
                    .await
                    .unwrap();
                assert_eq!(answer.header, name, "the call reached the endpoint it named");
            }
        }
        assert_eq!(pool.stats().connects, 2, "one connection per endpoint, as without it");
    });
}

#[test]
fn plain_calls_alternating_endpoints_each_reach_the_one_they_name_and_redial_after_a_reap() {
    run_paused(async {
        let first = start(&inproc(), Named("first"), ServerConfig::default()).await;
        let second = start(&inproc(), Named("second"), ServerConfig::default()).await;
        let pool = pool_with(T);
        let call_both = || async {
            for _ in 0..3 {
                for (server, name) in [(&first, "first"), (&first, "first"), (&second, "second")] {
                    let answer = pool.call(server.local_addr(), message("x")).await.unwrap();
                    assert_eq!(answer.header, name, "the call reached the endpoint it named");
                }
            }
        };
        call_both().await;
        assert_eq!(pool.stats().connects, 2, "one connection per endpoint");

        tokio::time::sleep(2 * T).await;
        settle().await;
        assert_eq!(pool.stats().reaps, 2, "both idle connections went");
        // The pool remembers a reaped connection, which takes no lease: each call dials afresh.
        call_both().await;
        assert_eq!(pool.stats().connects, 4);
    });
}

#[test]
fn a_remembered_connection_is_never_lent_to_another_pool() {
    run_paused(async {
        let server = start(&inproc(), Echo, ServerConfig::default()).await;
        let (first, second) = (pool_with(T), pool_with(T));
        let recent = RecentConnection::default();
        for pool in [&first, &second, &first, &second] {
            let call = pool.call_remembering(server.local_addr(), message("x"), None, &recent);
            assert_eq!(call.await.unwrap().header, "x");
        }
        // Each pool made, and kept using, a connection of its own.
        assert_eq!((first.stats().connects, second.stats().connects), (1, 1));
    });
}

#[test]
fn an_endpoint_whose_connection_was_declared_dead_dials_afresh() {
    run_paused(async {
        // The first connection is accepted and then never served (a blackhole); the next
        // ones are served.
        let mut listener = listen(&inproc(), &TransportConfig::default()).await.unwrap();
        let address = listener.local_addr().clone();
        let peer = tokio::spawn(async move {
            let frozen = listener.accept().await.unwrap().handshake().await.unwrap();
            let _server = serve(listener, Echo, ServerConfig::default()).unwrap();
            std::future::pending::<()>().await;
            drop(frozen);
        });
        let config = PoolConfig::default().heartbeat_interval(T).heartbeat_timeout(2 * T);
        let pool = Pool::new(config).unwrap();
        let endpoint = pool.endpoint(address);
        let error = endpoint.call(message("anyone?")).await.unwrap_err();
        assert!(matches!(error, PoolError::ConnectionTimedOut { .. }), "{error}");
        assert_eq!(pool.stats().dead_peers, 1);

        // The remembered connection ended: the next call dials and is answered.
        assert_eq!(endpoint.call(message("again")).await.unwrap().header, "again");
        assert_eq!(pool.stats().connects, 2);
        peer.abort();
    });
}

#[test]
fn an_endpoint_called_after_its_server_went_away_reaches_the_new_server() {
    run_paused(async {
        let address = inproc();
        let old = start(&address, Named("old"), ServerConfig::default()).await;
        let pool = pool_with(T);
        let endpoint = pool.endpoint(address.clone());
        assert_eq!(endpoint.call(message("x")).await.unwrap().header, "old");
        old.shutdown().await;
        settle().await;

        let _new = start(&address, Named("new"), ServerConfig::default()).await;
        assert_eq!(endpoint.call(message("x")).await.unwrap().header, "new");
        assert_eq!(pool.stats().connects, 2);
    });
}

/// Runs `work` on a fresh current-thread runtime, under the outer test bound.
fn on_new_runtime<T>(work: impl Future<Output = T>) -> (tokio::runtime::Runtime, T) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let output = runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, work).await.expect("test exceeded its outer timeout")
    });
    (runtime, output)
}

#[test]
fn an_endpoint_used_from_two_runtimes_keeps_each_runtimes_own_connection() {
    let address = echo_server();
    let pool = Pool::new(PoolConfig::default()).unwrap();
    let endpoint = pool.endpoint(address);
    let (first, answer) = on_new_runtime(endpoint.call(message("1")));
    assert_eq!(answer.unwrap().header, "1");
    // The remembered connection is the first runtime's: the second dials its own.
    let (second, answer) = on_new_runtime(endpoint.call(message("2")));
    assert_eq!(answer.unwrap().header, "2");
    assert_eq!((pool.stats().connects, pool.stats().runtimes), (2, 2));
    for runtime in [&first, &second, &first] {
        let call = async { tokio::time::timeout(TEST_TIMEOUT, endpoint.call(message("3"))).await };
        assert_eq!(runtime.block_on(call).expect("within the bound").unwrap().header, "3");
    }
    assert_eq!(pool.stats().connects, 2, "each runtime kept its own connection");
}
