//! A server in a child process killed with SIGKILL mid-call: every call in flight fails at
//! once with connection-lost. Its own binary: it runs a child process.

mod common;

use std::time::{Duration, Instant};

use common::child::{self, spawn_servers};
use common::{message, sleep_for};
use xoscar_pool::{Pool, PoolConfig, PoolError};

#[test]
fn child_server_entry() {
    child::child_main();
}

#[test]
fn killing_the_server_process_fails_calls_in_flight_at_once() {
    let (server_process, endpoints) = spawn_servers(1, 1, "sleepy");
    let pool = Pool::new(PoolConfig::default()).unwrap();
    common::run(async {
        let mut calls = Vec::new();
        for endpoint in &endpoints {
            pool.call(endpoint, message("connected")).await.unwrap();
            for _ in 0..4 {
                let (pool, endpoint) = (pool.clone(), endpoint.clone());
                calls.push(tokio::spawn(
                    async move { pool.call(&endpoint, sleep_for(60_000)).await },
                ));
            }
        }
        // Let the requests reach the child.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(pool.stats().leases_in_flight, 8);
        let killed = Instant::now();
        server_process.kill();
        for call in calls {
            let error = call.await.unwrap().unwrap_err();
            assert!(matches!(error, PoolError::ConnectionLost { .. }), "{error}");
        }
        assert!(
            killed.elapsed() < Duration::from_secs(3),
            "calls failed only after {:?}",
            killed.elapsed()
        );
        assert_eq!(pool.stats().open_connections, 0);
        // Nobody listens any more: the next call is a connect error, not a hang.
        let error = pool.call(&endpoints[0], message("again")).await.unwrap_err();
        assert!(matches!(error, PoolError::Connect { .. }), "{error}");
    });
}
