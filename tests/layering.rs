//! The import rules of `src/lib.rs`, checked on the parsed source.
//!
//! [`check`] reads a source tree (a directory laid out like `src/`), parses every `.rs` file with
//! `syn` and resolves every path that names an item of the crate: whole `use` trees (groups,
//! nested groups, renames, globs), paths in expressions, types, patterns and attributes, paths
//! inside macro invocations (their tokens; comments and strings are not code), `$crate` paths in
//! `macro_rules!` bodies, and paths through a name a `use` brought in. `crate::`, `self::` and
//! `super::` (also inside inline `mod tests { .. }`) are resolved against the file's module path;
//! a name re-exported with `pub use` is followed to the file that defines it.
//!
//! Two things are checked:
//! * the rules between rooms (the top-level modules) of `src/lib.rs`, on the room a path names
//!   after resolving `crate`/`self`/`super` (so a re-export one layer down is how a room offers a
//!   lower room's item to the rooms above it);
//! * that no two files import each other, directly or around a circle: the file-level graph of
//!   every reference from one file to an item defined in another must have no strongly connected
//!   component of more than one file. Every `use`, private or public, and every path is an arrow,
//!   except a module's arrows into its own sub-modules, which it declares (its `pub use` face, the
//!   error enum wrapping theirs): those are containment. A sub-module naming what its parent
//!   defines (`super::Error`) is an arrow, so a circle must run through files that are not each
//!   other's ancestors (siblings, cousins, other rooms).
//!
//! A rule between rooms is checked on the path as written; a path through a name that a `use`
//! brought in is checked on that `use` (so one import is reported once, not at every use).
//!
//! The test runs the checker on `src/` and on small synthetic trees, each with one kind of
//! violation, so a checker that stopped seeing one would fail here too.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::visit::{self, Visit};

