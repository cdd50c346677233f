//! The import rules of `src/lib.rs`, checked on the source: every `crate::ROOM` path in a file
//! of `src/` must point to its own room or down. A new arrow upward, between the two siblings
//! (`pipeline` and `mosaic`, or `queue` and `store`), or from the pixel engine into the database
//! fails this test with the file and line that broke the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of each top-level room; a room may import only rooms of a strictly lower layer.
const LAYERS: &[(&str, u32)] = &[
    ("cli", 7),
    ("workspace", 6),
    ("pipeline", 5),
    ("mosaic", 5),
    ("queue", 3),
    ("store", 3),
    ("wcs", 2),
    ("fits", 1),
    ("time", 0),
    ("stats", 0),
    ("fsutil", 0),
    ("manifest", 0),
    ("pg", 0),
];

/// Extra rules inside a layer: (importing module prefix, forbidden target room).
const FORBIDDEN: &[(&str, &str)] = &[
    // Pixels and coordinates know no database.
    ("mosaic::engine", "store"),
    ("mosaic::engine", "queue"),
    ("wcs", "store"),
    ("fits", "store"),
];

fn layer(room: &str) -> Option<u32> {
    LAYERS.iter().find(|(r, _)| *r == room).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file, e.g. `src/mosaic/qa/mod.rs` -> `mosaic::qa`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Every `crate::a::b` path named in `text` (outside line comments), with its line number.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let path: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push((n + 1, path.trim_end_matches(':').to_string()));
            rest = after;
        }
    }
    out
}

/// A `use crate::{a, b::c}` group names several rooms; expand the braces at the top level.
fn grouped_rooms(text: &str) -> Vec<(usize, String)> {
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        if let Some(i) = line.find("crate::{") {
            let inner = &line[i + "crate::{".len()..];
            for part in inner.split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push((n + 1, name));
                }
            }
        }
    }
    out
}

#[test]
fn imports_point_down_and_never_in_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    files.sort();
    let mut broken = vec![];
    let mut arrows: BTreeSet<(String, String)> = BTreeSet::new();
    let mut rooms: BTreeSet<String> = BTreeSet::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "main" || module == "lib" {
            continue;
        }
        let from_room = module.split("::").next().unwrap().to_string();
        let Some(from_layer) = layer(&from_room) else {
            broken.push(format!(
                "{}: room `{from_room}` has no layer in tests/layering.rs (and src/lib.rs's picture); place it",
                file.display()
            ));
            continue;
        };
        rooms.insert(from_room.clone());
        let text = std::fs::read_to_string(file).unwrap();
        let mut targets = crate_paths(&text);
        targets.extend(grouped_rooms(&text));
        for (line, path) in targets {
            let to_room = path.split("::").next().unwrap_or("").to_string();
            if to_room.is_empty() || to_room == from_room {
                continue;
            }
            let Some(to_layer) = layer(&to_room) else {
                continue; // an item at the crate root (none today) or a macro path
            };
            arrows.insert((from_room.clone(), to_room.clone()));
            if to_layer >= from_layer {
                broken.push(format!(
                    "{}:{line}: `{module}` (layer {from_layer}) imports `crate::{path}` (layer {to_layer}): arrows must point down",
                    file.display()
                ));
            }
            for (prefix, forbidden) in FORBIDDEN {
                if (module == *prefix || module.starts_with(&format!("{prefix}::")))
                    && to_room == *forbidden
                {
                    broken.push(format!(
                        "{}:{line}: `{module}` imports `crate::{path}`: {prefix} must not know {forbidden}",
                        file.display()
                    ));
                }
            }
        }
    }
    // With strict layers a circle is impossible; check it anyway so the rule table cannot drift
    // into allowing one.
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in &arrows {
        graph.entry(a).or_default().push(b);
    }
    fn reaches<'a>(
        g: &BTreeMap<&'a str, Vec<&'a str>>,
        from: &'a str,
        to: &str,
        seen: &mut BTreeSet<&'a str>,
    ) -> bool {
        for &n in g.get(from).map(Vec::as_slice).unwrap_or(&[]) {
            if n == to || (seen.insert(n) && reaches(g, n, to, seen)) {
                return true;
            }
        }
        false
    }
    for room in &rooms {
        assert!(
            !reaches(&graph, room, room, &mut BTreeSet::new()),
            "import circle through `{room}`"
        );
    }
    assert!(
        broken.is_empty(),
        "{} import rule(s) broken:\n{}",
        broken.len(),
        broken.join("\n")
    );
    assert!(
        arrows.contains(&("cli".into(), "pipeline".into())),
        "the scan found no arrows at all; is it reading src/?"
    );
}
