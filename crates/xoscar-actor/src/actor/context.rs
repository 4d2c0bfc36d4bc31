//! [`Context`]: what a handler knows of its actor and pool, and how it defers its reply.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::actor::cancel::CallSignal;
use crate::actor::core::Registration;
use crate::{Actor, ActorRef, Cancellation, Failure, PoolHandle};

/// A reply handed to [`Context::reply_later`], type-erased until the envelope that knows the
/// reply type takes it back.
pub(crate) type DelegatedReply<R> = Pin<Box<dyn Future<Output = Result<R, Failure>> + Send>>;

/// Given to every handler and hook of an actor: its own reference, its pool, and
/// [`Context::reply_later`].
pub struct Context<A> {
    me: ActorRef<A>,
    pool: PoolHandle,
    /// Cancelled when the actor ends: the owner of the futures given to `reply_later`.
    lifetime: CancellationToken,
    /// In a `Mutex` only so that `Context` is `Sync` (a handler may hold `&Context` across an
    /// await); it is only ever reached through `&mut self`, with `get_mut`, never locked.
    delegated: std::sync::Mutex<Option<Box<dyn Any + Send>>>,
    /// The actor's entry in its pool, held by the actor's main context only (not by the
    /// forks of a concurrent actor): dropping it forgets the uid and ends `lifetime`.
    registration: Option<Registration>,
    /// The cancel signal of the call being handled (reset for each).
    call: Arc<CallSignal>,
    /// Replies handed to `reply_later` by told messages that may run at once (the actor's
    /// mailbox capacity), shared by the forks of a concurrent actor.
    told_replies: Arc<tokio::sync::Semaphore>,
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(me: ActorRef<A>, pool: PoolHandle, registration: Registration) -> Self {
        let lifetime = registration.lifetime().clone();
        let told = tokio::sync::Semaphore::new(pool.core.mailbox_capacity);
        Context {
            me,
            pool,
            lifetime,
            delegated: Default::default(),
            registration: Some(registration),
            call: Arc::default(),
            told_replies: Arc::new(told),
        }
    }

    /// Forgets the actor's uid in its pool now (new calls find no actor) and ends the futures
    /// given to `reply_later`. For the main context of a serial actor; a no-op on forks.
    pub(crate) fn retire(&mut self) {
        self.registration.take();
    }

    /// [`Context::retire`] for an actor that stopped by itself after a panic: what placed it
    /// is told too (see `Registration::retire_reporting`); the receiver completes once it was.
    pub(crate) fn retire_reporting(&mut self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        self.registration.take()?.retire_reporting()
    }

    /// A context for one handler of a concurrent actor.
    pub(crate) fn fork(&self) -> Self {
        Context {
            me: self.me.clone(),
            pool: self.pool.clone(),
            lifetime: self.lifetime.clone(),
            delegated: Default::default(),
            registration: None,
            call: Arc::default(),
            told_replies: self.told_replies.clone(),
        }
    }

    /// This actor's reference (to tell itself, or to pass to others so they can call back).
    pub fn actor_ref(&self) -> &ActorRef<A> {
        &self.me
    }

    /// This actor's uid.
    pub fn uid(&self) -> &str {
        self.me.uid()
    }

    /// The pool this actor lives in: create more actors there.
    pub fn pool(&self) -> &PoolHandle {
        &self.pool
    }

