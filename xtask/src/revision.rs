//! Builds of other revisions, for comparisons: every revision is checked out in one worktree
//! (`target/compare/src`) and built into one target directory (`target/compare/target`), one
//! after the other, so that two revisions differ only in their code (not in the path they were
//! built from, which changes symbol hashes and so what is inlined).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// Where comparisons build and keep things.
pub(crate) fn compare_dir() -> PathBuf {
    workspace_root().join("target/compare")
}

/// Checks `revision` out in the comparison worktree; returns the worktree and the commit.
pub(crate) fn checkout(revision: &str) -> Result<(PathBuf, String)> {
    let root = workspace_root();
    let tree = compare_dir().join("src");
    let commit = git(&root, &["rev-parse", "--verify", &format!("{revision}^{{commit}}")])?;
    if !tree.join(".git").exists() {
        git(&root, &["worktree", "add", "--detach", "--force", path(&tree)?, &commit])?;
    } else {
        git(&tree, &["checkout", "--detach", "--force", &commit])?;
    }
    Ok((tree, commit))
}

/// A cargo command run in the comparison worktree, building into its target directory.
pub(crate) fn cargo_in(tree: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(tree).env("CARGO_TARGET_DIR", compare_dir().join("target"));
    command
}

/// A place to keep binaries built for `label` (they are overwritten by the next build).
pub(crate) fn kept(label: &str) -> Result<PathBuf> {
    let dir = compare_dir().join("bin").join(label);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `old..new` (or `old`, meaning `old..HEAD`).
pub(crate) fn range(range: &str) -> (&str, &str) {
    range.split_once("..").unwrap_or((range, "HEAD"))
}

fn path(path: &Path) -> Result<&str> {
    path.to_str().context("a path that is not UTF-8")
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git").current_dir(dir).args(args).output().context("run git")?;
    if !output.status.success() {
        bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
