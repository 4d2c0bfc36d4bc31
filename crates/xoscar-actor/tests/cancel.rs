//! Cancellation reaches the actor (issue 8, first part), under tokio's paused clock, in this
//! process and behind a listener: a caller that gives up stops a handler that is still
//! waiting, and a queued message whose caller gave up is skipped; the serial actor goes on
//! serving at once. An explicit cancel (`call_cancellable`) of a direct in-process call: a
//! handler that takes its cancellation answers, one that does not is dropped, and a call
//! still waiting for room in a full mailbox is cancelled at once; a cancellation kept past its
//! call reads as cancelled and wakes its waiters.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Transport, address, run_paused};
use tokio::time::Instant;
use xoscar_actor::{
    Actor, ActorError, ActorPool, ActorRef, CancellationToken, Context, Failure, Handler,
    RemoteMessages, create_actor,
};

#[derive(Clone, PartialEq, prost::Message)]
struct Wait {
    #[prost(uint64, tag = "1")]
    ms: u64,
}

/// Counts the waits it started and those dropped before their end.
#[derive(Clone, Default)]
struct Waiter {
    started: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

struct CountDrop(Arc<AtomicUsize>, bool);

impl Drop for CountDrop {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Actor for Waiter {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Wait>("Wait");
    }
}

impl Handler<Wait> for Waiter {
    type Reply = u64;
    async fn handle(&mut self, wait: Wait, _: &mut Context<Self>) -> Result<u64, Failure> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut guard = CountDrop(self.dropped.clone(), false);
        tokio::time::sleep(Duration::from_millis(wait.ms)).await;
        guard.1 = true;
        Ok(wait.ms)
    }
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// A 10 s wait, and a second call queued behind it; both callers give up after 100 ms. The
/// running handler is dropped, the queued one never starts, and the next call is answered at
/// once, not after 10 s.
async fn giving_up_stops_the_handler_and_skips_the_queue(
    waiter: ActorRef<Waiter>,
    counts: &Waiter,
) {
    let running = tokio::spawn({
        let waiter = waiter.clone();
        async move { waiter.call(Wait { ms: 10_000 }).await }
    });
    let queued = tokio::spawn({
        let waiter = waiter.clone();
        async move { waiter.call(Wait { ms: 20_000 }).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(counts.started.load(Ordering::SeqCst), 1);
    running.abort();
    queued.abort();
    settle().await;
    assert_eq!(counts.dropped.load(Ordering::SeqCst), 1, "the running handler stopped");
    let asked = Instant::now();
    assert_eq!(waiter.call(Wait { ms: 1 }).await.unwrap(), 1);
    assert_eq!(asked.elapsed(), Duration::from_millis(1), "served at once");
    assert_eq!(counts.started.load(Ordering::SeqCst), 2, "the queued message was skipped");
}

/// A pool reached through its listener (in-process transport), with a waiter counting into
/// `counts`.
async fn behind_a_listener(counts: &Waiter) -> (ActorPool, ActorRef<Waiter>) {
    let made = counts.clone();
    let pool = ActorPool::builder(address(Transport::Inproc))
        .register("Waiter", move |_: Wait| Ok(made.clone()))
        .direct_delivery(false)
        .start()
        .await
        .unwrap();
    let waiter = create_actor::<Waiter>(pool.address(), "Waiter", &Wait { ms: 0 }).await.unwrap();
    (pool, waiter)
}

#[test]
fn in_process_a_caller_that_gives_up_stops_its_handler() {
    run_paused(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let counts = Waiter::default();
        let waiter = pool.create(counts.clone()).await.unwrap();
        giving_up_stops_the_handler_and_skips_the_queue(waiter, &counts).await;
    });
}

#[test]
fn a_remote_caller_that_gives_up_stops_its_handler() {
    run_paused(async {
        let counts = Waiter::default();
        let (_pool, waiter) = behind_a_listener(&counts).await;
        giving_up_stops_the_handler_and_skips_the_queue(waiter, &counts).await;
    });
}

/// The scenario: a call queued behind a 3 s handler, explicitly cancelled 300 ms
/// later, returns `Cancelled` at that instant (not when the actor gets to it), and the actor
/// skips it.
async fn an_explicit_cancel_of_a_queued_call_answers_at_once(
    waiter: ActorRef<Waiter>,
    counts: &Waiter,
) {
    let busy = tokio::spawn({
        let waiter = waiter.clone();
        async move { waiter.call(Wait { ms: 3_000 }).await }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let cancel = CancellationToken::new();
    let queued = tokio::spawn({
        let (waiter, cancel) = (waiter.clone(), cancel.clone());
        async move { waiter.call_cancellable(Wait { ms: 5 }, &cancel).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled = Instant::now();
    cancel.cancel();
    let error = queued.await.unwrap().unwrap_err();
    assert!(matches!(error, ActorError::Cancelled { .. }), "{error:?}");
    assert_eq!(cancelled.elapsed(), Duration::ZERO, "answered at the cancel");
    assert_eq!(busy.await.unwrap().unwrap(), 3_000);
    settle().await;
    assert_eq!(counts.started.load(Ordering::SeqCst), 1, "the cancelled call was skipped");
}

#[test]
fn in_process_an_explicit_cancel_of_a_queued_call_answers_at_once() {
    run_paused(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let counts = Waiter::default();
        let waiter = pool.create(counts.clone()).await.unwrap();
        an_explicit_cancel_of_a_queued_call_answers_at_once(waiter, &counts).await;
    });
}

#[test]
fn remotely_an_explicit_cancel_of_a_queued_call_answers_at_once() {
    run_paused(async {
        let counts = Waiter::default();
        let (_pool, waiter) = behind_a_listener(&counts).await;
        an_explicit_cancel_of_a_queued_call_answers_at_once(waiter, &counts).await;
    });
}

#[test]
fn a_timeout_stops_the_handler_too() {
    run_paused(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let counts = Waiter::default();
        let waiter = pool.create(counts.clone()).await.unwrap();
        let error = waiter.call_with_timeout(Wait { ms: 10_000 }, Duration::from_millis(50)).await;
        assert!(error.is_err());
        settle().await;
        assert_eq!(counts.dropped.load(Ordering::SeqCst), 1);
        let asked = Instant::now();
        waiter.call(Wait { ms: 0 }).await.unwrap();
        assert_eq!(asked.elapsed(), Duration::ZERO);
    });
}

/// Waits `ms`, watching its cancellation: answers how long it waited.
struct Watch {
    ms: u64,
}

impl Handler<Watch> for Waiter {
    type Reply = Duration;
    async fn handle(&mut self, watch: Watch, ctx: &mut Context<Self>) -> Result<Duration, Failure> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let (cancel, began) = (ctx.cancellation(), Instant::now());
        assert!(!cancel.is_cancelled());
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(watch.ms)) => {}
            () = cancel.cancelled() => assert!(cancel.is_cancelled()),
        }
        Ok(began.elapsed())
    }
}

#[test]
fn in_process_an_explicit_cancel_gives_the_watching_handlers_answer_or_cancelled() {
    run_paused(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let counts = Waiter::default();
        let waiter = pool.create(counts.clone()).await.unwrap();

        // Watching: the handler sees the cancel 100 ms in and answers; the caller gets it.
        let cancel = CancellationToken::new();
        let asked = Instant::now();
        let call = waiter.call_cancellable(Watch { ms: 10_000 }, &cancel);
        let canceller = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        };
        let waited = tokio::join!(call, canceller).0.unwrap();
        assert_eq!(
            (waited, asked.elapsed()),
            (Duration::from_millis(100), Duration::from_millis(100))
        );

        // Not watching: dropped at the cancel; the caller gets `Cancelled` at once.
        let cancel = CancellationToken::new();
        let asked = Instant::now();
        let call = waiter.call_cancellable(Wait { ms: 10_000 }, &cancel);
        let canceller = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        };
        let error = tokio::join!(call, canceller).0.unwrap_err();
        assert!(matches!(error, ActorError::Cancelled { .. }), "{error:?}");
        assert_eq!(asked.elapsed(), Duration::from_millis(100));
        settle().await;
        assert_eq!(counts.dropped.load(Ordering::SeqCst), 1);
        assert_eq!(waiter.call(Wait { ms: 1 }).await.unwrap(), 1, "the actor goes on");
        assert_eq!(counts.started.load(Ordering::SeqCst), 3);
    });
}

