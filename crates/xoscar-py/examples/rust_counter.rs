//! A Rust actor pool with one `Counter` (uid "counter") whose message `Add { n: int64 }`
//! (declared as "Add") replies with the running total (an `Int64Value`): what the Python
//! package's tests call by name. `rust_counter [ADDRESS]` prints its address, then serves until
//! killed.

use xoscar::{Actor, ActorPool, Context, Failure, Handler, RemoteMessages};

#[derive(Default)]
struct Counter {
    total: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Add {
    #[prost(int64, tag = "1")]
    n: i64,
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let pool = ActorPool::start(address.parse()?).await?;
    pool.create(Counter::default()).uid("counter").await?;
    println!("{}", pool.address());
    std::future::pending::<()>().await;
    Ok(())
}
