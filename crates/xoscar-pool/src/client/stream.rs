//! Response streams: [`Pool::call_stream`] and the [`ResponseStream`] it opens, with
//! credit-based flow control.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use xoscar_transport::Address;
use xoscar_wire::{Envelope, Frame};

use super::conn::{Conn, LeaseGuard};
use super::state::{Outcome, Refused, Waiter};
use super::{InFlight, MAX_SENDS, Pool, check_frame, lost_after_sending, unsent};
use crate::{Message, PoolError};

/// A credit window for [`Pool::call_stream`]: how many items may be on their way or waiting
/// to be read.
pub const DEFAULT_STREAM_WINDOW: u32 = 64;

/// The largest credit window [`Pool::call_stream`] grants (a larger one is lowered to it); a
/// server holds at most this much credit per stream too.
pub const MAX_STREAM_WINDOW: u32 = 1024;

impl Pool {
    /// Sends `request` as a response stream and waits for the server's first message (an
    /// error if the stream failed before any, e.g. [`PoolError::Refused`]): the
    /// handler sends items ([`crate::Responder::send_item`]) and ends the stream with its
    /// answer. The stream yields each item, then the answer, then `None`; a connection error
    /// is its last item.
    ///
    /// - **Flow control.** The caller grants `window` items of credit (1 to
    ///   [`MAX_STREAM_WINDOW`]) and grants
    ///   more as its consumer reads, half a window at a time, so at most `window` items are
    ///   ever on their way or waiting unread: a slow consumer holds back the producer and
    ///   neither side buffers without bound.
    /// - **One lease.** The stream holds a lease on its connection until its last message is
    ///   read or it is dropped: the reaper never closes the connection under it, and the heartbeat watches
    ///   it.
    /// - **Cancel.** Dropping the stream before its end cancels the request: the producer's
    ///   `send_item` fails with [`crate::StreamError::Cancelled`].
    /// - **Limits.** A server serves at most `max_in_flight` streams per connection at once; one
    ///   more is refused with [`PoolError::Refused`] (nothing ran; safe to retry later).
    /// - **Opening.** Like [`Pool::call`], a request the connection ended before writing is
    ///   sent again on a fresh connection; the pool's `call_timeout`, if set, bounds the wait
    ///   for the first message. Once the first message is in, nothing is re-sent.
    pub async fn call_stream(
        &self,
        endpoint: &Address,
        request: Message,
        window: u32,
    ) -> Result<ResponseStream, PoolError> {
        let window = window.clamp(1, MAX_STREAM_WINDOW);
        let mut frame = Frame::request(0, request.header, request.payloads);
        if let Envelope::Request(sent) = &mut frame.envelope {
            sent.stream_credit = window;
        }
        let open = self.open_stream(endpoint, &frame, window);
        match self.shared.config.call_timeout() {
            None => open.await,
            Some(timeout) => match tokio::time::timeout(timeout, open).await {
                Ok(result) => result,
                Err(_) => Err(PoolError::CallTimedOut { address: endpoint.to_string(), timeout }),
            },
        }
    }

    async fn open_stream(
        &self,
        endpoint: &Address,
        frame: &Frame,
        window: u32,
    ) -> Result<ResponseStream, PoolError> {
        let runtime = self.runtime()?;
        check_frame(&self.shared.config, endpoint, frame)?;
        for _ in 0..MAX_SENDS {
            let lease = runtime.lease(endpoint).await?;
            let Some((id, mut events)) = queue_stream(&lease.conn, frame, window).await? else {
                continue;
            };
            let first = {
                let mut opening = InFlight { conn: &lease.conn, id, waiting: true };
                let first = events.recv().await;
                opening.waiting = false;
                first
            };
            let first = match first {
                // The waiter is only dropped unanswered if the connection was torn down.
                None => return Err(lost_after_sending(&lease.conn)),
                Some((Outcome::Retry, _)) => continue,
                // Failed before any message: the stream never opened (refused, the handler
                // panicked, the connection ended).
                Some((Outcome::Failed(error), _)) => return Err(error),
                Some(first) => first,
            };
            let conn = lease.conn.clone();
            let lease = Some(lease);
            let mut stream = ResponseStream {
                conn,
                lease,
                id,
                events,
                first: None,
                window,
                unread: 0,
                ended: false,
            };
            stream.first = Some(stream.take(first));
            return Ok(stream);
        }
        Err(unsent(endpoint, format!("connections ended before sending it, {MAX_SENDS} times")))
    }
}