/// The layer of each top-level room; a room may import only its own room or rooms of a strictly
/// lower layer.
const LAYERS: &[(&str, u32)] = &[
    ("cli", 8),
    ("serve", 7),
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

/// Rooms of one layer that never import each other.
const SIBLINGS: &[(&str, &str)] = &[("pipeline", "mosaic"), ("queue", "store")];

/// Rooms that `cli` (and `serve`, the HTTP face of the same commands) must not import directly:
/// they reach them through `workspace` and `pipeline`.
const CLI_NEVER: &[&str] = &["queue", "store"];

/// Downward imports that are still forbidden: (importing module prefix, room it must not name).
const FORBIDDEN: &[(&str, &str)] = &[
    // The pixel engine knows no database.
    ("mosaic::engine", "store"),
    ("mosaic::engine", "queue"),
];

fn layer(room: &str) -> Option<u32> {
    LAYERS.iter().find(|(r, _)| *r == room).map(|(_, l)| *l)
}

/// Which rule a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    /// A file that `syn` cannot parse (nothing in it could be checked).
    Unparsable,
    /// A room that has no layer in [`LAYERS`].
    NoLayer,
    /// An import of a room of the same or a higher layer.
    Upward,
    /// `pipeline` <-> `mosaic` or `queue` <-> `store`.
    Siblings,
    /// Something outside `cli` names `cli`.
    NamesCli,
    /// `cli` names `queue` or `store`.
    CliDirect,
    /// A [`FORBIDDEN`] pair (the pixel engine and the database).
    Forbidden,
    /// `main.rs` does more than call `cli::main`.
    Main,
    /// Files that import each other, directly or around a circle.
    Cycle,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    /// The file, relative to the checked tree (e.g. `cli/run.rs`).
    file: String,
    line: usize,
    rule: Rule,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "src/{}:{}: [{:?}] {}",
            self.file, self.line, self.rule, self.message
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the tree
// ---------------------------------------------------------------------------------------------

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

/// The module path of a file relative to the tree, e.g. `mosaic/qa/mod.rs` -> `mosaic::qa`;
/// `lib.rs` is the crate root (``).
fn module_of(rel: &Path) -> String {
    let rel = rel.with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    if parts == ["lib"] {
        parts.clear();
    }
    parts.join("::")
}

fn join(module: &str, name: &str) -> String {
    if module.is_empty() {
        name.to_string()
    } else {
        format!("{module}::{name}")
    }
}

fn parent(module: &str) -> Option<&str> {
    if module.is_empty() {
        None
    } else {
        Some(module.rsplit_once("::").map_or("", |(p, _)| p))
    }
}

fn room_of(module: &str) -> &str {
    module.split("::").next().unwrap_or("")
}

fn ident(i: &proc_macro2::Ident) -> String {
    let s = i.to_string();
    s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
}

/// A path as written, in the module where it was written.
#[derive(Clone, Debug)]
struct Reference {
    module: String,
    line: usize,
    segments: Vec<String>,
    kind: RefKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefKind {
    /// A `use` leaf; `public` for `pub use` (any visibility but the default).
    Use { public: bool, glob: bool },
    /// A path in code, a type, a pattern, a macro's tokens or an attribute.
    Code,
}

/// What a module declares: its sub-modules, its items, the names its `use`s bring in.
#[derive(Default, Debug)]
struct ModInfo {
    file: usize,
    children: BTreeSet<String>,
    items: BTreeSet<String>,
    /// name -> the path it stands for, as written.
    aliases: BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

struct Collector<'a> {
    module: String,
    refs: &'a mut Vec<Reference>,
    mods: &'a mut BTreeMap<String, ModInfo>,
    file: usize,
    /// `#[macro_export]` macros: name -> the module defining it.
    exported: &'a mut BTreeMap<String, String>,
}

impl Collector<'_> {
    fn info(&mut self) -> &mut ModInfo {
        let file = self.file;
        self.mods
            .entry(self.module.clone())
            .or_insert_with(|| ModInfo {
                file,
                ..ModInfo::default()
            })
    }

    fn push(&mut self, line: usize, segments: Vec<String>, kind: RefKind) {
        if segments.is_empty() {
            return;
        }
        self.refs.push(Reference {
            module: self.module.clone(),
            line,
            segments,
            kind,
        });
    }

    fn use_tree(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>, public: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(ident(&p.ident));
                self.use_tree(&p.tree, prefix, public);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = ident(&n.ident);
                let mut full = prefix.clone();
                // `use a::b::{self}` names `a::b`.
                if name != "self" {
                    full.push(name.clone());
                }
                let alias = full.last().cloned().unwrap_or_default();
                self.info().aliases.insert(alias, full.clone());
                let line = n.ident.span().start().line;
                self.push(
                    line,
                    full,
                    RefKind::Use {
                        public,
                        glob: false,
                    },
                );
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                let name = ident(&r.ident);
                if name != "self" {
                    full.push(name);
                }
                let alias = ident(&r.rename);
                if alias != "_" {
                    self.info().aliases.insert(alias, full.clone());
                }
                let line = r.ident.span().start().line;
                self.push(
                    line,
                    full,
                    RefKind::Use {
                        public,
                        glob: false,
                    },
                );
            }
            syn::UseTree::Glob(g) => {
                self.info().globs.push(prefix.clone());
                let line = g.star_token.span().start().line;
                self.push(line, prefix.clone(), RefKind::Use { public, glob: true });
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(t, prefix, public);
                }
            }
        }
    }

    /// A string that is a path of two or more segments, in an attribute
    /// (`#[serde(with = "crate::a::b")]`).
    fn string_path(&mut self, s: &syn::LitStr) {
        if let Ok(p) = syn::parse_str::<syn::Path>(&s.value())
            && p.leading_colon.is_none()
            && p.segments.len() >= 2
        {
            let segs = p.segments.iter().map(|s| ident(&s.ident)).collect();
            self.push(s.span().start().line, segs, RefKind::Code);
        }
    }

    /// Every path in a token stream (a macro's input, an attribute's): `a::b::c` runs of
    /// identifiers and `$crate::..` in `macro_rules!` bodies; in an attribute (`strings`), also
    /// its string literals that are paths.
    fn tokens(&mut self, ts: TokenStream, strings: bool) {
        let toks: Vec<TokenTree> = ts.into_iter().collect();
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                TokenTree::Group(g) => {
                    self.tokens(g.stream(), strings);
                    i += 1;
                }
                TokenTree::Literal(l) => {
                    if strings && let Ok(s) = syn::parse_str::<syn::LitStr>(&l.to_string()) {
                        let s = syn::LitStr::new(&s.value(), l.span());
                        self.string_path(&s);
                    }
                    i += 1;
                }
                TokenTree::Punct(p) if p.as_char() == '$' => {
                    // `$crate` starts a path; `$name` is a macro variable.
                    match toks.get(i + 1) {
                        Some(TokenTree::Ident(id)) if id == "crate" => {
                            let line = id.span().start().line;
                            let (segs, next) = path_run(&toks, i + 1);
                            self.push(line, segs, RefKind::Code);
                            i = next;
                        }
                        _ => i += 1,
                    }
                }
                TokenTree::Punct(p) if p.as_char() == ':' => {
                    // A leading `::` (an extern crate path): skip the whole run.
                    let (_, next) = path_run(&toks, i);
                    i = next.max(i + 1);
                }
                TokenTree::Ident(id) => {
                    let line = id.span().start().line;
                    let (segs, next) = path_run(&toks, i);
                    let first = segs.first().map(String::as_str);
                    if segs.len() >= 2 || matches!(first, Some("crate" | "super" | "self")) {
                        self.push(line, segs, RefKind::Code);
                    }
                    i = next;
                }
                TokenTree::Punct(_) => i += 1,
            }
        }
    }
}

