//! `cargo xtask bench --instructions [--compare OLD[..NEW]]`: instructions and allocations per
//! call of fixed shapes (`benches/examples/fixed_actor_calls.rs`), which repeat exactly on a
//! noisy machine where wall time does not.
//!
//! Instructions are callgrind's count (valgrind must be installed), per call at the margin:
//! the difference between runs of `2n` and `n` calls, divided by `n`, so that starting the
//! pools is not counted. Threads are counted apart: a remote shape's caller runs on the main
//! thread and its server on a thread of its own, so the report also splits those shapes'
//! counts into the caller's side and the server's. Allocations come from the example's
//! counting allocator, over the calls alone (the whole process: a remote shape counts the
//! serving thread too).
//!
//! Atomic read-modify-writes (a lock taken or released, a count moved) are counted from the same
//! runs: callgrind's per-instruction counts (`--dump-instr=yes`), summed over the instructions
//! `objdump -d` shows with a `lock` prefix or as an `xchg` with memory (implicitly locked). On
//! this machine wall time follows them more than it follows instructions (see
//! docs/architecture.md). Without objdump the column says `-`.
//!
//! The example is built with one codegen unit (`CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1`): with
//! the default sixteen, how code is split among units (and so what is inlined) depends on
//! symbol hashes, which depend on the source path, and the same commit measured 5 % apart
//! from one checkout to another. With `--compare`, both revisions are also built from one
//! worktree path in one target directory (`target/compare`), one after the other.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use anyhow::{Context, Result, bail};

use crate::bench::write_report;
use crate::{cargo, revision, run_step, workspace_root};

/// One shape: its name, the example's arguments (the call count is `{n}`), and `n`.
struct Shape {
    name: &'static str,
    args: &'static [&'static str],
    calls: u64,
}

const SHAPES: [Shape; 11] = [
    Shape { name: "local ask (actor call)", args: &["ask", "{n}"], calls: 50_000 },
    Shape { name: "local ask, raw (mpsc + oneshot)", args: &["raw", "{n}"], calls: 50_000 },
    Shape { name: "local tell", args: &["tell", "{n}"], calls: 50_000 },
    Shape { name: "remote actor call, 1 in flight", args: &["actor", "{n}", "1"], calls: 10_000 },
    Shape { name: "remote pool call, 1 in flight", args: &["pool", "{n}", "1"], calls: 10_000 },
    Shape { name: "remote actor call, 64 in flight", args: &["actor", "{n}", "64"], calls: 10_000 },
    Shape { name: "remote pool call, 64 in flight", args: &["pool", "{n}", "64"], calls: 10_000 },
    Shape {
        name: "remote pool call through an Endpoint, 64 in flight",
        args: &["endpoint", "{n}", "64"],
        calls: 10_000,
    },
    Shape {
        name: "remote call, raw (multiplexed socket), 64 in flight",
        args: &["mux", "{n}", "64"],
        calls: 10_000,
    },
    Shape { name: "wire encode + decode, 64 B frame", args: &["wire", "{n}"], calls: 100_000 },
    Shape { name: "wire, raw (length prefix)", args: &["wire-raw", "{n}"], calls: 100_000 },
];

