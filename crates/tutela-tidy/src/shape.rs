//! The shape of a crate's code, read from its source text: which of its modules use which
//! (`crate::`, `super::` and `self::` paths, grouped `use` lists included), cycles among
//! them, and how long each function is. Comments, strings and character literals are masked
//! first, so a path or a brace inside them counts for nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Violation, violation};

/// `text` with comments, string literals (raw ones included) and character literals replaced
/// by spaces; line breaks are kept, so lines and columns stay where they were.
pub fn mask(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in out.iter_mut().take(to.min(b.len())).skip(from) {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let end = block_comment_end(b, i);
            blank(&mut out, i, end);
            i = end;
        } else if let Some(end) = raw_string_end(b, i) {
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'"' {
            let end = string_end(b, i + 1);
            blank(&mut out, i, end);
            i = end;
        } else if b[i] == b'\'' {
            match char_literal_end(b, i) {
                Some(end) => {
                    blank(&mut out, i, end);
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether position `i` (a one-letter prefix) is itself preceded by an identifier byte.
fn ident_at(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn block_comment_end(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < b.len() {
        if b[i] == b'/' && b[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// The end of a raw string (`r"…"`, `r#"…"#`, `br#"…"#`) starting at `i`, if one does.
fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
    if ident_at(b, i) {
        return None;
    }
    let mut j = i;
    if b.get(j) == Some(&b'b') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    j += hashes;
    if b.get(j) != Some(&b'"') {
        return None;
    }
    j += 1;
    while j < b.len() {
        if b[j] == b'"'
            && b[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == b'#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(b.len())
}

/// The end of a string whose text starts at `i` (after the opening quote).
fn string_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The end of a character literal at `i` (`'a'`, `'\n'`, `'\u{..}'`, `'好'`), or `None` for
/// a lifetime or a label.
fn char_literal_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i + 1) == Some(&b'\\') {
        // The escaped character, then up to the closing quote (`'\''`, `'\u{1F600}'`).
        let close = b.get(i + 3..)?.iter().position(|&c| c == b'\'')?;
        return Some(i + 3 + close + 1);
    }
    // One character of up to four bytes, then the closing quote.
    let first = *b.get(i + 1)?;
    let width = match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    };
    (b.get(i + 1 + width) == Some(&b'\'')).then_some(i + 2 + width)
}

/// The module path of a source file of a crate, from its path under `src/`: `lib.rs` and
/// `main.rs` are the root (`""`), `a.rs` and `a/mod.rs` are `a`, `a/b.rs` is `a::b`.
pub fn module_of(rel_to_src: &str) -> String {
    let p = rel_to_src.trim_end_matches(".rs");
    let p = p.strip_suffix("/mod").unwrap_or(p);
    if p == "lib" || p == "main" {
        return String::new();
    }
    p.replace('/', "::")
}

/// The paths a module's code names through `crate::`, `super::` or `self::` (grouped `use`
/// lists expanded), made absolute from the crate root, each with its 1-based line. `module`
/// is the file's own module path; test modules should be blanked first.
pub fn crate_paths(module: &str, text: &str) -> Vec<(String, usize)> {
    let masked = mask(text);
    let b = masked.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts_word = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let base = if !starts_word || (i > 1 && &b[i - 2..i] == b"::") {
            None
        } else if b[i..].starts_with(b"crate::") {
            Some((String::new(), 7))
        } else if b[i..].starts_with(b"super::") {
            Some((parent(module), 7))
        } else if b[i..].starts_with(b"self::") {
            Some((module.to_owned(), 6))
        } else {
            None
        };
        let Some((base, skip)) = base else {
            i += 1;
            continue;
        };
        let line = 1 + b[..i].iter().filter(|&&c| c == b'\n').count();
        let (paths, end) = read_tree(b, i + skip, &base);
        out.extend(paths.into_iter().map(|p| (p, line)));
        i = end.max(i + skip);
    }
    out
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_owned())
}

fn join(base: &str, seg: &str) -> String {
    if base.is_empty() {
        seg.to_owned()
    } else {
        format!("{base}::{seg}")
    }
}

/// Reads a path (or a `{…}` group of paths) at `i`, below `base`; returns the absolute paths
/// and where it ended. `super` inside a path climbs; `self` in a group names the prefix.
fn read_tree(b: &[u8], mut i: usize, base: &str) -> (Vec<String>, usize) {
    let mut path = base.to_owned();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&b'{') {
            let mut out = Vec::new();
            i += 1;
            loop {
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return (out, i + 1);
                }
                let before = i;
                let (paths, end) = read_tree(b, i, &path);
                out.extend(paths);
                i = end.max(before + 1);
                // Skip an `as name` rename up to the next item.
                while i < b.len() && b[i] != b',' && b[i] != b'}' {
                    i += 1;
                }
            }
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let seg = std::str::from_utf8(&b[start..i]).unwrap_or("");
        match seg {
            "" => return (vec![path], i),
            "self" => {}
            "super" => path = parent(&path),
            _ => path = join(&path, seg),
        }
        if b[i..].starts_with(b"::") {
            i += 2;
        } else {
            return (vec![path], i);
        }
    }
}

/// The module a path belongs to: its longest prefix that is one of `modules`, or `None` for
/// the root (re-exports and items of `lib.rs`).
pub fn owning_module<'a>(path: &str, modules: &'a BTreeSet<String>) -> Option<&'a String> {
    let mut p = path;
    loop {
        if let Some(m) = modules.get(p) {
            return Some(m);
        }
        p = p.rsplit_once("::")?.0;
    }
}

/// A module graph: module → (module it uses → the first line that uses it).
pub type Graph = BTreeMap<String, BTreeMap<String, usize>>;

/// The module graph of a crate's sources (`files`: path under `src/` → text). The root is
/// not a node: it declares every module, and what it re-exports belongs to other crates.
/// Test modules are left out (they may use anything of their parent).
pub fn module_graph(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<String> = files
        .iter()
        .map(|(p, _)| module_of(p))
        .filter(|m| !m.is_empty())
        .collect();
    let mut graph = Graph::new();
    for (path, text) in files {
        let me = module_of(path);
        if me.is_empty() {
            continue;
        }
        let edges = graph.entry(me.clone()).or_default();
        for (p, line) in crate_paths(&me, &crate::without_test_modules(text)) {
            if let Some(to) = owning_module(&p, &modules)
                && *to != me
            {
                edges.entry(to.clone()).or_insert(line);
            }
        }
    }
    graph
}

/// Every cycle of modules (each strongly connected group of two or more), as a violation on
/// the first module of the group naming the group and one use that closes it. `src` is the
/// crate's `src/` directory relative to the repository, to name files.
pub fn module_cycles(src: &str, graph: &Graph) -> Vec<Violation> {
    let mut out = Vec::new();
    for group in strongly_connected(graph) {
        if group.len() < 2 {
            continue;
        }
        let uses: Vec<String> = group
            .iter()
            .flat_map(|m| {
                graph[m]
                    .iter()
                    .filter(|(to, _)| group.contains(*to))
                    .map(move |(to, line)| format!("{m} → {to} (line {line})"))
            })
            .collect();
        let first = &group[0];
        out.push(violation(
            &format!("{src}{}.rs", first.replace("::", "/")),
            0,
            format!(
                "modules that use one another: {} ({})",
                group.join(", "),
                uses.join("; ")
            ),
        ));
    }
    out
}

/// Tarjan's strongly connected components, each sorted, in a stable order.
fn strongly_connected(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        groups: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(BTreeMap::keys) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low[v];
                    self.low.insert(v, lv.min(lw));
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low[v];
                    self.low.insert(v, lv.min(iw));
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    group.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                group.sort();
                self.groups.push(group);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.groups.sort();
    walk.groups
}

/// A function item: its name, the line of `fn`, and how many lines it spans from the `fn`
/// line to its closing brace (signature, body and brace; attributes and doc comments not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnSpan {
    /// The function's name.
    pub name: String,
    /// 1-based line of the `fn` keyword.
    pub line: usize,
    /// Lines from the `fn` line to the closing brace, inclusive.
    pub lines: usize,
}

