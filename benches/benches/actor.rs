//! The actor layer, each beside its limit measured in the same run:
//! - local ask (same pool), one at a time and 64 concurrent, and local tell, beside a raw tokio
//!   `mpsc` + `oneshot` actor (and, with the `peers` feature, ractor and kameo doing the same);
//! - remote call to an actor in a child process over TCP and a Unix socket, one at a time and
//!   64 in flight, and tell 64 in flight, beside the pool-level call of the same shape (16 B
//!   payload) to an echo server in the same child;
//! - a 1 MiB argument echoed by an actor in a child process, beside a raw socket echo;
//! - a batch of 100 small calls beside 100 single calls one after the other, in this process
//!   and to a child process over TCP and a Unix socket (the gain of batching);
//! - 64 MiB written into a buffer an actor in a child process exposes (`copy_to`, 4 MiB
//!   chunks), over TCP and a Unix socket, beside a raw socket sending the same bytes straight
//!   into a destination buffer;
//! - a stream of 1 M small items (`u64`) read to the end, in this process and from a child
//!   process over TCP and a Unix socket, beside a raw tokio channel (window 64) doing the same.
//!
//! Client and local actors share one runtime: the local asks and tells run on a current-thread
//! runtime and again on a two-worker multi-thread one; everything else on a current-thread one.

use std::time::Instant;

use bytes::Bytes;
use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use tokio::runtime::Runtime;
use xoscar_actor::{ActorPool, ActorRef, copy_to};
use xoscar_benches::actors::{Echoer, Expose, RawActor, Ticks, raw_stream};
use xoscar_benches::child::{self, ChildServers};
use xoscar_benches::mux::RawMux;
use xoscar_benches::raw::{RawPingPong, RawSink};
use xoscar_benches::{address, current_thread, multi_thread, spread};
use xoscar_pool::{Message, Pool, PoolConfig};

const IN_FLIGHT: u64 = 64;

/// Times `iters` runs of `step`, one after the other, in a task on `rt` (a caller is a task,
/// like the actor: `block_on`'s own future is woken through the runtime's driver instead).
fn sequential<F, Fut>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &Runtime, step: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let step = step.clone();
            rt.block_on(async move {
                let caller = tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        step().await;
                    }
                    start.elapsed()
                });
                caller.await.expect("caller task")
            })
        })
    });
}

/// Times `iters` runs of `step` spread over 64 concurrent tasks on `rt`.
fn concurrent<F, Fut>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, rt: &Runtime, step: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let step = step.clone();
            rt.block_on(spread(iters, IN_FLIGHT, move |_| step()))
        })
    });
}

/// A step that runs `call` on a clone of the peer actors.
#[cfg(feature = "peers")]
fn peer<F, Fut>(
    peers: &xoscar_benches::peers::Peers,
    call: F,
) -> impl Fn() -> Fut + Clone + Send + 'static
where
    F: Fn(xoscar_benches::peers::Peers) -> Fut + Clone + Send + 'static,
{
    let peers = peers.clone();
    move || call(peers.clone())
}

/// Local asks and tells on a runtime of the given flavour: `""` for the current-thread one
/// (the groups' plain names), `" multi-thread"` for a two-worker one.
fn local(c: &mut Criterion, flavour: &str) {
    let rt = if flavour.is_empty() { current_thread() } else { multi_thread() };
    let (pool, actor, raw) = rt.block_on(async {
        let tag = format!("actor-local{}", flavour.replace(' ', "-"));
        let pool = ActorPool::start(address("inproc", &tag)).await.unwrap();
        let actor = pool.create(Echoer::default()).await.unwrap();
        (pool, actor, RawActor::spawn())
    });
    #[cfg(feature = "peers")]
    let peers = rt.block_on(xoscar_benches::peers::Peers::spawn());

    let ask_ours = {
        let actor = actor.clone();
        move || {
            let actor = actor.clone();
            async move {
                actor.call(1u64).await.unwrap();
            }
        }
    };
    let ask_raw = {
        let raw = raw.clone();
        move || {
            let raw = raw.clone();
            async move {
                raw.ask(1).await;
            }
        }
    };
    let mut group = c.benchmark_group(format!("actor local ask sequential{flavour}"));
    sequential(&mut group, "ours", &rt, ask_ours.clone());
    sequential(&mut group, "raw", &rt, ask_raw.clone());
    #[cfg(feature = "peers")]
    {
        sequential(
            &mut group,
            "ractor",
            &rt,
            peer(&peers, |p| async move { p.ractor_ask().await }),
        );
        sequential(&mut group, "kameo", &rt, peer(&peers, |p| async move { p.kameo_ask().await }));
    }
    group.finish();

    let mut group = c.benchmark_group(format!("actor local ask 64 concurrent{flavour}"));
    group.throughput(Throughput::Elements(1));
    concurrent(&mut group, "ours", &rt, ask_ours);
    concurrent(&mut group, "raw", &rt, ask_raw);
    #[cfg(feature = "peers")]
    {
        concurrent(
            &mut group,
            "ractor",
            &rt,
            peer(&peers, |p| async move { p.ractor_ask().await }),
        );
        concurrent(&mut group, "kameo", &rt, peer(&peers, |p| async move { p.kameo_ask().await }));
    }
    group.finish();

    let mut group = c.benchmark_group(format!("actor local tell{flavour}"));
    group.throughput(Throughput::Elements(1));
    let teller = actor.clone();
    sequential(&mut group, "ours", &rt, move || {
        let actor = teller.clone();
        async move { actor.tell(1u64).await.unwrap() }
    });
    sequential(&mut group, "raw", &rt, move || {
        let raw = raw.clone();
        async move { raw.tell(1).await }
    });
    #[cfg(feature = "peers")]
    {
        sequential(
            &mut group,
            "ractor",
            &rt,
            peer(&peers, |p| async move { p.ractor_tell().await }),
        );
        sequential(&mut group, "kameo", &rt, peer(&peers, |p| async move { p.kameo_tell().await }));
    }
    group.finish();
    rt.block_on(pool.shutdown());
}

