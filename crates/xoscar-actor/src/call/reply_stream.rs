//! The caller's side of a streaming reply: [`ActorRef::call_stream`] and the
//! [`ReplyStream`] it returns. How items travel is in the streaming module.

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use futures_util::Stream;
use xoscar_pool::{Message, RecentConnection, ResponseStream};
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use super::client::Client;
use super::pipeline::{Expect, Wait};
use crate::actor::cell::Cell;
use crate::actor::streaming::{STREAM_WINDOW, Streaming};
use crate::wire::codec::Codec;
use crate::wire::header::{self, Answer as Response};
use crate::{Actor, ActorError, ActorRef, Handler};

/// The caller's side of a streaming reply ([`ActorRef::call_stream`]): a `futures` `Stream`
/// of items, each a value or an error ([`ActorError::Handler`] for a failure the handler's
/// stream yielded; a panic or a connection error ends the stream after it). Dropping it stops
/// the producer.
pub struct ReplyStream<T> {
    source: Source<T>,
}

enum Source<T> {
    /// The handler's own stream, polled here.
    Local { items: Streaming<T>, me: ActorRef<()>, ended: bool },
    /// A pool response stream, each message a pack of items decoded with `decode` into
    /// `unread`.
    Remote {
        stream: ResponseStream,
        decode: PackDecoder,
        unread: std::collections::VecDeque<Result<T, ActorError>>,
    },
}

/// Decodes a pack's body into the caller's `Option<Vec<Result<T, ActorError>>>`.
type PackDecoder = fn(Payloads, &Address, &mut dyn std::any::Any) -> Result<(), prost::DecodeError>;

impl<T: Send + 'static> ReplyStream<T> {
    /// The next item; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<T, ActorError>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<T, ActorError>>> {
        match &mut self.source {
            Source::Local { ended: true, .. } => Poll::Ready(None),
            Source::Local { items, me, ended } => {
                let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    items.items.as_mut().poll_next(cx)
                }));
                Poll::Ready(match polled {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(None)) => {
                        *ended = true;
                        None
                    }
                    Ok(Poll::Ready(Some(item))) => {
                        Some(item.map_err(|failure| ActorError::handler(me, failure)))
                    }
                    Err(panic) => {
                        *ended = true;
                        Some(Err(ActorError::panicked(me, &*panic)))
                    }
                })
            }
            Source::Remote { stream, decode, unread } => loop {
                if let Some(item) = unread.pop_front() {
                    return Poll::Ready(Some(item));
                }
                // After its last message the pool stream yields `None`.
                let Some(message) = std::task::ready!(Pin::new(&mut *stream).poll_next(cx)) else {
                    return Poll::Ready(None);
                };
                let endpoint = stream.endpoint().clone();
                let last = stream.is_finished();
                let pack = message.map_err(ActorError::from).and_then(|message| {
                    match header::answer(message, &endpoint)? {
                        // The end: nothing more to yield.
                        Response::Body(_) if last => Ok(Vec::new()),
                        Response::Body(body) => {
                            let mut pack: Option<Vec<Result<T, ActorError>>> = None;
                            decode(body, &endpoint, &mut pack).map_err(|error| {
                                ActorError::BadReply {
                                    address: endpoint.to_string(),
                                    detail: format!("stream items: {error}"),
                                }
                            })?;
                            pack.ok_or_else(|| ActorError::BadReply {
                                address: endpoint.to_string(),
                                detail: "stream items of another type".to_owned(),
                            })
                        }
                        Response::Done(_) => Err(ActorError::BadReply {
                            address: endpoint.to_string(),
                            detail: "a stream message with no body".to_owned(),
                        }),
                    }
                });
                match pack {
                    Ok(pack) => unread.extend(pack),
                    Err(error) => unread.push_back(Err(error)),
                }
            },
        }
    }
}

impl<T: Send + 'static> Stream for ReplyStream<T> {
    type Item = Result<T, ActorError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

impl<T> Unpin for ReplyStream<T> {}

impl<A: Actor> ActorRef<A> {
    /// Calls a streaming handler (one whose reply is a [`Streaming`]) and returns its items
    /// as they come.
    ///
    /// - In this process the handler's stream is polled by the caller: no buffering, and the
    ///   producer only runs as fast as the caller reads.
    /// - Across processes (the message declared with [`crate::RemoteMessages::stream`]) the
    ///   items travel as a pool response stream with credit-based flow control, the items that
    ///   are ready packed together ([`STREAM_WINDOW`] messages of up to [`crate::PACK_ITEMS`] items):
    ///   a slow consumer holds the producer back, never more than 1,152 items ahead. The stream holds one lease on its connection, so the reaper never
    ///   closes it and the heartbeat watches it.
    /// - Dropping the stream stops the producer (remotely, a cancel).
    pub async fn call_stream<M, T>(&self, message: M) -> Result<ReplyStream<T>, ActorError>
    where
        M: Send + 'static,
        T: Send + 'static,
        A: Handler<M, Reply = Streaming<T>>,
    {
        self.request::<M, Items<T>>(message, Wait::Configured).await
    }
}

/// A streaming call: the items of the handler's [`Streaming`], as they come. It waits for no
/// answer as a whole: the stream ends when the producer does, or when it is dropped.
pub(crate) struct Items<T>(std::marker::PhantomData<fn() -> T>);

impl<A, M, T> Expect<A, M> for Items<T>
where
    A: Handler<M, Reply = Streaming<T>>,
    M: Send + 'static,
    T: Send + 'static,
{
    type Output = ReplyStream<T>;

    async fn local_configured(
        me: &ActorRef<A>,
        cell: &Cell<A>,
        message: M,
    ) -> crate::actor::envelope::Answer<ReplyStream<T>> {
        let items = cell.call(message, None).await?;
        Ok(ReplyStream { source: Source::Local { items, me: me.cast(), ended: false } })
    }

    async fn local(
        me: &ActorRef<A>,
        cell: Arc<Cell<A>>,
        message: M,
        _: Wait<'_>,
    ) -> crate::actor::envelope::Answer<ReplyStream<T>> {
        Self::local_configured(me, &cell, message).await
    }

    async fn remote(
        client: &'static Client,
        endpoint: &Address,
        _: &RecentConnection,
        codec: Codec,
        request: Message,
        _: Wait<'_>,
    ) -> Result<ReplyStream<T>, ActorError> {
        let stream = client.pool.call_stream(endpoint, request, STREAM_WINDOW).await?;
        let (decode, unread) = (codec.decode_reply, Default::default());
        Ok(ReplyStream { source: Source::Remote { stream, decode, unread } })
    }
}
