//! Streaming replies in this process: the caller polls the handler's stream itself, so the
//! producer runs only as the caller reads (never ahead), any `Send` item streams, dropping the
//! stream drops the producer, and a panicking stream ends with `HandlerPanicked`. The same
//! behaviours across pools and processes are the `streams_items_with_backpressure_and_cancel`
//! scenario of `actors.rs` and `process.rs`.

mod common;

use common::actors::{Count, Produced, Source, Tick};
use common::{Transport, address, run};
use xoscar_actor::{Actor, ActorError, ActorPool, Context, Failure, Handler, Streaming};

/// Streams closures' results: items that could never cross a process.
struct Lines;

impl Actor for Lines {}

struct Say(Vec<&'static str>);

impl Handler<Say> for Lines {
    type Reply = Streaming<Box<dyn Fn() -> String + Send>>;
    async fn handle(&mut self, say: Say, _: &mut Context<Self>) -> Result<Self::Reply, Failure> {
        let lines = say.0.into_iter().map(|line| {
            let line: Box<dyn Fn() -> String + Send> = Box::new(move || line.to_uppercase());
            Ok(line)
        });
        Ok(Streaming::new(futures_util::stream::iter(lines)))
    }
}

#[test]
fn in_process_the_producer_runs_only_as_the_caller_reads() {
    run(async {
        let pool = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let source = pool.create(Source::default()).await.unwrap();
        let produced = || async { source.call(Produced::default()).await.unwrap().ticks };
        let mut ticks =
            source.call_stream(Count { n: 10_000, ..Default::default() }).await.unwrap();
        for index in 0..10_000 {
            assert_eq!(ticks.next().await.unwrap().unwrap(), Tick { index });
            if index % 1000 == 0 {
                assert_eq!(produced().await, index + 1, "nothing produced ahead of the reader");
            }
        }
        assert!(ticks.next().await.is_none());

        let mut ticks = source.call_stream(Count { n: 100, ..Default::default() }).await.unwrap();
        ticks.next().await.unwrap().unwrap();
        drop(ticks);
        assert_eq!(produced().await, 10_001, "dropped with its producer");

        let mut ticks = source.call_stream(Count { n: 3, fail_at: 0, panic_at: 2 }).await.unwrap();
        assert_eq!(ticks.next().await.unwrap().unwrap(), Tick { index: 0 });
        let panicked = ticks.next().await.unwrap().unwrap_err();
        assert!(matches!(panicked, ActorError::HandlerPanicked { .. }), "{panicked:?}");
        assert!(ticks.next().await.is_none());

        let lines = pool.create(Lines).await.unwrap();
        let mut said = lines.call_stream(Say(vec!["a", "b"])).await.unwrap();
        let mut heard = Vec::new();
        while let Some(line) = said.next().await {
            heard.push(line.unwrap()());
        }
        assert_eq!(heard, ["A", "B"]);
    });
}
