//! Nothing outlives its pool: a shutdown given up half-way, a destroy given up before its stop
//! was queued, a stop hook that never ends; shutdown stops actors in parallel and within its
//! grace period. Deadlines are asserted exactly, under tokio's paused clock (in-process pools).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{address, eventually, run_paused};
use tokio::time::Instant;
use xoscar_actor::{Actor, ActorPool, Context, Failure, Handler, destroy_actor};

/// Counts the actors alive: one more per actor made, one less when its state is dropped.
#[derive(Clone, Default)]
struct Census(Arc<AtomicUsize>);

impl Census {
    fn enrol(&self) -> Alive {
        self.0.fetch_add(1, Ordering::SeqCst);
        Alive(self.0.clone())
    }

    fn alive(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Part of an actor's state: leaves the census when the state is dropped.
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Busy for as long as told; its stop hook takes `stop_takes` (forever when `None`).
struct Worker {
    _alive: Alive,
    stop_takes: Option<Duration>,
}

impl Actor for Worker {
    async fn on_stop(&mut self, _: &mut Context<Self>) -> Result<(), Failure> {
        match self.stop_takes {
            Some(time) => tokio::time::sleep(time).await,
            None => std::future::pending().await,
        }
        Ok(())
    }
}

/// Work for this long.
struct Busy(Duration);

impl Handler<Busy> for Worker {
    type Reply = ();
    async fn handle(&mut self, Busy(time): Busy, _: &mut Context<Self>) -> Result<(), Failure> {
        tokio::time::sleep(time).await;
        Ok(())
    }
}

async fn pool(grace: Duration) -> ActorPool {
    ActorPool::builder(address(common::Transport::Inproc))
        .shutdown_grace(grace)
        .start()
        .await
        .unwrap()
}

/// The scenario: 12 busy actors, `shutdown()` given up after 200 ms (which drops the
/// pool with it). Every actor is gone at once, not when its work or stop would have ended.
#[test]
fn a_shutdown_given_up_half_way_leaves_no_actor_running() {
    run_paused(async {
        let census = Census::default();
        let pool = pool(Duration::from_secs(600)).await;
        for _ in 0..12 {
            let worker = Worker { _alive: census.enrol(), stop_takes: Some(Duration::ZERO) };
            let worker = pool.create(worker).await.unwrap();
            worker.tell(Busy(Duration::from_secs(60))).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let shutdown = pool.shutdown();
        assert!(tokio::time::timeout(Duration::from_millis(200), shutdown).await.is_err());
        assert!(
            eventually(Duration::from_millis(50), async || census.alive() == 0).await,
            "{} of 12 actors outlived their pool",
            census.alive()
        );
    });
}

/// A destroy given up while it waits for room in a full mailbox (its stop never queued):
/// the actor, already out of the registry, is aborted rather than left running unreachable.
#[test]
fn a_destroy_given_up_before_its_stop_was_queued_aborts_the_actor() {
    run_paused(async {
        let census = Census::default();
        let pool = ActorPool::builder(address(common::Transport::Inproc))
            .mailbox_capacity(1)
            .start()
            .await
            .unwrap();
        let worker = Worker { _alive: census.enrol(), stop_takes: Some(Duration::ZERO) };
        let worker = pool.create(worker).await.unwrap();
        worker.tell(Busy(Duration::from_secs(60))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        // The handler runs; this one fills the mailbox.
        worker.tell(Busy(Duration::from_secs(60))).await.unwrap();
        let destroy = destroy_actor(&worker);
        assert!(tokio::time::timeout(Duration::from_millis(100), destroy).await.is_err());
        assert!(
            eventually(Duration::from_millis(50), async || census.alive() == 0).await,
            "the actor outlived a destroy given up half-way"
        );
        assert_eq!(pool.actor_count(), 0);
    });
}

/// Ten actors whose stop hooks take 1 s each stop together: the shutdown takes 1 s, not 10.
#[test]
fn shutdown_stops_actors_in_parallel() {
    run_paused(async {
        let census = Census::default();
        let pool = pool(Duration::from_secs(600)).await;
        for _ in 0..10 {
            let worker =
                Worker { _alive: census.enrol(), stop_takes: Some(Duration::from_secs(1)) };
            pool.create(worker).await.unwrap();
        }
        let started = Instant::now();
        pool.shutdown().await;
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(1) && took < Duration::from_millis(1100), "{took:?}");
        assert_eq!(census.alive(), 0);
    });
}

/// A stop hook that never ends holds the shutdown for exactly the grace period; then the
/// actor is aborted (its state dropped) and the shutdown returns.
#[test]
fn a_stop_hook_that_never_ends_is_aborted_after_the_grace_period() {
    run_paused(async {
        let census = Census::default();
        let pool = pool(Duration::from_secs(3)).await;
        pool.create(Worker { _alive: census.enrol(), stop_takes: None }).await.unwrap();
        let quick = Worker { _alive: census.enrol(), stop_takes: Some(Duration::ZERO) };
        pool.create(quick).await.unwrap();
        let started = Instant::now();
        pool.shutdown().await;
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(3) && took < Duration::from_millis(3100), "{took:?}");
        assert!(eventually(Duration::from_millis(50), async || census.alive() == 0).await);
    });
}

/// The default grace period is the documented one.
#[test]
fn the_default_grace_period_is_ten_seconds() {
    run_paused(async {
        let census = Census::default();
        let pool = ActorPool::start(address(common::Transport::Inproc)).await.unwrap();
        pool.create(Worker { _alive: census.enrol(), stop_takes: None }).await.unwrap();
        let started = Instant::now();
        pool.shutdown().await;
        let took = started.elapsed();
        assert_eq!(xoscar_actor::DEFAULT_SHUTDOWN_GRACE, Duration::from_secs(10));
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_millis(10_100),
            "{took:?}"
        );
    });
}

/// Hands its reply to `reply_later`, with a future that counts itself running and waits for a
/// permit of `gate`.
struct Delegator {
    gate: Arc<tokio::sync::Semaphore>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
}

impl Actor for Delegator {}

struct Later;

impl Handler<Later> for Delegator {
    type Reply = ();
    async fn handle(&mut self, _: Later, ctx: &mut Context<Self>) -> Result<(), Failure> {
        let (gate, running) = (self.gate.clone(), self.running.clone());
        let (most, done) = (self.most.clone(), self.done.clone());
        ctx.reply_later(async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let _ = gate.acquire().await.unwrap();
            running.fetch_sub(1, Ordering::SeqCst);
            done.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// Told messages whose handlers hand their reply to `reply_later`: at most as many such
/// replies run at once as the mailbox holds; past that the actor waits, its mailbox fills
/// and the senders wait. Every one runs once room is made.
#[test]
fn replies_handed_on_by_told_messages_are_bounded_like_the_mailbox() {
    run_paused(async {
        let pool = ActorPool::builder(address(common::Transport::Inproc))
            .mailbox_capacity(4)
            .start()
            .await
            .unwrap();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (running, most, done): (_, Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let delegator =
            Delegator { gate: gate.clone(), running, most: most.clone(), done: done.clone() };
        let delegator = pool.create(delegator).await.unwrap();
        let telling = tokio::spawn(async move {
            for _ in 0..50 {
                delegator.tell(Later).await.unwrap();
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(most.load(Ordering::SeqCst), 4, "as many as the mailbox holds");
        assert!(!telling.is_finished(), "the senders wait");
        gate.add_permits(1_000);
        telling.await.unwrap();
        assert!(
            eventually(Duration::from_secs(1), async || done.load(Ordering::SeqCst) == 50).await
        );
        assert_eq!(most.load(Ordering::SeqCst), 4);
    });
}

/// Handles each step only once `gate` gives it a permit, and notes the steps in order.
struct Gated {
    gate: Arc<tokio::sync::Semaphore>,
    seen: Arc<parking_lot::Mutex<Vec<u32>>>,
}

impl Actor for Gated {}

struct Step(u32);

impl Handler<Step> for Gated {
    type Reply = ();
    async fn handle(&mut self, Step(n): Step, _: &mut Context<Self>) -> Result<(), Failure> {
        self.gate.acquire().await.unwrap().forget();
        self.seen.lock().push(n);
        Ok(())
    }
}

/// A serial actor takes up to 32 waiting messages out of its mailbox at once: while it is
/// stuck on one of them, its senders wait once the mailbox is full again, so what waits for it
/// is bounded by the capacity plus that run. Every message
/// is then handled, in order.
#[test]
fn what_waits_for_a_serial_actor_is_its_mailbox_and_one_run_taken_out_of_it() {
    run_paused(async {
        let pool = ActorPool::builder(address(common::Transport::Inproc))
            .mailbox_capacity(40)
            .start()
            .await
            .unwrap();
        // The first step passes; the actor is stuck on the second.
        let gate = Arc::new(tokio::sync::Semaphore::new(1));
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let gated = pool.create(Gated { gate: gate.clone(), seen: seen.clone() }).await.unwrap();
        let mut accepted = 0;
        // Tell until a tell waits (given 10 ms of the paused clock); the one that waits is
        // dropped unsent.
        while let Ok(told) =
            tokio::time::timeout(Duration::from_millis(10), gated.tell(Step(accepted))).await
        {
            told.unwrap();
            accepted += 1;
            assert!(accepted <= 1_000, "the senders never wait");
        }
        // 40 fill the mailbox and the 41st waits. The actor, woken, takes the first 32 out at
        // once, handles the first and is stuck on the second: the 41st and 31 more get in (the
        // 41st and one more without runs). 72 were accepted: the capacity and one run.
        assert_eq!(accepted, 40 + 32);
        gate.add_permits(1_000);
        let all: Vec<u32> = (0..accepted).collect();
        assert!(eventually(Duration::from_secs(1), async || *seen.lock() == all).await);
    });
}

/// A call in a run the actor has taken out of its mailbox is still queued as far as a cancel
/// goes: its caller gets `Cancelled` at once, and the actor skips it when it gets there.
#[test]
fn a_cancelled_call_in_a_run_taken_out_of_the_mailbox_is_answered_at_once_and_skipped() {
    run_paused(async {
        let pool = ActorPool::start(address(common::Transport::Inproc)).await.unwrap();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let gated = pool.create(Gated { gate: gate.clone(), seen: seen.clone() }).await.unwrap();
        let step = Duration::from_millis(1);
        // The actor wakes for step 0 alone and is stuck on it while 1 to 4 queue up.
        gated.tell(Step(0)).await.unwrap();
        tokio::time::sleep(step).await;
        gated.tell(Step(1)).await.unwrap();
        gated.tell(Step(2)).await.unwrap();
        let cancel = xoscar_actor::CancellationToken::new();
        let call = tokio::spawn({
            let (gated, cancel) = (gated.clone(), cancel.clone());
            async move { gated.call_cancellable(Step(3), &cancel).await }
        });
        tokio::time::sleep(step).await;
        gated.tell(Step(4)).await.unwrap();
        // Step 0 done, the actor takes 1 to 4 out at once and is stuck on 1.
        gate.add_permits(1);
        tokio::time::sleep(step).await;
        assert_eq!(*seen.lock(), [0]);
        let cancelled = Instant::now();
        cancel.cancel();
        let answer = call.await.unwrap();
        assert!(matches!(answer, Err(xoscar_actor::ActorError::Cancelled { .. })), "{answer:?}");
        assert_eq!(cancelled.elapsed(), Duration::ZERO, "not when the actor gets to it");
        gate.add_permits(1_000);
        assert!(eventually(Duration::from_secs(1), async || *seen.lock() == [0, 1, 2, 4]).await);
    });
}

/// Tells itself another spin for each spin it handles: its mailbox never empties.
struct Spinner {
    spins: Arc<AtomicUsize>,
}

impl Actor for Spinner {}

struct Spin;

impl Handler<Spin> for Spinner {
    type Reply = ();
    async fn handle(&mut self, _: Spin, ctx: &mut Context<Self>) -> Result<(), Failure> {
        self.spins.fetch_add(1, Ordering::SeqCst);
        ctx.actor_ref().tell(Spin).await.map_err(Failure::msg)
    }
}

/// An actor whose mailbox never empties and whose handler never waits still gives its thread
/// back to the other tasks now and then: taking mail out of the mailbox spends the task's
/// budget. (Without it, this test's task would never run again: the watchdog would abort.)
#[test]
fn an_actor_whose_mailbox_never_empties_still_lets_other_tasks_run() {
    run_paused(async {
        let pool = ActorPool::start(address(common::Transport::Inproc)).await.unwrap();
        let spins = Arc::new(AtomicUsize::new(0));
        let spinner = pool.create(Spinner { spins: spins.clone() }).await.unwrap();
        spinner.tell(Spin).await.unwrap();
        for _ in 0..3 {
            let before = spins.load(Ordering::SeqCst);
            tokio::task::yield_now().await;
            assert!(spins.load(Ordering::SeqCst) > before, "the actor ran meanwhile");
        }
        drop(pool);
    });
}
