use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use xoscar_testkit::{TEST_TIMEOUT, run, run_paused};

use super::{SendError, TrySendError, channel};

/// Long enough on the paused clock for anything that is not blocked to have happened.
const SETTLE: Duration = Duration::from_millis(10);

#[test]
fn messages_arrive_in_order_and_a_run_takes_at_most_its_limit() {
    run(async {
        let (sender, mut receiver) = channel(8);
        for n in 0..5 {
            sender.try_send(n).unwrap();
        }
        let mut run = VecDeque::new();
        assert_eq!(receiver.recv_run(&mut run, 3).await, Some(0));
        assert_eq!(run, [1, 2]);
        assert_eq!(receiver.recv().await, Some(3));
        let mut run = VecDeque::new();
        assert_eq!(receiver.recv_run(&mut run, 32).await, Some(4));
        assert!(run.is_empty());
    });
}

#[test]
fn a_full_mailbox_makes_senders_wait_and_room_freed_goes_to_them_not_to_a_newcomer() {
    run_paused(async {
        let (sender, mut receiver) = channel(2);
        sender.try_send(0).unwrap();
        sender.try_send(1).unwrap();
        assert!(matches!(sender.try_send(9), Err(TrySendError::Full(9))));
        let waiting = tokio::spawn({
            let sender = sender.clone();
            async move { sender.send(2).await }
        });
        tokio::time::sleep(SETTLE).await;
        assert!(!waiting.is_finished(), "a sender waits while the mailbox is full");
        assert_eq!(receiver.recv().await, Some(0));
        // The room made goes to the sender that waited, not to a newcomer.
        assert!(matches!(sender.try_send(9), Err(TrySendError::Full(9))));
        waiting.await.unwrap().unwrap();
        let mut run = VecDeque::new();
        assert_eq!(receiver.recv_run(&mut run, 8).await, Some(1));
        assert_eq!(run, [2]);
        // Nobody waits now: a newcomer gets in.
        sender.try_send(3).unwrap();
        assert_eq!(receiver.recv().await, Some(3));
    });
}

#[test]
fn a_sender_that_gives_up_waiting_leaves_no_place_behind() {
    run_paused(async {
        let (sender, mut receiver) = channel(1);
        sender.try_send(0).unwrap();
        let gave_up = tokio::time::timeout(SETTLE, sender.send(1)).await;
        assert!(gave_up.is_err(), "the send waited for room");
        assert_eq!(receiver.recv().await, Some(0));
        // Had the sender that gave up kept its place, newcomers would wait behind it forever.
        sender.try_send(2).unwrap();
        assert_eq!(receiver.recv().await, Some(2));
    });
}

#[test]
fn closing_refuses_new_messages_and_waiting_senders_and_keeps_what_was_queued() {
    run_paused(async {
        let (sender, mut receiver) = channel(1);
        sender.try_send(0).unwrap();
        let waiting = tokio::spawn({
            let sender = sender.clone();
            async move { sender.send(1).await }
        });
        tokio::time::sleep(SETTLE).await;
        assert!(!sender.is_closed());
        receiver.close();
        assert!(sender.is_closed());
        let Err(SendError(1)) = waiting.await.unwrap() else {
            panic!("a sender waiting for room gets its message back at the close")
        };
        assert!(matches!(sender.try_send(2), Err(TrySendError::Closed(2))));
        assert!(matches!(sender.send(3).await, Err(SendError(3))));
        assert_eq!(receiver.recv().await, Some(0), "what was queued is still received");
        assert_eq!(receiver.recv().await, None);
    });
}

#[test]
fn the_receiver_ends_once_every_sender_is_gone_and_the_queue_is_empty() {
    run_paused(async {
        let (sender, mut receiver) = channel(4);
        let other = sender.clone();
        other.try_send(0).unwrap();
        drop(other);
        let receiving = tokio::spawn(async move {
            let first = receiver.recv().await;
            (first, receiver.recv().await)
        });
        tokio::time::sleep(SETTLE).await;
        assert!(!receiving.is_finished(), "one sender is left: the receiver waits");
        drop(sender);
        assert_eq!(receiving.await.unwrap(), (Some(0), None));
    });
}

#[test]
fn dropping_the_receiver_drops_what_is_queued_and_refuses_the_rest() {
    run(async {
        let (sender, receiver) = channel(4);
        let message = Arc::new(());
        sender.try_send(message.clone()).unwrap();
        drop(receiver);
        assert_eq!(Arc::strong_count(&message), 1, "the queued message was dropped");
        assert!(sender.is_closed());
        assert!(matches!(sender.try_send(message), Err(TrySendError::Closed(_))));
    });
}

/// Senders on several threads, a small mailbox and a receiver taking runs: every message
/// arrives once, each sender's in the order it sent them.
#[test]
fn senders_on_several_threads_all_arrive_in_their_order() {
    const SENDERS: u64 = 4;
    const EACH: u64 = 20_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, async {
            let (sender, mut receiver) = channel(8);
            for from in 0..SENDERS {
                let sender = sender.clone();
                tokio::spawn(async move {
                    for n in 0..EACH {
                        sender.send((from, n)).await.unwrap();
                    }
                });
            }
            drop(sender);
            let mut next = [0u64; SENDERS as usize];
            let mut run = VecDeque::new();
            while let Some(first) = receiver.recv_run(&mut run, 32).await {
                for (from, n) in std::iter::once(first).chain(run.drain(..)) {
                    assert_eq!(n, next[from as usize], "sender {from}'s messages in order");
                    next[from as usize] += 1;
                }
            }
            assert_eq!(next, [EACH; SENDERS as usize]);
        })
        .await
        .expect("the test hung")
    });
}
