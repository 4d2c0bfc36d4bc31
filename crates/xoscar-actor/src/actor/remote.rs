//! [`RemoteMessages`]: the messages of an actor type that cross processes, with their codecs.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use foldhash::fast::RandomState;
use parking_lot::RwLock;
use tokio::time::Instant;
use xoscar_pool::Responder;
use xoscar_wire::Payloads;

use crate::actor::batch::{self, Batch};
use crate::actor::envelope::{Answering, Delivery, Discard, Encoded, Envelope, Single};
use crate::actor::streaming::{Items, Streaming};
use crate::wire::codec::Codec;
use crate::{Actor, ActorError, ActorRef, Handler, wire::body};
use xoscar_transport::Address;

/// Decodes a message for the actor `me`; takes the responder out of the slot (`None`: a tell)
/// only once the message decoded.
type Decoder<A> = fn(
    Payloads,
    &ActorRef<A>,
    &mut Option<Responder>,
    Option<Instant>,
) -> Result<Box<dyn Envelope<A>>, prost::DecodeError>;

/// A message name's decoders: the single message's and the batch's (streaming messages do not
/// batch).
type Decoders<A> = (Decoder<A>, Option<Decoder<A>>);

/// The messages an actor type accepts from other processes, filled in
/// [`Actor::remote_messages`]: each a prost message with a prost reply, under a name.
pub struct RemoteMessages<A> {
    /// By name, as bytes: a name read off the wire is looked up without a UTF-8 check.
    decoders: HashMap<&'static [u8], Decoders<A>, RandomState>,
    codecs: HashMap<TypeId, Codec, RandomState>,
    duplicate: Option<&'static str>,
}

impl<A: Actor> RemoteMessages<A> {
    /// Declares `M` a remote message of this actor under `name`, which must be unique within
    /// the actor type and the same in every process (it is what travels on the wire). Batches
    /// of `M` ([`crate::ActorRef::call_batch`]) may then cross processes too.
    pub fn message<M>(&mut self, name: &'static str) -> &mut Self
    where
        A: Handler<M>,
        M: prost::Message + Default + 'static,
        <A as Handler<M>>::Reply: prost::Message + Default,
    {
        let decoders: Decoders<A> = (decode::<A, M>, Some(batch::decode::<A, M>));
        if self.decoders.insert(name.as_bytes(), decoders).is_some() {
            self.duplicate = Some(name);
        }
        let reply = decode_reply::<<A as Handler<M>>::Reply>;
        let codec = Codec { name, batch: false, encode: encode::<M>, decode_reply: reply };
        self.codecs.insert(TypeId::of::<M>(), codec);
        let replies = batch::decode_replies::<<A as Handler<M>>::Reply>;
        let codec = Codec { name, batch: true, encode: batch::encode::<M>, decode_reply: replies };
        self.codecs.insert(TypeId::of::<Batch<M>>(), codec);
        self
    }

    /// Declares `M`, whose handler replies with a [`crate::Streaming`] of `T`, a remote
    /// message of this actor under `name` (unique within the actor type, as for
    /// [`RemoteMessages::message`]): callers in other processes then iterate its items with
    /// [`crate::ActorRef::call_stream`].
    pub fn stream<M, T>(&mut self, name: &'static str) -> &mut Self
    where
        A: Handler<M, Reply = Streaming<T>>,
        M: prost::Message + Default + 'static,
        T: prost::Message + Default + Send + 'static,
    {
        if self.decoders.insert(name.as_bytes(), (decode_stream::<A, M, T>, None)).is_some() {
            self.duplicate = Some(name);
        }
        // A stream's messages are packs of items, each decoded as a batch's replies are.
        let packs = batch::decode_replies::<T>;
        let codec = Codec { name, batch: false, encode: encode::<M>, decode_reply: packs };
        self.codecs.insert(TypeId::of::<M>(), codec);
        self
    }

    /// The codec for sending `M` to this actor type.
    pub(crate) fn codec<M: 'static>(&self) -> Option<&Codec> {
        self.codecs.get(&TypeId::of::<M>())
    }

    /// Decodes a message (or a `batch` of them) that arrived for the actor `me` into an
    /// envelope. The responder moves into the envelope only if it decoded; on an error it is
    /// still in `reply`.
    pub(crate) fn decode(
        &self,
        me: &ActorRef<A>,
        (message, batch): (&[u8], bool),
        body: Payloads,
        reply: &mut Option<Responder>,
        queued: Option<Instant>,
    ) -> Result<Box<dyn Envelope<A>>, ActorError> {
        // Only errors need the name as text (checked then, off the hot path).
        let name = || String::from_utf8_lossy(message);
        let Some(&(single, many)) = self.decoders.get(message) else {
            return Err(ActorError::NoHandler {
                address: me.address().to_string(),
                uid: me.uid().to_owned(),
                actor_type: std::any::type_name::<A>().to_owned(),
                message: name().into_owned(),
            });
        };
        let decoder = match (batch, many) {
            (false, _) => single,
            (true, Some(many)) => many,
            (true, None) => {
                return Err(ActorError::BadMessage {
                    address: me.address().to_string(),
                    detail: format!("message {:?} streams its reply and cannot be batched", name()),
                });
            }
        };
        decoder(body, me, reply, queued).map_err(|error| ActorError::BadMessage {
            address: me.address().to_string(),
            detail: format!("message {:?} for {}: {error}", name(), me.uid()),
        })
    }
}

fn decode<A, M>(
    body: Payloads,
    me: &ActorRef<A>,
    reply: &mut Option<Responder>,
    queued: Option<Instant>,
) -> Result<Box<dyn Envelope<A>>, prost::DecodeError>
where
    A: Handler<M>,
    M: prost::Message + Default + 'static,
    A::Reply: prost::Message,
{
    Ok(envelope::<A, M, Single>(body::decode::<M>(body)?, me, reply, queued))
}

/// The envelope of a decoded `message` for the actor `me`: answered through the responder in
/// `reply` (taken out of it) as `H` writes answers, or, with no responder (a tell), with
/// nobody to answer. The one way every message from another process (single, batch,
/// streaming) reaches a mailbox.
pub(crate) fn envelope<A, M, H>(
    message: M,
    me: &ActorRef<A>,
    reply: &mut Option<Responder>,
    queued: Option<Instant>,
) -> Box<dyn Envelope<A>>
where
    A: Handler<M>,
    M: Send + 'static,
    H: Answering<<A as Handler<M>>::Reply>,
{
    match reply.take() {
        Some(reply) => {
            let deadline = reply.deadline();
            let sink = Encoded::<H>::new(reply, me.cast());
            Box::new(Delivery { message, sink, deadline, queued })
        }
        None => Box::new(Delivery { message, sink: Discard, deadline: None, queued }),
    }
}

fn decode_stream<A, M, T>(
    body: Payloads,
    me: &ActorRef<A>,
    reply: &mut Option<Responder>,
    queued: Option<Instant>,
) -> Result<Box<dyn Envelope<A>>, prost::DecodeError>
where
    A: Handler<M, Reply = Streaming<T>>,
    M: prost::Message + Default + 'static,
    T: prost::Message + 'static,
{
    // Told, the stream it returns is dropped unread.
    Ok(envelope::<A, M, Items>(body::decode::<M>(body)?, me, reply, queued))
}

fn encode<M: prost::Message + 'static>(message: &mut dyn Any) -> Option<Payloads> {
    message.downcast_mut::<M>().map(body::encode_taking)
}