/// Every function with a body in `text` (methods, nested functions and test functions
/// included; declarations without a body left out).
pub fn functions(text: &str) -> Vec<FnSpan> {
    let masked = mask(text);
    let b = masked.as_bytes();
    let line_of = |i: usize| 1 + b[..i].iter().filter(|&&c| c == b'\n').count();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 < b.len() {
        let word = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if !(word && b[i..].starts_with(b"fn") && b[i + 2].is_ascii_whitespace()) {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let name_start = j;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j == name_start {
            i += 2;
            continue;
        }
        let name = String::from_utf8_lossy(&b[name_start..j]).into_owned();
        if let Some(open) = body_start(b, j)
            && let Some(close) = matching_brace(b, open)
        {
            let (first, last) = (line_of(i), line_of(close));
            out.push(FnSpan {
                name,
                line: first,
                lines: last - first + 1,
            });
        }
        i = j;
    }
    out
}

/// The `{` that opens the body of a function whose signature continues at `i`, or `None` when
/// a `;` outside brackets ends it first (a declaration).
fn body_start(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0i32;
    while i < b.len() {
        match b[i] {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b';' if depth <= 0 => return None,
            b'{' if depth <= 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn matching_brace(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Functions of `text` (test modules left out) longer than `max` lines, unless `allowed`
/// names them (`path`, function name).
pub fn long_functions(
    path: &str,
    text: &str,
    max: usize,
    allowed: &[(&str, &str, &str)],
) -> Vec<Violation> {
    functions(&crate::without_test_modules(text))
        .into_iter()
        .filter(|f| f.lines > max)
        .filter(|f| !allowed.iter().any(|(p, n, _)| *p == path && *n == f.name))
        .map(|f| {
            violation(
                path,
                f.line,
                format!(
                    "fn `{}` is {} lines (at most {max}): split it into named steps",
                    f.name, f.lines
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_strings_and_chars_are_masked() {
        let text = "let a = \"{ crate::x }\"; // crate::y {\nlet c = '{'; let l: &'a str = r#\"}\"#;\n/* { */ let d = b\"}\";";
        let m = mask(text);
        assert_eq!(m.len(), text.len());
        assert!(!m.contains("crate::"), "{m}");
        assert!(!m.contains('{') && !m.contains('}'), "{m}");
        assert!(m.contains("&'a str"), "a lifetime is not a char: {m}");
        assert_eq!(m.lines().count(), 3);
    }

    #[test]
    fn paths_are_read_from_uses_groups_and_code() {
        let text = "use crate::chat::{self, Author, relay::{start, chunk as c}};\n\
                    use super::sibling::Thing;\n\
                    fn f() { crate::error::ApiError::Store(x); self::child::go(); }\n\
                    use tutela_crate::other;\n";
        let paths: Vec<(String, usize)> = crate_paths("turn::phase", text);
        let names: Vec<&str> = paths.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "chat",
                "chat::Author",
                "chat::relay::start",
                "chat::relay::chunk",
                "turn::sibling::Thing",
                "error::ApiError::Store",
                "turn::phase::child::go",
            ]
        );
        assert_eq!(paths[4].1, 2);
        assert_eq!(paths[5].1, 3);
    }

    #[test]
    fn module_paths_follow_the_files() {
        assert_eq!(module_of("lib.rs"), "");
        assert_eq!(module_of("chat.rs"), "chat");
        assert_eq!(module_of("chat/mod.rs"), "chat");
        assert_eq!(module_of("chat/relay.rs"), "chat::relay");
    }

    fn files(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect()
    }

    #[test]
    fn a_cycle_is_caught_and_a_chain_is_not() {
        let chain = files(&[
            ("lib.rs", "pub mod a; pub mod b; use crate::a::x;"),
            ("a.rs", "//! a\nuse crate::b::Y;\nuse crate::Root;"),
            (
                "b.rs",
                "//! b\nfn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::a::x;\n}",
            ),
        ]);
        let g = module_graph(&chain);
        assert_eq!(g["a"].keys().collect::<Vec<_>>(), ["b"]);
        assert!(g["b"].is_empty(), "a test module's use is not an edge");
        assert!(module_cycles("src/", &g).is_empty());

        let cycle = files(&[
            ("a.rs", "use crate::b::Y;"),
            ("b/mod.rs", "use crate::c::Z;"),
            ("c.rs", "fn f() { crate::a::go() }"),
            ("d.rs", "use crate::a;"),
        ]);
        let v = module_cycles("src/", &module_graph(&cycle));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].what.contains("a, b, c"), "{v:?}");
        assert!(v[0].what.contains("c → a (line 1)"), "{v:?}");

        // A child that reaches back into its parent closes a cycle too.
        let up = files(&[
            ("p/mod.rs", "use self::kid::K;"),
            ("p/kid.rs", "use super::Shared;"),
        ]);
        assert_eq!(module_cycles("src/", &module_graph(&up)).len(), 1);
    }

    #[test]
    fn function_lengths_are_counted_from_fn_to_its_brace() {
        let text = "//! x\n\
                    fn short() { let s = \"}\"; }\n\
                    pub async fn long(\n    a: [u8; 4],\n) -> u8 {\n    let c = '}';\n    a[0]\n}\n\
                    trait T { fn decl(&self); fn with_body(&self) {\n    }\n}\n\
                    type F = fn(u8) -> u8;\n";
        let f = functions(text);
        let got: Vec<(&str, usize, usize)> = f
            .iter()
            .map(|f| (f.name.as_str(), f.line, f.lines))
            .collect();
        assert_eq!(got, [("short", 2, 1), ("long", 3, 6), ("with_body", 9, 2)]);
        let v = long_functions("a.rs", text, 5, &[]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].line, 3);
        assert!(long_functions("a.rs", text, 5, &[("a.rs", "long", "why")]).is_empty());
    }
}
