//! The behaviours of xoscar's actor tests, each against a pool described by a [`Setup`]: in
//! this process behind its listener, or in a child process.

use std::time::Duration;

use super::actors::*;
use super::{Setup, eventually};
use xoscar_actor::{
    ActorError, ActorRef, CancellationToken, PACK_ITEMS, STREAM_WINDOW, create_actor,
    destroy_actor, has_actor,
};

pub async fn create_call_tell_by_name(setup: &Setup) {
    let init = CounterInit { start: 5, ..Default::default() };
    let counter = create_actor::<Counter>(setup.remote(), "Counter", &init).await.unwrap();
    assert_eq!(counter.address(), setup.remote());
    assert!(counter.uid().starts_with("Counter-"), "generated uid {}", counter.uid());
    assert_eq!(counter.call(Add { n: 2 }).await.unwrap(), Total { value: 7 });
    for n in 1..=3 {
        counter.tell(Add { n }).await.unwrap();
    }
    // Tells from one caller are handled in the order sent, before a later call.
    assert_eq!(counter.call(Get {}).await.unwrap(), Total { value: 13 });

    let named = create_actor::<Counter>(setup.remote(), "Counter", &init).uid("c1").await.unwrap();
    assert_eq!(named.uid(), "c1");
    assert_eq!(named, ActorRef::<Counter>::new(setup.remote().clone(), "c1"));
    assert_eq!(named.call(Get {}).await.unwrap(), Total { value: 5 });
    setup.assert_actor_count(2);
}

pub async fn create_from_inside_an_actor(setup: &Setup) {
    let local = setup.local_pool().await;
    let relay = create_actor::<Relay>(setup.remote(), "Relay", &Empty {}).await.unwrap();
    // From a value, in the relay's own pool.
    let spawned = relay.call(Spawn { uid: "inner".into(), address: String::new(), start: 3 });
    let inner = spawned.await.unwrap().target.unwrap();
    assert_eq!(inner.address(), setup.remote());
    assert_eq!(inner.call(Add { n: 1 }).await.unwrap(), Total { value: 4 });
    // By type name, in another pool (this process's local one, reached from the remote one).
    let there = Spawn { uid: "outer".into(), address: local.address().to_string(), start: 8 };
    let outer = relay.call(there).await.unwrap().target.unwrap();
    assert_eq!(outer.address(), local.address());
    assert!(has_actor(&outer).await.unwrap());
    assert_eq!(outer.call(Get {}).await.unwrap(), Total { value: 8 });
}

pub async fn create_errors(setup: &Setup) {
    let at = setup.remote();
    let init = CounterInit::default();
    create_actor::<Counter>(at, "Counter", &init).uid("dup").await.unwrap();
    let duplicate = create_actor::<Counter>(at, "Counter", &init).uid("dup").await.unwrap_err();
    assert!(
        matches!(&duplicate, ActorError::AlreadyExists { uid, address } if uid == "dup" && *address == at.to_string()),
        "{duplicate:?}"
    );
    let unknown = create_actor::<Counter>(at, "NoSuchType", &init).await.unwrap_err();
    assert!(
        matches!(&unknown, ActorError::UnknownType { type_name, .. } if type_name == "NoSuchType"),
        "{unknown:?}"
    );

    let refused = CounterInit { start: -1, ..Default::default() };
    let factory = create_actor::<Counter>(at, "Counter", &refused).uid("neg").await.unwrap_err();
    assert!(
        matches!(&factory, ActorError::Handler { message, .. } if message.contains("below zero")),
        "{factory:?}"
    );

    let panics = CounterInit { start: 666, ..Default::default() };
    let panicked = create_actor::<Counter>(at, "Counter", &panics).await.unwrap_err();
    assert!(
        matches!(&panicked, ActorError::HandlerPanicked { message, .. } if message.contains("factory panicked")),
        "{panicked:?}"
    );

    let bad_start = CounterInit { fail_start: true, ..Default::default() };
    let start = create_actor::<Counter>(at, "Counter", &bad_start).uid("s").await.unwrap_err();
    match &start {
        ActorError::Handler { message, uid, pid, address, .. } => {
            assert!(message.contains("refusing to start"));
            assert_eq!(
                (uid.as_str(), *pid, address.as_str()),
                ("s", setup.remote_pid, &*at.to_string())
            );
        }
        other => panic!("{other:?}"),
    }
    // The actor does not exist after a failed start, and its uid is free again.
    assert!(!has_actor(&ActorRef::<Counter>::new(at.clone(), "s")).await.unwrap());
    create_actor::<Counter>(at, "Counter", &init).uid("s").await.unwrap();

    // An init body of another type fails to decode: a clear error, and the pool goes on.
    let bad_init = Forward { target: None, n: 1 << 40 };
    let decode = create_actor::<Counter>(at, "Hooked", &bad_init).await.unwrap_err();
    assert!(
        matches!(&decode, ActorError::Handler { .. } | ActorError::BadMessage { .. }),
        "{decode:?}"
    );
    setup.assert_actor_count(2); // dup and s
}

