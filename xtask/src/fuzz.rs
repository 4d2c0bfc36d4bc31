//! `cargo xtask fuzz --seconds N`: runs every fuzz target, each for a bounded time, from its
//! committed seed corpus:
//! - `decode_frames`: the wire's handshake and frame decoders on arbitrary bytes;
//! - `actor_requests`: an actor pool's decoding of hostile request headers and payloads;
//! - `hostile_stream`: an actor pool's server fed a hostile byte stream over a Unix socket.
//!
//! cargo-fuzz needs a nightly toolchain; the fuzz crate sits outside the workspace so the stable
//! build never sees it. The seeds of the actor targets are recorded from real traffic by
//! `cargo run --manifest-path fuzz/Cargo.toml --bin seeds`.

use anyhow::{Context, Result, bail};

use crate::{run_step, workspace_root};

const TARGETS: [&str; 3] = ["decode_frames", "actor_requests", "hostile_stream"];

pub fn run(seconds: u64) -> Result<()> {
    let probe = std::process::Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .current_dir(workspace_root())
        .output()
        .context("could not run cargo")?;
    if !probe.status.success() {
        bail!(
            "cargo-fuzz on nightly is not available: install it with `cargo install cargo-fuzz` \
             (and `rustup toolchain install nightly` where there is none)"
        );
    }
    for target in TARGETS {
        // New inputs go to a scratch corpus; the committed seeds stay as they are.
        let scratch = format!("fuzz/target/corpus/{target}");
        std::fs::create_dir_all(workspace_root().join(&scratch))?;
        let seeds = format!("fuzz/corpus/{target}");
        run_step(
            std::process::Command::new("cargo")
                .current_dir(workspace_root())
                .args(["+nightly", "fuzz", "run", target, &scratch, &seeds, "--"])
                .arg(format!("-max_total_time={seconds}")),
        )?;
    }
    Ok(())
}