/// The run `id :: id :: ..` starting at `toks[start]`: its identifiers and the index after it.
fn path_run(toks: &[TokenTree], start: usize) -> (Vec<String>, usize) {
    let mut segs = vec![];
    let mut i = start;
    if let Some(TokenTree::Ident(id)) = toks.get(i) {
        segs.push(ident(id));
        i += 1;
    }
    loop {
        let colons = matches!(
            (toks.get(i), toks.get(i + 1)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
        );
        if !colons {
            break;
        }
        match toks.get(i + 2) {
            Some(TokenTree::Ident(id)) => {
                segs.push(ident(id));
                i += 3;
            }
            _ => {
                i += 2;
                break;
            }
        }
    }
    (segs, i)
}

fn item_name(item: &syn::Item) -> Option<String> {
    Some(match item {
        syn::Item::Const(i) => ident(&i.ident),
        syn::Item::Enum(i) => ident(&i.ident),
        syn::Item::Fn(i) => ident(&i.sig.ident),
        syn::Item::Macro(i) => ident(i.ident.as_ref()?),
        syn::Item::Mod(i) => ident(&i.ident),
        syn::Item::Static(i) => ident(&i.ident),
        syn::Item::Struct(i) => ident(&i.ident),
        syn::Item::Trait(i) => ident(&i.ident),
        syn::Item::TraitAlias(i) => ident(&i.ident),
        syn::Item::Type(i) => ident(&i.ident),
        syn::Item::Union(i) => ident(&i.ident),
        _ => return None,
    })
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if let Some(name) = item_name(item) {
            self.info().items.insert(name);
        }
        visit::visit_item(self, item);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let public = !matches!(u.vis, syn::Visibility::Inherited);
        let mut prefix = vec![];
        if u.leading_colon.is_some() {
            return; // `use ::extern_crate::..`
        }
        self.use_tree(&u.tree, &mut prefix, public);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        for a in &m.attrs {
            self.visit_attribute(a);
        }
        let Some((_, items)) = &m.content else {
            return; // `mod x;`: the file of its own
        };
        let name = ident(&m.ident);
        self.info().children.insert(name.clone());
        let inner = join(&self.module, &name);
        let outer = std::mem::replace(&mut self.module, inner);
        self.info();
        for item in items {
            self.visit_item(item);
        }
        self.module = outer;
    }

    fn visit_item_macro(&mut self, m: &'ast syn::ItemMacro) {
        if let Some(name) = &m.ident
            && m.attrs.iter().any(|a| a.path().is_ident("macro_export"))
        {
            self.exported.insert(ident(name), self.module.clone());
        }
        visit::visit_item_macro(self, m);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        visit::visit_macro(self, m);
        self.tokens(m.tokens.clone(), false);
    }

    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        if a.path().is_ident("doc") {
            return;
        }
        match &a.meta {
            syn::Meta::List(l) => self.tokens(l.tokens.clone(), true),
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }),
                ..
            }) => self.string_path(s),
            _ => {}
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none() {
            let segs: Vec<String> = p.segments.iter().map(|s| ident(&s.ident)).collect();
            let first = segs.first().map(String::as_str);
            // A single identifier is a local name or one a `use` brought in (checked there).
            if segs.len() >= 2 || matches!(first, Some("crate" | "super" | "self")) {
                self.push(p.span().start().line, segs, RefKind::Code);
            }
        }
        visit::visit_path(self, p);
    }
}

// ---------------------------------------------------------------------------------------------
// Resolving
// ---------------------------------------------------------------------------------------------

struct Crate {
    files: Vec<String>,
    /// The module of each file.
    file_modules: Vec<String>,
    mods: BTreeMap<String, ModInfo>,
    exported: BTreeMap<String, String>,
}

impl Crate {
    /// The absolute path (from the crate root) that `segs`, written in `module`, stands for;
    /// `None` for a path outside the crate (std, an extern crate) or a local name that is not a
    /// module path (`Self::X`, an enum's variant).
    fn absolute(&self, module: &str, segs: &[String], depth: u32) -> Option<Vec<String>> {
        if depth > 16 || segs.is_empty() {
            return None;
        }
        let base: Vec<String> = if module.is_empty() {
            vec![]
        } else {
            module.split("::").map(str::to_string).collect()
        };
        match segs[0].as_str() {
            "crate" | "$crate" => return Some(segs[1..].to_vec()),
            "self" | "super" => {
                let mut out = base;
                let mut i = 0;
                if segs[0] == "self" {
                    i = 1;
                }
                while segs.get(i).is_some_and(|s| s == "super") {
                    out.pop()?;
                    i += 1;
                }
                out.extend_from_slice(&segs[i..]);
                return Some(out);
            }
            _ => {}
        }
        let info = self.mods.get(module)?;
        let first = &segs[0];
        if info.children.contains(first) || info.items.contains(first) {
            let mut out = base;
            out.extend_from_slice(segs);
            return Some(out);
        }
        if let Some(target) = info.aliases.get(first) {
            let mut abs = self.absolute(module, target, depth + 1)?;
            abs.extend_from_slice(&segs[1..]);
            return Some(abs);
        }
        for g in &info.globs {
            let Some(src) = self.absolute(module, g, depth + 1) else {
                continue;
            };
            let src_mod = src.join("::");
            if let Some(s) = self.mods.get(&src_mod)
                && (s.children.contains(first)
                    || s.items.contains(first)
                    || s.aliases.contains_key(first))
            {
                let mut abs = src;
                abs.extend_from_slice(segs);
                return Some(abs);
            }
        }
        None
    }

