//! The repository against ARCHITECTURE.md's invariants (see `tutela_tidy`): doc comments,
//! SQL only in the store, clock reads only at the seams, append-only migrations, and the
//! pure crates' dependencies and code, the gateway's module graph and function lengths. Each test lists every violation it finds at once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly, with the value that broke it"
)]

mod pure;
mod repo;
mod shape;

use std::path::Path;

use tutela_tidy::Violation;

/// Every `.rs` file of the repository with its text.
pub fn rust_sources() -> Vec<(String, String)> {
    let root = tutela_tidy::repo_root();
    tutela_tidy::files_with_suffix(&root, ".rs")
        .unwrap()
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(root.join(&p))
                .unwrap_or_else(|e| panic!("reading {p}: {e}"));
            (p, text)
        })
        .collect()
}

/// Reads a file of the repository.
pub fn read(rel: &str) -> String {
    let path = tutela_tidy::repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Whether `rel` exists in the repository.
pub fn exists(rel: &str) -> bool {
    Path::new(&tutela_tidy::repo_root()).join(rel).exists()
}

/// Fails with every violation, one per line.
pub fn assert_none(what: &str, violations: &[Violation]) {
    if !violations.is_empty() {
        let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
        panic!("{what}: {} violation(s)\n{}", list.len(), list.join("\n"));
    }
}
