//! Lifecycle and routing semantics in one process: destroy after accepted messages, graceful
//! shutdown and drop of a pool, a ref's cached actor after destroy and re-create, wrong types,
//! `reply_later` outliving its actor, address mappings, and undecodable request headers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::actors::{Add, Counter, CounterInit, Get, Total, register};
use common::{Transport, address, eventually, run};
use xoscar_actor::{
    Actor, ActorError, ActorPool, ActorRef, Context, Failure, Handler, destroy_actor, has_actor,
    map_address, unmap_address,
};
use xoscar_pool::{Message, Pool, PoolConfig};

/// Adds numbers; its stop hook publishes the total it reached.
struct Recorder {
    total: i64,
    at_stop: Arc<AtomicI64>,
}

impl Actor for Recorder {
    async fn on_stop(&mut self, _: &mut Context<Self>) -> Result<(), Failure> {
        self.at_stop.store(self.total, Ordering::SeqCst);
        Ok(())
    }
}

impl Handler<Add> for Recorder {
    type Reply = Total;
    async fn handle(&mut self, add: Add, _: &mut Context<Self>) -> Result<Total, Failure> {
        // Let other tasks run between messages, so the stop has every chance to overtake.
        tokio::task::yield_now().await;
        self.total += add.n;
        Ok(Total { value: self.total })
    }
}

/// Never answers: its reply is handed to `reply_later` with a future that never ends, or it
/// waits forever itself. Counts the calls it started.
#[derive(Default)]
struct Stuck {
    started: Arc<AtomicI64>,
}

impl Actor for Stuck {}

struct Wait {
    delegate: bool,
}

impl Handler<Wait> for Stuck {
    type Reply = ();
    async fn handle(&mut self, wait: Wait, ctx: &mut Context<Self>) -> Result<(), Failure> {
        self.started.fetch_add(1, Ordering::SeqCst);
        if wait.delegate {
            return ctx.reply_later(std::future::pending());
        }
        std::future::pending().await
    }
}

fn recorder(at_stop: &Arc<AtomicI64>) -> Recorder {
    Recorder { total: 0, at_stop: at_stop.clone() }
}

#[test]
fn destroy_handles_every_accepted_message_before_the_stop_hook() {
    run(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let at_stop = Arc::new(AtomicI64::new(-1));
        let actor = pool.create(recorder(&at_stop)).await.unwrap();
        for _ in 0..200 {
            actor.tell(Add { n: 1 }).await.unwrap();
        }
        destroy_actor(&actor).await.unwrap();
        assert_eq!(at_stop.load(Ordering::SeqCst), 200);
        assert!(matches!(actor.tell(Add { n: 1 }).await, Err(ActorError::NotFound { .. })));
    });
}

#[test]
fn shutdown_stops_every_actor_with_its_hook_after_its_messages() {
    run(async {
        let pool = ActorPool::start(address(Transport::Tcp)).await.unwrap();
        let counter = pool.create(Counter::new(0)).await.unwrap();
        let stops: Vec<Arc<AtomicI64>> = (0..3).map(|_| Arc::new(AtomicI64::new(-1))).collect();
        let mut actors = Vec::new();
        for at_stop in &stops {
            let actor = pool.create(recorder(at_stop)).await.unwrap();
            for _ in 0..10 {
                actor.tell(Add { n: 2 }).await.unwrap();
            }
            actors.push(actor);
        }
        pool.shutdown().await;
        for at_stop in &stops {
            assert_eq!(at_stop.load(Ordering::SeqCst), 20);
        }
        // The pool is gone: its address now refuses connections (and a message that cannot
        // be encoded is refused before even trying).
        let error = counter.call(Get {}).await.unwrap_err();
        assert!(matches!(error, ActorError::Connection(_)), "{error:?}");
        let error = actors[0].tell(Add { n: 1 }).await.unwrap_err();
        assert!(matches!(error, ActorError::NotRemote { .. }), "{error:?}");
    });
}

