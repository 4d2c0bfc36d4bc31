//! A message on its way through a mailbox, and where its reply goes.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;

use futures_util::FutureExt;
use std::time::Duration;
use tracing::Instrument;

use tokio::sync::oneshot;
use tokio::time::Instant;
use xoscar_pool::{Message, Responder};

use crate::actor::cancel::CallSignal;
use crate::actor::cell::BoxFuture;
use crate::actor::context::DelegatedReply;
use crate::actor::overlap;
use crate::{
    Actor, ActorError, ActorRef, Context, Failure, Handler, observe::debug, observe::metrics,
    wire::body, wire::header,
};

/// Bytes kept in an actor's task for the future of the handler it runs. A larger future (a
/// handler holding much across an await) is boxed instead, as every one was before.
const HANDLING_INLINE: usize = 512;

/// A handler's future, as its actor's task awaits it: held in the task (pinned where it is
/// made, see `runner`), so a handler that answers at once costs no allocation.
pub(crate) type Handling<'a> = stackfuture::StackFuture<'a, Outcome, HANDLING_INLINE>;

/// How a handler ended, as far as its actor is concerned.
pub(crate) enum Outcome {
    Done,
    /// The handler panicked: a serial actor stops.
    Panicked,
    /// Done, but the actor must finish this before its next message (a told reply waiting
    /// for a permit: the bound on them).
    Wait(BoxFuture<'static, ()>),
}

/// A message for an actor of type `A`, with its reply destination, type-erased so that one
/// mailbox carries every message type.
pub(crate) trait Envelope<A>: Send {
    /// Handles the message; `call` is `ctx`'s cancel signal, passed beside it because the
    /// handler borrows `ctx` while the envelope watches for a cancel.
    fn handle<'a>(
        self: Box<Self>,
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
        call: &'a CallSignal,
    ) -> Handling<'a>;

    /// Answers the message with `error` without handling it (it could not be handed to a
    /// handler: cloning a concurrent actor panicked).
    fn fail(self: Box<Self>, error: ActorError);
}

/// A reply or why there is none. The error is boxed: `ActorError` is large, and the success
/// path moves this value through the oneshot and several futures.
pub(crate) type Answer<R> = Result<R, Box<ActorError>>;

/// Where a reply goes, and whether anyone still waits for it.
pub(crate) trait Sink<R>: Send + 'static {
    fn send(self, result: Answer<R>);

    /// The caller gave up (dropped its call, timed out, lost its connection).
    fn is_cancelled(&self) -> bool;

    /// The handler is about to start: from now on a cancel is its to answer. False when the
    /// caller gave up already (skip the message).
    fn begin(&mut self) -> bool {
        !self.is_cancelled()
    }

    /// Completes when the caller gives up.
    fn cancelled(&mut self) -> impl Future<Output = ()> + Send;

    /// The remote caller's address, for the call's tracing span; `None` in this process.
    fn peer(&self) -> Option<&str> {
        None
    }

    /// Whether a caller waits for the answer (false for a tell).
    fn has_caller(&self) -> bool {
        true
    }
}

/// A caller in this process.
impl<R: Send + 'static> Sink<R> for oneshot::Sender<Answer<R>> {
    fn send(self, result: Answer<R>) {
        // The caller may have given up (its future dropped); nothing to do then.
        let _ = oneshot::Sender::send(self, result);
    }

    fn is_cancelled(&self) -> bool {
        self.is_closed()
    }

    fn cancelled(&mut self) -> impl Future<Output = ()> + Send {
        self.closed()
    }
}

/// A told message: nobody waits, so a failure is logged.
pub(crate) struct Discard;

impl<R: Send + 'static> Sink<R> for Discard {
    fn send(self, result: Answer<R>) {
        if let Err(error) = result {
            tracing::warn!(%error, "a told message failed");
        }
    }

    fn is_cancelled(&self) -> bool {
        false
    }

    fn cancelled(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

    fn has_caller(&self) -> bool {
        false
    }
}

/// A remote caller: the answer is encoded into the pool's response as `H` says (one reply, a
/// batch's replies, a stream's items). Dropped unanswered (the actor stopped with the
/// message still queued), it answers `Stopped`.
pub(crate) struct Encoded<H = Single> {
    responder: Option<Responder>,
    /// The actor, for the `Stopped` answer.
    me: ActorRef<()>,
    how: std::marker::PhantomData<fn() -> H>,
}

/// How a remote caller's answer of type `R` is written into its response.
pub(crate) trait Answering<R>: Sized + 'static {
    fn answer(encoded: Encoded<Self>, result: Answer<R>);
}

