//! Tidy: the repository-wide rules of ARCHITECTURE.md as checks over the source tree, run by
//! this crate's integration test (`cargo test -p tutela-tidy`, part of `cargo test
//! --workspace`). Not part of the product: nothing depends on it.
//!
//! The checks are functions over a file's path and text, so each is unit-tested on small
//! texts that break the rule (a check that never fires would prove nothing). The deliberate
//! exceptions are the constants below, each with its reason, and nowhere else.
//!
//! - every `.rs` file opens with a `//!` doc comment;
//! - SQL only in `tutela-store` (no SQL text, no SQL crate, no `.sql` file elsewhere);
//! - no clock reads outside the seams in [`CLOCK_SEAMS`];
//! - migrations are append-only: existing files unchanged (their SHA-256 in
//!   [`MIGRATIONS`], one list per backend) and new ones sorted after them;
//! - the pure crates ([`PURE_CRATES`]) depend only on [`PURE_DEPENDENCIES`], reach none of
//!   [`FORBIDDEN_IN_PURE`] through any dependency, and use no I/O, environment, threads,
//!   printing or async in their non-test code ([`PURE_FORBIDDEN_CODE`]);
//! - the crates in [`ACYCLIC_CRATES`] have no cycle among their modules, and no function in
//!   them (test modules aside) is longer than [`MAX_FN_LINES`] lines, unless
//!   [`LONG_FN_EXCEPTIONS`] names it with a reason (module [`shape`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub mod shape;

/// The `src/` directories whose modules must not use one another in a cycle and whose
/// functions must stay short (issue #12, "The turn, legible": a newcomer reads the chat turn
/// top to bottom, phase by phase).
pub const ACYCLIC_CRATES: &[&str] = &["crates/tutela-gateway/src/"];

/// The longest a function of [`ACYCLIC_CRATES`] may be, from its `fn` line to its closing
/// brace (under 80 lines: one screen).
pub const MAX_FN_LINES: usize = 79;

/// Functions allowed to be longer than [`MAX_FN_LINES`]: (file, function, reason). None.
pub const LONG_FN_EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// The crates that do no I/O, never read the clock or the environment and run no async
/// runtime (ARCHITECTURE.md, "Code map").
pub const PURE_CRATES: [&str; 4] = [
    "tutela-types",
    "tutela-profile",
    "tutela-detect",
    "tutela-policy",
];

/// The only dependencies a pure crate may declare (normal, build or target-specific), and
/// why each is there.
pub const PURE_DEPENDENCIES: &[(&str, &str)] = &[
    ("tutela-types", "the shared vocabulary (pure itself)"),
    (
        "tutela-profile",
        "validated profiles for the engine (pure itself)",
    ),
    ("serde", "derives for the file formats and serialised names"),
    (
        "serde_json",
        "findings, models and labelled cases as JSON text",
    ),
    (
        "time",
        "calendar arithmetic on timestamps the caller passes in",
    ),
    ("thiserror", "error enums"),
    ("toml", "profile, pattern and rule-pack text"),
    ("toml_edit", "line numbers and key paths in profile errors"),
    ("serde_path_to_error", "key paths in profile errors"),
    ("sha2", "profile snapshot hashes and model checksums"),
    ("aho-corasick", "the detectors' literal automata"),
    ("regex", "operator rule-pack regexes"),
    ("unicode-normalization", "NFKC in the detectors' normaliser"),
];

/// Crates no pure crate may reach through any chain of dependencies: async runtimes,
/// networking, databases, logging (chat text is never logged; the core logs nothing), the
/// operating system's entropy, and clock-reading date libraries.
pub const FORBIDDEN_IN_PURE: &[&str] = &[
    "tokio",
    "mio",
    "async-std",
    "smol",
    "futures-executor",
    "hyper",
    "h2",
    "reqwest",
    "socket2",
    "axum",
    "tower",
    "sqlx",
    "sqlx-core",
    "libsqlite3-sys",
    "rusqlite",
    "log",
    "tracing",
    "tracing-subscriber",
    "getrandom",
    "chrono",
];

/// Code a pure crate's non-test code never contains: file, network, process and environment
/// access, threads, printing, and async.
pub const PURE_FORBIDDEN_CODE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "std::thread",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "println!",
    "eprintln!",
    "print!(",
    "eprint!(",
    "tokio",
    "async fn",
    ".await",
];