pub async fn calls_within_and_across_pools(setup: &Setup) {
    let local = setup.local_pool().await;
    let far =
        create_actor::<Counter>(setup.remote(), "Counter", &CounterInit::default()).await.unwrap();
    let near = local.create(Counter::new(100)).uid("near").await.unwrap();
    let local_relay = local.create(Relay).await.unwrap();
    let remote_relay = create_actor::<Relay>(setup.remote(), "Relay", &Empty {}).await.unwrap();
    // Local → remote, remote → local (the remote pool dials this process's local pool), and
    // remote → remote: refs travel inside the messages and are called back.
    let to_far = Forward { target: Some(far.clone()), n: 1 };
    assert_eq!(local_relay.call(to_far.clone()).await.unwrap(), Total { value: 1 });
    assert_eq!(remote_relay.call(to_far).await.unwrap(), Total { value: 2 });
    let to_near = Forward { target: Some(near.clone()), n: 1 };
    assert_eq!(remote_relay.call(to_near.clone()).await.unwrap(), Total { value: 101 });
    assert_eq!(local_relay.call(to_near).await.unwrap(), Total { value: 102 });
    // A local-only message (a closure: nothing to encode) reaches a local actor...
    assert_eq!(near.call(LocalOnly(Box::new(|| 1))).await.unwrap(), 103);
    // ...and is refused before sending to a remote one.
    let refused = far.call(LocalOnly(Box::new(|| 1))).await.unwrap_err();
    assert!(matches!(&refused, ActorError::NotRemote { .. }), "{refused:?}");
}

pub async fn nested_errors_carry_every_pool(setup: &Setup) {
    let local = setup.local_pool().await;
    let far =
        create_actor::<Counter>(setup.remote(), "Counter", &CounterInit::default()).await.unwrap();
    let direct = far.call(Fail { reason: "disk on fire".into() }).await.unwrap_err();
    match &direct {
        ActorError::Handler { message, address, pid, actor_type, uid, .. } => {
            assert_eq!(message, "disk on fire");
            assert_eq!(address, &setup.remote().to_string());
            assert_eq!(*pid, setup.remote_pid);
            assert!(actor_type.ends_with("Counter"), "{actor_type}");
            assert_eq!(uid, far.uid());
        }
        other => panic!("{other:?}"),
    }
    // Through a relay in the local pool: the outer error names the relay, its message the
    // counter's failure with the remote pool's address.
    let relay = local.create(Relay).uid("relay").await.unwrap();
    let nested = relay.call(ForwardFail { target: Some(far.clone()), reason: "nested".into() });
    match nested.await.unwrap_err() {
        ActorError::Handler { message, uid, address, source, .. } => {
            assert_eq!(uid, "relay");
            assert_eq!(address, local.address().to_string());
            assert!(
                message.contains("nested") && message.contains(&setup.remote().to_string()),
                "{message}"
            );
            assert!(source.is_some(), "a local handler's error keeps its source");
        }
        other => panic!("{other:?}"),
    }
}

