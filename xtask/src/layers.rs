//! The layer check: a crate may depend only on crates strictly below it in the stack.

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The stack, bottom first. Anything not listed (benches, xtask, fuzz) is outside the order.
const STACK: [&str; 8] = [
    "xoscar-wire",
    "xoscar-transport",
    "xoscar-pool",
    "xoscar-router",
    "xoscar-actor",
    "xoscar-subpool",
    "xoscar",
    "xoscar-py",
];

pub fn check() -> Result<()> {
    let output = crate::cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("could not run cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata output")?;
    let violations = violations(&metadata)?;
    if violations.is_empty() {
        eprintln!("layers ok: {}", STACK.join(" < "));
        return Ok(());
    }
    for violation in &violations {
        eprintln!("layer violation: {violation}");
    }
    bail!("{} layer violation(s); the order is {}", violations.len(), STACK.join(" < "))
}

/// Every normal or build dependency edge from a stack crate to one at its own level or above.
fn violations(metadata: &Value) -> Result<Vec<String>> {
    let packages = metadata["packages"].as_array().context("metadata has no packages")?;
    let mut found = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or_default();
        let Some(level) = level_of(name) else { continue };
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let kind = dependency["kind"].as_str().unwrap_or("normal");
            if kind == "dev" {
                continue;
            }
            let target = dependency["name"].as_str().unwrap_or_default();
            if let Some(target_level) = level_of(target)
                && target_level >= level
            {
                found.push(format!("{name} -> {target} ({kind} dependency)"));
            }
        }
    }
    Ok(found)
}

fn level_of(name: &str) -> Option<usize> {
    STACK.iter().position(|&crate_name| crate_name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package(name: &str, deps: &[(&str, Option<&str>)]) -> Value {
        let deps: Vec<Value> =
            deps.iter().map(|(dep, kind)| json!({ "name": dep, "kind": kind })).collect();
        json!({ "name": name, "dependencies": deps })
    }

    #[test]
    fn downward_edges_pass_and_upward_or_sideways_edges_fail() {
        let metadata = json!({ "packages": [
            package("xoscar-transport", &[("xoscar-wire", None), ("bytes", None)]),
            package("xoscar-wire", &[("xoscar-pool", Some("build"))]),
            package("xoscar-pool", &[("xoscar-pool", None), ("xoscar-actor", Some("dev"))]),
            package("benches", &[("xoscar", None)]),
        ]});
        let found = violations(&metadata).unwrap();
        assert_eq!(
            found,
            vec![
                "xoscar-wire -> xoscar-pool (build dependency)".to_string(),
                "xoscar-pool -> xoscar-pool (normal dependency)".to_string(),
            ]
        );
    }
}