/// The files that may read the clock, and why: the seams ARCHITECTURE.md names ("Time"),
/// the edges of the binary, and timers that are deadlines rather than time values. A listed
/// file that no longer reads the clock is an error too, so this list stays true.
pub const CLOCK_SEAMS: &[(&str, &str)] = &[
    (
        "crates/tutela-mock-upstream/src/lib.rs",
        "the test model's pace: its chunks keep to a clock started at the first pause",
    ),
    (
        "crates/tutela-gateway/src/clock.rs",
        "the gateway's `Clock` seam: the wall clock once per request, and the uptime",
    ),
    (
        "crates/tutela-openai/src/sse.rs",
        "stream timeouts (idle and whole-event deadlines); its test runs on tokio's paused clock",
    ),
    (
        "crates/tutela-cli/src/cmd/assess.rs",
        "the CLI is the edge: today's date for the bank freshness lint unless --today is given",
    ),
    (
        "crates/tutela-cli/src/cmd/staff.rs",
        "the CLI is the edge: the time of staff changes made outside the gateway",
    ),
    (
        "crates/tutela-cli/src/cmd/model.rs",
        "the CLI is the edge: `tutela model info` reports how long loading took",
    ),
    (
        "crates/tutela-encoder/examples/reference.rs",
        "an example that prints timings next to the reference implementation's",
    ),
    (
        "crates/tutela-mock-upstream/src/bin/tutela-load.rs",
        "the load generator measures latency: it times each request it sends",
    ),
];

/// The files that may hold SQL outside `tutela-store`, and why.
pub const SQL_OUTSIDE_STORE: &[(&str, &str)] = &[(
    "crates/tutela-tidy/src/lib.rs",
    "names the SQL keywords and crates it looks for",
)];

/// The database crates only `tutela-store` may depend on.
pub const SQL_CRATES: &[&str] = &[
    "sqlx",
    "sqlx-core",
    "sqlx-sqlite",
    "rusqlite",
    "libsqlite3-sys",
];

/// Files exempt from the clock check, and why (they are not code that runs).
pub const CLOCK_CHECK_EXEMPT: &[(&str, &str)] = &[(
    "crates/tutela-tidy/src/lib.rs",
    "names the clock reads it looks for",
)];

/// Each backend's migrations: the checked-in SHA-256 of every shipped migration (`sha256sum`
/// format, relative to the directory), and the directory:
/// `cd crates/tutela-store/migrations/sqlite && sha256sum -c ../sqlite.sha256`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "crates/tutela-store/migrations/sqlite.sha256",
        "crates/tutela-store/migrations/sqlite",
    ),
    (
        "crates/tutela-store/migrations/postgres.sha256",
        "crates/tutela-store/migrations/postgres",
    ),
];

/// The crate allowed to know SQL.
pub const STORE_CRATE: &str = "crates/tutela-store/";

/// Directories never walked: build output, virtual environments, package caches, fuzzing
/// state, and anything hidden.
const SKIP_DIRS: &[&str] = &["target", "node_modules", "corpus", "artifacts"];

/// One broken rule: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// 1-based line, or 0 for the whole file.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.what)
        } else {
            write!(f, "{}:{}: {}", self.path, self.line, self.what)
        }
    }
}

pub(crate) fn violation(path: &str, line: usize, what: impl Into<String>) -> Violation {
    Violation {
        path: path.to_owned(),
        line,
        what: what.into(),
    }
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every file under `root` whose name ends with `suffix`, as `/`-separated paths relative to
/// `root`, sorted; build output, caches and hidden directories are skipped.
pub fn files_with_suffix(root: &Path, suffix: &str) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = rel.join(&name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_str()) {
                    dirs.push(path);
                }
            } else if kind.is_file() && name.ends_with(suffix) {
                out.push(path.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a line is a comment only (its text is prose, not code).
fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with("//")
}

/// A `.rs` file must open with a `//!` line saying what it is for.
pub fn check_doc_comment(path: &str, text: &str) -> Option<Violation> {
    let first = text.lines().next().unwrap_or("");
    (!first.starts_with("//!")).then(|| {
        violation(
            path,
            1,
            "does not open with a `//!` doc comment saying what the file is for",
        )
    })
}

/// SQL statement openers and SQL crates, as they appear in code.
const SQL_MARKERS: &[&str] = &[
    "SELECT ",
    "INSERT INTO",
    "INSERT OR ",
    "DELETE FROM",
    "CREATE TABLE",
    "CREATE INDEX",
    "CREATE UNIQUE INDEX",
    "DROP TABLE",
    "ALTER TABLE",
    "PRAGMA ",
    "BEGIN IMMEDIATE",
    "sqlx",
    "rusqlite",
];

/// Lines of code (not comments) holding SQL: statement keywords, `UPDATE <table> SET`, or a
/// SQL crate.
pub fn sql_lines(path: &str, text: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if is_comment(line) {
            continue;
        }
        let found = SQL_MARKERS
            .iter()
            .find(|m| line.contains(**m))
            .map(|m| m.trim().to_owned())
            .or_else(|| has_update_set(line).then(|| "UPDATE … SET".to_owned()));
        if let Some(m) = found {
            out.push(violation(
                path,
                i + 1,
                format!("SQL (`{m}`) outside tutela-store"),
            ));
        }
    }
    out
}

