//! A Rust actor for the Python package's tests and examples: `Counter`, whose message
//! `Add { int64 n = 1 }` (declared as "Add") replies with the running total (`Int64Value`).
//! Created by type name "Counter" from an `Int64Value` start.

use xoscar::{Actor, ActorPoolBuilder, Context, Failure, Handler, RemoteMessages};

/// Adds numbers.
#[derive(Default)]
pub struct Counter {
    total: i64,
}

/// What `Counter` adds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Add {
    /// The number added.
    #[prost(int64, tag = "1")]
    pub n: i64,
}

impl Actor for Counter {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Add>("Add");
    }
}

impl Handler<Add> for Counter {
    type Reply = i64;

    async fn handle(&mut self, add: Add, _: &mut Context<Self>) -> Result<i64, Failure> {
        self.total += add.n;
        Ok(self.total)
    }
}

/// Registers `Counter` (type name "Counter", created from an `Int64Value` start).
pub fn register(builder: ActorPoolBuilder) -> ActorPoolBuilder {
    builder.register("Counter", |start: i64| Ok(Counter { total: start }))
}
