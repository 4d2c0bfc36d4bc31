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

// One order, bottom to top: error, exposed, placement, wire, observe, neighbours, actor,
// call, transfer, service, named, pool. A module uses only those before it (no circle: checked by
// `cargo xtask check-layers`); docs/architecture.md draws the picture.
mod actor;
mod call;
mod error;
mod exposed;
mod named;
mod neighbours;
mod observe;
mod placement;
mod pool;
mod service;
mod transfer;
mod wire;

/// What a layer above builds on to run the pools of one host together (`xoscar-subpool`:
/// sub pools, placement among them, forwarding through the main pool). A user of actors in
/// one process or across hosts needs none of it.
pub mod extension {
    pub use crate::actor::handle::WeakPoolHandle;
    pub use crate::call::host_requests::{
        create_registered_at, destroy_at, endpoint_for, failure_response, has_at, is_not_found,
        send_routes, tell_gone,
    };
    pub use crate::neighbours::{Ingress, Neighbours};
}

/// The actor layer's headers, generated from `proto/xoscar/actor/v1/actor.proto` (the
/// layout: docs/wire.md). Not part of the API: public only so that this workspace's tests and
/// fuzz targets can speak the raw protocol as a hostile peer would.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!("generated/xoscar.actor.v1.rs");
}

pub use actor::batch::{Batch, MAX_BATCH};
pub use actor::cancel::Cancellation;
pub use actor::context::Context;
pub use actor::handle::{CreateActor, PoolHandle};
pub use actor::reference::ActorRef;
pub use actor::remote::RemoteMessages;
pub use actor::streaming::{PACK_BYTES, PACK_ITEMS, STREAM_WINDOW, Streaming};
pub use actor::traits::{Actor, Handler};
pub use call::client::{
    CreateRemoteActor, actor_ref, caller, configure, create_actor, destroy_actor, has_actor,
    map_address, unmap_address,
};
pub use call::reply_stream::ReplyStream;
pub use error::{ActorError, Failure};
pub use exposed::{BufferGuard, BufferSink, SharedBuffer};
/// What writing and reading streaming replies takes, so that no other dependency is needed:
/// the `Stream` trait [`Streaming::new`] takes and [`ReplyStream`] implements, `StreamExt`
/// (`next`, `map`, ...), and `stream`'s constructors (`stream::iter`, `stream::unfold`, ...),
/// all futures-util's.
pub use futures_util::{Stream, StreamExt, stream};
pub use named::call_named;
pub use observe::debug::{ENV_HOLD, ENV_SLOW_CALL};
pub use observe::metrics;
pub use placement::Placement;
pub use pool::{ActorPool, ActorPoolBuilder, DEFAULT_MAILBOX_CAPACITY, DEFAULT_SHUTDOWN_GRACE};
/// The token that cancels [`ActorRef::call_cancellable`] (tokio-util's, re-exported).
pub use tokio_util::sync::CancellationToken;
pub use transfer::buffer::BufferRef;
pub use transfer::copy::{
    BufferWriter, CopyTo, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNKS_IN_FLIGHT, copy_to,
};