/// What one binary measured for one shape, per call.
struct Counts {
    instructions: f64,
    allocations: Option<f64>,
    /// Tokio task polls and wake-ups that scheduled a task (callgrind's call counts of the
    /// task vtable's `poll` and `schedule`).
    polls: f64,
    wakeups: f64,
    /// The main thread's share of `instructions` (the caller's side), when other threads
    /// counted too (a remote shape's server).
    caller: Option<f64>,
    /// Atomic read-modify-writes: over every thread, and the main thread's (`None` without
    /// objdump).
    atomics: Option<(f64, f64)>,
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
    let mut activity = format!(
        "\nper call, {}: tokio task polls, wake-ups that scheduled a task, atomic \
         read-modify-writes (callgrind; the example's allocation counter adds one per allocation), \
         system calls (strace), whole process\n\n| shape | task \
         polls | wake-ups | atomics | syscalls |\n|---|---|---|---|---|\n",
        columns.last().map_or("", |(label, _)| label.as_str())
    );
    let mut sides = format!(
        "\nper call, {}, by side: the caller's thread and the server's (instructions, then \
         atomic read-modify-writes)\n\n| shape | caller | server | caller atomics | server \
         atomics |\n|---|---|---|---|---|\n",
        columns.last().map_or("", |(label, _)| label.as_str())
    );
    for shape in &SHAPES {
        let mut cells = Vec::new();
        let mut instructions = Vec::new();
        for (index, (_, binary)) in columns.iter().enumerate() {
            let counts = measure(binary, shape)?;
            if index + 1 == columns.len() {
                let syscalls = syscalls(binary, shape)?.map_or("-".into(), |s| format!("{s:.2}"));
                let atomics = counts.atomics.map_or("-".into(), |(all, _)| format!("{all:.1}"));
                activity.push_str(&format!(
                    "| {} | {:.2} | {:.2} | {atomics} | {syscalls} |\n",
                    shape.name, counts.polls, counts.wakeups
                ));
                if let Some(caller) = counts.caller {
                    let server = counts.instructions - caller;
                    let (caller_atomics, server_atomics) = match counts.atomics {
                        Some((all, main)) => (format!("{main:.1}"), format!("{:.1}", all - main)),
                        None => ("-".into(), "-".into()),
                    };
                    sides.push_str(&format!(
                        "| {} | {caller:.0} | {server:.0} | {caller_atomics} | {server_atomics} |\n",
                        shape.name
                    ));
                }
            }
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
    report.push_str(&activity);
    report.push_str(&sides);
    write_report("instructions.md", &report)
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
    let per_call = |twice: u64, once: u64| twice.saturating_sub(once) as f64 / shape.calls as f64;
    let several_threads = once.threads > 1 && twice.threads > 1;
    let atomics = match (once.atomics, twice.atomics) {
        (Some((all_once, main_once)), Some((all_twice, main_twice))) => {
            Some((per_call(all_twice, all_once), per_call(main_twice, main_once)))
        }
        _ => None,
    };
    Ok(Counts {
        instructions: per_call(twice.instructions, once.instructions),
        allocations,
        polls: per_call(twice.polls, once.polls),
        wakeups: per_call(twice.schedules, once.schedules),
        caller: several_threads.then(|| per_call(twice.main_thread, once.main_thread)),
        atomics,
    })
}

/// System calls per call at the margin, counted by `strace -f -c`; `None` without strace.
fn syscalls(binary: &Path, shape: &Shape) -> Result<Option<f64>> {
    let count = |calls: u64| -> Result<Option<u64>> {
        let out = std::env::temp_dir().join(format!("xtask-strace-{}", std::process::id()));
        let status = Command::new("strace")
            .args(["-f", "-c", "-o"])
            .arg(&out)
            .arg(binary)
            .args(args(shape, calls))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let Ok(status) = status else { return Ok(None) };
        if !status.success() {
            bail!("strace on {} failed ({status})", shape.name);
        }
        let text = std::fs::read_to_string(&out)?;
        let _ = std::fs::remove_file(&out);
        Ok(strace_total(&text))
    };
    let (Some(once), Some(twice)) = (count(shape.calls)?, count(2 * shape.calls)?) else {
        return Ok(None);
    };
    Ok(Some(twice.saturating_sub(once) as f64 / shape.calls as f64))
}

/// The call count of `strace -c`'s `total` line.
fn strace_total(text: &str) -> Option<u64> {
    let total = text.lines().find(|line| line.trim_end().ends_with("total"))?;
    // usage: % time, seconds, usecs/call, calls, [errors,] "total"
    total.split_whitespace().nth(3)?.parse().ok()
}

fn args(shape: &Shape, calls: u64) -> Vec<String> {
    shape.args.iter().map(|arg| arg.replace("{n}", &calls.to_string())).collect()
}

/// What callgrind counted over a whole run.
struct Callgrind {
    /// Over every thread.
    instructions: u64,
    /// The main thread's (callgrind's thread 1).
    main_thread: u64,
    /// How many threads ran.
    threads: usize,
    /// Calls of tokio's task `poll` and `schedule` (a wake-up that queued a task).
    polls: u64,
    schedules: u64,
    /// Atomic read-modify-writes executed: over every thread, and the main thread's (`None`
    /// without objdump).
    atomics: Option<(u64, u64)>,
}

/// What callgrind counts for `calls` calls of `shape`, thread by thread (callgrind writes one
/// file per thread, numbered from 1, the main thread's first).
fn callgrind(binary: &Path, shape: &Shape, calls: u64) -> Result<Callgrind> {
    let out = std::env::temp_dir().join(format!("xtask-callgrind-{}", std::process::id()));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet", "--separate-threads=yes"])
        // Per instruction, with absolute addresses: for the atomics' count.
        .args(["--dump-instr=yes", "--compress-pos=no"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(binary)
        .args(args(shape, calls))
        .stdout(std::process::Stdio::null())
        .status()
        .context("run valgrind (is it installed?)")?;
    if !status.success() {
        bail!("valgrind on {} failed ({status})", shape.name);
    }
    let mut counted = Callgrind {
        instructions: 0,
        main_thread: 0,
        threads: 0,
        polls: 0,
        schedules: 0,
        atomics: Some((0, 0)),
    };
    let mut objects = Objects::default();
    for thread in 1.. {
        let file = PathBuf::from(format!("{}-{thread:02}", out.display()));
        let Ok(text) = std::fs::read_to_string(&file) else { break };
        let _ = std::fs::remove_file(&file);
        let instructions = total(&text).context("no total in callgrind's output")?;
        if thread == 1 {
            counted.main_thread = instructions;
        }
        counted.instructions += instructions;
        counted.threads += 1;
        counted.polls += calls_to(&text, "tokio::runtime::task::raw::poll");
        counted.schedules += calls_to(&text, "tokio::runtime::task::raw::schedule");
        let atomics = atomics_run(&text, &mut |object| objects.atomic_addresses(object));
        counted.atomics = match (counted.atomics, atomics) {
            (Some((all, main)), Some(here)) => {
                Some((all + here, if thread == 1 { here } else { main }))
            }
            _ => None,
        };
    }
    if counted.threads == 0 {
        bail!("callgrind wrote no output for {}", shape.name);
    }
    Ok(counted)
}

/// The instruction total of one callgrind output.
fn total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("summary: ").or_else(|| line.strip_prefix("totals: ")))
        .and_then(|total| total.split_whitespace().next()?.parse().ok())
}

/// How many times the functions whose name starts with `name` were called, summed over
/// callgrind's call records (`cfn=` names the callee, compressed to `(id)` after its first
/// mention; the `calls=` line after it gives the count).
fn calls_to(text: &str, name: &str) -> u64 {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut callee_matches = false;
    let mut total = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("fn=").or_else(|| line.strip_prefix("cfn=")) {
            let id = name_id(rest, &mut names);
            if line.starts_with("cfn=") {
                callee_matches = names.get(id).is_some_and(|callee| callee.starts_with(name));
            }
        } else if let Some(count) = line.strip_prefix("calls=") {
            if callee_matches {
                total += count.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
            }
            callee_matches = false;
        }
    }
    total
}

/// The id of a compressed callgrind name (`(id) name` at its first mention, `(id)` after),
/// recording the name under it when given.
fn name_id<'a>(rest: &'a str, names: &mut HashMap<&'a str, &'a str>) -> &'a str {
    let (id, given) = rest.split_once(' ').map_or((rest, None), |(id, n)| (id, Some(n)));
    if let Some(given) = given {
        names.insert(id, given);
    }
    id
}