fn decode_reply<R: prost::Message + Default + Send + 'static>(
    body: Payloads,
    _: &Address,
    slot: &mut dyn Any,
) -> Result<(), prost::DecodeError> {
    if let Some(slot) = slot.downcast_mut::<Option<R>>() {
        *slot = Some(body::decode::<R>(body)?);
    }
    Ok(())
}

/// One table per actor type, built on first use and kept for the life of the process.
static TABLES: LazyLock<RwLock<Tables>> = LazyLock::new(RwLock::default);

/// `RemoteMessages<A>` by `TypeId::of::<A>()`.
type Tables = HashMap<TypeId, Arc<dyn Any + Send + Sync>, RandomState>;

/// The remote messages of `A`; an error if it declared a name twice.
pub(crate) fn table<A: Actor>() -> Result<Arc<RemoteMessages<A>>, ActorError> {
    let cached = TABLES.read().get(&TypeId::of::<A>()).cloned();
    let any = match cached {
        Some(any) => any,
        None => {
            let mut table = RemoteMessages {
                decoders: HashMap::default(),
                codecs: HashMap::default(),
                duplicate: None,
            };
            A::remote_messages(&mut table);
            let built: Arc<dyn Any + Send + Sync> = Arc::new(table);
            TABLES.write().entry(TypeId::of::<A>()).or_insert(built).clone()
        }
    };
    let table =
        any.downcast::<RemoteMessages<A>>().map_err(|_| setup("remote table of another type"))?;
    match table.duplicate {
        Some(name) => Err(setup(&format!(
            "{} declares the remote message name {name:?} twice",
            std::any::type_name::<A>()
        ))),
        None => Ok(table),
    }
}

fn setup(reason: &str) -> ActorError {
    ActorError::Setup { address: String::new(), reason: reason.to_owned() }
}
