//! `tutela eval --data FILE.jsonl [--json] [--tiers lexical,ngram,encoder]`: scores the
//! detectors on a labelled set in the format of `shared/eval-dev/README.md`. `--json` prints
//! that README's shape (`tasks`: the fusion of the selected tiers) plus `tiers`: each tier
//! alone and the fusion, with over-blocking counts per task.

use anyhow::{Context, Result};
use tutela_detect::Tiers;
use tutela_detect::eval::{evaluate_tier_report, parse_jsonl, render_table};

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
    /// The tiers to fuse (`lexical,ngram,encoder`; default every tier available).
    #[arg(long)]
    pub tiers: Option<Tiers>,
    #[command(flatten)]
    pub learned: crate::tiers::LearnedArgs,
}

/// Runs `tutela eval`.
pub fn run(args: Args) -> Result<Outcome> {
    let text = std::fs::read_to_string(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?;
    let items = parse_jsonl(&text).with_context(|| format!("parsing {}", args.data.display()))?;
    let (det, _) = crate::tiers::load(&args.rules, &args.learned)?;
    let mut fused = args.tiers.unwrap_or(det.tiers());
    // Report the tiers that can run: the encoder only when its model and heads are loaded.
    fused.encoder &=
        det.has_encoder(tutela_types::Side::User) || det.has_encoder(tutela_types::Side::Assistant);
    if fused.lexical && fused.ngram && !fused.encoder {
        say_vetoes(&det);
    }
    let (scored, fused_report) = evaluate_tier_report(&det, &items, fused);
    let mut singles = Vec::new();
    for t in [Tiers::LEXICAL, Tiers::NGRAM, Tiers::ENCODER] {
        let on = (t.lexical && fused.lexical)
            || (t.ngram && fused.ngram)
            || (t.encoder && fused.encoder);
        let single_is_fused = t == fused;
        if on && !single_is_fused {
            singles.push(evaluate_tier_report(&det, &items, t).1);
        }
    }
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut tiers = serde_json::Map::new();
        for r in singles.iter().chain([&fused_report]) {
            tiers.insert(r.tiers.clone(), serde_json::to_value(r)?);
        }
        // Each task carries its hard-negative counts too, so the transparency report's
        // over-blocking table reads counts, not only a rate (`tutela report --eval-json`).
        let mut tasks = serde_json::to_value(&scored.report.tasks)?;
        for (task, (n, flagged)) in &scored.hard {
            if let Some(t) = tasks.get_mut(task).and_then(|t| t.as_object_mut()) {
                t.insert("hard_negatives".into(), serde_json::json!(n));
                t.insert("hard_negatives_flagged".into(), serde_json::json!(flagged));
            }
        }
        let v = serde_json::json!({ "tasks": tasks, "tiers": tiers });
        writeln!(out, "{}", serde_json::to_string(&v)?)?;
    } else {
        writeln!(out, "tiers: {}", fused.names())?;
        write!(out, "{}", render_table(&scored))?;
        for r in &singles {
            writeln!(out, "\ntier {} alone:", r.tiers)?;
            for (task, t) in &r.tasks {
                let ob = r.over_blocking.get(task);
                writeln!(
                    out,
                    "  {task:<14} P {:.2} R {:.2} F1 {:.2}  hard negatives flagged {}/{}",
                    t.precision,
                    t.recall,
                    t.f1,
                    ob.map_or(0, |o| o.flagged),
                    ob.map_or(0, |o| o.hard_negatives)
                )?;
            }
        }
        if args.misses {
            writeln!(out, "\nmisses (id, task, gold, predicted):")?;
            for (id, task, gold, pred) in &scored.misses {
                writeln!(out, "{id}\t{task}\t{gold}\t{pred}")?;
            }
        }
    }
    Ok(Outcome::Clean)
}

/// Says the embedded fusion's veto levels (a lexical finding stands only where the n-gram
/// probability reaches them, without the encoder), for the heads that have one.
fn say_vetoes(det: &tutela_detect::Detectors) {
    for side in [tutela_types::Side::User, tutela_types::Side::Assistant] {
        let Some(m) = det.ngram_model(side) else {
            continue;
        };
        for (h, v) in m.meta.heads.iter().zip(&m.meta.veto) {
            if v.en > 0.0 || v.zh > 0.0 || v.mixed > 0.0 {
                crate::stderr::say!(
                    "tutela: lexical,ngram: a lexical `{}` finding stands where the n-gram probability reaches en {:.2} zh {:.2} mixed {:.2}",
                    h.as_str(),
                    v.en,
                    v.zh,
                    v.mixed
                );
            }
        }
    }
}
