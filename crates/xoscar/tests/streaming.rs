//! A streaming handler and its caller written with the facade alone: this crate's tests have
//! no `futures` dependency, so `xoscar::{Stream, StreamExt, stream}` is all they use.

use xoscar::{Actor, ActorPool, Context, Failure, Handler, StreamExt, Streaming, stream};

struct Counter;

impl Actor for Counter {}

struct CountTo(u32);

impl Handler<CountTo> for Counter {
    type Reply = Streaming<u32>;
    async fn handle(
        &mut self,
        m: CountTo,
        _: &mut Context<Self>,
    ) -> Result<Streaming<u32>, Failure> {
        Ok(Streaming::new(stream::iter((1..=m.0).map(Ok))))
    }
}

/// Items through any `xoscar::Stream`.
fn sum(items: impl xoscar::Stream<Item = u32>) -> impl std::future::Future<Output = u32> {
    items.fold(0, |total, n| async move { total + n })
}

#[test]
fn a_streaming_handler_needs_no_other_dependency() {
    xoscar_testkit::run(async {
        let pool = ActorPool::start("inproc://facade-streaming".parse().unwrap()).await.unwrap();
        let counter = pool.create(Counter).await.unwrap();
        let mut replies = counter.call_stream(CountTo(4)).await.unwrap();
        assert_eq!(replies.next().await.unwrap().unwrap(), 1);
        let rest = sum(replies.map(|item| item.unwrap())).await;
        assert_eq!(rest, 2 + 3 + 4);
    });
}