#[test]
fn dropping_a_pool_drops_its_actors_and_fails_pending_calls() {
    run(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let at_stop = Arc::new(AtomicI64::new(-1));
        let started = Arc::new(AtomicI64::new(0));
        let stuck = pool.create(Stuck { started: started.clone() }).await.unwrap();
        let recorder = pool.create(recorder(&at_stop)).await.unwrap();
        let pending = tokio::spawn({
            let stuck = stuck.clone();
            async move { stuck.call(Wait { delegate: false }).await }
        });
        let running = async || started.load(Ordering::SeqCst) == 1;
        assert!(eventually(Duration::from_secs(10), running).await);
        drop(pool);
        let error = pending.await.unwrap().unwrap_err();
        assert!(matches!(error, ActorError::Stopped { .. }), "{error:?}");
        assert_eq!(at_stop.load(Ordering::SeqCst), -1, "no stop hook on drop");
        assert!(recorder.call(Add { n: 1 }).await.is_err());
    });
}

#[test]
fn a_delegated_reply_ends_with_its_actor() {
    run(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let started = Arc::new(AtomicI64::new(0));
        let stuck = pool.create(Stuck { started: started.clone() }).await.unwrap();
        let pending = tokio::spawn({
            let stuck = stuck.clone();
            async move { stuck.call(Wait { delegate: true }).await }
        });
        let delegated = async || started.load(Ordering::SeqCst) == 1;
        assert!(eventually(Duration::from_secs(10), delegated).await);
        // The actor is free while the reply is pending: it can be destroyed right away.
        tokio::time::timeout(Duration::from_secs(10), destroy_actor(&stuck))
            .await
            .unwrap()
            .unwrap();
        let error = pending.await.unwrap().unwrap_err();
        assert!(matches!(error, ActorError::Stopped { .. }), "{error:?}");
    });
}

#[test]
fn a_cached_ref_follows_destroy_and_recreate() {
    run(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let first = pool.create(Counter::new(1)).uid("same").await.unwrap();
        assert_eq!(first.call(Get {}).await.unwrap(), Total { value: 1 });
        let copy = first.clone();
        destroy_actor(&first).await.unwrap();
        assert!(matches!(copy.call(Get {}).await, Err(ActorError::NotFound { .. })));
        assert!(!has_actor(&copy).await.unwrap());
        pool.create(Counter::new(2)).uid("same").await.unwrap();
        assert_eq!(copy.call(Get {}).await.unwrap(), Total { value: 2 });
        // A ref decoded from bytes (no cache) reaches the same actor.
        let decoded: ActorRef<Counter> =
            prost::Message::decode(prost::Message::encode_to_vec(&copy).as_slice()).unwrap();
        assert_eq!(decoded, copy);
        assert_eq!(decoded.call(Add { n: 3 }).await.unwrap(), Total { value: 5 });
        // Once more: the ref's first cached cell is long dead, its second is replaced.
        destroy_actor(&copy).await.unwrap();
        pool.create(Counter::new(10)).uid("same").await.unwrap();
        assert_eq!(copy.call(Get {}).await.unwrap(), Total { value: 10 });
        assert_eq!(first.call(Add { n: 1 }).await.unwrap(), Total { value: 11 });
    });
}

