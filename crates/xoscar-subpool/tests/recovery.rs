//! Sub pools under faults, and what the main pool keeps of them: its directory of actors and
//! its idle-label holds shrink with every destroy, restart and dropped create; a sub pool
//! added later is watched; each sub pool recovers on its own, one that crashes right after it
//! starts is restarted after a back-off, and one that cannot come back is unmapped. Its own
//! binary: it runs sub pools.

// The actor crate's test helpers (actors, scenarios, child processes), shared as source.
#[path = "../../xoscar-actor/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::actors::{self, Add, Counter, CounterInit, SlowStart, SlowStartInit};
use common::run;
use parking_lot::Mutex;
use xoscar_actor::{ActorError, ActorPool, Placement, create_actor, destroy_actor, has_actor};
use xoscar_subpool::{MainPool, Recovery, SubPool, WithSubPools, run_if_sub_pool};

/// Set for a sub pool that, once it served, exits by itself this many milliseconds later.
const CRASH_AFTER_ENV: &str = "XOSCAR_TEST_CRASH_AFTER_MS";
/// Set for a sub pool that serves once: a restart finds this file and hangs forever before
/// serving (`hang`), serves a second later (`slow`), or exits at once (anything else).
const ONCE_ENV: &str = "XOSCAR_TEST_SERVE_ONCE";

#[test]
fn sub_pool_entry() {
    if std::env::var_os(xoscar_subpool::ENV_SUB_POOL).is_none() {
        return;
    }
    if let Ok(millis) = std::env::var(CRASH_AFTER_ENV) {
        let millis: u64 = millis.parse().unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(millis));
            std::process::exit(1);
        });
    }
    if let Ok(once) = std::env::var(ONCE_ENV) {
        let (mode, marker) = once.split_once(':').unwrap();
        if std::path::Path::new(marker).exists() {
            match mode {
                "hang" => std::thread::sleep(Duration::from_secs(3600)),
                "slow" => std::thread::sleep(Duration::from_secs(1)),
                _ => std::process::exit(2),
            }
        } else {
            std::fs::write(marker, b"served").unwrap();
        }
    }
    run_if_sub_pool(actors::register);
}

fn sub_pool() -> SubPool {
    let args = ["--exact", "sub_pool_entry", "--nocapture", "--test-threads=1"];
    SubPool::new().program(std::env::current_exe().unwrap(), args)
}

type Deaths = Arc<Mutex<Vec<(usize, Instant)>>>;

/// A main pool with `subs` sub pools, recovering as `recovery` says; records each death its
/// exit hook saw.
async fn main_pool(recovery: Recovery, subs: Vec<SubPool>) -> (MainPool, Deaths) {
    main_pool_reached(recovery, subs, true).await
}

/// [`main_pool`]; `direct: false`: this process reaches it through its listener, as another
/// process would (so requests for actors of its sub pools are forwarded).
async fn main_pool_reached(
    recovery: Recovery,
    subs: Vec<SubPool>,
    direct: bool,
) -> (MainPool, Deaths) {
    let deaths = Deaths::default();
    let seen = deaths.clone();
    let mut builder = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
        .direct_delivery(direct)
        .recovery(recovery)
        .on_sub_pool_exit(move |sub, _| seen.lock().push((sub.index, Instant::now())));
    for sub in subs {
        builder = builder.sub_pool(sub);
    }
    (builder.start().await.unwrap(), deaths)
}

