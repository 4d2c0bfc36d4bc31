//! `cargo xtask bench`: runs the criterion benches, then writes one markdown table that puts each
//! measurement beside the raw limit measured in the same run.
//!
//! Convention: a bench group is one "what"; its function `ours` is our code and `raw` is the
//! limit (a plain tokio socket or channel doing the same job). Groups with a byte throughput are
//! compared as bandwidth, the rest as time per iteration.

use std::fs;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::{cargo, run_step, workspace_root};

/// Targets stated by the issues: (a word in the group name, the target).
const TARGETS: [(&str, &str); 3] =
    [("wire ", "-"), ("round trip", "≤ 1.10 × raw time"), ("bulk", "≥ 0.90 × raw bandwidth")];

struct Measurement {
    group: String,
    function: String,
    median_ns: f64,
    bytes_per_iter: Option<f64>,
}

pub fn run(filter: Option<&str>) -> Result<()> {
    let started = SystemTime::now();
    let mut command = cargo();
    command.args(["bench", "-p", "xoscar-benches", "--"]);
    if let Some(filter) = filter {
        command.arg(filter);
    }
    run_step(&mut command)?;
    let mut measurements = Vec::new();
    collect(&workspace_root().join("target/criterion"), started, &mut measurements)?;
    let report = render(&measurements);
    let out = workspace_root().join("target/bench/report.md");
    fs::create_dir_all(out.parent().expect("report path has a parent"))?;
    fs::write(&out, &report)?;
    println!("{report}");
    eprintln!("written to {}", out.display());
    Ok(())
}

/// Reads every `new/benchmark.json` written since `since` below `dir`.
fn collect(dir: &Path, since: SystemTime, out: &mut Vec<Measurement>) -> Result<()> {
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
        bytes_per_iter: benchmark["throughput"]["Bytes"].as_f64(),
    })
}

fn render(measurements: &[Measurement]) -> String {
    let mut groups: Vec<&str> = measurements.iter().map(|m| m.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let mut table =
        String::from("| what | ours | raw limit | ratio | target |\n|---|---|---|---|---|\n");
    for group in groups {
        let find = |function: &str| {
            measurements.iter().find(|m| m.group == group && m.function == function)
        };
        let (Some(ours), raw) = (find("ours"), find("raw")) else { continue };
        let target =
            TARGETS.iter().find(|(prefix, _)| group.contains(prefix)).map_or("-", |(_, text)| text);
        let ratio = raw.map_or("-".to_string(), |raw| match ours.bytes_per_iter {
            // Bandwidth ratio: higher is better.
            Some(_) => format!("{:.2}", raw.median_ns / ours.median_ns),
            // Time ratio: lower is better.
            None => format!("{:.2}", ours.median_ns / raw.median_ns),
        });
        table.push_str(&format!(
            "| {group} | {} | {} | {ratio} | {target} |\n",
            show(ours),
            raw.map_or("-".to_string(), show),
        ));
    }
    table
}

fn show(m: &Measurement) -> String {
    match m.bytes_per_iter {
        Some(bytes) => format!("{:.2} GB/s", bytes / m.median_ns),
        None if m.median_ns >= 1_000.0 => format!("{:.2} µs", m.median_ns / 1_000.0),
        None => format!("{:.0} ns", m.median_ns),
    }
}
