//! `cargo xtask <command>`: the project's automation, in Rust so it runs wherever cargo does.

mod bench;
mod ci;
mod compare;
mod fuzz;
mod instructions;
mod layers;
mod loom;
mod modules;
mod netns;
mod proto;
mod python;
mod revision;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                 everything CI checks: fmt, clippy, layers, proto, tests, the Python
                     package and its suite, per-feature builds,
                     and the netns tests when run as root with iproute2 and iptables
  check-layers       fail if a crate depends on one at its own level or above in the stack, if
                     the modules inside a crate form a circle, or if a crate below
                     xoscar-subpool starts a process (xtask/src/modules.rs)
  module-graph CRATE print which top-level modules of CRATE's src/ each module uses, and its
                     circles (CRATE: a folder such as crates/xoscar-actor)
  proto [--check]    regenerate the prost code from proto/ (--check: fail if it is stale)
  bench [--peers] [--runs N] [FILTER]
                     run the criterion benches (N times, default 1) and write
                     target/bench/report.md: medians of ours, raw limit and their ratio
                     (--peers: also ractor and kameo, a large build)
  bench --compare OLD[..NEW] [--peers] [--runs N] [FILTER]
                     both revisions' benches built alike, then run interleaved (old, new, old,
                     new, ...; N rounds, default 3): per row the new/old time ratio, its range,
                     and which rows got worse by more than 5 %; writes target/bench/compare.md
  bench --instructions [--compare OLD[..NEW]]
                     instructions (callgrind) and allocations per call of fixed shapes, for
                     this tree or two revisions built alike (NEW defaults to HEAD); writes
                     target/bench/instructions.md
  bench --python [--runs N]
                     the Python package (release build) beside xoscar 0.12.2 (installed from
                     PyPI into target/py-venv), same shapes, N alternating rounds (default
                     3); writes target/bench/python.md
  fuzz [--seconds N] run each fuzz target (wire decoders, actor requests, hostile byte
                     streams) for N seconds (default 60; needs nightly and cargo-fuzz)
  loom               model-check the pool's connection state machine with loom
  python             build the Python package (maturin, in target/py-venv, made on first use
                     with python3; PyPI packages installed by name) and run its pytest suite
  netns              real-network fault tests in network namespaces (root, iproute2, iptables)
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = args.split_first().map_or(("", &[][..]), |(c, r)| (c.as_str(), r));
    match command {
        "ci" => ci::run(),
        "check-layers" => layers::check().and_then(|()| modules::check()),
        "module-graph" => match rest {
            [krate] => modules::print(krate),
            _ => bail!("usage: cargo xtask module-graph crates/<name>"),
        },
        "proto" => proto::run(rest.iter().any(|a| a == "--check")),
        "python" => python::run(),
        "bench" if rest.iter().any(|arg| arg == "--python") => {
            let rest: Vec<String> = rest.iter().filter(|arg| *arg != "--python").cloned().collect();
            let (runs, _) = parse_bench_args(&rest)?;
            python::bench(runs.unwrap_or(3))
        }
        "bench" if rest.iter().any(|arg| arg == "--instructions") => {
            let compare = match rest.iter().position(|arg| arg == "--compare") {
                Some(at) => Some(rest.get(at + 1).context("--compare needs OLD[..NEW]")?.as_str()),
                None => None,
            };
            instructions::run(compare)
        }
        "bench" => {
            let peers = rest.iter().any(|arg| arg == "--peers");
            let mut rest: Vec<String> =
                rest.iter().filter(|arg| *arg != "--peers").cloned().collect();
            let compare = match rest.iter().position(|arg| arg == "--compare") {
                Some(at) => {
                    let range = rest.get(at + 1).context("--compare needs OLD[..NEW]")?.clone();
                    rest.drain(at..at + 2);
                    Some(range)
                }
                None => None,
            };
            let (runs, filter) = parse_bench_args(&rest)?;
            match compare {
                Some(range) => compare::run(&range, runs.unwrap_or(3), filter, peers),
                None => bench::run(filter, runs.unwrap_or(1), peers),
            }
        }
        "fuzz" => fuzz::run(parse_seconds(rest)?),
        "loom" => loom::run(),
        "netns" => netns::run(),
        "" | "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// `[--runs N] [FILTER]`: the runs asked for, if any, and the filter.
fn parse_bench_args(args: &[String]) -> Result<(Option<usize>, Option<&str>)> {
    match args {
        [flag, runs, rest @ ..] if flag == "--runs" => {
            let runs = runs
                .parse()
                .with_context(|| format!("--runs takes a whole number, got {runs:?}"))?;
            Ok((Some(runs), rest.first().map(String::as_str)))
        }
        _ => Ok((None, args.first().map(String::as_str))),
    }
}

fn parse_seconds(args: &[String]) -> Result<u64> {
    match args {
        [] => Ok(60),
        [flag, value] if flag == "--seconds" => {
            value.parse().with_context(|| format!("--seconds takes a whole number, got {value:?}"))
        }
        _ => bail!("usage: cargo xtask fuzz [--seconds N]"),
    }
}

/// The workspace root (the parent of this crate's manifest directory).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// A `cargo` command run from the workspace root, with the cargo that runs us.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}

/// Runs a command, echoing it first, and fails if it does not succeed.
pub(crate) fn run_step(command: &mut Command) -> Result<()> {
    eprintln!("\n$ {}", describe(command));
    let status =
        command.status().with_context(|| format!("could not start `{}`", describe(command)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(command));
    }
    Ok(())
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}
