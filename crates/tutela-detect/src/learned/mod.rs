//! The learned tiers: a linear model over hashed n-grams (compiled into the binary, on by
//! default) and, when the caller provides an embedder, per-detector heads over a sentence
//! encoder's embeddings. Both read a text as *windows*: each finished sentence together with
//! the sentences before it, up to [`WINDOW`] sentences. Sentence boundaries do not depend on
//! chunking, so the learned findings of a stream equal those of the whole text.
//!
//! A learned finding names its tier, its score and the threshold it passed (per detector and
//! language, chosen on held-out folds of the training corpus), and the nearest labelled
//! examples of the corpus.

pub mod encoder;
pub mod features;
pub mod model;
pub mod train;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use tutela_types::{DetectorId, Finding, Severity, Side, Span, Tier};

use self::encoder::{Embedder, EncoderHeads};
use self::features::{NS_CONTEXT, NS_TEXT};
use self::model::{NgramModel, Partial, STRIDE, TextLang};
use crate::normalize::Normalized;

/// Sentences in a window.
pub const WINDOW: usize = 3;

/// The built-in models, trained by `tutela train` from `data/train/` and committed.
const USER_MODEL: &[u8] = include_bytes!("../../model/ngram-user.bin");
const ASSISTANT_MODEL: &[u8] = include_bytes!("../../model/ngram-assistant.bin");

/// The built-in encoder heads, trained by `tutela train` where the encoder model was present.
const USER_HEADS: &[u8] = include_bytes!("../../model/encoder-user.bin");
const ASSISTANT_HEADS: &[u8] = include_bytes!("../../model/encoder-assistant.bin");

/// The built-in encoder heads of a side (an error when none were trained).
pub fn builtin_heads(side: Side) -> Result<EncoderHeads, model::ModelError> {
    EncoderHeads::from_bytes(match side {
        Side::User => USER_HEADS,
        Side::Assistant => ASSISTANT_HEADS,
    })
}

/// An encoder with a side's heads over it.
#[derive(Debug, Clone)]
pub(crate) struct EncoderTier {
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) heads: EncoderHeads,
}

/// The built-in model of a side.
pub fn builtin_model(side: Side) -> Result<NgramModel, model::ModelError> {
    NgramModel::from_bytes(match side {
        Side::User => USER_MODEL,
        Side::Assistant => ASSISTANT_MODEL,
    })
}

/// The severity a learned finding of `d` carries.
pub fn severity(d: &DetectorId) -> Severity {
    match d {
        DetectorId::Crisis
        | DetectorId::ThirdParty
        | DetectorId::EncouragesSelfHarm
        | DetectorId::Sexual => Severity::High,
        _ => Severity::Medium,
    }
}

/// Per head of the side's n-gram model, the highest probability over the windows of `text`
/// (analysis and training reports; empty without a model).
pub fn item_scores(
    det: &crate::Detectors,
    side: Side,
    text: &str,
    context: Option<&str>,
) -> Vec<f32> {
    let Some(tier) = det.ngram_tier_any(side) else {
        return Vec::new();
    };
    let item = crate::eval::Item {
        id: String::new(),
        lang: String::new(),
        task: String::new(),
        text: text.to_owned(),
        label: String::new(),
        note: None,
        context: context.map(str::to_owned),
        group: None,
    };
    let p = train::item_probs(tier, det, &item);
    p[..tier.model.meta.heads.len()].to_vec()
}

/// One sentence's contribution to the windows that hold it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SentenceSum {
    part: Partial,
    cjk: u32,
    latin: u32,
    start: usize,
    end: usize,
}

/// Counts the script of a normalised text.
fn script(norm: &str) -> (u32, u32) {
    if norm.is_ascii() {
        let latin = norm.bytes().filter(u8::is_ascii_alphabetic).count();
        return (0, latin as u32);
    }
    let (mut cjk, mut latin) = (0, 0);
    for c in norm.chars() {
        if c.is_ascii_alphabetic() {
            latin += 1;
        } else if ('\u{3400}'..='\u{9FFF}').contains(&c) {
            cjk += 1;
        }
    }
    (cjk, latin)
}

