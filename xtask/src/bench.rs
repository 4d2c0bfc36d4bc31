//! `cargo xtask bench`: runs the criterion benches, then writes one markdown table that puts each
//! measurement beside the raw limit measured in the same run.
//!
//! Convention: a bench group is one "what"; its function `ours` is our code and `raw` is the
//! limit (a plain tokio socket or channel doing the same job). Groups with a byte throughput are
//! compared as bandwidth, the rest as time per iteration.
//!
//! On a shared two-core machine one run can drift by 10-20 %; `--runs N` repeats the whole
//! suite and reports, per group, the medians of ours, raw and the per-run ratio, with the
//! range of the ratios.

use std::fs;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::{cargo, run_step, workspace_root};

/// Targets stated by the issues: (a word in the group name, the target).
const TARGETS: [(&str, &str); 17] = [
    (
        "actor sub pool call",
        "raw = two-process Unix socket: ≤ 1.2 × its time (≥ 0.83 × its rate); xoscar 164 µs, 24 k/s",
    ),
    ("actor sub pool", "raw = spawning 4 bare processes (start) / none (recover)"),
    ("actor buffer transfer", "≥ 0.80 × raw bandwidth"),
    ("actor stream", "raw = a tokio channel of the same window: items/s beside it"),
    ("actor batch", "raw = 100 single calls: the ratio is the batch's gain in rate"),
    ("actor local ask sequential", "≤ 1.5 × raw time; faster than ractor, kameo"),
    ("actor local", "faster than ractor, kameo"),
    ("actor child-process", "raw = pool-level call: ≤ 1.1 × its time (≥ 0.91 × its rate)"),
    ("actor call echo", "≥ 0.80 × raw bandwidth"),
    ("wire ", "-"),
    ("call round trip", "≤ 1.15 × raw time"),
    ("round trip", "≤ 1.10 × raw time"),
    ("bulk", "≥ 0.90 × raw bandwidth"),
    ("reaper on vs off", "≥ 0.95 (raw = reaper off)"),
    ("64 in flight", "≥ 0.60 × raw rate"),
    ("call echo", "≥ 0.80 × raw bandwidth"),
    ("reaper pass", "-"),
];

pub(crate) struct Measurement {
    pub(crate) group: String,
    pub(crate) function: String,
    pub(crate) median_ns: f64,
    /// Work per iteration, for rates: (amount, unit of the rate).
    pub(crate) per_iter: Option<(f64, Rate)>,
}

/// How a throughput group's rate is shown.
#[derive(Clone, Copy)]
pub(crate) enum Rate {
    /// Bytes per iteration: GB/s.
    Bandwidth,
    /// Elements (calls) per iteration: millions per second.
    Calls,
}

pub fn run(filter: Option<&str>, runs: usize, peers: bool) -> Result<()> {
    let mut all_runs = Vec::new();
    for _ in 0..runs.max(1) {
        let started = SystemTime::now();
        let mut command = cargo();
        command.args(["bench", "-p", "xoscar-benches"]);
        if peers {
            command.args(["--features", "peers"]);
        }
        command.arg("--");
        if let Some(filter) = filter {
            command.arg(filter);
        }
        run_step(&mut command)?;
        let mut measurements = Vec::new();
        collect(&workspace_root().join("target/criterion"), started, &mut measurements)?;
        all_runs.push(measurements);
    }
    let report = render(&all_runs);
    write_report("report.md", &report)
}

/// Prints `report` and writes it to `target/bench/<name>`.
pub(crate) fn write_report(name: &str, report: &str) -> Result<()> {
    let out = workspace_root().join("target/bench").join(name);
    fs::create_dir_all(out.parent().expect("report path has a parent"))?;
    fs::write(&out, report)?;
    println!("{report}");
    eprintln!("written to {}", out.display());
    Ok(())
}

/// Reads every `new/benchmark.json` written since `since` below `dir`.
pub(crate) fn collect(dir: &Path, since: SystemTime, out: &mut Vec<Measurement>) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let benchmark = path.join("new/benchmark.json");
        let estimates = path.join("new/estimates.json");
        let fresh = fs::metadata(&estimates)
            .and_then(|meta| meta.modified())
            .is_ok_and(|modified| modified >= since);
        if fresh {
            out.push(read_measurement(&benchmark, &estimates)?);
        } else {
            collect(&path, since, out)?;
        }
    }
    Ok(())
}