    /// The cancellation of the call being handled. Taking it means this handler answers a
    /// cancel itself: it is no longer dropped where it waits when its caller cancels (see
    /// [`Cancellation`]). A handler that never takes it is dropped at a cancel, as any
    /// cancelled Rust future is; one that must keep its actor's state consistent across an
    /// await takes it and decides what to finish.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use xoscar_actor::{Actor, Context, Failure, Handler};
    /// # struct Worker;
    /// # impl Actor for Worker {}
    /// # struct Work;
    /// impl Handler<Work> for Worker {
    ///     type Reply = &'static str;
    ///     async fn handle(&mut self, _: Work, ctx: &mut Context<Self>) -> Result<&'static str, Failure> {
    ///         let cancel = ctx.cancellation();
    ///         tokio::select! {
    ///             _ = tokio::time::sleep(Duration::from_secs(60)) => Ok("done"),
    ///             // The caller of `call_cancellable` gets this answer.
    ///             _ = cancel.cancelled() => Ok("stopped early, state saved"),
    ///         }
    ///     }
    /// }
    /// ```
    pub fn cancellation(&self) -> Cancellation {
        self.call.watch()
    }

    /// The cancel signal, for the runner to hand to each envelope beside the context (which
    /// the handler borrows while the envelope watches for a cancel).
    pub(crate) fn call_signal(&self) -> Arc<CallSignal> {
        self.call.clone()
    }

    /// Frees the actor now and answers the caller later with what `reply` produces
    /// (xoscar's `no_lock`). Return the value this gives from the handler:
    ///
    /// ```
    /// # use xoscar_actor::{Actor, ActorRef, Context, Failure, Handler};
    /// # struct Front { back: ActorRef<Back> }
    /// # impl Actor for Front {}
    /// # struct Back;
    /// # impl Actor for Back {}
    /// # impl Handler<u32> for Back {
    /// #     type Reply = u32;
    /// #     async fn handle(&mut self, n: u32, _: &mut Context<Self>) -> Result<u32, Failure> { Ok(n) }
    /// # }
    /// impl Handler<u32> for Front {
    ///     type Reply = u32;
    ///     async fn handle(&mut self, n: u32, ctx: &mut Context<Self>) -> Result<u32, Failure> {
    ///         let back = self.back.clone();
    ///         // Front handles other messages (even ones Back sends it) while Back works.
    ///         ctx.reply_later(async move { Ok(back.call(n).await? + 1) })
    ///     }
    /// }
    /// ```
    ///
    /// The future runs on the pool's runtime without `&mut self`. Its result (an error or a
    /// panic too) goes to the caller; if the actor stops first, the caller gets
    /// [`crate::ActorError::Stopped`]. Calling this more than once in a handler keeps the
    /// last; once called, the handler's own return value is ignored. For told messages (no
    /// caller waits to bound them) at most as many such replies run at once as the actor's
    /// mailbox holds; at that bound the actor waits before taking its next message (so keep
    /// the mailbox larger than the told replies that call back into this same actor).
    pub fn reply_later<R, F>(&mut self, reply: F) -> Result<R, Failure>
    where
        R: Send + 'static,
        F: Future<Output = Result<R, Failure>> + Send + 'static,
    {
        let boxed: DelegatedReply<R> = Box::pin(reply);
        *self.delegated_slot() = Some(Box::new(boxed));
        Err(Failure::delegated())
    }

    /// The deferred reply, if the handler gave one: `Some(Err)` when its type is not `R`.
    #[inline]
    pub(crate) fn take_delegated<R: 'static>(&mut self) -> Option<Result<DelegatedReply<R>, ()>> {
        let delegated = self.delegated_slot().take()?;
        Some(delegated.downcast::<DelegatedReply<R>>().map(|boxed| *boxed).map_err(|_| ()))
    }

    fn delegated_slot(&mut self) -> &mut Option<Box<dyn Any + Send>> {
        // A panic while the slot was borrowed cannot leave it half-written: take the value.
        self.delegated.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether this context is a serial actor's own (the forks of a concurrent actor's
    /// handlers hold no registration).
    pub(crate) fn is_serial(&self) -> bool {
        self.registration.is_some()
    }

    pub(crate) fn lifetime(&self) -> &CancellationToken {
        &self.lifetime
    }

    /// The permits for replies handed to `reply_later` by told messages.
    pub(crate) fn told_replies(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.told_replies
    }
}
