//! The evaluation harness behind `tutela eval`: reads labelled items (the JSONL format of
//! `shared/eval-dev/README.md`), predicts a label per item with the detectors, and scores
//! each task one-vs-rest per positive label, per language, with the false-positive rate on
//! `hard:` items. [`Report`] serialises to exactly the README's `--json` shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tutela_types::{DetectorId, Side};

use crate::Detectors;

/// One labelled item.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Item {
    /// Unique id.
    pub id: String,
    /// `en`, `zh` or `mixed`.
    pub lang: String,
    /// `crisis`, `exit`, `minor`, `dependence`, `distress`, `property_loss`,
    /// `eating_disorder`, `violence_to_others`, `chat` (user side); `reply`, `claims_therapist`,
    /// `gamification`, `attachment_praise`, `come_back_prompt` (assistant side, with `context`).
    pub task: String,
    /// A user message, or for an assistant-side task the bot's reply.
    pub text: String,
    /// Gold label.
    pub label: String,
    /// Optional note; `hard:` marks a hard negative.
    #[serde(default)]
    pub note: Option<String>,
    /// Assistant-side tasks only: the user turn being answered.
    #[serde(default)]
    pub context: Option<String>,
    /// Items that are variants of one message share a group (the validation split is drawn
    /// by group, so variants never straddle it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Item {
    /// Whether the note marks a hard negative.
    pub fn is_hard(&self) -> bool {
        self.note
            .as_deref()
            .is_some_and(|n| n.trim_start().starts_with("hard:"))
    }
}

/// A line of the input that is not a valid item.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses JSONL (blank lines are skipped); reports the first bad line.
pub fn parse_jsonl(text: &str) -> Result<Vec<Item>, ParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| ParseError {
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Labels that are not positives.
pub fn is_negative(label: &str) -> bool {
    label == "none" || label == "ok"
}

/// Reply labels in priority order (the first that fired is the prediction).
const REPLY_PRIORITY: [DetectorId; 7] = [
    DetectorId::EncouragesSelfHarm,
    DetectorId::PosesAsRelative,
    DetectorId::ManipulativeExit,
    DetectorId::DeniesAi,
    DetectorId::Sexual,
    DetectorId::SolicitsSecrets,
    DetectorId::Isolating,
];

/// The predicted label for one item, with the detectors' own tiers.
pub fn predict(det: &Detectors, item: &Item) -> String {
    predict_tiers(det, item, det.tiers())
}

/// The predicted label for one item with the given tiers.
pub fn predict_tiers(det: &Detectors, item: &Item, tiers: crate::Tiers) -> String {
    let fired = |side: Side, ctx: Option<&str>| -> Vec<DetectorId> {
        det.scan_tiers(side, &item.text, ctx, tiers)
            .into_iter()
            .map(|f| f.detector)
            .collect()
    };
    let label: &str = match item.task.as_str() {
        "crisis" => {
            let f = fired(Side::User, None);
            if f.contains(&DetectorId::Crisis) {
                "crisis"
            } else if f.contains(&DetectorId::ThirdParty) {
                "third_party"
            } else {
                "none"
            }
        }
        "exit" | "minor" | "dependence" | "distress" | "property_loss" | "eating_disorder"
        | "violence_to_others" => {
            let Ok(d) = item.task.parse::<DetectorId>();
            if fired(Side::User, None).contains(&d) {
                item.task.as_str()
            } else {
                "none"
            }
        }
        "reply" => {
            let f = fired(Side::Assistant, item.context.as_deref());
            REPLY_PRIORITY
                .iter()
                .find(|d| f.contains(d))
                .map_or("ok", |d| d.as_str())
        }
        // The assistant-side detectors of the 2027 laws are tasks of their own: the label is
        // the detector or `ok`, whatever else the reply shows.
        "claims_therapist" | "gamification" | "attachment_praise" | "come_back_prompt" => {
            let Ok(d) = item.task.parse::<DetectorId>();
            if fired(Side::Assistant, item.context.as_deref()).contains(&d) {
                item.task.as_str()
            } else {
                "ok"
            }
        }
        _ => "none",
    };
    label.to_owned()
}

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelScore {
    /// TP / (TP + FP).
    pub precision: f64,
    /// TP / (TP + FN).
    pub recall: f64,
    /// Harmonic mean.
    pub f1: f64,
    /// Gold positives.
    pub n: usize,
}

/// Scores of one language within a task.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LangReport {
    /// Items.
    pub n: usize,
    /// Macro precision over positive labels.
    pub precision: f64,
    /// Macro recall.
    pub recall: f64,
    /// Macro F1.
    pub f1: f64,
    /// Per positive label.
    pub labels: BTreeMap<String, LabelScore>,
}

