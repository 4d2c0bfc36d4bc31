//! The [`Actor`] and [`Handler`] traits a user implements.

use std::future::Future;

use crate::{Context, Failure, RemoteMessages};

/// An actor: state that handles messages one at a time (by default) and lives in an
/// [`crate::ActorPool`] under a uid.
///
/// ```
/// use xoscar_actor::{Actor, Context, Failure, Handler, RemoteMessages};
///
/// #[derive(Default)]
/// struct Counter {
///     total: u64,
/// }
///
/// /// A prost message: it may cross processes.
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Add {
///     #[prost(uint64, tag = "1")]
///     n: u64,
/// }
///
/// impl Actor for Counter {
///     fn remote_messages(messages: &mut RemoteMessages<Self>) {
///         messages.message::<Add>("Add");
///     }
/// }
///
/// impl Handler<Add> for Counter {
///     type Reply = u64;
///     async fn handle(&mut self, add: Add, _ctx: &mut Context<Self>) -> Result<u64, Failure> {
///         self.total += add.n;
///         Ok(self.total)
///     }
/// }
/// ```
pub trait Actor: Sized + Send + 'static {
    /// Declares which messages callers in other processes may send, each under a name unique
    /// within the actor type: its message and reply are prost messages. Messages not declared
    /// here still work from callers in the actor's own process. Default: none.
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        let _ = messages;
    }

    /// Runs once after the actor is created, before any message. It may call other actors and
    /// tell itself (the message waits until this hook is done). An error (or a panic) fails
    /// the create, and the actor does not exist afterwards. Default: nothing.
    fn on_start(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), Failure>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs once when the actor is destroyed, after every message it accepted before. Its
    /// error reaches the destroyer; the actor is gone either way. Not run when the pool is
    /// dropped or aborted. Default: nothing.
    fn on_stop(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), Failure>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }
}

/// How an actor handles messages of type `M`, and what it replies. The same handler serves
/// callers in its own process (the value is passed as is) and remote ones (declared in
/// [`Actor::remote_messages`]).
///
/// A serial actor runs one handler at a time, with `&mut self`. A handler that awaits another
/// actor which calls back into this one would deadlock; it hands its reply to
/// [`Context::reply_later`] instead and frees the actor at once.
pub trait Handler<M: Send + 'static>: Actor {
    /// The reply: any `Send` value for callers in this process; a prost message for remote
    /// callers.
    type Reply: Send + 'static;

    /// Handles one message. An error reaches the caller as [`crate::ActorError::Handler`]; a
    /// panic as [`crate::ActorError::HandlerPanicked`] (and stops a serial actor).
    fn handle(
        &mut self,
        message: M,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<Self::Reply, Failure>> + Send;

    /// Handles the messages of one batch ([`crate::ActorRef::call_batch`] or
    /// [`crate::ActorRef::tell_batch`]), which arrive as one mailbox message, and returns one
    /// result per message, in order. An error fails only its own message.
    ///
    /// Default: each message in turn through [`Handler::handle`] (a reply handed to
    /// [`Context::reply_later`] is awaited before the next message). Override it to handle
    /// them at once, as xoscar's `@extensible` methods with a `.batch` implementation do: one
    /// model invocation or one storage round trip for many requests. Returning another number
    /// of results than messages fails the whole batch. (Use `reply_later` only through the
    /// default; a batch answers as a whole.)
    fn handle_batch(
        &mut self,
        messages: Vec<M>,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Vec<Result<Self::Reply, Failure>>> + Send {
        async move {
            let mut replies = Vec::with_capacity(messages.len());
            for message in messages {
                let reply = self.handle(message, ctx).await;
                replies.push(match ctx.take_delegated::<Self::Reply>() {
                    None => reply,
                    Some(Ok(later)) => later.await,
                    Some(Err(())) => Err(Failure::msg(
                        "reply_later was given a reply of another type than the handler's",
                    )),
                });
            }
            replies
        }
    }
}
