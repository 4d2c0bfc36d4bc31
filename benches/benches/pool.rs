//! The pool, each beside its raw limit measured in the same run:
//! - sequential call round trip, 16 B, vs raw framed ping-pong (and on a multi-thread runtime,
//!   to compare flavours);
//! - 64 calls in flight on one connection, by address (`ours`) and through an `Endpoint`
//!   handle (`endpoint`), vs a raw multiplexed connection (writer task, reader dispatching by
//!   id, a server answering each batch with one write);
//! - 1 MiB call echo vs a raw echo of the same shape;
//! - a server in a child process (tcp and uds): sequential round trip, 64 in flight and a
//!   1 MiB echo;
//! - the reaper's cost: 64 in flight with the reaper on (`ours`) vs off (`raw`), and the time
//!   of one reaper pass over 5,000 idle TCP and 100,000 idle in-process connections.
//!
//! Unless noted, client and server share one current-thread runtime (on two cores the fastest
//! flavour for one busy connection).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use tokio::runtime::Runtime;
use xoscar_benches::child::{self, ChildServers};
use xoscar_benches::mux::RawMux;
use xoscar_benches::raw::RawPingPong;
use xoscar_benches::*;
use xoscar_pool::testing::Echo;
use xoscar_pool::{Message, Pool, PoolConfig, Server, ServerConfig, serve};
use xoscar_transport::Address;

const TRANSPORTS: [&str; 3] = ["tcp", "uds", "inproc"];
const IN_FLIGHT: u64 = 64;

/// Serves `Echo` on a fresh address of `transport`, on the current runtime.
async fn echo_server(transport: &str, tag: &str) -> Server {
    serve(our_listener(&address(transport, tag)).await, Echo, ServerConfig::default()).unwrap()
}

fn pool(idle: Duration) -> Pool {
    Pool::new(PoolConfig::default().idle_timeout(idle)).unwrap()
}

/// One group: sequential calls of `payload` (ours) beside raw ping-pong (raw).
fn sequential(
    c: &mut Criterion,
    name: &str,
    rt: &Runtime,
    endpoint: &Address,
    mut raw: RawPingPong,
    payload: &Bytes,
) {
    let mut group = c.benchmark_group(name);
    if payload.len() >= 1 << 20 {
        group.throughput(Throughput::Bytes(payload.len() as u64));
    }
    let pool = pool(Duration::from_secs(30));
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    pool.call(endpoint, Message::new(Bytes::new(), [payload.clone()]))
                        .await
                        .unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| rt.block_on(raw.time_round_trips(iters, payload)))
    });
    group.finish();
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// 64 callers of the call `make` builds (afresh for each sample), as [`spread`] runs them, as a
/// bench function named `name`.
fn bench_spread<F, Fut>(group: &mut Group<'_>, name: &str, rt: &Runtime, make: impl Fn() -> F)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| rt.block_on(spread(iters, IN_FLIGHT, make())))
    });
}

/// 64 callers of `pool` on `at`, as a bench function named `name`.
fn bench_in_flight(group: &mut Group<'_>, name: &str, rt: &Runtime, pool: &Pool, at: &Address) {
    let payload = Bytes::from(vec![0x5A; 16]);
    bench_spread(group, name, rt, || {
        // Shared, so that a call clones no address.
        let (pool, at, payload) = (pool.clone(), Arc::new(at.clone()), payload.clone());
        move |_| {
            let (pool, at, payload) = (pool.clone(), at.clone(), payload.clone());
            async move { drop(pool.call(&at, Message::new(Bytes::new(), [payload])).await.unwrap()) }
        }
    });
}

/// 64 callers of one [`xoscar_pool::Endpoint`] handle on `at`, named `name`.
fn bench_in_flight_endpoint(
    group: &mut Group<'_>,
    name: &str,
    rt: &Runtime,
    pool: &Pool,
    at: &Address,
) {
    let payload = Bytes::from(vec![0x5A; 16]);
    bench_spread(group, name, rt, || {
        let (endpoint, payload) = (pool.endpoint(at.clone()), payload.clone());
        move |_| {
            let (endpoint, payload) = (endpoint.clone(), payload.clone());
            async move { drop(endpoint.call(Message::new(Bytes::new(), [payload])).await.unwrap()) }
        }
    });
}

/// One group: 64 in flight through the pool by address (ours) and through an endpoint handle
/// (endpoint) beside a raw multiplexed connection (raw).
fn in_flight_group(c: &mut Criterion, name: &str, rt: &Runtime, endpoint: &Address, raw: RawMux) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    let pool = pool(Duration::from_secs(30));
    bench_in_flight(&mut group, "ours", rt, &pool, endpoint);
    bench_in_flight_endpoint(&mut group, "endpoint", rt, &pool, endpoint);
    let payload = Bytes::from(vec![0x5A; 16]);
    bench_spread(&mut group, "raw", rt, || {
        let (raw, payload) = (raw.clone(), payload.clone());
        move |id| {
            let (raw, payload) = (raw.clone(), payload.clone());
            async move { drop(raw.call(id, payload).await) }
        }
    });
    group.finish();
}

