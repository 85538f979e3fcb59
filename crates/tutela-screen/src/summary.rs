//! The mergeable result of a screening run ([`Accum`]: counts per source and reason, the
//! bottom-k manual sample, malformed-line examples) and the report built from it
//! ([`Report`]: the per-source table with the 5 % rule, the TC260 gates, JSON and HTML).
//!
//! Everything in an [`Accum`] is a sum or a bottom-k by hash, so the merge of per-shard
//! accumulators equals the accumulator of one run over all shards, in any order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::{self, GateResult};

/// Counts for one source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStats {
    /// Documents read (well-formed).
    pub docs: u64,
    /// Bytes of those documents' text.
    pub text_bytes: u64,
    /// Documents with at least one content violation (detectors, rule packs).
    pub violations: u64,
    /// Documents with content that laws other than TC260-003 name ([`crate::laws`]): removed,
    /// not counted as violations.
    #[serde(default)]
    pub other_laws: u64,
    /// Documents with personal information.
    pub pii_docs: u64,
    /// Documents removed (violation, content other laws name, or personal information).
    pub removed: u64,
    /// Documents per reason (`detector:sexual`, `rules:gambling`, `pii:email`).
    pub by_reason: BTreeMap<String, u64>,
}

impl SourceStats {
    fn add(&mut self, o: &SourceStats) {
        self.docs += o.docs;
        self.text_bytes += o.text_bytes;
        self.violations += o.violations;
        self.other_laws += o.other_laws;
        self.pii_docs += o.pii_docs;
        self.removed += o.removed;
        add_map(&mut self.by_reason, &o.by_reason);
    }
}

fn add_map(a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

/// One item of the manual-review sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleItem {
    /// The seeded hash that ranks the item (smallest `k` are drawn).
    pub hash: u64,
    /// The document id, or `file:line` when the corpus has none.
    pub key: String,
    /// The source.
    pub source: String,
    /// The input file.
    pub file: String,
    /// The line (or Parquet row).
    pub line: u64,
    /// What the screen decided: `kept` or `removed`.
    pub screen: String,
    /// The reasons, when removed.
    pub reasons: Vec<String>,
    /// The text (cut at 20,000 bytes).
    pub text: String,
}

/// The manual-review sample while a run goes on: the `k` items of smallest
/// `(hash, key, source)`, the first of equal ones kept, as [`Accum::merge`] keeps them, but
/// in a map, so that the few items each batch adds cost a few steps rather than a pass over
/// the whole sample.
#[derive(Debug)]
pub(crate) struct SampleSet {
    k: usize,
    items: BTreeMap<(u64, String, String), SampleItem>,
}

impl SampleSet {
    pub(crate) fn new(k: usize, items: Vec<SampleItem>) -> Self {
        let mut set = Self {
            k,
            items: BTreeMap::new(),
        };
        set.add(items);
        set
    }

    pub(crate) fn add(&mut self, items: Vec<SampleItem>) {
        for item in items {
            let key = (item.hash, item.key.clone(), item.source.clone());
            self.items.entry(key).or_insert(item);
        }
        while self.items.len() > self.k {
            self.items.pop_last();
        }
    }

    /// As [`Accum::sample_threshold`].
    pub(crate) fn threshold(&self) -> u64 {
        match self.items.last_key_value() {
            Some(((hash, _, _), _)) if self.items.len() >= self.k => *hash,
            _ => u64::MAX,
        }
    }

    /// The sample in order, as [`Accum::sample`] holds it.
    pub(crate) fn to_vec(&self) -> Vec<SampleItem> {
        self.items.values().cloned().collect()
    }

    pub(crate) fn into_vec(self) -> Vec<SampleItem> {
        self.items.into_values().collect()
    }
}

/// A line that could not be screened.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Malformed {
    /// Position of the file in the run's input list.
    pub file_index: u64,
    /// The file.
    pub file: String,
    /// 1-based line (or Parquet row).
    pub line: u64,
    /// What is wrong.
    pub error: String,
}

