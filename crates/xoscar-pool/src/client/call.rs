//! The future of a plain call ([`crate::Pool::call`], [`crate::Pool::call_with_timeout`],
//! [`crate::Pool::call_remembering`]), written by hand as one state machine.
//!
//! As async functions the call was four futures deep (the timeout, the send loop, the queueing
//! and the wait for the slot), each with its own state and polls. Here it is one: take a
//! lease, queue the request (with the caller's waker in its slot), wait for the outcome, and on
//! a `Retry` start over on a fresh connection. Dialling and waiting for room in the queue are
//! rare, so they stay async functions, boxed out of line.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::runtime::Id as RuntimeId;
use tokio::time::Sleep;
use xoscar_transport::Address;
use xoscar_wire::Frame;

use super::conn::LeaseGuard;
use super::state::{Outcome, Refused};
use super::{MAX_SENDS, Pool, RecentConnection, check_frame, current_runtime};
use super::{lost_after_sending, unsent};
use crate::{Message, PoolError};

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A plain call in flight: no cancel token (see [`crate::Pool::call_cancellable`] for that).
/// Dropping it forgets the call and, if its request may have been written, sends a cancel.
pub(crate) struct PlainCall<'a> {
    pool: &'a Pool,
    endpoint: &'a Address,
    /// Where the connection of the last call is remembered: the caller's, or the pool's own.
    recent: &'a RecentConnection,
    frame: Frame,
    /// The caller's budget; its timer is armed at the first poll that has to wait (boxed: it
    /// stays out of every untimed call).
    timeout: Option<Duration>,
    timer: Option<Pin<Box<Sleep>>>,
    /// The runtime the call runs on, read at its first poll.
    runtime: Option<RuntimeId>,
    /// Connections tried so far.
    sends: usize,
    step: Step<'a>,
}