fn call_round_trip(c: &mut Criterion) {
    let payload = Bytes::from(vec![0x5A; 16]);
    for transport in TRANSPORTS {
        let rt = current_thread();
        let server = rt.block_on(echo_server(transport, "call-rtt"));
        let raw = rt.block_on(RawPingPong::start(transport, "call-raw-rtt"));
        sequential(
            c,
            &format!("call round trip 16 B {transport}"),
            &rt,
            server.local_addr(),
            raw,
            &payload,
        );
    }
    let rt = multi_thread();
    let server = rt.block_on(echo_server("tcp", "call-rtt-mt"));
    let raw = rt.block_on(RawPingPong::start("tcp", "call-raw-rtt-mt"));
    sequential(c, "call round trip 16 B tcp multi-thread", &rt, server.local_addr(), raw, &payload);
}

fn echo_1mib(c: &mut Criterion) {
    let payload = Bytes::from(vec![0xA5; 1 << 20]);
    for transport in ["tcp", "uds"] {
        let rt = current_thread();
        let server = rt.block_on(echo_server(transport, "echo-1mib"));
        let raw = rt.block_on(RawPingPong::start(transport, "raw-echo-1mib"));
        sequential(
            c,
            &format!("call echo 1 MiB {transport}"),
            &rt,
            server.local_addr(),
            raw,
            &payload,
        );
    }
}

fn in_flight(c: &mut Criterion) {
    for transport in TRANSPORTS {
        let rt = current_thread();
        let server = rt.block_on(echo_server(transport, "in-flight"));
        let raw = rt.block_on(RawMux::start(transport, "raw-mux"));
        in_flight_group(c, &format!("64 in flight {transport}"), &rt, server.local_addr(), raw);
    }
}

fn child_process(c: &mut Criterion) {
    let servers = ChildServers::start();
    let payload = Bytes::from(vec![0x5A; 16]);
    let addresses = servers.addresses.clone();
    for (transport, ours, raw) in [
        ("tcp", &addresses.ours_tcp, &addresses.raw_tcp),
        ("uds", &addresses.ours_uds, &addresses.raw_uds),
    ] {
        let rt = current_thread();
        let ping_pong = rt.block_on(RawPingPong::connect(raw));
        sequential(
            c,
            &format!("child-process call round trip 16 B {transport}"),
            &rt,
            ours,
            ping_pong,
            &payload,
        );
        let mux = rt.block_on(RawMux::connect(raw));
        in_flight_group(c, &format!("child-process 64 in flight {transport}"), &rt, ours, mux);
        let ping_pong = rt.block_on(RawPingPong::connect(raw));
        let big = Bytes::from(vec![0xA5; 1 << 20]);
        let name = format!("child-process call echo 1 MiB {transport}");
        sequential(c, &name, &rt, ours, ping_pong, &big);
    }
}

fn reaper_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("reaper on vs off, 64 in flight inproc");
    group.throughput(Throughput::Elements(1));
    let rt = current_thread();
    let server = rt.block_on(echo_server("inproc", "reaper-cost"));
    // On: a short idle timeout, so the reaper ticks every 100 ms during the measurement.
    bench_in_flight(&mut group, "ours", &rt, &pool(Duration::from_secs(1)), server.local_addr());
    bench_in_flight(&mut group, "raw", &rt, &pool(Duration::ZERO), server.local_addr());
    group.finish();
}

fn reaper_pass(c: &mut Criterion) {
    // `cargo bench` passes --bench; `cargo test --benches` runs each bench once as a smoke
    // test, where thousands of connections would only cost time.
    let full = std::env::args().any(|arg| arg == "--bench");
    let sizes = if full {
        [("tcp", 5_000usize), ("inproc", 100_000)]
    } else {
        [("tcp", 20), ("inproc", 200)]
    };
    for (transport, count) in sizes {
        let mut group =
            c.benchmark_group(format!("reaper pass over {count} idle {transport} connections"));
        group.sample_size(10);
        let rt = current_thread();
        // Idle for less than the timeout: every pass looks at every connection, closes none.
        let pool = pool(Duration::from_secs(3600));
        // Made on first use, so a filtered-out run does not pay for thousands of connections.
        let mut servers: Option<Vec<Server>> = None;
        group.bench_function("ours", |b| {
            servers.get_or_insert_with(|| {
                rt.block_on(async {
                    let mut servers = Vec::with_capacity(count);
                    // The servers never reap either: making 100,000 of them on a busy machine
                    // took longer than their idle timeout, and the first connections closed
                    // before the count below.
                    let config = ServerConfig::default().idle_timeout(Duration::ZERO);
                    for i in 0..count {
                        let listener =
                            our_listener(&address(transport, &format!("reap-{i}"))).await;
                        let server = serve(listener, Echo, config.clone()).unwrap();
                        pool.call(server.local_addr(), Message::default()).await.unwrap();
                        servers.push(server);
                    }
                    assert_eq!(pool.stats().open_connections, count);
                    servers
                })
            });
            let _context = rt.enter();
            b.iter(|| assert_eq!(pool.reap_now().unwrap(), 0))
        });
        group.finish();
        drop(servers);
    }
}

fn main() {
    child::serve_if_child();
    let mut criterion = xoscar_benches::criterion();
    call_round_trip(&mut criterion);
    in_flight(&mut criterion);
    echo_1mib(&mut criterion);
    child_process(&mut criterion);
    reaper_cost(&mut criterion);
    reaper_pass(&mut criterion);
    criterion.final_summary();
}
