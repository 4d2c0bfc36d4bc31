//! Rust actor types served by the pools this package starts, beside Python actors: a Rust
//! crate that builds its own extension on this one registers them
//! ([`register_rust_actors`]) when its module loads; Python creates them by type name
//! (`xo.create_rust_actor`) and calls them by message name (`xo.call_named`).
//!
//! Uses nothing else of the crate.

use parking_lot::Mutex;
use xoscar::ActorPoolBuilder;

/// Adds Rust actor types to a pool's builder (`builder.register("Counter", ..)`).
pub type RegisterActors = fn(ActorPoolBuilder) -> ActorPoolBuilder;

/// What [`register_rust_actors`] was given: a few functions per process, never removed.
static REGISTERED: Mutex<Vec<RegisterActors>> = Mutex::new(Vec::new());

/// Makes every pool this package starts from now on in this process (main pools and the sub
/// pools it spawns, which load the same extension) serve the actor types `register` adds.
/// Call it when the extension module loads, so that sub pools do the same. Registering the
/// same function twice registers it once.
pub fn register_rust_actors(register: RegisterActors) {
    let mut registered = REGISTERED.lock();
    if !registered.iter().any(|known| std::ptr::fn_addr_eq(*known, register)) {
        registered.push(register);
    }
}

/// `builder` with every registered Rust actor type.
pub(crate) fn with_rust_actors(builder: ActorPoolBuilder) -> ActorPoolBuilder {
    REGISTERED.lock().iter().fold(builder, |builder, register| register(builder))
}
