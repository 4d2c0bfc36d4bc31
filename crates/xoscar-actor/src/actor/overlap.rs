//! When an actor's task steps aside so that its answers to another process go out while it
//! works on.
//!
//! An actor answering a caller in another process queues each answer for its connection's
//! write side, a task of its own. On a thread that runs both, the write side only gets to run
//! once the actor's task yields, which, with a full mailbox, is once the mailbox is empty: every
//! answer to a run of requests then leaves in one write at the end, the caller only starts on
//! the first answer once the last is handled, and the two processes take turns instead of
//! working at once. So the actor's task yields after every [`ANSWERS_BEFORE_YIELD`] such
//! answers. Measured on two cores, 64 calls in flight to an actor in a child process over TCP,
//! yielding after every 8 / 16 / 32 answers (and never): 0.52–0.68 / 0.74–1.03 / 0.52–0.56
//! (and 0.41–0.51) million calls a second (docs/architecture.md, "Answers in parts").
//!
//! The count is per thread, not per actor: whichever actor's task answered last on this
//! thread yields, which is what lets that thread's write sides run. Answers to callers in this
//! process never count (their caller cannot start on them before this thread yields anyway),
//! so an actor called only from here pays one thread-local read per message and nothing else.

use std::cell::Cell;

/// Answers to other processes after which an actor's task yields.
pub(crate) const ANSWERS_BEFORE_YIELD: u32 = 16;

thread_local! {
    /// Answers to other processes queued on this thread since an actor's task last yielded
    /// for them.
    static ANSWERED: Cell<u32> = const { Cell::new(0) };
}

/// Counts an answer queued for a caller in another process.
#[inline]
pub(crate) fn answered_another_process() {
    ANSWERED.with(|answered| answered.set(answered.get() + 1));
}

/// True (and the count starts again) once [`ANSWERS_BEFORE_YIELD`] answers to other processes
/// were queued on this thread since this last said so: the actor's task should yield now.
#[inline]
pub(crate) fn yield_due() -> bool {
    ANSWERED.with(|answered| {
        let due = answered.get() >= ANSWERS_BEFORE_YIELD;
        if due {
            answered.set(0);
        }
        due
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yield_is_due_once_per_run_of_answers_to_other_processes() {
        // Each test runs on a thread of its own: the count starts at zero.
        let mut due = Vec::new();
        for _ in 0..3 * ANSWERS_BEFORE_YIELD {
            answered_another_process();
            due.push(yield_due());
        }
        let at: Vec<usize> = due.iter().enumerate().filter(|(_, d)| **d).map(|(i, _)| i).collect();
        let n = ANSWERS_BEFORE_YIELD as usize;
        assert_eq!(at, vec![n - 1, 2 * n - 1, 3 * n - 1]);
        assert!(!yield_due(), "nothing answered since the last yield");
    }
}
