//! A fixed amount of actor work, for counting instructions with callgrind (repeatable where
//! wall time on a shared VM is not).
//!
//! ```text
//! fixed_actor_calls <ask|tell|raw> <calls>          sequential local asks from a task
//! fixed_actor_calls <ask|raw> <calls> <callers>      local asks spread over `callers` tasks
//! fixed_actor_calls <actor|pool|endpoint|mux> <calls> <in-flight>
//!                                                    remote calls over a Unix socket to a
//!                                                    server on its own thread (`endpoint`:
//!                                                    pool calls through an `Endpoint`;
//!                                                    `mux`: the raw multiplexed limit)
//! fixed_actor_calls <wire|wire-raw> <calls>          encode + decode of a 64 B request frame
//!                                                    (`wire-raw`: a length prefix, the limit)
//! ```
//!
//! `valgrind --tool=callgrind target/release/examples/fixed_actor_calls ask 100000` counts the
//! instructions of 100,000 sequential local asks; `raw` does the same with a plain tokio mpsc +
//! oneshot actor, the limit. `actor` and `pool` compare an actor call with the pool-level call
//! of the same shape (16 B payload).
//!
//! The local shapes run on a current-thread runtime; with `FIXED_RUNTIME=multi` in the
//! environment, on a two-worker multi-thread one.
//!
//! The remote shapes run over a Unix socket; with `FIXED_TRANSPORT=tcp` in the environment,
//! over loopback TCP instead (for `strace -c -f`: which system calls each side makes).
//!
//! Each run also prints `allocations per call: N`, counted by a global allocator around the
//! calls alone (the whole process: for `actor` and `pool`, the serving thread's too).

use std::time::Instant;

use bytes::Bytes;
use xoscar_actor::{ActorPool, ActorRef};
use xoscar_benches::actors::{Echoer, RawActor};
use xoscar_benches::counting::Counting;
use xoscar_benches::mux::RawMux;
use xoscar_benches::wire_trip::{WireTrip, static_payload};
use xoscar_benches::{address, current_thread, multi_thread, our_listener, serve_raw_echo, spread};
use xoscar_pool::testing::Echo;
use xoscar_pool::{Message, Pool, PoolConfig, ServerConfig, serve};
use xoscar_transport::Address;

#[global_allocator]
static COUNTING: Counting = Counting;

/// The runtime of the local shapes: current-thread, or the two-worker multi-thread one with
/// `FIXED_RUNTIME=multi` in the environment.
fn runtime() -> tokio::runtime::Runtime {
    match std::env::var("FIXED_RUNTIME").as_deref() {
        Ok("multi") => multi_thread(),
        _ => current_thread(),
    }
}

/// Prints the allocations made since `before`, per call.
fn report_allocations(before: u64, calls: u64) {
    let made = Counting::allocations() - before;
    println!("allocations per call: {:.2}", made as f64 / calls as f64);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("ask", String::as_str).to_owned();
    let calls: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let in_flight: u64 = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(64);
    match mode.as_str() {
        "actor" | "pool" | "endpoint" | "mux" => remote(&mode, calls, in_flight),
        "wire" | "wire-raw" => wire(&mode, calls),
        _ => match args.get(3).and_then(|n| n.parse().ok()) {
            Some(callers) => local_concurrent(mode, calls, callers),
            None => local(mode, calls),
        },
    }
}

/// `calls` local asks (or raw ones) spread over `callers` tasks, as the criterion bench's
/// concurrent rows.
fn local_concurrent(mode: String, calls: u64, callers: u64) {
    runtime().block_on(async move {
        let pool = ActorPool::start("inproc://fixed-actor-calls".parse().unwrap()).await.unwrap();
        let actor = pool.create(Echoer::default()).await.unwrap();
        let raw = RawActor::spawn();
        let allocations = Counting::allocations();
        let elapsed = spread(calls, callers, move |_| {
            let (actor, raw, raw_mode) = (actor.clone(), raw.clone(), mode == "raw");
            async move {
                match raw_mode {
                    true => drop(raw.ask(1).await),
                    false => drop(actor.call(1u64).await.unwrap()),
                }
            }
        })
        .await;
        report_allocations(allocations, calls);
        println!("{calls} calls from {callers} tasks in {elapsed:?}");
        pool.shutdown().await;
    });
}

