//! Sub pools for xoscar-rs: actor pools in child processes of the same executable, started
//! and owned by a main pool ([`MainPool`]), each with its own environment, label and
//! addresses, watched, recovered, and dying with it; placement of actors among a main pool
//! and its sub pools; forwarding through the main pool to the sub pool holding an actor.
//!
//! Place in the stack: `xoscar-actor` < **`xoscar-subpool`** < `xoscar`. The actor crate
//! knows no process: this crate gives each pool its neighbours through
//! `xoscar_actor::extension`, serves the main pool's internal socket, and spawns processes.
//!
//! The executable re-runs itself in sub-pool mode: its `main` starts with the one line
//! [`run_if_sub_pool`], which in a sub pool serves until the main pool goes and never
//! returns, and in the main process returns at once.
//!
//! One order inside, bottom to top: spec, dir, metrics, neighbourhood (with its forwarding
//! and topology), spawn, monitor, host, main_pool, entry (a module uses only those before it; checked by
//! `cargo xtask check-layers`).

mod dir;
mod entry;
mod host;
mod main_pool;
pub mod metrics;
mod monitor;
mod neighbourhood;
mod spawn;
mod spec;

pub use entry::{SubPoolSettings, run_if_sub_pool};
pub use main_pool::{MainPool, MainPoolBuilder, WithSubPools};
pub use monitor::{ExitHook, Recovery};
pub use spec::{ENV_SUB_POOL, SubPool, SubPoolInfo};
