//! Development helper (issue #13 item 10): how much of a harmful reply reaches the person in a
//! stream before the first finding stops it, where the whole-reply path replaces all of it.
//!
//! Each reply of `data/train/*.jsonl` with task `reply` and a label other than `ok` is scanned
//! whole (with its `context` user turn), then fed to the assistant-side stream in chunks of
//! 5 characters as the relay feeds it (`crates/tutela-gateway/src/chat/relay.rs`), and, for
//! each release rule below, the text released before the chunk that brings the first finding
//! is counted. The `ok` replies give the time to first text of each rule at the pace of
//! `load/ttft-pace.sh` (a chunk every 25 ms; the model's pace only, no gateway time).
//!
//! Release rules: `lookahead-N` lets a sentence leave once N more sentences are settled
//! (`lookahead-0` is the relay's rule; `lookahead-2` waits for every window that includes the
//! sentence); `early` is `lookahead-0` with the early release of a prefix of the first
//! sentence (`streaming.early_release`, the relay's default since 2026-12-07:
//! `tutela_detect::Stream::releasable`); `holdback-N` is `streaming.hold_back_chars = N` on
//! top of `lookahead-0`; `whole` holds everything to the end.
//!
//! ```sh
//! cargo run --release -p tutela-cli --example stream_leak -- data/train > per-reply.jsonl
//! TUTELA_MODEL_DIR=DIR cargo run --release -p tutela-cli --example stream_leak -- --encoder data/train
//! [TUTELA_MODEL_DIR=DIR] cargo run --release -p tutela-cli --example stream_leak -- [--encoder] --ttft "REPLY TEXT"
//! ```
//!
//! `--learned DIR` uses the assistant side's models of a folder written by `tutela train`
//! instead of the built-in ones.
//!
//! The summary goes to stderr, one JSON line per harmful reply found to stdout.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tutela_detect::Detectors;
use tutela_detect::learned::encoder::Embedder;
use tutela_detect::segment::next_boundary;
use tutela_types::{Finding, Side};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Characters per upstream chunk, and milliseconds between chunks (`load/ttft-pace.sh`).
const CHUNK: usize = 5;
const PACE_MS: usize = 25;

#[derive(Debug)]
struct UseEmbedder(tutela_encoder::Encoder);

impl Embedder for UseEmbedder {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn embed(&self, text: &str) -> Vec<f32> {
        self.0.embed(text)
    }
    fn id(&self) -> String {
        let i = self.0.info();
        format!("{}@{}", i.name, i.source_sha256)
    }
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    LookAhead(usize),
    Early,
    HoldBack(usize),
    Whole,
}

const RULES: [Rule; 7] = [
    Rule::LookAhead(0),
    Rule::Early,
    Rule::LookAhead(1),
    Rule::LookAhead(2),
    Rule::HoldBack(64),
    Rule::HoldBack(128),
    Rule::Whole,
];

impl Rule {
    fn name(self) -> String {
        match self {
            Rule::LookAhead(n) => format!("lookahead-{n}"),
            Rule::Early => "early".into(),
            Rule::HoldBack(n) => format!("holdback-{n}"),
            Rule::Whole => "whole".into(),
        }
    }

    /// How far text may be released: `ends` the sentence ends of the whole text, `fed` the
    /// text so far, `scanned` the prefix the detectors have finished, `early` what
    /// `Stream::releasable` allowed while the first sentence was unfinished.
    fn limit(self, ends: &[usize], fed: &str, scanned: usize, early: usize) -> usize {
        match self {
            Rule::Early => Rule::LookAhead(0).limit(ends, fed, scanned, 0).max(early),
            Rule::LookAhead(n) => {
                let settled = ends.iter().filter(|&&e| e <= scanned).count();
                if settled > n {
                    ends[settled - 1 - n]
                } else {
                    0
                }
            }
            Rule::HoldBack(n) => {
                let back = fed
                    .char_indices()
                    .rev()
                    .nth(n.saturating_sub(1))
                    .map_or(0, |(i, _)| i);
                let mut x = scanned.min(back);
                while !fed.is_char_boundary(x) {
                    x -= 1;
                }
                x
            }
            Rule::Whole => 0,
        }
    }
}

