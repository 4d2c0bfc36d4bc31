//! `cargo xtask loom`: model-checks xoscar-pool's connection state machine with loom.
//!
//! The models live in `crates/xoscar-pool/src/client/loom_model.rs` and compile only under
//! `--cfg xoscar_loom` (a name of our own: `--cfg loom` would also switch tokio into its loom
//! mode). They build into their own target directory, so switching flags never invalidates the
//! normal build.

use anyhow::Result;

use crate::{cargo, run_step, workspace_root};

pub fn run() -> Result<()> {
    let target = workspace_root().join("target/loom");
    run_step(cargo().env("RUSTFLAGS", "--cfg xoscar_loom").env("CARGO_TARGET_DIR", target).args([
        "test",
        "-p",
        "xoscar-pool",
        "--lib",
        "--release",
        "loom_model",
    ]))
}