/// One reply, prost-encoded as the response's body.
pub(crate) struct Single;

impl<R: prost::Message + 'static> Answering<R> for Single {
    fn answer(encoded: Encoded<Self>, result: Answer<R>) {
        encoded.answer(match result {
            Ok(mut reply) => header::success(body::encode_taking(&mut reply)),
            Err(error) => header::failure(&error),
        });
    }
}

impl<H> Encoded<H> {
    pub(crate) fn new(responder: Responder, me: ActorRef<()>) -> Self {
        Encoded { responder: Some(responder), me, how: std::marker::PhantomData }
    }
    /// The actor, for errors located at it.
    pub(crate) fn me(&self) -> &ActorRef<()> {
        &self.me
    }

    /// The responder, to answer in another way (a stream); the caller is then no longer
    /// answered `Stopped` when this is dropped.
    pub(crate) fn into_responder(mut self) -> Option<Responder> {
        self.responder.take()
    }

    /// Answers with `response` (a success or a failure header and its body).
    pub(crate) fn answer(mut self, response: Message) {
        if let Some(responder) = self.responder.take() {
            let elsewhere = responder.caller_elsewhere();
            responder.respond(response);
            if elsewhere {
                overlap::answered_another_process();
            }
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.responder.as_ref().is_none_or(Responder::is_cancelled)
    }

    /// The handler starts: a cancel the caller waits on is the handler's to answer from now
    /// on (before, the pool answered it at once). False when the caller gave up already.
    pub(crate) fn begin(&mut self) -> bool {
        self.responder.as_ref().is_some_and(Responder::begin)
    }

    pub(crate) fn peer(&self) -> Option<&str> {
        self.responder.as_ref().and_then(Responder::peer)
    }

    pub(crate) async fn cancelled(&mut self) {
        match &mut self.responder {
            Some(responder) => responder.cancelled().await,
            None => std::future::pending().await,
        }
    }
}

impl<R: Send + 'static, H: Answering<R>> Sink<R> for Encoded<H> {
    fn send(self, result: Answer<R>) {
        H::answer(self, result);
    }

    fn is_cancelled(&self) -> bool {
        Encoded::is_cancelled(self)
    }

    fn begin(&mut self) -> bool {
        Encoded::begin(self)
    }

    async fn cancelled(&mut self) {
        Encoded::cancelled(self).await
    }

    fn peer(&self) -> Option<&str> {
        self.peer()
    }
}

impl<H> Drop for Encoded<H> {
    fn drop(&mut self) {
        if let Some(responder) = self.responder.take() {
            responder.respond(header::failure(&ActorError::stopped(&self.me)));
        }
    }
}

/// A message, its sink, and when its caller stops waiting.
pub(crate) struct Delivery<M, S> {
    pub(crate) message: M,
    pub(crate) sink: S,
    pub(crate) deadline: Option<Instant>,
    /// When it entered the mailbox, if the pool logs slow calls.
    pub(crate) queued: Option<Instant>,
}

