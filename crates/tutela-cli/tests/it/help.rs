//! `tutela --help` names every subcommand in its about line, and each subcommand's help ends
//! with an example (#17). The list of subcommands is read from clap's own help, so a new
//! subcommand without an example, or missing from the about line, fails here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tutela(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(args)
        .current_dir(dir)
        .env(
            "TUTELA_MODEL_DIR",
            std::env::temp_dir().join("tutela-cli-help-no-model"),
        )
        .output()
        .expect("run tutela");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The subcommands clap lists under `Commands:` (without its own `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect()
}

/// Words of an example line, double quotes grouping.
fn words(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out.retain(|w| !w.is_empty());
    out
}

/// The example lines (`  tutela ...`) after `Example:` in a help text.
fn examples(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Example:"))
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| l.starts_with("tutela "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn help_names_every_subcommand_and_each_ends_with_an_example() {
    let root = repo_root();
    for flag in ["--help", "-h"] {
        let (code, help, stderr) = tutela(&[flag], &root);
        assert_eq!(code, 0, "{stderr}");
        let subs = subcommands(&help);
        assert!(subs.len() >= 13, "{help}");
        let about = help.split("Usage:").next().unwrap();
        for sub in &subs {
            assert!(
                about.contains(sub.as_str()),
                "the about line of `tutela {flag}` does not name `{sub}`:\n{about}"
            );
        }
    }
    let (_, help, _) = tutela(&["--help"], &root);
    for sub in subcommands(&help) {
        let (code, text, stderr) = tutela(&[&sub, "--help"], &root);
        assert_eq!(code, 0, "{stderr}");
        let tail = text.rsplit("Options:").next().unwrap();
        assert!(
            tail.contains("\nExample:\n"),
            "`tutela {sub} --help` does not end with an example:\n{text}"
        );
        let ex = examples(&text);
        assert!(!ex.is_empty(), "`tutela {sub} --help`: no example line");
        for e in &ex {
            assert!(e.starts_with(&format!("tutela {sub} ")), "{e}");
        }
    }
}

/// The examples that need no database, imported model, network or output directory run from
/// the repository root as printed, and do not fail (exit 0, or 1 for findings).
#[test]
fn self_contained_examples_run_as_printed() {
    let root = repo_root();
    for sub in ["profiles", "check", "assess"] {
        let (_, text, _) = tutela(&[sub, "--help"], &root);
        for e in examples(&text) {
            let argv = words(&e);
            let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
            let (code, out, stderr) = tutela(&args, &root);
            assert!(code == 0 || code == 1, "`{e}` exited {code}: {stderr}");
            assert!(!out.is_empty(), "`{e}` printed nothing: {stderr}");
        }
    }
}