/// How many malformed lines are kept as examples in the summary (all are in
/// `malformed.jsonl`).
pub const MALFORMED_EXAMPLES: usize = 100;

/// The mergeable state of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accum {
    /// Input files finished.
    pub files: u64,
    /// Lines (or rows) read, blank and malformed included.
    pub lines: u64,
    /// Blank lines (skipped, counted).
    pub blank: u64,
    /// Malformed lines (not screened, counted, listed in `malformed.jsonl`).
    pub malformed: u64,
    /// Decompressed input bytes.
    pub raw_bytes: u64,
    /// Well-formed documents.
    pub docs: u64,
    /// Documents kept.
    pub kept: u64,
    /// Documents removed.
    pub removed: u64,
    /// Documents with content violations.
    pub violations: u64,
    /// Documents with content that laws other than TC260-003 name ([`crate::laws`]): removed,
    /// outside the 5 % rule and the 9.2 b) gate.
    #[serde(default)]
    pub other_laws: u64,
    /// Documents with personal information.
    pub pii_docs: u64,
    /// Personal-information hits by kind.
    pub pii_hits: BTreeMap<String, u64>,
    /// User-side signals (tags, not removal reasons): documents per detector.
    pub tags: BTreeMap<String, u64>,
    /// Per source.
    pub sources: BTreeMap<String, SourceStats>,
    /// The manual-review sample so far: the `k` items of smallest hash, sorted by hash.
    pub sample: Vec<SampleItem>,
    /// The first malformed lines by file and line.
    pub malformed_examples: Vec<Malformed>,
}

impl Accum {
    /// Adds another accumulator; `k` is the manual sample size.
    pub fn merge(&mut self, o: Accum, k: usize) {
        self.files += o.files;
        self.lines += o.lines;
        self.blank += o.blank;
        self.malformed += o.malformed;
        self.raw_bytes += o.raw_bytes;
        self.docs += o.docs;
        self.kept += o.kept;
        self.removed += o.removed;
        self.violations += o.violations;
        self.other_laws += o.other_laws;
        self.pii_docs += o.pii_docs;
        add_map(&mut self.pii_hits, &o.pii_hits);
        add_map(&mut self.tags, &o.tags);
        for (s, st) in &o.sources {
            self.sources.entry(s.clone()).or_default().add(st);
        }
        self.sample.extend(o.sample);
        self.sample
            .sort_by(|a, b| (a.hash, &a.key, &a.source).cmp(&(b.hash, &b.key, &b.source)));
        self.sample
            .dedup_by(|a, b| a.hash == b.hash && a.key == b.key && a.source == b.source);
        self.sample.truncate(k);
        self.malformed_examples.extend(o.malformed_examples);
        self.malformed_examples.sort();
        self.malformed_examples.truncate(MALFORMED_EXAMPLES);
    }

    /// The hash an item must be under to enter the sample (`u64::MAX` while not full).
    pub fn sample_threshold(&self, k: usize) -> u64 {
        if self.sample.len() < k {
            u64::MAX
        } else {
            self.sample.last().map_or(u64::MAX, |s| s.hash)
        }
    }
}

/// One row of the per-source table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceRow {
    /// The source.
    pub source: String,
    /// Its counts.
    #[serde(flatten)]
    pub stats: SourceStats,
    /// `violations / docs`.
    pub violation_rate: f64,
    /// 95 % Wilson interval of the violation rate.
    pub ci95: (f64, f64),
    /// Over 5 %: rejected (TC260-003 5.1).
    pub rejected: bool,
}

/// The report of a run (or of merged runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `tutela screen` and the version.
    pub tool: String,
    /// The seed of the samples.
    pub seed: u64,
    /// Manual sample size asked for.
    pub manual_sample_size: usize,
    /// How documents were read and judged (fields, sides, severity, PII policy).
    pub settings: BTreeMap<String, String>,
    /// The totals and samples.
    pub totals: Accum,
    /// Per source, sorted by name.
    pub sources: Vec<SourceRow>,
    /// Sources over 5 %.
    pub rejected_sources: Vec<String>,
    /// TC260-003 9.2 b): every document is checked by the detectors, so the technical sample
    /// is the whole corpus (100 % ≥ 10 %); pass = no content violation, corpus as received.
    pub technical: GateResult,
    /// TC260-003 9.2 a): filled in by `tutela screen review` once a reviewer has judged the
    /// sample; `None` until then.
    pub manual: Option<GateResult>,
}

