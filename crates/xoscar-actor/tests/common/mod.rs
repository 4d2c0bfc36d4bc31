#![allow(dead_code)] // each test binary uses a different part

pub mod actors;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use xoscar_actor::ActorPool;
use xoscar_transport::Address;

/// Every test's outer bound (real time), so none can hang.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `future` on a fresh current-thread runtime under [`TEST_TIMEOUT`] of real time.
pub fn run<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, future).await.expect("test exceeded its outer timeout")
    })
}

/// The transports a remote pool is reached over.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    Inproc,
    Uds,
    Tcp,
}

/// A fresh address on `transport`.
pub fn address(transport: Transport) -> Address {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    match transport {
        Transport::Inproc => Address::inproc(format!("actor-test-{pid}-{n}")),
        Transport::Uds => {
            Address::unix(std::env::temp_dir().join(format!("xoscar-actor-{pid}-{n}.sock")))
        }
        Transport::Tcp => "127.0.0.1:0".parse().unwrap(),
    }
}

/// A pool with every test actor type registered, reached by this process through its
/// listener (as another process would), over `transport`.
pub async fn remote_pool(transport: Transport) -> ActorPool {
    actors::register(ActorPool::builder(address(transport)))
        .direct_delivery(false)
        .start()
        .await
        .expect("start the remote pool")
}

/// A pool with every test actor type registered, reached directly by this process.
pub async fn local_pool() -> ActorPool {
    actors::register(ActorPool::builder(address(Transport::Inproc)))
        .start()
        .await
        .expect("start the local pool")
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
