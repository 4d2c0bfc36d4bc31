//! One error for one cause, wherever the actor lives: the caller's timeout is `CallTimedOut`
//! for `call` and `tell` as for `call_with_timeout`, and a ref of the wrong type is
//! `WrongType` in-process and across processes. Its own binary: it configures the caller.

mod common;

use std::sync::Once;
use std::time::Duration;

use common::actors::{Counter, Fail, Get, Nap, Sleeper};
use common::{Transport, remote_pool, run};
use prost::Message as _;
use xoscar_actor::pb::{self, request::Kind};
use xoscar_actor::{ActorError, ActorPool, caller, configure};
use xoscar_pool::{Message, Pool, PoolConfig, PoolError};

const CALL_TIMEOUT: Duration = Duration::from_millis(300);

/// This process's caller gives every call 300 ms.
fn caller_with_call_timeout() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| configure(PoolConfig::default().call_timeout(CALL_TIMEOUT)).unwrap());
}

fn nap(ms: u64) -> Nap {
    Nap { ms, watch: false, probe: None }
}

#[test]
fn call_and_tell_past_the_callers_timeout_are_call_timed_out() {
    caller_with_call_timeout();
    run(async {
        let pool = common::actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
            .direct_delivery(false)
            .mailbox_capacity(1)
            .start()
            .await
            .unwrap();
        let sleeper = pool.create(Sleeper::default()).await.unwrap();
        let error = sleeper.call(nap(5_000)).await.unwrap_err();
        match error {
            ActorError::CallTimedOut { timeout, ref uid, .. } => {
                assert_eq!((timeout, uid.as_str()), (CALL_TIMEOUT, sleeper.uid()))
            }
            other => panic!("expected CallTimedOut, got {other:?}"),
        }
        // A caller without a timeout keeps the actor napping (its call is never cancelled),
        // a tell fills the one-slot mailbox, and the next tell waits for room past 300 ms.
        let (address, uid) = (sleeper.address().clone(), sleeper.uid().to_owned());
        let _napping = tokio::spawn(async move {
            let patient = Pool::new(PoolConfig::default()).unwrap();
            let delivery = pb::Delivery { uid, message: "Nap".into(), hops: 0 };
            let header = pb::Request { kind: Some(Kind::Call(delivery)) }.encode_to_vec();
            let request = Message::new(header, vec![nap(5_000).encode_to_vec().into()]);
            patient.call(&address, request).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        sleeper.tell(nap(0)).await.unwrap();
        let error = sleeper.tell(nap(0)).await.unwrap_err();
        assert!(
            matches!(error, ActorError::CallTimedOut { timeout, .. } if timeout == CALL_TIMEOUT),
            "{error:?}"
        );
    });
}

/// A ref typed as a `Sleeper` that names a `Counter`: `WrongType` in this process and across
/// processes alike, naming both types.
#[test]
fn a_ref_of_the_wrong_type_is_wrong_type_wherever_the_actor_lives() {
    caller_with_call_timeout();
    run(async {
        let local = ActorPool::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let remote = remote_pool(Transport::Tcp).await;
        for pool in [&local, &remote] {
            let counter = pool.create(Counter::new(1)).await.unwrap();
            let wrong = counter.cast::<Sleeper>();
            match wrong.call(nap(0)).await.unwrap_err() {
                ActorError::WrongType { expected, actual, uid, .. } => {
                    assert!(expected.ends_with("Sleeper") && actual.ends_with("Counter"));
                    assert_eq!(uid, counter.uid());
                }
                other => panic!("expected WrongType, got {other:?}"),
            }
            assert_eq!(counter.call(Get {}).await.unwrap().value, 1);
        }
    });
}

/// The scenario: a handler error of 2 MiB (over the 1 MiB envelope limit) fails that
/// call alone, with an error naming the limit; a call in flight on the same connection
/// completes, and the connection stays.
#[test]
fn an_answer_over_the_frame_limits_fails_that_call_alone() {
    caller_with_call_timeout();
    run(async {
        let pool = remote_pool(Transport::Tcp).await;
        let counter = pool.create(Counter::new(0)).await.unwrap();
        let sleeper = pool.create(Sleeper::default()).await.unwrap();
        let napping = tokio::spawn(async move { sleeper.call(nap(150)).await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let connects = caller().unwrap().stats().connects;
        let huge = Fail { reason: "x".repeat(2 << 20) };
        match counter.call(huge).await.unwrap_err() {
            ActorError::Connection(PoolError::ResponseTooLarge { reason, .. }) => {
                assert!(reason.contains("exceeds the limit of 1048576 bytes"), "{reason}");
            }
            other => panic!("expected ResponseTooLarge, got {other:?}"),
        }
        napping.await.unwrap().expect("the call in flight beside it completes");
        assert_eq!(counter.call(Get {}).await.unwrap().value, 0);
        assert_eq!(caller().unwrap().stats().connects, connects, "the same connection");
    });
}