/// Polls `check` every 20 ms until it holds; false after `limit`.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let started = Instant::now();
    while !check().await {
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

fn marker(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("xoscar-recovery-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// The scenario: an actor placed on a sub pool and destroyed through its own ref (which
/// goes straight to the sub pool) is not created again after that sub pool crashes: the sub
/// pool told the main pool when it left.
#[test]
fn an_actor_destroyed_through_its_own_ref_is_not_created_again() {
    run(async {
        let (main, _) = main_pool(Recovery::Actors, vec![sub_pool()]).await;
        let at = main.address().clone();
        let create = |uid: &str| {
            create_actor::<Counter>(&at, "Counter", &CounterInit::default())
                .uid(uid.to_owned())
                .placement(Placement::SubPool(0))
        };
        let gone = create("gone").await.unwrap();
        let kept = create("kept").await.unwrap();
        assert_eq!(gone.address(), &main.sub_pools()[0].address, "lives in the sub pool");
        destroy_actor(&gone).await.unwrap();
        main.kill_sub_pool(0).unwrap();
        tokio::time::timeout(Duration::from_secs(30), main.wait_recovered()).await.unwrap();
        assert!(has_actor(&kept).await.unwrap(), "the kept actor is back");
        assert!(!has_actor(&gone).await.unwrap(), "the destroyed actor stays destroyed");
    });
}

/// `IdleLabel` holds: released when the sub pool holding them restarts (its actors are gone),
/// when the holder is destroyed through its own ref, and when the create is dropped before it
/// ended.
#[test]
fn idle_label_holds_are_released_by_a_restart_a_destroy_and_a_dropped_create() {
    run(async {
        let (main, _) = main_pool(Recovery::Process, vec![sub_pool().label("gpu")]).await;
        let at = main.address().clone();
        let idle = || {
            create_actor::<Counter>(&at, "Counter", &CounterInit::default())
                .placement(Placement::IdleLabel("gpu".into()))
        };
        let holder = idle().await.unwrap();
        let held = idle().await.unwrap_err();
        assert!(
            matches!(held, ActorError::Placement { .. }),
            "the only gpu pool is held: {held:?}"
        );

        main.kill_sub_pool(0).unwrap();
        tokio::time::timeout(Duration::from_secs(30), main.wait_recovered()).await.unwrap();
        assert!(!has_actor(&holder).await.unwrap());
        let holder = idle().await.expect("a restart frees the hold");

        destroy_actor(&holder).await.unwrap();
        let holder = idle().await.expect("destroying the holder through its own ref frees it");
        // The main pool's directory forgets it too: destroying through the main pool now
        // finds nothing to forward to.
        destroy_actor(&holder).await.unwrap();

        let slow = create_actor::<SlowStart>(&at, "SlowStart", &SlowStartInit { millis: 2000 })
            .placement(Placement::IdleLabel("gpu".into()));
        assert!(tokio::time::timeout(Duration::from_millis(200), slow).await.is_err());
        idle().await.expect("a create dropped half-way frees its hold");
    });
}

/// A sub pool added to a main pool started without any is watched like the others: killed, it
/// is reported and restarted.
#[test]
fn a_sub_pool_added_later_is_watched() {
    run(async {
        let (main, deaths) = main_pool(Recovery::Process, Vec::new()).await;
        let added = main.add_sub_pool(sub_pool()).await.unwrap();
        main.kill_sub_pool(added.index).unwrap();
        assert!(within(Duration::from_secs(5), async || deaths.lock().len() == 1).await);
        tokio::time::timeout(Duration::from_secs(30), main.wait_recovered()).await.unwrap();
        let restarted = main.sub_pools()[0].clone();
        assert_ne!(restarted.pid, added.pid);
        let counter = create_actor::<Counter>(main.address(), "Counter", &CounterInit::default())
            .placement(Placement::SubPool(0))
            .await
            .unwrap();
        assert_eq!(counter.call(Add { n: 2 }).await.unwrap().value, 2);
    });
}

/// One sub pool whose restart hangs does not hold up another's: each recovers on its own.
#[test]
fn a_sub_pool_stuck_in_its_restart_holds_up_no_other() {
    run(async {
        let stuck = marker("stuck");
        let once = format!("hang:{}", stuck.display());
        let (main, _) =
            main_pool(Recovery::Process, vec![sub_pool().env(ONCE_ENV, once), sub_pool()]).await;
        let other = main.sub_pools()[1].clone();
        main.kill_sub_pool(0).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        main.kill_sub_pool(1).unwrap();
        let back = within(Duration::from_secs(10), async || {
            main.sub_pools().iter().any(|sub| sub.index == 1 && sub.pid != other.pid)
        });
        assert!(back.await, "sub pool 1 waited for sub pool 0's restart");
        let counter = create_actor::<Counter>(main.address(), "Counter", &CounterInit::default())
            .placement(Placement::SubPool(1))
            .await
            .unwrap();
        assert_eq!(counter.call(Add { n: 1 }).await.unwrap().value, 1);
        let _ = std::fs::remove_file(stuck);
    });
}

/// A sub pool that dies right after it starts, again and again, is restarted after 200 ms,
/// 400 ms, 800 ms, ... (docs/actors.md), not in a tight loop.
#[test]
fn a_sub_pool_that_crashes_right_after_it_starts_is_restarted_with_back_off() {
    run(async {
        let crashing = sub_pool().env(CRASH_AFTER_ENV, "200");
        let (main, deaths) = main_pool(Recovery::Process, vec![crashing]).await;
        let watched = Instant::now();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let deaths: Vec<Duration> =
            deaths.lock().iter().map(|(_, at)| at.duration_since(watched)).collect();
        // Without a back-off: a death every ~0.25 s, about 16 in 4 s. With it: the restarts
        // wait 0.2, 0.4, 0.8, 1.6 s, so at most 5 deaths fit.
        assert!(deaths.len() >= 2, "it is restarted: {deaths:?}");
        assert!(deaths.len() <= 5, "restarted in a tight loop: {deaths:?}");
        let gaps: Vec<Duration> = deaths.windows(2).map(|pair| pair[1] - pair[0]).collect();
        assert!(gaps.windows(2).all(|pair| pair[1] > pair[0]), "growing gaps: {gaps:?}");
        drop(main);
    });
}

/// A sub pool that cannot be restarted is gone for good: this process no longer maps its
/// address to its (dead) socket, so a pool that later serves that address is reached.
#[test]
fn a_sub_pool_that_cannot_come_back_is_unmapped() {
    run(async {
        let once = marker("once");
        let (main, deaths) = main_pool(
            Recovery::Process,
            vec![sub_pool().env(ONCE_ENV, format!("exit:{}", once.display()))],
        )
        .await;
        let gone = main.sub_pools()[0].clone();
        main.kill_sub_pool(0).unwrap();
        tokio::time::timeout(Duration::from_secs(30), main.wait_recovered()).await.unwrap();
        assert_eq!(deaths.lock().len(), 1);
        assert!(main.sub_pools().is_empty(), "gone for good");
        let successor = actors::register(ActorPool::builder(gone.address.clone()))
            .direct_delivery(false)
            .start()
            .await
            .expect("its address is free again");
        let counter = successor.create(Counter::new(40)).await.unwrap();
        assert_eq!(counter.call(Add { n: 2 }).await.unwrap().value, 42);
        let _ = std::fs::remove_file(once);
    });
}

/// A call forwarded by the main pool to a sub pool that dies fails as a direct call does: a
/// call in flight with `ConnectionLost` (not retry-safe), one to a sub pool whose socket is gone
/// with `Connect` (retry-safe), and a timeout as `CallTimedOut`; not as a `Handler` error.
#[test]
fn errors_a_forward_meets_reach_the_caller_as_they_are() {
    use common::actors::{Empty, Gate, Meet};
    use xoscar_actor::ActorRef;
    use xoscar_pool::PoolError;
    run(async {
        let stuck = marker("forwarded");
        let once = format!("hang:{}", stuck.display());
        let subs = vec![sub_pool().env(ONCE_ENV, once)];
        let (main, _) = main_pool_reached(Recovery::Actors, subs, false).await;
        let gate = create_actor::<Gate>(main.address(), "Gate", &Empty {})
            .uid("gate")
            .placement(Placement::SubPool(0))
            .await
            .unwrap();
        let forwarded = ActorRef::<Gate>::new(main.address().clone(), "gate");
        let timed_out =
            forwarded.call_with_timeout(Meet { parties: 100 }, Duration::from_millis(200));
        match timed_out.await.unwrap_err() {
            ActorError::CallTimedOut { uid, .. } => assert_eq!(uid, "gate"),
            other => panic!("expected CallTimedOut, got {other:?}"),
        }
        let in_flight = |gate: ActorRef<Gate>| {
            tokio::spawn(async move { gate.call(Meet { parties: 100 }).await })
        };
        let (through_main, direct) = (in_flight(forwarded.clone()), in_flight(gate.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        main.kill_sub_pool(0).unwrap();
        for (how, call) in [("forwarded", through_main), ("direct", direct)] {
            let error = tokio::time::timeout(Duration::from_secs(10), call).await.unwrap().unwrap();
            match error.unwrap_err() {
                ActorError::Connection(error @ PoolError::ConnectionLost { .. }) => {
                    assert!(!error.is_retry_safe(), "{how}: {error}");
                }
                other => panic!("{how}: expected ConnectionLost, got {other:?}"),
            }
        }
        // Its restart hangs: its socket is gone, so a call cannot connect.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (how, gate) in [("forwarded", &forwarded), ("direct", &gate)] {
            match gate.call(Meet { parties: 1 }).await.unwrap_err() {
                ActorError::Connection(error @ PoolError::Connect { .. }) => {
                    assert!(error.is_retry_safe(), "{how}: {error}");
                }
                other => panic!("{how}: expected Connect, got {other:?}"),
            }
        }
        let _ = std::fs::remove_file(stuck);
    });
}

/// A sub pool removed while it is being restarted stays removed: the restarted process goes
/// with its slot, and placing on it fails.
#[test]
fn a_sub_pool_removed_during_its_restart_stays_removed() {
    run(async {
        let slow = marker("slow");
        let once = format!("slow:{}", slow.display());
        let (main, _) = main_pool(Recovery::Process, vec![sub_pool().env(ONCE_ENV, once)]).await;
        main.kill_sub_pool(0).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        main.remove_sub_pool(0).unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(main.sub_pools().is_empty(), "{:?}", main.sub_pools());
        let placed = create_actor::<Counter>(main.address(), "Counter", &CounterInit::default())
            .placement(Placement::SubPool(0))
            .await;
        assert!(matches!(placed, Err(ActorError::Placement { .. })), "{placed:?}");
        let _ = std::fs::remove_file(slow);
    });
}

/// An idle-label hold on the main pool itself (it carries the label) is released when its
/// holder is destroyed there.
#[test]
fn an_idle_label_hold_on_the_main_pool_is_released_by_a_destroy() {
    run(async {
        let main = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
            .label("gpu")
            .start()
            .await
            .unwrap();
        let idle = || {
            create_actor::<Counter>(main.address(), "Counter", &CounterInit::default())
                .placement(Placement::IdleLabel("gpu".into()))
        };
        let holder = idle().await.unwrap();
        assert_eq!(holder.address(), main.address());
        assert!(matches!(idle().await, Err(ActorError::Placement { .. })), "held");
        destroy_actor(&holder).await.unwrap();
        idle().await.expect("the destroy freed the hold");
    });
}
