//! `cargo xtask bench --compare OLD[..NEW] [--runs N] [FILTER]`: the criterion benches of two
//! revisions, run interleaved (old, new, old, new, ...) so that a slow minute of a shared
//! machine lands on both, with each row's time ratio per round and its range: "no row worse
//! than before" is one command.
//!
//! Both revisions' bench binaries are built first, alike (see `revision.rs`), then run in
//! turn, each round writing criterion's results to a directory of its own
//! (`target/compare/criterion/<old|new>-<round>`). The report is written to
//! `target/bench/compare.md`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::bench::{self, Measurement, write_report};
use crate::{revision, run_step, workspace_root};

/// A row is reported worse when its median new/old time ratio is above this.
const WORSE: f64 = 1.05;

pub fn run(range: &str, runs: usize, filter: Option<&str>, peers: bool) -> Result<()> {
    let (old, new) = revision::range(range);
    let old_bins = build(old, "bench-old", peers)?;
    let new_bins = build(new, "bench-new", peers)?;
    let mut rounds: Vec<(Vec<Measurement>, Vec<Measurement>)> = Vec::new();
    for round in 0..runs.max(1) {
        let old_run = run_all(&old_bins, &format!("old-{round}"), filter)?;
        let new_run = run_all(&new_bins, &format!("new-{round}"), filter)?;
        rounds.push((old_run, new_run));
    }
    let report = render(old, new, &rounds);
    write_report("compare.md", &report)
}

/// Builds `revision`'s bench binaries; returns copies of them, kept under `label`.
fn build(revision: &str, label: &str, peers: bool) -> Result<Vec<PathBuf>> {
    let (tree, _) = revision::checkout(revision)?;
    let mut command = revision::cargo_in(&tree);
    command.args(["bench", "-p", "xoscar-benches", "--no-run", "--message-format=json"]);
    if peers {
        command.args(["--features", "peers"]);
    }
    eprintln!("building the benches of {revision}");
    let output = command.stderr(Stdio::inherit()).output().context("run cargo bench --no-run")?;
    if !output.status.success() {
        bail!("building the benches of {revision} failed ({})", output.status);
    }
    let kept = revision::kept(label)?;
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else { continue };
        let is_bench = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bench"));
        let (Some(name), Some(executable)) =
            (message["target"]["name"].as_str(), message["executable"].as_str())
        else {
            continue;
        };
        if is_bench {
            let binary = kept.join(name);
            std::fs::copy(executable, &binary)
                .with_context(|| format!("keep the {name} bench built at {revision}"))?;
            binaries.push(binary);
        }
    }
    if binaries.is_empty() {
        bail!("no bench binary was built at {revision}");
    }
    binaries.sort();
    Ok(binaries)
}

/// Runs every binary once (criterion's `--bench` mode, filtered), writing results to a fresh
/// directory named `tag`; returns what they measured.
fn run_all(binaries: &[PathBuf], tag: &str, filter: Option<&str>) -> Result<Vec<Measurement>> {
    let home = revision::compare_dir().join("criterion").join(tag);
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    for binary in binaries {
        let mut command = std::process::Command::new(binary);
        command.current_dir(workspace_root()).env("CRITERION_HOME", &home).arg("--bench");
        if let Some(filter) = filter {
            command.arg(filter);
        }
        run_step(&mut command)?;
    }
    let mut measurements = Vec::new();
    bench::collect(&home, SystemTime::UNIX_EPOCH, &mut measurements)?;
    Ok(measurements)
}

/// One line per bench function measured in every round of both revisions: the median time of
/// each, and the median and range of the per-round ratio new/old (below 1: faster).
fn render(old: &str, new: &str, rounds: &[(Vec<Measurement>, Vec<Measurement>)]) -> String {
    let mut rows: Vec<(&str, &str)> = rounds
        .iter()
        .flat_map(|(old_run, _)| old_run.iter().map(|m| (m.group.as_str(), m.function.as_str())))
        .collect();
    rows.sort_unstable();
    rows.dedup();
    let find = |run: &[Measurement], (group, function): (&str, &str)| {
        run.iter().find(|m| m.group == group && m.function == function).map(|m| m.median_ns)
    };
    let mut table = format!(
        "{old} (old) against {new} (new), {} interleaved round(s); time per iteration, medians; \
         ratio = new / old time (below 1: faster), median [range]; worse: above {WORSE}\n\n\
         | group | function | old | new | ratio | |\n|---|---|---|---|---|---|\n",
        rounds.len()
    );
    let mut worse = 0;
    for row in rows {
        let pairs: Vec<(f64, f64)> = rounds
            .iter()
            .filter_map(|(old_run, new_run)| Some((find(old_run, row)?, find(new_run, row)?)))
            .collect();
        if pairs.len() < rounds.len() {
            continue;
        }
        let mut olds: Vec<f64> = pairs.iter().map(|(old, _)| *old).collect();
        let mut news: Vec<f64> = pairs.iter().map(|(_, new)| *new).collect();
        let mut ratios: Vec<f64> = pairs.iter().map(|(old, new)| new / old).collect();
        let ratio = bench::median(&mut ratios).unwrap_or(f64::NAN);
        let flag = if ratio > WORSE {
            worse += 1;
            "worse"
        } else {
            ""
        };
        table.push_str(&format!(
            "| {} | {} | {} | {} | {ratio:.3} [{:.3}–{:.3}] | {flag} |\n",
            row.0,
            row.1,
            bench::show(bench::median(&mut olds), None),
            bench::show(bench::median(&mut news), None),
            ratios[0],
            ratios[ratios.len() - 1],
        ));
    }
    table
        .push_str(&format!("\n{worse} row(s) worse by more than {:.0} %\n", (WORSE - 1.0) * 100.0));
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(group: &str, function: &str, median_ns: f64) -> Measurement {
        let (group, function) = (group.to_owned(), function.to_owned());
        Measurement { group, function, median_ns, per_iter: None }
    }

    #[test]
    fn each_row_gets_its_ratio_range_and_a_flag_when_worse() {
        let round = |a: f64, b: f64| {
            (
                vec![measured("g", "ours", 100.0), measured("g", "raw", 50.0)],
                vec![measured("g", "ours", a), measured("g", "raw", b)],
            )
        };
        let report =
            render("old", "new", &[round(90.0, 60.0), round(110.0, 55.0), round(100.0, 56.0)]);
        assert!(
            report.contains("| g | ours | 100 ns | 100 ns | 1.000 [0.900–1.100] |  |"),
            "{report}"
        );
        assert!(
            report.contains("| g | raw | 50 ns | 56 ns | 1.120 [1.100–1.200] | worse |"),
            "{report}"
        );
        assert!(report.contains("1 row(s) worse by more than 5 %"), "{report}");
    }

    #[test]
    fn a_row_missing_from_a_round_is_left_out() {
        let rounds = [
            (vec![measured("g", "ours", 1.0)], vec![measured("g", "ours", 1.0)]),
            (vec![measured("g", "ours", 1.0)], vec![]),
        ];
        assert!(!render("old", "new", &rounds).contains("| g |"));
    }
}
