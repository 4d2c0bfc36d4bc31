//! Batches handed over directly in this process (no encoding): any `Send` message batches,
//! closures included; per-message errors; the actor's own batch implementation; a panic fails
//! the whole batch. The same behaviours across pools and processes are scenarios of
//! `actors.rs` and `process.rs`.

mod common;

use common::actors::{Add, Balance, Boom, Counter, Deposit, Fail, Ledger, LocalOnly, Total};
use common::{Transport, address, run};
use xoscar_actor::{ActorError, ActorPool};

#[test]
fn in_process_batches_hand_over_any_message_and_answer_each() {
    run(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let counter = pool.create(Counter::new(0)).await.unwrap();
        let closures: Vec<LocalOnly> =
            (1..=3).map(|n| LocalOnly(Box::new(move || n * 10))).collect();
        let totals = counter.call_batch(closures).await.unwrap();
        let totals: Vec<i64> = totals.into_iter().map(Result::unwrap).collect();
        assert_eq!(totals, [10, 30, 60]);

        let failed = counter.call_batch(vec![Fail { reason: "no".into() }]).await.unwrap();
        assert!(matches!(&failed[0], Err(ActorError::Handler { message, .. }) if message == "no"));
        counter.tell_batch(vec![Add { n: 1 }, Add { n: 2 }]).await.unwrap();
        assert_eq!(counter.call(Add { n: 0 }).await.unwrap(), Total { value: 63 });

        let ledger = pool.create(Ledger::default()).await.unwrap();
        let replies = ledger.call_batch(vec![Deposit { amount: 2 }, Deposit { amount: 3 }]).await;
        let replies: Vec<Balance> = replies.unwrap().into_iter().map(Result::unwrap).collect();
        assert_eq!(replies, [Balance { value: 2, rounds: 1 }, Balance { value: 5, rounds: 1 }]);

        let panicked = counter.call_batch(vec![Boom {}]).await.unwrap_err();
        assert!(matches!(panicked, ActorError::HandlerPanicked { .. }), "{panicked:?}");
        assert!(matches!(
            counter.call_batch(vec![Add { n: 1 }]).await,
            Err(ActorError::NotFound { .. })
        ));
    });
}
