//! The shape of the crates in `ACYCLIC_CRATES` (the gateway): no module cycle, and every
//! function short enough to read on one screen.

use tutela_tidy::{ACYCLIC_CRATES, LONG_FN_EXCEPTIONS, MAX_FN_LINES, Violation};

use crate::{assert_none, rust_sources};

/// Each checked crate's `src/` files: (crate's `src/`, [(path under `src/`, text)]).
fn crates() -> Vec<(&'static str, Vec<(String, String)>)> {
    let sources = rust_sources();
    ACYCLIC_CRATES
        .iter()
        .map(|src| {
            let files: Vec<(String, String)> = sources
                .iter()
                .filter_map(|(p, t)| p.strip_prefix(src).map(|r| (r.to_owned(), t.clone())))
                .collect();
            assert!(files.len() > 1, "{src}: no sources found");
            (*src, files)
        })
        .collect()
}

#[test]
fn no_module_cycle() {
    let mut v: Vec<Violation> = Vec::new();
    for (src, files) in crates() {
        let graph = tutela_tidy::shape::module_graph(&files);
        // A graph without edges would pass: the walk must see the modules use one another.
        assert!(
            graph.values().map(|e| e.len()).sum::<usize>() > graph.len() / 2,
            "{src}: the module graph has almost no edges: {graph:?}"
        );
        v.extend(tutela_tidy::shape::module_cycles(src, &graph));
    }
    assert_none("module cycles", &v);
}

#[test]
fn no_long_function() {
    let mut v: Vec<Violation> = Vec::new();
    let mut seen = 0;
    for (src, files) in crates() {
        for (rel, text) in &files {
            let path = format!("{src}{rel}");
            seen += tutela_tidy::shape::functions(text).len();
            v.extend(tutela_tidy::shape::long_functions(
                &path,
                text,
                MAX_FN_LINES,
                LONG_FN_EXCEPTIONS,
            ));
        }
    }
    assert!(seen > 100, "only {seen} functions found");
    // Every exception still names a long function.
    for (path, name, why) in LONG_FN_EXCEPTIONS {
        let text = crate::read(path);
        let still_long = tutela_tidy::shape::functions(&text)
            .iter()
            .any(|f| f.name == *name && f.lines > MAX_FN_LINES);
        if !still_long {
            v.push(Violation {
                path: (*path).to_owned(),
                line: 0,
                what: format!(
                    "LONG_FN_EXCEPTIONS lists `{name}` ({why}), which is gone or short now"
                ),
            });
        }
    }
    assert_none("functions too long", &v);
}