/// The addresses of each object's atomic read-modify-write instructions, disassembled once.
#[derive(Default)]
struct Objects(HashMap<String, Option<Rc<HashSet<u64>>>>);

impl Objects {
    /// `None` when objdump is missing. An object it cannot read (callgrind's `???` for code
    /// outside any file) has none.
    fn atomic_addresses(&mut self, object: &str) -> Option<Rc<HashSet<u64>>> {
        self.0
            .entry(object.to_owned())
            .or_insert_with(|| {
                let output = Command::new("objdump")
                    .args(["-d", "--no-show-raw-insn"])
                    .arg(object)
                    .output()
                    .ok()?;
                Some(Rc::new(match output.status.success() {
                    true => atomic_instructions(&output.stdout),
                    false => HashSet::new(),
                }))
            })
            .clone()
    }
}

/// The addresses of the instructions in `objdump -d` output that are atomic read-modify-writes:
/// `lock`-prefixed, or an `xchg` with a memory operand.
fn atomic_instructions(disassembly: &[u8]) -> HashSet<u64> {
    String::from_utf8_lossy(disassembly)
        .lines()
        .filter_map(|line| {
            let (address, instruction) = line.trim_start().split_once(":\t")?;
            let instruction = instruction.trim_start();
            let atomic = instruction.starts_with("lock ")
                || (instruction.starts_with("xchg") && instruction.contains('('));
            atomic.then(|| u64::from_str_radix(address, 16).ok()).flatten()
        })
        .collect()
}