pub async fn unknown_uid_message_and_bodies(setup: &Setup) {
    let at = setup.remote();
    let ghost = ActorRef::<Counter>::new(at.clone(), "ghost");
    let missing = ghost.call(Get {}).await.unwrap_err();
    assert!(matches!(&missing, ActorError::NotFound { uid, .. } if uid == "ghost"), "{missing:?}");
    assert!(matches!(ghost.tell(Add { n: 1 }).await, Err(ActorError::NotFound { .. })));

    let init = CounterInit { start: 3, ..Default::default() };
    let counter = create_actor::<Counter>(at, "Counter", &init).uid("c").await.unwrap();
    // A ref of the wrong type: Peer's "Bounce" is no message of Counter's, which is
    // `WrongType`, as in-process.
    let wrong = counter.cast::<Peer>();
    let wrong_type = wrong.call(Bounce { hops: 0 }).await.unwrap_err();
    assert!(
        matches!(&wrong_type, ActorError::WrongType { actual, .. } if actual.ends_with("Counter")),
        "{wrong_type:?}"
    );
    // Same name and same body: a ref cast to another type with a compatible message works.
    assert_eq!(counter.cast::<Hooked>().call(Get {}).await.unwrap(), Total { value: 3 });
    // A body that does not decode as the handler's message type.
    let impostor = counter.cast::<Impostor>();
    let bad_body = impostor.call(AddText { n: "four".into() }).await.unwrap_err();
    assert!(
        matches!(&bad_body, ActorError::BadMessage { detail, .. } if detail.contains("\"Add\"")),
        "{bad_body:?}"
    );
    // A reply that does not decode as the caller's reply type.
    let bad_reply = impostor.call(GetText {}).await.unwrap_err();
    assert!(matches!(&bad_reply, ActorError::BadReply { .. }), "{bad_reply:?}");
    // Everything still works afterwards, on the same connection.
    assert_eq!(counter.call(Add { n: 4 }).await.unwrap(), Total { value: 7 });
}

pub async fn has_destroy_and_recreate(setup: &Setup) {
    let at = setup.remote();
    let stop_fails = CounterInit { start: 1, fail_stop: true, ..Default::default() };
    let first = create_actor::<Counter>(at, "Counter", &stop_fails).uid("x").await.unwrap();
    assert!(has_actor(&first).await.unwrap());
    // The stop hook's error reaches the destroyer; the actor is gone either way.
    let stopped = destroy_actor(&first).await.unwrap_err();
    assert!(
        matches!(&stopped, ActorError::Handler { message, .. } if message.contains("quietly")),
        "{stopped:?}"
    );
    assert!(!has_actor(&first).await.unwrap());
    assert!(matches!(destroy_actor(&first).await, Err(ActorError::NotFound { .. })));
    assert!(matches!(first.call(Get {}).await, Err(ActorError::NotFound { .. })));
    // Re-created under the same uid, the old ref reaches the new actor.
    let init = CounterInit { start: 50, ..Default::default() };
    let second = create_actor::<Counter>(at, "Counter", &init).uid("x").await.unwrap();
    assert_eq!(second, first);
    assert_eq!(first.call(Get {}).await.unwrap(), Total { value: 50 });
    destroy_actor(&second).await.unwrap();
    setup.assert_actor_count(0);
}

