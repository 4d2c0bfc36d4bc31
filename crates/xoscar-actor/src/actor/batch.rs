//! Batches: many messages of one type to one actor as one request and one mailbox message,
//! with one reply per message ([`ActorRef::call_batch`], [`ActorRef::tell_batch`]).
//!
//! On the wire a batch is a `call_batch` / `tell_batch` request whose payload 0 is a
//! `BatchBody` (each message prost-encoded, in order) and whose reply body is a `BatchReply`
//! (per message: its encoded reply or its failure).

use std::any::Any;

use bytes::Bytes;
use prost::Message as _;
use tokio::time::Instant;
use xoscar_pool::Responder;
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use crate::actor::envelope::{Answer, Answering, Encoded, Envelope};
use crate::pb::{self, batch_item::Outcome, request::Kind};
use crate::{
    Actor, ActorError, ActorRef, Context, Failure, Handler, actor::remote, wire::body, wire::header,
};

/// Messages of one type sent together to one actor: handled as one mailbox message by
/// [`Handler::handle_batch`], answered with one result per message, in order. Built by
/// [`ActorRef::call_batch`] and [`ActorRef::tell_batch`]; every actor handles `Batch<M>` for
/// each `M` it handles.
pub struct Batch<M> {
    messages: Vec<M>,
    /// Told: nobody gets the per-message errors, so they are logged.
    tell: bool,
}

impl<M> Batch<M> {
    /// A batch of `messages` for a call.
    pub fn new(messages: Vec<M>) -> Self {
        Batch { messages, tell: false }
    }

    /// The messages, in order.
    pub fn messages(&self) -> &[M] {
        &self.messages
    }
}

impl<A, M> Handler<Batch<M>> for A
where
    A: Handler<M>,
    M: Send + 'static,
{
    type Reply = Vec<Result<<A as Handler<M>>::Reply, ActorError>>;

    async fn handle(
        &mut self,
        batch: Batch<M>,
        ctx: &mut Context<Self>,
    ) -> Result<Self::Reply, Failure> {
        let Batch { messages, tell } = batch;
        let count = messages.len();
        let replies = <A as Handler<M>>::handle_batch(self, messages, ctx).await;
        if replies.len() != count {
            return Err(Failure::msg(format!(
                "handle_batch returned {} results for {count} messages",
                replies.len()
            )));
        }
        let me = ctx.actor_ref();
        Ok(replies
            .into_iter()
            .map(|reply| {
                reply.map_err(|failure| {
                    let error = ActorError::handler(me, failure);
                    if tell {
                        tracing::warn!(%error, "a message of a told batch failed");
                    }
                    error
                })
            })
            .collect())
    }
}

impl<A: Actor> ActorRef<A> {
    /// Sends `messages` as one request, handled as one mailbox message (nothing else runs on a
    /// serial actor in between), and waits for one result per message, in order. An error of
    /// one message is its own result and does not stop the others; the outer error is the
    /// batch's as a whole (no such actor, a connection error, a panic, a cancel).
    ///
    /// The actor's [`Handler::handle_batch`] handles them: by default each in turn, or all at
    /// once if the actor provides it. In this process the values are handed over as they
    /// are; to another process each is encoded under the message's remote name, all in one
    /// frame, at most [`MAX_BATCH`] of them (a larger batch is refused as a bad message).
    /// Cancellation and timeouts apply to the whole batch, as to a [`ActorRef::call`].
    pub async fn call_batch<M: Send + 'static>(
        &self,
        messages: Vec<M>,
    ) -> Result<Vec<Result<<A as Handler<M>>::Reply, ActorError>>, ActorError>
    where
        A: Handler<M>,
    {
        self.call::<Batch<M>>(Batch::new(messages)).await
    }

    /// Sends `messages` as one request without waiting for their replies: returns once the
    /// actor's mailbox accepted the batch. Errors of single messages are logged by the actor's
    /// pool.
    pub async fn tell_batch<M: Send + 'static>(&self, messages: Vec<M>) -> Result<(), ActorError>
    where
        A: Handler<M>,
    {
        self.tell::<Batch<M>>(Batch { messages, tell: true }).await
    }
}

