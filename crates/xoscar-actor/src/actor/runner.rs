//! The task of one actor: start hook, mailbox loop (serial or concurrent), stop hook.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::oneshot;

use crate::actor::cell::Mail;
use crate::actor::envelope::Outcome;
use crate::actor::mailbox::Receiver;
use crate::actor::overlap;
use crate::{Actor, ActorError, Context};

/// How an actor runs its handlers.
pub(crate) enum Mode<A> {
    /// One at a time, in mailbox order.
    Serial,
    /// Up to `limit` at once, each on its own clone of the actor.
    Concurrent { clone: fn(&A) -> A, limit: usize },
}

impl<A> Clone for Mode<A> {
    fn clone(&self) -> Self {
        match self {
            Mode::Serial => Mode::Serial,
            Mode::Concurrent { clone, limit } => Mode::Concurrent { clone: *clone, limit: *limit },
        }
    }
}

type Started = oneshot::Sender<Result<(), ActorError>>;

pub(crate) async fn run<A: Actor>(
    mut actor: A,
    mut ctx: Context<A>,
    mut inbox: Receiver<Mail<A>>,
    started: Started,
    mode: Mode<A>,
) {
    let start = AssertUnwindSafe(actor.on_start(&mut ctx)).catch_unwind().await;
    let error = match start {
        Ok(Ok(())) => None,
        Ok(Err(failure)) => Some(ActorError::handler(ctx.actor_ref(), failure)),
        Err(panic) => Some(ActorError::panicked(ctx.actor_ref(), &*panic)),
    };
    if let Some(error) = error {
        // Gone before the creator hears of it; messages it was told meanwhile are dropped and
        // their callers get `Stopped`.
        ctx.retire();
        let _ = started.send(Err(error));
        return;
    }
    // The creator may have stopped waiting; the actor lives on regardless.
    let _ = started.send(Ok(()));
    // Mail taken out of the mailbox and not yet handled. It lives as long as the inbox: what
    // is left in it when the actor stops is dropped with the inbox, at the same moment.
    let mut taken = VecDeque::new();
    let stop = match mode {
        Mode::Serial => serve_serial(&mut actor, &mut ctx, &mut inbox, &mut taken).await,
        Mode::Concurrent { clone, limit } => {
            serve_concurrent(&mut actor, &ctx, &mut inbox, clone, limit).await
        }
    };
    let Some(done) = stop else { return };
    // Whatever a racing caller still queues fails with `Stopped`.
    inbox.close();
    let result = match AssertUnwindSafe(actor.on_stop(&mut ctx)).catch_unwind().await {
        Ok(result) => result.map_err(|failure| ActorError::handler(ctx.actor_ref(), failure)),
        Err(panic) => Err(ActorError::panicked(ctx.actor_ref(), &*panic)),
    };
    ctx.retire();
    let _ = done.send(result);
}

/// How many messages a serial actor takes out of its mailbox at once. Taking a run of them
/// takes the mailbox's lock once for the run, and frees their room to senders at once; the
/// price is that up to this many more than the mailbox's capacity may wait for the actor.
pub(crate) const TAKEN_AT_ONCE: usize = 32;

/// Handles mail one at a time until a stop (returned), a panic or an empty registry entry.
/// `taken`: mail out of the mailbox, not yet handled (oldest first).
async fn serve_serial<A: Actor>(
    actor: &mut A,
    ctx: &mut Context<A>,
    inbox: &mut Receiver<Mail<A>>,
    taken: &mut VecDeque<Mail<A>>,
) -> Option<Started> {
    let call = ctx.call_signal();
    loop {
        let mail = match taken.pop_front() {
            Some(mail) => mail,
            // Refilled only once empty: at most `TAKEN_AT_ONCE` messages are ever out of the
            // mailbox and not yet handled (the one handled among them).
            None => match inbox.recv_run(taken, TAKEN_AT_ONCE).await {
                Some(mail) => mail,
                None => return None,
            },
        };
        match mail {
            Mail::Deliver(envelope) => {
                // Pinned where it is made and polled there: `.await` on the returned value
                // would copy its inline room twice (about 130 instructions a message).
                let mut handling = std::pin::pin!(envelope.handle(actor, ctx, &call));
                match std::future::poll_fn(|cx| handling.as_mut().poll(cx)).await {
                    Outcome::Done => {}
                    Outcome::Panicked => return None,
                    Outcome::Wait(wait) => wait.await,
                }
                if overlap::yield_due() {
                    tokio::task::yield_now().await;
                }
            }
            Mail::Stop(done) => return Some(done),
        }
    }
}

/// Runs up to `limit` handlers at once, each on a clone of the actor with its own context. A
/// panic fails only its own call. A stop waits for the running handlers.
async fn serve_concurrent<A: Actor>(
    actor: &mut A,
    ctx: &Context<A>,
    inbox: &mut Receiver<Mail<A>>,
    clone: fn(&A) -> A,
    limit: usize,
) -> Option<Started> {
    let mut running = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            // Both branches are cancel-safe: `next` and `recv` lose nothing when not chosen.
            Some(()) = running.next(), if !running.is_empty() => {
                if overlap::yield_due() {
                    tokio::task::yield_now().await;
                }
            }
            mail = inbox.recv(), if running.len() < limit => match mail {
                Some(Mail::Deliver(envelope)) => {
                    // The actor's `Clone` is user code: its panic fails this call alone.
                    let mut copy = match std::panic::catch_unwind(AssertUnwindSafe(|| clone(actor))) {
                        Ok(copy) => copy,
                        Err(panic) => {
                            envelope.fail(ActorError::panicked(ctx.actor_ref(), &*panic));
                            continue;
                        }
                    };
                    let mut fork = ctx.fork();
                    running.push(async move {
                        let call = fork.call_signal();
                        // Its slot stays taken while it waits: the bound holds here too.
                        // Pinned where it is made, as in `serve_serial` (not bound first:
                        // pinning a binding moves it).
                        let mut handling =
                            std::pin::pin!(envelope.handle(&mut copy, &mut fork, &call));
                        let outcome = std::future::poll_fn(|cx| handling.as_mut().poll(cx)).await;
                        if let Outcome::Wait(wait) = outcome {
                            wait.await;
                        }
                    });
                }
                Some(Mail::Stop(done)) => {
                    while running.next().await.is_some() {}
                    return Some(done);
                }
                None => {
                    while running.next().await.is_some() {}
                    return None;
                }
            },
        }
    }
}
