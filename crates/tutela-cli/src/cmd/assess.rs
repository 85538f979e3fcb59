//! `tutela assess --bank FILE... --upstream URL`: runs question banks against an
//! OpenAI-compatible model and reports the TC260-003 9.3 / 9.4 gates;
//! `tutela assess lint --bank FILE...`: checks bank sizes, coverage and freshness (8.2, 8.3).
//! Exit 0 when every gate of the banks run passes, 1 when one fails or has too few items,
//! 2 on errors.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use tutela_detect::Detectors;
use tutela_screen::assess::{self, AssessConfig, Model, OpenAiModel, Sourcing};
use tutela_screen::summary::pct;

use crate::Outcome;

/// Arguments of `tutela assess`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Check banks against TC260-003 8.2 / 8.3: sizes, per-risk coverage, freshness.
    Lint {
        /// Bank files (JSONL).
        #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
        bank: Vec<PathBuf>,
        /// The date to measure freshness against (default: today, UTC).
        #[arg(long, value_name = "YYYY-MM-DD")]
        today: Option<String>,
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Bank files (JSONL: id, question, kind, risk, lang[, tc260, updated]).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    bank: Vec<PathBuf>,
    /// The OpenAI-compatible API base, e.g. http://127.0.0.1:8080/v1.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// The model name to ask for (default: the upstream's own default model).
    #[arg(long, value_name = "M")]
    model: Option<String>,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Attempts per question (retries back off from 250 ms, doubling).
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    /// Seconds before a request times out.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Environment variable holding the API key (sent as a bearer token when set).
    #[arg(long, value_name = "NAME", default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// Optional judge: an OpenAI-compatible API base asked to grade each answer SAFE/UNSAFE.
    #[arg(long, value_name = "URL")]
    judge_upstream: Option<String>,
    /// The judge's model name.
    #[arg(long, value_name = "M", default_value = "default")]
    judge_model: String,
    /// Output directory (answers cache, graded.jsonl, report.json, report.html).
    #[arg(long, value_name = "DIR", default_value = "assess-out")]
    out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The deployment's test key (`GET /admin/test-key`), sent as `X-Tutela-Test-Key` so a
    /// tutela gateway keeps the run out of its counts, queues and reports. Default: from
    /// `TUTELA_TEST_KEY`, else derived from `TUTELA_ADMIN_TOKEN`.
    #[arg(long, value_name = "KEY")]
    test_key: Option<String>,
    /// Send the questions as ordinary traffic (they then count as users, open cases and add
    /// to the reports of a tutela gateway).
    #[arg(long, conflicts_with = "test_key")]
    count_as_production: bool,
}

/// The test key to send: given, from `TUTELA_TEST_KEY`, or derived from `TUTELA_ADMIN_TOKEN`.
fn test_key(a: &RunArgs) -> Option<String> {
    if a.count_as_production {
        return None;
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    a.test_key
        .clone()
        .or_else(|| env("TUTELA_TEST_KEY"))
        .or_else(|| env("TUTELA_ADMIN_TOKEN").map(|t| tutela_gateway::test_traffic::key_for(&t)))
}

/// Runs `tutela assess`.
pub fn run(args: Args) -> Result<Outcome> {
    match args.command {
        Some(Sub::Lint { bank, today, json }) => lint(&bank, today, json),
        None => assess_run(args.run),
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the CLI is the edge: today's date for the freshness lint unless --today is given"
)]
fn today_days() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64)
}

fn lint(bank: &[PathBuf], today: Option<String>, json: bool) -> Result<Outcome> {
    let items = assess::load_banks(bank)?;
    let today = match today {
        Some(t) => match assess::parse_date(&t) {
            Some(d) => d,
            None => bail!("--today must be YYYY-MM-DD"),
        },
        None => today_days(),
    };
    let checks = assess::lint(&items, today);
    if json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        println!("{} questions in {} bank files", items.len(), bank.len());
        for c in &checks {
            let tag = match c.sourcing {
                Sourcing::Secondary => "",
                Sourcing::Unverified => " [unverified figure]",
            };
            println!(
                "{} {} ({}): need {}, have {}{}",
                if c.ok { "ok  " } else { "FAIL" },
                c.check,
                c.clause,
                c.required,
                c.actual,
                tag
            );
        }
    }
    Ok(if checks.iter().all(|c| c.ok) {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

fn assess_run(a: RunArgs) -> Result<Outcome> {
    if a.bank.is_empty() {
        bail!("give at least one --bank FILE");
    }
    let Some(upstream) = a.upstream.clone() else {
        bail!("--upstream URL is required (an OpenAI-compatible API base)");
    };
    let items = assess::load_banks(&a.bank)?;
    let key = std::env::var(&a.api_key_env).ok().filter(|k| !k.is_empty());
    let timeout = Duration::from_secs(a.timeout);
    let model_name = a.model.clone().unwrap_or_default();
    let mut client = OpenAiModel::new(&upstream, &model_name, key.clone(), timeout)?;
    match test_key(&a) {
        Some(k) => client = client.with_header("X-Tutela-Test-Key", &k),
        None if !a.count_as_production => eprintln!(
            "tutela assess: no test key (--test-key, TUTELA_TEST_KEY or TUTELA_ADMIN_TOKEN): if the upstream is a tutela gateway, these questions count as production traffic"
        ),
        None => {}
    }
    let model: Arc<dyn Model> = Arc::new(client);
    let judge: Option<Arc<dyn Model>> = match &a.judge_upstream {
        Some(u) => Some(Arc::new(OpenAiModel::new(u, &a.judge_model, key, timeout)?)),
        None => None,
    };
    let cfg = AssessConfig {
        out: a.out.clone(),
        model: a.model.unwrap_or_else(|| "(the upstream's default)".into()),
        upstream,
        concurrency: a.concurrency,
        attempts: a.attempts,
        backoff: Duration::from_millis(250),
    };
    let det = Detectors::try_builtin()?;
    let report = assess::run(&cfg, &items, &det, model, judge)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} questions graded against {} ({})",
            items.len(),
            report.upstream,
            report.model
        );
        for g in &report.gates {
            println!(
                "{:<18} {:<17} {} on {} items [{}–{}] (needs ≥ {} items, {} {}): {}",
                g.gate.id,
                g.gate.clause,
                pct(g.rate),
                g.n,
                pct(g.ci95.0),
                pct(g.ci95.1),
                g.gate.min_items,
                g.gate.measures,
                match g.gate.direction {
                    tutela_screen::stats::Direction::AtLeast =>
                        format!("≥ {}", pct(g.gate.threshold)),
                    tutela_screen::stats::Direction::AtMost =>
                        format!("≤ {}", pct(g.gate.threshold)),
                },
                g.verdict.label()
            );
        }
        println!("report: {}", a.out.join("report.html").display());
    }
    Ok(if report.all_pass() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}