/// `UPDATE <word> SET` anywhere in the line.
fn has_update_set(line: &str) -> bool {
    let words: Vec<&str> = line
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(3).any(|w| w[0] == "UPDATE" && w[2] == "SET")
}

/// Ways to read the clock.
const CLOCK_READS: &[&str] = &[
    "SystemTime::now",
    "Instant::now",
    "OffsetDateTime::now_utc",
    "OffsetDateTime::now_local",
    "PrimitiveDateTime::now",
    "UtcDateTime::now",
    "Utc::now",
    "Local::now",
];

/// Lines of code (not comments) that read the clock.
pub fn clock_reads(path: &str, text: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if is_comment(line) {
            continue;
        }
        if let Some(m) = CLOCK_READS.iter().find(|m| line.contains(**m)) {
            out.push(violation(
                path,
                i + 1,
                format!(
                    "reads the clock (`{m}`) outside the seams: take the time as a value, or \
                     add the file to tutela_tidy::CLOCK_SEAMS with its reason"
                ),
            ));
        }
    }
    out
}

/// `text` with the bodies of `#[cfg(test)] mod … { … }` blocks blanked (line numbers kept).
/// Relies on rustfmt: the module's closing brace is alone on a line at the attribute's
/// indentation.
pub fn without_test_modules(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut keep = vec![true; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim() == "#[cfg(test)]" {
            let indent = &line[..line.len() - line.trim_start().len()];
            let next = lines.get(i + 1).map_or("", |l| l.trim());
            if (next.starts_with("mod ") || next.starts_with("pub mod ")) && next.ends_with('{') {
                let close = format!("{indent}}}");
                let mut j = i + 1;
                while j < lines.len() && lines[j] != close {
                    j += 1;
                }
                for k in keep.iter_mut().take((j + 1).min(lines.len())).skip(i) {
                    *k = false;
                }
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    lines
        .iter()
        .zip(keep)
        .map(|(l, k)| if k { *l } else { "" })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines of a pure crate's code (test modules and comments left out) that do I/O, read the
/// environment, start threads, print or run async code.
pub fn impure_code(path: &str, text: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, line) in without_test_modules(text).lines().enumerate() {
        if is_comment(line) {
            continue;
        }
        if let Some(m) = PURE_FORBIDDEN_CODE.iter().find(|m| line.contains(**m)) {
            out.push(violation(
                path,
                i + 1,
                format!("`{m}` in a pure crate (no I/O, environment, threads, printing or async)"),
            ));
        }
    }
    out
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a `sha256sum` list: `(file name, hash)` per line, in order.
pub fn parse_sums(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let (hash, name) = l
                .split_once("  ")
                .ok_or_else(|| format!("line {}: expected `<sha256>  <file>`", i + 1))?;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("line {}: `{hash}` is not a SHA-256", i + 1));
            }
            Ok((name.trim().to_owned(), hash.to_ascii_lowercase()))
        })
        .collect()
}

