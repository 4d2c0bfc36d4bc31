//! Streaming replies: a handler returns a [`Streaming`], a caller iterates a
//! [`crate::ReplyStream`] ([`ActorRef::call_stream`]).
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

use futures_util::{FutureExt, Stream, StreamExt};
use xoscar_pool::Message;
use xoscar_wire::Payloads;

use crate::actor::envelope::{Answer, Answering, Encoded};
use crate::error::panic_message;
use crate::wire::header;
use crate::{ActorError, ActorRef, Failure, actor::batch};

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
    pub(crate) items: Pin<Box<dyn Stream<Item = Result<T, Failure>> + Send>>,
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

/// A remote streaming call's answer: the actor's pool pumps the stream into the caller's
/// response stream.
pub(crate) struct Items;

impl<T: prost::Message + 'static> Answering<Streaming<T>> for Items {
    fn answer(encoded: Encoded<Self>, result: Answer<Streaming<T>>) {
        let me = encoded.me().clone();
        let Some(responder) = encoded.into_responder() else { return };
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
            let sent = responder.send_item(header::success(Payloads::from([pack.into()])));
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