enum Step<'a> {
    /// About to take a lease and queue the request (first, or again after a `Retry`).
    Lease,
    /// Dialling, or waiting for a dial under way.
    Dialling(Boxed<'a, Result<LeaseGuard, PoolError>>),
    /// Waiting for room in the connection's queue; `None`: the connection took no more.
    Room(LeaseGuard, Boxed<'static, Result<Option<u64>, PoolError>>),
    /// Queued as `id`, waiting for the outcome in its slot. `skip`: the slot holds the waker
    /// of this very poll (it was queued with it), so there is no need to look yet.
    Waiting { lease: LeaseGuard, id: u64, skip: bool },
    /// Over: its result was returned.
    Done,
}

impl<'a> PlainCall<'a> {
    pub(crate) fn new(
        pool: &'a Pool,
        endpoint: &'a Address,
        frame: Frame,
        timeout: Option<Duration>,
        recent: Option<&'a RecentConnection>,
    ) -> Self {
        PlainCall {
            pool,
            endpoint,
            recent: recent.unwrap_or(&pool.shared.recent),
            frame,
            timeout,
            timer: None,
            runtime: None,
            sends: 0,
            step: Step::Lease,
        }
    }

    /// Drives the call until it must wait or is over.
    fn poll_call(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, PoolError>> {
        loop {
            match &mut self.step {
                Step::Lease => {
                    let runtime = match self.runtime {
                        Some(runtime) => runtime,
                        None => {
                            let runtime = current_runtime()?;
                            check_frame(&self.pool.shared.config, self.endpoint, &self.frame)?;
                            *self.runtime.insert(runtime)
                        }
                    };
                    if self.sends == MAX_SENDS {
                        let reason =
                            format!("connections ended before sending it, {MAX_SENDS} times");
                        return Poll::Ready(Err(unsent(self.endpoint, reason)));
                    }
                    self.sends += 1;
                    match self.lease_and_queue_now(runtime, cx) {
                        Some(queued) => self.step_after(queued)?,
                        None => {
                            let (state, endpoint) =
                                (self.pool.runtime_state(runtime), self.endpoint);
                            let dial = async move { state.lease_slowly(endpoint).await };
                            self.step = Step::Dialling(Box::pin(dial));
                        }
                    }
                }
                Step::Dialling(dial) => {
                    let lease = ready!(dial.as_mut().poll(cx))?;
                    let runtime = self.runtime.expect("read at the first poll");
                    self.recent.remember(&self.pool.shared, runtime, &lease.conn);
                    self.queue(lease, cx)?;
                }
                Step::Room(_, room) => match ready!(room.as_mut().poll(cx))? {
                    Some(id) => {
                        let Step::Room(lease, _) = std::mem::replace(&mut self.step, Step::Done)
                        else {
                            unreachable!("in this step")
                        };
                        self.step = Step::Waiting { lease, id, skip: false };
                    }
                    None => self.step = Step::Lease,
                },
                Step::Waiting { lease, id, skip } => {
                    if std::mem::take(skip) {
                        return Poll::Pending;
                    }
                    let outcome = ready!(lease.poll_outcome_releasing(*id, cx));
                    // The outcome is taken (and the lease released): the call is no longer in
                    // flight (nothing to cancel).
                    let Step::Waiting { lease, .. } = std::mem::replace(&mut self.step, Step::Done)
                    else {
                        unreachable!("in this step")
                    };
                    // Every registered call gets its outcome in its slot; none only if the slot
                    // was taken.
                    match outcome
                        .unwrap_or_else(|| Outcome::Failed(lost_after_sending(&lease.conn)))
                    {
                        Outcome::Response(response) => return Poll::Ready(Ok(response)),
                        Outcome::Retry => self.step = Step::Lease,
                        Outcome::Failed(error) => return Poll::Ready(Err(error)),
                    }
                }
                Step::Done => panic!("a call polled after it returned"),
            }
        }
    }

    /// A lease taken at once and the call queued on it, in one lock of the connection: on the
    /// connection `recent` remembers, or on the one in the runtime's map (then remembered).
    /// `None`: it has to dial, or wait for a dial.
    fn lease_and_queue_now(
        &self,
        runtime: RuntimeId,
        cx: &Context<'_>,
    ) -> Option<(LeaseGuard, Result<u64, Refused>)> {
        // A connection that made a call retry takes no more leases: a retry looks afresh.
        let pool = &self.pool.shared;
        let (frame, waker) = (&self.frame, cx.waker());
        if let Some(conn) = self.recent.conn(pool, runtime, self.endpoint)
            && let Some(queued) = conn.try_lease_and_call(frame, waker)
        {
            return Some(queued);
        }
        let conn = self.pool.runtime_state(runtime).ready(self.endpoint)?;
        let queued = conn.clone().try_lease_and_call(frame, waker)?;
        self.recent.remember(pool, runtime, &conn);
        Some(queued)
    }

    /// Registers the call and queues its request on `lease`'s connection, with the caller's
    /// waker in its slot (then see [`PlainCall::step_after`]).
    fn queue(&mut self, lease: LeaseGuard, cx: &Context<'_>) -> Result<(), PoolError> {
        let queued = lease.conn.try_queue_call_waking(&self.frame, cx.waker());
        self.step_after((lease, queued))
    }

    /// The next step after queueing on `lease`: wait for the outcome, wait for room, or (the
    /// connection takes no more requests: nothing was sent) take another lease.
    #[inline(always)]
    fn step_after(
        &mut self,
        (lease, queued): (LeaseGuard, Result<u64, Refused>),
    ) -> Result<(), PoolError> {
        self.step = match queued {
            Ok(id) => Step::Waiting { lease, id, skip: true },
            Err(Refused::Closed) => Step::Lease,
            Err(Refused::Full) => {
                let (conn, frame) = (lease.conn.clone(), self.frame.clone());
                Step::Room(lease, Box::pin(async move { conn.queue_call(&frame).await }))
            }
            Err(Refused::TooLarge(error)) => {
                return Err(PoolError::too_large(&lease.conn.label, error));
            }
        };
        Ok(())
    }

    /// Ends the call where it is: a call still waiting for its outcome is forgotten, and a
    /// cancel is sent if its request may have been written.
    fn give_up(&mut self) {
        // Over already (the common case, at drop): nothing to replace and drop.
        if matches!(self.step, Step::Done) {
            return;
        }
        if let Step::Waiting { lease, id, .. } = std::mem::replace(&mut self.step, Step::Done) {
            lease.conn.cancel(id);
        }
    }
}

impl Future for PlainCall<'_> {
    type Output = Result<Message, PoolError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let call = self.get_mut();
        if let Poll::Ready(result) = call.poll_call(cx) {
            // An answer leaves the call done already; an error may leave it in any step.
            if !matches!(call.step, Step::Done) {
                call.step = Step::Done;
            }
            return Poll::Ready(result);
        }
        let Some(timeout) = call.timeout else { return Poll::Pending };
        let timer = call.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(timer.as_mut().poll(cx));
        call.give_up();
        Poll::Ready(Err(PoolError::CallTimedOut { address: call.endpoint.to_string(), timeout }))
    }
}

impl Drop for PlainCall<'_> {
    fn drop(&mut self) {
        self.give_up();
    }
}
