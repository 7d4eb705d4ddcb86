//! Keeps the dependency arrows pointing down: `lib.rs` lists the modules top-down, and a
//! module may use only modules listed below it. These tests read every source file's
//! `crate::…` paths and fail on any that points up (or at a module lib.rs does not list).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules `lib.rs` declares, in order (test-only ones left out).
fn declared(lib: &str) -> Vec<String> {
    let mut modules = Vec::new();
    let mut test_only = false;
    for line in lib.lines().map(str::trim) {
        if line == "#[cfg(test)]" {
            test_only = true;
            continue;
        }
        let name = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            .and_then(|rest| rest.strip_suffix(';'));
        if let Some(name) = name
            && !test_only
        {
            modules.push(name.to_string());
        }
        test_only = false;
    }
    modules
}

/// Names lib.rs re-exports at the crate root (`pub use context::Context;`), so that
/// `crate::Context` counts as a use of `context`.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    lib.lines()
        .filter_map(|line| line.trim().strip_prefix("pub use ")?.strip_suffix(';'))
        .filter_map(|path| {
            let (module, name) = path.split_once("::")?;
            let name = name.rsplit("::").next()?;
            let ident =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
            // `pub use crate::…` (bench_api) re-exports for outside users, not for modules.
            (module != "crate" && ident(module) && ident(name))
                .then(|| (name.to_string(), module.to_string()))
        })
        .collect()
}

/// The top-level module each `crate::` path in `code` names, with its line number.
/// Grouped imports (`use crate::{a, b::C};`) name each of their modules.
fn used_modules(code: &str) -> Vec<(usize, String)> {
    // Comments may mention anything.
    let code: String = code
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let line = code.len() - rest.len() + at;
        let line = code[..line].matches('\n').count() + 1;
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // Up to the matching brace; split on the commas at depth 0.
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    used.push((line, first_ident(&item)));
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
        } else {
            used.push((line, first_ident(after)));
        }
        rest = after;
    }
    used.retain(|(_, name)| !name.is_empty() && name != "self");
    used
}

fn first_ident(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_uses_a_module_listed_above_it_in_lib_rs() {
    let src = src();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let order = declared(&lib);
    let rank = |name: &str| order.iter().position(|m| m == name);
    let reexports = reexports(&lib);
    assert!(
        order.len() > 10 && rank("commands") == Some(0),
        "lib.rs's module list was not read: {order:?}"
    );
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if ["lib", "main", "layering"].contains(&top.as_str()) {
            continue;
        }
        let Some(own) = rank(&top) else {
            wrong.push(format!(
                "src/{}: module `{top}` is not listed in lib.rs; place it in its layer there",
                rel.display()
            ));
            continue;
        };
        let code = std::fs::read_to_string(&file).unwrap();
        for (line, name) in used_modules(&code) {
            let module = reexports.get(&name).cloned().unwrap_or(name);
            match rank(&module) {
                // Below it, or itself (`crate::backend::…` inside backend/).
                Some(used) if used >= own => {}
                Some(_) => wrong.push(format!(
                    "src/{}:{line}: `{top}` uses `{module}`, which lib.rs lists above it",
                    rel.display()
                )),
                None => wrong.push(format!(
                    "src/{}:{line}: `{top}` uses `crate::{module}`, which is not a module lib.rs lists",
                    rel.display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up (lib.rs order: {}):\n{}\n  move the shared piece down into a lower module, or the importer up",
        order.join(" > "),
        wrong.join("\n")
    );
}

#[test]
fn crate_paths_are_read_from_single_grouped_and_inline_uses() {
    let code = "use crate::a::B;\nuse crate::{c, d::{E, F}, self};\n// crate::commented\nfn f() { crate::g::h(); }\n";
    let names: Vec<(usize, String)> = used_modules(code);
    assert_eq!(
        names,
        [
            (1, "a".to_string()),
            (2, "c".to_string()),
            (2, "d".to_string()),
            (4, "g".to_string()),
        ]
    );
    let lib = "pub mod api {\n    pub use crate::low::{A, b};\n}\nmod top;\n#[cfg(test)]\nmod only_tests;\npub mod low;\npub use top::Thing;\n";
    assert_eq!(declared(lib), ["top", "low"]);
    assert_eq!(
        reexports(lib).into_iter().collect::<Vec<_>>(),
        [("Thing".to_string(), "top".to_string())]
    );
}
