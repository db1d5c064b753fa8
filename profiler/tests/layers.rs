// The crate's layering, checked: every `crate::` and `super::` path in profiler/src (outside
// test code) may only reach a top-level module of a lower layer, or of its own layer without
// forming a cycle. The layers are those of docs/ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. A module imports only from layers below it, or from its own layer without a
/// cycle. A new top-level module must be placed here (the test fails until it is).
const LAYERS: &[(&str, &[&str])] = &[
    ("samples", &["alloc", "probe", "quiet", "sample", "store"]),
    (
        "tools",
        &["stats", "format", "interrupt", "error", "sizes", "paths"],
    ),
    ("model", &["model"]),
    ("judge", &["verdict", "judge", "fit"]),
    ("engine", &["budget", "engine", "attribution", "external"]),
    ("outputs", &["report", "baseline", "figure"]),
    (
        "doors",
        &[
            "workload",
            "isolate",
            "profiler",
            "options",
            "session",
            "cli",
            "bench",
            "span_memory",
        ],
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read profiler/src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below src: `verdict/format.rs` -> [verdict, format].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The file's code without test code (the item after each `#[cfg(test)]`: a test module,
/// braces balanced, or a `mod tests;` line) and without comments, which name paths without
/// importing them.
fn non_test_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            // Skip the item this attribute is on.
            let mut depth = 0i32;
            let mut opened = false;
            for next in lines.by_ref() {
                let code = next.split("//").next().unwrap_or("");
                depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
                opened |= code.contains('{');
                let attribute = next.trim_start().starts_with("#[");
                if !attribute && ((opened && depth <= 0) || (!opened && code.contains(';'))) {
                    break;
                }
            }
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Top-level modules named by `crate::` / `super::` paths in `code` of the file at `path`.
fn imports(code: &str, path: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    let ident = |from: usize| -> String {
        code[from..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    // Identifiers of a `{a, b::c, d}` group at its top level.
    let group = |from: usize| -> Vec<String> {
        let mut names = Vec::new();
        let (mut depth, mut start) = (0, from + 1);
        for (i, c) in code[from..].char_indices() {
            let at = from + i;
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    let name = ident_trimmed(&code[start..at]);
                    if !name.is_empty() {
                        names.push(name);
                    }
                    start = at + 1;
                    if c == '}' {
                        break;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        names
    };
    // The module names a path starting at `at` reaches: one, or a `{...}` group's.
    let names_at = |at: usize| -> Vec<String> {
        let names = if code[at..].starts_with('{') {
            group(at)
        } else {
            vec![ident(at)]
        };
        names.into_iter().filter(|n| !n.is_empty()).collect()
    };
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && rest.starts_with("crate::") {
            let at = i + "crate::".len();
            found.extend(names_at(at));
            i = at;
            continue;
        }
        if boundary && rest.starts_with("super::") {
            let mut at = i;
            let mut ups = 0;
            while code[at..].starts_with("super::") {
                ups += 1;
                at += "super::".len();
            }
            // `super` from module path [a, b, c] is [a, b]: a file `a/b.rs` holding no
            // nested modules before its test code, so the file's path is the module's.
            let base_len = path.len().saturating_sub(ups);
            if base_len >= 1 {
                found.insert(path[0].clone());
            } else {
                found.extend(names_at(at));
            }
            i = at;
            continue;
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    found
}

fn ident_trimmed(s: &str) -> String {
    s.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Edges between top-level modules: importer -> imported (files of a module merged).
fn edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("below src");
        let path = module_path(rel);
        if path == ["lib"] || path.last().is_some_and(|p| p == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let top = path[0].clone();
        let targets = graph.entry(top.clone()).or_default();
        for m in imports(&non_test_code(&text), &path) {
            if m != top && m != "self" {
                targets.insert(m);
            }
        }
    }
    graph
}

fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    for (from, tos) in graph {
        let Some(lf) = layer_of(from) else {
            problems.push(format!(
                "module `{from}` has no layer: add it to LAYERS and docs/ARCHITECTURE.md"
            ));
            continue;
        };
        for to in tos {
            match layer_of(to) {
                None if graph.contains_key(to) => {}
                None => continue, // an external crate's path, e.g. a macro's `crate::`
                Some(lt) if lt > lf => problems.push(format!(
                    "`{from}` ({}) imports `{to}` ({}), a layer above it",
                    LAYERS[lf].0, LAYERS[lt].0
                )),
                Some(_) => {}
            }
        }
    }
    // No cycle, even within a layer: no two modules import each other, directly or not.
    for start in graph.keys() {
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, trail)) = stack.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == start {
                    let mut cycle = trail.clone();
                    cycle.push(start.clone());
                    problems.push(format!("import cycle: {}", cycle.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

#[test]
fn no_module_imports_from_a_layer_above_it_and_none_form_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = violations(&edges(&src));
    assert!(
        problems.is_empty(),
        "layering broken (see docs/ARCHITECTURE.md):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_checker_sees_upward_imports_groups_and_cycles() {
    let path = vec!["judge".to_string()];
    let found = imports(
        "use crate::{model::{Run, Verdict}, sample::Sample};\nlet x = crate::session::run();\n",
        &path,
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["model", "sample", "session"]
    );
    // super:: from a nested file stays in its module; from a top-level file it names a sibling.
    let nested = imports("use super::Unit;", &["verdict".into(), "format".into()]);
    assert_eq!(nested.into_iter().collect::<Vec<_>>(), ["verdict"]);
    let top = imports("use super::report::Run;", &["judge".into()]);
    assert_eq!(top.into_iter().collect::<Vec<_>>(), ["report"]);

    let mut graph = BTreeMap::new();
    graph.insert("judge".to_string(), BTreeSet::from(["session".to_string()]));
    graph.insert("session".to_string(), BTreeSet::new());
    assert_eq!(violations(&graph).len(), 1, "{:?}", violations(&graph));
    let mut graph = BTreeMap::new();
    graph.insert("verdict".to_string(), BTreeSet::from(["judge".to_string()]));
    graph.insert("judge".to_string(), BTreeSet::from(["verdict".to_string()]));
    assert!(
        violations(&graph)
            .iter()
            .any(|p| p.starts_with("import cycle")),
        "{:?}",
        violations(&graph)
    );
    // Test code does not count; code after it does.
    let code = non_test_code(
        "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\nuse crate::c;\n\
         #[cfg(test)]\nmod more;\nuse crate::d;\n",
    );
    assert!(
        code.contains("crate::a") && code.contains("crate::c"),
        "{code}"
    );
    assert!(code.contains("crate::d"), "{code}");
    assert!(!code.contains("crate::b"), "{code}");
}
