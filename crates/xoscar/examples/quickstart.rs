//! The xoscar-rs tour: two actor pools, one in a child process, and everything a caller does
//! with actors between them.
//!
//! Run it with `cargo run --release --example quickstart`. It re-runs itself as the child
//! (environment variable `XOSCAR_QUICKSTART_CHILD`), which serves until its stdin closes.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use tokio::io::{AsyncBufReadExt, BufReader};
use xoscar::{
    Actor, ActorError, ActorPool, ActorRef, Address, Context, Failure, Handler, PoolConfig,
    RemoteMessages, caller, configure, create_actor, destroy_actor, has_actor,
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

// ---- the child: a second pool in another process ----------------------------------------------

const CHILD_ENV: &str = "XOSCAR_QUICKSTART_CHILD";

async fn child() -> Result<()> {
    let pool = ActorPool::builder("127.0.0.1:0".parse()?)
        .register("Counter", |init: CounterInit| Ok(Counter { total: init.start }))
        .start()
        .await?;
    println!("{}", pool.address());
    // Serve until the parent closes our stdin (or dies).
    let mut line = String::new();
    BufReader::new(tokio::io::stdin()).read_line(&mut line).await?;
    Ok(())
}

// ---- the tour -----------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<()> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child().await;
    }
    // On a worker thread, like the actors: `main` itself runs outside the runtime's workers,
    // and every call from it would cross threads twice.
    tokio::spawn(tour()).await?
}

async fn tour() -> Result<()> {
    // This process's caller closes connections idle for 300 ms (the default is 30 s).
    let idle = Duration::from_millis(300);
    configure(PoolConfig::default().idle_timeout(idle))?;

    let pool = ActorPool::builder("127.0.0.1:0".parse()?)
        .register("Counter", |init: CounterInit| Ok(Counter { total: init.start }))
        .start()
        .await?;
    println!("1. main pool on {} (pid {})", pool.address(), std::process::id());

    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the child pool")?;
    let mut child_out = BufReader::new(child.stdout.take().context("child stdout")?).lines();
    let remote: Address =
        child_out.next_line().await?.context("the child said nothing")?.parse()?;
    println!("2. child pool on {remote} (pid {})", child.id().unwrap_or_default());

    // An actor in our own pool, from a value; one in the child, by registered type name.
    let local = pool.create(Counter { total: 0 }).uid("local-counter").await?;
    let far = create_actor::<Counter>(&remote, "Counter", &CounterInit { start: 100 }).await?;
    println!("3. created {local} here and {far} in the child, by type name");

    let (here, in_process) = timed_adds(&local, 10_000).await?;
    let (there, across) = timed_adds(&far, 2_000).await?;
    ensure!(here.value == 10_000 && there.value == 2_100, "unexpected totals");
    println!(
        "4. calls, one at a time: local {in_process:?} each (no encoding, no socket), total {}; \
         remote {across:?} each (TCP to the child), total {}",
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
    println!("7. passed {desk} inside a message; the child called it back with {received:?}");

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

    drop(child.stdin.take());
    child.wait().await?;
    pool.shutdown().await;
    println!("10. child exited, pool shut down. Done.");
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