/// The sentence ends (byte offsets) of a whole text, the last being its length.
fn sentence_ends(text: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut s = 0;
    while let Some(p) = next_boundary(text, s) {
        ends.push(p);
        s = p;
    }
    ends.push(text.len());
    ends
}

fn chunks(text: &str) -> Vec<&str> {
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(CHUNK).collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &a)| &text[a..starts.get(k + 1).copied().unwrap_or(text.len())])
        .collect()
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// One streamed reply.
struct Streamed {
    /// The first findings, and the scanned prefix when they came.
    first: Option<(usize, Vec<Finding>)>,
    /// Per rule: bytes released before the chunk that brought the first finding (or all that
    /// the rule released before the end, when there was none).
    released: Vec<usize>,
    /// Per rule: the chunk with which text first left.
    first_text_chunk: Vec<usize>,
}

fn stream(det: &Detectors, text: &str, context: &str, ends: &[usize]) -> Streamed {
    let mut s = det.stream(Side::Assistant, Some(context));
    let mut fed = String::new();
    let mut released = vec![0; RULES.len()];
    let pieces = chunks(text);
    let mut first_text_chunk = vec![pieces.len().saturating_sub(1); RULES.len()];
    for (i, piece) in pieces.iter().enumerate() {
        fed.push_str(piece);
        let new = s.feed(piece);
        if !new.is_empty() {
            let first = Some((fed.len() - s.pending(), new));
            return Streamed {
                first,
                released,
                first_text_chunk,
            };
        }
        let scanned = fed.len() - s.pending();
        let early = if scanned == 0 { s.releasable() } else { 0 };
        for (k, rule) in RULES.iter().enumerate() {
            let l = rule.limit(ends, &fed, scanned, early).max(released[k]);
            if l > 0 && released[k] == 0 {
                first_text_chunk[k] = i;
            }
            released[k] = l;
        }
    }
    let last = s.finish();
    Streamed {
        first: (!last.is_empty()).then_some((text.len(), last)),
        released,
        first_text_chunk,
    }
}

/// The built-in detectors; with `learned`, the assistant side's models of a folder written
/// by `tutela train` instead of the built-in ones.
fn detectors(encoder: bool, learned: Option<&str>) -> Res<Detectors> {
    let mut det = Detectors::try_builtin()?;
    let dir = learned.map(std::path::Path::new);
    if let Some(d) = dir {
        let bytes = std::fs::read(d.join("ngram-assistant.bin"))?;
        det.set_ngram_model(tutela_detect::learned::model::NgramModel::from_bytes(
            &bytes,
        )?);
    }
    if encoder {
        let model = std::env::var("TUTELA_MODEL_DIR")?;
        let enc = tutela_encoder::Encoder::load(std::path::Path::new(&model))?;
        let embedder: Arc<dyn Embedder> = Arc::new(UseEmbedder(enc));
        let heads = match dir {
            Some(d) => tutela_detect::learned::encoder::EncoderHeads::from_bytes(&std::fs::read(
                d.join("encoder-assistant.bin"),
            )?)?,
            None => tutela_detect::learned::builtin_heads(Side::Assistant)?,
        };
        det.set_encoder(embedder, heads)?;
    }
    det.prepare();
    Ok(det)
}