    /// The module that defines what the absolute path `abs` names (following `use` and
    /// `pub use` to where the item is defined), or the module the path names.
    fn locate(&self, abs: &[String], depth: u32) -> Option<String> {
        if depth > 16 {
            return None;
        }
        let mut m = String::new();
        for (i, s) in abs.iter().enumerate() {
            let info = self.mods.get(&m)?;
            if info.children.contains(s) {
                m = join(&m, s);
                continue;
            }
            if m.is_empty()
                && let Some(def) = self.exported.get(s)
            {
                return Some(def.clone());
            }
            if info.items.contains(s) {
                return Some(m);
            }
            if let Some(target) = info.aliases.get(s) {
                let mut next = self.absolute(&m, target, depth + 1)?;
                next.extend_from_slice(&abs[i + 1..]);
                return self.locate(&next, depth + 1).or(Some(m));
            }
            for g in &info.globs {
                let Some(mut next) = self.absolute(&m, g, depth + 1) else {
                    continue;
                };
                if let Some(src) = self.mods.get(&next.join("::"))
                    && (src.children.contains(s)
                        || src.items.contains(s)
                        || src.aliases.contains_key(s))
                {
                    next.extend_from_slice(&abs[i..]);
                    return self.locate(&next, depth + 1);
                }
            }
            return Some(m);
        }
        Some(m)
    }

    fn file_of(&self, module: &str) -> usize {
        self.mods[module].file
    }
}

// ---------------------------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------------------------

/// Every broken rule in the source tree `src` (a directory laid out like the crate's `src/`:
/// `lib.rs`, `main.rs`, one folder or file per room).
fn check(src: &Path) -> Vec<Violation> {
    let mut paths = vec![];
    rust_files(src, &mut paths);
    paths.sort();
    let mut out = vec![];
    let mut krate = Crate {
        files: vec![],
        file_modules: vec![],
        mods: BTreeMap::new(),
        exported: BTreeMap::new(),
    };
    let mut refs = vec![];
    let mut main_rs = None;
    for path in &paths {
        let rel = path.strip_prefix(src).unwrap();
        let rel_s = rel.to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(path).unwrap();
        let ast = match syn::parse_file(&text) {
            Ok(ast) => ast,
            Err(e) => {
                out.push(Violation {
                    file: rel_s,
                    line: e.span().start().line,
                    rule: Rule::Unparsable,
                    message: format!("cannot parse: {e}"),
                });
                continue;
            }
        };
        if rel_s == "main.rs" {
            main_rs = Some(ast);
            continue;
        }
        let module = module_of(rel);
        let file = krate.files.len();
        krate.files.push(rel_s.clone());
        krate.file_modules.push(module.clone());
        if !module.is_empty() && layer(room_of(&module)).is_none() {
            out.push(Violation {
                file: rel_s.clone(),
                line: 1,
                rule: Rule::NoLayer,
                message: format!(
                    "room `{}` has no layer in tests/layering.rs (and src/lib.rs's picture); place it",
                    room_of(&module)
                ),
            });
        }
        let mut c = Collector {
            module,
            refs: &mut refs,
            mods: &mut krate.mods,
            file,
            exported: &mut krate.exported,
        };
        c.info();
        c.visit_file(&ast);
    }
    // The file modules are their parents' children.
    let names: Vec<String> = krate.mods.keys().cloned().collect();
    for m in &names {
        if let Some(p) = parent(m) {
            let last = m.rsplit("::").next().unwrap().to_string();
            if let Some(info) = krate.mods.get_mut(p) {
                info.children.insert(last);
            }
        }
    }
    if let Some(ast) = main_rs {
        check_main(&ast, &mut out);
    }

    // Each reference: the rules between rooms, and an arrow between files.
    let mut arrows: BTreeMap<(usize, usize), (usize, String)> = BTreeMap::new();
    for r in &refs {
        let Some(abs) = krate.absolute(&r.module, &r.segments, 0) else {
            continue;
        };
        let from_file = krate.file_of(&r.module);
        let from_rel = &krate.files[from_file];
        let Some(target) = krate.locate(&abs, 0) else {
            continue;
        };
        // The room the path names: its first segment, or for a crate-root item (an exported
        // macro) the room that defines it.
        let named_room = match abs.first() {
            Some(s) if krate.mods[""].children.contains(s) => s.as_str(),
            _ => room_of(&target),
        };
        let written = r.segments.join("::");
        // A path through a name a `use` brought in was checked on that `use`.
        let first = r.segments[0].as_str();
        let info = &krate.mods[&r.module];
        let through_use = r.kind == RefKind::Code
            && !matches!(first, "crate" | "$crate" | "self" | "super")
            && !info.children.contains(first)
            && !info.items.contains(first);
        if through_use {
        } else if let Some(v) = room_rule(&r.module, named_room, &abs.join("::")) {
            let (rule, why) = v;
            out.push(Violation {
                file: from_rel.clone(),
                line: r.line,
                rule,
                message: format!(
                    "`{}` names `{written}`{}: {why}",
                    if r.module.is_empty() {
                        "crate"
                    } else {
                        &r.module
                    },
                    if written == format!("crate::{}", abs.join("::")) {
                        String::new()
                    } else {
                        format!(" (crate::{})", abs.join("::"))
                    }
                ),
            });
        }
        let to_file = krate.file_of(&target);
        if to_file == from_file {
            continue;
        }
        // A module declares its sub-modules: its arrows to them (its `pub use` face, the enum
        // that wraps their errors) are containment, not imports.
        let from_mod = &krate.file_modules[from_file];
        if from_mod.is_empty() || target.starts_with(&format!("{from_mod}::")) {
            continue;
        }
        arrows
            .entry((from_file, to_file))
            .or_insert((r.line, written));
    }
    out.extend(cycles(&krate.files, &arrows));
    out.sort();
    out.dedup();
    out
}

