//! A Rust actor pool with one `Counter` (uid "counter"), the example actor of the Python
//! package (`src/example_actors.rs`): what its tests call by message name from another
//! process. `rust_counter [ADDRESS]` prints its address, then serves until killed.

// The same file the extension compiles with its `example-actors` feature; this binary uses only
// the actor (not its registration).
#[allow(dead_code)]
#[path = "../src/example_actors.rs"]
mod example_actors;

use xoscar::ActorPool;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let pool = ActorPool::start(address.parse()?).await?;
    pool.create(example_actors::Counter::default()).uid("counter").await?;
    println!("{}", pool.address());
    std::future::pending::<()>().await;
    Ok(())
}
