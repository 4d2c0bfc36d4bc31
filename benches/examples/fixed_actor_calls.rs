//! A fixed amount of local actor work, for counting instructions with callgrind (repeatable
//! where wall time on a shared VM is not).
//!
//! ```text
//! fixed_actor_calls <ask|tell|raw> <calls>
//! ```
//!
//! `valgrind --tool=callgrind target/release/examples/fixed_actor_calls ask 100000` counts the
//! instructions of 100,000 sequential local asks from a task; `raw` does the same with a plain
//! tokio mpsc + oneshot actor, the limit.

use std::time::Instant;

use xoscar_actor::ActorPool;
use xoscar_benches::actors::{Echoer, RawActor};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("ask", String::as_str).to_owned();
    let calls: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let pool = ActorPool::start("inproc://fixed-actor-calls".parse().unwrap()).await.unwrap();
        let actor = pool.create(Echoer::default()).await.unwrap();
        let raw = RawActor::spawn();
        let caller = tokio::spawn(async move {
            let started = Instant::now();
            for _ in 0..calls {
                match mode.as_str() {
                    "tell" => actor.tell(1u64).await.unwrap(),
                    "raw" => drop(raw.ask(1).await),
                    _ => drop(actor.call(1u64).await.unwrap()),
                }
            }
            started.elapsed()
        });
        let elapsed = caller.await.unwrap();
        println!("{calls} calls in {elapsed:?}: {:?} each", elapsed / calls as u32);
        pool.shutdown().await;
    });
}
