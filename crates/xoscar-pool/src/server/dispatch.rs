//! Running the handler: each request and one-way message is polled once on the connection
//! task, so a handler that answers without waiting costs no task; one that has to wait moves to
//! a task owned by the connection. Every poll runs inside a panic boundary: a panicking handler
//! fails its own request (the caller gets `HandlerPanicked`), never the connection.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use futures_util::FutureExt;
use xoscar_wire::{Envelope, Frame, pb};

use super::state::{ServerConn, message_bytes, refused};
use super::{Handler, Responder};

use crate::Message;

/// A handler's answer, or the payload of its panic.
pub(crate) type Answer = Result<Message, Box<dyn Any + Send>>;

/// When a request that arrived now with a budget of `timeout_us` (0: none) is past caring.
pub(crate) fn deadline_after(timeout_us: u64) -> Option<Instant> {
    (timeout_us > 0).then(|| Instant::now() + Duration::from_micros(timeout_us))
}

/// Polls `future` once with the connection task's context.
pub(crate) async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx: &mut Context<'_>| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// The panic message, when the payload is a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// The frame that answers request `id`.
pub(crate) fn reply(conn: &ServerConn, id: u64, answer: Answer) -> Frame {
    match answer {
        Ok(message) => Frame::response(id, message.header, message.payloads),
        Err(panic) => {
            let detail = panic_message(&*panic);
            tracing::warn!(peer = %conn.peer, id, panic = ?detail, "handler panicked; failing its request");
            let status = pb::response::Status::HandlerPanicked as i32;
            let header = detail.map(bytes::Bytes::from).unwrap_or_default();
            Frame::new(Envelope::Response(pb::Response { id, header, status, more: false }), vec![])
        }
    }
}

/// The future that answers a request: the handler's, inside its panic boundary. It owns a
/// reference to the handler (so that it can run as a task) and hands it back with the
/// answer: the read side gives it to the next request, so a handler that answers at once
/// costs no count on its `Arc`. The read side also keeps the box of one that finished on its
/// first poll and refills it for the next request (`Pin::set`), so that it costs no
/// allocation either.
pub(crate) fn request_future<H: Handler>(
    handler: Arc<H>,
    request: Message,
) -> impl Future<Output = Handled<Arc<H>>> + Send + 'static {
    AssertUnwindSafe(async move {
        let answer = handler.call(request).await;
        (answer, handler)
    })
    .catch_unwind()
}

/// What a request future ends with: the answer and what it hands back, or its handler's
/// panic.
pub(crate) type Handled<T> = Result<(Message, T), Box<dyn Any + Send>>;

/// Moves a request whose handler has to wait into a task owned by the connection, which
/// queues the answer when done.
pub(crate) fn spawn_request<F, T>(
    conn: &Arc<ServerConn>,
    id: u64,
    call: Pin<Box<F>>,
    bytes: usize,
    deadline: Option<Instant>,
) where
    F: Future<Output = Handled<T>> + Send + 'static,
{
    // Registered under the lock the task needs to finish, so it cannot finish first.
    let mut state = conn.lock();
    let task_conn = conn.clone();
    let task = tokio::spawn(async move {
        let handled = match deadline {
            None => call.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, call).await {
                Ok(handled) => handled,
                Err(_) => {
                    // The caller's budget is spent: it has given up, and so does the handler.
                    tracing::debug!(peer = %task_conn.peer, id, "request past its deadline dropped");
                    task_conn.cancel(id);
                    return;
                }
            },
        };
        let frame = reply(&task_conn, id, handled.map(|(answer, _)| answer));
        if !task_conn.finish(id, frame) {
            tracing::debug!(peer = %task_conn.peer, id, "answer to a cancelled request dropped");
        }
    });
    conn.register(&mut state, id, Some(task.abort_handle()), bytes, false);
}

/// Hands request `id` to a handler that answers through a [`Responder`]. The request counts
/// as in flight until the responder answers (or is dropped); a panic while taking it answers
/// at once with `HANDLER_PANICKED`.
pub(crate) fn respond<H: Handler>(
    handler: &H,
    conn: &Arc<ServerConn>,
    id: u64,
    request: Message,
    deadline: Option<Instant>,
    stream_credit: u32,
) {
    let bytes = message_bytes(&request);
    conn.register(&mut conn.lock(), id, None, bytes, H::QUEUES);
    if stream_credit > 0 && !conn.open_stream(id, stream_credit) {
        tracing::debug!(peer = %conn.peer, id, "too many open streams; refusing one");
        conn.finish(id, refused(id));
        return;
    }
    let responder = Responder::for_request(conn.clone(), id, deadline);
    if let Err(panic) =
        std::panic::catch_unwind(AssertUnwindSafe(|| handler.respond(request, responder)))
    {
        // The responder, dropped while unwinding, answered already; this only logs.
        conn.finish(id, reply(conn, id, Err(panic)));
    }
}

/// Hands a one-way message to the handler. One-way messages of one connection are handled one
/// after another in arrival order: polled here if none is waiting, else queued behind the one
/// that is, for a worker task (owned by the connection) to run in turn.
pub(crate) async fn run_notify<H: Handler>(
    conn: &Arc<ServerConn>,
    handler: &Arc<H>,
    message: Message,
) {
    let bytes = message_bytes(&message);
    {
        let mut state = conn.lock();
        if state.notify_backlog > 0 {
            conn.add_notify(&mut state, bytes);
            state.notify_queue.push_back((message, bytes));
            return;
        }
    }
    let mut handling = notify_future(handler, message);
    let Poll::Pending = poll_once(&mut handling).await else { return };
    let mut state = conn.lock();
    conn.add_notify(&mut state, bytes);
    let worker = tokio::spawn(notify_worker(conn.clone(), handler.clone(), handling, bytes));
    state.notify_worker = Some(worker.abort_handle());
}

type Handling = Pin<Box<dyn Future<Output = ()> + Send>>;

fn notify_future<H: Handler>(handler: &Arc<H>, message: Message) -> Handling {
    let handler = handler.clone();
    Box::pin(AssertUnwindSafe(async move { handler.notify(message).await }).catch_unwind().map(
        |result| {
            if let Err(panic) = result {
                let detail = panic_message(&*panic);
                tracing::warn!(panic = ?detail, "one-way handler panicked; the message is dropped");
            }
        },
    ))
}

/// Finishes `first`, then handles queued one-way messages in order until none is left.
async fn notify_worker<H: Handler>(
    conn: Arc<ServerConn>,
    handler: Arc<H>,
    first: Handling,
    first_bytes: usize,
) {
    let (mut handling, mut bytes) = (first, first_bytes);
    loop {
        handling.await;
        let next = {
            let mut state = conn.lock();
            conn.notify_done(&mut state, bytes);
            let next = state.notify_queue.pop_front();
            if next.is_none() {
                state.notify_worker = None;
            }
            next
        };
        let Some((message, next_bytes)) = next else { return };
        (handling, bytes) = (notify_future(&handler, message), next_bytes);
    }
}