#[test]
fn a_ref_of_the_wrong_type_is_refused_in_process() {
    run(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let counter = pool.create(Counter::new(0)).await.unwrap();
        let error = counter.cast::<Recorder>().call(Add { n: 1 }).await.unwrap_err();
        match error {
            ActorError::WrongType { expected, actual, .. } => {
                assert!(expected.ends_with("Recorder") && actual.ends_with("Counter"));
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn a_mapped_address_reaches_the_internal_endpoint() {
    run(async {
        // The pool listens on TCP and on a Unix socket; callers of this process go through
        // its sockets (no direct delivery), and the TCP address we map is one nobody serves.
        let internal = address(Transport::Uds);
        let pool = register(ActorPool::builder(address(Transport::Tcp)))
            .internal_address(internal.clone())
            .direct_delivery(false)
            .start()
            .await
            .unwrap();
        assert_eq!(pool.addresses().len(), 2);
        let counter = pool.create(Counter::new(7)).uid("mapped").await.unwrap();
        let nowhere: xoscar_transport::Address = "127.0.0.1:1".parse().unwrap();
        let through = ActorRef::<Counter>::new(nowhere.clone(), "mapped");
        assert!(matches!(through.call(Get {}).await, Err(ActorError::Connection(_))));
        map_address(nowhere.clone(), pool.addresses()[1].clone()).unwrap();
        assert_eq!(through.call(Get {}).await.unwrap(), Total { value: 7 });
        unmap_address(&nowhere).unwrap();
        assert!(matches!(through.call(Get {}).await, Err(ActorError::Connection(_))));
        assert_eq!(counter.call(Get {}).await.unwrap(), Total { value: 7 });
    });
}

/// A ref remembers the connection its last remote call used; a mapping set afterwards still
/// takes effect at its next call, and removing it sends the call back.
#[test]
fn a_ref_follows_a_new_mapping_past_the_connection_it_remembers() {
    run(async {
        let start = |transport| async move {
            let builder = register(ActorPool::builder(address(transport)));
            builder.direct_delivery(false).start().await.unwrap()
        };
        let (first, second) = (start(Transport::Tcp).await, start(Transport::Uds).await);
        first.create(Counter::new(1)).uid("remembered").await.unwrap();
        second.create(Counter::new(2)).uid("remembered").await.unwrap();
        let actor = ActorRef::<Counter>::new(first.address().clone(), "remembered");
        for _ in 0..2 {
            assert_eq!(actor.call(Get {}).await.unwrap(), Total { value: 1 });
        }
        map_address(first.address().clone(), second.address().clone()).unwrap();
        assert_eq!(actor.call(Get {}).await.unwrap(), Total { value: 2 }, "the mapping wins");
        unmap_address(first.address()).unwrap();
        assert_eq!(actor.call(Get {}).await.unwrap(), Total { value: 1 }, "and goes");
    });
}

/// A ref remembers that the router sent its address to another process; a pool of this
/// process started at that address afterwards still takes the ref's next message, in process
/// (`Add` cannot be sent to another process, so only a delivery here succeeds).
#[test]
fn a_ref_that_went_remote_is_delivered_here_once_a_pool_starts_at_its_address() {
    run(async {
        let at = address(Transport::Inproc);
        let actor = ActorRef::<Recorder>::new(at.clone(), "late");
        // The second time from what the ref remembers of the first.
        for _ in 0..2 {
            let error = actor.tell(Add { n: 1 }).await.unwrap_err();
            assert!(matches!(error, ActorError::NotRemote { .. }), "{error:?}");
        }
        let pool = ActorPool::start(at).await.unwrap();
        let at_stop = Arc::new(AtomicI64::new(-1));
        pool.create(recorder(&at_stop)).uid("late").await.unwrap();
        actor.tell(Add { n: 2 }).await.unwrap();
        pool.shutdown().await;
        assert_eq!(at_stop.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn an_undecodable_request_header_fails_that_request_only() {
    run(async {
        let pool = register(ActorPool::builder(address(Transport::Tcp)))
            .direct_delivery(false)
            .start()
            .await
            .unwrap();
        let init = CounterInit { start: 4, ..Default::default() };
        let counter =
            xoscar_actor::create_actor::<Counter>(pool.address(), "Counter", &init).await.unwrap();
        let raw = Pool::new(PoolConfig::default()).unwrap();
        for header in [&b"\xff\xff\xff"[..], b"", b"\x0a\x00"] {
            let request = Message::new(Bytes::copy_from_slice(header), Vec::new());
            let response = raw.call(pool.address(), request).await.unwrap();
            let reply: xoscar_actor::pb::Reply = prost::Message::decode(response.header).unwrap();
            match reply.outcome {
                Some(xoscar_actor::pb::reply::Outcome::Failure(failure)) => {
                    assert!(
                        failure.kind == xoscar_actor::pb::ErrorKind::BadMessage as i32
                            || failure.kind == xoscar_actor::pb::ErrorKind::NotFound as i32,
                        "{failure:?}"
                    );
                }
                other => panic!("header {header:?}: {other:?}"),
            }
        }
        assert_eq!(counter.call(Get {}).await.unwrap(), Total { value: 4 });
    });
}
