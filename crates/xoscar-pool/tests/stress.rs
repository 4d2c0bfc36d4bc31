//! Thousands of calls aimed at the idle boundary, where the reaper and new leases race: none
//! may fail. Kept in its own binary: it is heavy.

mod common;

use std::time::Duration;

use common::{addresses, message, start};
use xoscar_pool::testing::Echo;
use xoscar_pool::{Pool, PoolConfig, ServerConfig};

const CALLS: u64 = 150;

#[test]
fn calls_racing_the_reaper_never_fail() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        tokio::time::timeout(common::TEST_TIMEOUT, async {
            let idle = Duration::from_millis(20);
            // Each caller has its own pool, so its own pauses decide when its connection is idle.
            // The reaper looks every 50 ms (max(T/10, 50 ms)); pauses spread over 15..45 ms put
            // calls just before, at, and just after the moment a connection becomes reapable.
            for address in addresses() {
                let server = start(&address, Echo, ServerConfig::default()).await;
                let callers: Vec<_> = (0..8u64)
                    .map(|caller| {
                        let endpoint = server.local_addr().clone();
                        tokio::spawn(async move {
                            let pool = Pool::new(PoolConfig::default().idle_timeout(idle)).unwrap();
                            for i in 0..CALLS {
                                pool.call(&endpoint, message("boundary")).await?;
                                let pause = 15 + (i * 7 + caller * 13) % 31;
                                tokio::time::sleep(Duration::from_millis(pause)).await;
                            }
                            Ok::<_, xoscar_pool::PoolError>(pool.stats())
                        })
                    })
                    .collect();
                let (mut connects, mut reaps) = (0, 0);
                for caller in callers {
                    let stats = caller
                        .await
                        .unwrap()
                        .unwrap_or_else(|e| panic!("{address}: a call failed: {e}"));
                    connects += stats.connects;
                    reaps += stats.reaps;
                }
                assert!(
                    reaps > 100,
                    "{address}: the reaper rarely ran, so little raced ({reaps} reaps)"
                );
                eprintln!("{address}: {} calls, {connects} connects, {reaps} reaps", 8 * CALLS);
            }
        })
        .await
        .expect("stress exceeded its outer timeout");
    });
}