/// Scores of one task.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskReport {
    /// Items.
    pub n: usize,
    /// Macro precision over positive labels.
    pub precision: f64,
    /// Macro recall.
    pub recall: f64,
    /// Macro F1.
    pub f1: f64,
    /// Per positive label.
    pub labels: BTreeMap<String, LabelScore>,
    /// The same per language.
    pub by_lang: BTreeMap<String, LangReport>,
    /// Share of hard negatives (`hard:` items whose gold label is `none`/`ok`) predicted
    /// positive for any label.
    pub hard_negative_fpr: f64,
}

/// What `tutela eval --json` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Per task.
    pub tasks: BTreeMap<String, TaskReport>,
}

/// Everything the readable table shows beyond the report.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The report.
    pub report: Report,
    /// Per task: (gold, predicted) → count.
    pub confusion: BTreeMap<String, BTreeMap<(String, String), usize>>,
    /// Per task: (hard items, hard items predicted positive).
    pub hard: BTreeMap<String, (usize, usize)>,
    /// Items predicted wrong: (id, task, gold, predicted).
    pub misses: Vec<(String, String, String, String)>,
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn label_scores(items: &[(&Item, &str)]) -> (BTreeMap<String, LabelScore>, f64, f64, f64) {
    let mut labels: Vec<&str> = items
        .iter()
        .map(|(i, _)| i.label.as_str())
        .filter(|l| !is_negative(l))
        .collect();
    labels.sort_unstable();
    labels.dedup();
    let mut out = BTreeMap::new();
    let (mut sp, mut sr, mut sf) = (0.0, 0.0, 0.0);
    for l in &labels {
        let (mut tp, mut fp, mut fnn) = (0usize, 0usize, 0usize);
        for (item, pred) in items {
            let gold = item.label == *l;
            let p = *pred == *l;
            match (gold, p) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fnn += 1,
                _ => {}
            }
        }
        let p = if tp + fp > 0 {
            tp as f64 / (tp + fp) as f64
        } else {
            0.0
        };
        let r = if tp + fnn > 0 {
            tp as f64 / (tp + fnn) as f64
        } else {
            0.0
        };
        let f = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        sp += p;
        sr += r;
        sf += f;
        out.insert(
            (*l).to_owned(),
            LabelScore {
                precision: round(p),
                recall: round(r),
                f1: round(f),
                n: tp + fnn,
            },
        );
    }
    let k = labels.len().max(1) as f64;
    (out, round(sp / k), round(sr / k), round(sf / k))
}

/// Scores predictions (one per item, same order).
pub fn score(items: &[Item], preds: &[String]) -> Scored {
    let mut tasks = BTreeMap::new();
    let mut confusion = BTreeMap::new();
    let mut hard = BTreeMap::new();
    let mut misses = Vec::new();
    let mut names: Vec<&str> = items.iter().map(|i| i.task.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for task in names {
        let pairs: Vec<(&Item, &str)> = items
            .iter()
            .zip(preds)
            .filter(|(i, _)| i.task == task)
            .map(|(i, p)| (i, p.as_str()))
            .collect();
        let (labels, precision, recall, f1) = label_scores(&pairs);
        let mut langs: Vec<&str> = pairs.iter().map(|(i, _)| i.lang.as_str()).collect();
        langs.sort_unstable();
        langs.dedup();
        let mut by_lang = BTreeMap::new();
        for lang in langs {
            let sub: Vec<(&Item, &str)> = pairs
                .iter()
                .copied()
                .filter(|(i, _)| i.lang == lang)
                .collect();
            let (labels, precision, recall, f1) = label_scores(&sub);
            by_lang.insert(
                lang.to_owned(),
                LangReport {
                    n: sub.len(),
                    precision,
                    recall,
                    f1,
                    labels,
                },
            );
        }
        let hard_items: Vec<&(&Item, &str)> = pairs
            .iter()
            .filter(|(i, _)| i.is_hard() && is_negative(&i.label))
            .collect();
        let hard_fp = hard_items.iter().filter(|(_, p)| !is_negative(p)).count();
        let fpr = if hard_items.is_empty() {
            0.0
        } else {
            hard_fp as f64 / hard_items.len() as f64
        };
        let mut conf: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (i, p) in &pairs {
            *conf.entry((i.label.clone(), (*p).to_owned())).or_default() += 1;
            if i.label != *p {
                misses.push((
                    i.id.clone(),
                    task.to_owned(),
                    i.label.clone(),
                    (*p).to_owned(),
                ));
            }
        }
        confusion.insert(task.to_owned(), conf);
        hard.insert(task.to_owned(), (hard_items.len(), hard_fp));
        tasks.insert(
            task.to_owned(),
            TaskReport {
                n: pairs.len(),
                precision,
                recall,
                f1,
                labels,
                by_lang,
                hard_negative_fpr: round(fpr),
            },
        );
    }
    Scored {
        report: Report { tasks },
        confusion,
        hard,
        misses,
    }
}

/// Predicts and scores every item.
pub fn evaluate(det: &Detectors, items: &[Item]) -> Scored {
    evaluate_tiers(det, items, det.tiers())
}

/// Predicts and scores every item with the given tiers.
pub fn evaluate_tiers(det: &Detectors, items: &[Item], tiers: crate::Tiers) -> Scored {
    let preds: Vec<String> = items.iter().map(|i| predict_tiers(det, i, tiers)).collect();
    score(items, &preds)
}

/// Over-blocking of one task: hard negatives and how many of them were flagged.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OverBlocking {
    /// Hard negatives (`hard:` items with a negative gold label).
    pub hard_negatives: usize,
    /// Of those, predicted positive.
    pub flagged: usize,
    /// Negatives of any kind.
    pub negatives: usize,
    /// Of those, predicted positive.
    pub negatives_flagged: usize,
}

