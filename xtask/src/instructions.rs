//! `cargo xtask bench --instructions [--compare OLD[..NEW]]`: instructions and allocations per
//! call of fixed shapes (`benches/examples/fixed_actor_calls.rs`), which repeat exactly on a
//! noisy machine where wall time does not.
//!
//! Instructions are callgrind's count (valgrind must be installed), per call at the margin:
//! the difference between runs of `2n` and `n` calls, divided by `n`, so that starting the
//! pools is not counted. Allocations come from the example's counting allocator, over the calls
//! alone (the whole process: a remote shape counts the serving thread too).
//!
//! The example is built with one codegen unit (`CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1`): with
//! the default sixteen, how code is split among units (and so what is inlined) depends on
//! symbol hashes, which depend on the source path, and the same commit measured 5 % apart
//! from one checkout to another. With `--compare`, both revisions are also built from one
//! worktree path in one target directory (`target/compare`), one after the other.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, revision, run_step, workspace_root};

/// One shape: its name, the example's arguments (the call count is `{n}`), and `n`.
struct Shape {
    name: &'static str,
    args: &'static [&'static str],
    calls: u64,
}

const SHAPES: [Shape; 7] = [
    Shape { name: "local ask (actor call)", args: &["ask", "{n}"], calls: 50_000 },
    Shape { name: "local ask, raw (mpsc + oneshot)", args: &["raw", "{n}"], calls: 50_000 },
    Shape { name: "local tell", args: &["tell", "{n}"], calls: 50_000 },
    Shape { name: "remote actor call, 1 in flight", args: &["actor", "{n}", "1"], calls: 10_000 },
    Shape { name: "remote pool call, 1 in flight", args: &["pool", "{n}", "1"], calls: 10_000 },
    Shape { name: "remote actor call, 64 in flight", args: &["actor", "{n}", "64"], calls: 10_000 },
    Shape { name: "remote pool call, 64 in flight", args: &["pool", "{n}", "64"], calls: 10_000 },
];

/// What one binary measured for one shape.
struct Counts {
    instructions: f64,
    allocations: Option<f64>,
}

pub fn run(compare: Option<&str>) -> Result<()> {
    let mut columns: Vec<(String, PathBuf)> = Vec::new();
    match compare {
        None => {
            run_step(cargo().env(ONE_UNIT.0, ONE_UNIT.1).args(EXAMPLE_BUILD))?;
            columns.push(("this tree".into(), example(&workspace_root().join("target"))));
        }
        Some(range) => {
            let (old, new) = revision::range(range);
            for (label, revision) in [("old", old), ("new", new)] {
                let binary = build_at(revision, label)?;
                columns.push((format!("{label} ({revision})"), binary));
            }
        }
    }
    let mut report = String::from(
        "instructions (callgrind, per call at the margin) and allocations per call\n\n| shape |",
    );
    for (label, _) in &columns {
        report.push_str(&format!(" {label}: instructions | allocations |"));
    }
    if columns.len() == 2 {
        report.push_str(" change |");
    }
    report.push_str("\n|---|");
    report.push_str(&"---|---|".repeat(columns.len()));
    report.push_str(if columns.len() == 2 { "---|\n" } else { "\n" });
    for shape in &SHAPES {
        let mut cells = Vec::new();
        let mut instructions = Vec::new();
        for (_, binary) in &columns {
            let counts = measure(binary, shape)?;
            instructions.push(counts.instructions);
            let allocations = counts.allocations.map_or("-".into(), |a| format!("{a:.2}"));
            cells.push(format!("{:.0} | {allocations}", counts.instructions));
        }
        let change = match instructions[..] {
            [old, new] => format!(" {:+.2} % |", (new / old - 1.0) * 100.0),
            _ => String::new(),
        };
        report.push_str(&format!("| {} | {} |{change}\n", shape.name, cells.join(" | ")));
    }
    let out = workspace_root().join("target/bench/instructions.md");
    std::fs::create_dir_all(out.parent().expect("report path has a parent"))?;
    std::fs::write(&out, &report)?;
    println!("{report}");
    eprintln!("written to {}", out.display());
    Ok(())
}

const EXAMPLE_BUILD: [&str; 6] =
    ["build", "--release", "-p", "xoscar-benches", "--example", "fixed_actor_calls"];

/// One codegen unit, so that what is inlined does not depend on where the tree is checked out.
const ONE_UNIT: (&str, &str) = ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");

fn example(target: &Path) -> PathBuf {
    target.join("release/examples/fixed_actor_calls")
}

/// Builds `revision`'s example in the comparison worktree; returns a copy of the binary, kept
/// under `label`.
fn build_at(revision: &str, label: &str) -> Result<PathBuf> {
    let (tree, _) = revision::checkout(revision)?;
    run_step(revision::cargo_in(&tree).env(ONE_UNIT.0, ONE_UNIT.1).args(EXAMPLE_BUILD))?;
    let binary = revision::kept(label)?.join("fixed_actor_calls");
    std::fs::copy(example(&revision::compare_dir().join("target")), &binary)
        .with_context(|| format!("copy the example built at {revision}"))?;
    Ok(binary)
}

/// Instructions per call at the margin, and allocations per call, of `shape` run by `binary`.
fn measure(binary: &Path, shape: &Shape) -> Result<Counts> {
    let once = callgrind(binary, shape, shape.calls)?;
    let twice = callgrind(binary, shape, 2 * shape.calls)?;
    let output = Command::new(binary).args(args(shape, shape.calls)).output()?;
    let allocations = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("allocations per call: ")?.trim().parse().ok());
    Ok(Counts { instructions: (twice - once) as f64 / shape.calls as f64, allocations })
}

fn args(shape: &Shape, calls: u64) -> Vec<String> {
    shape.args.iter().map(|arg| arg.replace("{n}", &calls.to_string())).collect()
}

/// The total instructions callgrind counts for `calls` calls of `shape`.
fn callgrind(binary: &Path, shape: &Shape, calls: u64) -> Result<u64> {
    let out = std::env::temp_dir().join(format!("xtask-callgrind-{}", std::process::id()));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(binary)
        .args(args(shape, calls))
        .stdout(std::process::Stdio::null())
        .status()
        .context("run valgrind (is it installed?)")?;
    if !status.success() {
        bail!("valgrind on {} failed ({status})", shape.name);
    }
    let text = std::fs::read_to_string(&out)?;
    let _ = std::fs::remove_file(&out);
    text.lines()
        .find_map(|line| line.strip_prefix("summary: ").or_else(|| line.strip_prefix("totals: ")))
        .and_then(|total| total.split_whitespace().next()?.parse().ok())
        .context("no total in callgrind's output")
}
