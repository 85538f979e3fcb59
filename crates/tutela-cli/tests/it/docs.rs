//! The documentation is executed (#17): every `$ tutela ...` example in `docs/cli/*.md` (the
//! command line by example) and `docs/guide/*.md` (the operator guide) runs against the built
//! binary with `trycmd`, and its output must match the page (`[..]` elides part of a line, `...`
//! whole lines: timings, paths, hashes, versions, random passwords).
//!
//! Files a page's commands write are checked too where the page has a directory of expected
//! files beside it (`docs/cli/records.out/a.html` for `report ... -o a.html` on
//! `records.md`): each file there must match the one the commands wrote, with the same
//! elisions; files the directory does not name are not compared.
//!
//! Each page runs in a sandbox of its own, a fresh temporary directory holding what a clone of
//! the repository holds for the examples (`data/samples/`, `rules/examples/`, `banks/`), so the
//! commands are written as a newcomer types them at the repository root. The pages' commands
//! of one page share that sandbox, in order (`simulate` then `report --db sim.db`). The encoder
//! tier is kept out (`TUTELA_MODEL_DIR` names an empty directory), so the output is the same on
//! a machine with the model imported and on one without.
//!
//! `readme_commands_are_executed` checks the other direction: every `cargo run --release --
//! ARGS` line of the README appears as `$ tutela ARGS` on an executed page, but for the few
//! that cannot run offline and quickly, each named in [`NOT_EXECUTED`] with its reason;
//! `help_examples_are_executed` does the same for the example each `tutela SUB --help` ends
//! with ([`HELP_NOT_EXECUTED`]).
//!
//! A failure names `target/tmp/tutela-docs-PID/DIR-PAGE.md:LINE`: a link to `docs/DIR/PAGE.md`,
//! same line. To refresh a page after a deliberate change of output: `TRYCMD=overwrite cargo test -p
//! tutela-cli --test it docs` (the pages are linked into the run directory, so the sources are
//! rewritten), then review the diff and put the elisions back where the output varies.

use std::path::{Path, PathBuf};

/// What a clone holds that the examples read, copied into every sandbox.
const FIXTURE: [&str; 3] = ["data/samples", "rules/examples", "banks"];

/// README commands that are not executed, with the reason.
const NOT_EXECUTED: [(&str, &str); 6] = [
    (
        "serve",
        "a server: runs until stopped (the SDK and browser tests drive it)",
    ),
    (
        "model import",
        "needs the encoder wheel downloaded from PyPI (scripts/test-all does it)",
    ),
    (
        "train",
        "retrains the learned tiers: minutes, not a documentation check",
    ),
    ("assess --bank", "needs a running model or gateway to ask"),
    (
        "assess lint --bank banks/*.jsonl",
        "a shell glob, and freshness is measured against today: assess.md names the banks and \
         fixes the date",
    ),
    (
        "simulate --db sim.db --month 2026-10 --tz-offset 480",
        "1,050,000 users: minutes in a debug build; the pages run the same with fewer users",
    ),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directories of executed pages: the command line by example, the operator guide.
const PAGE_DIRS: [&str; 2] = ["docs/cli", "docs/guide"];

/// The executed pages (`*.md` of [`PAGE_DIRS`] but their `README.md`), sorted.
fn pages() -> Vec<PathBuf> {
    let mut all = Vec::new();
    for dir in PAGE_DIRS {
        let dir = repo_root().join(dir);
        let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
            .collect();
        pages.sort();
        assert!(!pages.is_empty(), "no pages in {}", dir.display());
        all.extend(pages);
    }
    all
}

/// A page's name in the run directory: `cli-records` for `docs/cli/records.md`.
fn run_name(page: &Path) -> String {
    let dir = page
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let stem = page.file_stem().unwrap().to_str().unwrap();
    format!("{dir}-{stem}")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn documented_commands_run_as_documented() {
    let root = repo_root().canonicalize().unwrap();
    let run =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tutela-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).unwrap();
    let no_model = run.join("no-model");
    std::fs::create_dir_all(&no_model).unwrap();
    for page in pages() {
        let name = run_name(&page);
        // trycmd finds `NAME.in/` (the sandbox's template) and `NAME.out/` (which turns the
        // sandbox on, and holds the files the commands must have written) beside the page;
        // the page itself is a link, so `TRYCMD=overwrite` rewrites the source (the expected
        // files are copies: refresh those by hand).
        std::os::unix::fs::symlink(&page, run.join(format!("{name}.md"))).unwrap();
        for part in FIXTURE {
            copy_dir(&root.join(part), &run.join(format!("{name}.in")).join(part));
        }
        let out = run.join(format!("{name}.out"));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(".keep"), "").unwrap();
        let expected = page.with_extension("out");
        if expected.is_dir() {
            copy_dir(&expected, &out);
        }
    }
    trycmd::TestCases::new()
        .register_bin("tutela", Path::new(env!("CARGO_BIN_EXE_tutela")))
        .env("TUTELA_MODEL_DIR", no_model.to_str().unwrap())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .case(run.join("*.md"))
        .run();
    let _ = std::fs::remove_dir_all(&run);
}

