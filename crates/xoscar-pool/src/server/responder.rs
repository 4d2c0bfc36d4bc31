//! [`Responder`]: a request's answer, given later from any task.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;
use xoscar_wire::{Envelope, Frame, pb};

use super::dispatch::reply;
use super::state::{ItemSent, ServerConn, cancelled, too_large};
use crate::{Message, StreamError};

/// The answer to one request, owed by a handler that takes requests through
/// [`super::Handler::respond`]: call [`Responder::respond`] once, now or later, from any task.
///
/// Dropped without answering, it answers for you: the caller gets
/// [`crate::PoolError::HandlerPanicked`] saying the request was dropped, so no caller ever
/// waits for an answer nobody owes. If the caller cancelled the request or its connection
/// ended meanwhile, the answer is discarded.
#[must_use = "a Responder answers its request; dropping it fails the request"]
pub struct Responder {
    target: Option<Target>,
    deadline: Option<Instant>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = match &self.target {
            Some(Target::Request { id, .. }) => Some(*id),
            _ => None,
        };
        f.debug_struct("Responder").field("request", &id).finish()
    }
}

enum Target {
    Request { conn: Arc<ServerConn>, id: u64 },
    Detached(oneshot::Sender<Message>),
}

/// What a dropped responder says.
const DROPPED: &str = "the handler dropped the request without answering it";

impl Responder {
    pub(crate) fn for_request(conn: Arc<ServerConn>, id: u64, deadline: Option<Instant>) -> Self {
        Responder { target: Some(Target::Request { conn, id }), deadline }
    }

    /// The caller's address as the transport knows it (`ip:port` for TCP), or `None` for a
    /// detached responder.
    pub fn peer(&self) -> Option<&str> {
        match &self.target {
            Some(Target::Request { conn, .. }) => Some(&conn.peer),
            _ => None,
        }
    }

    /// The caller's process id, when it dialled over a Unix socket (the kernel's word,
    /// `SO_PEERCRED`, which the caller cannot forge); `None` for TCP, in-process and detached
    /// responders.
    pub fn peer_pid(&self) -> Option<u32> {
        match &self.target {
            Some(Target::Request { conn, .. }) => conn.peer_pid,
            _ => None,
        }
    }

    /// Whether the caller is in another process, by its handshake's word (for tuning only: it
    /// cannot be checked). False for in-process and detached responders.
    pub fn caller_elsewhere(&self) -> bool {
        match &self.target {
            Some(Target::Request { conn, .. }) => conn.caller_elsewhere,
            _ => false,
        }
    }

    /// When the caller stops waiting: the budget it sent with the request (a call with a
    /// timeout), counted from when the server read it. Work for a request past its deadline
    /// can be skipped; its answer would be discarded. `None`: the caller waits as long as the
    /// connection lives.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// A responder tied to no connection, and the future of its answer: for running a
    /// [`super::Handler::respond`] handler from a [`super::Handler::call`]. A responder
    /// dropped without answering makes the future yield a message whose header says so.
    pub fn detached() -> (Responder, impl Future<Output = Message> + Send + 'static) {
        let (answer, answered) = oneshot::channel();
        let responder = Responder { target: Some(Target::Detached(answer)), deadline: None };
        let answer = async move {
            answered.await.unwrap_or_else(|_| Message::new(DROPPED.as_bytes(), Vec::new()))
        };
        (responder, answer)
    }