fn read_measurement(benchmark: &Path, estimates: &Path) -> Result<Measurement> {
    let benchmark: Value = serde_json::from_slice(&fs::read(benchmark)?)
        .with_context(|| format!("{}", benchmark.display()))?;
    let estimates: Value = serde_json::from_slice(&fs::read(estimates)?)
        .with_context(|| format!("{}", estimates.display()))?;
    Ok(Measurement {
        group: benchmark["group_id"].as_str().unwrap_or("?").to_string(),
        function: benchmark["function_id"].as_str().unwrap_or("?").to_string(),
        median_ns: estimates["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN),
        per_iter: match (&benchmark["throughput"]["Bytes"], &benchmark["throughput"]["Elements"]) {
            (Value::Number(bytes), _) => bytes.as_f64().map(|b| (b, Rate::Bandwidth)),
            (_, Value::Number(calls)) => calls.as_f64().map(|c| (c, Rate::Calls)),
            _ => None,
        },
    })
}

fn render(runs: &[Vec<Measurement>]) -> String {
    let mut groups: Vec<&str> = runs.iter().flatten().map(|m| m.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let mut table = format!(
        "{} run(s); medians, ratio range in brackets\n\n\
         | what | ours | raw limit | ratio | target | peers |\n|---|---|---|---|---|---|\n",
        runs.len()
    );
    for group in groups {
        let find = |run: &'_ [Measurement], function: &str| {
            run.iter().find(|m| m.group == group && m.function == function).map(|m| m.median_ns)
        };
        let ours: Vec<f64> = runs.iter().filter_map(|run| find(run, "ours")).collect();
        let raw: Vec<f64> = runs.iter().filter_map(|run| find(run, "raw")).collect();
        let rate = runs.iter().flatten().find(|m| m.group == group).and_then(|m| m.per_iter);
        // Rate ratio for throughput groups (higher is better), time ratio for the rest.
        let mut ratios: Vec<f64> = runs
            .iter()
            .filter_map(|run| Some((find(run, "ours")?, find(run, "raw")?)))
            .map(|(ours, raw)| if rate.is_some() { raw / ours } else { ours / raw })
            .collect();
        let ratio = match median(&mut ratios) {
            None => "-".to_string(),
            Some(mid) if ratios.len() > 1 => {
                format!("{mid:.2} [{:.2}–{:.2}]", ratios[0], ratios[ratios.len() - 1])
            }
            Some(mid) => format!("{mid:.2}"),
        };
        let target =
            TARGETS.iter().find(|(word, _)| group.contains(word)).map_or("-", |(_, text)| text);
        // Any other function of the group is a peer library doing the same work.
        let mut peers: Vec<&str> = runs
            .iter()
            .flatten()
            .filter(|m| m.group == group && m.function != "ours" && m.function != "raw")
            .map(|m| m.function.as_str())
            .collect();
        peers.sort_unstable();
        peers.dedup();
        let peers: Vec<String> = peers
            .iter()
            .map(|peer| {
                let mut times: Vec<f64> = runs.iter().filter_map(|run| find(run, peer)).collect();
                format!("{peer} {}", show(median(&mut times), rate))
            })
            .collect();
        table.push_str(&format!(
            "| {group} | {} | {} | {ratio} | {target} | {} |\n",
            show(median(&mut ours.clone()), rate),
            show(median(&mut raw.clone()), rate),
            if peers.is_empty() { "-".to_string() } else { peers.join(", ") },
        ));
    }
    table
}

/// The median, leaving `values` sorted.
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

pub(crate) fn show(median_ns: Option<f64>, rate: Option<(f64, Rate)>) -> String {
    match (median_ns, rate) {
        (None, _) => "-".to_string(),
        (Some(ns), Some((bytes, Rate::Bandwidth))) => format!("{:.2} GB/s", bytes / ns),
        (Some(ns), Some((calls, Rate::Calls))) => format!("{:.3} M/s", calls / ns * 1e3),
        (Some(ns), None) if ns >= 1_000_000.0 => format!("{:.2} ms", ns / 1_000_000.0),
        (Some(ns), None) if ns >= 1_000.0 => format!("{:.2} µs", ns / 1_000.0),
        (Some(ns), None) => format!("{ns:.0} ns"),
    }
}