/// `--ttft TEXT`: when each rule first lets text of a harmless reply leave.
fn ttft(text: &str, context: &str, encoder: bool, learned: Option<&str>) -> Res<()> {
    let det = detectors(encoder, learned)?;
    let ends = sentence_ends(text);
    let ends_chars: Vec<usize> = ends.iter().map(|e| chars(&text[..*e])).collect();
    println!("{} characters, sentence ends {ends_chars:?}", chars(text));
    // Per chunk, what the early rule lets leave of the first sentence.
    let mut s = det.stream(Side::Assistant, Some(context));
    let mut fed = String::new();
    for (i, piece) in chunks(text).iter().enumerate() {
        fed.push_str(piece);
        eprintln!("--- chunk {i}");
        let found = s.feed(piece).len();
        let scanned = fed.len() - s.pending();
        let early = if scanned == 0 { s.releasable() } else { 0 };
        println!(
            "chunk {i} ({} ms): fed {:?}, finished {scanned}, early {:?}{}",
            i * PACE_MS,
            fed,
            &fed[..early.max(scanned)],
            if found > 0 { ", finding" } else { "" }
        );
        if scanned > 0 || found > 0 {
            break;
        }
    }
    let r = stream(&det, text, context, &ends);
    for (k, rule) in RULES.iter().enumerate() {
        let c = r.first_text_chunk[k];
        println!(
            "{}: first text with chunk {c}, {} ms",
            rule.name(),
            c * PACE_MS
        );
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    harmful: usize,
    found: usize,
    own_label: usize,
    chars: usize,
    window_only: usize,
    window_only_leaking: usize,
    window_only_chars: usize,
    first_tier: BTreeMap<String, usize>,
    leaking: [usize; RULES.len()],
    leaked_chars: [usize; RULES.len()],
    leaked_sentences: [usize; RULES.len()],
    leaked_share: [f64; RULES.len()],
    /// Replies whose release stopped inside a sentence (part of the sentence that fired left),
    /// and those characters.
    partial: [usize; RULES.len()],
    partial_chars: [usize; RULES.len()],
    ok: usize,
    ok_first_text: [Vec<usize>; RULES.len()],
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let last = args
        .last()
        .ok_or("usage: stream_leak [--encoder] [--learned DIR] DATA_DIR | --ttft TEXT")?;
    let learned = args
        .iter()
        .position(|a| a == "--learned")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    if args.iter().any(|a| a == "--ttft") {
        // The user turn `load/ttft.py` sends, unless `--context TEXT` says otherwise.
        let context = args
            .iter()
            .position(|a| a == "--context")
            .and_then(|i| args.get(i + 1))
            .map_or("Tell me about your day, please.", String::as_str);
        return ttft(
            last,
            context,
            args.iter().any(|a| a == "--encoder"),
            learned,
        );
    }
    let det = detectors(args.iter().any(|a| a == "--encoder"), learned)?;
    eprintln!(
        "assistant side: {:?}, encoder attached: {}",
        det.tiers(),
        det.has_encoder(Side::Assistant)
    );
    let mut files: Vec<_> = std::fs::read_dir(last)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut t = Tally::default();
    for f in files {
        for line in std::fs::read_to_string(&f)?.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["task"] == "reply" {
                reply(&det, &v, &mut t);
            }
        }
    }
    summary(&t);
    Ok(())
}

