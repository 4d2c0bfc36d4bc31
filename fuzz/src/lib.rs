//! What the fuzz targets share: one tokio runtime and one actor pool per fuzzing process,
//! with an actor that takes every kind of message the actor layer decodes (plain calls,
//! batches, streams), so hostile requests reach every decoder.

use std::sync::OnceLock;
use std::time::Duration;

use xoscar_actor::{
    Actor, ActorPool, ActorPoolBuilder, Context, Failure, Handler, RemoteMessages, Streaming,
};
use xoscar_transport::Address;

/// How long one input may take before it counts as a hang.
pub const HANG: Duration = Duration::from_secs(5);

/// The target actor: echoes numbers and text, and streams a few items.
pub struct Target;

/// A message with a few field types.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Note {
    /// A number.
    #[prost(int64, tag = "1")]
    pub n: i64,
    /// Some text.
    #[prost(string, tag = "2")]
    pub text: String,
    /// Some bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}

/// Asks for `count` items, capped.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Count {
    /// How many.
    #[prost(uint32, tag = "1")]
    pub count: u32,
}

impl Actor for Target {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Note>("Note").stream::<Count, Note>("Count");
    }
}

impl Handler<Note> for Target {
    type Reply = Note;
    async fn handle(&mut self, note: Note, _: &mut Context<Self>) -> Result<Note, Failure> {
        Ok(note)
    }
}

impl Handler<Count> for Target {
    type Reply = Streaming<Note>;
    async fn handle(&mut self, c: Count, _: &mut Context<Self>) -> Result<Streaming<Note>, Failure> {
        let items = (0..i64::from(c.count.min(16))).map(|n| Ok(Note { n, ..Default::default() }));
        Ok(Streaming::new(futures_util::stream::iter(items)))
    }
}

/// Registers the target type for remote creates.
pub fn register(builder: ActorPoolBuilder) -> ActorPoolBuilder {
    builder.register("Target", |_: Note| Ok(Target))
}

/// The process's runtime and pool, listening in-process and on a Unix socket, with one
/// target actor `t`. Made on first use.
pub fn fixture() -> &'static (tokio::runtime::Runtime, ActorPool) {
    static FIXTURE: OnceLock<(tokio::runtime::Runtime, ActorPool)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let pool = runtime.block_on(async {
            let socket = std::env::temp_dir().join(format!("xoscar-fuzz-{}.sock", std::process::id()));
            let pool = register(ActorPool::builder(Address::inproc(format!("fuzz-{}", std::process::id()))))
                .internal_address(Address::unix(socket))
                .direct_delivery(false)
                .start()
                .await
                .unwrap();
            pool.create(Target).uid("t").await.unwrap();
            pool
        });
        (runtime, pool)
    })
}

/// Creates the target actor `t` again if a hostile input destroyed it (a valid destroy
/// request is fair input); every other outcome of the input stays.
pub async fn ensure_target(pool: &ActorPool) {
    match pool.create(Target).uid("t").await {
        Ok(_) | Err(xoscar_actor::ActorError::AlreadyExists { .. }) => {}
        Err(error) => panic!("the pool cannot create actors any more: {error}"),
    }
}
