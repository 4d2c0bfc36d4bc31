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
//! | [`router`] | `xoscar-router` | address mapping (in progress) |
//! | [`actor`] | `xoscar-actor` | actors and actor pools (in progress) |
//!
//! Transports are cargo features, all on by default: `tcp`, `uds`, `inproc`.

pub use xoscar_actor as actor;
pub use xoscar_pool as pool;
pub use xoscar_router as router;
pub use xoscar_transport as transport;
pub use xoscar_wire as wire;
