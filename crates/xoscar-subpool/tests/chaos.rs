//! Chaos: 64 callers keep calls in flight to actors in two sub pools and in a peer process
//! while, at random moments, a sub pool or the peer is killed with SIGKILL (the main pool
//! restarts its sub pools and re-creates their actors; the test restarts the peer at the same
//! address). No call may hang, every answer must be right, every failure must be one that
//! says the callee was unreachable, and after recovery every call succeeds. The counts are
//! printed (`CHAOS ...`) for the closing note. Its own binary: it is heavy and counts
//! processes. `XOSCAR_CHAOS_SECONDS` sets how long the kills go on (default 15).

// The actor crate's test helpers (actors, scenarios, child processes), shared as source.
#[path = "../../xoscar-actor/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use xoscar_actor::{
    Actor, ActorPool, ActorPoolBuilder, ActorRef, Context, Failure, Handler, Placement,
    RemoteMessages, create_actor,
};
use xoscar_subpool::{Recovery, SubPool, WithSubPools, run_if_sub_pool};
use xoscar_transport::Address;

/// Set in the peer child: the address to serve at.
const PEER_ENV: &str = "XOSCAR_CHAOS_PEER";
const CALLERS: usize = 64;
/// A call that takes longer than this counts as hung.
const HANG: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Doubler;

#[derive(Clone, PartialEq, prost::Message)]
struct Double {
    #[prost(int64, tag = "1")]
    n: i64,
}

impl Actor for Doubler {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Double>("Double");
    }
}

impl Handler<Double> for Doubler {
    type Reply = i64;
    async fn handle(&mut self, d: Double, _: &mut Context<Self>) -> Result<i64, Failure> {
        tokio::task::yield_now().await;
        Ok(d.n * 2)
    }
}

fn register(builder: ActorPoolBuilder) -> ActorPoolBuilder {
    builder.register_concurrent("Doubler", 256, |_: ()| Ok(Doubler))
}

#[test]
fn chaos_sub_pool_entry() {
    run_if_sub_pool(register);
}

/// The peer: a pool of its own with one actor, `doubler`, serving until killed.
#[test]
fn chaos_peer_entry() {
    let Ok(address) = std::env::var(PEER_ENV) else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let pool = register(ActorPool::builder(address.parse().unwrap())).start().await.unwrap();
        pool.create(Doubler).uid("doubler").await.unwrap();
        println!("PEER_READY {}", pool.addresses()[0]);
        std::future::pending::<()>().await;
    });
}