pub async fn hooks_call_actors_and_tell_themselves(setup: &Setup) {
    let local = setup.local_pool().await;
    let log = local.create(Counter::new(0)).uid("log").await.unwrap();
    let init = HookedInit { log: Some(log.clone()) };
    let hooked = create_actor::<Hooked>(setup.remote(), "Hooked", &init).await.unwrap();
    assert_eq!(log.call(Get {}).await.unwrap(), Total { value: 1 }, "start hook called the log");
    // The message it told itself in its start hook is handled right after the hook.
    assert_eq!(hooked.call(Get {}).await.unwrap(), Total { value: 10 });
    destroy_actor(&hooked).await.unwrap();
    assert_eq!(log.call(Get {}).await.unwrap(), Total { value: 101 }, "stop hook called the log");
}

pub async fn concurrent_actor_runs_handlers_together(setup: &Setup) {
    let gate = create_actor::<Gate>(setup.remote(), "Gate", &Empty {}).await.unwrap();
    // Three calls that each wait until all three are inside: a serial actor would hang.
    let (a, b, c) = tokio::join!(
        gate.call(Meet { parties: 3 }),
        gate.call(Meet { parties: 3 }),
        gate.call(Meet { parties: 3 })
    );
    let mut seen = [a.unwrap().hops, b.unwrap().hops, c.unwrap().hops];
    seen.sort();
    assert_eq!(seen, [1, 2, 3]);
    // A panic fails its own call; a concurrent actor goes on.
    assert!(matches!(gate.call(Boom {}).await, Err(ActorError::HandlerPanicked { .. })));
    assert_eq!(gate.call(Meet { parties: 1 }).await.unwrap().hops, 4);

    // Created from a value with `.concurrent(..)` in a local pool.
    let local = setup.local_pool().await;
    let gate = local.create(Gate::default()).concurrent(4).await.unwrap();
    let (a, b) = tokio::join!(gate.call(Meet { parties: 2 }), gate.call(Meet { parties: 2 }));
    assert_eq!(a.unwrap().hops + b.unwrap().hops, 3);
}

pub async fn a_b_a_chains_do_not_deadlock(setup: &Setup) {
    let local = setup.local_pool().await;
    let a = local.create(Peer::default()).uid("a").await.unwrap();
    let b = create_actor::<Peer>(setup.remote(), "Peer", &Empty {}).uid("b").await.unwrap();
    a.call(SetPeer { peer: Some(b.clone()) }).await.unwrap();
    b.call(SetPeer { peer: Some(a.clone()) }).await.unwrap();
    // a → b → a → b → a → b → a: each peer is called again while its first call is pending.
    assert_eq!(a.call(Bounce { hops: 6 }).await.unwrap(), Hops { hops: 6 });
    assert_eq!(b.call(Bounce { hops: 5 }).await.unwrap(), Hops { hops: 5 });
}

pub async fn a_panicking_handler_stops_only_its_actor(setup: &Setup) {
    let at = setup.remote();
    let doomed = create_actor::<Counter>(at, "Counter", &CounterInit::default())
        .uid("doomed")
        .await
        .unwrap();
    let other =
        create_actor::<Counter>(at, "Counter", &CounterInit::default()).uid("other").await.unwrap();
    match doomed.call(Boom {}).await.unwrap_err() {
        ActorError::HandlerPanicked { message, uid, actor_type, pid, .. } => {
            assert_eq!((message.as_str(), uid.as_str()), ("counter exploded", "doomed"));
            assert!(actor_type.ends_with("Counter"));
            assert_eq!(pid, setup.remote_pid);
        }
        other => panic!("{other:?}"),
    }
    // The panicking serial actor is gone; every other actor goes on, on the same connection.
    assert!(matches!(doomed.call(Get {}).await, Err(ActorError::NotFound { .. })));
    assert_eq!(other.call(Add { n: 2 }).await.unwrap(), Total { value: 2 });
    if let Some(pool) = &setup.pool {
        assert!(eventually(Duration::from_secs(5), async || pool.actor_count() == 1).await);
    }
}

