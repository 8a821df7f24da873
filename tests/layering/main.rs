//! Layering check: the modules under `src/` may only import modules on LOWER layers.
//!
//! `docs/architecture.md` is the authority. The first fenced block after the first line that
//! mentions "layers" lists the layers, bottom first, one per line; several module names on one
//! line share a layer, and anything after `#` is a comment. This test walks `src/`, finds every
//! module -> module import (`crate::NAME` paths and the names of `use crate::{..}` groups, with
//! comments stripped, so doc examples do not count) and fails when
//!
//! * a module under `src/` (other than the crate root `lib`) is on no layer,
//! * a layer names a module that does not exist under `src/` (the document went stale),
//! * a module imports a module on its own layer or on a higher one.
//!
//! The crate root (`lib.rs`) may import anything. It mirrors the `layers` tool (`../shared/tools/layers`), but is
//! stricter: that tool allows imports within one layer, this test does not.
//!
//! The checker is made of pure functions over `(path under src/, source text)` pairs and a layer
//! list, so the second test can prove on a synthetic tree that it really reports violations.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The document that declares the layering, relative to the crate root.
const ARCHITECTURE_DOC: &str = "docs/architecture.md";

/// Imports found: `(from module, to module)` -> the names used (last path segment of each path).
type Edges = BTreeMap<(String, String), BTreeSet<String>>;

// ---------------------------------------------------------------------------------------------
// Small hand-written scanners (no regex crate).
// ---------------------------------------------------------------------------------------------

/// A byte of a Rust identifier: `[A-Za-z0-9_]`.
fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A byte that may start a module name: `[a-z_]`.
fn is_name_start(b: u8) -> bool {
    b.is_ascii_lowercase() || b == b'_'
}

/// A byte that may continue a module name: `[a-z0-9_]`.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}

/// Whether `s` is entirely a module name, `[a-z_][a-z0-9_]*`.
fn is_module_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty() && is_name_start(bytes[0]) && bytes[1..].iter().all(|&b| is_name_byte(b))
}

/// End (exclusive) of the run of identifier bytes starting at `start`.
fn ident_end(bytes: &[u8], start: usize) -> usize {
    let mut end = start;
    while end < bytes.len() && is_ident_byte(bytes[end]) {
        end += 1;
    }
    end
}

/// First position at or after `pos` that is not ASCII whitespace.
fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

/// Every match of `[a-z_][a-z0-9_]*` in `s`, leftmost and longest first, as a regex `findall`
/// would give them.
fn lowercase_words(s: &str) -> Vec<String> {
    let bytes = s.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if is_name_start(bytes[i]) {
            let start = i;
            while i < bytes.len() && is_name_byte(bytes[i]) {
                i += 1;
            }
            words.push(s[start..i].to_string());
        } else {
            i += 1;
        }
    }
    words
}

/// Follows `::segment` repetitions from `pos` (just after a first segment whose text is `first`).
/// Returns the last segment of the path and the position after it. A path that goes on into a
/// group or a glob (`a::{..}`, `a::*`) ends at the segment before it.
fn path_tail(bytes: &[u8], mut pos: usize, first: &str) -> (String, usize) {
    let mut last = first.to_string();
    while bytes[pos..].starts_with(b"::")
        && pos + 2 < bytes.len()
        && (bytes[pos + 2].is_ascii_alphabetic() || bytes[pos + 2] == b'_')
    {
        let start = pos + 2;
        let end = ident_end(bytes, start);
        last = String::from_utf8_lossy(&bytes[start..end]).into_owned();
        pos = end;
    }
    (last, pos)
}

// ---------------------------------------------------------------------------------------------
// Reading the declared layers.
// ---------------------------------------------------------------------------------------------

/// The layers declared in the architecture document, bottom first; `None` when the document has
/// no "layers" line followed by a fenced block, or the block names no module.
fn parse_layers(doc: &str) -> Option<Vec<Vec<String>>> {
    let lines: Vec<&str> = doc.lines().collect();
    let heading = lines
        .iter()
        .position(|line| line.to_lowercase().contains("layers"))?;
    let fence = heading
        + 1
        + lines[heading + 1..]
            .iter()
            .position(|line| line.starts_with("```"))?;
    let layers: Vec<Vec<String>> = lines[fence + 1..]
        .iter()
        .take_while(|line| !line.starts_with("```"))
        .map(|line| lowercase_words(line.split('#').next().unwrap_or("")))
        .filter(|names| !names.is_empty())
        .collect();
    (!layers.is_empty()).then_some(layers)
}

