//! `xoscar_rs._native`: the Rust half of the Python package `xoscar_rs` (xoscar's API on this
//! runtime). Python actors are one Rust actor type carrying pickled calls; pools, refs,
//! routing, connections and sub pool processes are the runtime's. The GIL is held only while
//! Python code runs or Python objects are made: every await runs on the tokio runtime of
//! `pyo3-async-runtimes` without it.
//!
//! One order inside, bottom to top: buffer and bridge, errors, rust_actors, actor, pool, refs,
//! transfer (example_actors, a test feature, stands alone) (a module uses only
//! those before it; checked by `cargo xtask check-layers`). The Python half, in
//! `python/xoscar_rs/`, is described in docs/python.md.

mod actor;
mod bridge;
mod buffer;
mod errors;
#[cfg(feature = "example-actors")]
pub mod example_actors;
mod pool;
mod refs;
mod rust_actors;
mod transfer;

pub use actor::{PyActor, PyStream};
pub use rust_actors::{RegisterActors, register_rust_actors};

use pyo3::prelude::*;

/// The module `xoscar_rs._native`.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    #[cfg(feature = "example-actors")]
    register_rust_actors(example_actors::register);
    module.add_class::<pool::NativePool>()?;
    module.add_class::<refs::NativeRef>()?;
    module.add_function(wrap_pyfunction!(pool::start_pool, module)?)?;
    module.add_function(wrap_pyfunction!(pool::serve_sub_pool, module)?)?;
    module.add_function(wrap_pyfunction!(refs::create_actor, module)?)?;
    module.add_function(wrap_pyfunction!(refs::actor_ref, module)?)?;
    module.add_function(wrap_pyfunction!(refs::has_actor, module)?)?;
    module.add_function(wrap_pyfunction!(refs::destroy_actor, module)?)?;
    module.add_function(wrap_pyfunction!(refs::call_named, module)?)?;
    module.add_function(wrap_pyfunction!(refs::caller_stats, module)?)?;
    module.add_function(wrap_pyfunction!(transfer::expose_buffer, module)?)?;
    module.add_function(wrap_pyfunction!(transfer::withdraw_buffer, module)?)?;
    module.add_function(wrap_pyfunction!(transfer::copy_to, module)?)?;
    module.add("TYPE_NAME", actor::TYPE_NAME)?;
    module.add("PICKLED_ERROR", actor::PICKLED_ERROR)?;
    Ok(())
}
