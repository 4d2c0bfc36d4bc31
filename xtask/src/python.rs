//! `cargo xtask python`: the Python package `xoscar_rs` built by maturin into a virtual
//! environment of its own (`target/py-venv`, made with the machine's `python3` on first use),
//! with what it needs installed from PyPI by name, then its pytest suite run.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::{run_step, workspace_root};

/// What the build and the suite need from PyPI (the package itself needs only cloudpickle;
/// pandas is for one of xoscar's own tests, which the suite runs as xoscar wrote it; numpy
/// for the transfer tests).
const REQUIREMENTS: [&str; 7] = [
    "maturin>=1.9,<2",
    "pytest>=8",
    "pytest-asyncio>=0.24",
    "pytest-timeout>=2",
    "cloudpickle>=2",
    "pandas>=2",
    "numpy>=1.24",
];

/// The virtual environment, made and provisioned if needed; its python.
pub fn environment() -> Result<std::path::PathBuf> {
    let venv = workspace_root().join("target/py-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let system = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
        run_step(Command::new(system).args(["-m", "venv"]).arg(&venv))?;
    }
    let mut install = Command::new(&python);
    install.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
    run_step(install.args(REQUIREMENTS))?;
    Ok(python)
}

/// Builds the package into the environment (`release`: optimized, for benches) with the
/// crate's `features`.
pub fn build(python: &Path, release: bool, features: &[&str]) -> Result<()> {
    let venv = python.parent().and_then(Path::parent).expect("venv/bin/python");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![venv.join("bin")];
    paths.extend(std::env::split_paths(&path));
    let mut develop = Command::new(python);
    develop
        .args(["-m", "maturin", "develop", "--quiet"])
        .current_dir(workspace_root().join("crates/xoscar-py"))
        .env("VIRTUAL_ENV", venv)
        .env("PATH", std::env::join_paths(paths)?);
    if release {
        develop.arg("--release");
    }
    if !features.is_empty() {
        develop.args(["--features", &features.join(",")]);
    }
    run_step(&mut develop)
}

pub fn run() -> Result<()> {
    let python = environment()?;
    // With the example Rust actor registered in every pool: the suite puts Rust and Python
    // actors in one pool.
    build(&python, false, &["example-actors"])?;
    // The Rust pool the suite calls by message name.
    run_step(crate::cargo().args(["build", "-p", "xoscar-py", "--example", "rust_counter"]))?;
    let mut pytest = Command::new(&python);
    pytest.args(["-m", "pytest", "-q"]).current_dir(workspace_root().join("crates/xoscar-py"));
    run_step(&mut pytest)
}

/// `cargo xtask bench --python`: ours (an optimized build) beside xoscar 0.12.2 in the same
/// run, `rounds` alternating rounds; the table goes to `target/bench/python.md`.
pub fn bench(rounds: usize) -> Result<()> {
    let python = environment()?;
    let mut install = Command::new(&python);
    install.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]);
    run_step(install.arg("xoscar==0.12.2"))?;
    build(&python, true, &[])?;
    let root = workspace_root();
    let mut bench = Command::new(&python);
    bench
        .arg(root.join("crates/xoscar-py/bench/vs_xoscar.py"))
        .args(["--rounds", &rounds.to_string(), "--out"])
        .arg(root.join("target/bench/python.md"))
        .current_dir(&root);
    let result = run_step(&mut bench);
    // The suite runs against the debug build: put it back.
    build(&python, false, &["example-actors"])?;
    result
}
