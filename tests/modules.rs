//! The modules of `src/` import each other without a circle: each module's paths to another
//! (`crate::a::b`, `super::b`, a parent's `child::`, in a `use`, a `pub use` or a path; doc links
//! included)
//! form a graph with no cycle, so each module can be read knowing only those below it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of `src/` by its path (`bridge::topic_run`), with the text before its tests.
fn modules() -> BTreeMap<String, String> {
    let mut modules = BTreeMap::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let relative = path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).unwrap();
            let name = relative.with_extension("").to_string_lossy().replace('/', "::");
            let name = name.strip_suffix("::mod").unwrap_or(&name).to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default().to_owned();
            modules.insert(name, before_tests);
        }
    }
    modules
}

/// The identifiers after each occurrence of `prefix` in `text`, joined by `::` (`crate::a::b`
/// gives `a::b`), and those in a `{...}` group right after it.
fn paths_after(text: &str, prefix: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let rest = &text[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            paths.extend(group.split(',').map(|item| item.trim().to_owned()));
            continue;
        }
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        paths.push(rest[..end].trim_end_matches(':').to_owned());
    }
    paths
}

/// The module a path names: its longest prefix that is a module.
fn module_of(path: &str, names: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|candidate| names.contains(candidate))
}

/// Which modules each module names.
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, text)| {
            let parent = name.rsplit_once("::").map(|(parent, _)| parent.to_owned());
            let mut named = BTreeSet::new();
            for path in paths_after(text, "crate::") {
                named.extend(module_of(&path, &names));
            }
            for path in paths_after(text, "super::") {
                let parent = parent.clone().unwrap_or_default();
                named.extend(module_of(&format!("{parent}::{path}"), &names).or(Some(parent)));
            }
            // A parent naming a child: `use child::..`, `pub use child::..`, or a path `child::..`.
            for child in names.iter().filter(|child| child.rsplit_once("::").is_some_and(|(p, _)| p == name)) {
                let last = child.rsplit("::").next().unwrap_or_default();
                let named_here = text
                    .match_indices(&format!("{last}::"))
                    .any(|(at, _)| !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':'));
                if named_here {
                    named.insert(child.clone());
                }
            }
            named.remove(name);
            named.retain(|other| !other.is_empty());
            (name.clone(), named)
        })
        .collect()
}

/// A cycle through `from`, if there is one: the modules on it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut path = vec![from.to_owned()];
    let mut seen = BTreeSet::new();
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let last = path.last().unwrap().clone();
        for next in graph.get(&last).into_iter().flatten() {
            if next == from {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, from, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(graph, from, &mut path, &mut seen).then_some(path)
}

#[test]
fn no_module_of_src_imports_one_that_imports_it() {
    let graph = imports(&modules());
    assert!(graph.contains_key("bridge::topic_run") && graph["bridge::topic_run"].contains("pipeline"), "{graph:?}");
    for module in graph.keys() {
        if let Some(cycle) = cycle(&graph, module) {
            panic!("an import circle: {} -> {module}", cycle.join(" -> "));
        }
    }
}

#[test]
fn a_circle_is_found() {
    let modules = BTreeMap::from([
        ("a".to_owned(), "use crate::b::Thing;".to_owned()),
        ("b".to_owned(), "/// See [`crate::c`].".to_owned()),
        ("c".to_owned(), "use crate::{a::One, d};".to_owned()),
        ("d".to_owned(), String::new()),
    ]);
    let graph = imports(&modules);
    assert_eq!(cycle(&graph, "a"), Some(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]));
    assert_eq!(cycle(&graph, "d"), None);
    for parent in ["mod q;\npub use q::Item;", "mod q;\nstruct S(q::Item);"] {
        let parent_and_child =
            BTreeMap::from([("p".to_owned(), parent.to_owned()), ("p::q".to_owned(), "use super::Other;".to_owned())]);
        assert!(cycle(&imports(&parent_and_child), "p").is_some(), "{parent}");
    }
}
