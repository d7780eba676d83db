//! The workspace's structure: no two files of one crate import each other, directly or through
//! others (`crate::` and `super::` paths, outside comments and test modules). A file may use its
//! parent module (a module's files share what it declares); every other import goes one way.
//! Read from the sources, so that a circle is caught when it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 8] = [
    "booking",
    "certs",
    "exposition",
    "sfu",
    "signaling",
    "staff",
    "web",
    "tests",
];

/// A module of a crate by its path (`["store", "outbox"]`); the crate root is `[]`.
type Module = Vec<String>;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without its comments and its test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a file names after `crate::` or `super::`, as written (groups `{a, b::c}` give
/// one path each).
fn paths(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut out = Vec::new();
    for (kw, is_crate) in [("crate::", true), ("super::", false)] {
        let mut rest = code;
        while let Some(i) = rest.find(kw) {
            let before = rest[..i].chars().last();
            rest = &rest[i + kw.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let groups: Vec<String> = match rest.strip_prefix('{') {
                Some(g) => g
                    .split('}')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .collect(),
                None => vec![rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect()],
            };
            for g in groups {
                let segs: Vec<String> = g
                    .split("::")
                    .map(|s| {
                        s.chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect::<String>()
                    })
                    .take_while(|s| !s.is_empty())
                    .collect();
                if !segs.is_empty() {
                    out.push((is_crate, segs));
                }
            }
        }
    }
    out
}

/// The import circles of one crate, each as the modules in it.
fn circles(crate_dir: &Path) -> Vec<Vec<Module>> {
    let src = crate_dir.join("src");
    let mut list = Vec::new();
    files(&src, &mut list);
    let modules: BTreeMap<Module, PathBuf> =
        list.into_iter().map(|f| (module_of(&src, &f), f)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, f) in &modules {
        let text = code(&std::fs::read_to_string(f).unwrap());
        for (is_crate, segs) in paths(&text) {
            let mut path: Module = if is_crate {
                vec![]
            } else {
                m[..m.len().saturating_sub(1)].to_vec()
            };
            let mut target = None;
            for s in segs {
                path.push(s);
                if modules.contains_key(&path) {
                    target = Some(path.clone());
                }
            }
            if let Some(t) = target {
                // A module's own parents are not an import of another file.
                if t != *m && !m.starts_with(&t) {
                    edges.entry(m.clone()).or_default().insert(t);
                }
            }
        }
    }
    // Tarjan's strongly connected components.
    struct Walk<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        found: Vec<Vec<Module>>,
    }
    fn visit(w: &mut Walk, v: &Module) {
        let i = w.index.len();
        w.index.insert(v.clone(), i);
        w.low.insert(v.clone(), i);
        w.stack.push(v.clone());
        for t in w.edges.get(v).cloned().unwrap_or_default() {
            if !w.index.contains_key(&t) {
                visit(w, &t);
                let l = w.low[v].min(w.low[&t]);
                w.low.insert(v.clone(), l);
            } else if w.stack.contains(&t) {
                let l = w.low[v].min(w.index[&t]);
                w.low.insert(v.clone(), l);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            while let Some(t) = w.stack.pop() {
                let done = t == *v;
                component.push(t);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                w.found.push(component);
            }
        }
    }
    let mut w = Walk {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for m in modules.keys() {
        if !w.index.contains_key(m) {
            visit(&mut w, m);
        }
    }
    w.found
}

#[test]
fn no_file_of_a_crate_imports_another_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut found = Vec::new();
    for c in CRATES {
        for circle in circles(&root.join(c)) {
            let names: Vec<String> = circle.iter().map(|m| m.join("/")).collect();
            found.push(format!("{c}: {}", names.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_circle_when_there_is_one() {
    let dir = std::env::temp_dir().join(format!("sportello-structure-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod store;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::{store::outbox::Mail, x};\n").unwrap();
    std::fs::write(src.join("store/mod.rs"), "pub mod outbox;\n").unwrap();
    // A file's parent does not count; `crate::a` in a comment does not either.
    std::fs::write(
        src.join("store/outbox.rs"),
        "// crate::a\nuse super::Store;\npub fn f() { crate::a::g() }\n",
    )
    .unwrap();
    let found = circles(&dir);
    std::fs::write(src.join("store/outbox.rs"), "use super::Store;\n").unwrap();
    let none = circles(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        found,
        vec![vec![
            vec!["store".to_string(), "outbox".to_string()],
            vec!["a".to_string()]
        ]]
    );
    assert!(none.is_empty(), "{none:?}");
}