impl<A, M, S> Envelope<A> for Delivery<M, S>
where
    A: Handler<M>,
    M: Send + 'static,
    S: Sink<A::Reply>,
{
    fn fail(self: Box<Self>, error: ActorError) {
        self.sink.send(Err(Box::new(error)));
    }

    fn handle<'a>(
        self: Box<Self>,
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
        call: &'a CallSignal,
    ) -> Handling<'a> {
        let Delivery { message, sink, deadline, queued } = *self;
        let metered = ctx.pool().core.metered;
        // A message whose caller gave up is skipped before any future is made for it.
        let mut sink = match admit::<A, M, S>(ctx, sink, deadline, metered) {
            Ok(sink) => sink,
            Err(skipped) => return Handling::from(std::future::ready(skipped)),
        };
        // Events the handler logs are inside this span. When no subscriber wants debug spans
        // of this crate, there is none: one cached check, nothing wrapped.
        let span =
            tracing::enabled!(target: "xoscar_actor::call", tracing::Level::DEBUG).then(|| {
                tracing::debug_span!(
                    target: "xoscar_actor::call",
                    "actor_call",
                    uid = ctx.uid(),
                    message_type = std::any::type_name::<M>(),
                    peer = sink.peer().unwrap_or("in-process"),
                )
            });
        // Every message's future is held in its actor's task (boxed only when larger than
        // `HANDLING_INLINE`) and moved there whole, so what it holds across its awaits is kept
        // small: the rare wait for a handler that did not finish at its first poll is boxed
        // apart.
        let handling = async move {
            let started = (ctx.pool().core.debug.any() || metered).then(Instant::now);
            // `handle` is user code before its future is: a plain fn returning one may panic
            // before it returns, and that is the handler's panic too.
            let (me, context) = (&mut *actor, &mut *ctx);
            let make = AssertUnwindSafe(move || me.handle(message, context));
            let finished = match std::panic::catch_unwind(make) {
                Err(panic) => Some(Err(panic)),
                Ok(handling) => {
                    let handled = AssertUnwindSafe(handling).catch_unwind();
                    // In an `Option`, so that a handler dropped at a cancel is dropped here,
                    // inside a panic boundary of its own (its locals' `Drop` is user code too).
                    let mut handled = std::pin::pin!(Some(handled));
                    // One poll first: a handler that answers at once never looks at cancellation.
                    let first =
                        std::future::poll_fn(|cx| Poll::Ready(running(&mut handled).poll(cx)));
                    match first.await {
                        Poll::Ready(result) => Some(result),
                        Poll::Pending => {
                            Box::pin(finish_or_cancel(&mut handled, &mut sink, call)).await
                        }
                    }
                }
            };
            call.end();
            let took = started.map(|started| started.elapsed());
            let Some(result) = finished else {
                // The caller cancelled: the handler's future was dropped where it waited, and
                // the actor goes on with the next message. (Had that drop panicked, it would
                // be the handler's panic below.)
                ctx.take_delegated::<A::Reply>();
                sink.send(Err(Box::new(ActorError::cancelled(ctx.actor_ref()))));
                if metered {
                    metrics::message_handled::<A, M>("cancelled", took);
                }
                return Outcome::Done;
            };
            let thresholds = ctx.pool().core.debug;
            if let Some(started) = started.filter(|_| thresholds.any()) {
                let serial = ctx.is_serial();
                let (actor, message) = (std::any::type_name::<A>(), std::any::type_name::<M>());
                debug::report(thresholds, actor, ctx.uid(), message, queued, started, serial);
            }
            let delegated = ctx.take_delegated::<A::Reply>();
            match result {
                Err(panic) => {
                    // Deregistered before the caller hears of it: its next call finds no actor,
                    // and a main pool that placed it has forgotten it (so a create that follows
                    // is never undone by a late notice).
                    let error = Box::new(ActorError::panicked(ctx.actor_ref(), &*panic));
                    match ctx.retire_reporting() {
                        // Answered from a task of the pool, so that no message's future
                        // carries this rare wait.
                        Some(told) => ctx.pool().core.spawn_owned(async move {
                            let _ = told.await;
                            sink.send(Err(error));
                        }),
                        None => sink.send(Err(error)),
                    }
                    if metered {
                        metrics::message_handled::<A, M>("panicked", took);
                    }
                    Outcome::Panicked
                }
                Ok(result) => {
                    let outcome = match (&delegated, &result) {
                        (Some(_), _) => "delegated",
                        (None, Ok(_)) => "ok",
                        (None, Err(_)) => "failed",
                    };
                    if metered {
                        metrics::message_handled::<A, M>(outcome, took);
                    }
                    match delegated {
                        None => sink.send(
                            result.map_err(|f| Box::new(ActorError::handler(ctx.actor_ref(), f))),
                        ),
                        Some(Ok(reply)) => {
                            if let Some(wait) = spawn_delegated(ctx, reply, sink) {
                                return Outcome::Wait(wait);
                            }
                        }
                        Some(Err(())) => sink.send(Err(Box::new(ActorError::handler(
                            ctx.actor_ref(),
                            Failure::msg(
                                "reply_later was given a reply of another type than the handler's",
                            ),
                        )))),
                    }
                    Outcome::Done
                }
            }
        };
        match span {
            Some(span) => Handling::from_or_box(handling.instrument(span)),
            None => Handling::from_or_box(handling),
        }
    }
}

/// Answers and skips a message whose caller gave up before its handler began: its deadline
/// passed, or it cancelled while the message waited in the mailbox. Gives the sink back
/// otherwise, the handler then about to begin.
fn admit<A, M, S>(
    ctx: &Context<A>,
    mut sink: S,
    deadline: Option<Instant>,
    metered: bool,
) -> Result<S, Outcome>
where
    A: Handler<M>,
    M: Send + 'static,
    S: Sink<A::Reply>,
{
    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
        // Its caller has given up: skip the work. (The timeout reported is the caller's to
        // say; the caller maps this answer to its own.)
        let me = ctx.actor_ref();
        let timeout = Duration::ZERO;
        let (address, uid) = (me.address().to_string(), me.uid().to_owned());
        sink.send(Err(Box::new(ActorError::CallTimedOut { address, uid, timeout })));
        if metered {
            metrics::message_handled::<A, M>("expired", None);
        }
        return Err(Outcome::Done);
    }
    if !sink.begin() {
        // Its caller cancelled while it waited in the mailbox: skip it. (A caller that
        // dropped its call is not told; one that still waits got `Cancelled` then, or gets
        // it now.)
        sink.send(Err(Box::new(ActorError::cancelled(ctx.actor_ref()))));
        if metered {
            metrics::message_handled::<A, M>("cancelled", None);
        }
        return Err(Outcome::Done);
    }
    Ok(sink)
}

