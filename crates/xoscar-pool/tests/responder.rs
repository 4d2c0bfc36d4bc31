//! Handlers that take requests with a `Responder` (`Handler::RESPONDS`), on every transport:
//! answered at once or later from another task, dropped unanswered, panicking while taking the
//! request, cancelled by the caller; answers written by the answering task or the
//! connection's, on one thread and on two; and a detached responder for `call`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{addresses, run, start};
use tokio::sync::mpsc;
use xoscar_pool::{Handler, Message, Pool, PoolConfig, PoolError, Responder, ServerConfig};

/// The header says what to do: `now`, `later` (a worker task answers), `drop`, `panic`, or
/// `hold` (the worker keeps it until the next `release`).
#[derive(Clone)]
struct Queued {
    worker: mpsc::UnboundedSender<(Message, Responder)>,
}

impl Queued {
    /// Starts the worker task: it answers `later` with the request and keeps `hold`s until a
    /// `release` comes, then answers them all.
    fn start() -> Queued {
        let (worker, mut requests) = mpsc::unbounded_channel::<(Message, Responder)>();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some((request, responder)) = requests.recv().await {
                match &request.header[..] {
                    b"hold" => held.push((request, responder)),
                    b"release" => {
                        for (request, responder) in held.drain(..) {
                            responder.respond(request);
                        }
                        responder.respond(request);
                    }
                    _ => responder.respond(request),
                }
            }
        });
        Queued { worker }
    }
}

impl Handler for Queued {
    const RESPONDS: bool = true;

    async fn call(&self, request: Message) -> Message {
        Responder::respond_detached(self, request).await
    }

    fn respond(&self, request: Message, responder: Responder) {
        match &request.header[..] {
            b"now" => responder.respond(request),
            b"drop" => drop(responder),
            b"panic" => panic!("taking the request failed"),
            _ => {
                let _ = self.worker.send((request, responder));
            }
        }
    }
}

fn message(text: &'static str) -> Message {
    Message::new(Bytes::from_static(text.as_bytes()), vec![Bytes::from_static(b"body")])
}

