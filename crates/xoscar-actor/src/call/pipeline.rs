//! The caller's one request pipeline. Every way a ref sends a message (call,
//! call_with_timeout, call_cancellable, tell, call_stream, and the batch forms, which are calls
//! and tells of a [`crate::Batch`]) goes through [`ActorRef::request`]: reach the actor, refuse
//! a message that cannot cross processes before sending anything, send with the deadline or
//! the cancel, decode, report the failure as a call in this process would have it, and count
//! it. What differs is a parameter: how long to wait ([`Wait`]) and what comes back
//! ([`Expect`]: a reply, the mailbox's acceptance, or a stream of items).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use xoscar_pool::{Message, PoolError, RecentConnection};
use xoscar_transport::Address;

use super::client::{Client, Reach};
use crate::actor::batch;
use crate::actor::cell::Cell;
use crate::actor::envelope::Answer as LocalAnswer;
use crate::actor::remote;
use crate::observe::metrics;
use crate::wire::codec::Codec;
use crate::wire::delivery::{self, Delivery};
use crate::wire::header::{self, Answer};
use crate::{Actor, ActorError, ActorRef, Handler};

/// How long a request waits for its answer, and what may end the wait early.
#[derive(Clone, Copy)]
pub(crate) enum Wait<'a> {
    /// As this process's caller is configured: its `call_timeout` across processes (none by
    /// default); in this process, as long as the actor takes.
    Configured,
    /// At most this long, in this process or another. The deadline travels with the message:
    /// an actor that only gets to it later skips it.
    Timeout(Duration),
    /// Until it is answered; the token cancels it (the request may still be answered, by a
    /// handler that took its cancellation).
    Until(&'a CancellationToken),
}

/// What a request expects back, and how each side gets it.
pub(crate) trait Expect<A: Actor, M: Send + 'static> {
    /// What the caller gets.
    type Output;

    /// A tell: answered once the actor's mailbox took it, failures uncounted (they are the
    /// handler's, logged by its pool).
    const TELL: bool = false;

    /// In this process, waiting as configured (the hot path: one future, nothing else):
    /// hands `message` to the actor's cell and waits for what comes back. The error is boxed,
    /// as [`Cell::call`] says why.
    fn local_configured(
        me: &ActorRef<A>,
        cell: &Cell<A>,
        message: M,
    ) -> impl Future<Output = LocalAnswer<Self::Output>> + Send;

    /// In this process: hands `message` to the actor's cell and waits as `wait` says (the
    /// error boxed, as in [`Expect::local_configured`]).
    fn local(
        me: &ActorRef<A>,
        cell: Arc<Cell<A>>,
        message: M,
        wait: Wait<'_>,
    ) -> impl Future<Output = LocalAnswer<Self::Output>> + Send;

    /// Across processes: sends `request` (the message encoded with `codec`) to `endpoint`
    /// (on the connection `recent` remembers, if it still serves), waits as `wait` says, and
    /// decodes the answer.
    fn remote(
        client: &'static Client,
        endpoint: &Address,
        recent: &RecentConnection,
        codec: Codec,
        request: Message,
        wait: Wait<'_>,
    ) -> impl Future<Output = Result<Self::Output, ActorError>> + Send;
}

/// A call: the handler's reply.
pub(crate) struct Reply;

/// A tell: the mailbox took it.
pub(crate) struct Accepted;