/// The rest of a handler that did not finish at its first poll: it runs until it finishes or
/// its caller cancels. A handler that takes its cancellation ([`CallSignal::cancel`]) runs on
/// and answers for itself; any other is dropped where it waits (`None`), inside a panic
/// boundary of its own (`Some(Err)` if that drop panicked).
async fn finish_or_cancel<F, T, R>(
    handled: &mut Pin<&mut Option<F>>,
    sink: &mut impl Sink<R>,
    call: &CallSignal,
) -> Option<F::Output>
where
    F: Future<Output = Result<T, Box<dyn std::any::Any + Send>>>,
{
    let finished = tokio::select! {
        biased;
        result = running(handled) => Some(result),
        () = sink.cancelled() => None,
    };
    match finished {
        None if call.cancel() => Some(running(handled).await),
        None => {
            let dropped = AssertUnwindSafe(|| handled.as_mut().set(None));
            std::panic::catch_unwind(dropped).err().map(Err)
        }
        finished => finished,
    }
}

/// The handler's future, still there (it is only ever dropped at a cancel, after which
/// nothing polls it).
fn running<'a, F>(handled: &'a mut Pin<&mut Option<F>>) -> Pin<&'a mut F> {
    handled.as_mut().as_pin_mut().expect("dropped only at a cancel")
}

/// Runs a reply handed to `reply_later` on the pool's runtime, owned by the actor's lifetime:
/// when the actor ends, the future is dropped and the caller told.
///
/// A told message's reply has no caller waiting to bound how many run at once, so each takes a
/// permit of the actor's (as many as its mailbox holds). With none free, this returns the wait
/// for one (boxed, so that no message's future carries it): the actor finishes it before its
/// next message, so at the bound its senders feel the full mailbox.
fn spawn_delegated<A: Actor, R: Send + 'static, S: Sink<R>>(
    ctx: &Context<A>,
    reply: DelegatedReply<R>,
    sink: S,
) -> Option<BoxFuture<'static, ()>> {
    let (me, lifetime) = (ctx.actor_ref().clone(), ctx.lifetime().clone());
    let runtime = ctx.pool().runtime().clone();
    if sink.has_caller() {
        runtime.spawn(deliver_delegated(reply, sink, me, lifetime, None));
        return None;
    }
    let permits = ctx.told_replies().clone();
    match permits.clone().try_acquire_owned() {
        Ok(permit) => {
            runtime.spawn(deliver_delegated(reply, sink, me, lifetime, Some(permit)));
            None
        }
        Err(_) => Some(Box::pin(async move {
            let permit = tokio::select! {
                biased;
                () = lifetime.cancelled() => return,
                // Never closed: the semaphore lives as long as the actor's contexts.
                permit = permits.acquire_owned() => permit.ok(),
            };
            runtime.spawn(deliver_delegated(reply, sink, me, lifetime, permit));
        })),
    }
}

/// A delegated reply's task: answers `sink` with the reply, or `Stopped` when the actor ends,
/// or `Cancelled` when the caller cancels; holds `permit` (a told reply's) meanwhile.
async fn deliver_delegated<A: Actor, R: Send + 'static, S: Sink<R>>(
    reply: DelegatedReply<R>,
    mut sink: S,
    me: ActorRef<A>,
    lifetime: tokio_util::sync::CancellationToken,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let _permit = permit;
    tokio::select! {
        biased;
        result = AssertUnwindSafe(reply).catch_unwind() => sink.send(match result {
            Ok(result) => result.map_err(|f| Box::new(ActorError::handler(&me, f))),
            Err(panic) => Err(Box::new(ActorError::panicked(&me, &*panic))),
        }),
        () = lifetime.cancelled() => sink.send(Err(Box::new(ActorError::stopped(&me)))),
        // The caller cancelled: the reply is dropped where it waits (a caller that
        // still waits gets `Cancelled`).
        () = sink.cancelled() => sink.send(Err(Box::new(ActorError::cancelled(&me)))),
    }
}
