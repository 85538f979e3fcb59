//! `tutela check [--side user|assistant] [--lang auto|en|zh] [--json] TEXT`: runs the
//! detectors on one text and prints the findings; exits 1 when there are any.

use anyhow::{Context, Result};
use tutela_detect::{Detectors, Lang, RulePack};
use tutela_types::Side;

use crate::Outcome;

/// Which side wrote the text.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SideArg {
    /// The person talking to the service.
    User,
    /// The companion's reply.
    Assistant,
}

/// Which language's rules to run.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LangArg {
    /// All of them (mixed text is common).
    Auto,
    /// English.
    En,
    /// Chinese.
    Zh,
}

/// Arguments of `tutela check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Whose text it is.
    #[arg(long, value_enum, default_value = "user")]
    pub side: SideArg,
    /// Which language's rules run.
    #[arg(long, value_enum, default_value = "auto")]
    pub lang: LangArg,
    /// Print JSON (`{"side": ..., "findings": [...]}`).
    #[arg(long)]
    pub json: bool,
    /// The preceding user turn (assistant side), e.g. a goodbye.
    #[arg(long)]
    pub context: Option<String>,
    /// Operator rule packs (TOML) to load besides the built-in detectors.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub learned: crate::tiers::LearnedArgs,
    /// Judge tier: base URL of an OpenAI-compatible API (`.../v1`); unsure lexical findings
    /// are confirmed or dropped by the model. The API key is read from `TUTELA_JUDGE_API_KEY`.
    #[cfg(feature = "judge")]
    #[arg(long, value_name = "URL")]
    pub judge_url: Option<String>,
    /// Judge tier: the model to ask.
    #[cfg(feature = "judge")]
    #[arg(long, value_name = "MODEL", default_value = "gpt-4o-mini")]
    pub judge_model: String,
    /// The text to check.
    pub text: String,
}

/// Loads rule packs, reporting every error of every file.
pub fn load_packs(paths: &[std::path::PathBuf]) -> Result<Detectors> {
    if paths.is_empty() {
        return Ok(Detectors::try_builtin()?);
    }
    let mut packs = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        match RulePack::parse(&p.display().to_string(), &text) {
            Ok(pack) => packs.push(pack),
            Err(e) => errors.extend(e.0),
        }
    }
    if !errors.is_empty() {
        let msg: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::bail!("invalid rule packs:\n{}", msg.join("\n"));
    }
    Ok(Detectors::with_rule_packs(packs)?)
}

/// Runs `tutela check`.
pub fn run(args: Args) -> Result<Outcome> {
    let (det, _) = crate::tiers::load(&args.rules, &args.learned)?;
    let side = match args.side {
        SideArg::User => Side::User,
        SideArg::Assistant => Side::Assistant,
    };
    let lang = match args.lang {
        LangArg::Auto => Lang::Auto,
        LangArg::En => Lang::En,
        LangArg::Zh => Lang::Zh,
    };
    let findings = det.scan_lang(side, lang, &args.text, args.context.as_deref());
    #[cfg(feature = "judge")]
    let findings = match &args.judge_url {
        Some(url) => judge(
            url,
            &args.judge_model,
            &args.text,
            args.context.as_deref(),
            findings,
        )?,
        None => findings,
    };
    let mut out = std::io::stdout().lock();
    use std::io::Write as _;
    if args.json {
        let v = serde_json::json!({ "side": side, "findings": findings });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else if findings.is_empty() {
        writeln!(out, "no findings")?;
    } else {
        writeln!(
            out,
            "{:<22} {:<8} {:<9} {:>5}  {:<40} spans",
            "detector", "tier", "severity", "score", "rule"
        )?;
        for f in &findings {
            let spans: Vec<String> = f
                .spans
                .iter()
                .map(|s| {
                    format!(
                        "{}..{} {:?}",
                        s.start,
                        s.end,
                        args.text.get(s.start..s.end).unwrap_or("")
                    )
                })
                .collect();
            let sev = serde_json::to_value(f.severity)?;
            let tier = serde_json::to_value(f.tier)?;
            writeln!(
                out,
                "{:<22} {:<8} {:<9} {:>5.2}  {:<40} {}",
                f.detector.as_str(),
                tier.as_str().unwrap_or(""),
                sev.as_str().unwrap_or(""),
                f.score,
                f.rule.as_deref().unwrap_or(""),
                spans.join(", ")
            )?;
            if let Some(t) = f.threshold {
                writeln!(
                    out,
                    "{:<22} passed its threshold {t:.3}; nearest labelled examples:",
                    ""
                )?;
                let examples = det.ngram_model(side).map(|m| &m.meta.examples);
                for id in &f.examples {
                    let text = examples
                        .and_then(|ex| ex.iter().find(|e| &e.id == id))
                        .map(|e| e.text.chars().take(100).collect::<String>())
                        .unwrap_or_default();
                    writeln!(out, "{:<24} {id}: {text}", "")?;
                }
            }
        }
    }
    Ok(if findings.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

/// Sends the unsure findings to the judge tier.
#[cfg(feature = "judge")]
fn judge(
    url: &str,
    model: &str,
    text: &str,
    context: Option<&str>,
    findings: Vec<tutela_types::Finding>,
) -> Result<Vec<tutela_types::Finding>> {
    let mut cfg = tutela_judge::JudgeConfig::new(url, model);
    cfg.api_key = std::env::var("TUTELA_JUDGE_API_KEY").ok();
    let judge = tutela_judge::Judge::new(cfg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the judge runtime")?;
    Ok(rt.block_on(judge.review(text, context, findings)))
}
