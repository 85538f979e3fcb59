//! `tutela eval --data FILE.jsonl [--json]`: scores the detectors on a labelled set in the
//! format of `shared/eval-dev/README.md`; `--json` prints exactly that README's shape.

use anyhow::{Context, Result};
use tutela_detect::eval::{evaluate, parse_jsonl, render_table};

use crate::Outcome;

/// Arguments of `tutela eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The labelled JSONL file.
    #[arg(long)]
    pub data: std::path::PathBuf,
    /// Print the JSON report instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also list the items predicted wrong (id, task, gold, predicted; never the text).
    #[arg(long)]
    pub misses: bool,
    /// Operator rule packs (TOML) to load besides the built-in detectors.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<std::path::PathBuf>,
}

/// Runs `tutela eval`.
pub fn run(args: Args) -> Result<Outcome> {
    let text = std::fs::read_to_string(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?;
    let items = parse_jsonl(&text).with_context(|| format!("parsing {}", args.data.display()))?;
    let det = super::check::load_packs(&args.rules)?;
    let scored = evaluate(&det, &items);
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&scored.report)?)?;
    } else {
        write!(out, "{}", render_table(&scored))?;
        if args.misses {
            writeln!(out, "\nmisses (id, task, gold, predicted):")?;
            for (id, task, gold, pred) in &scored.misses {
                writeln!(out, "{id}\t{task}\t{gold}\t{pred}")?;
            }
        }
    }
    Ok(Outcome::Clean)
}