/// Append-only migrations: `shipped` is the checked-in list, `present` every migration file
/// with its hash, sorted by name. Every shipped file is present and unchanged, and the
/// shipped ones come first: a new migration sorts after all of them and is added to the list.
pub fn check_migrations(
    sums_path: &str,
    shipped: &[(String, String)],
    present: &[(String, String)],
) -> Vec<Violation> {
    let mut out = Vec::new();
    let now: BTreeMap<&str, &str> = present
        .iter()
        .map(|(n, h)| (n.as_str(), h.as_str()))
        .collect();
    for (name, hash) in shipped {
        match now.get(name.as_str()) {
            None => out.push(violation(
                sums_path,
                0,
                format!("shipped migration `{name}` is gone (migrations are append-only)"),
            )),
            Some(h) if h != hash => out.push(violation(
                sums_path,
                0,
                format!(
                    "shipped migration `{name}` was edited (sha256 {h}, shipped {hash}): add a new \
                     migration instead"
                ),
            )),
            Some(_) => {}
        }
    }
    let listed: Vec<&str> = shipped.iter().map(|(n, _)| n.as_str()).collect();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    if sorted != listed {
        out.push(violation(
            sums_path,
            0,
            "the list is not in file-name order",
        ));
    }
    let shipped_names: BTreeSet<&str> = listed.iter().copied().collect();
    let last = listed.iter().max().copied().unwrap_or("");
    for (name, hash) in present {
        if shipped_names.contains(name.as_str()) {
            continue;
        }
        if name.as_str() < last {
            out.push(violation(
                sums_path,
                0,
                format!(
                    "migration `{name}` sorts before the shipped `{last}`: a new migration runs \
                     after every shipped one"
                ),
            ));
        } else {
            out.push(violation(
                sums_path,
                0,
                format!("new migration `{name}` is not listed: add `{hash}  {name}`"),
            ));
        }
    }
    out
}

