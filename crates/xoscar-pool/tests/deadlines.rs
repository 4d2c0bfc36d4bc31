//! The caller's time budget travels with a request (`Request.timeout_us`), under tokio's
//! paused clock: the server drops a handler still running at the request's deadline even when
//! no cancel comes, and hands the deadline to `Responder` handlers.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use bytes::Bytes;
use common::{Sleepy, inproc, run_paused, start};
use tokio::sync::mpsc;
use tokio::time::Instant;
use xoscar_pool::{Handler, Message, Pool, PoolConfig, Responder, ServerConfig};
use xoscar_transport::{TransportConfig, connect};
use xoscar_wire::{Envelope, Frame};

#[test]
fn a_handler_still_running_at_the_deadline_is_dropped_without_a_cancel() {
    run_paused(async {
        let handler = Sleepy::default();
        let server = start(&inproc(), handler.clone(), ServerConfig::default()).await;
        // A raw caller: it sends a request with a 1 s budget and never cancels it.
        let mut channel = connect(server.local_addr(), &TransportConfig::default()).await.unwrap();
        let mut request = Frame::request(1, Bytes::from_static(b"10000"), vec![]);
        if let Envelope::Request(sent) = &mut request.envelope {
            sent.timeout_us = 1_000_000;
        }
        let sent = Instant::now();
        channel.send(request).await.unwrap();
        tokio::time::sleep_until(sent + Duration::from_millis(999)).await;
        assert_eq!(handler.started.load(SeqCst), 1);
        assert_eq!(handler.dropped.load(SeqCst), 0, "still running just before the deadline");
        tokio::time::sleep_until(sent + Duration::from_secs(1)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(handler.dropped.load(SeqCst), 1, "dropped at the deadline");
        // Nothing is answered for it, and the connection goes on serving.
        channel.send(Frame::request(2, Bytes::from_static(b"0"), vec![])).await.unwrap();
        match channel.recv().await.unwrap().unwrap().into_frame().envelope {
            Envelope::Response(response) => assert_eq!(response.id, 2),
            other => panic!("{other:?}"),
        }
        server.abort();
    });
}

/// Hands every request's deadline back to the test, then answers.
struct Deadlines(mpsc::UnboundedSender<Option<Instant>>);

impl Handler for Deadlines {
    const RESPONDS: bool = true;

    async fn call(&self, request: Message) -> Message {
        Responder::respond_detached(self, request).await
    }

    fn respond(&self, request: Message, responder: Responder) {
        let _ = self.0.send(responder.deadline());
        responder.respond(request);
    }
}

#[test]
fn a_responder_knows_its_callers_deadline() {
    run_paused(async {
        let (seen, mut deadlines) = mpsc::unbounded_channel();
        let server = start(&inproc(), Deadlines(seen), ServerConfig::default()).await;
        let pool = Pool::new(PoolConfig::default()).unwrap();
        let at = server.local_addr();
        pool.call(at, Message::default()).await.unwrap();
        assert_eq!(deadlines.recv().await.unwrap(), None, "no timeout, no deadline");
        let sent = Instant::now();
        let timeout = Duration::from_secs(3);
        pool.call_with_timeout(at, Message::default(), Some(timeout)).await.unwrap();
        let deadline = deadlines.recv().await.unwrap().expect("a deadline");
        assert_eq!(deadline, sent + timeout, "counted from the read, which took no time here");
        server.abort();
    });
}
