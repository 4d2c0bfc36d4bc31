//! `Pool::call_cancellable`: a call cancelled explicitly while its caller still awaits it, on
//! every transport. The handler sees the cancel and answers early, or stops and the caller
//! gets `Cancelled`; a cancel before sending sends nothing; a cancel racing the answer is
//! harmless; the connection goes on serving.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Sleepy, addresses, eventually, message, run, sleep_for, start};
use tokio_util::sync::CancellationToken;
use xoscar_pool::{Handler, Message, Pool, PoolConfig, PoolError, Responder, ServerConfig};

/// Takes each request with a `Responder` and waits, in a task of its own, for the caller to
/// cancel. Header `answer`: then answers "saw the cancel"; `drop`: drops the responder
/// unanswered. Counts requests taken and cancels seen.
#[derive(Clone, Default)]
struct Watchful {
    taken: Arc<AtomicUsize>,
    saw_cancel: Arc<AtomicUsize>,
}

impl Handler for Watchful {
    const RESPONDS: bool = true;

    async fn call(&self, request: Message) -> Message {
        Responder::respond_detached(self, request).await
    }

    fn respond(&self, request: Message, mut responder: Responder) {
        self.taken.fetch_add(1, Ordering::SeqCst);
        let saw_cancel = self.saw_cancel.clone();
        tokio::spawn(async move {
            responder.cancelled().await;
            assert!(responder.is_cancelled());
            saw_cancel.fetch_add(1, Ordering::SeqCst);
            match &request.header[..] {
                b"answer" => responder.respond(message("saw the cancel")),
                _ => drop(responder),
            }
        });
    }
}

/// Starts `call_cancellable` in a task; cancels once `started` reaches 1.
async fn cancel_once_started(
    pool: &Pool,
    at: &xoscar_transport::Address,
    request: Message,
    started: &AtomicUsize,
) -> Result<Message, PoolError> {
    let cancel = CancellationToken::new();
    let call = tokio::spawn({
        let (pool, at, cancel) = (pool.clone(), at.clone(), cancel.clone());
        async move { pool.call_cancellable(&at, request, &cancel).await }
    });
    assert!(eventually(Duration::from_secs(10), || started.load(Ordering::SeqCst) == 1).await);
    cancel.cancel();
    call.await.unwrap()
}

#[test]
fn a_handler_that_sees_the_cancel_gives_its_caller_what_it_answers() {
    run(async {
        for address in addresses() {
            let handler = Watchful::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            let answer = cancel_once_started(&pool, at, message("answer"), &handler.taken).await;
            assert_eq!(answer.unwrap(), message("saw the cancel"), "{address}");
            assert_eq!(handler.saw_cancel.load(Ordering::SeqCst), 1);
            server.shutdown().await;
        }
    });
}

#[test]
fn a_responder_dropped_after_the_cancel_answers_cancelled() {
    run(async {
        for address in addresses() {
            let handler = Watchful::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            let error = cancel_once_started(&pool, at, message("drop"), &handler.taken).await;
            let error = error.unwrap_err();
            assert!(
                matches!(error, PoolError::Cancelled { sent: true, .. }),
                "{address}: {error:?}"
            );
            assert!(!error.is_retry_safe());
            server.shutdown().await;
        }
    });
}

#[test]
fn a_task_handler_is_dropped_where_it_waits_and_the_connection_goes_on() {
    run(async {
        for address in addresses() {
            let handler = Sleepy::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            let error = cancel_once_started(&pool, at, sleep_for(60_000), &handler.started).await;
            assert!(matches!(error, Err(PoolError::Cancelled { sent: true, .. })), "{error:?}");
            assert!(
                eventually(Duration::from_secs(10), || handler.dropped.load(Ordering::SeqCst) == 1)
                    .await
            );
            assert_eq!(pool.call(at, sleep_for(0)).await.unwrap(), sleep_for(0));
            assert_eq!(pool.stats().connects, 1, "{address}: one connection throughout");
            server.shutdown().await;
        }
    });
}

#[test]
fn a_call_cancelled_before_sending_is_never_sent() {
    run(async {
        for address in addresses() {
            let handler = Sleepy::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            let cancel = CancellationToken::new();
            cancel.cancel();
            let error = pool.call_cancellable(at, sleep_for(0), &cancel).await.unwrap_err();
            assert!(matches!(error, PoolError::Cancelled { sent: false, .. }), "{error:?}");
            assert!(error.is_retry_safe());
            // A call after it is served, and it was the only request the handler saw.
            assert_eq!(pool.call(at, sleep_for(0)).await.unwrap(), sleep_for(0));
            assert_eq!(handler.started.load(Ordering::SeqCst), 1, "{address}");
            server.shutdown().await;
        }
    });
}

#[test]
fn a_cancel_racing_the_answer_gives_the_answer_or_cancelled_and_nothing_else() {
    run(async {
        for address in addresses() {
            let handler = Sleepy::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            let (mut answered, mut cancelled) = (0, 0);
            for round in 0..200u64 {
                let cancel = CancellationToken::new();
                let request = sleep_for(round % 2);
                let call = pool.call_cancellable(at, request.clone(), &cancel);
                let canceller = async {
                    tokio::task::yield_now().await;
                    cancel.cancel();
                };
                match tokio::join!(call, canceller).0 {
                    Ok(answer) => {
                        assert_eq!(answer, request);
                        answered += 1;
                    }
                    Err(PoolError::Cancelled { .. }) => cancelled += 1,
                    Err(other) => panic!("{address}: {other:?}"),
                }
                // A cancel after the answer is harmless.
                cancel.cancel();
            }
            assert_eq!(answered + cancelled, 200);
            let ok = Message::new(Bytes::from_static(b"0"), vec![]);
            assert_eq!(pool.call(at, ok.clone()).await.unwrap(), ok);
            assert_eq!(pool.stats().connects, 1, "{address}");
            server.shutdown().await;
        }
    });
}