impl Report {
    /// Builds the report from the totals.
    pub fn build(totals: Accum, seed: u64, k: usize, settings: BTreeMap<String, String>) -> Report {
        let mut rejected_sources = Vec::new();
        let sources = totals
            .sources
            .iter()
            .map(|(name, st)| {
                let rejected = stats::source_rejected(st.violations, st.docs);
                if rejected {
                    rejected_sources.push(name.clone());
                }
                SourceRow {
                    source: name.clone(),
                    stats: st.clone(),
                    violation_rate: if st.docs == 0 {
                        0.0
                    } else {
                        st.violations as f64 / st.docs as f64
                    },
                    ci95: stats::wilson(st.violations, st.docs, stats::Z95),
                    rejected,
                }
            })
            .collect();
        let technical = stats::corpus_technical_gate(totals.docs)
            .apply(totals.docs - totals.violations, totals.docs);
        Report {
            tool: format!("tutela screen {}", env!("CARGO_PKG_VERSION")),
            seed,
            manual_sample_size: k,
            settings,
            totals,
            sources,
            rejected_sources,
            technical,
            manual: None,
        }
    }

    /// Whether the run should exit 1: a rejected source or a failed gate.
    pub fn failed(&self) -> bool {
        !self.rejected_sources.is_empty()
            || self.technical.verdict == stats::Verdict::Fail
            || self
                .manual
                .as_ref()
                .is_some_and(|m| m.verdict == stats::Verdict::Fail)
    }

    /// A self-contained HTML page (no scripts, no external resources).
    pub fn to_html(&self) -> String {
        let mut h = String::with_capacity(16 * 1024);
        let t = &self.totals;
        h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tutela screen report</title><style>");
        h.push_str("body{font:15px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}");
        h.push_str("table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}");
        h.push_str("th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.fail{color:#b00020;font-weight:600}");
        h.push_str(".pass{color:#1b5e20;font-weight:600}.insufficient{color:#8a6d00;font-weight:600}small{color:#666}");
        h.push_str("</style></head><body><h1>Corpus screening report</h1>");
        h.push_str(&format!(
            "<p><small>{} · seed {} · manual sample {}</small></p>",
            esc(&self.tool),
            self.seed,
            self.manual_sample_size
        ));
        h.push_str("<h2>Totals</h2><table>");
        let rows: [(&str, u64); 11] = [
            ("files", t.files),
            ("lines read", t.lines),
            ("documents", t.docs),
            ("kept", t.kept),
            ("removed", t.removed),
            ("with content violations", t.violations),
            (
                "with content other laws name (not TC260-003 risks: claims_therapist, gamification, attachment_praise, come_back_prompt)",
                t.other_laws,
            ),
            ("with personal information", t.pii_docs),
            ("malformed lines (see malformed.jsonl)", t.malformed),
            ("blank lines", t.blank),
            ("input bytes (decompressed)", t.raw_bytes),
        ];
        for (k, v) in rows {
            h.push_str(&format!("<tr><td>{k}</td><td>{v}</td></tr>"));
        }
        h.push_str("</table>");
        h.push_str("<h2>Sources (TC260-003 5.1: over 5 % violating is rejected)</h2><table><tr><th>source</th><th>documents</th><th>violations</th><th>rate</th><th>95 % CI</th><th>personal info</th><th>removed</th><th>verdict</th></tr>");
        for s in &self.sources {
            let verdict = if s.rejected {
                "<span class=\"fail\">rejected</span>"
            } else {
                "<span class=\"pass\">accepted</span>"
            };
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} – {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.source),
                s.stats.docs,
                s.stats.violations,
                pct(s.violation_rate),
                pct(s.ci95.0),
                pct(s.ci95.1),
                s.stats.pii_docs,
                s.stats.removed,
                verdict
            ));
        }
        h.push_str("</table><h2>Reasons</h2><table><tr><th>source</th><th>reason</th><th>documents</th></tr>");
        for s in &self.sources {
            for (r, n) in &s.stats.by_reason {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{n}</td></tr>",
                    esc(&s.source),
                    esc(r)
                ));
            }
        }
        h.push_str("</table><h2>TC260-003 9.2 gates</h2><table><tr><th>gate</th><th>clause</th><th>items</th><th>minimum</th><th>rate</th><th>95 % CI</th><th>threshold</th><th>verdict</th></tr>");
        for g in std::iter::once(&self.technical).chain(self.manual.iter()) {
            h.push_str(&gate_row(g));
        }
        if self.manual.is_none() {
            h.push_str(&format!(
                "<tr><td>corpus_manual</td><td>TC260-003 9.2 a)</td><td colspan=\"6\">{} items drawn into review.csv; run <code>tutela screen review</code> once a reviewer has filled it in (needs ≥ 4,000 at ≥ 96 %).</td></tr>",
                t.sample.len()
            ));
        }
        h.push_str("</table><p><small>The technical check runs on every document (100 % of the corpus as received); pass means no content violation. Personal information is removed but does not count towards the 5 % rule. Verdicts use the point estimate; the Wilson interval is shown beside it.</small></p>");
        if !t.malformed_examples.is_empty() {
            h.push_str("<h2>Malformed lines (first 100)</h2><table><tr><th>file</th><th>line</th><th>error</th></tr>");
            for m in &t.malformed_examples {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&m.file),
                    m.line,
                    esc(&m.error)
                ));
            }
            h.push_str("</table>");
        }
        h.push_str("</body></html>\n");
        h
    }
}

