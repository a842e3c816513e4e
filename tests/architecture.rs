//! The architecture holds: the crates' dependency edges are the ones
//! `docs/architecture.md` describes, and the server's modules import each
//! other without a cycle.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

/// The crates that speak a transport: none may reach the domain layer.
const TRANSPORTS: &[&str] = &[
    "axum",
    "http",
    "hyper",
    "prost",
    "tonic",
    "tower",
    "tower-http",
];

/// Every package `package` depends on (normal edges, transitively), as
/// `cargo tree` resolves them from the committed lock file.
fn dependencies(package: &str) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--package",
            package,
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--offline",
            "--locked",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_domain_and_storage_crates_depend_on_no_transport() {
    for package in ["gostream-store", "gostream-redis"] {
        let deps = dependencies(package);
        assert!(
            deps.contains(package),
            "cargo tree did not list {package} itself: {deps:?}"
        );
        let transports: Vec<_> = TRANSPORTS
            .iter()
            .filter(|name| deps.contains(**name))
            .collect();
        assert!(
            transports.is_empty(),
            "{package} must not depend on a transport, but reaches {transports:?}; \
             map errors and requests at the server's edge instead"
        );
        assert!(
            !deps.contains("gostream"),
            "{package} must not depend on the server"
        );
    }
}

#[test]
fn the_redis_backend_builds_on_the_store_and_not_the_reverse() {
    assert!(dependencies("gostream-redis").contains("gostream-store"));
    assert!(!dependencies("gostream-store").contains("gostream-redis"));
}

/// The top-level module a source file of `src/` belongs to (`None` for the
/// crate roots).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).ok()?.components().next()?;
    let name = first.as_os_str().to_str()?.trim_end_matches(".rs");
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The `crate::<module>` paths a source text names, in `use` trees too
/// (`use crate::{a::x, b::{y, z}}` names `a` and `b`).
fn crate_modules(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(tree) = rest.strip_prefix('{') {
            // The top level of the use tree: names before `::`, skipping
            // nested groups.
            let mut depth = 0;
            let mut item = String::new();
            for c in tree.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(leading_name(&item));
                        item.clear();
                    }
                    c if depth == 0 => item.push(c),
                    _ => {}
                }
            }
            names.insert(leading_name(&item));
        } else {
            names.insert(leading_name(rest));
        }
    }
    names.remove("");
    names
}

fn leading_name(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
        .collect()
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// One cycle among `graph`'s edges, if there is any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_server_modules_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let text = fs::read_to_string(file).expect("read a source file");
        let imports = crate_modules(&text);
        graph.entry(module).or_default().extend(imports);
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    assert!(
        modules.contains("service") && modules.contains("gateway"),
        "the walk found the server's modules: {modules:?}"
    );
    for (module, imports) in &mut graph {
        imports.retain(|name| name != module && modules.contains(name));
    }
    assert_eq!(
        find_cycle(&graph),
        None,
        "modules import each other in a cycle"
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        crate_modules("use crate::{a::{x, y}, b, c::d::e};\nlet z = crate::f::g();"),
        BTreeSet::from(["a".into(), "b".into(), "c".into(), "f".into()])
    );
}
