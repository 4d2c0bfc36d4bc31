#![allow(dead_code)] // each test binary uses a different part

pub mod actors;
pub mod child;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod scenarios;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use xoscar_actor::ActorPool;
use xoscar_transport::Address;

#[allow(unused_imports)] // each test binary uses a different part
pub use xoscar_testkit::{TEST_TIMEOUT, run, run_paused};

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

/// Where a scenario finds its "remote" pool, and how it makes pools of its own.
pub struct Setup {
    /// The remote pool's address.
    pub address: Address,
    /// The remote pool's process id.
    pub remote_pid: u32,
    /// The remote pool itself, when it lives in this process.
    pub pool: Option<ActorPool>,
    /// The transport of the scenario's local pools: one the remote pool can dial back.
    pub local_transport: Transport,
}

impl Setup {
    /// A remote pool in this process, reached through its listener on `transport`.
    pub async fn in_process(transport: Transport) -> Setup {
        let pool = remote_pool(transport).await;
        Setup {
            address: pool.address().clone(),
            remote_pid: std::process::id(),
            pool: Some(pool),
            local_transport: transport,
        }
    }

    pub fn remote(&self) -> &Address {
        &self.address
    }

    /// A pool of this process with every test type, reached directly by its callers here and
    /// dialled back by the remote pool.
    pub async fn local_pool(&self) -> ActorPool {
        actors::register(ActorPool::builder(address(self.local_transport)))
            .start()
            .await
            .expect("start the local pool")
    }

    /// Checks the remote pool's actor count, when the pool is in this process.
    pub fn assert_actor_count(&self, expected: usize) {
        if let Some(pool) = &self.pool {
            assert_eq!(pool.actor_count(), expected);
        }
    }
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
