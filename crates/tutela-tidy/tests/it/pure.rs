//! The pure crates (types, profile, detect, policy): declared dependencies only from the
//! allow-list, no async runtime, network, database, logging or entropy anywhere below them,
//! and no I/O, environment, threads, printing or async in their own code.

use std::collections::BTreeMap;

use tutela_tidy::{FORBIDDEN_IN_PURE, PURE_CRATES, PURE_DEPENDENCIES, Violation};

use crate::{assert_none, read, rust_sources};

/// Every workspace member: package name → (directory, declared dependencies).
fn members() -> BTreeMap<String, (String, Vec<String>)> {
    let root = tutela_tidy::repo_root();
    let mut out = BTreeMap::new();
    for manifest in tutela_tidy::files_with_suffix(&root, "Cargo.toml").unwrap() {
        if !manifest.starts_with("crates/") {
            continue;
        }
        let table: toml::Table = read(&manifest).parse().unwrap();
        let Some(name) = table
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(toml::Value::as_str)
        else {
            continue;
        };
        let dir = manifest.trim_end_matches("Cargo.toml").to_owned();
        out.insert(
            name.to_owned(),
            (dir, tutela_tidy::declared_dependencies(&table)),
        );
    }
    out
}

#[test]
fn pure_crates_declare_only_allowed_dependencies() {
    let members = members();
    let mut v: Vec<Violation> = Vec::new();
    for krate in PURE_CRATES {
        let (dir, deps) = members
            .get(krate)
            .unwrap_or_else(|| panic!("pure crate {krate} not in the workspace"));
        for dep in deps {
            if !PURE_DEPENDENCIES.iter().any(|(d, _)| d == dep) {
                v.push(Violation {
                    path: format!("{dir}Cargo.toml"),
                    line: 0,
                    what: format!(
                        "`{dep}` is not in tutela_tidy::PURE_DEPENDENCIES (a pure crate does no \
                         I/O, reads no clock or environment, runs no async runtime)"
                    ),
                });
            }
        }
    }
    assert_none("dependencies of the pure crates", &v);
}

#[test]
fn nothing_below_a_pure_crate_does_io_async_or_logging() {
    let lock: toml::Table = read("Cargo.lock").parse().unwrap();
    let members: BTreeMap<String, Vec<String>> = members()
        .into_iter()
        .map(|(name, (_, deps))| (name, deps))
        .collect();
    let mut v: Vec<Violation> = Vec::new();
    for krate in PURE_CRATES {
        let closure = tutela_tidy::dependency_closure(krate, &members, &lock);
        // A closure of the crate alone would mean the lock was not read.
        assert!(closure.len() > 3, "{krate}: {closure:?}");
        for bad in FORBIDDEN_IN_PURE {
            if closure.contains(*bad) {
                v.push(Violation {
                    path: "Cargo.lock".into(),
                    line: 0,
                    what: format!("{krate} reaches `{bad}` through its dependencies"),
                });
            }
        }
    }
    assert_none("what the pure crates reach", &v);
}

#[test]
fn pure_code_does_no_io_and_runs_no_async() {
    let members = members();
    let dirs: Vec<String> = PURE_CRATES
        .iter()
        .map(|k| format!("{}src/", members[*k].0))
        .collect();
    let mut v: Vec<Violation> = Vec::new();
    let mut seen = 0;
    for (path, text) in rust_sources() {
        if dirs.iter().any(|d| path.starts_with(d)) {
            seen += 1;
            v.extend(tutela_tidy::impure_code(&path, &text));
        }
    }
    assert!(seen >= PURE_CRATES.len(), "{seen} files");
    assert_none(
        "I/O, environment, threads, printing or async in the pure crates",
        &v,
    );
}
