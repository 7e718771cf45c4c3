//! The layers keep to their side, read from the source: `domain/` knows neither actix nor
//! diesel, `models/` knows neither the HTTP layer, auth, telemetry nor the HTTP problems, and
//! `seed/` loads through the write pipeline it is handed, naming no HTTP.

use std::path::{Path, PathBuf};

/// A layer and the crates and modules it must not name.
struct Rule {
    layer: &'static str,
    forbidden: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        layer: "domain",
        forbidden: &["actix_web", "diesel"],
    },
    Rule {
        layer: "models",
        forbidden: &[
            "crate::http",
            "crate::auth",
            "crate::telemetry",
            "actix_web",
        ],
    },
    Rule {
        layer: "seed",
        forbidden: &["crate::http"],
    },
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Where `source` names `forbidden`: as a path (`diesel::`, `crate::http::`), alone
/// (`use crate::http;`), or inside a group (`use crate::{auth, http};`).
fn crossings(source: &str, forbidden: &str) -> Vec<usize> {
    let (root, module) = forbidden.rsplit_once("::").unwrap_or(("", forbidden));
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut lines = Vec::new();
    for (n, code) in statements(source) {
        let named = code.match_indices(forbidden).any(|(i, _)| {
            let before = code[..i].chars().next_back();
            let after = code[i + forbidden.len()..].chars().next();
            !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
        });
        let grouped = !root.is_empty()
            && code.contains(&format!("{root}::{{"))
            && code
                .split(|c: char| !is_ident(c))
                .any(|word| word == module);
        if named || grouped {
            lines.push(n);
        }
    }
    lines
}

/// The source line by line, comments dropped, with each `use` that spans several lines joined
/// into one; numbered from 1 by the line it starts on.
fn statements(source: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut open = false;
    for (n, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        match out.last_mut() {
            Some((_, joined)) if open => joined.push_str(code),
            _ => out.push((n + 1, code.to_owned())),
        }
        let trimmed = code.trim_start();
        if trimmed.starts_with("use ") || trimmed.starts_with("pub use ") {
            open = true;
        }
        if code.contains(';') {
            open = false;
        }
    }
    out
}

#[test]
fn the_layers_keep_to_their_side() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for rule in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(rule.layer), &mut files);
        assert!(!files.is_empty(), "no sources in src/{}", rule.layer);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read source");
            for forbidden in rule.forbidden {
                for line in crossings(&text, forbidden) {
                    found.push(format!(
                        "{}:{line}: {} names {forbidden}",
                        file.strip_prefix(&src).unwrap_or(&file).display(),
                        rule.layer
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "layer crossings:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_every_way_of_naming_a_module() {
    assert_eq!(crossings("use diesel::prelude::*;", "diesel"), [1]);
    assert_eq!(
        crossings("fn f(c: &mut diesel::PgConnection) {}", "diesel"),
        [1]
    );
    assert_eq!(crossings("use crate::http::record;", "crate::http"), [1]);
    assert_eq!(crossings("use crate::http;", "crate::http"), [1]);
    assert_eq!(crossings("use crate::{auth, http::x};", "crate::http"), [1]);
    // A group over several lines, reported at the line its `use` starts on.
    assert_eq!(
        crossings("x\nuse crate::{\n    db,\n    http,\n};", "crate::http"),
        [2]
    );
    assert!(crossings("use crate::https_only;", "crate::http").is_empty());
    assert!(crossings("// diesel:: in a comment", "diesel").is_empty());
    assert!(crossings("use my_diesel::x;", "diesel").is_empty());
}
