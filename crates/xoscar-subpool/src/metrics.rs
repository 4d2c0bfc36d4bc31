//! What the sub pool layer reports through the `metrics` facade (names in docs/runtime.md,
//! "Metrics"); the actor and pool layers report the rest.

/// Counter: sub pool processes restarted after they died.
pub const SUB_POOL_RESTARTS: &str = "xoscar_sub_pool_restarts_total";
