//! One-way messages are never lost silently and keep their order: from one caller to one
//! endpoint they reach the handler in the order sent, on a multi-thread runtime too; once
//! `notify` returned, dropping the pool or shutting down its runtime does not lose them.

mod common;

use std::time::Duration;

use common::{Scripted, TEST_TIMEOUT, addresses, eventually, header, start};
use xoscar_pool::{Pool, PoolConfig, ServerConfig};
use xoscar_transport::Address;

const BOUND: Duration = Duration::from_secs(20);

/// A multi-thread runtime bounded by [`TEST_TIMEOUT`] of real time.
fn run_multi<F: std::future::Future>(future: F) -> F::Output {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, future).await.expect("test exceeded its outer timeout")
    })
}

/// The expected notes `prefix-0 .. prefix-(n-1)`, where every 7th message asks the handler
/// to wait a little (so some handling is pending while later messages arrive).
fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| if i % 7 == 3 { "sleep:1".to_string() } else { format!("{prefix}-{i}") })
        .collect()
}

#[test]
fn one_way_messages_reach_the_handler_in_the_order_sent_on_a_multi_thread_runtime() {
    run_multi(async {
        for address in addresses() {
            let handler = Scripted::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let sent = numbered("m", 2_000);
            for text in &sent {
                pool.notify(server.local_addr(), header(text.clone())).await.unwrap();
            }
            assert!(
                eventually(BOUND, || handler.notes.lock().len() == sent.len()).await,
                "{address}: {} of {} arrived",
                handler.notes.lock().len(),
                sent.len()
            );
            assert!(
                *handler.notes.lock() == sent,
                "{address}: one-way messages arrived out of order"
            );
        }
    });
}

/// Sends `n` one-way messages from a pool on a fresh runtime in another thread, then drops the
/// pool (`drop_pool`) or the whole runtime right after the last `notify` returned.
fn send_then_drop(endpoint: &Address, n: usize, drop_pool: bool) {
    let endpoint = endpoint.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let pool = Pool::new(PoolConfig::default()).unwrap();
        runtime.block_on(async {
            for text in numbered("m", n) {
                pool.notify(&endpoint, header(text)).await.unwrap();
            }
        });
        if drop_pool {
            drop(pool);
            // Let the pool's connection tasks finish what they were doing.
            runtime.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
        }
        drop(runtime);
    })
    .join()
    .unwrap();
}

#[test]
fn dropping_the_pool_or_its_runtime_after_notify_returns_loses_nothing() {
    common::run(async {
        for drop_pool in [true, false] {
            for address in addresses() {
                let handler = Scripted::default();
                let server = start(&address, handler.clone(), ServerConfig::default()).await;
                // Every 7th message makes the handler wait, so much is still on its way when
                // the caller goes.
                let n = 300;
                let endpoint = server.local_addr().clone();
                let sender =
                    tokio::task::spawn_blocking(move || send_then_drop(&endpoint, n, drop_pool));
                sender.await.unwrap();
                assert!(
                    eventually(BOUND, || handler.notes.lock().len() == n).await,
                    "{address} (dropping the {}): {} of {n} arrived",
                    if drop_pool { "pool" } else { "runtime" },
                    handler.notes.lock().len()
                );
                assert!(*handler.notes.lock() == numbered("m", n), "{address}: out of order");
                drop(server);
            }
        }
    });
}
