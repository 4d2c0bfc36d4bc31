//! xoscar-rs: an actor framework for heterogeneous computing, the Rust counterpart of the Python
//! framework xoscar. Actors live in actor pools (one per process, sub pools as child processes,
//! many hosts) and are called by reference `(address, uid)` over long-lived multiplexed
//! connections.
//!
//! This facade is the one crate most users depend on. It re-exports the layers below it:
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`wire`] | `xoscar-wire` | frame layout, protobuf envelopes, codec with hard limits |
//! | [`transport`] | `xoscar-transport` | addresses, listeners, framed channels (tcp, uds, inproc) |
//! | [`pool`] | `xoscar-pool` | multiplexed request/response: leases, idle reaper, heartbeat, serving side |
//! | [`router`] | `xoscar-router` | address mapping: own pool → direct, mapped → internal endpoint, else the address |
//! | [`actor`] | `xoscar-actor` | actors, actor pools, refs, call/tell, lifecycle, errors |
//! | [`subpool`] | `xoscar-subpool` | sub pools (child processes), placement among them, forwarding (feature `subpool`, on by default) |
//!
//! The actor and sub pool APIs are also at the top level: `use xoscar::{Actor, Handler,
//! ActorPool, MainPool, ...}`. The sub pool settings are also methods of `ActorPoolBuilder`
//! once [`WithSubPools`] is imported.
//! Messages that cross processes are prost messages, so a user depends on `prost` too.
//!
//! Transports are cargo features, all on by default: `tcp`, `uds`, `inproc`; so is `subpool`
//! (without it nothing of this crate starts a process).
//!
//! ```
//! use xoscar::{Actor, ActorPool, Context, Failure, Handler, RemoteMessages};
//!
//! struct Counter {
//!     total: i64,
//! }
//!
//! #[derive(Clone, PartialEq, prost::Message)]
//! struct Add {
//!     #[prost(int64, tag = "1")]
//!     n: i64,
//! }
//!
//! impl Actor for Counter {
//!     // Callable from other processes (prost message and reply); in-process callers need nothing.
//!     fn remote_messages(m: &mut RemoteMessages<Self>) {
//!         m.message::<Add>("Add");
//!     }
//! }
//!
//! impl Handler<Add> for Counter {
//!     type Reply = i64; // prost encodes scalars too (as the protobuf wrapper types)
//!     async fn handle(&mut self, add: Add, _: &mut Context<Self>) -> Result<i64, Failure> {
//!         self.total += add.n;
//!         Ok(self.total)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), xoscar::ActorError> {
//! let pool = ActorPool::start("inproc://readme".parse().unwrap()).await?;
//! let counter = pool.create(Counter { total: 0 }).uid("counter").await?;
//! assert_eq!(counter.call(Add { n: 2 }).await?, 2);
//! # Ok(()) }
//! ```

pub use xoscar_actor as actor;
pub use xoscar_pool as pool;
pub use xoscar_router as router;
#[cfg(feature = "subpool")]
pub use xoscar_subpool as subpool;
pub use xoscar_transport as transport;
pub use xoscar_wire as wire;

pub use xoscar_actor::{
    Actor, ActorError, ActorPool, ActorPoolBuilder, ActorRef, Batch, BufferGuard, BufferRef,
    BufferSink, BufferWriter, Cancellation, CancellationToken, Context, CopyTo, CreateActor,
    CreateRemoteActor, Failure, Handler, Placement, PoolHandle, RemoteMessages, ReplyStream,
    SharedBuffer, Streaming, actor_ref, call_named, caller, configure, copy_to, create_actor,
    destroy_actor, has_actor, map_address, unmap_address,
};
/// Streaming replies without another dependency: the `Stream` trait, `StreamExt`, and
/// `stream`'s constructors (`stream::iter`, `stream::unfold`, ...), futures-util's.
pub use xoscar_actor::{Stream, StreamExt, stream};
pub use xoscar_pool::{PoolConfig, ServerConfig};
#[cfg(feature = "subpool")]
pub use xoscar_subpool::{
    MainPool, MainPoolBuilder, Recovery, SubPool, SubPoolInfo, SubPoolSettings, WithSubPools,
    run_if_sub_pool,
};
pub use xoscar_transport::{Address, AuthToken, TransportConfig};
#[cfg(feature = "tls")]
pub use xoscar_transport::{Tls, TlsConfig, TlsError};
