//! Descriptor soak: one caller talks to 5,000 endpoints (2,500 TCP, 2,500 Unix sockets, served
//! by a child process) in random order for minutes (`XOSCAR_SOAK_SECONDS`, default 120). Its
//! open descriptors stay bounded by what the idle timeout lets live at the observed call
//! rate, return to the baseline once calls stop, and its resident memory does not grow from
//! the first half of the soak to the second. Its own binary: it counts process-wide
//! descriptors and memory, and it is heavy.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::child::{self, spawn_servers};
use common::message;
use xoscar_pool::{Pool, PoolConfig};
use xoscar_transport::Address;

const TCP: usize = 2500;
const UNIX: usize = 2500;
const WORKERS: u64 = 32;
/// Calls per second at most, over all workers: the bound on live connections is about half the
/// rate (two idle windows of 250 ms), and it only means something below the 5,000 endpoints,
/// however fast the pool and machine are.
const MAX_RATE: u64 = 6_000;

#[test]
fn child_server_entry() {
    child::child_main();
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Resident memory in KiB.
fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// Calls random endpoints from `WORKERS` tasks for `length`, at most `MAX_RATE` a second; the
/// calls made and the peak of open descriptors seen (sampled every 10 ms).
async fn churn(
    pool: &Arc<Pool>,
    endpoints: &Arc<Vec<Address>>,
    length: Duration,
    seed: u64,
) -> (u64, usize) {
    let calls = Arc::new(AtomicU64::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (peak, stop) = (peak.clone(), stop.clone());
        async move {
            while !stop.load(Relaxed) {
                peak.fetch_max(open_descriptors(), Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let workers: Vec<_> = (0..WORKERS)
        .map(|k| {
            let (pool, endpoints, calls, stop) =
                (pool.clone(), endpoints.clone(), calls.clone(), stop.clone());
            tokio::spawn(async move {
                let mut state = seed ^ (k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut pace =
                    tokio::time::interval(Duration::from_secs(WORKERS) / MAX_RATE as u32);
                pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Relaxed) {
                    pace.tick().await;
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let endpoint = &endpoints[(state % endpoints.len() as u64) as usize];
                    let answer = pool.call(endpoint, message("soak")).await.unwrap();
                    assert_eq!(&answer.header[..], b"soak");
                    calls.fetch_add(1, Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    sampler.await.unwrap();
    (calls.load(Relaxed), peak.load(Relaxed))
}

#[test]
fn five_thousand_endpoints_for_minutes_keep_descriptors_bounded_and_memory_flat() {
    let seconds: u64 = std::env::var("XOSCAR_SOAK_SECONDS")
        .ok()
        .map(|s| s.parse().expect("XOSCAR_SOAK_SECONDS: whole seconds"))
        .unwrap_or(120);
    let (server_process, endpoints) = spawn_servers(TCP, UNIX, "echo");
    assert_eq!(endpoints.len(), TCP + UNIX);
    let endpoints = Arc::new(endpoints);
    let idle = Duration::from_millis(200);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let limit = Duration::from_secs(seconds + 120);
    runtime.block_on(async move {
        tokio::time::timeout(limit, async move {
            let pool = Arc::new(Pool::new(PoolConfig::default().idle_timeout(idle)).unwrap());
            let window = idle + pool.config().reap_interval().unwrap();
            // Warm up: the runtime's own descriptors and the allocator's arenas.
            churn(&pool, &endpoints, Duration::from_secs(2), 7).await;
            let settle = window + Duration::from_secs(5);
            assert!(common::eventually(settle, || pool.stats().open_connections == 0).await);
            let baseline = open_descriptors();

            let half = Duration::from_secs(seconds / 2);
            let mut rss = Vec::new();
            for (round, seed) in [(1, 11), (2, 13)] {
                let started = Instant::now();
                let (calls, peak) = churn(&pool, &endpoints, half, seed).await;
                let rate = calls as f64 / started.elapsed().as_secs_f64();
                // Alive at once: endpoints called within one idle period plus a reaper
                // interval, at most one connection each; twice that, plus a margin.
                let bound =
                    ((2.0 * rate * window.as_secs_f64()).ceil() as usize).min(endpoints.len()) + 64;
                let back = common::eventually(settle, || open_descriptors() == baseline).await;
                rss.push(resident_kib());
                println!(
                    "SOAK round {round}: {calls} calls ({rate:.0}/s) over {half:?}, descriptors \
                     baseline {baseline}, peak {peak} (+{}, bound +{bound}), back: {back}, \
                     resident {} KiB, open now {}",
                    peak - baseline,
                    rss[rss.len() - 1],
                    pool.stats().open_connections
                );
                assert!(peak - baseline <= bound, "peak {peak} over {baseline} + {bound}");
                assert!(bound < endpoints.len(), "too fast for the bound to mean anything");
                assert!(back, "descriptors {} never went back to {baseline}", open_descriptors());
            }
            // A connection's socket closes a moment before it stops being counted (its task
            // ends after dropping its halves): wait for the count too, on the same deadline.
            let closed = common::eventually(settle, || pool.stats().open_connections == 0).await;
            let stats = pool.stats();
            assert!(closed, "connections still counted open: {stats:?}");
            assert!(stats.reaps > 0, "{stats:?}");
            // Steady state: the second half does not need more memory than the first.
            let growth = rss[1].saturating_sub(rss[0]);
            assert!(growth <= rss[0] / 10 + 4096, "resident grew {growth} KiB: {rss:?}");
        })
        .await
        .expect("the soak exceeded its outer bound");
    });
    server_process.kill();
}