impl<A: Handler<M>, M: Send + 'static> Expect<A, M> for Reply {
    type Output = A::Reply;

    fn local_configured(
        _: &ActorRef<A>,
        cell: &Cell<A>,
        message: M,
    ) -> impl Future<Output = LocalAnswer<A::Reply>> + Send {
        cell.call(message, None)
    }

    async fn local(
        me: &ActorRef<A>,
        cell: Arc<Cell<A>>,
        message: M,
        wait: Wait<'_>,
    ) -> LocalAnswer<A::Reply> {
        match wait {
            Wait::Configured => Self::local_configured(me, &cell, message).await,
            Wait::Timeout(timeout) => {
                let deadline = Instant::now() + timeout;
                match tokio::time::timeout_at(deadline, cell.call(message, Some(deadline))).await {
                    Ok(Err(error)) if matches!(*error, ActorError::CallTimedOut { .. }) => {
                        Err(Box::new(me.timed_out(timeout)))
                    }
                    Err(_) => Err(Box::new(me.timed_out(timeout))),
                    Ok(answer) => answer,
                }
            }
            // Boxed: an explicit cancel is rare; it keeps every plain call's future small.
            Wait::Until(cancel) => Box::pin(super::cancellable::call(me, &cell, message, cancel))
                .await
                .map_err(Box::new),
        }
    }

    async fn remote(
        client: &'static Client,
        endpoint: &Address,
        recent: &RecentConnection,
        codec: Codec,
        request: Message,
        wait: Wait<'_>,
    ) -> Result<A::Reply, ActorError> {
        let response = send(client, endpoint, recent, request, wait).await?;
        let bad = |detail: String| ActorError::BadReply { address: endpoint.to_string(), detail };
        let Answer::Body(body) = header::answer(response, endpoint)? else {
            return Err(bad("a call answered with no reply".to_owned()));
        };
        let mut reply: Option<A::Reply> = None;
        (codec.decode_reply)(body, endpoint, &mut reply)
            .map_err(|e| bad(format!("reply to {}: {e}", codec.name)))?;
        reply.ok_or_else(|| bad("a reply of another type".to_owned()))
    }
}

impl<A: Handler<M>, M: Send + 'static> Expect<A, M> for Accepted {
    type Output = ();
    const TELL: bool = true;

    fn local_configured(
        _: &ActorRef<A>,
        cell: &Cell<A>,
        message: M,
    ) -> impl Future<Output = LocalAnswer<()>> + Send {
        cell.tell(message)
    }

    async fn local(
        _: &ActorRef<A>,
        cell: Arc<Cell<A>>,
        message: M,
        _: Wait<'_>,
    ) -> LocalAnswer<()> {
        cell.tell(message).await
    }

    async fn remote(
        client: &'static Client,
        endpoint: &Address,
        recent: &RecentConnection,
        _: Codec,
        request: Message,
        wait: Wait<'_>,
    ) -> Result<(), ActorError> {
        let response = send(client, endpoint, recent, request, wait).await?;
        header::answer(response, endpoint).map(drop)
    }
}

