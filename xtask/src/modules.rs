//! The module check: inside each crate of the stack, the top-level modules of `src/` form no
//! circle (a module uses only modules below it in one order).
//!
//! Read from the source, not the compiler: a top-level module is `src/<name>.rs` or
//! `src/<name>/`; it uses another when its code (comments and `#[cfg(test)]` modules left out)
//! names `crate::<module>` or an item `lib.rs` re-exports from that module (`crate::Item`,
//! `crate::{Item, ..}`). Circles are the strongly connected components of that graph.
//! Any circle fails the check, naming its modules and one path around it.
//!
//! It also checks that no crate below the sub pool layer starts a process: their code names
//! none of [`SPAWNS`] (processes are `xoscar-subpool`'s alone).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The crates whose modules are checked, by folder.
const CRATES: [&str; 8] = [
    "crates/xoscar-wire",
    "crates/xoscar-transport",
    "crates/xoscar-pool",
    "crates/xoscar-router",
    "crates/xoscar-actor",
    "crates/xoscar-subpool",
    "crates/xoscar",
    "crates/xoscar-py",
];

/// The crates below the sub pool layer, which must not start processes.
const NO_PROCESSES: [&str; 5] = [
    "crates/xoscar-wire",
    "crates/xoscar-transport",
    "crates/xoscar-pool",
    "crates/xoscar-router",
    "crates/xoscar-actor",
];

/// What starting a process looks like in code.
const SPAWNS: [&str; 4] = ["process::Command", "tokio::process", "libc::fork", "posix_spawn"];

/// Module name -> the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

pub fn check() -> Result<()> {
    let root = crate::workspace_root();
    let mut problems = Vec::new();
    for krate in CRATES {
        let graph = graph(&root.join(krate).join("src"))?;
        for circle in circles(&graph) {
            problems.push(format!(
                "{krate}: module circle among {{{}}}, e.g. {}",
                circle.join(", "),
                path(&graph, &circle)
            ));
        }
    }
    for krate in NO_PROCESSES {
        for file in rust_files(&root.join(krate).join("src"))? {
            for spawn in spawns(&std::fs::read_to_string(&file)?) {
                problems.push(format!(
                    "{}: names {spawn}: only xoscar-subpool starts processes",
                    file.display()
                ));
            }
        }
    }
    if problems.is_empty() {
        eprintln!(
            "modules ok: no circle in {}; no process started below xoscar-subpool",
            CRATES.join(", ")
        );
        return Ok(());
    }
    for problem in &problems {
        eprintln!("module check: {problem}");
    }
    bail!("{} module problem(s)", problems.len())
}

/// Prints the module graph of one crate folder, and its circles (a tool for breaking them).
pub fn print(krate: &str) -> Result<()> {
    let graph = graph(&crate::workspace_root().join(krate).join("src"))?;
    for (module, uses) in &graph {
        println!("{module} -> {}", uses.iter().cloned().collect::<Vec<_>>().join(" "));
    }
    for circle in circles(&graph) {
        println!("circle of {}: {}", circle.len(), path(&graph, &circle));
    }
    Ok(())
}

/// The ways of starting a process a file's code (comments and tests aside) names.
fn spawns(text: &str) -> Vec<&'static str> {
    let code = code_of(text);
    SPAWNS.iter().copied().filter(|spawn| code.contains(spawn)).collect()
}

/// The graph of `src`'s top-level modules.
fn graph(src: &Path) -> Result<Graph> {
    let mut modules: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).with_context(|| format!("read {}", src.display()))? {
        let path = entry?.path();
        let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        if path.is_dir() && name != "generated" {
            modules.insert(name, rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
            modules.insert(name, vec![path]);
        }
    }
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let reexports = reexports(&lib, &modules.keys().cloned().collect());
    let mut graph = Graph::new();
    for (module, files) in &modules {
        let mut uses = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(file)?;
            for name in crate_paths(&code_of(&text)) {
                let target = if modules.contains_key(&name) {
                    Some(name)
                } else {
                    reexports.get(&name).cloned()
                };
                if let Some(target) = target.filter(|target| target != module) {
                    uses.insert(target);
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    Ok(graph)
}

fn rust_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(files)
}

/// The code of a file: without comment lines, and without what follows `#[cfg(test)]` (the
/// test module, at a file's end by this workspace's habit).
fn code_of(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line.split(" // ").next().unwrap_or(line));
        code.push('\n');
    }
    code
}

/// The first name after each `crate::` in `code`, and each name in a `crate::{..}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `xoscar_crate::`, not ours
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for item in split_top_level(&group[..end]) {
                names.extend(identifier(item.trim()));
            }
        } else {
            names.extend(identifier(rest));
        }
    }
    names
}