/// A side's n-gram model with what it needs at scan time.
#[derive(Debug)]
pub(crate) struct NgramTier {
    pub(crate) model: NgramModel,
    /// The examples' inverted index, built on first explanation.
    examples: OnceLock<ExampleIndex>,
}

impl NgramTier {
    pub(crate) fn new(model: NgramModel) -> Self {
        Self {
            model,
            examples: OnceLock::new(),
        }
    }

    /// The partial of a context (the user turn an assistant reply answers): its sentences'
    /// features and its lexical labels, in the context namespace.
    pub(crate) fn context(&self, ctx: &str, labels: &[DetectorId]) -> Partial {
        let mut p = Partial::default();
        let mut norm = Normalized::new();
        for (s, e) in sentences(ctx) {
            norm.fill(&ctx[s..e]);
            self.model.add_text(&norm.text, NS_CONTEXT, &mut p);
        }
        for l in labels {
            self.model
                .add_label(&format!("ctx:{}", l.as_str()), NS_CONTEXT, &mut p);
        }
        p
    }

    /// The ids of the (at most 3) examples nearest to `norm_window` among the positives of
    /// `head`: cosine of their feature sets, through an inverted index built on first use.
    fn nearest(&self, head: &DetectorId, norm_window: &str) -> Vec<String> {
        let bits = self.model.meta.bits;
        let index = self
            .examples
            .get_or_init(|| ExampleIndex::build(&self.model));
        let mut q = Vec::new();
        features::collect(norm_window, NS_TEXT, bits, &mut q);
        q.sort_unstable();
        q.dedup();
        let Some(postings) = index.by_label.get(head.as_str()) else {
            return Vec::new();
        };
        // Features most of the label's examples share say little about which is nearest and
        // cost the most: they are skipped.
        let cap = (postings.size / 5).max(8);
        let mut common = vec![0u32; index.lens.len()];
        for &f in &q {
            let list = postings.get(f);
            if list.len() <= cap {
                for &e in list {
                    common[e as usize] += 1;
                }
            }
        }
        // The three best by score, then by index: an insertion into three slots, in place of
        // sorting every candidate (the same order, since no two candidates tie on both).
        let mut best: [(f32, u32); 3] = [(0.0, 0); 3];
        let mut have = 0;
        for (e, &c) in common.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let len = index.lens[e];
            let cand = (c as f32 / ((q.len() * len).max(1) as f32).sqrt(), e as u32);
            let before = |a: &(f32, u32), b: &(f32, u32)| {
                b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)) == std::cmp::Ordering::Less
            };
            let mut k = have.min(best.len());
            if k == best.len() && !before(&cand, &best[k - 1]) {
                continue;
            }
            if k == best.len() {
                k -= 1;
            }
            while k > 0 && before(&cand, &best[k - 1]) {
                best[k] = best[k - 1];
                k -= 1;
            }
            best[k] = cand;
            have += 1;
        }
        best[..have.min(best.len())]
            .iter()
            .map(|&(_, i)| self.model.meta.examples[i as usize].id.clone())
            .collect()
    }
}

/// Hashes a feature bucket (already a hash) with one multiply: the posting lists are only
/// looked up, never iterated, so the hasher changes no result, only the time it takes.
#[derive(Debug, Default, Clone, Copy)]
struct BucketHasher(u64);