/// Starts the peer at `address`; its actual address once it serves.
/// The peer's process: SIGKILLed and reaped when dropped, also when the test fails half-way
/// (a failed run used to leave it running).
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_peer(address: &str) -> (Peer, Address) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "chaos_peer_entry", "--nocapture", "--test-threads=1"])
        .env(PEER_ENV, address)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines().map_while(Result::ok) {
        if let Some((_, at)) = line.split_once("PEER_READY ") {
            return (Peer(child), at.trim().parse().unwrap());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the peer did not start");
}

/// A small deterministic generator (xorshift), seeded and printed so a run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the callers saw.
#[derive(Default, Debug)]
struct Tally {
    calls: u64,
    ok: u64,
    wrong: u64,
    hung: u64,
    failed: BTreeMap<&'static str, u64>,
}

/// Errors that say the callee could not be reached: its connection broke or was refused,
/// or (for an instant after a restart, before its actors are created again) it does not
/// have the actor yet.
fn unreachable_callee(kind: &str) -> bool {
    matches!(
        kind,
        "connect"
            | "connection_lost"
            | "connection_timed_out"
            | "refused"
            | "dial_aborted"
            | "not_found"
            | "stopped"
    )
}

async fn call_once(target: &ActorRef<Doubler>, n: i64, tally: &Mutex<Tally>) -> bool {
    let answer = tokio::time::timeout(HANG, target.call(Double { n })).await;
    let mut tally = tally.lock();
    tally.calls += 1;
    match answer {
        Err(_) => tally.hung += 1,
        Ok(Ok(doubled)) if doubled == n * 2 => {
            tally.ok += 1;
            return true;
        }
        Ok(Ok(_)) => tally.wrong += 1,
        Ok(Err(error)) => *tally.failed.entry(error.kind()).or_default() += 1,
    }
    false
}

#[test]
fn calls_under_random_sigkills_either_succeed_or_fail_as_unreachable_and_never_hang() {
    let seconds: u64 = std::env::var("XOSCAR_CHAOS_SECONDS")
        .ok()
        .map(|s| s.parse().expect("XOSCAR_CHAOS_SECONDS: whole seconds"))
        .unwrap_or(15);
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64
            | 1;
    println!("CHAOS seed {seed}, {seconds} s of kills");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let sub = || {
            let args = ["--exact", "chaos_sub_pool_entry", "--nocapture", "--test-threads=1"];
            SubPool::new().program(std::env::current_exe().unwrap(), args)
        };
        let main = register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
            .sub_pool(sub())
            .sub_pool(sub())
            .recovery(Recovery::Actors)
            .start()
            .await
            .unwrap();
        let at = main.addresses()[0].clone();
        let mut targets = Vec::new();
        for index in 0..2 {
            let create = create_actor::<Doubler>(&at, "Doubler", &())
                .placement(Placement::SubPool(index))
                .uid(format!("doubler-{index}"));
            targets.push(create.await.unwrap());
        }
        let (mut peer, peer_at) = start_peer("127.0.0.1:0");
        targets.push(xoscar_actor::actor_ref::<Doubler>(&peer_at, "doubler").await.unwrap());
        let targets = Arc::new(targets);

        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let callers: Vec<_> = (0..CALLERS as u64)
            .map(|k| {
                let (targets, tally, stop) = (targets.clone(), tally.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut rng = Rng(seed ^ (k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    while !stop.load(Ordering::Relaxed) {
                        let target = &targets[rng.below(targets.len() as u64) as usize];
                        call_once(target, rng.below(1 << 40) as i64, &tally).await;
                    }
                })
            })
            .collect();

        let mut rng = Rng(seed);
        let mut faults = BTreeMap::<&str, u64>::new();
        let until = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
            match rng.below(3) {
                2 => {
                    peer.0.kill().unwrap(); // SIGKILL
                    peer.0.wait().unwrap();
                    *faults.entry("peer").or_default() += 1;
                    // Down for a moment, then back at the same address.
                    tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
                    let again = peer_at.to_string();
                    peer = tokio::task::spawn_blocking(move || start_peer(&again).0).await.unwrap();
                }
                // A sub pool being restarted (or dead, not yet noticed) cannot be killed again:
                // not a fault, not counted.
                index => {
                    if main.kill_sub_pool(index as usize).is_ok() {
                        *faults.entry("sub pool").or_default() += 1;
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        for caller in callers {
            caller.await.unwrap();
        }
        let during = std::mem::take(&mut *tally.lock());
        println!("CHAOS faults injected: {faults:?}");
        println!("CHAOS under faults: {during:?}");

        // Recovery: every target answers again, then every call succeeds.
        tokio::time::timeout(Duration::from_secs(30), main.wait_recovered()).await.unwrap();
        let recovered = Instant::now();
        for target in targets.iter() {
            while !call_once(target, 1, &tally).await {
                assert!(
                    recovered.elapsed() < Duration::from_secs(30),
                    "{} never came back",
                    target.uid()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        *tally.lock() = Tally::default();
        let after: Vec<_> = (0..CALLERS as i64)
            .map(|k| {
                let (targets, tally) = (targets.clone(), tally.clone());
                tokio::spawn(async move {
                    for n in 0..50 {
                        call_once(&targets[(k + n) as usize % targets.len()], k * 1000 + n, &tally)
                            .await;
                    }
                })
            })
            .collect();
        for caller in after {
            caller.await.unwrap();
        }
        let after = std::mem::take(&mut *tally.lock());
        println!("CHAOS after recovery: {after:?}");
        drop(peer);

        assert!(faults.values().sum::<u64>() >= seconds / 2, "{faults:?}");
        assert_eq!((during.hung, during.wrong), (0, 0), "{during:?}");
        assert!(during.ok > 0, "{during:?}");
        let other: Vec<_> = during.failed.keys().filter(|kind| !unreachable_callee(kind)).collect();
        assert!(other.is_empty(), "failures that are not about reaching the callee: {other:?}");
        assert_eq!(after.ok, after.calls, "after recovery every call succeeds: {after:?}");
    });
}
