//! Actors and actor pools for xoscar-rs: typed messages, refs that work in-process and across
//! processes, create/has/destroy, call/tell, lifecycle hooks, serial and concurrent actors.
//!
//! Place in the stack: `xoscar-wire` < `xoscar-transport` < `xoscar-pool` < `xoscar-router` <
//! **`xoscar-actor`** < `xoscar`. An actor pool's server is `xoscar-pool`'s serving side with a
//! handler that dispatches by actor uid; calls to other processes go through this process's
//! one caller pool ([`caller`]), routed by `xoscar-router` (a pool of this process is reached
//! directly, with no encoding and no socket).
//!
//! The programming model, ordering and failure semantics are in `docs/actors.md`.

mod actor;
mod batch;
mod body;
mod buffer;
mod cancel;
mod cell;
mod client;
mod context;
mod core;
mod debug;
mod delivery;
mod envelope;
mod error;
mod header;
pub mod metrics;
mod neighbours;
mod placement;
mod pool;
#[cfg(feature = "prometheus")]
mod prometheus;
mod reference;
mod remote;
mod runner;
mod service;
mod streaming;
mod sub_pool;
mod sub_pool_entry;
mod transfer;

/// The actor layer's headers, generated from `proto/xoscar/actor/v1/actor.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!("generated/xoscar.actor.v1.rs");
}

pub use actor::{Actor, Handler};
pub use batch::{Batch, MAX_BATCH};
pub use buffer::{BufferRef, SharedBuffer};
pub use cancel::Cancellation;
pub use client::{
    CreateRemoteActor, actor_ref, caller, configure, create_actor, destroy_actor, has_actor,
    map_address, unmap_address,
};
pub use context::Context;
pub use debug::{ENV_HOLD, ENV_SLOW_CALL};
pub use error::{ActorError, Failure};
/// What writing and reading streaming replies takes, so that no other dependency is needed:
/// the `Stream` trait [`Streaming::new`] takes and [`ReplyStream`] implements, `StreamExt`
/// (`next`, `map`, ...), and `stream`'s constructors (`stream::iter`, `stream::unfold`, ...),
/// all futures-util's.
pub use futures_util::{Stream, StreamExt, stream};
pub use placement::Placement;
pub use pool::{
    ActorPool, ActorPoolBuilder, CreateActor, DEFAULT_MAILBOX_CAPACITY, DEFAULT_SHUTDOWN_GRACE,
    PoolHandle,
};
pub use reference::ActorRef;
pub use remote::RemoteMessages;
pub use streaming::{PACK_BYTES, PACK_ITEMS, ReplyStream, STREAM_WINDOW, Streaming};
pub use sub_pool::{ENV_SUB_POOL, ExitHook, Recovery, SubPool, SubPoolInfo};
pub use sub_pool_entry::run_if_sub_pool;
/// The token that cancels [`ActorRef::call_cancellable`] (tokio-util's, re-exported).
pub use tokio_util::sync::CancellationToken;
pub use transfer::{BufferWriter, CopyTo, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNKS_IN_FLIGHT, copy_to};