/// The index of the `}` closing a group whose `{` was just before `text`.
fn matching_brace(text: &str) -> usize {
    let mut depth = 0usize;
    for (index, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return index,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// The comma-separated entries of a group, nested groups kept whole.
fn split_top_level(group: &str) -> Vec<&str> {
    let (mut entries, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                entries.push(&group[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    entries.push(&group[start..]);
    entries
}

fn identifier(text: &str) -> Option<String> {
    let name: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty() && name != "self").then_some(name)
}

/// Item name -> the module `lib.rs` re-exports it from (`pub use module::{A, B};`).
fn reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let code = code_of(lib);
    for statement in code.split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else { continue };
        let Some((module, items)) = path.split_once("::") else { continue };
        if !modules.contains(module) {
            continue;
        }
        let items = items.trim();
        let items = match items.strip_prefix('{') {
            Some(group) => split_top_level(&group[..matching_brace(group)]),
            None => vec![items],
        };
        for item in items {
            // `name`, `path::name`, or `name as alias`.
            let item = item.trim();
            let name =
                item.rsplit(" as ").next().unwrap_or(item).rsplit("::").next().unwrap_or(item);
            if let Some(name) = identifier(name.trim()) {
                found.insert(name, module.to_owned());
            }
        }
    }
    found
}

/// The strongly connected components of more than one module (Tarjan's algorithm), each sorted.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, node: &'a str) {
            let next = self.index.len();
            self.index.insert(node, next);
            self.low.insert(node, next);
            self.stack.push(node);
            self.on_stack.insert(node);
            for target in self.graph.get(node).into_iter().flatten() {
                let target = target.as_str();
                if !self.graph.contains_key(target) {
                    continue;
                }
                if !self.index.contains_key(target) {
                    self.visit(target);
                    let low = self.low[node].min(self.low[target]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(target) {
                    let low = self.low[node].min(self.index[target]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    component.push(member.to_owned());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !tarjan.index.contains_key(node.as_str()) {
            tarjan.visit(node);
        }
    }
    tarjan.found
}

/// One cycle through `circle`'s first module, written `a -> b -> .. -> a`.
fn path(graph: &Graph, circle: &[String]) -> String {
    let members: BTreeSet<&str> = circle.iter().map(String::as_str).collect();
    let start = circle[0].as_str();
    // Breadth-first from the start's successors back to the start, within the circle.
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in graph.get(node).into_iter().flatten() {
            let next = next.as_str();
            if !members.contains(next) || came_from.contains_key(next) {
                continue;
            }
            came_from.insert(next, node);
            if next == start {
                let mut cycle = vec![start];
                let mut at = node;
                while at != start {
                    cycle.push(at);
                    at = came_from[at];
                }
                cycle.push(start);
                cycle.reverse();
                return cycle.join(" -> ");
            }
            queue.push_back(next);
        }
    }
    circle.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_of(edges: &[(&str, &[&str])]) -> Graph {
        edges
            .iter()
            .map(|(from, to)| (from.to_string(), to.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    #[test]
    fn circles_are_found_and_a_stack_has_none() {
        let stack = graph_of(&[("a", &[]), ("b", &["a"]), ("c", &["a", "b"])]);
        assert!(circles(&stack).is_empty());
        let tangled =
            graph_of(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"]), ("e", &[])]);
        assert_eq!(circles(&tangled), vec![vec!["a", "b", "c"]]);
        assert_eq!(path(&tangled, &circles(&tangled)[0]), "a -> b -> c -> a");
    }

    #[test]
    fn process_spawns_are_found_in_code_but_not_in_comments_or_tests() {
        let code = "fn f() { let _ = std::process::Command::new(\"x\"); }\n";
        assert_eq!(spawns(code), vec!["process::Command"]);
        let quiet = "// process::Command in a comment\nfn f() {}\n\
                     #[cfg(test)]\nmod tests { use tokio::process; }\n";
        assert!(spawns(quiet).is_empty());
    }

    #[test]
    fn uses_are_read_from_crate_paths_groups_and_reexports() {
        let code = code_of(
            "use crate::core::Core;\n\
             use crate::{Actor, header::{self, x}, pb};\n\
             // crate::ignored in a comment\n\
             let a = my_crate::other;\n\
             #[cfg(test)]\nmod tests { use crate::late; }\n",
        );
        assert_eq!(crate_paths(&code), vec!["core", "Actor", "header", "pb"]);
        let modules: BTreeSet<String> = ["actor", "core"].iter().map(|m| m.to_string()).collect();
        let lib = "pub use actor::{Actor, Handler};\npub use core::Core as Heart;\nmod x;";
        let found = reexports(lib, &modules);
        assert_eq!(found.get("Actor").map(String::as_str), Some("actor"));
        assert_eq!(found.get("Heart").map(String::as_str), Some("core"));
    }
}
