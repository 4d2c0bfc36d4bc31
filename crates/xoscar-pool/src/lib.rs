//! Both ends of xoscar-rs's multiplexed request/response protocol: the caller-side pool
//! (connections dialled through `xoscar-transport`, request/response matching, leases, idle
//! reaper, liveness, per-runtime isolation, cancellation) and the serving side.
//!
//! Place in the stack: `xoscar-wire` < `xoscar-transport` < **`xoscar-pool`** < `xoscar-router`
//! < `xoscar-actor` < `xoscar`. It knows nothing of actors or of address mapping.
//!
//! Not built yet: this crate is a placeholder until its issue lands.
