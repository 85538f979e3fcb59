//! Repository-wide rules: every `.rs` file opens with `//!`, SQL only in `tutela-store`,
//! clock reads only at the listed seams, migrations append-only.

use tutela_tidy::{
    CLOCK_CHECK_EXEMPT, CLOCK_SEAMS, MIGRATIONS, SQL_CRATES, SQL_OUTSIDE_STORE, STORE_CRATE,
    Violation,
};

use crate::{assert_none, exists, read, rust_sources};

fn listed(list: &[(&str, &str)], path: &str) -> bool {
    list.iter().any(|(p, _)| *p == path)
}

#[test]
fn the_walk_sees_the_workspace() {
    // A walk that found nothing would pass every other test here.
    let files: Vec<String> = rust_sources().into_iter().map(|(p, _)| p).collect();
    for expected in [
        "crates/tutela-store/src/lib.rs",
        "crates/tutela-gateway/src/clock.rs",
        "crates/tutela-tidy/src/lib.rs",
        "fuzz/fuzz_targets/scan.rs",
    ] {
        assert!(files.iter().any(|f| f == expected), "{expected} not found");
    }
    assert!(
        !files.iter().any(|f| f.contains("/target/")),
        "build output walked"
    );
}

#[test]
fn every_rust_file_opens_with_a_doc_comment() {
    let v: Vec<Violation> = rust_sources()
        .iter()
        .filter_map(|(p, t)| tutela_tidy::check_doc_comment(p, t))
        .collect();
    assert_none("files without a `//!` doc comment", &v);
}

#[test]
fn sql_lives_only_in_the_store() {
    let mut v: Vec<Violation> = Vec::new();
    for (path, text) in rust_sources() {
        if path.starts_with(STORE_CRATE) || listed(SQL_OUTSIDE_STORE, &path) {
            continue;
        }
        v.extend(tutela_tidy::sql_lines(&path, &text));
    }
    let root = tutela_tidy::repo_root();
    for sql in tutela_tidy::files_with_suffix(&root, ".sql").unwrap() {
        if !sql.starts_with(STORE_CRATE) {
            v.push(Violation {
                path: sql,
                line: 0,
                what: "an SQL file outside tutela-store".into(),
            });
        }
    }
    // No crate but the store depends on a database crate.
    for manifest in tutela_tidy::files_with_suffix(&root, "Cargo.toml").unwrap() {
        if manifest.starts_with(STORE_CRATE) {
            continue;
        }
        let table: toml::Table = read(&manifest).parse().unwrap();
        for dep in tutela_tidy::declared_dependencies(&table) {
            if SQL_CRATES.contains(&dep.as_str()) {
                v.push(Violation {
                    path: manifest.clone(),
                    line: 0,
                    what: format!("depends on `{dep}`: only tutela-store knows SQL"),
                });
            }
        }
    }
    for (path, _) in SQL_OUTSIDE_STORE {
        assert!(
            exists(path),
            "SQL_OUTSIDE_STORE lists `{path}`, which is gone"
        );
    }
    assert_none("SQL outside tutela-store", &v);
}

#[test]
fn the_clock_is_read_only_at_the_seams() {
    let sources = rust_sources();
    let mut v: Vec<Violation> = Vec::new();
    for (path, text) in &sources {
        if listed(CLOCK_SEAMS, path) || listed(CLOCK_CHECK_EXEMPT, path) {
            continue;
        }
        v.extend(tutela_tidy::clock_reads(path, text));
    }
    // The list stays true: every seam still reads the clock.
    for (seam, why) in CLOCK_SEAMS {
        match sources.iter().find(|(p, _)| p == seam) {
            None => v.push(Violation {
                path: (*seam).to_owned(),
                line: 0,
                what: "listed in CLOCK_SEAMS but gone: remove it from the list".into(),
            }),
            Some((p, t)) if tutela_tidy::clock_reads(p, t).is_empty() => v.push(Violation {
                path: p.clone(),
                line: 0,
                what: format!(
                    "listed in CLOCK_SEAMS ({why}) but reads no clock: remove it from the list"
                ),
            }),
            Some(_) => {}
        }
    }
    assert_none("clock reads outside the seams", &v);
}

#[test]
fn migrations_are_append_only() {
    for &(sums, dir) in MIGRATIONS {
        let shipped = tutela_tidy::parse_sums(&read(sums)).unwrap();
        let root = tutela_tidy::repo_root();
        let mut present: Vec<(String, String)> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .map(|n| {
                let bytes = std::fs::read(root.join(dir).join(&n)).unwrap();
                let hash = tutela_tidy::sha256_hex(&bytes);
                (n, hash)
            })
            .collect();
        present.sort();
        assert!(!shipped.is_empty() && !present.is_empty(), "{dir}");
        assert_none(
            "migrations",
            &tutela_tidy::check_migrations(sums, &shipped, &present),
        );
    }
}

/// Every path the gateway's router serves is in `docs/openai-compatibility.md`'s endpoint
/// tables (the staff API under its `/admin/...` row), so an app developer finds it there.
#[test]
fn every_gateway_route_is_in_the_compatibility_table() {
    let router = read("crates/tutela-gateway/src/lib.rs");
    let doc = read("docs/openai-compatibility.md");
    let mut routes = Vec::new();
    for piece in router.split(".route(").skip(1) {
        let piece = piece.trim_start();
        if let Some(rest) = piece.strip_prefix('"')
            && let Some(end) = rest.find('"')
        {
            routes.push(rest[..end].to_owned());
        }
    }
    assert!(
        routes.iter().any(|r| r == "/v1/chat/completions"),
        "no route found in the router: {routes:?}"
    );
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| {
            if r.starts_with("/admin/") {
                !doc.contains("`/admin/...`")
            } else {
                !doc.contains(&format!(" {r}`")) && !doc.contains(&format!(" {r}?"))
            }
        })
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from docs/openai-compatibility.md: {missing:?}"
    );
}