/// The words of a command line, without a trailing `# comment`.
fn command_words(line: &str) -> String {
    let line = match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    };
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `ARGS` of every `cargo run --release -- ARGS` line in the README's `sh` blocks.
fn readme_commands(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line.trim() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(i) = line.find("cargo run --release -- ") {
            let args = command_words(&line[i + "cargo run --release -- ".len()..]);
            // `TUTELA_ADMIN_TOKEN=... cargo run ...`: the variable is the reader's.
            out.push(args);
        }
    }
    out
}

/// `ARGS` of every `$ tutela ARGS` line of the executed pages (with `> ` continuations).
fn executed_commands(page: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in page.lines() {
        if let Some(args) = line.strip_prefix("$ tutela ") {
            out.push(command_words(args));
        } else if let Some(more) = line.strip_prefix("> ")
            && let Some(last) = out.last_mut()
        {
            last.push(' ');
            last.push_str(&command_words(more));
        }
    }
    out
}

#[test]
fn readme_commands_are_executed() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut executed = Vec::new();
    for page in pages() {
        executed.extend(executed_commands(&std::fs::read_to_string(page).unwrap()));
    }
    let commands = readme_commands(&readme);
    assert!(commands.len() >= 10, "{commands:?}");
    let mut missing = Vec::new();
    for cmd in &commands {
        let excused = NOT_EXECUTED
            .iter()
            .any(|(prefix, _)| cmd.starts_with(prefix));
        if !excused && !executed.contains(cmd) {
            missing.push(cmd.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "README commands that no page of docs/cli runs (add them to a page, with their output, \
         or to NOT_EXECUTED with a reason):\n  {}",
        missing.join("\n  ")
    );
    // Every exception still names a README command, so the list cannot go stale.
    for (prefix, _) in NOT_EXECUTED {
        assert!(
            commands.iter().any(|c| c.starts_with(prefix)),
            "NOT_EXECUTED names `{prefix}`, which the README no longer runs"
        );
    }
}

/// Examples of `tutela SUB --help` that are not executed, with the reason.
const HELP_NOT_EXECUTED: [(&str, &str); 2] = [
    ("serve", "a server: runs until stopped"),
    ("train", "retrains the learned tiers: minutes"),
];

/// Runs `tutela ARGS` in the repository root: standard output.
fn help_text(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "tutela {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every subcommand's help example is on an executed page too (or excused), so the examples
/// `--help` prints are checked with their output like the README's.
#[test]
fn help_examples_are_executed() {
    let mut executed = Vec::new();
    for page in pages() {
        executed.extend(executed_commands(&std::fs::read_to_string(page).unwrap()));
    }
    let top = help_text(&["--help"]);
    let subs: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .collect();
    assert!(subs.len() >= 13, "{top}");
    let mut missing = Vec::new();
    for sub in subs {
        let help = help_text(&[sub, "--help"]);
        let examples = help
            .lines()
            .skip_while(|l| !l.starts_with("Example:"))
            .filter_map(|l| l.strip_prefix("  tutela "));
        for example in examples {
            let example = command_words(example);
            let excused = HELP_NOT_EXECUTED
                .iter()
                .any(|(prefix, _)| example.starts_with(prefix));
            if !excused && !executed.contains(&example) {
                missing.push(format!("tutela {example}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "help examples that no executed page (docs/cli, docs/guide) runs:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn command_lines_are_read_as_the_shell_would() {
    let readme = "```sh\ncargo run --release -- profiles list     # the profiles\n\
                  X=1 cargo run --release -- check \"a b\"\n```\n\
                  ```\ncargo run --release -- not-sh\n```\n";
    assert_eq!(readme_commands(readme), ["profiles list", "check \"a b\""]);
    let page = "text\n```console\n$ tutela eval --data x.jsonl\n> --tiers lexical\nout\n```\n";
    assert_eq!(
        executed_commands(page),
        ["eval --data x.jsonl --tiers lexical"]
    );
}
