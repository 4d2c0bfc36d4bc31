//! `cargo xtask fuzz --seconds N`: runs the wire decoder fuzz target for a bounded time.
//! cargo-fuzz needs a nightly toolchain; the fuzz crate sits outside the workspace so the stable
//! build never sees it.

use anyhow::{Context, Result, bail};

use crate::{run_step, workspace_root};

const TARGET: &str = "decode_frames";

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
    let corpus = format!("fuzz/corpus/{TARGET}");
    run_step(
        std::process::Command::new("cargo")
            .current_dir(workspace_root())
            .args(["+nightly", "fuzz", "run", TARGET, &corpus, "--"])
            .arg(format!("-max_total_time={seconds}")),
    )
}