/// The rule (if any) that `module` breaks by naming `room` (the path written is `shown`).
fn room_rule(module: &str, room: &str, shown: &str) -> Option<(Rule, String)> {
    let from = room_of(module);
    if module.is_empty() || room.is_empty() || room == from {
        return None;
    }
    if room == "cli" {
        return Some((
            Rule::NamesCli,
            "nothing outside `cli` names `cli`".to_string(),
        ));
    }
    if (from == "cli" || from == "serve") && CLI_NEVER.contains(&room) {
        return Some((
            Rule::CliDirect,
            format!("`cli` never imports `{room}` directly; go through `workspace` or `pipeline`"),
        ));
    }
    if SIBLINGS
        .iter()
        .any(|&(a, b)| (a, b) == (from, room) || (b, a) == (from, room))
    {
        return Some((
            Rule::Siblings,
            format!("`{from}` and `{room}` are siblings that never import each other"),
        ));
    }
    let (Some(lf), Some(lt)) = (layer(from), layer(room)) else {
        return None; // a room without a layer is reported once, on its files
    };
    if lt >= lf {
        return Some((
            Rule::Upward,
            format!(
                "`{from}` (layer {lf}) must not import `{room}` (layer {lt}): arrows point down"
            ),
        ));
    }
    for (prefix, forbidden) in FORBIDDEN {
        if (module == *prefix || module.starts_with(&format!("{prefix}::"))) && room == *forbidden {
            return Some((
                Rule::Forbidden,
                format!("`{prefix}` must not know `{forbidden}` ({shown})"),
            ));
        }
    }
    None
}

/// `main.rs` only calls `cli::main`: no modules of its own, no other path into the library.
fn check_main(ast: &syn::File, out: &mut Vec<Violation>) {
    struct Main<'a>(&'a mut Vec<Violation>);
    impl Main<'_> {
        fn bad(&mut self, line: usize, what: String) {
            self.0.push(Violation {
                file: "main.rs".into(),
                line,
                rule: Rule::Main,
                message: format!("main.rs only calls `contimg::cli::main`; found {what}"),
            });
        }
    }
    impl<'ast> Visit<'ast> for Main<'_> {
        fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
            self.bad(m.ident.span().start().line, format!("`mod {}`", m.ident));
        }
        fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
            self.bad(u.span().start().line, "a `use`".into());
        }
        fn visit_path(&mut self, p: &'ast syn::Path) {
            let segs: Vec<String> = p.segments.iter().map(|s| ident(&s.ident)).collect();
            if segs.first().is_some_and(|s| s == "contimg" || s == "crate")
                && segs != ["contimg", "cli", "main"]
            {
                self.bad(p.span().start().line, format!("`{}`", segs.join("::")));
            }
            visit::visit_path(self, p);
        }
        fn visit_macro(&mut self, m: &'ast syn::Macro) {
            let text = m.tokens.to_string();
            if text.contains("contimg") {
                self.bad(
                    m.span().start().line,
                    format!(
                        "`{}!` naming contimg",
                        m.path.segments.last().unwrap().ident
                    ),
                );
            }
            visit::visit_macro(self, m);
        }
    }
    let mut v = Main(out);
    v.visit_file(ast);
}

