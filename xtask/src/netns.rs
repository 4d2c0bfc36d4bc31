//! `cargo xtask netns`: the real-network fault tests (`crates/xoscar/tests/netns.rs`), which
//! make network namespaces and iptables rules and so need root, iproute2 and iptables.
//!
//! Namespaces left behind by a test process that was killed are deleted before and after the
//! run (each is named after the pid that made it; see `xoscar_testkit::netns`).

use anyhow::{Result, bail};
use xoscar_testkit::netns;

use crate::{cargo, run_step};

/// Runs the tests; an error when this machine cannot run them.
pub fn run() -> Result<()> {
    if let Err(why) = netns::available() {
        bail!("the netns tests need root, iproute2 and iptables: {why}");
    }
    let result = run_step(cargo().args([
        "test",
        "-p",
        "xoscar",
        "--test",
        "netns",
        "--",
        "--ignored",
        "--test-threads=1",
        "--nocapture",
    ]));
    let stale = netns::remove_stale();
    if stale > 0 {
        eprintln!("netns: deleted {stale} namespaces left by killed test processes");
    }
    result
}

/// For `cargo xtask ci`: runs them when this machine can, says why not otherwise.
pub fn run_if_available() -> Result<()> {
    match netns::available() {
        Ok(()) => run(),
        Err(why) => {
            eprintln!("\nnetns tests skipped ({why}); `.ci/run` as root installs what they need");
            Ok(())
        }
    }
}
