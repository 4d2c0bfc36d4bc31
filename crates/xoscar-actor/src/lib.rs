//! Actors, actor pools, refs, call/tell, lifecycle, errors, batch, streaming, buffers and sub-pool
//! processes for xoscar-rs.
//!
//! Place in the stack: `xoscar-wire` < `xoscar-transport` < `xoscar-pool` < `xoscar-router` <
//! **`xoscar-actor`** < `xoscar`.
//!
//! Not built yet: this crate is a placeholder until its issue lands.