#[test]
fn answers_now_later_dropped_and_panicked_each_reach_their_caller() {
    run(async {
        for address in addresses() {
            let server = start(&address, Queued::start(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            assert_eq!(pool.call(at, message("now")).await.unwrap(), message("now"));
            assert_eq!(pool.call(at, message("later")).await.unwrap(), message("later"));
            for (what, expected) in [
                ("drop", "the handler dropped the request without answering it"),
                ("panic", "the handler dropped the request without answering it"),
            ] {
                let header = if what == "drop" { "drop" } else { "panic" };
                let error = pool.call(at, message(header)).await.unwrap_err();
                assert!(
                    matches!(&error, PoolError::HandlerPanicked { message: Some(m), .. } if m == expected),
                    "{address}: {error:?}"
                );
            }
            // Everything above shared one connection, which still serves.
            assert_eq!(pool.call(at, message("later")).await.unwrap(), message("later"));
            assert_eq!(pool.stats().connects, 1, "{address}");
            server.shutdown().await;
        }
    });
}

#[test]
fn an_answer_to_a_cancelled_request_is_discarded_and_the_connection_goes_on() {
    run(async {
        for address in addresses() {
            let server = start(&address, Queued::start(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            let held = pool.call_with_timeout(at, message("hold"), Some(Duration::from_millis(50)));
            assert!(matches!(held.await, Err(PoolError::CallTimedOut { .. })));
            // The held request is answered now, after its caller gave up: nobody gets it, and
            // the release gets its own answer.
            assert_eq!(pool.call(at, message("release")).await.unwrap(), message("release"));
            assert_eq!(pool.call(at, message("now")).await.unwrap(), message("now"));
            server.shutdown().await;
        }
    });
}

#[test]
fn graceful_shutdown_waits_for_answers_owed_by_responders() {
    run(async {
        for address in addresses() {
            let handler = Queued::start();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr().clone();
            let held = tokio::spawn({
                let (pool, at) = (pool.clone(), at.clone());
                async move { pool.call(&at, message("hold")).await }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let shutdown = server.shutdown();
            // The worker answers the held request while the server drains.
            let (responder, answer) = Responder::detached();
            handler.respond(message("release"), responder);
            assert_eq!(answer.await, message("release"));
            assert_eq!(held.await.unwrap().unwrap(), message("hold"));
            tokio::time::timeout(Duration::from_secs(10), shutdown).await.expect("drained");
        }
    });
}

/// The only request in flight, answered from the worker's task while the server waits for
/// more, is written by that task. An answer larger than the socket takes at once still
/// arrives whole (the connection's write side sends the rest), and the connection goes on.
#[test]
fn an_answer_given_alone_and_larger_than_the_socket_takes_arrives_whole() {
    run(async {
        for address in addresses() {
            let server = start(&address, Queued::start(), ServerConfig::default()).await;
            // No ping within the test: its pong would flush what the answer left behind.
            let quiet = PoolConfig::default()
                .heartbeat_interval(Duration::from_secs(120))
                .heartbeat_timeout(Duration::from_secs(240));
            let pool = Pool::new(quiet).unwrap();
            let at = server.local_addr();
            let large =
                Bytes::from((0..16usize << 20).map(|i| (i % 251) as u8).collect::<Vec<_>>());
            let request = Message::new(Bytes::from_static(b"later"), vec![large.clone()]);
            let answer = tokio::time::timeout(Duration::from_secs(20), pool.call(at, request))
                .await
                .expect("the rest of the answer is flushed without waiting for other traffic")
                .unwrap();
            assert_eq!(answer.payloads[..], [large][..], "{address}");
            assert_eq!(pool.call(at, message("later")).await.unwrap(), message("later"));
            assert_eq!(pool.stats().connects, 1, "{address}");
            server.shutdown().await;
        }
    });
}

/// A server stopped at once while a handler's worker still holds a request (and with it the
/// connection's shared half): the connection closes with the server, and the caller hears
/// of it at once rather than waiting for an answer that cannot come.
#[test]
fn an_aborted_server_closes_connections_whose_requests_a_worker_still_holds() {
    run(async {
        for address in addresses() {
            // Kept here, so the worker (and the request it holds) outlives the server.
            let handler = Queued::start();
            let server = start(&address, handler.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            assert_eq!(pool.call(at, message("now")).await.unwrap(), message("now"));
            // Polled once, the held call is queued on the open connection; the call after it
            // goes behind it, so once that is answered the worker holds the first.
            let mut held = Box::pin(pool.call(at, message("hold")));
            tokio::select! {
                biased;
                answer = &mut held => panic!("answered while held: {answer:?}"),
                () = std::future::ready(()) => {}
            }
            assert_eq!(pool.call(at, message("later")).await.unwrap(), message("later"));
            server.abort();
            let lost = tokio::time::timeout(Duration::from_secs(10), held)
                .await
                .expect("the caller hears the connection closed");
            assert!(matches!(lost, Err(PoolError::ConnectionLost { .. })), "{address}: {lost:?}");
            drop(handler);
        }
    });
}

/// Answers every request from a task of its own, after yielding when the header's first
/// byte is odd: answers given alone and answers queued behind others, mixed.
struct Spawning;

impl Handler for Spawning {
    const RESPONDS: bool = true;

    async fn call(&self, request: Message) -> Message {
        Responder::respond_detached(self, request).await
    }

    fn respond(&self, request: Message, responder: Responder) {
        tokio::spawn(async move {
            if request.header.first().is_some_and(|byte| byte % 2 == 1) {
                tokio::task::yield_now().await;
            }
            responder.respond(request);
        });
    }
}

/// On two worker threads, callers one at a time and callers with many in flight share a
/// connection whose answers come from other tasks: whichever task writes each answer (the
/// answering one, or the connection's), every caller gets its own, whole.
#[test]
fn answers_from_many_tasks_on_two_threads_each_reach_their_caller() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        tokio::time::timeout(common::TEST_TIMEOUT, async {
            for address in addresses() {
                let server = start(&address, Spawning, ServerConfig::default()).await;
                let pool = Pool::new(PoolConfig::default()).unwrap();
                let at = server.local_addr().clone();
                let mut callers = tokio::task::JoinSet::new();
                for caller in 0..4u8 {
                    let (pool, at) = (pool.clone(), at.clone());
                    callers.spawn(async move {
                        let ask = |n: u32| {
                            let header = Bytes::from(vec![caller.wrapping_add(n as u8); 3]);
                            let body = Bytes::from(format!("{caller}/{n}"));
                            Message::new(header, vec![body])
                        };
                        // Two callers one at a time, two with 16 in flight.
                        let in_flight = if caller % 2 == 0 { 1 } else { 16 };
                        for round in 0..40u32 {
                            let calls = (0..in_flight).map(|i| {
                                let request = ask(round * 16 + i);
                                let (pool, at) = (pool.clone(), at.clone());
                                async move { (pool.call(&at, request.clone()).await, request) }
                            });
                            for (answer, request) in futures_util::future::join_all(calls).await {
                                assert_eq!(answer.unwrap(), request);
                            }
                        }
                    });
                }
                while let Some(done) = callers.join_next().await {
                    done.unwrap();
                }
                assert_eq!(pool.stats().connects, 1, "{address}");
                server.shutdown().await;
            }
        })
        .await
        .expect("test exceeded its outer timeout")
    });
}

#[test]
fn a_detached_responder_serves_call_and_reports_a_drop() {
    run(async {
        let handler = Queued::start();
        assert_eq!(handler.call(message("now")).await, message("now"));
        assert_eq!(handler.call(message("later")).await, message("later"));
        let dropped = handler.call(message("drop")).await;
        assert_eq!(&dropped.header[..], b"the handler dropped the request without answering it");
    });
}
