//! Sub pool restarts in the Prometheus endpoint (feature `prometheus`): a main pool whose sub
//! pool is killed and restarted shows one restart in its scrape. Its own binary: it installs
//! the process's metrics recorder.
#![cfg(feature = "prometheus")]

use std::time::Duration;

// The actor crate's test helpers (here: reading the endpoint), shared as source.
#[path = "../../xoscar-actor/tests/common/mod.rs"]
mod common;

use common::prometheus::{sample, scrape};
use common::run;
use xoscar_actor::ActorPool;
use xoscar_subpool::{SubPool, WithSubPools, run_if_sub_pool};

#[test]
fn metrics_sub_pool_entry() {
    run_if_sub_pool(|builder| builder);
}

const GET: &str = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn a_sub_pool_restart_is_counted() {
    run(async {
        let args = ["--exact", "metrics_sub_pool_entry", "--nocapture", "--test-threads=1"];
        let pool = ActorPool::builder("127.0.0.1:0".parse().unwrap())
            .prometheus("127.0.0.1:0".parse().unwrap())
            .sub_pool(SubPool::new().program(std::env::current_exe().unwrap(), args))
            .start()
            .await
            .unwrap();
        let endpoint = pool.prometheus_address().unwrap();
        assert_eq!(sample(&scrape(endpoint, GET).await, "xoscar_sub_pool_restarts_total"), None);
        pool.kill_sub_pool(0).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        pool.wait_recovered().await;
        let text = scrape(endpoint, GET).await;
        assert_eq!(sample(&text, "xoscar_sub_pool_restarts_total"), Some(1.0), "{text}");
    });
}
