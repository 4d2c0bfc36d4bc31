//! Calls with a timeout, under tokio's paused clock (in-process transport): the caller gets
//! `CallTimedOut` exactly at its deadline, even from a peer that never answers; and the
//! deadline travels with the message, so an actor that only reaches it later skips it, in
//! this process and behind a listener.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::actors::{Counter, Get};
use common::{Transport, address, run_paused};
use tokio::time::Instant;
use xoscar_actor::{
    Actor, ActorError, ActorPool, ActorRef, Context, Failure, Handler, RemoteMessages, create_actor,
};
use xoscar_transport::{TransportConfig, listen};

/// Sleeps for the asked number of milliseconds; counts the naps it started.
#[derive(Clone, PartialEq, prost::Message)]
struct Nap {
    #[prost(uint64, tag = "1")]
    ms: u64,
}

struct Sleeper {
    started: Arc<AtomicUsize>,
}

impl Actor for Sleeper {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Nap>("Nap");
    }
}

impl Handler<Nap> for Sleeper {
    type Reply = u64;
    async fn handle(&mut self, nap: Nap, _: &mut Context<Self>) -> Result<u64, Failure> {
        self.started.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(nap.ms)).await;
        Ok(nap.ms)
    }
}

/// A long nap in flight, then a call with a 1 s timeout queued behind it: it times out at
/// exactly 1 s, and the actor, free again at 10 s, skips it.
async fn queued_call_times_out_and_is_skipped(sleeper: ActorRef<Sleeper>, started: &AtomicUsize) {
    let long = tokio::spawn({
        let sleeper = sleeper.clone();
        async move { sleeper.call(Nap { ms: 10_000 }).await }
    });
    tokio::task::yield_now().await;
    let sent = Instant::now();
    let error = sleeper.call_with_timeout(Nap { ms: 0 }, Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(sent.elapsed(), Duration::from_secs(1), "timed out exactly at the deadline");
    match error {
        ActorError::CallTimedOut { timeout, uid, .. } => {
            assert_eq!((timeout, uid.as_str()), (Duration::from_secs(1), sleeper.uid()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(long.await.unwrap().unwrap(), 10_000);
    // A call after the long nap: handled, so the timed-out one, queued before it, was passed.
    let next = sleeper.call_with_timeout(Nap { ms: 5 }, Duration::from_secs(1)).await.unwrap();
    assert_eq!(next, 5);
    assert_eq!(started.load(Ordering::SeqCst), 2, "the long nap and the last one; not the skipped");
}

#[test]
fn in_process_a_queued_call_past_its_deadline_is_skipped() {
    run_paused(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let sleeper = pool.create(Sleeper { started: started.clone() }).await.unwrap();
        queued_call_times_out_and_is_skipped(sleeper, &started).await;
    });
}

#[test]
fn the_deadline_travels_to_a_remote_pool_which_skips_the_message() {
    run_paused(async {
        let started = Arc::new(AtomicUsize::new(0));
        let counter = started.clone();
        let pool = ActorPool::builder(address(Transport::Inproc))
            .register("Sleeper", move |_: Nap| Ok(Sleeper { started: counter.clone() }))
            .direct_delivery(false)
            .start()
            .await
            .unwrap();
        let sleeper =
            create_actor::<Sleeper>(pool.address(), "Sleeper", &Nap { ms: 0 }).await.unwrap();
        // The caller's cancel reaches the pool, but a message queued in a mailbox is only
        // skipped thanks to the deadline it carries.
        queued_call_times_out_and_is_skipped(sleeper, &started).await;
    });
}

#[test]
fn a_peer_that_never_answers_times_out_at_the_deadline() {
    run_paused(async {
        // Accepts, shakes hands, and swallows every frame.
        let mut listener =
            listen(&address(Transport::Inproc), &TransportConfig::default()).await.unwrap();
        let silent = listener.local_addr().clone();
        let swallow = tokio::spawn(async move {
            let incoming = listener.accept().await.unwrap();
            let mut channel = incoming.handshake().await.unwrap();
            while let Ok(Some(_frame)) = channel.recv().await {}
        });
        let nowhere = ActorRef::<Counter>::new(silent, "anyone");
        let sent = Instant::now();
        let error = nowhere.call_with_timeout(Get {}, Duration::from_millis(1500)).await;
        assert_eq!(sent.elapsed(), Duration::from_millis(1500));
        assert!(matches!(error, Err(ActorError::CallTimedOut { .. })), "{error:?}");
        swallow.abort();
    });
}