// ---------------------------------------------------------------------------------------------
// Reading the imports.
// ---------------------------------------------------------------------------------------------

/// The module a file belongs to, from its path under `src/` (`/`-separated): the first path
/// component without `.rs`; the crate roots `lib.rs` and `main.rs` are `lib`, `bin/x.rs` is `bin`.
fn module_of(path: &str) -> String {
    let first = path.split('/').next().unwrap_or(path);
    let name = first.strip_suffix(".rs").unwrap_or(first);
    match name {
        "lib" | "main" => "lib".to_string(),
        other => other.to_string(),
    }
}

/// Source without comments: `/* .. */` blocks go first (shortest match, not nested), then every
/// line loses the part from `//` on, and a line that starts with `//` (after whitespace) is
/// dropped whole. Same rules as the Python tool; string literals are not special-cased.
fn strip_comments(text: &str) -> String {
    let mut without_blocks = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("/*") {
        match rest[open + 2..].find("*/") {
            Some(close) => {
                without_blocks.push_str(&rest[..open]);
                rest = &rest[open + 2 + close + 2..];
            }
            None => break, // an unclosed block is left as it is
        }
    }
    without_blocks.push_str(rest);

    without_blocks
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                ""
            } else {
                line.split("//").next().unwrap_or("")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::NAME` path, NAME a module name other than `module`. `$crate::` (in macros) counts;
/// `crate::` glued to a longer identifier (`mycrate::`) does not. The name used is the path's last
/// segment (`crate::spans::context::Ids` -> `Ids`).
fn scan_crate_paths(module: &str, text: &str, edges: &mut Edges) {
    let bytes = text.as_bytes();
    let needle = b"crate::";
    let mut i = 0;
    while i + needle.len() <= bytes.len() {
        if !bytes[i..].starts_with(needle) || (i > 0 && is_ident_byte(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let start = i + needle.len();
        let end = ident_end(bytes, start);
        let name = &text[start..end];
        if is_module_name(name) && name != module {
            let (last, _) = path_tail(bytes, end, name);
            edges
                .entry((module.to_string(), name.to_string()))
                .or_default()
                .insert(last);
        }
        i = end.max(i + 1);
    }
}

/// Every `use crate::{ .. };` group (may span lines): each item at the group's top level whose
/// first segment is a module name (followed by `::`, `,`, `}`, `as` or the end of the group) and
/// is neither `self`, `super` nor `module` itself.
fn scan_use_groups(module: &str, text: &str, edges: &mut Edges) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 3 <= bytes.len() {
        // `use` as a whole word, then whitespace, then `crate::{`.
        let is_use = bytes[i..].starts_with(b"use")
            && (i == 0 || !is_ident_byte(bytes[i - 1]))
            && bytes.get(i + 3).is_some_and(|b| b.is_ascii_whitespace());
        if !is_use {
            i += 1;
            continue;
        }
        let after_use = skip_whitespace(bytes, i + 3);
        if !bytes[after_use..].starts_with(b"crate::{") {
            i += 3;
            continue;
        }
        let open = after_use + "crate::{".len();
        match group_end(bytes, open) {
            Some(close) => {
                scan_group(module, &text[open..close], edges);
                i = close + 1;
            }
            None => i = open,
        }
    }
}

/// Position of the `}` that closes a group whose content starts at `open`; `None` when a `;`
/// or the end of the text comes first.
fn group_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 1usize;
    for (offset, &b) in bytes[open..].iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + offset);
                }
            }
            b';' => return None,
            _ => {}
        }
    }
    None
}

/// The top-level items of one `use crate::{..}` group's content (without the outer braces).
fn scan_group(module: &str, group: &str, edges: &mut Edges) {
    let bytes = group.as_bytes();
    let mut depth = 0usize;
    let mut item_start = true; // at the start of an item: start of group or after a top-level `,`
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if depth == 0 && item_start && is_ident_byte(b) {
            item_start = false;
            let end = ident_end(bytes, i);
            let word = &group[i..end];
            if is_module_name(word) && !matches!(word, "self" | "super") && word != module {
                let next = skip_whitespace(bytes, end);
                let followed_ok = next == bytes.len()
                    || bytes[next..].starts_with(b"::")
                    || bytes[next] == b','
                    || bytes[next] == b'}'
                    || (bytes[next..].starts_with(b"as")
                        && !bytes.get(next + 2).is_some_and(|&b| is_ident_byte(b)));
                if followed_ok {
                    let (last, _) = path_tail(bytes, end, word);
                    edges
                        .entry((module.to_string(), word.to_string()))
                        .or_default()
                        .insert(last);
                }
            }
            i = end;
            continue;
        }
        match b {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => item_start = true,
            _ if b.is_ascii_whitespace() => {}
            _ if depth == 0 => item_start = false,
            _ => {}
        }
        i += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// The check.
// ---------------------------------------------------------------------------------------------

/// Every layering problem in `files` (path under `src/`, `/`-separated, and source text) against
/// `layers` (bottom first). Empty when the layering holds.
fn check_layering(files: &[(String, String)], layers: &[Vec<String>]) -> Vec<String> {
    let mut problems = Vec::new();
    if layers.is_empty() {
        problems.push(format!("no layers declared (expected a fenced block after a \"layers\" line in {ARCHITECTURE_DOC})"));
        return problems;
    }

    // Modules, with one file each for the messages.
    let mut modules: BTreeMap<String, &str> = BTreeMap::new();
    let mut edges = Edges::new();
    for (path, text) in files.iter().filter(|(path, _)| path.ends_with(".rs")) {
        let module = module_of(path);
        let code = strip_comments(text);
        scan_crate_paths(&module, &code, &mut edges);
        scan_use_groups(&module, &code, &mut edges);
        modules.entry(module).or_insert(path);
    }
    // `crate::configure_telemetry` and other root re-exports are no modules.
    edges.retain(|(_, to), _| modules.contains_key(to));

    // Layer of each declared name; 0 is the bottom.
    let mut rank: BTreeMap<&str, usize> = BTreeMap::new();
    for (layer, names) in layers.iter().enumerate() {
        for name in names {
            if let Some(&earlier) = rank.get(name.as_str()) {
                problems.push(format!(
                    "module `{name}` is on two layers: {} and {}",
                    earlier + 1,
                    layer + 1
                ));
                continue;
            }
            rank.insert(name, layer);
            if !modules.contains_key(name) {
                problems.push(format!(
                    "stale layer entry: `{name}` (layer {}) is not a module under src/",
                    layer + 1
                ));
            }
        }
    }

    for (module, path) in &modules {
        if module != "lib" && !rank.contains_key(module.as_str()) {
            problems.push(format!("module `{module}` (src/{path}) is on no layer"));
        }
    }

    for ((from, to), names) in &edges {
        if from == "lib" {
            continue;
        }
        let (Some(&from_rank), Some(&to_rank)) = (rank.get(from.as_str()), rank.get(to.as_str()))
        else {
            continue; // already reported as on no layer
        };
        let kind = if to_rank > from_rank {
            "upward import"
        } else if to_rank == from_rank {
            "same-layer import"
        } else {
            continue;
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        problems.push(format!(
            "{kind}: {from} (layer {}) -> {to} (layer {}): {}",
            from_rank + 1,
            to_rank + 1,
            names.join(", ")
        ));
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// I/O wrapper.
// ---------------------------------------------------------------------------------------------

/// Every file under `dir`, recursively, as (path relative to `root`, `/`-separated; text).
fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            read_tree(root, &path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let bytes =
                fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let relative = path
                .strip_prefix(root)
                .expect("a file under src/")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((relative, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
}

#[test]
fn modules_respect_the_declared_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc_path = root.join(ARCHITECTURE_DOC);
    let doc = fs::read_to_string(&doc_path)
        .unwrap_or_else(|e| panic!("{} is the authority on layering: {e}", doc_path.display()));
    let layers = parse_layers(&doc).unwrap_or_else(|| {
        panic!(
            "{ARCHITECTURE_DOC} declares no layers: expected a line mentioning \"layers\" followed \
             by a ``` block with one layer per line, bottom first"
        )
    });

    let src = root.join("src");
    let mut files = Vec::new();
    read_tree(&src, &src, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no .rs files under {}", src.display());

    let problems = check_layering(&files, &layers);
    assert!(
        problems.is_empty(),
        "layering in {ARCHITECTURE_DOC} does not hold ({} problems):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// The checker itself, on synthetic input.
// ---------------------------------------------------------------------------------------------

/// `(path, text)` pairs from string literals.
fn tree(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect()
}

/// Layers from `"a b+c d"` (bottom first, `+` joins names on one layer).
fn layer_list(spec: &str) -> Vec<Vec<String>> {
    spec.split_whitespace()
        .map(|layer| layer.split('+').map(str::to_string).collect())
        .collect()
}

/// A small crate that keeps its layering; each offending test adds one file to it.
const CLEAN: &[(&str, &str)] = &[
    (
        "lib.rs",
        "mod error;\npub use crate::handle::Handle;\npub fn f() { crate::spans::g(); }\n",
    ),
    ("main.rs", "use crate::{handle, orphanless};\n"),
    ("error.rs", "pub struct Error;\n"),
    (
        "state.rs",
        "use crate::error::Error;\nuse crate::{self as me, state};\n",
    ),
    (
        "spans/mod.rs",
        "use crate::{\n    state::{self, State},\n    error,\n};\nmod context;\n",
    ),
    (
        "spans/context.rs",
        "//! Example: `crate::handle::Handle`\n\
         /// Uses crate::handle::Handle\n\
         /* crate::metrics::Counter\n   crate::handle::Handle */\n\
         pub fn ids() -> crate::error::Error { crate::error::Error } // crate::handle::Handle\n",
    ),
    ("metrics.rs", "use crate::{state as st, error::Error};\n"),
    (
        "handle.rs",
        "use crate::{spans::context::Ids, metrics::*};\nuse crate::state;\n",
    ),
    ("notes.txt", "crate::handle::Handle\n"),
];

const LAYERS: &str = "error state spans+metrics handle";

#[test]
fn a_clean_tree_reports_nothing() {
    let problems = check_layering(&tree(CLEAN), &layer_list(LAYERS));
    assert!(problems.is_empty(), "unexpected problems: {problems:#?}");
}

#[test]
fn the_checker_reports_every_kind_of_violation() {
    let mut files = tree(CLEAN);
    files.extend(tree(&[
        // upward, through a path and a `use` group, plus a doc comment that must not count
        (
            "spans/record.rs",
            "/// See crate::handle::Other\nuse crate::{handle::Component, error};\nfn f() { crate::handle::start(); }\n",
        ),
        // same layer
        ("metrics/mod.rs", "use crate::spans::current_ids;\n"),
        // on no layer
        ("orphan.rs", "use crate::error::Error;\n"),
    ]));
    let mut layers = layer_list(LAYERS);
    layers.push(vec!["gone".to_string()]);

    let problems = check_layering(&files, &layers);
    let expected = [
        "upward import: spans (layer 3) -> handle (layer 4): Component, start",
        "same-layer import: metrics (layer 3) -> spans (layer 3): current_ids",
        "module `orphan` (src/orphan.rs) is on no layer",
        "stale layer entry: `gone` (layer 5) is not a module under src/",
    ];
    for want in expected {
        assert!(
            problems.iter().any(|p| p == want),
            "missing {want:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}

#[test]
fn layers_come_from_the_first_fence_after_the_layers_line() {
    let doc = "# Architecture\n\n```\nnot this\n```\n\n## Layers (bottom first)\n\nText.\n\n\
               ```text\nerror format   # leaves\n\nstate\n# only a comment\nspans metrics\n```\n\
               ```\nlater\n```\n";
    let layers = parse_layers(doc).expect("layers");
    assert_eq!(layers, layer_list("error+format state spans+metrics"));
    assert_eq!(parse_layers("# Architecture\nno block here\n"), None);
    assert_eq!(parse_layers("Layers:\n```\n# none\n```\n"), None);
}

#[test]
fn scanners_find_module_names_and_last_segments() {
    assert_eq!(module_of("spans/context.rs"), "spans");
    assert_eq!(module_of("handle.rs"), "handle");
    assert_eq!(module_of("lib.rs"), "lib");
    assert_eq!(module_of("main.rs"), "lib");
    assert_eq!(module_of("bin/tool.rs"), "bin");

    let mut edges = Edges::new();
    let code = strip_comments(
        "let x = $crate::spans::Ids; let y = mycrate::state::S;\n\
         use crate::{format::{self, time}, registry as reg, Error, sync::*};",
    );
    scan_crate_paths("logs", &code, &mut edges);
    scan_use_groups("logs", &code, &mut edges);
    let found: Vec<(String, String, Vec<String>)> = edges
        .into_iter()
        .map(|((from, to), names)| (from, to, names.into_iter().collect()))
        .collect();
    let want = |to: &str, names: &[&str]| {
        (
            "logs".to_string(),
            to.to_string(),
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        found,
        vec![
            want("format", &["format"]),
            want("registry", &["registry"]),
            want("spans", &["Ids"]),
            want("sync", &["sync"]),
        ]
    );
}