    /// Hands `request` to `handler`'s [`super::Handler::respond`] with a detached responder;
    /// returns the future of its answer. This is the whole of [`super::Handler::call`] for a
    /// handler that takes requests with `respond`.
    pub fn respond_detached<H: super::Handler>(
        handler: &H,
        request: Message,
    ) -> impl Future<Output = Message> + Send + 'static {
        let (responder, answer) = Responder::detached();
        handler.respond(request, responder);
        answer
    }

    /// Whether the caller cancelled the request: it dropped its call or its timeout passed
    /// (an answer would be discarded), its connection ended, or it cancelled explicitly and
    /// still waits ([`crate::Pool::call_cancellable`]): then the answer given now reaches it,
    /// and a responder dropped without answering answers with [`crate::PoolError::Cancelled`].
    /// Work for it can stop.
    pub fn is_cancelled(&self) -> bool {
        match &self.target {
            Some(Target::Request { conn, id }) => conn.is_cancelled(*id),
            Some(Target::Detached(answer)) => answer.is_closed(),
            None => true,
        }
    }

    /// The work for this request begins: from now on a cancel is this holder's to answer (see
    /// [`super::Handler::QUEUES`]). False if the request is over or its caller cancelled
    /// already: skip the work (the server answered, or a drop of this responder answers).
    /// A detached responder begins unless its caller is gone.
    pub fn begin(&self) -> bool {
        match &self.target {
            Some(Target::Request { conn, id }) => conn.begin(*id),
            Some(Target::Detached(answer)) => !answer.is_closed(),
            None => false,
        }
    }

    /// Completes once [`Responder::is_cancelled`] holds: race it against the work to stop the
    /// work when the caller cancels.
    pub async fn cancelled(&mut self) {
        match &mut self.target {
            Some(Target::Request { conn, id }) => loop {
                let notified = conn.responders_changed.notified();
                let mut notified = std::pin::pin!(notified);
                // Registered before the check, so a cancel in between still wakes us.
                notified.as_mut().enable();
                if conn.is_cancelled(*id) {
                    return;
                }
                notified.await;
            },
            Some(Target::Detached(answer)) => answer.closed().await,
            None => {}
        }
    }

    /// Whether the caller opened this request as a response stream
    /// ([`crate::Pool::call_stream`]): then [`Responder::send_item`] sends items before the
    /// answer, which ends the stream.
    pub fn is_stream(&self) -> bool {
        match &self.target {
            Some(Target::Request { conn, id }) => conn.is_stream(*id),
            _ => false,
        }
    }

    /// Sends one item of the response stream, waiting while the caller has granted no credit
    /// (its consumer is behind): so a slow consumer holds back the producer, and neither side
    /// buffers more than the credit window. [`Responder::respond`] ends the stream with the
    /// last message.
    ///
    /// Fails with [`StreamError::NotAStream`] if the request did not open a stream, and with
    /// [`StreamError::Cancelled`] once the caller dropped the stream, cancelled it, or its
    /// connection stopped being read or ended (stop producing then; an answer would be
    /// discarded). The item is taken by value: dropping this future while it waits for credit
    /// drops the item too.
    pub async fn send_item(&mut self, item: Message) -> Result<(), StreamError> {
        let Some(Target::Request { conn, id }) = &self.target else {
            return Err(StreamError::NotAStream);
        };
        let response = pb::Response { id: *id, header: item.header, more: true, status: 0 };
        let mut frame = Frame::new(Envelope::Response(response), item.payloads);
        if let Err(error) = conn.limits.admit(&frame) {
            // Not sent: the stream ends here with the error, for its caller alone.
            tracing::warn!(peer = %conn.peer, id, %error, "a stream item breaks the frame limits; ending its stream");
            conn.finish(*id, too_large(*id, &error));
            return Err(StreamError::TooLarge);
        }
        loop {
            let changed = conn.responders_changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before trying, so credit granted in between still wakes us.
            changed.as_mut().enable();
            match conn.send_item(*id, frame) {
                ItemSent::Queued => return Ok(()),
                ItemSent::NoCredit(item) => frame = item,
                ItemSent::NotOpen { is_stream: false } => return Err(StreamError::NotAStream),
                ItemSent::NotOpen { is_stream: true } => return Err(StreamError::Cancelled),
            }
            changed.await;
        }
    }

    /// Answers the request with `response`.
    pub fn respond(mut self, response: Message) {
        match self.target.take() {
            Some(Target::Request { conn, id }) => {
                conn.finish(id, Frame::response(id, response.header, response.payloads));
            }
            Some(Target::Detached(answer)) => {
                let _ = answer.send(response);
            }
            None => {}
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(Target::Request { conn, id }) = self.target.take() {
            let answer = match conn.is_cancelled(id) {
                // Its caller cancelled: an explicit cancel it still waits on gets `Cancelled`.
                true => cancelled(id),
                false => reply(&conn, id, Err(Box::new(DROPPED))),
            };
            conn.finish(id, answer);
        }
    }
}