impl std::hash::Hasher for BucketHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, x: u32) {
        self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type BucketMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<BucketHasher>>;

/// One label's posting lists, flattened: feature → a range of `examples`, the (ascending)
/// indices of the label's examples that have the feature.
#[derive(Debug, Default)]
struct Postings {
    ranges: BucketMap<(u32, u32)>,
    examples: Vec<u32>,
    /// How many examples the label has.
    size: usize,
}

impl Postings {
    /// The examples with feature `f` (none if no example has it).
    fn get(&self, f: u32) -> &[u32] {
        self.ranges
            .get(&f)
            .and_then(|&(a, b)| self.examples.get(a as usize..b as usize))
            .unwrap_or_default()
    }
}

/// The examples' feature sets as posting lists per label: feature → examples holding it.
#[derive(Debug, Default)]
struct ExampleIndex {
    /// Per label: posting lists.
    by_label: HashMap<String, Postings>,
    /// Distinct features per example.
    lens: Vec<usize>,
}

impl ExampleIndex {
    fn build(model: &NgramModel) -> Self {
        let mut out = ExampleIndex::default();
        let mut lists: HashMap<String, (BucketMap<Vec<u32>>, usize)> = HashMap::new();
        let mut n = Normalized::new();
        for (i, e) in model.meta.examples.iter().enumerate() {
            let mut v = Vec::new();
            for (s, t) in sentences(&e.text) {
                n.fill(&e.text[s..t]);
                features::collect(&n.text, NS_TEXT, model.meta.bits, &mut v);
            }
            v.sort_unstable();
            v.dedup();
            out.lens.push(v.len());
            let (label, size) = lists.entry(e.label.clone()).or_default();
            *size += 1;
            for f in v {
                label.entry(f).or_default().push(i as u32);
            }
        }
        for (label, (map, size)) in lists {
            let mut p = Postings {
                size,
                ..Postings::default()
            };
            for (f, list) in map {
                let a = p.examples.len() as u32;
                p.examples.extend_from_slice(&list);
                p.ranges.insert(f, (a, p.examples.len() as u32));
            }
            out.by_label.insert(label, p);
        }
        out
    }
}

/// The sentences of a text, as byte ranges (the lexical tier's boundaries).
pub(crate) fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut s = 0;
    while let Some(p) = crate::segment::next_boundary(text, s) {
        out.push((s, p));
        s = p;
    }
    if s < text.len() {
        out.push((s, text.len()));
    }
    out
}

/// The learned state of one scan: the last sentences' sums and which heads fired on the
/// previous window (a head fires once per run of windows that pass).
#[derive(Debug)]
pub(crate) struct WindowScan<'a> {
    tier: &'a NgramTier,
    ctx: Option<Partial>,
    /// The encoder tier, when it runs: the tier, the user turn (embedded on first use), and
    /// which heads fired on the previous window.
    enc: Option<EncState<'a>>,
    /// The original text of the sentences in the window.
    orig: [String; WINDOW],
    /// Whether the n-gram tier's own findings are reported (not when only the encoder's are
    /// asked for; the n-gram tier still gates the encoder).
    emit_ngram: bool,
    last: [SentenceSum; WINDOW],
    len: usize,
    fired: [bool; STRIDE],
    /// The normalised sentence ([`crate::normalize::quick_text`]: the text of
    /// [`Normalized::fill`] without its byte map), and the normaliser's scratch.
    norm: Vec<u8>,
    scratch: Normalized,
    /// The normalised text of the sentences in the window (for explanations).
    texts: [String; WINDOW],
}

#[derive(Debug)]
pub(crate) struct EncState<'a> {
    tier: &'a EncoderTier,
    context: Option<String>,
    ctx_emb: Option<Vec<f32>>,
    fired: [bool; STRIDE],
}

