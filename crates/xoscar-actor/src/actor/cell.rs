//! An actor's entry in its pool: its mailbox, typed for callers in this process and
//! type-erased for the pool's registry and remote callers.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use xoscar_pool::Responder;
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use crate::actor::envelope::{Answer, Delivery, Discard, Envelope};
use crate::actor::mailbox;
use crate::actor::remote::RemoteMessages;
use crate::{Actor, ActorError, ActorRef, Handler};

/// What a mailbox carries.
pub(crate) enum Mail<A> {
    Deliver(Box<dyn Envelope<A>>),
    /// Destroy: after every message before it, run the stop hook and report.
    Stop(oneshot::Sender<Result<(), ActorError>>),
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The result of an actor's stop hook, once its stop is queued.
pub(crate) type StopHook = BoxFuture<'static, Result<(), ActorError>>;

/// One actor, as its pool and its callers see it.
pub(crate) struct Cell<A> {
    /// Bounded (`mailbox_capacity`): a full mailbox makes senders wait, and remote senders
    /// hold their connection's in-flight slot meanwhile, so backpressure reaches the caller.
    /// (A serial actor's task holds up to `runner::TAKEN_AT_ONCE` more, taken out at once.)
    pub(crate) mailbox: mailbox::Sender<Mail<A>>,
    pub(crate) me: ActorRef<A>,
    pub(crate) remote: Arc<RemoteMessages<A>>,
    pub(crate) incarnation: u64,
    pub(crate) task: OnceLock<AbortHandle>,
    /// Cleared when the actor leaves its pool's registry (destroyed), so that refs caching
    /// this cell stop using it at once, before its mailbox closes.
    pub(crate) registered: AtomicBool,
    /// The pool has a slow-call threshold: stamp messages when they are queued.
    pub(crate) logs_slow_calls: bool,
}

impl<A: Actor> Cell<A> {
    /// Now, if the pool logs slow calls (which count from the mailbox); else nothing, free.
    pub(crate) fn queued_at(&self) -> Option<Instant> {
        self.logs_slow_calls.then(Instant::now)
    }

    /// Still in its pool's registry and its mailbox open.
    pub(crate) fn is_live(&self) -> bool {
        self.registered.load(Ordering::Acquire) && !self.mailbox.is_closed()
    }
    /// Hands `message` to the actor and waits for its reply; an actor that gets to it only
    /// after `deadline` skips it. The error is boxed, as on every level of the local path
    /// below the ref's own future: a `Result` of a small reply fits two registers there,
    /// where one with `ActorError` inline (120 bytes) was copied whole at every level.
    pub(crate) async fn call<M: Send + 'static>(
        &self,
        message: M,
        deadline: Option<Instant>,
    ) -> Answer<A::Reply>
    where
        A: Handler<M>,
    {
        let (sink, reply) = oneshot::channel::<Answer<A::Reply>>();
        let queued = self.queued_at();
        self.post(Box::new(Delivery { message, sink, deadline, queued })).await?;
        match reply.await {
            Ok(answer) => answer,
            Err(_) => Err(Box::new(ActorError::stopped(&self.me))),
        }
    }

    /// Hands `message` to the actor; returns once its mailbox took it.
    pub(crate) async fn tell<M: Send + 'static>(&self, message: M) -> Answer<()>
    where
        A: Handler<M>,
    {
        let queued = self.queued_at();
        self.post(Box::new(Delivery { message, sink: Discard, deadline: None, queued })).await
    }

    /// Queues `envelope`, waiting for room only when the mailbox is full.
    pub(crate) async fn post(&self, envelope: Box<dyn Envelope<A>>) -> Answer<()> {
        match self.try_post(envelope)? {
            None => Ok(()),
            Some(mail) => self.mailbox.send(mail).await.map_err(|_| self.stopped()),
        }
    }

    /// Queues `envelope` if there is room (`try_send` first: it skips the wait's future);
    /// gives the mail back when the mailbox is full.
    fn try_post(&self, envelope: Box<dyn Envelope<A>>) -> Answer<Option<Mail<A>>> {
        match self.mailbox.try_send(Mail::Deliver(envelope)) {
            Ok(()) => Ok(None),
            Err(mailbox::TrySendError::Full(mail)) => Ok(Some(mail)),
            Err(mailbox::TrySendError::Closed(_)) => Err(self.stopped()),
        }
    }

    /// [`ActorError::Stopped`] at this actor, boxed.
    #[cold]
    fn stopped(&self) -> Box<ActorError> {
        Box::new(ActorError::stopped(&self.me))
    }
}

/// A [`Cell`] of any actor type.
pub(crate) trait AnyCell: Send + Sync + 'static {
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn as_any(&self) -> &dyn Any;
    fn address(&self) -> &Address;
    fn uid(&self) -> &str;
    fn actor_type(&self) -> &'static str;
    fn incarnation(&self) -> u64;
    /// Out of its pool's registry: no new mail through cached refs.
    fn unregister(&self);
    fn abort(&self);
    /// Decodes a remote message for this actor and queues it. `reply`: who gets the encoded
    /// reply (`None` for a tell); it moves with the message once that decoded, and is still
    /// here after a decode error. `Ok(None)`: queued; `Ok(Some(wait))`: the mailbox is full,
    /// and `wait` queues it once there is room.
    /// `message`: the remote message name, and whether the body is a batch of them.
    fn deliver_remote(
        &self,
        message: (&[u8], bool),
        body: Payloads,
        reply: &mut Option<Responder>,
    ) -> Result<Option<BoxFuture<'static, Result<(), ActorError>>>, ActorError>;
    /// Queues a stop behind every message already accepted (waiting for room in the mailbox);
    /// then the returned future waits for the stop hook.
    fn queue_stop(&self) -> BoxFuture<'static, Result<StopHook, ActorError>>;
}

impl<A: Actor> AnyCell for Cell<A> {
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn address(&self) -> &Address {
        self.me.address()
    }

    fn uid(&self) -> &str {
        self.me.uid()
    }

    fn actor_type(&self) -> &'static str {
        std::any::type_name::<A>()
    }

    fn incarnation(&self) -> u64 {
        self.incarnation
    }

    fn unregister(&self) {
        self.registered.store(false, Ordering::Release);
    }

    fn abort(&self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }

    fn deliver_remote(
        &self,
        message: (&[u8], bool),
        body: Payloads,
        reply: &mut Option<Responder>,
    ) -> Result<Option<BoxFuture<'static, Result<(), ActorError>>>, ActorError> {
        let envelope = self.remote.decode(&self.me, message, body, reply, self.queued_at())?;
        let Some(mail) = self.try_post(envelope).map_err(|error| *error)? else {
            return Ok(None);
        };
        let (mailbox, me) = (self.mailbox.clone(), self.me.clone());
        Ok(Some(Box::pin(
            async move { mailbox.send(mail).await.map_err(|_| ActorError::stopped(&me)) },
        )))
    }

    fn queue_stop(&self) -> BoxFuture<'static, Result<StopHook, ActorError>> {
        let mailbox = self.mailbox.clone();
        let me = self.me.clone();
        Box::pin(async move {
            let (done, stopped) = oneshot::channel();
            mailbox.send(Mail::Stop(done)).await.map_err(|_| ActorError::stopped(&me))?;
            Ok(Box::pin(
                async move { stopped.await.unwrap_or_else(|_| Err(ActorError::stopped(&me))) },
            ) as StopHook)
        })
    }
}
