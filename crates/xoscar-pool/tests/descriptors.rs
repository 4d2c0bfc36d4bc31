//! Descriptor bound: calling 1,000 distinct endpoints in turn with a small idle timeout keeps
//! this process's open descriptors bounded by what the last idle period needs, and back at the
//! baseline once it passes. The servers run in a child process, so only the callers' sockets
//! count here. Its own binary: it counts process-wide descriptors.

mod common;

use std::time::{Duration, Instant};

use common::child::{self, spawn_servers};
use common::message;
use xoscar_pool::{Pool, PoolConfig};

const ENDPOINTS: usize = 1000;

#[test]
fn child_server_entry() {
    child::child_main();
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

#[test]
fn calling_a_thousand_endpoints_keeps_descriptors_bounded_and_returns_to_baseline() {
    let (server_process, endpoints) = spawn_servers(ENDPOINTS, 0, "echo");
    assert_eq!(endpoints.len(), ENDPOINTS);
    let idle = Duration::from_millis(100);
    common::run(async {
        let pool = Pool::new(PoolConfig::default().idle_timeout(idle)).unwrap();
        // Warm up the runtime's own descriptors, then take the baseline.
        pool.call(&endpoints[0], message("warm-up")).await.unwrap();
        assert!(
            common::eventually(Duration::from_secs(5), || pool.stats().open_connections == 0).await
        );
        let baseline = open_descriptors();

        let mut peak = baseline;
        let started = Instant::now();
        for endpoint in &endpoints {
            pool.call(endpoint, message("hello")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
            peak = peak.max(open_descriptors());
        }
        let sweep = started.elapsed();
        // Connections alive at once: those used within the last idle period plus one reaper
        // interval. Allow for twice that, at the observed call rate, plus a margin.
        let per_call = sweep / ENDPOINTS as u32;
        let window = 2 * (idle + pool.config().reap_interval().unwrap());
        let bound = (window.as_secs_f64() / per_call.as_secs_f64()).ceil() as usize + 20;
        eprintln!(
            "baseline {baseline}, peak {peak} (+{}), bound +{bound}, sweep {sweep:?}",
            peak - baseline
        );
        assert!(peak - baseline <= bound, "peak {peak} exceeds baseline {baseline} + {bound}");
        assert!(bound < ENDPOINTS / 2, "the sweep was too slow for the bound to mean anything");

        let back =
            common::eventually(idle + Duration::from_secs(3), || open_descriptors() == baseline)
                .await;
        assert!(back, "descriptors {} did not return to baseline {baseline}", open_descriptors());
        assert_eq!(pool.stats().open_connections, 0);
        assert!(pool.stats().reaps >= ENDPOINTS as u64);
    });
    server_process.kill();
}
