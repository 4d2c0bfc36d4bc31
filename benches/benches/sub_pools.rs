//! Sub pools, each beside its limit measured in the same run:
//! - a call from the main pool to an actor in a sub pool (over the sub pool's internal Unix
//!   socket), one at a time and 64 in flight, beside a raw two-process Unix-socket round trip
//!   (a plain socket, and a raw multiplexed client for 64 in flight) to a child process;
//! - the time to start a main pool with 4 sub pools, beside spawning 4 bare processes
//!   (`true`) and waiting for them;
//! - the time to recover a killed sub pool (kill, notice, restart, serve again).
//!
//! The bench binary re-runs itself as the sub pools: `main` starts with `run_if_sub_pool`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use xoscar_actor::{ActorPool, ActorPoolBuilder, ActorRef, Placement, create_actor};
use xoscar_benches::actors::Echoer;
use xoscar_benches::child::ChildServers;
use xoscar_benches::mux::RawMux;
use xoscar_benches::raw::RawPingPong;
use xoscar_benches::{current_thread, spread};
use xoscar_subpool::{MainPool, SubPool};

const IN_FLIGHT: u64 = 64;

/// The actor types of every pool of this bench.
fn pools(builder: ActorPoolBuilder) -> ActorPoolBuilder {
    builder.register("Echoer", |_: u64| Ok(Echoer::default()))
}

async fn main_pool(sub_pools: usize) -> MainPool {
    let mut builder = MainPool::builder(pools(ActorPool::builder("127.0.0.1:0".parse().unwrap())));
    for index in 0..sub_pools {
        builder = builder.sub_pool(SubPool::new().label(format!("sub{index}")));
    }
    builder.start().await.expect("start the main pool and its sub pools")
}

fn calls(c: &mut Criterion, servers: &ChildServers) {
    let rt = current_thread();
    let (main, echo) = rt.block_on(async {
        let main = main_pool(1).await;
        let at = main.address().clone();
        let create = create_actor::<Echoer>(&at, "Echoer", &0u64).placement(Placement::SubPool(0));
        let echo = create.await.unwrap();
        (main, echo)
    });
    let ours = {
        let echo: ActorRef<Echoer> = echo.clone();
        move || {
            let echo = echo.clone();
            async move {
                echo.call(1u64).await.unwrap();
            }
        }
    };
    let mut group = c.benchmark_group("actor sub pool call sequential uds");
    group.bench_function("ours", |b| {
        let ours = ours.clone();
        b.iter_custom(|iters| {
            let ours = ours.clone();
            rt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    ours().await;
                }
                start.elapsed()
            })
        })
    });
    let payload = Bytes::from(vec![0x5A; 8]);
    let mut raw = rt.block_on(RawPingPong::connect(&servers.addresses.raw_uds));
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| rt.block_on(raw.time_round_trips(iters, &payload)))
    });
    group.finish();

    let mut group = c.benchmark_group("actor sub pool call 64 in flight uds");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ours", |b| {
        let ours = ours.clone();
        b.iter_custom(|iters| {
            let ours = ours.clone();
            rt.block_on(spread(iters, IN_FLIGHT, move |_| ours()))
        })
    });
    let mux = rt.block_on(RawMux::connect(&servers.addresses.raw_uds));
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| {
            let mux = mux.clone();
            rt.block_on(spread(iters, IN_FLIGHT, move |id| {
                let mux = mux.clone();
                async move {
                    mux.call(id, Bytes::from_static(b"12345678")).await;
                }
            }))
        })
    });
    group.finish();
    drop(main);
}

fn start_and_recover(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("actor sub pools start 4");
    group.sample_size(10);
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    let main = main_pool(4).await;
                    total += started.elapsed();
                    drop(main);
                }
                total
            })
        })
    });
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let children: Vec<_> =
                    (0..4).map(|_| std::process::Command::new("true").spawn().unwrap()).collect();
                for mut child in children {
                    child.wait().unwrap();
                }
            }
            started.elapsed()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("actor sub pool recover");
    group.sample_size(10);
    let main = rt.block_on(main_pool(1));
    group.bench_function("ours", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    main.kill_sub_pool(0).unwrap();
                    main.wait_recovered().await;
                }
                started.elapsed()
            })
        })
    });
    group.finish();
    drop(main);
}

fn main() {
    xoscar_subpool::run_if_sub_pool(pools);
    xoscar_benches::child::serve_if_child();
    let mut criterion = xoscar_benches::criterion();
    let servers = ChildServers::start();
    calls(&mut criterion, &servers);
    start_and_recover(&mut criterion);
    criterion.final_summary();
}