/// Batches to an actor of this process, on a pool of their own.
fn local_batches(c: &mut Criterion) {
    let rt = current_thread();
    let (pool, actor) = rt.block_on(async {
        let pool = ActorPool::start(address("inproc", "actor-batch")).await.unwrap();
        let actor = pool.create(Echoer::default()).await.unwrap();
        (pool, actor)
    });
    batch_of_100(c, "local", &rt, actor.clone());
    stream_of_1m(c, "local", &rt, actor);
    rt.block_on(pool.shutdown());
}

fn remote(c: &mut Criterion) {
    let servers = ChildServers::start();
    let addresses = servers.addresses.clone();
    let payload = Bytes::from(vec![0x5A; 16]);
    for (transport, actors, echo, raw) in [
        ("tcp", &addresses.actor_tcp, &addresses.ours_tcp, &addresses.raw_tcp),
        ("uds", &addresses.actor_uds, &addresses.ours_uds, &addresses.raw_uds),
    ] {
        let rt = current_thread();
        let actor = ActorRef::<Echoer>::new(actors.clone(), "echo");
        let pool = Pool::new(PoolConfig::default()).unwrap();
        let pool_call = {
            // Shared, so that a call clones no address (an actor call does not either).
            let echo = std::sync::Arc::new(echo.clone());
            let (pool, payload) = (pool.clone(), payload.clone());
            move || {
                let (pool, echo, payload) = (pool.clone(), echo.clone(), payload.clone());
                async move {
                    pool.call(&echo, Message::new(Bytes::new(), [payload])).await.unwrap();
                }
            }
        };
        let actor_call = {
            let (actor, payload) = (actor.clone(), payload.clone());
            move || {
                let (actor, payload) = (actor.clone(), payload.clone());
                async move {
                    actor.call(payload).await.unwrap();
                }
            }
        };

        let mut group = c.benchmark_group(format!("actor child-process call 16 B {transport}"));
        sequential(&mut group, "ours", &rt, actor_call.clone());
        let mut ping_pong = rt.block_on(RawPingPong::connect(raw));
        group.bench_function("raw", |b| {
            b.iter_custom(|iters| rt.block_on(ping_pong.time_round_trips(iters, &payload)))
        });
        sequential(&mut group, "pool", &rt, pool_call.clone());
        group.finish();

        let mut group = c.benchmark_group(format!("actor child-process 64 in flight {transport}"));
        group.throughput(Throughput::Elements(1));
        concurrent(&mut group, "ours", &rt, actor_call);
        let mux = rt.block_on(RawMux::connect(raw));
        let ids = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        concurrent(&mut group, "raw", &rt, move || {
            let (mux, payload) = (mux.clone(), Bytes::from_static(&[0x5A; 16]));
            let id = ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                mux.call(id, payload).await;
            }
        });
        concurrent(&mut group, "pool", &rt, pool_call.clone());
        group.finish();

        let mut group =
            c.benchmark_group(format!("actor child-process tell 64 in flight {transport}"));
        group.throughput(Throughput::Elements(1));
        let teller = actor.clone();
        concurrent(&mut group, "ours", &rt, move || {
            let actor = teller.clone();
            async move { actor.tell(1u64).await.unwrap() }
        });
        concurrent(&mut group, "raw", &rt, pool_call);
        group.finish();
    }
    echo_1mib(c, &addresses);
    transfer_64mib(c, &addresses);
    let children = [("tcp", addresses.actor_tcp.clone()), ("uds", addresses.actor_uds.clone())];
    for (transport, actors) in children {
        let (actor, rt) = (ActorRef::new(actors, "echo"), current_thread());
        batch_of_100(c, &format!("child-process {transport}"), &rt, actor.clone());
        stream_of_1m(c, &format!("child-process {transport}"), &rt, actor);
    }
}