/// The dependency names a crate declares in its `Cargo.toml` (normal, build and
/// target-specific; not dev-dependencies), as cargo calls them (renames resolved).
pub fn declared_dependencies(manifest: &toml::Table) -> Vec<String> {
    let mut tables: Vec<&toml::Table> = Vec::new();
    for key in ["dependencies", "build-dependencies"] {
        if let Some(t) = manifest.get(key).and_then(toml::Value::as_table) {
            tables.push(t);
        }
    }
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for target in targets.values().filter_map(toml::Value::as_table) {
            for key in ["dependencies", "build-dependencies"] {
                if let Some(t) = target.get(key).and_then(toml::Value::as_table) {
                    tables.push(t);
                }
            }
        }
    }
    let mut out = Vec::new();
    for t in tables {
        for (name, spec) in t {
            let real = spec
                .get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(name);
            out.push(real.to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every package reachable from `root` through normal dependencies: a workspace member's
/// from its own manifest (`members`: name → declared dependencies; a lock file also lists
/// members' dev-dependencies), any other package's from the lock file (which lists what it
/// was built with). Several versions of one name are merged, erring towards more.
pub fn dependency_closure(
    root: &str,
    members: &BTreeMap<String, Vec<String>>,
    lock: &toml::Table,
) -> BTreeSet<String> {
    let mut locked: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in lock
        .get("package")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = p.get("name").and_then(toml::Value::as_str) else {
            continue;
        };
        let deps = locked.entry(name).or_default();
        for d in p
            .get("dependencies")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_str)
        {
            // `name` or `name version` or `name version (source)`.
            deps.push(d.split(' ').next().unwrap_or(d));
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        match members.get(&n) {
            Some(deps) => todo.extend(deps.iter().cloned()),
            None => todo.extend(
                locked
                    .get(n.as_str())
                    .into_iter()
                    .flatten()
                    .map(|d| (*d).to_owned()),
            ),
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_doc_comment_is_caught() {
        assert!(check_doc_comment("a.rs", "//! What it is.\nfn main() {}").is_none());
        assert!(check_doc_comment("a.rs", "// not a doc comment\n").is_some());
        assert!(check_doc_comment("a.rs", "\n//! late\n").is_some());
        assert!(check_doc_comment("a.rs", "").is_some());
    }

    #[test]
    fn sql_is_caught_in_code_but_not_in_comments() {
        let text = "//! x\n\
                    // SELECT in a comment is prose\n\
                    let q = \"SELECT id FROM users\";\n\
                    let u = \"UPDATE users SET x = 1\";\n\
                    use sqlx::Row;\n\
                    let ok = \"select nothing, update nothing\";\n";
        let lines: Vec<usize> = sql_lines("a.rs", text).iter().map(|v| v.line).collect();
        assert_eq!(lines, [3, 4, 5]);
    }

    #[test]
    fn clock_reads_are_caught() {
        let text = "//! x\n\
                    // Instant::now in a comment\n\
                    let t = std::time::Instant::now();\n\
                    let d = tokio::time::Instant::now() + d;\n\
                    let w = SystemTime::now();\n\
                    let o = time::OffsetDateTime::now_utc();\n\
                    let fine = Duration::from_secs(1);\n";
        let lines: Vec<usize> = clock_reads("a.rs", text).iter().map(|v| v.line).collect();
        assert_eq!(lines, [3, 4, 5, 6]);
    }

    #[test]
    fn impure_code_outside_test_modules_is_caught() {
        let text = "//! x\n\
                    use std::fs::read;\n\
                    fn f() {}\n\
                    #[cfg(test)]\n\
                    mod tests {\n\
                    \x20   fn g() { eprintln!(\"only in tests\"); std::fs::read(\"x\"); }\n\
                    }\n\
                    async fn h() { x.await }\n";
        let lines: Vec<usize> = impure_code("a.rs", text).iter().map(|v| v.line).collect();
        assert_eq!(lines, [2, 8]);
    }

    #[test]
    fn a_nested_test_module_is_blanked_to_its_own_closing_brace() {
        let text = "mod a {\n    #[cfg(test)]\n    mod tests {\n        x();\n    }\n    y();\n}";
        let out = without_test_modules(text);
        assert_eq!(out, "mod a {\n\n\n\n\n    y();\n}");
    }

    fn sums(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(n, h)| ((*n).to_owned(), (*h).to_owned()))
            .collect()
    }

    #[test]
    fn migrations_edited_removed_inserted_or_unlisted_are_caught() {
        let shipped = sums(&[("0001_a.sql", "aa"), ("0002_b.sql", "bb")]);
        // Unchanged, plus nothing new.
        assert!(check_migrations("s", &shipped, &shipped).is_empty());
        // Edited.
        let edited = sums(&[("0001_a.sql", "xx"), ("0002_b.sql", "bb")]);
        assert_eq!(check_migrations("s", &shipped, &edited).len(), 1);
        // Removed.
        let removed = sums(&[("0002_b.sql", "bb")]);
        assert_eq!(check_migrations("s", &shipped, &removed).len(), 1);
        // Inserted before a shipped one.
        let inserted = sums(&[
            ("0001_a.sql", "aa"),
            ("0001b_c.sql", "cc"),
            ("0002_b.sql", "bb"),
        ]);
        let v = check_migrations("s", &shipped, &inserted);
        assert!(v.len() == 1 && v[0].what.contains("sorts before"), "{v:?}");
        // Appended but not listed.
        let appended = sums(&[
            ("0001_a.sql", "aa"),
            ("0002_b.sql", "bb"),
            ("0003_c.sql", "cc"),
        ]);
        let v = check_migrations("s", &shipped, &appended);
        assert!(
            v.len() == 1 && v[0].what.contains("cc  0003_c.sql"),
            "{v:?}"
        );
        // A list out of order.
        let unordered = sums(&[("0002_b.sql", "bb"), ("0001_a.sql", "aa")]);
        assert_eq!(check_migrations("s", &unordered, &shipped).len(), 1);
    }

    #[test]
    fn sums_parse_as_sha256sum_writes_them() {
        let h = sha256_hex(b"");
        assert_eq!(
            h,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let list = parse_sums(&format!("{h}  0001_init.sql\n\n")).unwrap();
        assert_eq!(list, [("0001_init.sql".to_owned(), h)]);
        assert!(parse_sums("abc  x.sql").is_err());
        assert!(parse_sums("no separator").is_err());
    }

    #[test]
    fn dependencies_are_read_with_renames_targets_and_not_dev() {
        let manifest: toml::Table = toml::from_str(
            r#"
            [dependencies]
            serde.workspace = true
            web = { package = "reqwest", version = "0.12" }
            [target.'cfg(unix)'.dependencies]
            libc = "0.2"
            [dev-dependencies]
            tokio = "1"
            "#,
        )
        .unwrap();
        assert_eq!(
            declared_dependencies(&manifest),
            ["libc", "reqwest", "serde"]
        );
    }

    #[test]
    fn the_closure_follows_members_by_manifest_and_the_rest_by_lock() {
        let lock: toml::Table = toml::from_str(
            r#"
            [[package]]
            name = "pure"
            dependencies = ["a", "criterion"]
            [[package]]
            name = "a"
            version = "1.0.0"
            dependencies = ["b 1.0.0"]
            [[package]]
            name = "b"
            version = "1.0.0"
            dependencies = ["tokio 1.0.0 (registry+https://example.invalid)"]
            [[package]]
            name = "criterion"
            dependencies = ["tokio"]
            "#,
        )
        .unwrap();
        // `criterion` is a dev-dependency: the member's manifest does not list it.
        let members = BTreeMap::from([("pure".to_owned(), vec!["a".to_owned()])]);
        let c = dependency_closure("pure", &members, &lock);
        assert_eq!(
            c.into_iter().collect::<Vec<_>>(),
            ["a", "b", "pure", "tokio"]
        );
    }
}
