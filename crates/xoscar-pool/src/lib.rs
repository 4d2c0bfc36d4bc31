//! Both ends of xoscar-rs's multiplexed request/response protocol, over `xoscar-transport`:
//!
//! - the caller side, [`Pool`]: calls ([`Pool::call`]), one-way sends ([`Pool::notify`]) and
//!   transfer leases ([`Pool::lease`]) to endpoints, over one long-lived connection per
//!   (tokio runtime, endpoint) carrying many calls at once;
//! - the serving side, [`serve`]: runs a [`Handler`] for every request on a listener.
//!
//! The connection lifecycle is the point of this crate (see `docs/runtime.md`):
//!
//! - **Leases.** Every call holds a lease on its connection from before its request is queued
//!   until its response, its error, or the drop of its future (RAII: it cannot leak or go
//!   negative). A one-way send holds one until its frame is written; [`Lease`] holds one for a
//!   multi-frame transfer.
//! - **Idle reaper.** A connection that has held no lease for `idle_timeout` (default 30 s) is
//!   closed within `idle_timeout + max(idle_timeout / 10, 50 ms)`, never one with a lease;
//!   taking a lease and reaping are atomic, so a caller never gets a closing connection.
//! - **Closed connections** leave the pool at once. Calls whose request was written fail at once
//!   with [`PoolError::ConnectionLost`]; those not yet written are sent again on a fresh
//!   connection. [`PoolError::is_retry_safe`] tells whether a request never reached a handler.
//! - **Liveness.** While a lease is held and no bytes arrive for `heartbeat_interval`, the
//!   caller pings (ahead of queued data); nothing within `heartbeat_timeout` of the ping being
//!   written and the connection is dead ([`PoolError::ConnectionTimedOut`]). Servers answer
//!   pings from the connection task, never from a handler, so a long call does not look dead.
//! - **Graceful go-away.** A server going away (idle for `server_idle_timeout`, default 120 s,
//!   or shutting down) serves whatever the caller sent until the caller closes its side, so it
//!   never fails a call and never drops a one-way message it read.
//! - **Flow control.** Both ends bound what one connection may hold (the caller's outgoing
//!   queue in bytes; the server's requests in flight and bytes held); at the bound the caller
//!   waits for room and the server stops reading.
//! - **Failing handlers.** A handler that panics fails only its own call
//!   ([`PoolError::HandlerPanicked`]); handler tasks end with their connection.
//! - **Cancellation.** Dropping a call future sends a cancel; the server drops that request's
//!   handler future.
//! - **Order.** One-way messages from one caller to one endpoint reach the handler in the order
//!   they were sent; [`Pool::notify`] returns once its message is written.
//!
//! Place in the stack: `xoscar-wire` < `xoscar-transport` < **`xoscar-pool`** < `xoscar-router`
//! < `xoscar-actor` < `xoscar`. It knows nothing of actors or of address mapping.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use xoscar_pool::testing::Echo;
//! use xoscar_pool::{Message, Pool, PoolConfig, ServerConfig, serve};
//! use xoscar_transport::{TransportConfig, listen};
//!
//! let listener = listen(&"inproc://doc-echo".parse()?, &TransportConfig::default()).await?;
//! let server = serve(listener, Echo, ServerConfig::default())?;
//! let pool = Pool::new(PoolConfig::default())?;
//! let reply = pool.call(server.local_addr(), Message::new("header", vec![])).await?;
//! assert_eq!(&reply.header[..], b"header");
//! # Ok(())
//! # }
//! ```

mod client;
mod config;
mod error;
mod gate;
mod id_map;
mod message;
mod server;
mod signal;
mod stats;
mod sync;

pub use client::{
    DEFAULT_STREAM_WINDOW, Endpoint, Lease, MAX_STREAM_WINDOW, Pool, RecentConnection,
    ResponseStream,
};
pub use config::{
    ConfigError, DEFAULT_MAX_CONNECTIONS, ENV_AUTH_TOKEN, ENV_CONNECT_TIMEOUT,
    ENV_HEARTBEAT_INTERVAL, ENV_HEARTBEAT_TIMEOUT, ENV_IDLE_TIMEOUT, ENV_SERVER_IDLE_TIMEOUT,
    MAX_DURATION, PoolConfig, ResolvedPoolConfig, ResolvedServerConfig, ServerConfig,
};
/// How every layer reads its `XOSCAR_*` settings: shared with the layers above (the actor
/// layer's pools read the same variables), not part of this crate's API.
#[doc(hidden)]
pub use config::{env_auth_token, env_seconds};
pub use error::{PoolError, StreamError};
pub use message::Message;
pub use server::{Handler, Responder, Server, serve};

/// Ready-made handlers for tests, examples and benchmarks.
pub mod testing {
    pub use crate::server::Echo;
}
pub use stats::PoolStats;