pub async fn buffers_small_and_large_round_trip(setup: &Setup) {
    let init = CounterInit::default();
    let counter = create_actor::<Counter>(setup.remote(), "Counter", &init).await.unwrap();
    for size in [0usize, 5, 4095, 4096, 1 << 20] {
        let sent: bytes::Bytes = (0..size).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>().into();
        let echoed = counter.call(sent.clone()).await.unwrap();
        let expected: Vec<u8> = sent.iter().rev().copied().collect();
        assert_eq!(echoed.len(), size);
        assert!(echoed[..] == expected[..], "{size} bytes came back changed");
    }
}

/// An explicit cancel, while the caller still waits: a handler that watches answers early and
/// the caller gets that answer; one that does not is dropped and the caller gets `Cancelled`;
/// a queued message is skipped; a cancel after the answer changes nothing; the serial actor
/// goes on serving.
pub async fn explicit_cancel_reaches_the_handler(setup: &Setup) {
    let local = setup.local_pool().await;
    let (started, mut heard) = tokio::sync::mpsc::channel(4);
    let probe = local.create(Probe { started }).await.unwrap();
    let sleeper = create_actor::<Sleeper>(setup.remote(), "Sleeper", &Empty {}).await.unwrap();
    let nap = |watch| Nap { ms: 600_000, watch, probe: Some(probe.clone()) };
    let promptly = Duration::from_secs(10);

    // A handler that watches answers early; its caller gets that answer.
    let cancel = CancellationToken::new();
    let call = tokio::spawn({
        let (sleeper, cancel, nap) = (sleeper.clone(), cancel.clone(), nap(true));
        async move { sleeper.call_cancellable(nap, &cancel).await }
    });
    heard.recv().await.unwrap();
    cancel.cancel();
    let answer = tokio::time::timeout(promptly, call).await.expect("promptly").unwrap();
    assert_eq!(answer.unwrap(), Napped { early: true });

    // One that does not watch is dropped where it waits, and a message queued behind it whose
    // caller cancels is skipped.
    let (running, queued) = (CancellationToken::new(), CancellationToken::new());
    let first = tokio::spawn({
        let (sleeper, cancel, nap) = (sleeper.clone(), running.clone(), nap(false));
        async move { sleeper.call_cancellable(nap, &cancel).await }
    });
    heard.recv().await.unwrap();
    let second = tokio::spawn({
        let (sleeper, cancel, nap) = (sleeper.clone(), queued.clone(), nap(false));
        async move { sleeper.call_cancellable(nap, &cancel).await }
    });
    // Queued behind the 600 s nap: its cancel is answered at once, not when the actor gets
    // to it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    queued.cancel();
    let skipped = tokio::time::timeout(promptly, second).await.expect("promptly").unwrap();
    running.cancel();
    let dropped = tokio::time::timeout(promptly, first).await.expect("promptly").unwrap();
    for error in [skipped.unwrap_err(), dropped.unwrap_err()] {
        assert!(
            matches!(&error, ActorError::Cancelled { uid, address } if uid == sleeper.uid() && address == &setup.remote().to_string()),
            "{error:?}"
        );
    }

    // Cancelled after its answer: the answer stands. Cancelled before sending: nothing sent.
    let late = CancellationToken::new();
    let quick = Nap { ms: 0, watch: false, probe: None };
    assert_eq!(sleeper.call_cancellable(quick.clone(), &late).await.unwrap(), Napped::default());
    late.cancel();
    let never = sleeper.call_cancellable(quick, &late).await.unwrap_err();
    assert!(matches!(never, ActorError::Cancelled { .. }), "{never:?}");

    // The serial actor went on: it started the watching nap, the dropped one and the quick
    // one, never the skipped one nor the one cancelled before sending.
    let naps = sleeper.call(NapStats {}).await.unwrap();
    assert_eq!(naps, Naps { started: 3, dropped: 1, early: 1 });
}