/// A handler that queues requests ([`Handler::QUEUES`]) and only looks at them when the test
/// lets it: each responder waits in a queue until `begin` is asked for.
#[derive(Clone, Default)]
struct Queueing {
    queue: Arc<parking_lot::Mutex<Vec<Responder>>>,
}

impl Handler for Queueing {
    const RESPONDS: bool = true;
    const QUEUES: bool = true;

    async fn call(&self, request: Message) -> Message {
        Responder::respond_detached(self, request).await
    }

    fn respond(&self, _: Message, responder: Responder) {
        self.queue.lock().push(responder);
    }
}

/// A request still queued by a handler that queues is answered `Cancelled` by the server the
/// moment its caller cancels, with nothing from the handler; its responder then reads as
/// cancelled and `begin` says to skip it. One begun is the holder's to answer, as before.
#[test]
fn a_cancel_of_a_queued_request_is_answered_at_once() {
    run(async {
        for address in addresses() {
            let handler = Queueing::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr().clone();
            let cancel = CancellationToken::new();
            let call = tokio::spawn({
                let (pool, at, cancel) = (pool.clone(), at.clone(), cancel.clone());
                async move { pool.call_cancellable(&at, message("queued"), &cancel).await }
            });
            assert!(eventually(Duration::from_secs(10), || handler.queue.lock().len() == 1).await);
            cancel.cancel();
            let answer = tokio::time::timeout(Duration::from_secs(10), call).await;
            let error = answer.expect("answered at once").unwrap().unwrap_err();
            assert!(
                matches!(error, PoolError::Cancelled { sent: true, .. }),
                "{address}: {error:?}"
            );
            let queued = handler.queue.lock().pop().unwrap();
            assert!(queued.is_cancelled() && !queued.begin(), "{address}: skip it");
            drop(queued);

            let begun = CancellationToken::new();
            let call = tokio::spawn({
                let (pool, at, cancel) = (pool.clone(), at.clone(), begun.clone());
                async move { pool.call_cancellable(&at, message("begun"), &cancel).await }
            });
            assert!(eventually(Duration::from_secs(10), || handler.queue.lock().len() == 1).await);
            let mut responder = handler.queue.lock().pop().unwrap();
            assert!(responder.begin(), "{address}");
            begun.cancel();
            responder.cancelled().await;
            responder.respond(message("finished anyway"));
            let answer = call.await.unwrap().unwrap();
            assert_eq!(&answer.header[..], b"finished anyway", "{address}");
        }
    });
}

/// Request ids belong to their connection: two callers each with a call in flight (the first on
/// each connection, so the same id), and the second gives up; only its own handler stops, and
/// the first caller's call is answered.
#[test]
fn a_cancel_reaches_only_its_own_connections_request() {
    run(async {
        for address in addresses() {
            let handler = Sleepy::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let at = server.local_addr().clone();
            let (first, second) = (
                Pool::new(PoolConfig::default()).unwrap(),
                Pool::new(PoolConfig::default()).unwrap(),
            );
            let kept = tokio::spawn({
                let at = at.clone();
                async move { first.call(&at, sleep_for(300)).await }
            });
            let given_up = tokio::spawn({
                let at = at.clone();
                async move { second.call(&at, sleep_for(60_000)).await }
            });
            assert!(
                eventually(Duration::from_secs(10), || handler.started.load(Ordering::SeqCst) == 2)
                    .await
            );
            given_up.abort();
            assert!(
                eventually(Duration::from_secs(10), || handler.dropped.load(Ordering::SeqCst) == 1)
                    .await
            );
            kept.await.unwrap().expect("the other connection's call is answered");
            assert_eq!(handler.dropped.load(Ordering::SeqCst), 1, "{address}");
        }
    });
}

/// Polls `future` once, with this task's waker.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *future).poll(cx)))
        .await
}

#[test]
fn calls_given_up_after_queueing_but_before_being_written_never_reach_the_server() {
    run(async {
        for address in addresses() {
            let handler = Sleepy::default();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            // A connection first, so that the calls below are queued at their first poll.
            assert_eq!(pool.call(at, sleep_for(0)).await.unwrap(), sleep_for(0));
            // Three calls queued, one poll each; the writer (a task of this runtime) cannot
            // take them before this task waits. One is dropped, one cancelled explicitly.
            let mut dropped = Box::pin(pool.call(at, sleep_for(0)));
            assert!(poll_once(&mut dropped).await.is_pending(), "{address}");
            let cancel = CancellationToken::new();
            let mut cancelled = Box::pin(pool.call_cancellable(at, sleep_for(0), &cancel));
            assert!(poll_once(&mut cancelled).await.is_pending(), "{address}");
            let mut kept = Box::pin(pool.call(at, sleep_for(0)));
            assert!(poll_once(&mut kept).await.is_pending(), "{address}");
            drop(dropped);
            cancel.cancel();
            let error = cancelled.await.unwrap_err();
            assert!(matches!(error, PoolError::Cancelled { sent: false, .. }), "{error:?}");
            assert_eq!(kept.await.unwrap(), sleep_for(0), "{address}");
            // Only the first call and the kept one reached the handler.
            assert_eq!(handler.started.load(Ordering::SeqCst), 2, "{address}");
            server.shutdown().await;
        }
    });
}