impl<A: Actor> ActorRef<A> {
    /// Sends `message` as `E` expects and waits as `wait` says: the one path of every call,
    /// tell and stream a ref makes.
    pub(crate) async fn request<M: Send + 'static, E: Expect<A, M>>(
        &self,
        message: M,
        wait: Wait<'_>,
    ) -> Result<E::Output, ActorError> {
        if let Wait::Until(cancel) = wait
            && cancel.is_cancelled()
        {
            // Cancelled before sending: nothing is sent.
            return Err(ActorError::cancelled(self)).inspect_err(metrics::call_failed);
        }
        // One level of future on the local path (its cost is counted per call): the remote
        // half is a future of its own, only built for a remote actor. The error stays boxed
        // up to here (see `Cell::call`): only this future's output holds it inline.
        let answer: LocalAnswer<E::Output> = match self.reach() {
            Ok(Reach::Local(cell)) => match wait {
                Wait::Configured => E::local_configured(self, &cell, message).await,
                _ => E::local(self, cell, message, wait).await,
            },
            Ok(Reach::Remote(client, endpoint)) => self
                .request_remote::<M, E>(client, &endpoint, message, wait)
                .await
                .map_err(Box::new),
            Err(error) => Err(Box::new(error)),
        };
        match answer {
            Ok(output) => Ok(output),
            Err(error) => {
                if !E::TELL {
                    metrics::call_failed(&error);
                }
                Err(*error)
            }
        }
    }

    /// The remote half of [`ActorRef::request`]: encode (refusing a message that cannot cross
    /// processes before anything is sent), send, and see the error as a local one.
    async fn request_remote<M: Send + 'static, E: Expect<A, M>>(
        &self,
        client: &'static Client,
        endpoint: &Address,
        message: M,
        wait: Wait<'_>,
    ) -> Result<E::Output, ActorError> {
        let (codec, header) = self.route::<M>(E::TELL, || {
            let codec = codec::<A, M>(endpoint)?;
            Ok((codec, request_header(codec, E::TELL, self.uid())))
        })?;
        let mut message = message;
        let body = (codec.encode)(&mut message).ok_or_else(|| not_remote::<A, M>(endpoint))?;
        let request = Message::new(header, body);
        let recent = self.recent_connection();
        E::remote(client, endpoint, recent, codec, request, wait)
            .await
            .map_err(|e| self.as_seen_here(e))
    }

    /// A remote request's error as one in this process would have it: the caller's timeout
    /// is [`ActorError::CallTimedOut`], its cancel [`ActorError::Cancelled`], and a handler
    /// missing because the actor is of another type than this ref's [`ActorError::WrongType`].
    fn as_seen_here(&self, error: ActorError) -> ActorError {
        match error {
            ActorError::Connection(PoolError::CallTimedOut { timeout, .. }) => {
                self.timed_out(timeout)
            }
            ActorError::Connection(PoolError::Cancelled { .. }) => ActorError::cancelled(self),
            ActorError::NoHandler { address, uid, actor_type, .. }
                if actor_type != std::any::type_name::<A>() =>
            {
                let expected = std::any::type_name::<A>().to_owned();
                ActorError::WrongType { address, uid, expected, actual: actor_type }
            }
            other => other,
        }
    }

    /// This ref's call gave up after `timeout`.
    fn timed_out(&self, timeout: Duration) -> ActorError {
        let (address, uid) = (self.address().to_string(), self.uid().to_owned());
        ActorError::CallTimedOut { address, uid, timeout }
    }
}

/// Sends `request` to `endpoint` (on the connection `recent` remembers, if it still serves)
/// and waits for its answer as `wait` says. Not an `async fn`: the pool's call future is
/// returned as it is, one level less per call.
fn send<'a>(
    client: &'a Client,
    endpoint: &'a Address,
    recent: &'a RecentConnection,
    request: Message,
    wait: Wait<'a>,
) -> impl Future<Output = Result<Message, PoolError>> + Send + 'a {
    let timeout = match wait {
        Wait::Configured => client.pool.config().call_timeout(),
        Wait::Timeout(timeout) => Some(timeout),
        Wait::Until(cancel) => {
            // Boxed: an explicit cancel is rare; it keeps every plain call's future small.
            return Either::Left(Box::pin(client.pool.call_cancellable(endpoint, request, cancel)));
        }
    };
    Either::Right(client.pool.call_remembering(endpoint, request, timeout, recent))
}

/// The codec of `M` for `A`; [`ActorError::NotRemote`] if `M` is not one of `A`'s remote
/// messages.
fn codec<A: Actor, M: 'static>(endpoint: &Address) -> Result<Codec, ActorError> {
    let table = remote::table::<A>()?;
    table.codec::<M>().copied().ok_or_else(|| not_remote::<A, M>(endpoint))
}

/// `M` cannot be sent to an `A` at `endpoint`.
fn not_remote<A, M>(endpoint: &Address) -> ActorError {
    ActorError::NotRemote {
        address: endpoint.to_string(),
        actor_type: std::any::type_name::<A>().to_owned(),
        message: std::any::type_name::<M>().to_owned(),
    }
}

/// The request header of a message encoded with `codec` for the actor `uid`.
fn request_header(codec: Codec, tell: bool, uid: &str) -> bytes::Bytes {
    let delivery = Delivery { tell, uid, message: codec.name, hops: 0 };
    match codec.batch {
        false => delivery::encode(delivery),
        true => batch::request_header(delivery),
    }
}