/// The request header of a batch.
pub(crate) fn request_header(delivery: crate::wire::delivery::Delivery<'_>) -> Bytes {
    let crate::wire::delivery::Delivery { tell, uid, message, hops } = delivery;
    let delivery = pb::Delivery { uid: uid.to_owned(), message: message.to_owned(), hops };
    let kind = if tell { Kind::TellBatch(delivery) } else { Kind::CallBatch(delivery) };
    pb::Request { kind: Some(kind) }.encode_to_vec().into()
}

/// Encodes a `Batch<M>` (given as `&mut dyn Any`, left as it was) as a `BatchBody`, in one
/// pass and one buffer.
pub(crate) fn encode<M: prost::Message + 'static>(batch: &mut dyn Any) -> Option<Payloads> {
    let batch = batch.downcast_ref::<Batch<M>>()?;
    let len = batch.messages.iter().map(|m| prost::encoding::message::encoded_len(1, m)).sum();
    let mut buf = Vec::with_capacity(len);
    for message in &batch.messages {
        prost::encoding::message::encode(1, message, &mut buf);
    }
    Some(Payloads::from([buf.into()]))
}

/// Decodes a batch that arrived for the actor `me` into one envelope; the responder moves into
/// it only if every message decoded.
pub(crate) fn decode<A, M>(
    body: Payloads,
    me: &ActorRef<A>,
    reply: &mut Option<Responder>,
    queued: Option<Instant>,
) -> Result<Box<dyn Envelope<A>>, prost::DecodeError>
where
    A: Handler<M>,
    M: prost::Message + Default + 'static,
    <A as Handler<M>>::Reply: prost::Message,
{
    let messages = entries(body)?.into_iter().map(M::decode).collect::<Result<Vec<M>, _>>()?;
    let batch = Batch { messages, tell: reply.is_none() };
    Ok(remote::envelope::<A, Batch<M>, Many>(batch, me, reply, queued))
}

/// A remote batch's answer: the replies encoded into one `BatchReply`.
pub(crate) struct Many;

impl<R: prost::Message + 'static> Answering<Vec<Result<R, ActorError>>> for Many {
    fn answer(encoded: Encoded<Self>, result: Answer<Vec<Result<R, ActorError>>>) {
        encoded.answer(match result {
            Ok(replies) => {
                let mut body = Vec::new();
                for reply in &replies {
                    put_item(&mut body, reply.as_ref());
                }
                header::success(Payloads::from([body.into()]))
            }
            Err(error) => header::failure(&error),
        });
    }
}

/// The most messages one batch, or replies one batch (or stream message) answer, may carry
/// across processes: a peer cannot make a small frame decode into an unbounded number of
/// values (an empty message is 2 bytes on the wire).
pub const MAX_BATCH: usize = 65_536;