/// Registers a stream and queues its request, waiting for room: its id and its events, or
/// `None` when the connection takes no more requests (nothing was sent).
async fn queue_stream(
    conn: &Arc<Conn>,
    frame: &Frame,
    credit: u32,
) -> Result<Option<(u64, mpsc::UnboundedReceiver<(Outcome, bool)>)>, PoolError> {
    loop {
        let (events, received) = mpsc::unbounded_channel();
        match conn.try_queue(frame, Waiter::Stream { events, credit }) {
            Ok(id) => return Ok(Some((id, received))),
            Err(Refused::Closed) => return Ok(None),
            Err(Refused::Full) => conn.wait_for_room().await,
            Err(Refused::TooLarge(error)) => return Err(PoolError::too_large(&conn.label, error)),
        }
    }
}

/// The messages of a response stream ([`Pool::call_stream`]): a `futures` `Stream` of the
/// server's items, then its answer; a connection error is the last item. Holds a lease on its
/// connection until its end; dropped before it, it cancels the request.
pub struct ResponseStream {
    conn: Arc<Conn>,
    /// Released once the last message is read.
    lease: Option<LeaseGuard>,
    id: u64,
    /// Items and the last outcome, at most `window` of them (the server's credit).
    events: mpsc::UnboundedReceiver<(Outcome, bool)>,
    first: Option<Result<Message, PoolError>>,
    window: u32,
    /// Items read since credit was last granted back.
    unread: u32,
    ended: bool,
}

impl std::fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStream")
            .field("endpoint", &self.conn.label)
            .field("id", &self.id)
            .field("ended", &self.ended)
            .finish()
    }
}

impl ResponseStream {
    /// The next message: an item, then the answer, then `None`.
    pub async fn next(&mut self) -> Option<Result<Message, PoolError>> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    /// True once the stream's last message (the answer, or an error) has been returned: the
    /// message `next` gave last was the answer, not an item.
    pub fn is_finished(&self) -> bool {
        self.ended && self.first.is_none()
    }

    /// The endpoint this stream comes from.
    pub fn endpoint(&self) -> &Address {
        &self.conn.endpoint
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, PoolError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(first));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        match self.events.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(event)) => Poll::Ready(Some(self.take(event))),
            Poll::Ready(None) => {
                self.end();
                Poll::Ready(Some(Err(lost_after_sending(&self.conn))))
            }
        }
    }

    /// Reads one event: marks the end, or counts an item and grants credit back once half a
    /// window has been read.
    fn take(&mut self, (outcome, last): (Outcome, bool)) -> Result<Message, PoolError> {
        if last {
            self.end();
        } else {
            self.unread += 1;
            if self.unread >= (self.window / 2).max(1) {
                self.conn.grant(self.id, std::mem::take(&mut self.unread));
            }
        }
        match outcome {
            Outcome::Response(message) => Ok(message),
            Outcome::Failed(error) => Err(error),
            // Only before the first message, which `open_stream` handles.
            Outcome::Retry => Err(unsent(&self.conn.endpoint, "the stream was never sent")),
        }
    }

    /// The last message is in: the lease goes (the connection may idle now).
    fn end(&mut self) {
        self.ended = true;
        self.lease = None;
    }
}

impl futures_util::Stream for ResponseStream {
    type Item = Result<Message, PoolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx)
    }
}

impl Drop for ResponseStream {
    fn drop(&mut self) {
        if !self.ended {
            self.conn.cancel(self.id);
        }
    }
}
