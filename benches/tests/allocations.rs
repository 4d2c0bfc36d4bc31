//! What a local call allocates, counted by a global allocator that sees the whole process (so
//! this binary holds nothing else). A handler's future is held in its actor's task, not boxed:
//! a local ask allocates twice (its reply slot and its message's envelope), a tell once. A
//! handler that waits, and one whose future is too large to be held there, still answer.

use std::time::Duration;

use tokio::runtime::Builder;
use xoscar_actor::{Actor, ActorPool, Context, Failure, Handler};
use xoscar_benches::counting::Counting;

#[global_allocator]
static COUNTING: Counting = Counting;

/// How many calls each count is taken over (after as many to warm up).
const CALLS: u64 = 1000;

/// Answers at once (`u64`), after a wait (`Wait`), or after a wait across which its handler
/// holds 4 KiB (`Large`).
struct Echo;

impl Actor for Echo {}

impl Handler<u64> for Echo {
    type Reply = u64;
    async fn handle(&mut self, n: u64, _: &mut Context<Self>) -> Result<u64, Failure> {
        Ok(n)
    }
}

/// Asks for an answer after a wait of a millisecond.
struct Wait(u64);

impl Handler<Wait> for Echo {
    type Reply = u64;
    async fn handle(&mut self, Wait(n): Wait, _: &mut Context<Self>) -> Result<u64, Failure> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(n)
    }
}

/// Asks for the sum of 4096 copies of a byte, held across a wait.
struct Large(u8);

impl Handler<Large> for Echo {
    type Reply = u64;
    async fn handle(&mut self, Large(b): Large, _: &mut Context<Self>) -> Result<u64, Failure> {
        let held = [b; 4096];
        tokio::task::yield_now().await;
        Ok(held.iter().map(|&b| u64::from(b)).sum())
    }
}

/// Allocations per call of `CALLS` calls of `call`, after as many to warm up.
async fn per_call<F: AsyncFnMut()>(mut call: F) -> f64 {
    for _ in 0..CALLS {
        call().await;
    }
    let before = Counting::allocations();
    for _ in 0..CALLS {
        call().await;
    }
    (Counting::allocations() - before) as f64 / CALLS as f64
}

#[test]
fn a_local_ask_allocates_twice_and_a_tell_once() {
    let runtime = Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let work = async {
            let pool = ActorPool::start("inproc://allocations".parse().unwrap()).await.unwrap();
            let echo = pool.create(Echo).await.unwrap();
            let asked = per_call(async || assert_eq!(echo.call(7u64).await.unwrap(), 7)).await;
            let told = per_call(async || echo.tell(7u64).await.unwrap()).await;
            // Every told message handled before the pool goes.
            assert_eq!(echo.call(8u64).await.unwrap(), 8);
            // A handler pending at its first poll, and one too large to be held inline, answer.
            assert_eq!(echo.call(Wait(9)).await.unwrap(), 9);
            assert_eq!(echo.call(Large(2)).await.unwrap(), 2 * 4096);
            pool.shutdown().await;
            (asked, told)
        };
        let (asked, told) =
            tokio::time::timeout(Duration::from_secs(60), work).await.expect("within a minute");
        // A fraction above the whole: the runtime's own occasional allocations.
        assert!(asked < 2.1, "a local ask allocated {asked} times per call");
        assert!(told < 1.1, "a local tell allocated {told} times per call");
    });
}