/// The entries of field 1 of a `BatchBody` or `BatchReply` body, sliced out of it (other
/// fields skipped); at most [`MAX_BATCH`].
fn entries(body: Payloads) -> Result<Vec<Bytes>, prost::DecodeError> {
    use prost::encoding::{DecodeContext, WireType, decode_key, skip_field};
    let mut buf = body::join(body);
    let mut entries = Vec::new();
    while !buf.is_empty() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        if tag != 1 || wire_type != WireType::LengthDelimited {
            skip_field(wire_type, tag, &mut buf, DecodeContext::default())?;
            continue;
        }
        if entries.len() == MAX_BATCH {
            // prost offers no other public constructor of a custom decode error.
            #[allow(deprecated)]
            return Err(prost::DecodeError::new(format!("more than {MAX_BATCH} batch entries")));
        }
        let mut entry = Bytes::new();
        prost::encoding::bytes::merge(wire_type, &mut entry, &mut buf, DecodeContext::default())?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Appends one `BatchReply.items` entry to `body`: the reply prost-encoded in place (no
/// buffer of its own), or the failure.
pub(crate) fn put_item<R: prost::Message>(body: &mut Vec<u8>, item: Result<&R, &ActorError>) {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
    match item {
        Ok(reply) => {
            let len = reply.encoded_len();
            let inner = key_len(1) + encoded_len_varint(len as u64) + len;
            body.reserve(key_len(1) + encoded_len_varint(inner as u64) + inner);
            encode_key(1, WireType::LengthDelimited, body);
            encode_varint(inner as u64, body);
            encode_key(1, WireType::LengthDelimited, body);
            encode_varint(len as u64, body);
            reply.encode_raw(body);
        }
        Err(error) => {
            let item = pb::BatchItem { outcome: Some(Outcome::Failure(header::describe(error))) };
            prost::encoding::message::encode(1, &item, body);
        }
    }
}

/// Decodes a `BatchReply` from `endpoint` into the caller's `Option<Vec<Result<R, _>>>`.
pub(crate) fn decode_replies<R: prost::Message + Default + Send + 'static>(
    body: Payloads,
    endpoint: &Address,
    slot: &mut dyn Any,
) -> Result<(), prost::DecodeError> {
    let Some(slot) = slot.downcast_mut::<Option<Vec<Result<R, ActorError>>>>() else {
        return Ok(());
    };
    let items = entries(body)?;
    let mut replies = Vec::with_capacity(items.len());
    for item in items {
        let item = pb::BatchItem::decode(item)?;
        replies.push(match item.outcome {
            Some(Outcome::Reply(reply)) => Ok(R::decode(reply)?),
            Some(Outcome::Failure(failure)) => Err(header::rebuild(failure, endpoint)),
            None => Err(ActorError::BadReply {
                address: endpoint.to_string(),
                detail: "a batch item with no outcome".to_owned(),
            }),
        });
    }
    *slot = Some(replies);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replies written in place by `put_item` are exactly prost's `BatchReply`, and read back.
    #[test]
    fn items_written_in_place_are_prost_bytes() {
        let failure = ActorError::NotFound { address: "inproc://x".into(), uid: "a".into() };
        let replies: Vec<Result<u64, ActorError>> =
            vec![Ok(7), Ok(0), Err(failure.clone()), Ok(300)];
        let mut body = Vec::new();
        for reply in &replies {
            put_item(&mut body, reply.as_ref());
        }
        let items = replies.iter().map(|reply| pb::BatchItem {
            outcome: Some(match reply {
                Ok(value) => Outcome::Reply(value.encode_to_vec().into()),
                Err(error) => Outcome::Failure(header::describe(error)),
            }),
        });
        assert_eq!(body, pb::BatchReply { items: items.collect() }.encode_to_vec());
        let endpoint: Address = "inproc://x".parse().unwrap();
        let mut slot: Option<Vec<Result<u64, ActorError>>> = None;
        decode_replies::<u64>(Payloads::from([body.into()]), &endpoint, &mut slot).unwrap();
        let read = slot.unwrap();
        assert_eq!(read.iter().filter_map(|r| r.as_ref().ok()).collect::<Vec<_>>(), [&7, &0, &300]);
        assert!(matches!(&read[2], Err(ActorError::NotFound { uid, .. }) if uid == "a"));
    }

    /// A small frame of empty entries cannot decode into more than `MAX_BATCH` values.
    #[test]
    fn more_entries_than_a_batch_holds_are_refused() {
        let at_most = [10u8, 0].repeat(MAX_BATCH);
        assert_eq!(entries(Payloads::from([at_most.clone().into()])).unwrap().len(), MAX_BATCH);
        let one_more = [at_most, vec![10, 0]].concat();
        assert!(entries(Payloads::from([one_more.into()])).is_err());
    }
}