/// A violation for each strongly connected component of more than one file, naming a shortest
/// circle in it with the line of each arrow.
fn cycles(files: &[String], arrows: &BTreeMap<(usize, usize), (usize, String)>) -> Vec<Violation> {
    let n = files.len();
    let mut next: Vec<Vec<usize>> = vec![vec![]; n];
    for &(a, b) in arrows.keys() {
        next[a].push(b);
    }
    // Tarjan's strongly connected components (iterative).
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = vec![];
    let mut counter = 0;
    let mut components = vec![];
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut i)) = work.last_mut() {
            if *i == 0 && index[v] == usize::MAX {
                index[v] = counter;
                low[v] = counter;
                counter += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = next[v].get(*i) {
                *i += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(u, _)) = work.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = vec![];
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    components.push(comp);
                }
            }
        }
    }
    let mut out = vec![];
    for comp in components {
        let inside: BTreeSet<usize> = comp.iter().copied().collect();
        let start = comp[0];
        // Breadth-first from `start` back to it, inside the component.
        let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        'bfs: while let Some(v) = queue.pop_front() {
            for &w in &next[v] {
                if w == start {
                    closing = Some(v);
                    break 'bfs;
                }
                if inside.contains(&w) && !prev.contains_key(&w) {
                    prev.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        let mut circle = vec![start];
        let mut v = closing.expect("a component of more than one file has a circle");
        while v != start {
            circle.push(v);
            v = prev[&v];
        }
        circle[1..].reverse();
        let steps: Vec<String> = circle
            .iter()
            .enumerate()
            .map(|(k, &a)| {
                let b = circle[(k + 1) % circle.len()];
                let (line, path) = &arrows[&(a, b)];
                format!("src/{}:{line} (`{path}`) -> src/{}", files[a], files[b])
            })
            .collect();
        let members: Vec<&str> = comp.iter().map(|&f| files[f].as_str()).collect();
        out.push(Violation {
            file: files[start].clone(),
            line: arrows[&(start, circle[1 % circle.len()])].0,
            rule: Rule::Cycle,
            message: format!(
                "files import each other around a circle: {}{}",
                steps.join(", "),
                if members.len() > circle.len() {
                    format!(" (the circle's component: {})", members.join(", "))
                } else {
                    String::new()
                }
            ),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn src_keeps_the_import_rules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let broken = check(&src);
    assert!(
        broken.is_empty(),
        "{} import rule(s) broken:\n{}",
        broken.len(),
        broken
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The checker sees the real tree: the arrows it must find in `src/` are there.
#[test]
fn the_checker_reads_src() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // A tree with one forbidden arrow added to a copy of a real file is caught: the scan reads
    // the real files, not an empty list.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&src, dir.path());
    let wcs = dir.path().join("wcs/mod.rs");
    let mut text = std::fs::read_to_string(&wcs).unwrap();
    text.push_str("\npub fn up() -> usize { crate::mosaic::tiers::TIERS.len() }\n");
    std::fs::write(&wcs, text).unwrap();
    let found = check(dir.path());
    assert!(
        found
            .iter()
            .any(|v| v.file == "wcs/mod.rs" && v.rule == Rule::Upward),
        "{found:#?}"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// A small tree that keeps every rule (with the shapes the checker must not mistake for a
/// violation), plus `extra` files; returns the checker's findings.
fn tree(extra: &[(&str, &str)]) -> Vec<Violation> {
    let base: &[(&str, &str)] = &[
        (
            "lib.rs",
            "pub mod cli;\npub mod mosaic;\npub mod pipeline;\npub mod queue;\npub mod store;\npub mod time;\npub mod workspace;\n",
        ),
        (
            "main.rs",
            "fn main() {\n    std::process::exit(contimg::cli::main());\n}\n",
        ),
        ("time.rs", "pub fn now() -> u64 { 0 }\n"),
        (
            "store/mod.rs",
            "mod sql;\npub use sql::{Db, lock_key};\npub struct StoreError;\n",
        ),
        (
            "store/sql.rs",
            "use super::StoreError;\npub struct Db;\npub fn lock_key() -> i64 { crate::time::now() as i64 }\npub fn open() -> Result<Db, StoreError> { Ok(Db) }\n",
        ),
        (
            "queue/mod.rs",
            "pub struct Queue;\nimpl Queue {\n    pub fn open() -> Self { Queue }\n}\n#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n    fn opens() { let _ = Queue::open(); }\n}\n",
        ),
        (
            "pipeline/mod.rs",
            "pub mod absurd;\npub use crate::queue::Queue;\npub fn run() -> u64 { crate::time::now() }\n",
        ),
        (
            "pipeline/absurd.rs",
            "use crate::{\n    queue::Queue,\n    store::{self, Db as D},\n};\npub fn go(_: D) -> Queue { let _ = store::lock_key(); Queue::open() }\n",
        ),
        ("mosaic/mod.rs", "pub mod engine;\npub mod build;\n"),
        (
            "mosaic/build.rs",
            "pub fn build() -> crate::store::Db { super::engine::grid() ; crate::store::Db }\n",
        ),
        ("mosaic/engine.rs", "pub fn grid() {}\n"),
        (
            "workspace/mod.rs",
            "pub fn open() -> crate::queue::Queue { crate::pipeline::Queue::open() }\n",
        ),
        (
            "cli/mod.rs",
            "pub mod run;\npub fn main() -> i32 { run::run(); 0 }\n",
        ),
        (
            "cli/run.rs",
            "use crate::pipeline::{self, absurd};\npub fn run() { let _ = crate::workspace::open(); pipeline::run(); let _ = format!(\"{:?}\", crate::mosaic::build::build as fn() -> _); let _ = absurd::go; }\n",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut files: BTreeMap<&str, &str> = base.iter().copied().collect();
    files.extend(extra.iter().copied());
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    check(dir.path())
}

/// The tree with `extra` breaks exactly one rule, at `file:line`.
fn breaks(extra: &[(&str, &str)], rule: Rule, file: &str, line: usize) -> Violation {
    let found = tree(extra);
    assert_eq!(
        found.len(),
        1,
        "expected one {rule:?} at {file}:{line}, found {found:#?}"
    );
    let v = found.into_iter().next().unwrap();
    assert_eq!(
        (v.rule, v.file.as_str(), v.line),
        (rule, file, line),
        "wrong violation: {v}"
    );
    v
}

#[test]
fn the_clean_tree_passes() {
    let found = tree(&[]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn a_multi_line_grouped_upward_import_is_caught() {
    let v = breaks(
        &[(
            "queue/ops.rs",
            "use crate::{\n    time::now,\n    pipeline::{\n        run as go,\n    },\n};\npub fn f() -> u64 { now() + go() }\n",
        )],
        Rule::Upward,
        "queue/ops.rs",
        4,
    );
    assert!(v.message.contains("crate::pipeline::run"), "{v}");
}

#[test]
fn a_super_path_into_a_sibling_room_is_caught() {
    // From `pipeline::jobs`, `super::super` is the crate root: this names `mosaic`.
    let v = breaks(
        &[(
            "pipeline/jobs.rs",
            "pub fn job() {\n    let _ = 1;\n    super::super::mosaic::build::build();\n}\n",
        )],
        Rule::Siblings,
        "pipeline/jobs.rs",
        3,
    );
    assert!(v.message.contains("crate::mosaic::build::build"), "{v}");
    // ..and `queue` -> `store` through `super`, in a macro's tokens.
    breaks(
        &[(
            "queue/ops.rs",
            "pub fn f() -> String {\n    format!(\"{}\", super::super::store::lock_key())\n}\n",
        )],
        Rule::Siblings,
        "queue/ops.rs",
        2,
    );
}

#[test]
fn cli_naming_the_queue_or_the_store_is_caught() {
    breaks(
        &[(
            "cli/worker.rs",
            "// use crate::queue::Queue; (a comment is not an import)\nuse crate::queue::Queue;\npub fn w() -> Queue { Queue::open() }\n",
        )],
        Rule::CliDirect,
        "cli/worker.rs",
        2,
    );
    breaks(
        &[(
            "cli/images.rs",
            "pub fn i() {\n    let _ = \"crate::store::Db\";\n    let _db: crate::store::Db = crate::pipeline::absurd::go(crate::store::Db.into());\n}\n",
        )],
        Rule::CliDirect,
        "cli/images.rs",
        3,
    );
}

#[test]
fn renamed_and_glob_imports_are_caught() {
    breaks(
        &[(
            "cli/retry.rs",
            "use crate::{pipeline, queue as q};\npub fn r() -> q::Queue { pipeline::run(); q::Queue::open() }\n",
        )],
        Rule::CliDirect,
        "cli/retry.rs",
        1,
    );
    breaks(
        &[(
            "cli/status.rs",
            "pub fn s() {}\nmod inner {\n    use crate::store::*;\n    pub fn t() -> Db { Db }\n}\n",
        )],
        Rule::CliDirect,
        "cli/status.rs",
        3,
    );
    // `$crate` in a macro body.
    breaks(
        &[(
            "fits/mod.rs",
            "#[macro_export]\nmacro_rules! up {\n    () => {\n        $crate::mosaic::build::build()\n    };\n}\n",
        )],
        Rule::Upward,
        "fits/mod.rs",
        4,
    );
    // A `self::` path through an inline module.
    breaks(
        &[(
            "mosaic/engine.rs",
            "pub fn grid() {}\nmod db {\n    pub use crate::queue as q;\n}\npub fn f() { let _ = self::db::q::Queue::open(); }\n",
        )],
        Rule::Forbidden,
        "mosaic/engine.rs",
        3,
    );
}

#[test]
fn naming_cli_from_below_and_a_busy_main_are_caught() {
    breaks(
        &[(
            "workspace/mod.rs",
            "pub fn open() -> crate::queue::Queue {\n    crate::cli::main();\n    crate::pipeline::Queue::open()\n}\n",
        )],
        Rule::NamesCli,
        "workspace/mod.rs",
        2,
    );
    breaks(
        &[(
            "main.rs",
            "fn main() {\n    contimg::pipeline::run();\n    std::process::exit(contimg::cli::main());\n}\n",
        )],
        Rule::Main,
        "main.rs",
        2,
    );
}

#[test]
fn the_pixel_engine_touching_the_store_is_caught() {
    breaks(
        &[(
            "mosaic/engine.rs",
            "pub fn grid() {\n    let _ = crate::store::lock_key();\n}\n",
        )],
        Rule::Forbidden,
        "mosaic/engine.rs",
        2,
    );
}

#[test]
fn a_two_file_circle_is_caught() {
    let v = breaks(
        &[
            (
                "store/mod.rs",
                "mod pgschema;\nmod sql;\npub use sql::{Db, lock_key};\npub struct StoreError;\n",
            ),
            (
                "store/sql.rs",
                "use super::StoreError;\npub struct Db;\npub fn lock_key() -> i64 { crate::time::now() as i64 }\npub fn open() -> Result<Db, StoreError> {\n    super::pgschema::migrate();\n    Ok(Db)\n}\n",
            ),
            (
                "store/pgschema.rs",
                "use super::sql::lock_key;\npub fn migrate() -> i64 { lock_key() }\n",
            ),
        ],
        Rule::Cycle,
        "store/pgschema.rs",
        1,
    );
    assert!(
        v.message
            .contains("src/store/pgschema.rs:1 (`super::sql::lock_key`) -> src/store/sql.rs")
            && v.message.contains(
                "src/store/sql.rs:5 (`super::pgschema::migrate`) -> src/store/pgschema.rs"
            ),
        "{v}"
    );
}

#[test]
fn a_three_file_circle_is_caught() {
    let v = breaks(
        &[
            (
                "pipeline/mod.rs",
                "pub mod a;\npub mod absurd;\npub mod b;\npub mod c;\npub use crate::queue::Queue;\npub fn run() -> u64 { crate::time::now() }\n",
            ),
            ("pipeline/a.rs", "use super::b::B;\npub struct A(pub B);\n"),
            (
                "pipeline/b.rs",
                "pub struct B(pub Option<Box<super::c::C>>);\n",
            ),
            (
                "pipeline/c.rs",
                "pub struct C;\npub fn make() -> Vec<C> {\n    vec![C; crate::pipeline::a::A::size()]\n}\n",
            ),
        ],
        Rule::Cycle,
        "pipeline/a.rs",
        1,
    );
    assert!(
        v.message
            .contains("src/pipeline/a.rs:1 (`super::b::B`) -> src/pipeline/b.rs")
            && v.message
                .contains("src/pipeline/b.rs:1 (`super::c::C`) -> src/pipeline/c.rs")
            && v.message.contains(
                "src/pipeline/c.rs:3 (`crate::pipeline::a::A::size`) -> src/pipeline/a.rs"
            ),
        "{v}"
    );
}

#[test]
fn a_re_export_is_followed_to_the_file_that_defines_it() {
    // `crate::store::lock_key` is defined in store/sql.rs: naming it from store/pgschema.rs
    // while store/sql.rs names store/pgschema.rs is a circle, though the path names store/mod.rs.
    breaks(
        &[
            (
                "store/mod.rs",
                "mod pgschema;\nmod sql;\npub use sql::{Db, lock_key};\npub struct StoreError;\n",
            ),
            (
                "store/sql.rs",
                "pub struct Db;\npub fn lock_key() -> i64 { super::pgschema::VERSION }\n",
            ),
            (
                "store/pgschema.rs",
                "pub const VERSION: i64 = 1;\npub fn migrate() -> i64 {\n    crate::store::lock_key()\n}\n",
            ),
        ],
        Rule::Cycle,
        "store/pgschema.rs",
        3,
    );
}