impl<'a> WindowScan<'a> {
    pub(crate) fn new(
        tier: &'a NgramTier,
        ctx: Option<Partial>,
        enc: Option<(&'a EncoderTier, Option<&str>)>,
        emit_ngram: bool,
    ) -> Self {
        Self {
            tier,
            ctx,
            emit_ngram,
            enc: enc.map(|(tier, context)| EncState {
                tier,
                context: context.map(str::to_owned),
                ctx_emb: None,
                fired: [false; STRIDE],
            }),
            orig: Default::default(),
            last: [SentenceSum::default(); WINDOW],
            len: 0,
            fired: [false; STRIDE],
            norm: Vec::new(),
            scratch: Normalized::new(),
            texts: Default::default(),
        }
    }

    /// Adds the sentence `seg`, which is bytes `start..end` of the whole text (a stream's
    /// `seg` may hold fewer of the characters the normaliser drops than the text: see
    /// `Stream`); `out[lexical..]` are the lexical tier's findings of that sentence. Drops
    /// those the model overrules and pushes the learned findings of the window that ends with
    /// the sentence.
    pub(crate) fn sentence(
        &mut self,
        seg: &str,
        (start, end): (usize, usize),
        out: &mut Vec<Finding>,
        lexical: usize,
    ) {
        self.norm.clear();
        crate::normalize::quick_text(seg, &mut self.scratch, &mut self.norm);
        let norm = match std::str::from_utf8(&self.norm) {
            Ok(t) => t,
            // Not reached (the quick text is UTF-8 by construction); the full normaliser
            // gives the same text.
            Err(_) => {
                self.scratch.fill(seg);
                &self.scratch.text
            }
        };
        if norm.trim().is_empty() {
            return;
        }
        let model = &self.tier.model;
        let mut part = Partial::default();
        model.add_text(norm, NS_TEXT, &mut part);
        let (cjk, latin) = script(norm);
        let sum = SentenceSum {
            part,
            cjk,
            latin,
            start,
            end,
        };
        if self.len == WINDOW {
            self.last.rotate_left(1);
            self.texts.rotate_left(1);
            self.orig.rotate_left(1);
            self.len -= 1;
        }
        self.last[self.len] = sum;
        self.texts[self.len].clear();
        self.texts[self.len].push_str(norm);
        self.orig[self.len].clear();
        if self.enc.is_some() {
            // Only the encoder reads the original text.
            push_visible(seg, &mut self.orig[self.len]);
        }
        self.len += 1;
        let mut win = Partial::default();
        let (mut cjk, mut latin) = (0, 0);
        for s in &self.last[..self.len] {
            win.add(&s.part);
            cjk += s.cjk;
            latin += s.latin;
        }
        let lang = TextLang::from_counts(cjk as usize, latin as usize);
        let mut probs = model.probs(&win, self.ctx.as_ref());
        if win.n < model::MIN_DECIDE {
            // Too short to decide on: no learned finding, and the encoder is not asked.
            probs = [0.0; STRIDE];
        }
        let span = Span {
            start: self.last[0].start,
            end: sum.end,
        };
        drop_overruled(out, lexical, |d| {
            model
                .head(d)
                .is_some_and(|h| probs[h] < model.confirm(h, lang))
        });
        // The encoder's heads: only for a window some head's n-gram probability gates in, or
        // whose sentence drew a lexical finding of a head (the fused probability may overrule
        // it: the lexical tier's false alarms mostly have low n-gram probabilities).
        let lexical_head = out[lexical..]
            .iter()
            .any(|f| model.head(&f.detector).is_some());
        let enc_probs = self.enc.as_mut().and_then(|e| {
            let heads = &e.tier.heads;
            let gated =
                lexical_head || (0..heads.meta.heads.len()).any(|h| probs[h] >= heads.meta.gate[h]);
            if !gated {
                return None;
            }
            let emb = e.tier.embedder.embed(&self.orig[..self.len].concat());
            if heads.meta.with_context && e.ctx_emb.is_none() {
                e.ctx_emb = e.context.as_deref().map(|c| e.tier.embedder.embed(c));
            }
            Some(heads.probs(&emb, e.ctx_emb.as_deref(), &probs[..heads.meta.heads.len()]))
        });
        let nh = model.meta.heads.len();
        let mut ngram_pass = [false; STRIDE];
        let mut thresholds = [1.0f32; STRIDE];
        for h in 0..nh {
            thresholds[h] = match &self.enc {
                Some(e) => e.tier.heads.meta.ngram[h].get(lang),
                None => model.meta.thresholds[h].get(lang),
            };
            ngram_pass[h] = probs[h] >= thresholds[h];
        }
        // The encoder's decision, where it ran: its heads' fused probability (version 1 heads:
        // the mean of both tiers' probabilities). A lexical finding the fused probability
        // puts below the head's confirm level is overruled.
        let mut combined = probs;
        let mut enc_pass = [false; STRIDE];
        if let (Some(e), Some(pe)) = (&self.enc, enc_probs.as_ref()) {
            let fused = e.tier.heads.fused();
            for h in 0..nh {
                combined[h] = if fused {
                    pe[h]
                } else {
                    (probs[h] + pe[h]) / 2.0
                };
            }
            let confirm = &e.tier.heads.meta.confirm;
            drop_overruled(out, lexical, |d| {
                model
                    .head(d)
                    .is_some_and(|h| confirm.get(h).is_some_and(|c| combined[h] < c.get(lang)))
            });
            for h in 0..nh {
                enc_pass[h] = combined[h] >= e.tier.heads.meta.combined[h].get(lang)
                    && !(self.emit_ngram && ngram_pass[h]);
            }
        }
        // One decision per detector: where exclusive heads both pass (in either tier), the
        // more probable one stands.
        let mut any = [false; STRIDE];
        for h in 0..nh {
            any[h] = (ngram_pass[h] && self.emit_ngram) || enc_pass[h];
        }
        exclusive(&model.meta.heads, &combined, &mut any);
        for h in 0..nh {
            ngram_pass[h] &= any[h] || !self.emit_ngram;
            enc_pass[h] &= any[h];
        }
        for (h, head) in model.meta.heads.iter().enumerate() {
            let pass = ngram_pass[h];
            if pass && !self.fired[h] && self.emit_ngram {
                let window = self.texts[..self.len].join(" ");
                out.push(Finding {
                    detector: head.clone(),
                    side: model.meta.side,
                    tier: Tier::Ngram,
                    score: round3(probs[h]),
                    severity: severity(head),
                    rule: Some(format!("ngram/{}/{}", lang.as_str(), head.as_str())),
                    spans: vec![span],
                    threshold: Some(round3(thresholds[h])),
                    examples: self.tier.nearest(head, &window),
                });
            }
            self.fired[h] = pass;
        }
        if let Some(e) = self.enc.as_mut() {
            for (h, head) in e.tier.heads.meta.heads.iter().enumerate() {
                if enc_pass[h] && !e.fired[h] {
                    let window = self.texts[..self.len].join(" ");
                    out.push(Finding {
                        detector: head.clone(),
                        side: model.meta.side,
                        tier: Tier::Encoder,
                        score: round3(combined[h]),
                        severity: severity(head),
                        rule: Some(format!("encoder/{}/{}", lang.as_str(), head.as_str())),
                        spans: vec![span],
                        threshold: Some(round3(e.tier.heads.meta.combined[h].get(lang))),
                        examples: self.tier.nearest(head, &window),
                    });
                }
                e.fired[h] = enc_pass[h];
            }
        }
    }
}

/// Drops the lexical findings (`out[lexical..]`) whose detector `overruled` says the learned
/// tiers overrule, keeping the order of the rest.
fn drop_overruled(out: &mut Vec<Finding>, lexical: usize, overruled: impl Fn(&DetectorId) -> bool) {
    let mut i = lexical;
    while i < out.len() {
        if overruled(&out[i].detector) {
            out.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Appends `seg` as the encoder reads it: without the characters the normaliser drops
/// (controls that are not whitespace, format characters) and with the whitespace controls
/// but the newline as spaces, so that they change the encoder's embedding no more than the other tiers' reading
/// (the `scan` fuzz target's oracle found `\u{1}` inside a reply changing the encoder's
/// findings).
pub(crate) fn push_visible(seg: &str, out: &mut String) {
    for c in seg.chars() {
        if crate::normalize::is_dropped(c) {
            continue;
        }
        out.push(if c != '\n' && c.is_control() && c.is_whitespace() {
            ' '
        } else {
            c
        });
    }
}

/// Heads that exclude each other in the learned tiers: the speaker at risk, or someone else;
/// a person at risk, or a person saying an ordinary goodbye. When a window passes both, only
/// the more probable one stands (the lexical tier's findings are never dropped this way).
const EXCLUSIVE: [(DetectorId, DetectorId); 2] = [
    (DetectorId::Crisis, DetectorId::ThirdParty),
    (DetectorId::Crisis, DetectorId::Exit),
];

fn exclusive(heads: &[DetectorId], p: &[f32; STRIDE], pass: &mut [bool; STRIDE]) {
    for (a, b) in &EXCLUSIVE {
        let (Some(i), Some(j)) = (
            heads.iter().position(|h| h == a),
            heads.iter().position(|h| h == b),
        ) else {
            continue;
        };
        if pass[i] && pass[j] {
            if p[i] >= p[j] {
                pass[j] = false;
            } else {
                pass[i] = false;
            }
        }
    }
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoder_reads_no_control_or_format_character() {
        let mut out = String::new();
        push_visible(
            "scn\u{1}ds0' t\0I'm.\u{200b} ot,\tno\u{b}w\u{ad}ay\u{85}\u{600}x",
            &mut out,
        );
        assert_eq!(out, "scnds0' tI'm. ot, no way x");
    }
}