/// `copy_to` of 64 MiB into a buffer exposed by the child's actor (`ours`) beside a raw socket
/// writing the same bytes into the child's raw sink (`raw`), counted in bytes.
fn transfer_64mib(c: &mut Criterion, addresses: &child::ChildAddresses) {
    let payload = Bytes::from(vec![0x3C; 64 << 20]);
    for (transport, actors, sink) in [
        ("tcp", &addresses.actor_tcp, &addresses.sink_tcp),
        ("uds", &addresses.actor_uds, &addresses.sink_uds),
    ] {
        let rt = current_thread();
        let actor = ActorRef::<Echoer>::new(actors.clone(), "echo");
        let len = payload.len() as u64;
        let target = rt.block_on(actor.call(Expose { len })).unwrap();
        let mut group = c.benchmark_group(format!("actor buffer transfer 64 MiB {transport}"));
        group.throughput(Throughput::Bytes(len));
        group.sample_size(10);
        let sent = payload.clone();
        sequential(&mut group, "ours", &rt, move || {
            let (target, payload) = (target.clone(), sent.clone());
            async move { copy_to(vec![payload], vec![target]).await.unwrap() }
        });
        let mut raw = rt.block_on(RawSink::connect(sink));
        group.bench_function("raw", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        raw.send(&payload).await;
                    }
                    start.elapsed()
                })
            })
        });
        group.finish();
    }
}

/// A stream of 1 M `u64` items read to the end (`ours`) beside a raw tokio channel of the
/// same window (`raw`), counted per item.
fn stream_of_1m(c: &mut Criterion, place: &str, rt: &Runtime, actor: ActorRef<Echoer>) {
    const ITEMS: u64 = 1_000_000;
    let mut group = c.benchmark_group(format!("actor stream 1M items {place}"));
    group.throughput(Throughput::Elements(ITEMS));
    group.sample_size(10);
    sequential(&mut group, "ours", rt, move || {
        let actor = actor.clone();
        async move {
            let mut items = actor.call_stream(Ticks { n: ITEMS }).await.unwrap();
            let mut read = 0;
            while let Some(item) = items.next().await {
                assert_eq!(item.unwrap(), read);
                read += 1;
            }
            assert_eq!(read, ITEMS);
        }
    });
    sequential(&mut group, "raw", rt, || async {
        assert_eq!(raw_stream(ITEMS, 64).await, ITEMS);
    });
    group.finish();
}

/// One `call_batch` of 100 bumps (`ours`) beside 100 single calls one after the other
/// (`raw`), both counted per message.
fn batch_of_100(c: &mut Criterion, place: &str, rt: &Runtime, actor: ActorRef<Echoer>) {
    const BATCH: u64 = 100;
    let mut group = c.benchmark_group(format!("actor batch of 100 {place}"));
    group.throughput(Throughput::Elements(BATCH));
    let batched = actor.clone();
    sequential(&mut group, "ours", rt, move || {
        let actor = batched.clone();
        async move {
            let replies = actor.call_batch(vec![1u64; BATCH as usize]).await.unwrap();
            assert_eq!(replies.len(), BATCH as usize);
        }
    });
    sequential(&mut group, "raw", rt, move || {
        let actor = actor.clone();
        async move {
            for _ in 0..BATCH {
                actor.call(1u64).await.unwrap();
            }
        }
    });
    group.finish();
}

fn echo_1mib(c: &mut Criterion, addresses: &child::ChildAddresses) {
    let payload = Bytes::from(vec![0xA5; 1 << 20]);
    for (transport, actors, raw) in [
        ("tcp", &addresses.actor_tcp, &addresses.raw_tcp),
        ("uds", &addresses.actor_uds, &addresses.raw_uds),
    ] {
        let rt = current_thread();
        let actor = ActorRef::<Echoer>::new(actors.clone(), "echo");
        let mut raw = rt.block_on(RawPingPong::connect(raw));
        let mut group = c.benchmark_group(format!("actor call echo 1 MiB {transport}"));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        let sent = payload.clone();
        sequential(&mut group, "ours", &rt, move || {
            let (actor, payload) = (actor.clone(), sent.clone());
            async move {
                let echoed = actor.call(payload.clone()).await.unwrap();
                assert_eq!(echoed.len(), payload.len());
            }
        });
        group.bench_function("raw", |b| {
            b.iter_custom(|iters| rt.block_on(raw.time_round_trips(iters, &payload)))
        });
        group.finish();
    }
}

fn main() {
    child::serve_if_child();
    let mut criterion = xoscar_benches::criterion();
    local(&mut criterion, "");
    local(&mut criterion, " multi-thread");
    local_batches(&mut criterion);
    remote(&mut criterion);
    criterion.final_summary();
}
