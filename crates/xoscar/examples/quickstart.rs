//! The xoscar-rs tour: a main actor pool with a sub pool in a child process, and everything a
//! caller does with actors between them.
//!
//! Run it with `cargo run --release --example quickstart`. It re-runs itself as the sub pool:
//! `main` starts with `xoscar::run_if_sub_pool(pools)`.

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use xoscar::{
    Actor, ActorError, ActorPool, ActorPoolBuilder, ActorRef, Context, Failure, Handler, MainPool,
    Placement, PoolConfig, RemoteMessages, SubPool, caller, configure, create_actor, destroy_actor,
    has_actor,
};

// ---- the actors and their messages ------------------------------------------------------------

/// Keeps a running total.
struct Counter {
    total: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct CounterInit {
    #[prost(int64, tag = "1")]
    start: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Add {
    #[prost(int64, tag = "1")]
    n: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Total {
    #[prost(int64, tag = "1")]
    value: i64,
}

/// Divides the total: fails on zero.
#[derive(Clone, PartialEq, prost::Message)]
struct Divide {
    #[prost(int64, tag = "1")]
    by: i64,
}

/// Asks the counter to report its total to `reply_to`, whoever and wherever that is.
#[derive(Clone, PartialEq, prost::Message)]
struct Report {
    #[prost(message, optional, tag = "1")]
    reply_to: Option<ActorRef<Desk>>,
}

impl Actor for Counter {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Add>("Add").message::<Divide>("Divide").message::<Report>("Report");
    }
}

impl Handler<Add> for Counter {
    type Reply = Total;
    async fn handle(&mut self, add: Add, _: &mut Context<Self>) -> Result<Total, Failure> {
        self.total += add.n;
        Ok(Total { value: self.total })
    }
}

impl Handler<Divide> for Counter {
    type Reply = Total;
    async fn handle(&mut self, d: Divide, _: &mut Context<Self>) -> Result<Total, Failure> {
        self.total =
            self.total.checked_div(d.by).ok_or_else(|| Failure::msg("division by zero"))?;
        Ok(Total { value: self.total })
    }
}

impl Handler<Report> for Counter {
    type Reply = Total;
    async fn handle(&mut self, r: Report, _: &mut Context<Self>) -> Result<Total, Failure> {
        let desk = r.reply_to.ok_or_else(|| Failure::msg("no one to report to"))?;
        // A call back into the caller's pool: this pool dials it.
        desk.call(Total { value: self.total }).await?;
        Ok(Total { value: self.total })
    }
}

/// Receives reports.
#[derive(Default)]
struct Desk {
    received: Vec<i64>,
}

impl Actor for Desk {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Total>("Total");
    }
}

impl Handler<Total> for Desk {
    type Reply = Total;
    async fn handle(&mut self, t: Total, _: &mut Context<Self>) -> Result<Total, Failure> {
        self.received.push(t.value);
        Ok(t)
    }
}

/// How many reports the desk has: a message that never leaves this process, so it is no
/// prost message at all.
struct Received;

impl Handler<Received> for Desk {
    type Reply = Vec<i64>;
    async fn handle(&mut self, _: Received, _: &mut Context<Self>) -> Result<Vec<i64>, Failure> {
        Ok(self.received.clone())
    }
}

// ---- the pools ----------------------------------------------------------------------------------

/// The actor types every pool of this program registers, the sub pool's included.
fn pools(builder: ActorPoolBuilder) -> ActorPoolBuilder {
    builder.register("Counter", |init: CounterInit| Ok(Counter { total: init.start }))
}

// ---- the tour -----------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<()> {
    if std::env::var_os("XOSCAR_TRACE").is_some() {
        show_call_spans(); // in the sub pool too: it inherits the environment
    }
    // In the sub pool's process: serve, and never return.
    xoscar::run_if_sub_pool(pools);
    // On a worker thread, like the actors: `main` itself runs outside the runtime's workers,
    // and every call from it would cross threads twice.
    tokio::spawn(tour()).await?
}

