//! Sub pool restarts in the Prometheus endpoint (feature `prometheus`): a main pool whose sub
//! pool is killed and restarted shows one restart in its scrape. Its own binary: it installs
//! the process's metrics recorder.
#![cfg(feature = "prometheus")]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xoscar_actor::ActorPool;
use xoscar_subpool::{SubPool, WithSubPools, run_if_sub_pool};
use xoscar_testkit::run;

#[test]
fn metrics_sub_pool_entry() {
    run_if_sub_pool(|builder| builder);
}

async fn scrape(address: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

/// The value of the sample whose line starts with `series` (name and labels, as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

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
        assert_eq!(sample(&scrape(endpoint).await, "xoscar_sub_pool_restarts_total"), None);
        pool.kill_sub_pool(0).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        pool.wait_recovered().await;
        let text = scrape(endpoint).await;
        assert_eq!(sample(&text, "xoscar_sub_pool_restarts_total"), Some(1.0), "{text}");
    });
}