/// Keeps its call's cancellation beyond the call, and a task that waits on it.
struct Keep;

impl Handler<Keep> for Waiter {
    type Reply = (xoscar_actor::Cancellation, tokio::task::JoinHandle<()>);
    async fn handle(&mut self, _: Keep, ctx: &mut Context<Self>) -> Result<Self::Reply, Failure> {
        let cancel = ctx.cancellation();
        let waiting = cancel.clone();
        let waiter = tokio::spawn(async move { waiting.cancelled().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!cancel.is_cancelled(), "still its call");
        Ok((cancel, waiter))
    }
}

#[test]
fn a_cancellation_kept_past_its_call_reads_cancelled_and_wakes_its_waiters() {
    run_paused(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let waiter = pool.create(Waiter::default()).await.unwrap();
        let (kept, waiting) = waiter.call(Keep).await.unwrap();
        assert!(kept.is_cancelled(), "its call is over");
        tokio::time::timeout(Duration::from_secs(1), waiting).await.expect("woken").unwrap();
        // The next call's own cancellation starts afresh.
        assert_eq!(waiter.call(Watch { ms: 5 }).await.unwrap(), Duration::from_millis(5));
    });
}

#[test]
fn a_call_waiting_for_room_in_a_full_mailbox_is_cancelled_at_once() {
    run_paused(async {
        let pool = ActorPool::builder(address(Transport::Inproc))
            .mailbox_capacity(1)
            .start()
            .await
            .unwrap();
        let counts = Waiter::default();
        let waiter = pool.create(counts.clone()).await.unwrap();
        let busy = tokio::spawn({
            let waiter = waiter.clone();
            async move { waiter.call(Wait { ms: 10_000 }).await }
        });
        settle().await;
        let queued = tokio::spawn({
            let waiter = waiter.clone();
            async move { waiter.call(Wait { ms: 1 }).await }
        });
        settle().await;
        let cancel = CancellationToken::new();
        let asked = Instant::now();
        let call = waiter.call_cancellable(Wait { ms: 1 }, &cancel);
        let canceller = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        };
        let error = tokio::join!(call, canceller).0.unwrap_err();
        assert!(matches!(error, ActorError::Cancelled { .. }), "{error:?}");
        assert_eq!(asked.elapsed(), Duration::from_millis(100), "not after the busy call");
        assert_eq!(busy.await.unwrap().unwrap(), 10_000);
        assert_eq!(queued.await.unwrap().unwrap(), 1);
        assert_eq!(counts.started.load(Ordering::SeqCst), 2, "the cancelled call never ran");
    });
}