fn local(mode: String, calls: u64) {
    runtime().block_on(async move {
        let pool = ActorPool::start("inproc://fixed-actor-calls".parse().unwrap()).await.unwrap();
        let actor = pool.create(Echoer::default()).await.unwrap();
        let raw = RawActor::spawn();
        let caller = tokio::spawn(async move {
            let (started, allocations) = (Instant::now(), Counting::allocations());
            for _ in 0..calls {
                match mode.as_str() {
                    "tell" => actor.tell(1u64).await.unwrap(),
                    "raw" => drop(raw.ask(1).await),
                    _ => drop(actor.call(1u64).await.unwrap()),
                }
            }
            let elapsed = started.elapsed();
            report_allocations(allocations, calls);
            elapsed
        });
        let elapsed = caller.await.unwrap();
        println!("{calls} calls in {elapsed:?}: {:?} each", elapsed / calls as u32);
        pool.shutdown().await;
    });
}

/// `calls` trips of one 64 B frame through the codec ([`WireTrip`], as the criterion bench).
fn wire(mode: &str, calls: u64) {
    let payload = static_payload(64);
    let mut trip = WireTrip::default();
    let (started, allocations) = (Instant::now(), Counting::allocations());
    for _ in 0..calls {
        match mode {
            "wire-raw" => drop(std::hint::black_box(trip.raw(payload))),
            _ => drop(std::hint::black_box(trip.ours(payload))),
        }
    }
    let elapsed = started.elapsed();
    report_allocations(allocations, calls);
    println!("{calls} frames in {elapsed:?}: {:?} each", elapsed / calls as u32);
}

fn remote(mode: &str, calls: u64, in_flight: u64) {
    let (ready, addresses) = std::sync::mpsc::channel::<(Address, Address, Address)>();
    let transport = match std::env::var("FIXED_TRANSPORT") {
        Ok(transport) if transport == "tcp" => "tcp",
        _ => "uds",
    };
    std::thread::spawn(move || {
        current_thread().block_on(async move {
            let pool = ActorPool::builder(address(transport, "fixed-actors"))
                .direct_delivery(false)
                .start()
                .await
                .unwrap();
            pool.create(Echoer::default()).uid("echo").await.unwrap();
            let echo = our_listener(&address(transport, "fixed-echo")).await;
            let echo = serve(echo, Echo, ServerConfig::default()).unwrap();
            let raw = serve_raw_echo(transport, "fixed-raw-echo").await;
            ready.send((pool.address().clone(), echo.local_addr().clone(), raw)).unwrap();
            std::future::pending::<()>().await;
        })
    });
    let (actors, echo, raw) = addresses.recv().unwrap();
    let payload = Bytes::from(vec![0x5A; 16]);
    let actor = ActorRef::<Echoer>::new(actors, "echo");
    let pool = Pool::new(PoolConfig::default()).unwrap();
    let allocations = Counting::allocations();
    let elapsed = current_thread().block_on(async move {
        if mode == "actor" {
            spread(calls, in_flight, move |_| {
                let (actor, payload) = (actor.clone(), payload.clone());
                async move {
                    actor.call(payload).await.unwrap();
                }
            })
            .await
        } else if mode == "mux" {
            let mux = RawMux::connect(&raw).await;
            spread(calls, in_flight, move |id| {
                let (mux, payload) = (mux.clone(), payload.clone());
                async move {
                    mux.call(id, payload).await;
                }
            })
            .await
        } else if mode == "endpoint" {
            let echo = pool.endpoint(echo);
            spread(calls, in_flight, move |_| {
                let (echo, payload) = (echo.clone(), payload.clone());
                async move {
                    echo.call(Message::new(Bytes::new(), [payload])).await.unwrap();
                }
            })
            .await
        } else {
            // Shared, so that a call clones no address (an actor call does not either).
            let echo = std::sync::Arc::new(echo);
            spread(calls, in_flight, move |_| {
                let (pool, echo, payload) = (pool.clone(), echo.clone(), payload.clone());
                async move {
                    pool.call(&echo, Message::new(Bytes::new(), [payload])).await.unwrap();
                }
            })
            .await
        }
    });
    report_allocations(allocations, calls);
    println!("{calls} {mode} calls, {in_flight} in flight, in {elapsed:?}");
    std::process::exit(0);
}