/// How many atomic read-modify-writes one callgrind output (made with `--dump-instr=yes
/// --compress-pos=no`) executed: the self cost of each instruction at an address
/// `atomic_addresses` gives for its object (`ob=`, compressed to `(id)` after its first
/// mention). A cost line right after `calls=` is the call's inclusive cost, not counted.
/// `None` when `atomic_addresses` has no answer (no objdump).
fn atomics_run(
    text: &str,
    atomic_addresses: &mut dyn FnMut(&str) -> Option<Rc<HashSet<u64>>>,
) -> Option<u64> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let (mut object, mut after_call, mut total) = (None, false, 0);
    for line in text.lines() {
        // An object's name is given at its first mention, in `ob=` or a callee's `cob=`.
        if let Some(rest) = line.strip_prefix("ob=").or_else(|| line.strip_prefix("cob=")) {
            let id = name_id(rest, &mut names);
            if line.starts_with("ob=") {
                let name = names.get(id).copied().unwrap_or(rest);
                object = Some(atomic_addresses(name)?);
            }
        } else if line.starts_with("calls=") {
            after_call = true;
        } else if let Some(address) = line.strip_prefix("0x") {
            if std::mem::take(&mut after_call) {
                continue;
            }
            let mut fields = address.split_whitespace();
            let address = fields.next().and_then(|a| u64::from_str_radix(a, 16).ok());
            let executed: u64 = fields.last().and_then(|n| n.parse().ok()).unwrap_or(0);
            if let (Some(address), Some(atomic)) = (address, &object)
                && atomic.contains(&address)
            {
                total += executed;
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_summed_by_callee_name_through_compressed_ids() {
        let text = "fn=(1) main\ncfn=(2) tokio::runtime::task::raw::poll<T>\ncalls=3 10\n5 7\n\
                    cfn=(3) other\ncalls=100 1\n1 1\nfn=(4) elsewhere\ncfn=(2)\ncalls=4 2\n1 1\n";
        assert_eq!(calls_to(text, "tokio::runtime::task::raw::poll"), 7);
        assert_eq!(calls_to(text, "other"), 100);
        assert_eq!(calls_to(text, "missing"), 0);
    }

    #[test]
    fn atomics_are_the_self_costs_of_locked_instructions_and_not_a_call_s_inclusive_cost() {
        let disassembly = b"0000000000001000 <f>:\n    1000:\tlock cmpxchg %rcx,(%rdx)\n    \
                            1008:\tmov    %rax,%rbx\n    100c:\txchg   %rax,(%rbx)\n    \
                            1010:\txchg   %ax,%ax\n";
        let atomic = atomic_instructions(disassembly);
        assert_eq!(atomic, HashSet::from([0x1000, 0x100c]));
        let text = "ob=(1) /bin/x\nfn=(1) f\n0x1000 12 5\n0x1008 12 5\ncob=(2) /lib/y\n\
                    cfn=(2) g\ncalls=2 0x2000 3\n0x100c 13 99\n0x100c 13 4\nob=(2)\nfn=(2)\n\
                    0x1000 1 7\nob=(1)\nfn=(1)\n0x1010 1 8\n0x1000 1 1\n";
        let (atomic, none) = (Rc::new(atomic), Rc::new(HashSet::new()));
        let mut addresses =
            |object: &str| Some(if object == "/bin/x" { atomic.clone() } else { none.clone() });
        // 5 and 1 at the cmpxchg, 4 at the xchg; 99 is the call's inclusive cost.
        assert_eq!(atomics_run(text, &mut addresses), Some(10));
        assert_eq!(atomics_run(text, &mut |_| None), None);
    }

    #[test]
    fn a_thread_total_is_read_from_either_line_callgrind_writes() {
        assert_eq!(total("events: Ir\nsummary: 1234\nfn=(1) main\n"), Some(1234));
        assert_eq!(total("events: Ir\ntotals: 567 8\n"), Some(567));
        assert_eq!(total("events: Ir\n"), None);
    }

    #[test]
    fn the_total_of_strace_counts_is_read() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n \
                    67.19    0.163271          20      7823           epoll_wait\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.243000          17     14100        12 total\n";
        assert_eq!(strace_total(text), Some(14100));
    }
}
