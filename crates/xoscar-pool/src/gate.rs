//! A future polled again only once its own waker fired: for a branch of a `select!` that is
//! rarely the one ready.
//!
//! A `select!` polls every branch each time its task wakes, whichever branch the wake-up was
//! for. A serving connection's task wakes several times per call answered one at a time (the
//! socket readable, an answer queued), and its branches that wait for a shutdown or a timer
//! were polled each time: a tokio `Notified` takes its lock at every poll (polling the
//! shutdown signal cost about 420 instructions per call). The caller's connection driver is
//! the same: it wakes for each frame read or written, and its liveness watch and close signal
//! are gated. Gated, such a branch costs a pointer comparison and an atomic load when it was
//! not woken. The serving connection's two sides are gated too: an answer queued by an
//! actor's task wakes the write side without polling the read side (its socket read, its
//! timers), and a request read does not poll the write side.
//!
//! Only for a future that registers a waker for everything it waits on, as a future should: a
//! gated one is never polled for another branch's wake-up, so one that relied on such a poll
//! to see a change would wait forever.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;

/// `future`, polled only at its first poll and after its own waker fired.
pub(crate) struct Gated<F> {
    future: F,
    gate: Arc<Gate>,
    /// The waker handed to `future`: it marks the gate and wakes the task.
    inner_waker: Waker,
    /// The task's waker as last stored in the gate, to skip storing it again.
    task_waker: Option<Waker>,
}

/// What the future's waker marks, and the task it wakes.
struct Gate {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Marked before the task is looked up: a poll that stores a new task waker looks at
        // the mark after storing it, so one of the two always sees the other.
        self.woken.store(true, Ordering::Release);
        // Woken outside the lock: a waker is foreign code. (Rare: once per wake-up of the
        // gated future, not per poll.)
        let task = self.task.lock().clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl<F: Future + Unpin> Gated<F> {
    /// Gates `future` (one allocation, for the gate its waker marks).
    pub(crate) fn new(future: F) -> Self {
        let gate = Arc::new(Gate { woken: AtomicBool::new(true), task: Mutex::new(None) });
        let inner_waker = Waker::from(gate.clone());
        Gated { future, gate, inner_waker, task_waker: None }
    }
}

impl<F: Future + Unpin> Future for Gated<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if !this.task_waker.as_ref().is_some_and(|stored| stored.will_wake(cx.waker())) {
            *this.gate.task.lock() = Some(cx.waker().clone());
            this.task_waker = Some(cx.waker().clone());
        }
        // A wake-up that came before this poll is taken here; one during the poll below marks
        // the gate again, for the next.
        if !this.gate.woken.load(Ordering::Relaxed)
            || !this.gate.woken.swap(false, Ordering::AcqRel)
        {
            return Poll::Pending;
        }
        Pin::new(&mut this.future).poll(&mut Context::from_waker(&this.inner_waker))
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A future that counts its polls and completes once told to, waking its last waker.
    struct Counted {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Counted {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            *self.waker.lock() = Some(cx.waker().clone());
            match self.ready.load(Ordering::SeqCst) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            }
        }
    }

    /// Polled once at first, then not again while its task wakes for other reasons; its own
    /// wake-up (from another thread) reaches the task, and the next poll completes it.
    #[tokio::test]
    async fn a_gated_future_is_polled_only_when_its_own_waker_fired() {
        let (polls, ready) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let waker = Arc::new(Mutex::new(None::<Waker>));
        let counted = Counted { polls: polls.clone(), ready: ready.clone(), waker: waker.clone() };
        let mut gated = Gated::new(Box::pin(counted));
        let mut other_wakes = 0;
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            poll_fn(|cx| {
                if Pin::new(&mut gated).poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                if other_wakes < 100 {
                    // The task wakes for something else: the gated future is not polled.
                    other_wakes += 1;
                    cx.waker().wake_by_ref();
                } else if other_wakes == 100 {
                    other_wakes += 1;
                    assert_eq!(polls.load(Ordering::SeqCst), 1, "polled at its first poll only");
                    let (ready, waker) = (ready.clone(), waker.lock().clone().unwrap());
                    std::thread::spawn(move || {
                        ready.store(true, Ordering::SeqCst);
                        waker.wake();
                    });
                }
                Poll::Pending
            }),
        )
        .await;
        outcome.expect("the future's own wake-up reached the task");
        assert_eq!(polls.load(Ordering::SeqCst), 2, "polled again once, after its wake-up");
    }
}