fn reply(det: &Detectors, v: &Value, t: &mut Tally) {
    let text = v["text"].as_str().unwrap_or("");
    let context = v["context"].as_str().unwrap_or("");
    let label = v["label"].as_str().unwrap_or("");
    let ends = sentence_ends(text);
    if label == "ok" {
        t.ok += 1;
        let r = stream(det, text, context, &ends);
        if r.first.is_none() {
            for (k, c) in r.first_text_chunk.iter().enumerate() {
                t.ok_first_text[k].push(*c);
            }
        }
        return;
    }
    t.harmful += 1;
    let whole = det.scan(Side::Assistant, text, Some(context));
    if whole.is_empty() {
        return;
    }
    t.found += 1;
    if whole.iter().any(|f| f.detector.to_string() == label) {
        t.own_label += 1;
    }
    let r = stream(det, text, context, &ends);
    let Some((at, first)) = r.first else {
        // Cannot happen: a stream finds what the whole-text scan finds (chunk invariance).
        eprintln!("the stream missed {}", v["id"]);
        return;
    };
    *t.first_tier
        .entry(format!("{:?}", first[0].tier))
        .or_default() += 1;
    let n = chars(text);
    t.chars += n;
    // The sentences the chunk with the first finding finished: does one of them alone
    // draw a finding, or only the window they end (with the sentences before)?
    let today = r.released[0];
    let alone = ends
        .iter()
        .enumerate()
        .filter(|(_, e)| **e > today && **e <= at)
        .any(|(j, e)| {
            let start = if j == 0 { 0 } else { ends[j - 1] };
            !det.scan(Side::Assistant, &text[start..*e], Some(context))
                .is_empty()
        });
    if !alone {
        t.window_only += 1;
        if today > 0 {
            t.window_only_leaking += 1;
            t.window_only_chars += chars(&text[..today]);
        }
    }
    for (k, &rel) in r.released.iter().enumerate() {
        if rel > 0 {
            t.leaking[k] += 1;
            t.leaked_share[k] += chars(&text[..rel]) as f64 / n as f64;
        }
        t.leaked_chars[k] += chars(&text[..rel]);
        if rel > 0 && !ends.contains(&rel) {
            t.partial[k] += 1;
            let start = ends
                .iter()
                .filter(|e| **e < rel)
                .max()
                .copied()
                .unwrap_or(0);
            t.partial_chars[k] += chars(&text[start..rel]);
        }
        t.leaked_sentences[k] += ends.iter().filter(|e| **e <= rel).count();
    }
    let released: Vec<usize> = r.released.iter().map(|b| chars(&text[..*b])).collect();
    let first: Vec<String> = first
        .iter()
        .map(|f| format!("{}/{:?}", f.detector, f.tier))
        .collect();
    println!(
        "{}",
        json!({"id": v["id"], "label": label, "lang": v["lang"], "chars": n,
            "sentences": ends.len(), "first": first, "finishing_sentence_alone_finds": alone,
            "released_chars": released, "released_text": &text[..today],
            "context": context, "text": text})
    );
}

fn summary(t: &Tally) {
    let pct = |a: f64, b: usize| 100.0 * a / b.max(1) as f64;
    eprintln!(
        "harmful replies: {}; found by the whole-text scan: {} ({:.1} %), {} with a finding of their own label",
        t.harmful,
        t.found,
        pct(t.found as f64, t.harmful),
        t.own_label
    );
    eprintln!("tier of the first finding: {:?}", t.first_tier);
    eprintln!(
        "window-only (the sentence(s) finishing with the first finding find nothing alone): {}; {} of them with text released before it ({} characters)",
        t.window_only, t.window_only_leaking, t.window_only_chars
    );
    for (k, rule) in RULES.iter().enumerate() {
        eprintln!(
            "{}: {} found replies ({:.1} %) had text released before the first finding; {} of {} characters ({:.1} %), {} whole sentences; {:.1} % of its text on average in a reply that leaks",
            rule.name(),
            t.leaking[k],
            pct(t.leaking[k] as f64, t.found),
            t.leaked_chars[k],
            t.chars,
            pct(t.leaked_chars[k] as f64, t.chars),
            t.leaked_sentences[k],
            pct(t.leaked_share[k], t.leaking[k]),
        );
        eprintln!(
            "{}: {} found replies ({:.1} %) had part of a sentence released (the sentence that fired): {} characters",
            rule.name(),
            t.partial[k],
            pct(t.partial[k] as f64, t.found),
            t.partial_chars[k],
        );
    }
    for (k, rule) in RULES.iter().enumerate() {
        let mut c = t.ok_first_text[k].clone();
        c.sort_unstable();
        let q = |x: f64| {
            let i = ((c.len().saturating_sub(1)) as f64 * x) as usize;
            c.get(i).map_or(0, |c| c * PACE_MS)
        };
        eprintln!(
            "{}: first text of the {} of {} ok replies that pass, at the model's pace: p50 {} ms, p90 {} ms, p99 {} ms",
            rule.name(),
            c.len(),
            t.ok,
            q(0.5),
            q(0.9),
            q(0.99)
        );
    }
}