/// Batches: one reply per message, in order; errors per message; a told batch is ordered
/// before a later call; an actor's own batch implementation handles a batch in one round; a
/// batch fails as a whole only for what fails the whole (no actor, a panic).
pub async fn batches_answer_in_order_with_per_item_errors(setup: &Setup) {
    let at = setup.remote();
    let counter = create_actor::<Counter>(at, "Counter", &CounterInit::default()).await.unwrap();
    let totals = counter.call_batch((1..=100).map(|n| Add { n }).collect()).await.unwrap();
    let expected: Vec<i64> = (1..=100).map(|n| n * (n + 1) / 2).collect();
    let totals: Vec<i64> = totals.into_iter().map(|total| total.unwrap().value).collect();
    assert_eq!(totals, expected);

    let reasons = ["first", "second"].map(|reason| Fail { reason: reason.into() });
    let failed = counter.call_batch(reasons.to_vec()).await.unwrap();
    assert_eq!(failed.len(), 2);
    for (error, reason) in failed.into_iter().zip(["first", "second"]) {
        match error.unwrap_err() {
            ActorError::Handler { message, uid, address, .. } => {
                assert_eq!((message.as_str(), uid.as_str()), (reason, counter.uid()));
                assert_eq!(address, at.to_string());
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(counter.call_batch(Vec::<Add>::new()).await.unwrap().is_empty());
    counter.tell_batch(vec![Add { n: 1000 }, Add { n: 1000 }]).await.unwrap();
    assert_eq!(counter.call(Get {}).await.unwrap(), Total { value: 5050 + 2000 });

    let ledger = create_actor::<Ledger>(at, "Ledger", &Empty {}).await.unwrap();
    let deposits = [5, -1, 7].map(|amount| Deposit { amount });
    let replies = ledger.call_batch(deposits.to_vec()).await.unwrap();
    assert_eq!(replies[0].as_ref().unwrap(), &Balance { value: 5, rounds: 1 });
    assert!(
        matches!(&replies[1], Err(ActorError::Handler { message, .. }) if message == "negative deposit -1"),
        "{:?}",
        replies[1]
    );
    assert_eq!(replies[2].as_ref().unwrap(), &Balance { value: 12, rounds: 1 });
    assert_eq!(ledger.call(Deposit { amount: 1 }).await.unwrap(), Balance { value: 13, rounds: 2 });

    let doomed = create_actor::<Counter>(at, "Counter", &CounterInit::default()).await.unwrap();
    let panicked = doomed.call_batch(vec![Boom {}, Boom {}]).await.unwrap_err();
    assert!(matches!(panicked, ActorError::HandlerPanicked { .. }), "{panicked:?}");
    let gone = doomed.call_batch(vec![Add { n: 1 }]).await.unwrap_err();
    assert!(matches!(gone, ActorError::NotFound { .. }), "{gone:?}");
    assert_eq!(counter.call(Get {}).await.unwrap(), Total { value: 7050 }, "others go on");
}

/// Streaming replies: items in order then the end; an error item does not end the stream; a
/// slow consumer holds the producer to the credit window across processes; a dropped
/// stream stops its producer; a panicking stream ends with `HandlerPanicked`.
pub async fn streams_items_with_backpressure_and_cancel(setup: &Setup) {
    let source = create_actor::<Source>(setup.remote(), "Source", &Empty {}).await.unwrap();
    let produced = || async { source.call(Produced::default()).await.unwrap().ticks };
    let mut ticks = source.call_stream(Count { n: 1000, ..Default::default() }).await.unwrap();
    for index in 0..1000 {
        assert_eq!(ticks.next().await.unwrap().unwrap(), Tick { index });
    }
    assert!(ticks.next().await.is_none());
    assert!(ticks.next().await.is_none());

    let mut ticks = source.call_stream(Count { n: 4, fail_at: 2, panic_at: 0 }).await.unwrap();
    assert_eq!(ticks.next().await.unwrap().unwrap(), Tick { index: 0 });
    match ticks.next().await.unwrap().unwrap_err() {
        ActorError::Handler { message, uid, .. } => {
            assert_eq!((message.as_str(), uid.as_str()), ("tick 1 failed", source.uid()));
        }
        other => panic!("{other:?}"),
    }
    for index in 2..4 {
        assert_eq!(ticks.next().await.unwrap().unwrap(), Tick { index });
    }
    assert!(ticks.next().await.is_none());

    // 100,000 ticks read slowly: the producer is never more than the window ahead: 16 packs of
    // at most 64 ticks, plus the pack in the pump's hand and the one being read.
    let bound = u64::from(STREAM_WINDOW + 2) * PACK_ITEMS as u64;
    let before = produced().await;
    let mut ticks = source.call_stream(Count { n: 100_000, ..Default::default() }).await.unwrap();
    let mut ahead_most = 0;
    for index in 0..100_000u64 {
        assert_eq!(ticks.next().await.unwrap().unwrap(), Tick { index });
        if index % 2_000 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let ahead = produced().await - before - (index + 1);
            assert!(ahead <= bound, "the producer ran {ahead} ahead");
            ahead_most = ahead_most.max(ahead);
        }
    }
    assert!(ticks.next().await.is_none());

    let before = produced().await;
    let mut ticks = source.call_stream(Count { n: 1_000_000, ..Default::default() }).await.unwrap();
    for index in 0..10 {
        assert_eq!(ticks.next().await.unwrap().unwrap(), Tick { index });
    }
    drop(ticks);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped_at = produced().await - before;
    assert!(stopped_at <= 10 + bound, "produced {stopped_at}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(produced().await - before, stopped_at, "the producer stopped");

    let mut ticks = source.call_stream(Count { n: 5, fail_at: 0, panic_at: 3 }).await.unwrap();
    for index in 0..2 {
        assert_eq!(ticks.next().await.unwrap().unwrap(), Tick { index });
    }
    let panicked = ticks.next().await.unwrap().unwrap_err();
    assert!(matches!(panicked, ActorError::HandlerPanicked { .. }), "{panicked:?}");
    assert!(ticks.next().await.is_none());
    assert!(produced().await > 0, "the source itself goes on");
}

/// Deadlines on real sockets (upper bounds only): a call whose handler does not answer in
/// time fails with `CallTimedOut` at its timeout and its handler is dropped; a call queued
/// behind a long one past its deadline is skipped, never started.
pub async fn deadlines_time_out_and_skip_late_work(setup: &Setup) {
    let local = setup.local_pool().await;
    let (started, mut heard) = tokio::sync::mpsc::channel(4);
    let probe = local.create(Probe { started }).await.unwrap();
    let sleeper = create_actor::<Sleeper>(setup.remote(), "Sleeper", &Empty {}).await.unwrap();
    let asked = tokio::time::Instant::now();
    let endless = Nap { ms: 600_000, watch: false, probe: None };
    let error = sleeper.call_with_timeout(endless, Duration::from_millis(200)).await.unwrap_err();
    let took = asked.elapsed();
    assert!(matches!(error, ActorError::CallTimedOut { .. }), "{error:?}");
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(10), "{took:?}");

    let long = tokio::spawn({
        let sleeper = sleeper.clone();
        let nap = Nap { ms: 500, watch: false, probe: Some(probe.clone()) };
        async move { sleeper.call(nap).await }
    });
    heard.recv().await.unwrap();
    let quick = Nap { ms: 0, watch: false, probe: None };
    let late = sleeper.call_with_timeout(quick, Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(late, ActorError::CallTimedOut { .. }), "{late:?}");
    assert_eq!(long.await.unwrap().unwrap(), Napped { early: false });
    let naps = sleeper.call(NapStats {}).await.unwrap();
    assert_eq!(naps, Naps { started: 2, dropped: 1, early: 0 }, "the late call never started");
}
