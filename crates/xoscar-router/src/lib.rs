//! Address mapping for xoscar-rs: which concrete endpoint reaches an actor address (own pool →
//! local, same host → Unix socket, else TCP; proxies), handed to `xoscar-pool`.
//!
//! Place in the stack: `xoscar-wire` < `xoscar-transport` < `xoscar-pool` < **`xoscar-router`**
//! < `xoscar-actor` < `xoscar`. It knows nothing of actor semantics.
//!
//! Not built yet: this crate is a placeholder until its issue lands.
