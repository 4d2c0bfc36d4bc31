//! User code that panics where the actor layer calls it outside a handler's poll: a concurrent
//! actor's `Clone`, a `handle` that panics before it returns its future, and the `Drop` of a
//! handler's locals when a cancel drops it. Each fails its
//! own call (`HandlerPanicked`); a concurrent actor serves on, a serial one stops as after any
//! handler panic. In-process, under tokio's paused clock.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Transport, address, run_paused};
use xoscar_actor::{
    Actor, ActorError, ActorPool, CancellationToken, Context, Failure, Handler, has_actor,
};

/// With `clones` set, its `Clone` panics every other time; `Wait(ms)` sleeps, and, when
/// dropped before its end, its guard panics.
struct Brittle {
    clones: Option<Arc<AtomicUsize>>,
}

impl Clone for Brittle {
    fn clone(&self) -> Self {
        if let Some(clones) = &self.clones
            && clones.fetch_add(1, Ordering::SeqCst) % 2 == 1
        {
            panic!("clone exploded");
        }
        Brittle { clones: self.clones.clone() }
    }
}

impl Actor for Brittle {}

struct Wait(u64);

/// Panics when dropped unless disarmed (the handler ran to its end).
struct PanicsIfDropped(bool);

impl Drop for PanicsIfDropped {
    fn drop(&mut self) {
        if !self.0 {
            panic!("dropped half-way");
        }
    }
}

impl Handler<Wait> for Brittle {
    type Reply = u64;
    async fn handle(&mut self, Wait(ms): Wait, _: &mut Context<Self>) -> Result<u64, Failure> {
        let mut guard = PanicsIfDropped(false);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        guard.0 = true;
        Ok(ms)
    }
}

/// Asks a `handle` that panics before it makes its future.
struct Early;

impl Handler<Early> for Brittle {
    type Reply = u64;
    #[allow(unreachable_code)]
    fn handle(
        &mut self,
        _: Early,
        _: &mut Context<Self>,
    ) -> impl Future<Output = Result<u64, Failure>> + Send {
        panic!("no future made");
        async { Ok(0) }
    }
}

fn brittle(clones_panic: bool) -> Brittle {
    Brittle { clones: clones_panic.then(Arc::default) }
}

fn panicked(error: &ActorError, what: &str) -> bool {
    matches!(error, ActorError::HandlerPanicked { message, .. } if message == what)
}

#[test]
fn a_panicking_clone_fails_only_its_call_and_the_concurrent_actor_goes_on() {
    run_paused(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let actor = pool.create(brittle(true)).concurrent(4).await.unwrap();
        let mut answers = Vec::new();
        for _ in 0..6 {
            answers.push(actor.call(Wait(0)).await);
        }
        let failed =
            answers.iter().filter(|a| matches!(a, Err(e) if panicked(e, "clone exploded")));
        assert_eq!(failed.count(), 3, "{answers:?}");
        assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 3, "{answers:?}");
        assert!(has_actor(&actor).await.unwrap(), "the actor serves on");
    });
}

#[test]
fn a_handler_whose_drop_panics_at_a_cancel_fails_only_its_call() {
    run_paused(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let concurrent = pool.create(brittle(false)).concurrent(4).await.unwrap();
        let cancel = CancellationToken::new();
        let waiting = tokio::spawn({
            let (actor, cancel) = (concurrent.clone(), cancel.clone());
            async move { actor.call_cancellable(Wait(60_000), &cancel).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        cancel.cancel();
        let error = waiting.await.unwrap().unwrap_err();
        assert!(panicked(&error, "dropped half-way"), "{error:?}");
        // A plain caller that gives up: nobody hears of the panic, and the actor goes on.
        let given_up = concurrent.call_with_timeout(Wait(60_000), Duration::from_millis(10)).await;
        assert!(matches!(given_up, Err(ActorError::CallTimedOut { .. })), "{given_up:?}");
        assert_eq!(concurrent.call(Wait(5)).await.unwrap(), 5, "the concurrent actor serves on");

        let serial = pool.create(brittle(false)).await.unwrap();
        let cancel = CancellationToken::new();
        let waiting = tokio::spawn({
            let (actor, cancel) = (serial.clone(), cancel.clone());
            async move { actor.call_cancellable(Wait(60_000), &cancel).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        cancel.cancel();
        let error = waiting.await.unwrap().unwrap_err();
        assert!(panicked(&error, "dropped half-way"), "{error:?}");
        assert!(!has_actor(&serial).await.unwrap(), "a serial actor stops, as after any panic");
    });
}

#[test]
fn a_handle_that_panics_before_making_its_future_fails_only_its_call() {
    run_paused(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let concurrent = pool.create(brittle(false)).concurrent(4).await.unwrap();
        let error = concurrent.call(Early).await.unwrap_err();
        assert!(panicked(&error, "no future made"), "{error:?}");
        assert_eq!(concurrent.call(Wait(5)).await.unwrap(), 5, "the concurrent actor serves on");

        let serial = pool.create(brittle(false)).await.unwrap();
        let error = serial.call(Early).await.unwrap_err();
        assert!(panicked(&error, "no future made"), "{error:?}");
        assert!(!has_actor(&serial).await.unwrap(), "a serial actor stops, as after any panic");
    });
}
