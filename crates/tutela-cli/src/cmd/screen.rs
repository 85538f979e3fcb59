//! `tutela screen INPUT... --out DIR`: screens a training corpus (TC260-003 5.1, 9.2);
//! `tutela screen review FILE`: scores a filled-in manual-review file;
//! `tutela screen merge DIR... --out DIR`: joins per-shard runs into one report.
//! Exit 0 when clean, 1 for a rejected source or a failed (or unfinished) gate, 2 on errors.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tutela_detect::{Detectors, RulePack};
use tutela_screen::laws;
use tutela_screen::pii::PiiKind;
use tutela_screen::screen::{self, ScreenConfig};
use tutela_screen::stats::Verdict;
use tutela_screen::summary::{Report, pct};
use tutela_types::{DetectorId, Severity, Side};

use crate::Outcome;

/// Arguments of `tutela screen`.
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
    /// Score a manual-review file (review.csv) once a reviewer has filled in `verdict`.
    Review {
        /// The filled-in review.csv.
        file: PathBuf,
        /// Print the score as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Merge the output directories of per-shard runs into one report.
    Merge {
        /// The shard output directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the merged report goes.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Corpus files (.jsonl, .jsonl.gz, .jsonl.zst, .parquet) or directories of them.
    inputs: Vec<PathBuf>,
    /// Output directory (kept/, removed/, malformed.jsonl, summary.json/html, review.csv).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Field holding the text.
    #[arg(long, value_name = "F", default_value = "text")]
    text_field: String,
    /// Field holding the source (missing: the file name).
    #[arg(long, value_name = "F", default_value = "source")]
    source_field: String,
    /// Field holding the document id (missing: file:line).
    #[arg(long, value_name = "F", default_value = "id")]
    id_field: String,
    /// Operator rule packs (TOML).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    rules: Vec<PathBuf>,
    /// Seed of the manual-review sample.
    #[arg(long, default_value_t = 260_003)]
    seed: u64,
    /// Screen only shard K of N (files whose position i has i % N == K - 1).
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Manual-review sample size (TC260-003 9.2 a) asks for at least 4,000).
    #[arg(long, default_value_t = 4000)]
    sample: usize,
    /// Lowest severity that counts as a violation: low, medium, high, critical.
    #[arg(long, default_value = "medium")]
    min_severity: String,
    /// Also run the user-side detectors (built-in ones are counted as tags, rule-pack
    /// categories for the user side are violations).
    #[arg(long)]
    user_side: bool,
    /// Count personal information but keep those documents.
    #[arg(long)]
    keep_pii: bool,
    /// Screen with the learned tiers too (n-gram, and the encoder when its model is
    /// imported), not only the lexical tier: finds more, at a fraction of the speed.
    #[arg(long)]
    semantic: bool,
    #[command(flatten)]
    learned: crate::tiers::LearnedArgs,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `tutela screen`.
pub fn run(args: Args) -> Result<Outcome> {
    match args.command {
        Some(Sub::Review { file, json }) => review(file, json),
        Some(Sub::Merge { dirs, out, json }) => {
            let report = screen::merge(&dirs, &out)?;
            print_report(&report, json, &out, None)?;
            Ok(if report.failed() {
                Outcome::Findings
            } else {
                Outcome::Clean
            })
        }
        None => screen_run(args.run),
    }
}

fn parse_severity(s: &str) -> Result<Severity> {
    Ok(match s {
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "critical" => Severity::Critical,
        _ => bail!("--min-severity must be low, medium, high or critical, not `{s}`"),
    })
}

fn parse_shard(s: &str) -> Result<(u32, u32)> {
    let (k, n) = s
        .split_once('/')
        .context("--shard must look like K/N, e.g. 2/8")?;
    let k: u32 = k.trim().parse().context("--shard K must be a number")?;
    let n: u32 = n.trim().parse().context("--shard N must be a number")?;
    if n == 0 || k == 0 || k > n {
        bail!("--shard K/N needs 1 <= K <= N");
    }
    Ok((k, n))
}

fn screen_run(a: RunArgs) -> Result<Outcome> {
    let Some(out) = a.out else {
        bail!("--out DIR is required");
    };
    if a.inputs.is_empty() {
        bail!("give at least one INPUT file or directory");
    }
    let inputs = tutela_screen::input::expand_inputs(&a.inputs)?;
    if inputs.is_empty() {
        bail!("no corpus files (.jsonl, .gz, .zst, .parquet) found in the inputs");
    }
    let mut packs = Vec::new();
    let mut pack_names = Vec::new();
    let mut fingerprint = Vec::new();
    for p in &a.rules {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        fingerprint.push(format!(
            "{}#{:016x}",
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            tutela_screen::sample::hash_str(0, &text)
        ));
        let pack = RulePack::parse(&p.display().to_string(), &text)?;
        pack_names.push(format!(
            "{} ({})",
            pack.name,
            pack.categories().collect::<Vec<_>>().join(", ")
        ));
        packs.push(pack);
    }
    let mut det = if packs.is_empty() {
        Detectors::try_builtin()?
    } else {
        Detectors::with_rule_packs(packs)?
    };
    if a.semantic {
        crate::tiers::attach(&mut det, &a.learned)?;
    }
    let mut cfg = ScreenConfig::new(inputs, out.clone());
    cfg.fields.text = a.text_field;
    cfg.fields.source = a.source_field;
    cfg.fields.id = a.id_field;
    cfg.seed = a.seed;
    cfg.shard = a.shard.as_deref().map(parse_shard).transpose()?;
    cfg.threads = a.threads;
    cfg.manual_sample = a.sample;
    cfg.min_severity = parse_severity(&a.min_severity)?;
    cfg.user_side = a.user_side;
    if a.semantic {
        cfg.tiers = tutela_detect::Tiers::ALL;
        fingerprint.push("tiers=all".into());
    }
    cfg.remove_pii = !a.keep_pii;
    cfg.progress = !a.no_progress;
    cfg.rules_fingerprint = fingerprint.join(",");
    let report = screen::run(&cfg, &det)?;
    print_report(&report, a.json, &out, Some(&pack_names))?;
    if cfg.shard.is_some() {
        eprintln!(
            "tutela: shard run; the 5 % rule and the gates are decided by `tutela screen merge`"
        );
        return Ok(Outcome::Clean);
    }
    Ok(if report.failed() {
        Outcome::Findings
    } else {
        Outcome::Clean
    })
}

/// What a screening run checked, from its settings: the lines of the summary that say which
/// categories a pass covers, and the warning when no operator pack was loaded. `packs` names
/// the operator packs and their categories (`None` for a merge, which knows their files only).
fn checked(settings: &BTreeMap<String, String>, packs: Option<&[String]>) -> Vec<String> {
    let get = |k: &str| settings.get(k).map_or("", String::as_str);
    let names = |side: Side| {
        DetectorId::BUILTIN
            .iter()
            .filter(|d| d.side() == Some(side) && !laws::other_law(d))
            .map(DetectorId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rules = get("rules");
    let tiers = if rules.split(',').any(|f| f == "tiers=all") {
        "lexical, n-gram and encoder tiers"
    } else {
        "lexical tier"
    };
    let pack_files: Vec<&str> = rules
        .split(',')
        .filter(|f| !f.is_empty() && *f != "tiers=all")
        .map(|f| f.split_once('#').map_or(f, |(name, _)| name))
        .collect();
    let severity = match get("min_severity") {
        "" => "medium",
        s => s,
    };
    let mut lines = vec![format!(
        "checked ({tiers}, violations from {severity} severity up): the built-in conversational \
         detectors on the text as a reply ({})",
        names(Side::Assistant)
    )];
    lines.push(format!(
        "  content other laws name, not TC260-003 risks (documents removed, outside the 5 % rule \
         and the 9.2 gates): {}",
        other_laws()
    ));
    if get("sides").contains("user") {
        lines.push(format!(
            "  user-side detectors, counted as tags, never violations: {}",
            names(Side::User)
        ));
    }
    let pii: Vec<&str> = PiiKind::ALL.iter().map(|k| k.as_str()).collect();
    lines.push(format!(
        "  personal information ({}), {}",
        pii.join(", "),
        if get("pii") == "count" {
            "counted, documents kept"
        } else {
            "documents removed"
        }
    ));
    let no_pack = pack_files.is_empty();
    lines.push(match (packs, no_pack) {
        (_, true) => "  operator rule packs: none".to_owned(),
        (Some(p), false) if !p.is_empty() => format!("  operator rule packs: {}", p.join("; ")),
        _ => format!("  operator rule packs: {}", pack_files.join(", ")),
    });
    lines.push(
        "a pass (a source accepted, the technical check passed) means no violation of these \
         categories; nothing else was checked"
            .to_owned(),
    );
    if no_pack {
        lines.push(
            "warning: no operator rule pack, so TC260-003 Appendix A's content risks (A.1-A.3, \
             A.5, and A.4 beyond self-harm and personal information) were not checked; tutela \
             ships no such lists: load your own with --rules FILE"
                .to_owned(),
        );
    } else {
        lines.push(
            "note: whether the operator packs cover TC260-003 Appendix A's content risks is for \
             the operator to confirm; only their categories above were checked"
                .to_owned(),
        );
    }
    lines
}

/// The detectors of [`laws::OTHER_LAWS`], each with the jurisdictions whose built-in profiles
/// name it: `claims_therapist (us-ct, us-ga, ...)`.
fn other_laws() -> String {
    let registry = tutela_profile::Registry::builtin().ok();
    laws::OTHER_LAWS
        .iter()
        .map(|d| {
            let mut by: Vec<&str> = registry
                .iter()
                .flat_map(|r| r.profiles())
                .filter(|p| {
                    p.is_current()
                        && p.obligations()
                            .iter()
                            .any(|o| o.rules.iter().any(|r| r.on().contains(d)))
                })
                .map(|p| p.jurisdiction())
                .collect();
            by.sort_unstable();
            by.dedup();
            format!("{d} ({})", by.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn print_report(
    r: &Report,
    json: bool,
    out: &std::path::Path,
    packs: Option<&[String]>,
) -> Result<()> {
    let merged = packs.is_none();
    let t = &r.totals;
    let checked = checked(&r.settings, packs);
    for w in checked.iter().filter(|l| l.starts_with("warning:")) {
        eprintln!("tutela: {w}");
    }
    if t.malformed > 0 {
        let where_ = if merged {
            "each shard's malformed.jsonl".to_owned()
        } else {
            out.join("malformed.jsonl").display().to_string()
        };
        eprintln!(
            "tutela: {} malformed lines (all listed in {where_}):",
            t.malformed
        );
        for m in t.malformed_examples.iter().take(5) {
            eprintln!("  {}:{}: {}", m.file, m.line, m.error);
        }
    }
    if json {
        let mut lean = r.clone();
        lean.totals.sample.clear();
        lean.settings.insert("checked".into(), checked.join("\n"));
        println!("{}", serde_json::to_string_pretty(&lean)?);
        return Ok(());
    }
    // Said only where there is some, so a run without such content prints as before.
    let other = if t.other_laws > 0 {
        format!(", {} with content other laws name", t.other_laws)
    } else {
        String::new()
    };
    println!(
        "{} documents from {} files: {} kept, {} removed ({} with violations{other}, {} with personal information); {} malformed, {} blank lines",
        t.docs, t.files, t.kept, t.removed, t.violations, t.pii_docs, t.malformed, t.blank
    );
    for line in &checked {
        println!("{line}");
    }
    println!(
        "{:<32} {:>10} {:>10} {:>9} {:>19}  verdict",
        "source", "documents", "violations", "rate", "95 % CI"
    );
    for s in &r.sources {
        println!(
            "{:<32} {:>10} {:>10} {:>9} {:>9}–{:<9}  {}",
            s.source,
            s.stats.docs,
            s.stats.violations,
            pct(s.violation_rate),
            pct(s.ci95.0),
            pct(s.ci95.1),
            if s.rejected {
                "REJECTED (> 5 %, TC260-003 5.1)"
            } else {
                "accepted"
            }
        );
    }
    let g = &r.technical;
    println!(
        "technical check (TC260-003 9.2 b), all {} documents): pass rate {} [{}–{}], needs ≥ 98 %: {}",
        g.n,
        pct(g.rate),
        pct(g.ci95.0),
        pct(g.ci95.1),
        g.verdict.label()
    );
    println!(
        "manual sample (TC260-003 9.2 a)): {} items in {}; score it with `tutela screen review` once filled in",
        t.sample.len(),
        out.join("review.csv").display()
    );
    println!(
        "report: {} and {}",
        out.join("summary.html").display(),
        out.join("summary.json").display()
    );
    Ok(())
}

fn review(file: PathBuf, json: bool) -> Result<Outcome> {
    let s = tutela_screen::review::score(&file)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "{} rows: {} judged ({} pass, {} fail), {} not judged yet",
            s.rows, s.judged, s.passed, s.failed, s.unjudged
        );
        println!(
            "manual sampling (TC260-003 9.2 a)): pass rate {} [{}–{}] on {} judged, needs ≥ 4,000 at ≥ 96 %: {}",
            pct(s.gate.rate),
            pct(s.gate.ci95.0),
            pct(s.gate.ci95.1),
            s.gate.n,
            s.gate.verdict.label()
        );
        if s.kept_judged > 0 {
            println!(
                "of the judged items the screen kept: {} of {} pass",
                s.kept_passed, s.kept_judged
            );
        }
    }
    Ok(if s.gate.verdict == Verdict::Pass {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}