/// One gate as an HTML table row.
pub fn gate_row(g: &GateResult) -> String {
    let class = match g.verdict {
        stats::Verdict::Pass => "pass",
        stats::Verdict::Fail => "fail",
        stats::Verdict::InsufficientSample => "insufficient",
    };
    let op = match g.gate.direction {
        stats::Direction::AtLeast => "≥",
        stats::Direction::AtMost => "≤",
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} – {}</td><td>{} {}</td><td class=\"{class}\">{}</td></tr>",
        esc(&g.gate.id),
        esc(&g.gate.clause),
        g.n,
        g.gate.min_items,
        pct(g.rate),
        pct(g.ci95.0),
        pct(g.ci95.1),
        op,
        pct(g.gate.threshold),
        g.verdict.label()
    )
}

/// A rate as a percentage with two decimals.
pub fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(hash: u64, key: u8, source: u8, line: u64) -> SampleItem {
        SampleItem {
            hash,
            key: format!("k{key}"),
            source: format!("s{source}"),
            file: "f".into(),
            line,
            screen: "kept".into(),
            reasons: Vec::new(),
            text: String::new(),
        }
    }

    proptest! {
        /// The writer's sample set keeps what merging accumulators keeps, duplicates included.
        #[test]
        fn sample_set_keeps_what_merge_keeps(
            batches in prop::collection::vec(
                prop::collection::vec((0u64..40, 0u8..4, 0u8..3), 0..12), 0..12),
            k in 0usize..20,
        ) {
            let mut acc = Accum::default();
            let mut set = SampleSet::new(k, Vec::new());
            let mut line = 0;
            for batch in batches {
                let items: Vec<SampleItem> = batch
                    .into_iter()
                    .map(|(h, key, source)| {
                        line += 1;
                        item(h, key, source, line)
                    })
                    .collect();
                set.add(items.clone());
                acc.merge(Accum { sample: items, ..Accum::default() }, k);
                prop_assert_eq!(set.threshold(), acc.sample_threshold(k));
            }
            prop_assert_eq!(set.into_vec(), acc.sample);
        }
    }
}
