//! Streaming replies: a handler returns a [`Streaming`], a caller iterates a [`ReplyStream`]
//! ([`ActorRef::call_stream`]).
//!
//! In this process the caller polls the handler's stream itself: nothing is buffered, and
//! dropping it drops the producer. Across processes the actor's pool pumps the stream into a
//! pool response stream (`Pool::call_stream`) as the caller's credit allows, packing the items
//! that are ready together into one message (at most [`PACK_ITEMS`] items or about
//! [`PACK_BYTES`] bytes): each stream message has an empty header and a `BatchReply` body (per
//! item, its encoding or its failure); the stream's last message is empty (the end) or a
//! failure header (a panic).

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_util::{FutureExt, Stream, StreamExt};
use xoscar_pool::{Message, ResponseStream};
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use crate::client::Reach;
use crate::envelope::{Answer, Encoded, Sink};
use crate::error::panic_message;
use crate::header::{self, Answer as Response};
use crate::{Actor, ActorError, ActorRef, Failure, Handler, batch, delivery, remote};

/// The most items the pump packs into one stream message.
pub const PACK_ITEMS: usize = 64;
/// A pack is closed once its encoded items reach this many bytes.
pub const PACK_BYTES: usize = 64 << 10;
/// The credit window of a remote stream, in messages: with [`PACK_ITEMS`] per message, at most
/// 16 × 64 = 1,024 items are on their way, and with the pack in the pump's hand and the one
/// being read, the producer is at most 18 × 64 = 1,152 items ahead of the reader.
pub const STREAM_WINDOW: u32 = 16;

/// What a streaming handler returns as its reply: a stream of items, each a value or a
/// failure. It runs after the handler has returned, without the actor: capture what it needs.
///
/// ```
/// # use xoscar_actor::{Actor, Context, Failure, Handler, Streaming};
/// # struct Model;
/// # impl Actor for Model {}
/// # struct Generate { tokens: u32 }
/// impl Handler<Generate> for Model {
///     type Reply = Streaming<String>;
///     async fn handle(&mut self, g: Generate, _: &mut Context<Self>) -> Result<Streaming<String>, Failure> {
///         Ok(Streaming::new(xoscar_actor::stream::iter(
///             (0..g.tokens).map(|n| Ok(format!("token {n}"))),
///         )))
///     }
/// }
/// ```
pub struct Streaming<T> {
    items: Pin<Box<dyn Stream<Item = Result<T, Failure>> + Send>>,
}

impl<T> Streaming<T> {
    /// The reply streams `items`.
    pub fn new(items: impl Stream<Item = Result<T, Failure>> + Send + 'static) -> Self {
        Streaming { items: Box::pin(items) }
    }
}

impl<T> std::fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Streaming")
    }
}

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
    ///   are ready packed together ([`STREAM_WINDOW`] messages of up to [`PACK_ITEMS`] items):
    ///   a slow consumer holds the producer back, never more than 1,152 items ahead. The stream holds one lease on its connection, so the reaper never
    ///   closes it and the heartbeat watches it.
    /// - Dropping the stream stops the producer (remotely, a cancel).
    pub async fn call_stream<M, T>(&self, message: M) -> Result<ReplyStream<T>, ActorError>
    where
        M: Send + 'static,
        T: Send + 'static,
        A: Handler<M, Reply = Streaming<T>>,
    {
        let answer = async {
            match self.reach()? {
                Reach::Local(cell) => {
                    let items = cell.call(message, None).await?;
                    let me = self.cast();
                    Ok(ReplyStream { source: Source::Local { items, me, ended: false } })
                }
                Reach::Remote(client, endpoint) => {
                    let table = remote::table::<A>()?;
                    let codec =
                        *table.codec::<M>().ok_or_else(|| self.not_remote::<M>(&endpoint))?;
                    let body =
                        (codec.encode)(&message).ok_or_else(|| self.not_remote::<M>(&endpoint))?;
                    let uid = self.uid();
                    let header = delivery::encode(delivery::Delivery {
                        tell: false,
                        uid,
                        message: codec.name,
                        hops: 0,
                    });
                    let request = Message::new(header, body);
                    let stream = client.pool.call_stream(&endpoint, request, STREAM_WINDOW).await?;
                    let (decode, unread) = (codec.decode_reply, Default::default());
                    Ok(ReplyStream { source: Source::Remote { stream, decode, unread } })
                }
            }
        }
        .await;
        answer.inspect_err(crate::metrics::call_failed)
    }

    fn not_remote<M>(&self, endpoint: &Address) -> ActorError {
        ActorError::NotRemote {
            address: endpoint.to_string(),
            actor_type: std::any::type_name::<A>().to_owned(),
            message: std::any::type_name::<M>().to_owned(),
        }
    }
}

