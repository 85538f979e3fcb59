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

/// Counts the script of a normalised text: CJK ideographs and ASCII letters (training; a
/// scan counts them on the way, [`features::for_each_counting`], held to this by a test).
fn script(norm: &str) -> (u32, u32) {
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
    /// [`NgramModel::fail_below`] of the model.
    fail_below: [[f32; 3]; STRIDE],
    /// The examples' inverted index, built on first explanation.
    examples: OnceLock<ExampleIndex>,
}

impl NgramTier {
    pub(crate) fn new(model: NgramModel) -> Self {
        Self {
            fail_below: model.fail_below(),
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

    /// The ids of the (at most 3) examples nearest to a window among the positives of
    /// `head`: cosine of their feature sets, through an index built on first use. `q` holds
    /// the window's distinct features ([`window_features`]).
    fn nearest(&self, head: &DetectorId, q: &[u32]) -> Vec<String> {
        let index = self
            .examples
            .get_or_init(|| ExampleIndex::build(&self.model));
        let Some(parts) = index.by_label.get(head.as_str()) else {
            return Vec::new();
        };
        // The three best by score, then by index (among all examples): an insertion into
        // three slots, in place of sorting every candidate (the same order, since no two
        // candidates tie on both). The parts, and the examples in a part, come in the order
        // of all examples.
        let mut best: [(f32, u32); 3] = [(0.0, 0); 3];
        let mut have = 0;
        let mut common = Vec::new();
        let mut lists = Vec::with_capacity(q.len());
        for postings in parts {
            // Per example of the part: the features it shares with the window, but those
            // most of the label's examples share ([`Postings::cap`], left out of the index).
            common.clear();
            common.resize(postings.global.len(), 0u32);
            postings.lists(q, &mut lists);
            for &(a, b) in &lists {
                for &e in postings.examples.get(a as usize..b as usize).unwrap_or(&[]) {
                    common[usize::from(e)] += 1;
                }
            }
            for (e, &c) in common.iter().enumerate() {
                if c == 0 {
                    continue;
                }
                let g = postings.global[e];
                let len = index.lens[g as usize];
                let cand = (c as f32 / ((q.len() * len).max(1) as f32).sqrt(), g);
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
        }
        best[..have.min(best.len())]
            .iter()
            .map(|&(_, g)| self.model.meta.examples[g as usize].id.clone())
            .collect()
    }
}

/// The distinct features of the window made of `texts` (normalised sentences) joined by
/// spaces, in no particular order, into `q`; `window` and `seen` are scratch (`seen` a
/// bit per bucket, left cleared).
fn window_features(
    texts: &[String],
    bits: u32,
    window: &mut String,
    seen: &mut Vec<u64>,
    q: &mut Vec<u32>,
) {
    window.clear();
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            window.push(' ');
        }
        window.push_str(t);
    }
    let words = (1usize << bits).div_ceil(64);
    if seen.len() != words {
        seen.clear();
        seen.resize(words, 0);
    }
    q.clear();
    features::for_each(window, NS_TEXT, bits, |f| {
        if let Some(w) = seen.get_mut((f >> 6) as usize) {
            let bit = 1u64 << (f & 63);
            if *w & bit == 0 {
                *w |= bit;
                q.push(f);
            }
        }
    });
    for &f in q.iter() {
        if let Some(w) = seen.get_mut((f >> 6) as usize) {
            *w = 0;
        }
    }
}

/// The posting lists of a label's examples (or of a part of them): for each feature some
/// of them have, but not more than [`Postings::cap`] of the label's, the (ascending) numbers
/// of those examples. Features are found through a bit per bucket and a count of the bits
/// set before each word (a rank), lists are ranges of one array of 16-bit numbers: a lookup
/// is a few loads from a few hundred kilobytes, in place of a hash table's probe.
#[derive(Debug, Default)]
struct Postings {
    /// Per 64 buckets: a bit per bucket, whether the label's index holds the feature, and
    /// the bits set in the words before (side by side: one cache line for both).
    present: Vec<(u64, u32)>,
    /// Per present feature, in bucket order, the start of its list in `examples`; one more
    /// entry ends the last list.
    starts: Vec<u32>,
    /// The lists, one after another: numbers of the part's examples.
    examples: Vec<u16>,
    /// The part's examples' indices among all examples, by number (ascending).
    global: Vec<u32>,
}

impl Postings {
    /// The most examples of a label of `size` a feature may be shared by and still count:
    /// features most of the label's examples share say little about which is nearest, and
    /// cost the most.
    fn cap(size: usize) -> usize {
        (size / 5).max(8)
    }

