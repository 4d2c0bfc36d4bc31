//! `cargo xtask ci`: the whole check that `.ci/run` performs on a clean clone.

use anyhow::Result;

use crate::{cargo, run_step};

/// Each transport alone must build, lint clean and pass its tests.
const TRANSPORT_FEATURES: [&str; 3] = ["tcp", "uds", "inproc"];

pub fn run() -> Result<()> {
    run_step(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run_step(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    crate::layers::check()?;
    crate::modules::check()?;
    crate::proto::run(true)?;
    // --all-targets also runs each criterion bench once, as a smoke test; doc tests need --doc.
    run_step(cargo().args(["test", "--workspace", "--all-targets"]))?;
    run_step(cargo().args(["test", "--workspace", "--doc"]))?;
    // The Python package: built by maturin into a virtual environment, its pytest suite (with
    // the example Rust actor registered, whose feature is linted too).
    let example = ["-p", "xoscar-py", "--features", "example-actors", "--all-targets"];
    run_step(cargo().arg("clippy").args(example).args(["--", "-D", "warnings"]))?;
    crate::python::run()?;
    crate::loom::run()?;
    // Optional features: TLS and the Prometheus endpoint build, lint clean and pass their tests.
    let optional = [
        ("xoscar-transport", "tls"),
        ("xoscar-actor", "prometheus"),
        ("xoscar-subpool", "prometheus"),
    ];
    for (krate, feature) in optional {
        let with = ["-p", krate, "--features", feature];
        run_step(cargo().arg("clippy").args(with).args(["--all-targets", "--", "-D", "warnings"]))?;
        run_step(cargo().arg("test").args(with).args(["--test", feature]))?;
    }
    // The facade without sub pools: actors in one process or across hosts, no process code.
    let no_sub_pools = ["-p", "xoscar", "--no-default-features", "--features", "tcp,uds,inproc"];
    run_step(cargo().arg("clippy").args(no_sub_pools).args(["--lib", "--", "-D", "warnings"]))?;
    for feature in TRANSPORT_FEATURES {
        let only = ["-p", "xoscar-transport", "--no-default-features", "--features", feature];
        run_step(cargo().arg("clippy").args(only).args(["--all-targets", "--", "-D", "warnings"]))?;
        run_step(cargo().arg("test").args(only))?;
    }
    crate::netns::run_if_available()?;
    eprintln!("\nci ok");
    Ok(())
}