/// `XOSCAR_TRACE=1 cargo run --release --example quickstart` prints a line per handled call
/// in this process: its span `actor_call` with the actor's uid, the message type and the
/// caller (an address, or `in-process`), and how long it ran. The spans are at debug level
/// under the target `xoscar_actor::call`; anything that subscribes to `tracing` can take them.
fn show_call_spans() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::prelude::*;
    let calls = Targets::new()
        .with_target("xoscar_actor::call", tracing::Level::DEBUG)
        .with_default(tracing::Level::INFO);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_span_events(FmtSpan::CLOSE))
        .with(calls)
        .init();
}

async fn tour() -> Result<()> {
    // This process's caller closes connections idle for 300 ms (the default is 30 s).
    let idle = Duration::from_millis(300);
    configure(PoolConfig::default().idle_timeout(idle))?;

    let pool = MainPool::builder(pools(ActorPool::builder("127.0.0.1:0".parse()?)))
        .sub_pool(SubPool::new().label("worker").env("XOSCAR_QUICKSTART_ROLE", "worker"))
        .start()
        .await?;
    println!("1. main pool on {} (pid {})", pool.address(), std::process::id());
    let sub = pool.sub_pools().remove(0);
    let remote = sub.address.clone();
    println!(
        "2. sub pool {:?} on {remote} (pid {}), reached here over {}",
        sub.label, sub.pid, sub.internal
    );

    // An actor in our own pool, from a value; one placed in the sub pool, by registered type name.
    let local = pool.create(Counter { total: 0 }).uid("local-counter").await?;
    let far = create_actor::<Counter>(pool.address(), "Counter", &CounterInit { start: 100 })
        .placement(Placement::SubPool(0))
        .await?;
    ensure!(far.address() == &remote, "placed in the sub pool");
    println!("3. created {local} here and {far} in the sub pool, by type name");

    let (here, in_process) = timed_adds(&local, 10_000).await?;
    let (there, across) = timed_adds(&far, 2_000).await?;
    ensure!(here.value == 10_000 && there.value == 2_100, "unexpected totals");
    println!(
        "4. calls, one at a time: local {in_process:?} each (no encoding, no socket), total {}; \
         remote {across:?} each (Unix socket to the sub pool), total {}",
        here.value, there.value
    );

    far.tell(Add { n: 9 }).await?;
    println!("5. told the remote counter to add 9 (returned once its pool accepted it)");

    match far.call(Divide { by: 0 }).await {
        Err(ActorError::Handler { address, pid, uid, message, .. }) => {
            println!("6. a remote error surfaced: {message:?} from {uid} at {address}, pid {pid}")
        }
        other => bail!("expected the remote handler's error, got {other:?}"),
    }

    let desk = pool.create(Desk::default()).uid("desk").await?;
    let reported = far.call(Report { reply_to: Some(desk.clone()) }).await?;
    let received = desk.call(Received).await?;
    ensure!(received == [reported.value] && reported.value == 2_109, "the desk got {received:?}");
    println!("7. passed {desk} inside a message; the sub pool called it back with {received:?}");

    ensure!(has_actor(&far).await?, "the remote counter exists");
    destroy_actor(&far).await?;
    ensure!(!has_actor(&far).await?, "the remote counter is gone");
    match far.call(Add { n: 1 }).await {
        Err(ActorError::NotFound { .. }) => {
            println!("8. destroyed {far}; calling it now: not found")
        }
        other => bail!("expected not-found, got {other:?}"),
    }

    let stats = caller()?.stats();
    println!(
        "9. caller pool: {} open connection(s), {} reaped",
        stats.open_connections, stats.reaps
    );
    let waited = Instant::now();
    while caller()?.stats().open_connections > 0 {
        ensure!(waited.elapsed() < Duration::from_secs(10), "the idle connection was not reaped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = caller()?.stats();
    println!(
        "   after {:?} idle: {} open, {} reaped (idle timeout {idle:?})",
        waited.elapsed(),
        stats.open_connections,
        stats.reaps
    );

    pool.shutdown().await;
    println!("10. pool shut down, its sub pool (pid {}) with it. Done.", sub.pid);
    Ok(())
}

/// Adds 1 `rounds` times, one call after the other: the last total and the time per call.
async fn timed_adds(counter: &ActorRef<Counter>, rounds: u32) -> Result<(Total, Duration)> {
    let started = Instant::now();
    let mut total = Total::default();
    for _ in 0..rounds {
        total = counter.call(Add { n: 1 }).await?;
    }
    Ok((total, started.elapsed() / rounds))
}