    /// Examples per part of a label's index (numbered in 16 bits).
    const PART: usize = 1 << 16;

    /// The ranges of `examples` of the features of `q` the index holds, into `out`: in
    /// passes (the words of `present`, then the ranges), so that the loads of a pass do
    /// not wait on one another, and without a branch on whether a feature is held.
    fn lists(&self, q: &[u32], out: &mut Vec<(u32, u32)>) {
        out.clear();
        out.resize(q.len(), (0, 0));
        let mut n = 0;
        for &f in q {
            let (word, rank) = self
                .present
                .get((f >> 6) as usize)
                .copied()
                .unwrap_or((0, 0));
            let bit = 1u64 << (f & 63);
            // Written always (`n` is at most the features read so far), kept only where the
            // feature is held.
            out[n].0 = rank + (word & (bit - 1)).count_ones();
            n += usize::from(word & bit != 0);
        }
        out.truncate(n);
        for range in out.iter_mut() {
            let r = range.0 as usize;
            *range = match (self.starts.get(r), self.starts.get(r + 1)) {
                (Some(&a), Some(&b)) => (a, b),
                _ => (0, 0),
            };
        }
    }

    /// The index of a part of a label's examples (at most [`Postings::PART`]; their indices
    /// among all examples, ascending) from, for each, its distinct features; `shared`: the
    /// features (sorted) more than [`Postings::cap`] of the whole label's examples have.
    fn build(bits: u32, shared: &[u32], global: Vec<u32>, features: &[Vec<u32>]) -> Self {
        let mut pairs: Vec<(u32, u16)> = Vec::new();
        for (k, v) in features.iter().enumerate() {
            let k = u16::try_from(k).unwrap_or(u16::MAX);
            pairs.extend(v.iter().map(|&f| (f, k)));
        }
        pairs.sort_unstable();
        let words = (1usize << bits).div_ceil(64);
        let mut p = Postings {
            present: vec![(0, 0); words],
            global,
            ..Postings::default()
        };
        for list in pairs.chunk_by(|a, b| a.0 == b.0) {
            let f = list[0].0;
            if shared.binary_search(&f).is_ok() {
                continue;
            }
            p.present[(f >> 6) as usize].0 |= 1 << (f & 63);
            p.starts.push(p.examples.len() as u32);
            p.examples.extend(list.iter().map(|&(_, e)| e));
        }
        p.starts.push(p.examples.len() as u32);
        let mut before = 0u32;
        for (w, r) in &mut p.present {
            *r = before;
            before += w.count_ones();
        }
        p
    }
}

/// The examples' feature sets as posting lists per label: feature → examples holding it.
#[derive(Debug, Default)]
struct ExampleIndex {
    /// Per label: posting lists, in parts of at most [`Postings::PART`] examples (one
    /// part unless a label has more).
    by_label: HashMap<String, Vec<Postings>>,
    /// Distinct features per example.
    lens: Vec<usize>,
}

impl ExampleIndex {
    fn build(model: &NgramModel) -> Self {
        Self::build_parts(model, Postings::PART)
    }

