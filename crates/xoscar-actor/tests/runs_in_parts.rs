//! An actor answering a long run of calls from another process lets its answers go out in
//! parts: its task yields every so often, so the connection's write side sends what is answered
//! while the actor works on, and the caller can start on the first answers. The caller is a raw
//! peer speaking the protocol, whose `Hello` says it is another process (a mark of its own) or
//! this one (the pool's mark, echoed). The pool runs on a thread of its own, so that a handler
//! may block that thread.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use xoscar_actor::pb::{self, request::Kind};
use xoscar_actor::{Actor, ActorPool, Context, Failure, Handler, RemoteMessages};
use xoscar_testkit::raw_caller;
use xoscar_transport::Address;
use xoscar_wire::Frame;

/// Calls sent in one write; the last one holds the actor.
const RUN: u64 = 24;

/// Answers the caller must have read before it releases the held call (the actor's task
/// yields after 16 answers to another process).
const READ_BEFORE_RELEASE: usize = 16;

/// Echoes every message at once, but `hold`: that blocks the pool's thread until released or
/// `hold_for` passes, and answers which.
struct Holder {
    released: mpsc::Receiver<()>,
    hold_for: Duration,
}

impl Actor for Holder {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Bytes>("Echo");
    }
}

impl Handler<Bytes> for Holder {
    type Reply = Bytes;
    async fn handle(&mut self, message: Bytes, _: &mut Context<Self>) -> Result<Bytes, Failure> {
        if message.as_ref() != b"hold" {
            return Ok(message);
        }
        Ok(match self.released.recv_timeout(self.hold_for) {
            Ok(()) => Bytes::from_static(b"released"),
            Err(_) => Bytes::from_static(b"held to the end"),
        })
    }
}

/// A pool on TCP holding a [`Holder`] as `holder`, on a thread and runtime of its own for the
/// life of the test binary; its address and the sender that releases the held call.
fn pool_holding(hold_for: Duration) -> (Address, mpsc::Sender<()>) {
    let (release, released) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let pool = ActorPool::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let holder = Holder { released, hold_for };
            pool.handle().create(holder).uid("holder").await.unwrap();
            tx.send(pool.addresses()[0].clone()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    (rx.recv().unwrap(), release)
}

/// As a raw caller whose `Hello` carries `mark(the pool's mark)`: sends [`RUN`] calls to
/// `holder` in one write (the last one held), releases the held one once
/// [`READ_BEFORE_RELEASE`] answers came, and returns the held call's reply once every answer
/// came.
async fn run_of_calls(
    address: &Address,
    mark: impl FnOnce(u64) -> u64,
    release: &mpsc::Sender<()>,
) -> Bytes {
    let mut raw = tokio::net::TcpStream::connect(address.to_string()).await.unwrap();
    let delivery = pb::Delivery { uid: "holder".into(), message: "Echo".into(), hops: 0 };
    let header: Bytes = pb::Request { kind: Some(Kind::Call(delivery)) }.encode_to_vec().into();
    let calls = (1..=RUN)
        .map(|id| {
            let body = if id == RUN { "hold" } else { "echo" };
            Frame::request(id, header.clone(), [Bytes::from_static(body.as_bytes())])
        })
        .collect();
    let answers = raw_caller::run_of_requests(&mut raw, mark, calls, |n| {
        // The actor may be at the held call already, or not yet: either way it is free to
        // finish now.
        if n == READ_BEFORE_RELEASE {
            let _ = release.send(());
        }
    })
    .await;
    raw_caller::answer_to(&answers, RUN).1.first().cloned().unwrap_or_default()
}

#[test]
fn a_caller_in_another_process_gets_an_actors_long_run_of_answers_in_parts() {
    common::run(async {
        // Held long enough to fail the test, well inside its outer timeout: answered only once
        // the mailbox is empty, the first answers would come when the hold ran out.
        let (pool, release) = pool_holding(Duration::from_secs(10));
        let held = run_of_calls(&pool, |mark| mark.wrapping_add(1), &release).await;
        assert_eq!(held, "released", "the first answers came before the last");
    });
}

#[test]
fn a_caller_in_this_process_gets_an_actors_run_of_answers_when_the_mailbox_is_empty() {
    common::run(async {
        // In parts, the first answers would come at once and release the hold; at the end,
        // none comes before the hold runs out.
        let (pool, release) = pool_holding(Duration::from_millis(300));
        let held = run_of_calls(&pool, |mark| mark, &release).await;
        assert_eq!(held, "held to the end", "no answer came before the last");
    });
}