/// A remote caller of a streaming handler: the actor's pool pumps the stream into the
/// caller's response stream.
pub(crate) struct EncodedStream(pub(crate) Encoded);

impl<T: prost::Message + 'static> Sink<Streaming<T>> for EncodedStream {
    fn send(self, result: Answer<Streaming<T>>) {
        let me = self.0.me().clone();
        let Some(responder) = self.0.into_responder() else { return };
        match result {
            Err(error) => responder.respond(header::failure(&error)),
            Ok(items) if responder.is_stream() => {
                // Owned by the request: it ends with the stream, or when its responder is
                // cancelled (the caller drops or cancels the stream, the server stops reading
                // the connection, the connection ends or the server is aborted).
                tokio::spawn(pump(items, responder, me));
            }
            Ok(_) => {
                let detail = "a streaming handler was called without a stream (use call_stream)";
                let error = ActorError::BadMessage {
                    address: me.address().to_string(),
                    detail: detail.to_owned(),
                };
                responder.respond(header::failure(&error));
            }
        }
    }

    fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    fn begin(&mut self) -> bool {
        self.0.begin()
    }

    async fn cancelled(&mut self) {
        self.0.cancelled().await
    }
}

/// Sends the stream's items as the caller's credit allows, the ready ones packed together,
/// then its end.
async fn pump<T: prost::Message + 'static>(
    mut items: Streaming<T>,
    mut responder: xoscar_pool::Responder,
    me: ActorRef<()>,
) {
    loop {
        let next = tokio::select! {
            biased;
            // Both branches are cancel-safe: `next` on a stream loses no item when not chosen.
            () = responder.cancelled() => return,
            next = AssertUnwindSafe(items.items.next()).catch_unwind() => next,
        };
        let (mut pack, mut count) = (Vec::new(), 0);
        let mut next = Some(next);
        // The first item was awaited; those ready right after it join its pack. (A stream
        // that is pending here registered no waker that matters: it is polled again above.)
        let end = loop {
            let Some(polled) = next.take() else { break None };
            match polled {
                Ok(None) => break Some(Ok(())),
                Ok(Some(item)) => {
                    let item = item.map_err(|failure| ActorError::handler(&me, failure));
                    batch::put_item(&mut pack, item.as_ref());
                    count += 1;
                }
                Err(panic) => {
                    let error = ActorError::panicked(&me, &*panic);
                    tracing::warn!(%error, message = panic_message(&*panic), "a reply stream panicked");
                    break Some(Err(error));
                }
            }
            if count < PACK_ITEMS && pack.len() < PACK_BYTES {
                next = AssertUnwindSafe(items.items.next()).catch_unwind().now_or_never();
            }
        };
        if count > 0 {
            let sent = responder.send_item(header::success(Payloads::from_buf([pack.into()])));
            if sent.await.is_err() {
                // The caller dropped the stream: the producer is dropped here.
                return;
            }
        }
        match end {
            None => {}
            Some(Ok(())) => return responder.respond(Message::default()),
            Some(Err(error)) => return responder.respond(header::failure(&error)),
        }
    }
}