    /// The index with parts of at most `part` examples (tests try small parts).
    fn build_parts(model: &NgramModel, part: usize) -> Self {
        let mut out = ExampleIndex::default();
        let bits = model.meta.bits;
        // Per label: its examples' indices and distinct features.
        let mut lists: HashMap<&str, (Vec<u32>, Vec<Vec<u32>>)> = HashMap::new();
        let mut n = Normalized::new();
        for (i, e) in model.meta.examples.iter().enumerate() {
            let mut v = Vec::new();
            for (s, t) in sentences(&e.text) {
                n.fill(&e.text[s..t]);
                features::collect(&n.text, NS_TEXT, bits, &mut v);
            }
            v.sort_unstable();
            v.dedup();
            out.lens.push(v.len());
            let (ids, feats) = lists.entry(e.label.as_str()).or_default();
            ids.push(i as u32);
            feats.push(v);
        }
        for (label, (ids, feats)) in lists {
            let cap = Postings::cap(ids.len());
            let mut all: Vec<u32> = feats.iter().flatten().copied().collect();
            all.sort_unstable();
            let shared: Vec<u32> = all
                .chunk_by(|a, b| a == b)
                .filter(|run| run.len() > cap)
                .map(|run| run[0])
                .collect();
            let parts = ids
                .chunks(part.clamp(1, Postings::PART))
                .zip(feats.chunks(part.clamp(1, Postings::PART)))
                .map(|(ids, feats)| Postings::build(bits, &shared, ids.to_vec(), feats))
                .collect();
            out.by_label.insert(label.to_owned(), parts);
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
    norm: String,
    scratch: Normalized,
    /// The normalised text of the sentences in the window (for explanations).
    texts: [String; WINDOW],
    /// Scratch for explanations: the window's text and its distinct features.
    window: String,
    q: Vec<u32>,
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
            norm: String::new(),
            scratch: Normalized::new(),
            texts: Default::default(),
            window: String::new(),
            q: Vec::new(),
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
        let norm = self.norm.as_str();
        if norm.trim().is_empty() {
            return;
        }
        let model = &self.tier.model;
        let mut part = Partial::default();
        let (cjk, latin) = model.add_text_counting(norm, NS_TEXT, &mut part);
        let sum = SentenceSum {
            part,
            cjk,
            latin,
            start,
            end,
        };
        if self.len == WINDOW {
            // `rotate_left(1)`, as swaps (no call to `memmove`).
            for k in 1..WINDOW {
                self.last.swap(k - 1, k);
                self.texts.swap(k - 1, k);
                self.orig.swap(k - 1, k);
            }
            self.len -= 1;
        }
        self.last[self.len] = sum;
        // The normalised sentence moves into the window (its buffer takes the place of the
        // one that leaves it).
        std::mem::swap(&mut self.texts[self.len], &mut self.norm);
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
        let probs = if win.n < model::MIN_DECIDE {
            // Too short to decide on: no learned finding, and the encoder is not asked.
            [0.0; STRIDE]
        } else {
            let mut p = model.logits(&win, self.ctx.as_ref());
            // Without the encoder and without a lexical finding in the sentence, the
            // probability of a head that fails its threshold is read nowhere but in that
            // test: where the logit says it fails, the sigmoid is not computed (0 stands in).
            let quick = self.enc.is_none() && out.len() == lexical;
            for (h, z) in p.iter_mut().enumerate().take(model.meta.heads.len()) {
                *z = if quick && *z < self.tier.fail_below[h][lang.index()] {
                    0.0
                } else {
                    model::sigmoid(*z)
                };
            }
            p
        };
        let span = Span {
            start: self.last[0].start,
            end: sum.end,
        };
        // A lexical finding is about its own sentence: the other sentences of the window must
        // not talk it away (a friendly goodbye before "Wait, don't go yet!" diluted the
        // window's score under the veto level, and the sentence left). Where the window holds
        // more than the sentence, a head overrules a lexical finding only if the sentence
        // alone is under the level too (one more sum of the sentence's features, only for a
        // sentence with a lexical finding of a head).
        let alone = (self.len > 1
            && out[lexical..]
                .iter()
                .any(|f| model.head(&f.detector).is_some()))
        .then(|| model.probs(&sum.part, self.ctx.as_ref()));
        // Without the encoder, a lexical finding also needs the head's veto level (the
        // embedded tiers' fusion); with it, the fused probability decides below.
        let embedded = self.enc.is_none();
        drop_overruled(out, lexical, |d| {
            model.head(d).is_some_and(|h| {
                let level = if embedded {
                    model.embedded_confirm(h, lang)
                } else {
                    model.confirm(h, lang)
                };
                probs[h] < level && alone.as_ref().is_none_or(|a| a[h] < level)
            })
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
            let below = |h: usize, p: &[f32]| confirm.get(h).is_some_and(|c| p[h] < c.get(lang));
            // As above: the sentence alone must be under the level too, read by the encoder
            // only where the window's fused probability would overrule a lexical finding.
            let alone_fused = match &alone {
                Some(a)
                    if out[lexical..]
                        .iter()
                        .any(|f| model.head(&f.detector).is_some_and(|h| below(h, &combined))) =>
                {
                    let emb = e.tier.embedder.embed(&self.orig[self.len - 1]);
                    let pa = e.tier.heads.probs(&emb, e.ctx_emb.as_deref(), &a[..nh]);
                    Some(
                        (0..nh)
                            .map(|h| if fused { pa[h] } else { (a[h] + pa[h]) / 2.0 })
                            .collect::<Vec<f32>>(),
                    )
                }
                _ => None,
            };
            drop_overruled(out, lexical, |d| {
                model.head(d).is_some_and(|h| {
                    below(h, &combined) && alone_fused.as_ref().is_none_or(|a| below(h, a))
                })
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
        // The window's features, for the nearest examples: found once, for the first
        // finding of the window.
        let mut explained = false;
        for (h, head) in model.meta.heads.iter().enumerate() {
            let pass = ngram_pass[h];
            if pass && !self.fired[h] && self.emit_ngram {
                if !explained {
                    self.explain();
                    explained = true;
                }
                out.push(Finding {
                    detector: head.clone(),
                    side: model.meta.side,
                    tier: Tier::Ngram,
                    score: round3(probs[h]),
                    severity: severity(head),
                    rule: Some(format!("ngram/{}/{}", lang.as_str(), head.as_str())),
                    spans: vec![span],
                    threshold: Some(round3(thresholds[h])),
                    examples: self.tier.nearest(head, &self.q),
                });
            }
            self.fired[h] = pass;
        }
        if let Some(e) = self.enc.as_mut() {
            for (h, head) in e.tier.heads.meta.heads.iter().enumerate() {
                if enc_pass[h] && !e.fired[h] {
                    if !explained {
                        window_features_into(
                            &self.texts[..self.len],
                            model.meta.bits,
                            &mut self.window,
                            &mut self.q,
                        );
                        explained = true;
                    }
                    out.push(Finding {
                        detector: head.clone(),
                        side: model.meta.side,
                        tier: Tier::Encoder,
                        score: round3(combined[h]),
                        severity: severity(head),
                        rule: Some(format!("encoder/{}/{}", lang.as_str(), head.as_str())),
                        spans: vec![span],
                        threshold: Some(round3(e.tier.heads.meta.combined[h].get(lang))),
                        examples: self.tier.nearest(head, &self.q),
                    });
                }
                e.fired[h] = enc_pass[h];
            }
        }
    }
}

/// The share of a head's limit (its n-gram threshold, or the encoder's gate) that a window
/// must stay under to be quiet ([`WindowScan::quiet`]): the words still to come can raise the
/// score, so a prefix near the limit is held (measured: `load/results/2026-12-07-ttft-early.md`).
const EARLY_MARGIN: f32 = 0.5;

impl WindowScan<'_> {
    /// Whether the window that `seg` would end, if it were the text's last sentence (the
    /// sentences before it in the window as they stand), is quiet: long enough for the model
    /// to judge (a shorter lead-in, such as "bie zou", can be the harm itself), every head's
    /// n-gram probability under [`EARLY_MARGIN`] of its threshold, and, with the encoder, the
    /// encoder's view of it too: where some head's n-gram probability reaches [`EARLY_MARGIN`]
    /// of its gate (so the encoder would be asked about the window), the window is embedded
    /// and every head's fused probability must be under [`EARLY_MARGIN`] of its threshold. A
    /// quiet window gives no learned finding. Reads nothing after `seg` and changes nothing
    /// but the cached embedding of the user turn. For the relay's early release of a prefix
    /// of an unfinished sentence (see [`crate::Stream::releasable`]); with the encoder it may
    /// embed (milliseconds).
    pub(crate) fn quiet(&mut self, seg: &str) -> bool {
        let mut scratch = Normalized::new();
        let mut norm = String::new();
        crate::normalize::quick_text(seg, &mut scratch, &mut norm);
        if norm.trim().is_empty() {
            // `sentence` adds no window for it.
            return true;
        }
        let model = &self.tier.model;
        let mut win = Partial::default();
        let (mut cjk, mut latin) = model.add_text_counting(&norm, NS_TEXT, &mut win);
        // The oldest sentence leaves a full window.
        let keep = usize::from(self.len == WINDOW);
        for s in &self.last[keep..self.len] {
            win.add(&s.part);
            cjk += s.cjk;
            latin += s.latin;
        }
        if win.n < model::MIN_DECIDE {
            // Too short for the model to judge: not quiet (a short lead-in such as "bie zou"
            // can be the harm itself).
            return false;
        }
        let lang = TextLang::from_counts(cjk as usize, latin as usize);
        let nh = model.meta.heads.len();
        let mut probs = [0.0f32; STRIDE];
        for (p, z) in probs
            .iter_mut()
            .zip(model.logits(&win, self.ctx.as_ref()))
            .take(nh)
        {
            *p = model::sigmoid(z);
        }
        let Some(e) = self.enc.as_mut() else {
            return (0..nh).all(|h| probs[h] < EARLY_MARGIN * model.meta.thresholds[h].get(lang));
        };
        let heads = &e.tier.heads;
        if !(0..nh).all(|h| probs[h] < EARLY_MARGIN * heads.meta.ngram[h].get(lang)) {
            return false;
        }
        if (0..nh).all(|h| probs[h] < EARLY_MARGIN * heads.meta.gate[h]) {
            // The encoder would not be asked about this window.
            return true;
        }
        // The encoder would be asked: ask it, as the finished sentence's window would.
        let mut text = self.orig[keep..self.len].concat();
        push_visible(seg, &mut text);
        let emb = e.tier.embedder.embed(&text);
        if heads.meta.with_context && e.ctx_emb.is_none() {
            e.ctx_emb = e.context.as_deref().map(|c| e.tier.embedder.embed(c));
        }
        let pe = heads.probs(&emb, e.ctx_emb.as_deref(), &probs[..nh]);
        let fused = heads.fused();
        (0..nh).all(|h| {
            let p = if fused {
                pe[h]
            } else {
                (probs[h] + pe[h]) / 2.0
            };
            p < EARLY_MARGIN * heads.meta.combined[h].get(lang)
        })
    }

    /// Finds the current window's distinct features (into `q`), for explanations.
    fn explain(&mut self) {
        window_features_into(
            &self.texts[..self.len],
            self.tier.model.meta.bits,
            &mut self.window,
            &mut self.q,
        );
    }
}

/// [`window_features`] with a thread's bit per bucket (allocated once per thread).
fn window_features_into(texts: &[String], bits: u32, window: &mut String, q: &mut Vec<u32>) {
    thread_local! {
        static SEEN: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SEEN.with(|seen| match seen.try_borrow_mut() {
        Ok(mut seen) => window_features(texts, bits, window, &mut seen, q),
        Err(_) => window_features(texts, bits, window, &mut Vec::new(), q),
    });
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
    fn without_the_encoder_a_lexical_finding_needs_the_veto_level() {
        use super::model::Thresholds;
        let text = "I want to kill myself tonight";
        let both = crate::Tiers {
            lexical: true,
            ngram: true,
            encoder: false,
        };
        let lexical_crisis = |det: &crate::Detectors| {
            det.scan_tiers(Side::User, text, None, both)
                .iter()
                .any(|f| f.detector == DetectorId::Crisis && f.tier == Tier::Lexical)
        };
        let mut model = builtin_model(Side::User).unwrap();
        let h = model.head(&DetectorId::Crisis).unwrap();
        let mut det = crate::Detectors::builtin();
        model.meta.veto = vec![Thresholds::all(0.0); model.meta.heads.len()];
        det.set_ngram_model(model.clone());
        assert!(lexical_crisis(&det), "no veto: the lexical finding stands");
        // A level no probability reaches overrules every lexical finding of the head.
        model.meta.veto[h] = Thresholds::all(1.01);
        assert!(
            (model.embedded_confirm(h, TextLang::En) - 1.01).abs() < 1e-6
                && model.confirm(h, TextLang::En) < 1.0,
            "the veto is read only without the encoder"
        );
        let back = NgramModel::from_bytes(&model.to_bytes()).unwrap();
        assert_eq!(back.meta.veto, model.meta.veto);
        det.set_ngram_model(model);
        assert!(!lexical_crisis(&det), "overruled by the veto");
    }

    #[test]
    fn context_labels_are_features() {
        let Ok(model) = builtin_model(Side::Assistant) else {
            return;
        };
        let tier = NgramTier::new(model);
        let c = "I'm going to kill him tonight";
        for d in [DetectorId::Exit, DetectorId::ViolenceToOthers] {
            assert_ne!(
                tier.context(c, std::slice::from_ref(&d)),
                tier.context(c, &[]),
                "{d:?}: every lexical label of the user turn is a feature"
            );
        }
    }

    #[test]
    fn script_counts_equal_a_count_by_characters() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(
                &"[a-zA-Z0-9 @\\[`{~好我㐀鿿龥é😭ｂ\u{3000}]{0,40}",
                |t| {
                    let want = t.chars().fold((0, 0), |(c, l), ch| {
                        (
                            c + u32::from(('\u{3400}'..='\u{9FFF}').contains(&ch)),
                            l + u32::from(ch.is_ascii_alphabetic()),
                        )
                    });
                    prop_assert_eq!(script(&t), want);
                    let counts = features::for_each_counting(&t, NS_TEXT, 19, |_| {});
                    prop_assert_eq!(counts, want);
                    Ok(())
                },
            )
            .unwrap();
    }

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

#[cfg(test)]
mod nearest_tests {
    use super::*;

    /// The definition [`NgramTier::nearest`] is held to, as first written: the window's
    /// features sorted and deduplicated; per example of the label, the features it shares
    /// with the window among those at most a fifth of the label's examples (at least 8)
    /// have; cosine of the two feature sets; the three best by score, then by index.
    fn reference(model: &NgramModel, sets: &[(usize, Vec<u32>)], window: &str) -> Vec<String> {
        let mut q = Vec::new();
        features::collect(window, NS_TEXT, model.meta.bits, &mut q);
        q.sort_unstable();
        q.dedup();
        let cap = (sets.len() / 5).max(8);
        let df = |f: &u32| {
            sets.iter()
                .filter(|(_, v)| v.binary_search(f).is_ok())
                .count()
        };
        let useful: Vec<u32> = q.iter().copied().filter(|f| df(f) <= cap).collect();
        let mut cands: Vec<(f32, usize)> = sets
            .iter()
            .filter_map(|(i, v)| {
                let c = useful.iter().filter(|f| v.binary_search(f).is_ok()).count();
                (c > 0).then(|| {
                    let d = ((q.len() * v.len()).max(1) as f32).sqrt();
                    (c as f32 / d, *i)
                })
            })
            .collect();
        cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        cands
            .iter()
            .take(3)
            .map(|&(_, i)| model.meta.examples[i].id.clone())
            .collect()
    }

    /// The examples of `head` (index, distinct features), as the definition reads them.
    fn example_sets(model: &NgramModel, head: &DetectorId) -> Vec<(usize, Vec<u32>)> {
        let bits = model.meta.bits;
        let mut n = Normalized::new();
        model
            .meta
            .examples
            .iter()
            .enumerate()
            .filter(|(_, e)| e.label == head.as_str())
            .map(|(i, e)| {
                let mut v = Vec::new();
                for (s, t) in sentences(&e.text) {
                    n.fill(&e.text[s..t]);
                    features::collect(&n.text, NS_TEXT, bits, &mut v);
                }
                v.sort_unstable();
                v.dedup();
                (i, v)
            })
            .collect()
    }

    #[test]
    fn nearest_equals_its_definition() {
        let mut found = 0;
        for side in [Side::User, Side::Assistant] {
            let Ok(model) = builtin_model(side) else {
                continue;
            };
            let tier = NgramTier::new(model);
            // Also through an index in parts of 7 examples (a label of more than 2^16).
            let small = NgramTier::new(tier.model.clone());
            let _ = small
                .examples
                .set(ExampleIndex::build_parts(&small.model, 7));
            let heads = tier.model.meta.heads.clone();
            let sets: Vec<Vec<(usize, Vec<u32>)>> =
                heads.iter().map(|h| example_sets(&tier.model, h)).collect();
            let texts: Vec<String> = tier
                .model
                .meta
                .examples
                .iter()
                .step_by(97)
                .map(|e| {
                    let mut n = Normalized::new();
                    n.fill(&e.text);
                    n.text.clone()
                })
                .chain([
                    String::new(),
                    "ok".to_owned(),
                    "i dont want to be here anymore 我好累".to_owned(),
                ])
                .collect();
            // Windows of one to three of those texts.
            let (mut window, mut seen, mut q) = (String::new(), Vec::new(), Vec::new());
            for (k, t) in texts.iter().enumerate() {
                let win: Vec<String> = (0..=k % 3)
                    .map(|j| texts[(k + j * 7) % texts.len()].clone())
                    .chain([t.clone()])
                    .collect();
                window_features(&win, tier.model.meta.bits, &mut window, &mut seen, &mut q);
                for (head, sets) in heads.iter().zip(&sets) {
                    let want = reference(&tier.model, sets, &win.join(" "));
                    found += usize::from(!want.is_empty());
                    assert_eq!(tier.nearest(head, &q), want, "{side:?} {head:?} {win:?}");
                    assert_eq!(small.nearest(head, &q), want, "{side:?} {head:?} {win:?}");
                }
                assert!(seen.iter().all(|&w| w == 0));
            }
        }
        assert!(found > 100, "{found}");
    }
}