/// One tier's (or the fusion's) figures: the README's report and over-blocking per task.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TierReport {
    /// The tiers that ran (`lexical`, `ngram`, `lexical,ngram`, ...).
    pub tiers: String,
    /// Per task, as in [`Report`].
    pub tasks: BTreeMap<String, TaskReport>,
    /// Per task.
    pub over_blocking: BTreeMap<String, OverBlocking>,
}

impl TierReport {
    /// The figures of a scored run.
    pub fn new(tiers: crate::Tiers, items: &[Item], s: &Scored, preds: &[String]) -> Self {
        let mut over_blocking: BTreeMap<String, OverBlocking> = BTreeMap::new();
        for (i, p) in items.iter().zip(preds) {
            if !is_negative(&i.label) {
                continue;
            }
            let o = over_blocking.entry(i.task.clone()).or_insert(OverBlocking {
                hard_negatives: 0,
                flagged: 0,
                negatives: 0,
                negatives_flagged: 0,
            });
            let flagged = !is_negative(p);
            o.negatives += 1;
            o.negatives_flagged += usize::from(flagged);
            if i.is_hard() {
                o.hard_negatives += 1;
                o.flagged += usize::from(flagged);
            }
        }
        Self {
            tiers: tiers.names(),
            tasks: s.report.tasks.clone(),
            over_blocking,
        }
    }
}

/// Scores `items` with `tiers`, returning the scored run and the per-tier figures.
pub fn evaluate_tier_report(
    det: &Detectors,
    items: &[Item],
    tiers: crate::Tiers,
) -> (Scored, TierReport) {
    let preds: Vec<String> = items.iter().map(|i| predict_tiers(det, i, tiers)).collect();
    let s = score(items, &preds);
    let r = TierReport::new(tiers, items, &s, &preds);
    (s, r)
}

/// The readable table: per task, per label, per language, confusion and hard negatives.
pub fn render_table(s: &Scored) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<12} {:<22} {:>5} {:>6} {:>6} {:>6}",
        "task", "label", "n", "P", "R", "F1"
    );
    for (task, t) in &s.report.tasks {
        let _ = writeln!(o, "{}", "-".repeat(62));
        for (l, sc) in &t.labels {
            let _ = writeln!(
                o,
                "{:<12} {:<22} {:>5} {:>6.2} {:>6.2} {:>6.2}",
                task, l, sc.n, sc.precision, sc.recall, sc.f1
            );
        }
        let _ = writeln!(
            o,
            "{:<12} {:<22} {:>5} {:>6.2} {:>6.2} {:>6.2}",
            task, "(macro)", t.n, t.precision, t.recall, t.f1
        );
        for (lang, lr) in &t.by_lang {
            for (l, sc) in &lr.labels {
                let _ = writeln!(
                    o,
                    "{:<12} {:<22} {:>5} {:>6.2} {:>6.2} {:>6.2}",
                    format!("  {lang}"),
                    l,
                    sc.n,
                    sc.precision,
                    sc.recall,
                    sc.f1
                );
            }
        }
        let (nh, fh) = s.hard.get(task).copied().unwrap_or((0, 0));
        let _ = writeln!(
            o,
            "{:<12} hard negatives: {fh}/{nh} flagged (FPR {:.2})",
            task, t.hard_negative_fpr
        );
        if let Some(conf) = s.confusion.get(task) {
            let mut labels: Vec<&String> = conf.keys().flat_map(|(g, p)| [g, p]).collect();
            labels.sort();
            labels.dedup();
            let _ = write!(
                o,
                "{:<12} confusion (rows gold, columns predicted):\n{:<14}",
                task, ""
            );
            for l in &labels {
                let _ = write!(o, " {:>12}", trunc(l));
            }
            o.push('\n');
            for g in &labels {
                let _ = write!(o, "{:<14}", format!("  {}", trunc(g)));
                for p in &labels {
                    let c = conf
                        .get(&((*g).clone(), (*p).clone()))
                        .copied()
                        .unwrap_or(0);
                    let _ = write!(o, " {c:>12}");
                }
                o.push('\n');
            }
        }
    }
    o
}

fn trunc(s: &str) -> String {
    s.chars().take(12).collect()
}
