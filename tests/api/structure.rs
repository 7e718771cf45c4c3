//! The layers keep to their side, read from the source: `domain/` knows neither actix nor
//! diesel, `models/` knows neither the HTTP layer, auth, telemetry nor the HTTP problems, and
//! `seed/` loads through the write pipeline it is handed, naming no HTTP, and `http/` writes
//! no SQL (list filters, raw queries and SQL types belong to `models/` and `db/`).

use std::path::{Path, PathBuf};

/// A layer (a directory under `src/`), the paths it must not name (crates, modules, items,
/// or a bare name such as a function), and why, for the failure message.
struct Rule {
    layer: &'static str,
    forbidden: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        layer: "domain",
        forbidden: &["actix_web", "diesel"],
        why: "validated values know neither HTTP nor the database",
    },
    Rule {
        layer: "models",
        forbidden: &[
            "crate::http",
            "crate::auth",
            "crate::telemetry",
            "actix_web",
        ],
        why: "storage serves every caller, not only HTTP",
    },
    Rule {
        layer: "http",
        forbidden: &["crate::db::list::Filter", "sql_query", "diesel::sql_types"],
        why: "SQL lives in models/ and db/: http/ builds typed filters and calls the model",
    },
    Rule {
        layer: "seed",
        forbidden: &[
            "crate::http",
            "crate::db::schema",
            "sql_query",
            "diesel::sql_types",
        ],
        why: "the seed loads through the write pipeline it is handed (the API's), naming no \
              HTTP, and writes its bulk rows through models/, naming no table",
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

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `code` holds `needle` as a whole path: not inside a longer identifier, and (with
/// `own`) not as the tail of another path (`x::list::Filter` is not `list::Filter`).
fn mentions(code: &str, needle: &str, own: bool) -> bool {
    code.match_indices(needle).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + needle.len()..].chars().next();
        !before.is_some_and(|c| is_ident(c) || (own && c == ':')) && !after.is_some_and(is_ident)
    })
}

/// The paths a `use` statement imports, its groups expanded, each with the name it binds:
/// `use a::{self, b::{c as d, *}};` gives `a` (as `a`), `a::b::c` (as `d`) and `a::b::*`.
fn use_paths(statement: &str) -> Vec<(String, String)> {
    fn expand(prefix: &str, tree: &str, out: &mut Vec<(String, String)>) {
        let tree = tree.trim();
        if tree.is_empty() {
            return;
        }
        let join = |rest: &str| {
            if prefix.is_empty() {
                rest.to_owned()
            } else {
                format!("{prefix}::{rest}")
            }
        };
        if let Some(open) = tree.find('{') {
            let head = tree[..open].trim().trim_end_matches("::");
            let inner = tree[open + 1..].trim_end().trim_end_matches('}');
            let prefix = join(head);
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&prefix, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            expand(&prefix, &inner[start..], out);
            return;
        }
        let (path, alias) = match tree.split_once(" as ") {
            Some((path, alias)) => (path.trim(), Some(alias.trim())),
            None => (tree, None),
        };
        let path = match path {
            "self" => prefix.to_owned(),
            _ => join(path),
        };
        let name = alias.unwrap_or_else(|| path.rsplit("::").next().unwrap_or(&path));
        out.push((path.clone(), name.to_owned()));
    }
    let tree = statement
        .trim()
        .trim_start_matches("pub ")
        .trim_start_matches("use ")
        .trim_end()
        .trim_end_matches(';');
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    expand("", &tree, &mut out);
    out
}

/// Whether importing `path` names `forbidden`: the path itself or something inside it, a glob
/// over what holds it, or (for a bare name such as `sql_query`) any segment of that name.
fn imports(path: &str, forbidden: &str) -> bool {
    if !forbidden.contains("::") {
        return path.split("::").any(|segment| segment == forbidden);
    }
    let parent = forbidden.rsplit_once("::").map_or("", |(parent, _)| parent);
    path == forbidden
        || path.starts_with(&format!("{forbidden}::"))
        || path.strip_suffix("::*") == Some(parent)
}

fn is_use(code: &str) -> bool {
    let code = code.trim_start();
    code.starts_with("use ") || code.starts_with("pub use ")
}

/// Where `source` names `forbidden`: in a `use` however grouped (`use crate::{auth, http};`,
/// `use crate::db::{self, list::Filter};`), by its path in code (`diesel::sql_types::Text`),
/// or through a module the file imported (`use crate::db::list;` then `list::Filter`).
fn crossings(source: &str, forbidden: &str) -> Vec<usize> {
    let statements = statements(source);
    // `forbidden` as the file may spell it after its imports: `list::Filter` for `list`.
    let mut spellings = vec![forbidden.to_owned()];
    for (_, code) in statements.iter().filter(|(_, code)| is_use(code)) {
        for (path, name) in use_paths(code) {
            if let Some(rest) = forbidden.strip_prefix(&format!("{path}::")) {
                spellings.push(format!("{name}::{rest}"));
            }
        }
    }
    let mut lines = Vec::new();
    for (n, code) in &statements {
        let named = if is_use(code) {
            use_paths(code)
                .iter()
                .any(|(path, _)| imports(path, forbidden))
        } else {
            mentions(code, forbidden, false)
                || spellings[1..].iter().any(|s| mentions(code, s, true))
        };
        if named {
            lines.push(*n);
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
                        "{}:{line}: {} names {forbidden} ({})",
                        file.strip_prefix(&src).unwrap_or(&file).display(),
                        rule.layer,
                        rule.why
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

#[test]
fn the_check_sees_every_way_of_naming_an_item() {
    let filter = "crate::db::list::Filter";
    assert_eq!(crossings("use crate::db::list::Filter;", filter), [1]);
    assert_eq!(
        crossings("use crate::db::list::{Filter, Order};", filter),
        [1]
    );
    assert_eq!(
        crossings("use crate::db::{self, list::Filter};", filter),
        [1]
    );
    assert_eq!(crossings("use crate::db::list::Filter as F;", filter), [1]);
    assert_eq!(crossings("use crate::db::list::*;", filter), [1]);
    assert_eq!(
        crossings("let f = crate::db::list::Filter::Raw(\"x\");", filter),
        [1]
    );
    // Through a module the file imported, under its name or an alias.
    assert_eq!(
        crossings(
            "use crate::db::list;\nlet f = list::Filter::Raw(\"x\");",
            filter
        ),
        [2]
    );
    assert_eq!(
        crossings(
            "use crate::db::{self};\nlet f = db::list::Filter::Raw(\"x\");",
            filter
        ),
        [2]
    );
    assert_eq!(
        crossings(
            "use crate::db::list as l;\nlet f = l::Filter::Raw(\"x\");",
            filter
        ),
        [2]
    );
    assert!(crossings("use crate::db::list::{ListQuery, SortKey};", filter).is_empty());
    assert!(crossings("use crate::db::list;\nlet q: list::ListQuery;", filter).is_empty());
    assert!(crossings("use crate::models::link::DatedFilter;", filter).is_empty());
    assert!(crossings("use crate::db::list;\nlet f = other::list::Filter;", filter).is_empty());
    // A bare name: a function, wherever it comes from.
    assert_eq!(
        crossings("let q = diesel::sql_query(\"x\");", "sql_query"),
        [1]
    );
    assert_eq!(
        crossings("use diesel::{prelude::*, sql_query};", "sql_query"),
        [1]
    );
    assert!(crossings("fn sql_query_count() {}", "sql_query").is_empty());
    let types = "diesel::sql_types";
    assert_eq!(
        crossings("use diesel::{prelude::*, sql_types::Text};", types),
        [1]
    );
    assert_eq!(
        crossings("#[diesel(sql_type = diesel::sql_types::Text)]", types),
        [1]
    );
    assert!(crossings("use diesel::prelude::*;", types).is_empty());
}
