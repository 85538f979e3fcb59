//! Training of the n-gram tier: deterministic (a seeded shuffle, single-threaded arithmetic),
//! one logistic head per detector of a side, Adagrad with L2, class-balanced. The decision
//! thresholds are chosen per detector and language on out-of-fold predictions of the
//! training split (5 folds, drawn by group), fused with the lexical tier the way
//! [`crate::Detectors`] fuses them, so the validation split is never looked at.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use tutela_types::{DetectorId, Side};

use super::encoder::{
    Bank, Embedder, EncoderHeads, HeadsMeta, MlpOptions, Stream, fit_mlp_ensemble,
};
use super::features::{self, NS_CONTEXT, NS_TEXT};
use super::model::{
    Example, Meta, NgramModel, Partial, STRIDE, TextLang, Thresholds, Trained, sigmoid,
};
use super::{NgramTier, WINDOW, sentences};
use crate::Detectors;
use crate::eval::Item;
use crate::normalize::Normalized;

/// The heads of each side, in column order.
pub fn heads(side: Side) -> Vec<DetectorId> {
    match side {
        Side::User => vec![
            DetectorId::Crisis,
            DetectorId::ThirdParty,
            DetectorId::Exit,
            DetectorId::Minor,
            DetectorId::Dependence,
            DetectorId::Distress,
            DetectorId::PropertyLoss,
            DetectorId::EatingDisorder,
            DetectorId::ViolenceToOthers,
        ],
        Side::Assistant => vec![
            DetectorId::ManipulativeExit,
            DetectorId::DeniesAi,
            DetectorId::PosesAsRelative,
            DetectorId::EncouragesSelfHarm,
            DetectorId::Sexual,
            DetectorId::SolicitsSecrets,
            DetectorId::Isolating,
            DetectorId::ClaimsTherapist,
            DetectorId::Gamification,
            DetectorId::AttachmentPraise,
            DetectorId::ComeBackPrompt,
        ],
    }
}

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Hash bits (`2^bits` rows).
    pub bits: u32,
    /// Passes over the data.
    pub epochs: u32,
    /// Adagrad step.
    pub lr: f32,
    /// L2 penalty per update.
    pub l2: f32,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Folds for the out-of-fold thresholds (0: keep 0.5).
    pub folds: u32,
    /// Share of the positives only the encoder finds (out of fold) that its gate keeps, for
    /// the heads that are not recall-first (crisis and third party keep every one): 1.0 lets
    /// every one of them reach the encoder; less trades recall for fewer embeddings.
    pub gate_keep: f32,
    /// The out-of-fold precision recall-first heads keep while their recall is maximised.
    pub recall_precision: f32,
    /// Where recall-first heads measure that precision: `None`, over every item with a
    /// target for the head (their own task, ordinary chat and the other tasks' items);
    /// `Some(cap)`, over their own task's items only (where the corpus puts the look-alikes
    /// at a known rate), with the items of ordinary chat and the other tasks that the head
    /// flags bounded apart, at `cap` of those negatives.
    pub recall_scope_cap: Option<f32>,
    /// The embedded tiers' fusion (no encoder) for recall-first heads: `Some(p)` chooses
    /// their n-gram threshold together with a veto level (a lexical finding stands only
    /// where the n-gram probability reaches it) for the best out-of-fold recall at precision
    /// `p` on their own task's items (as `tutela eval` reports them), flagging at most
    /// [`EMBEDDED_OUTSIDE_CAP`] of the negatives outside it (`recall_scope_cap`, if given);
    /// `None` keeps every lexical finding and the rule of [`Options::recall_precision`].
    pub embedded_precision: Option<f32>,
    /// The encoder heads' network (its seed: `mlp_seed`, else [`Options::seed`]).
    pub mlp: MlpOptions,
    /// Seed of the heads' network, when not [`Options::seed`]. Default 2: of the two seeds
    /// tried on the 29,583-item corpus (the default seed and 2), the one whose heads scored
    /// better on the validation split (`bench/learned/results.md`, 2026-12-07, eighth
    /// session), so that split's figures for the built-in heads are those of a choice
    /// between two; kept for the 33,286-item corpus of the ninth session (an average of four
    /// seeds, `MlpOptions::members`, measured no better there).
    pub mlp_seed: Option<u64>,
    /// Prefix rows for the assistant side's encoder heads: besides each window of a
    /// negative item, the window that a prefix of its last sentence would end (cut where
    /// the relay's early release may cut, up to [`PREFIXES_PER_SENTENCE`] per sentence),
    /// as a negative. The early release asks the heads about such prefixes
    /// ([`super::WindowScan::quiet`]); without these rows they are inputs the network has
    /// never seen (an ok reply's "That sounds like a " scored 0.567 for
    /// `encourages_self_harm`). Off by default: measured on the validation split, they let
    /// that prefix out one chunk earlier but did not move the first text of the split's ok
    /// replies (p50 75 / p90 150 ms of model pace either way) and flagged 23–31 more of its
    /// hard-negative replies (`bench/learned/results.md`, tenth session).
    pub prefix_rows: bool,
    /// Nearest neighbours the encoder heads' network reads (0: none): per head, the vote
    /// of the `knn` training examples whose embeddings are nearest the window's, out of
    /// fold while training (an example's own fold is never its neighbour); the examples'
    /// quantised embeddings and labels are stored in the heads file ([`Bank`]).
    pub knn: usize,
}

/// How sharply nearer neighbours count in the heads' vote (`exp(KNN_TEMP · cosine)`).
pub const KNN_TEMP: f32 = 20.0;

impl Default for Options {
    fn default() -> Self {
        Self {
            bits: 19,
            epochs: 8,
            lr: 0.2,
            l2: 1e-6,
            seed: 20261204,
            folds: 5,
            gate_keep: 0.9,
            recall_precision: RECALL_FIRST_PRECISION,
            recall_scope_cap: None,
            embedded_precision: None,
            mlp: MlpOptions::default(),
            mlp_seed: Some(2),
            prefix_rows: false,
            knn: 10,
        }
    }
}

/// The embedded fusion's out-of-fold precision for recall-first heads that
/// `--embedded-precision` suggests: the bar for the embedded tiers (recall 0.90 at
/// precision 0.85). Off by default: on the validation split it bought precision with more
/// crisis recall than noise (`bench/learned/results.md`, fourth session).
pub const EMBEDDED_PRECISION: f32 = 0.85;

/// The share of negatives outside a recall-first head's task that the embedded fusion may
/// flag: the bar for hard negatives (5 %).
pub const EMBEDDED_OUTSIDE_CAP: f32 = 0.05;

/// Which part of the corpus an item is in: 1 in 5 groups are held out for validation.
pub fn is_validation(item: &Item) -> bool {
    fnv(item.group.as_deref().unwrap_or(&item.id), 0x5eed).is_multiple_of(5)
}

fn fnv(s: &str, salt: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Whether an item trains the heads of `side`.
pub fn side_of(item: &Item) -> Side {
    if is_assistant_task(&item.task) {
        Side::Assistant
    } else {
        Side::User
    }
}

/// Whether a task's items are assistant replies (with the user turn as context).
pub fn is_assistant_task(task: &str) -> bool {
    matches!(
        task,
        "reply" | "claims_therapist" | "gamification" | "attachment_praise" | "come_back_prompt"
    )
}

/// Whether the model of a side with `heads` learns from an item: its task labels one of the
/// heads, or labels none (ordinary chat, a negative for every head).
pub fn trains(item: &Item, heads: &[DetectorId]) -> bool {
    let own = task_heads(&item.task);
    own.is_empty() || own.iter().any(|h| heads.iter().any(|d| d.as_str() == *h))
}

/// The heads a task labels directly.
fn task_heads(task: &str) -> &'static [&'static str] {
    match task {
        "crisis" => &["crisis", "third_party"],
        "exit" => &["exit"],
        "minor" => &["minor"],
        "dependence" => &["dependence"],
        "distress" => &["distress"],
        "property_loss" => &["property_loss"],
        "eating_disorder" => &["eating_disorder"],
        "violence_to_others" => &["violence_to_others"],
        "claims_therapist" => &["claims_therapist"],
        "gamification" => &["gamification"],
        "attachment_praise" => &["attachment_praise"],
        "come_back_prompt" => &["come_back_prompt"],
        "reply" => &[
            "manipulative_exit",
            "denies_ai",
            "poses_as_relative",
            "encourages_self_harm",
            "sexual",
            "solicits_secrets",
            "isolating",
        ],
        _ => &[],
    }
}

/// The targets of `item` for each of `heads` (see [`target`]).
pub fn targets(item: &Item, heads: &[DetectorId]) -> Vec<Option<(bool, f32)>> {
    heads.iter().map(|h| target(item, h)).collect()
}

/// The fold (of `folds`) an item of the training split falls in for out-of-fold predictions.
pub fn fold_of(item: &Item, folds: u32) -> u64 {
    fnv(item.group.as_deref().unwrap_or(&item.id), 0xf01d) % u64::from(folds.max(1))
}

/// The target of one head for one item: `Some((positive, weight))`, or `None` where the
/// item says nothing about the head (a farewell of the crisis task is not evidence against
/// `exit`; a crisis message may well show distress or a minor's cues).
fn target(item: &Item, head: &DetectorId) -> Option<(bool, f32)> {
    let h = head.as_str();
    let negative = crate::eval::is_negative(&item.label);
    if task_heads(&item.task).contains(&h) {
        return Some((item.label == h, 1.0));
    }
    if matches!(head.side(), Some(Side::Assistant)) {
        // A reply of another assistant-side task: its `ok` replies are negatives here too
        // (an ordinary companion reply claims no licence and gives no points); a reply
        // labelled for another head says nothing about this one (a streak reward may also
        // guilt a person into staying).
        return (is_assistant_task(&item.task) && negative).then_some((false, 1.0));
    }
    if item.task == "reply" {
        return None;
    }
    if negative {
        // A negative of another task is a negative here too.
        return Some((false, if h == "minor" { 0.3 } else { 1.0 }));
    }
    let excluded = match h {
        "exit" => item.task == "crisis",
        "distress" => matches!(
            item.task.as_str(),
            "crisis" | "dependence" | "eating_disorder" | "violence_to_others"
        ),
        "minor" => true,
        "crisis" | "third_party" => item.task == "distress",
        _ => false,
    };
    (!excluded).then_some((false, 0.5))
}

/// One item, featurised.
struct Row {
    text: Vec<u32>,
    ctx: Vec<u32>,
    targets: [Option<(bool, f32)>; STRIDE],
    lang: TextLang,
    /// Ordinary chat (the `chat` task): what most traffic is.
    ordinary: bool,
    /// Per head: the item's task labels the head directly (its own task).
    own: [bool; STRIDE],
}

fn featurise(det: &Detectors, items: &[&Item], heads: &[DetectorId], bits: u32) -> Vec<Row> {
    let mut norm = Normalized::new();
    items
        .iter()
        .map(|item| {
            let mut text = Vec::new();
            let (mut cjk, mut latin) = (0, 0);
            for (s, e) in sentences(&item.text) {
                norm.fill(&item.text[s..e]);
                features::collect(&norm.text, NS_TEXT, bits, &mut text);
                let (c, l) = super::script(&norm.text);
                cjk += c as usize;
                latin += l as usize;
            }
            let mut ctx = Vec::new();
            if let Some(c) = item.context.as_deref() {
                for (s, e) in sentences(c) {
                    norm.fill(&c[s..e]);
                    features::collect(&norm.text, NS_CONTEXT, bits, &mut ctx);
                }
                for l in det.context_labels(c) {
                    ctx.push(features::label(
                        &format!("ctx:{}", l.as_str()),
                        NS_CONTEXT,
                        bits,
                    ));
                }
            }
            let mut targets = [None; STRIDE];
            let mut own = [false; STRIDE];
            for (h, head) in heads.iter().enumerate() {
                targets[h] = target(item, head);
                own[h] = task_heads(&item.task).contains(&head.as_str());
            }
            Row {
                text,
                ctx,
                targets,
                lang: TextLang::from_counts(cjk, latin),
                ordinary: item.task == "chat",
                own,
            }
        })
        .collect()
}

/// Float weights while training.
struct Float {
    bits: u32,
    heads: usize,
    w: Vec<f32>,
    g: Vec<f32>,
    b: [f32; STRIDE],
    gb: [f32; STRIDE],
}

fn fit(rows: &[&Row], heads: usize, opt: &Options) -> Float {
    let n = (1usize << opt.bits) * STRIDE;
    let mut m = Float {
        bits: opt.bits,
        heads,
        w: vec![0.0; n],
        g: vec![0.0; n],
        b: [0.0; STRIDE],
        gb: [0.0; STRIDE],
    };
    // Class balance per head: each class weighs half.
    let mut cw = [(1.0f32, 1.0f32); STRIDE];
    for (h, c) in cw.iter_mut().enumerate().take(heads) {
        let (mut pos, mut neg) = (0.0f32, 0.0f32);
        for r in rows {
            match r.targets[h] {
                Some((true, w)) => pos += w,
                Some((false, w)) => neg += w,
                None => {}
            }
        }
        let tot = pos + neg;
        if pos > 0.0 && neg > 0.0 {
            *c = (tot / (2.0 * pos), tot / (2.0 * neg));
        }
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut rng = Stream(opt.seed | 1);
    for _ in 0..opt.epochs {
        for i in (1..order.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        for &i in &order {
            step(&mut m, rows[i], &cw, opt);
        }
    }
    m
}

fn step(m: &mut Float, r: &Row, cw: &[(f32, f32); STRIDE], opt: &Options) {
    let tn = super::model::scale(r.text.len());
    let cn = super::model::scale(r.ctx.len());
    let mut z = m.b;
    for &f in &r.text {
        let row = &m.w[f as usize * STRIDE..][..STRIDE];
        for h in 0..m.heads {
            z[h] += row[h] * tn;
        }
    }
    for &f in &r.ctx {
        let row = &m.w[f as usize * STRIDE..][..STRIDE];
        for h in 0..m.heads {
            z[h] += row[h] * cn;
        }
    }
    let mut grad = [0.0f32; STRIDE];
    for h in 0..m.heads {
        if let Some((y, w)) = r.targets[h] {
            let p = sigmoid(z[h]);
            let cls = if y { cw[h].0 } else { cw[h].1 };
            grad[h] = (p - if y { 1.0 } else { 0.0 }) * w * cls;
        }
    }
    for (h, &g) in grad.iter().enumerate().take(m.heads) {
        if g != 0.0 {
            m.gb[h] += g * g;
            m.b[h] -= opt.lr * g / (m.gb[h] + 1e-8).sqrt();
        }
    }
    for (feats, x) in [(&r.text, tn), (&r.ctx, cn)] {
        for &f in feats.iter() {
            let base = f as usize * STRIDE;
            for (h, &g) in grad.iter().enumerate().take(m.heads) {
                if g == 0.0 {
                    continue;
                }
                let k = base + h;
                let gk = g * x + opt.l2 * m.w[k];
                m.g[k] += gk * gk;
                m.w[k] -= opt.lr * gk / (m.g[k] + 1e-8).sqrt();
            }
        }
    }
}

/// Quantises float weights to `i8` per head.
fn quantise(m: &Float) -> (Vec<i8>, Vec<f32>) {
    let mut scales = vec![0.0f32; m.heads];
    for row in m.w.chunks_exact(STRIDE) {
        for h in 0..m.heads {
            scales[h] = scales[h].max(row[h].abs());
        }
    }
    for s in &mut scales {
        *s = if *s > 0.0 { *s / 127.0 } else { 1.0 };
    }
    let q =
        m.w.chunks_exact(STRIDE)
            .flat_map(|row| {
                let mut out = [0i8; STRIDE];
                for h in 0..m.heads {
                    out[h] = (row[h] / scales[h]).round().clamp(-127.0, 127.0) as i8;
                }
                out
            })
            .collect();
    (q, scales)
}

fn to_model(m: &Float, side: Side, heads: &[DetectorId], trained: Trained) -> NgramModel {
    let (weights, scales) = quantise(m);
    let meta = Meta {
        side,
        bits: m.bits,
        heads: heads.to_vec(),
        scales,
        bias: m.b[..heads.len()].to_vec(),
        thresholds: vec![Thresholds::all(0.5); heads.len()],
        confirm: vec![Thresholds::all(0.0); heads.len()],
        veto: Vec::new(),
        trained,
        examples: Vec::new(),
    };
    // The parts fit by construction (bits and heads come from the options and the side).
    match NgramModel::from_parts(meta, weights) {
        Ok(m) => m,
        Err(_) => unreachable_model(),
    }
}

#[expect(
    clippy::panic,
    reason = "the trainer builds tables of the size it checks"
)]
fn unreachable_model() -> ! {
    panic!("trainer built a model of the wrong shape")
}

/// One window of an item as a scan sees it: the visible text of its sentences (what the
/// encoder embeds) and the n-gram tier's probabilities of the window.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub(crate) text: String,
    pub(crate) probs: [f32; STRIDE],
}

/// The user turn of `item` as the n-gram tier reads it, if it has one.
fn item_context(tier: &NgramTier, det: &Detectors, item: &Item) -> Option<Partial> {
    item.context
        .as_deref()
        .map(|c| tier.context(c, &det.context_labels(c)))
}

/// A sentence, or a prefix of one, as a part of a window: its n-gram features and its
/// visible text (what the encoder embeds); none for a blank one.
fn part(tier: &NgramTier, norm: &mut Normalized, seg: &str) -> Option<(Partial, String)> {
    norm.fill(seg);
    if norm.text.trim().is_empty() {
        return None;
    }
    let mut p = Partial::default();
    tier.model.add_text(&norm.text, NS_TEXT, &mut p);
    let mut visible = String::new();
    super::push_visible(seg, &mut visible);
    Some((p, visible))
}

/// The window of `parts`, in order; none if too short to decide on (a scan asks neither
/// tier about it).
fn window_of<'a>(
    tier: &NgramTier,
    parts: impl IntoIterator<Item = &'a (Partial, String)>,
    ctx: Option<&Partial>,
) -> Option<Window> {
    let mut win = Partial::default();
    let mut text = String::new();
    for (p, t) in parts {
        win.add(p);
        text.push_str(t);
    }
    (win.n >= super::model::MIN_DECIDE).then(|| Window {
        text,
        probs: tier.model.probs(&win, ctx),
    })
}

/// The windows of `item` a scan decides on, in order: one per sentence that is not blank,
/// holding up to [`WINDOW`] sentences, leaving out those too short to decide on.
pub(crate) fn item_windows(tier: &NgramTier, det: &Detectors, item: &Item) -> Vec<Window> {
    let ctx = item_context(tier, det, item);
    let mut norm = Normalized::new();
    let parts: Vec<(Partial, String)> = sentences(&item.text)
        .into_iter()
        .filter_map(|(s, e)| part(tier, &mut norm, &item.text[s..e]))
        .collect();
    (0..parts.len())
        .filter_map(|end| {
            window_of(
                tier,
                &parts[end.saturating_sub(WINDOW - 1)..=end],
                ctx.as_ref(),
            )
        })
        .collect()
}

/// How many prefixes of one sentence become training rows ([`Options::prefix_rows`]).
const PREFIXES_PER_SENTENCE: usize = 2;

/// The windows the early release asks about for `item`: per sentence, the window that a
/// prefix of it would end (the sentences before it in the window, and the prefix), cut after
/// a space or `，、：` as [`crate::Stream::releasable`] cuts, at up to
/// [`PREFIXES_PER_SENTENCE`] points spread over the sentence; windows too short to decide
/// on are left out (the early release holds them).
pub(crate) fn item_prefixes(tier: &NgramTier, det: &Detectors, item: &Item) -> Vec<Window> {
    let ctx = item_context(tier, det, item);
    let mut norm = Normalized::new();
    let mut parts: Vec<(Partial, String)> = Vec::new();
    let mut out = Vec::new();
    for (s, e) in sentences(&item.text) {
        let sentence = &item.text[s..e];
        let cuts: Vec<usize> = sentence
            .char_indices()
            .filter(|&(_, c)| {
                c.is_whitespace() || matches!(c, '\u{3001}' | '\u{FF0C}' | '\u{FF1A}')
            })
            .map(|(i, c)| i + c.len_utf8())
            .filter(|&i| !sentence[i..].trim().is_empty() && !sentence[..i].trim().is_empty())
            .collect();
        let mut chosen: Vec<usize> = (1..=PREFIXES_PER_SENTENCE)
            .filter_map(|k| {
                cuts.get(cuts.len() * k / (PREFIXES_PER_SENTENCE + 1))
                    .copied()
            })
            .collect();
        chosen.dedup();
        let before = parts.len().saturating_sub(WINDOW - 1);
        for cut in chosen {
            let Some(prefix) = part(tier, &mut norm, &sentence[..cut]) else {
                continue;
            };
            out.extend(window_of(
                tier,
                parts[before..].iter().chain([&prefix]),
                ctx.as_ref(),
            ));
        }
        parts.extend(part(tier, &mut norm, sentence));
    }
    out
}

/// Per head, the window-max probability of every item (as a scan would see it).
pub(crate) fn item_probs(tier: &NgramTier, det: &Detectors, item: &Item) -> [f32; STRIDE] {
    window_max(&item_windows(tier, det, item))
}

fn window_max(windows: &[Window]) -> [f32; STRIDE] {
    let mut out = [0.0f32; STRIDE];
    for w in windows {
        for (o, p) in out.iter_mut().zip(w.probs) {
            *o = o.max(p);
        }
    }
    out
}

/// What training produced, with the figures to report.
#[derive(Debug)]
pub struct Outcome {
    /// The model (trained on the training split, thresholds from its folds).
    pub model: NgramModel,
    /// Items in the training split.
    pub train_items: usize,
    /// Items in the validation split.
    pub validation_items: usize,
    /// The encoder heads, when an embedder was given.
    pub heads: Option<EncoderHeads>,
    /// Share of the training split's negatives whose n-gram scores pass the encoder's gate
    /// (how much ordinary traffic reaches the encoder).
    pub gate_rate: Option<f64>,
    /// The same share for the corpus's ordinary chat items alone (user side).
    pub gate_rate_chat: Option<f64>,
    /// The training split's ids with their out-of-fold n-gram probabilities (empty without
    /// folds), for analysis.
    pub oof: Vec<(String, [f32; STRIDE])>,
}

/// Trains a side's model on the training split of `items` (every item of the side that is
/// not held out); `det` is the lexical tier, for context labels and the fused thresholds.
pub fn train_side(det: &Detectors, items: &[Item], side: Side, opt: &Options) -> Outcome {
    train_side_with(det, items, side, opt, None)
}

/// Like [`train_side`], also training heads over `embedder` (the encoder tier).
pub fn train_side_with(
    det: &Detectors,
    items: &[Item],
    side: Side,
    opt: &Options,
    embedder: Option<&dyn Embedder>,
) -> Outcome {
    let heads = heads(side);
    let mine: Vec<&Item> = items
        .iter()
        .filter(|i| side_of(i) == side && trains(i, &heads))
        .collect();
    let train: Vec<&Item> = mine.iter().copied().filter(|i| !is_validation(i)).collect();
    let validation_items = mine.len() - train.len();
    let rows = featurise(det, &train, &heads, opt.bits);
    let mut digest = Sha256::new();
    for i in &train {
        digest.update(i.id.as_bytes());
        digest.update([0]);
        digest.update(i.label.as_bytes());
        digest.update([0]);
        digest.update(i.text.as_bytes());
        digest.update([0]);
        digest.update(i.context.as_deref().unwrap_or("").as_bytes());
        digest.update([0xff]);
    }
    let trained = Trained {
        corpus_sha256: hex(&digest.finalize()),
        items: train.len(),
        validation_items,
        seed: opt.seed,
        epochs: opt.epochs,
    };
    // Out-of-fold probabilities for the thresholds.
    let mut oof = vec![[0.0f32; STRIDE]; train.len()];
    let mut oof_windows: Vec<Vec<Window>> = vec![Vec::new(); train.len()];
    let mut oof_prefixes: Vec<Vec<Window>> = vec![Vec::new(); train.len()];
    let prefixes = opt.prefix_rows && side == Side::Assistant && embedder.is_some();
    if opt.folds > 1 {
        for k in 0..u64::from(opt.folds) {
            let fold = |i: &Item| {
                fnv(i.group.as_deref().unwrap_or(&i.id), 0xf01d) % u64::from(opt.folds) == k
            };
            let fit_rows: Vec<&Row> = train
                .iter()
                .zip(&rows)
                .filter(|(i, _)| !fold(i))
                .map(|(_, r)| r)
                .collect();
            let m = fit(&fit_rows, heads.len(), opt);
            let tier = NgramTier::new(to_model(&m, side, &heads, trained.clone()));
            for (j, i) in train.iter().enumerate() {
                if fold(i) {
                    oof_windows[j] = item_windows(&tier, det, i);
                    oof[j] = window_max(&oof_windows[j]);
                    if prefixes {
                        oof_prefixes[j] = item_prefixes(&tier, det, i);
                    }
                }
            }
        }
    }
    let all: Vec<&Row> = rows.iter().collect();
    let m = fit(&all, heads.len(), opt);
    let mut model = to_model(&m, side, &heads, trained);
    // The lexical tier's findings on the training split (the thresholds fuse with them).
    let lex: Vec<Vec<DetectorId>> = if opt.folds > 1 {
        train
            .iter()
            .map(|i| {
                det.scan_tiers(side, &i.text, i.context.as_deref(), crate::Tiers::LEXICAL)
                    .into_iter()
                    .map(|f| f.detector)
                    .collect()
            })
            .collect()
    } else {
        Vec::new()
    };
    if opt.folds > 1 {
        let mut veto = vec![Thresholds::all(0.0); heads.len()];
        for (h, head) in heads.iter().enumerate() {
            let (fire, confirm) = choose(head, h, &rows, &oof, &lex, opt);
            if recall_first(head) && opt.embedded_precision.is_some() {
                veto[h] = confirm;
            } else {
                model.meta.confirm[h] = confirm;
            }
            model.meta.thresholds[h] = fire;
        }
        if opt.embedded_precision.is_some() {
            model.meta.veto = veto;
        }
    }
    model.meta.examples = examples(&train, &heads);
    let (enc_heads, gate_rate, gate_rate_chat) = match embedder {
        Some(e) if opt.folds > 1 => {
            let (h, rate, chat) = train_heads(
                e,
                side,
                &train,
                &rows,
                &Oof {
                    max: &oof,
                    windows: &oof_windows,
                    prefixes: &oof_prefixes,
                },
                &lex,
                &model,
                opt,
            );
            (Some(h), Some(rate), chat)
        }
        _ => (None, None, None),
    };
    let oof = if opt.folds > 1 {
        train.iter().map(|i| i.id.clone()).zip(oof).collect()
    } else {
        Vec::new()
    };
    Outcome {
        model,
        train_items: train.len(),
        validation_items,
        heads: enc_heads,
        gate_rate,
        gate_rate_chat,
        oof,
    }
}

/// The training split's out-of-fold n-gram scores: per item, the window maximum, the windows
/// a scan decides on and the windows the early release asks about (prefix rows).
struct Oof<'a> {
    max: &'a [[f32; STRIDE]],
    windows: &'a [Vec<Window>],
    prefixes: &'a [Vec<Window>],
}

/// A row's target per head: none, or the class and the row's weight.
type RowTargets = Vec<Option<(bool, f32)>>;

/// The weight of a window's row beside its item's, in the encoder heads' training.
const WINDOW_ROW_WEIGHT: f32 = 0.5;

/// The encoder heads of a side: one network whose inputs are the text's embedding (and the
/// context's on the assistant side) and the n-gram tier's out-of-fold scores of the item, so
/// that its output is the fused probability; thresholds, the lexical confirm level and the
/// n-gram tier's own threshold beside it chosen on the network's out-of-fold output; then the
/// gate.
#[expect(clippy::too_many_arguments, reason = "the training state, passed once")]
fn train_heads(
    e: &dyn Embedder,
    side: Side,
    train: &[&Item],
    rows: &[Row],
    oof: &Oof<'_>,
    lex: &[Vec<DetectorId>],
    model: &NgramModel,
    opt: &Options,
) -> (EncoderHeads, f64, Option<f64>) {
    let with_context = side == Side::Assistant;
    let nh = model.meta.heads.len();
    let mlp = MlpOptions {
        seed: opt.mlp_seed.unwrap_or(opt.seed),
        ..opt.mlp
    };
    let mut shape = EncoderHeads {
        meta: heads_meta(e, side, with_context, model, vec![0.0; nh], &mlp),
        weights: Vec::new(),
        bank: Bank::default(),
    };
    let mut cache: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let mut embed = |t: &str| -> Vec<f32> {
        cache
            .entry(t.to_owned())
            .or_insert_with(|| e.embed(t))
            .clone()
    };
    // The neighbours' bank: every training item's text, with its targets. A row of an item
    // reads the votes of the other folds' items only (with one fold, of every other item),
    // so the network learns how far to trust a vote that did not see the item itself.
    let folds: Vec<u64> = train.iter().map(|i| fold_of(i, opt.folds)).collect();
    if opt.knn > 0 {
        let mut bank = Bank::new(e.dim(), nh);
        for (j, i) in train.iter().enumerate() {
            let labels: Vec<Option<bool>> = rows[j].targets[..nh]
                .iter()
                .map(|t| t.map(|(p, _)| p))
                .collect();
            bank.push(&embed(&i.text), &labels);
        }
        shape.meta.knn = opt.knn;
        shape.meta.knn_rows = bank.len();
        shape.meta.knn_temp = KNN_TEMP;
        shape.bank = bank;
    }
    let shape = shape;
    let row = |emb: &[f32], ctx: Option<&[f32]>, ngram: &[f32], j: usize| -> Vec<f32> {
        let votes = shape.votes(emb, |b| {
            if opt.folds > 1 {
                folds[b] == folds[j]
            } else {
                b == j
            }
        });
        shape.input_row_with(emb, ctx, ngram, &votes)
    };
    // The network learns from each item whole and from each window of it a scan embeds:
    // a window of a negative item is a negative (a scan flags the item if any window
    // fires), a window of a positive one says nothing about the positive head (its signal
    // may be in another window). Without the windows, a short sentence alone ("That sounds
    // hard.") is an input the network has never seen.
    let mut inputs: Vec<Vec<f32>> = Vec::new();
    let mut targets: Vec<Vec<Option<(bool, f32)>>> = Vec::new();
    let mut owner: Vec<usize> = Vec::new();
    // Per item, the inputs of the windows a scan decides on (its score is their maximum).
    let mut windows: Vec<Vec<Vec<f32>>> = Vec::with_capacity(train.len());
    let mut prefix_rows: Vec<(Vec<f32>, RowTargets, usize)> = Vec::new();
    // A window's (or a prefix's) targets: its item's negatives, at the window's weight.
    let window_targets = |j: usize| -> RowTargets {
        rows[j].targets[..nh]
            .iter()
            .map(|t| match t {
                Some((false, wt)) => Some((false, wt * WINDOW_ROW_WEIGHT)),
                _ => None,
            })
            .collect()
    };
    for (j, (i, p)) in train.iter().zip(oof.max).enumerate() {
        let c = i.context.as_deref().map(&mut embed);
        let t = embed(&i.text);
        inputs.push(row(&t, c.as_deref(), &p[..nh], j));
        targets.push(rows[j].targets[..nh].to_vec());
        owner.push(j);
        let mut mine = Vec::new();
        for w in &oof.windows[j] {
            let x = row(&embed(&w.text), c.as_deref(), &w.probs[..nh], j);
            let y = window_targets(j);
            if w.text.trim() != i.text.trim() && y.iter().any(Option::is_some) {
                inputs.push(x.clone());
                targets.push(y);
                owner.push(j);
            }
            mine.push(x);
        }
        // A prefix of a negative item's sentence is a negative, as its windows are; it is
        // not one of the windows a scan decides on. Its rows go after every item's rows,
        // out of the class balance (they would dilute the negatives a scan decides on).
        for w in &oof.prefixes[j] {
            let y = window_targets(j);
            if y.iter().any(Option::is_some) {
                prefix_rows.push((row(&embed(&w.text), c.as_deref(), &w.probs[..nh], j), y, j));
            }
        }
        windows.push(mine);
    }
    let balanced = inputs.len();
    for (x, y, j) in prefix_rows {
        inputs.push(x);
        targets.push(y);
        owner.push(j);
    }
    // `idx` ascends, so the rows of the class balance come first.
    let fitted = |idx: &[usize]| -> EncoderHeads {
        let x: Vec<Vec<f32>> = idx.iter().map(|&j| inputs[j].clone()).collect();
        let y: Vec<Vec<Option<(bool, f32)>>> = idx.iter().map(|&j| targets[j].clone()).collect();
        let (w, hb, b) = fit_mlp_ensemble(&x, &y, idx.partition_point(|&r| r < balanced), nh, &mlp);
        let mut h = shape.clone();
        h.meta.bias = b;
        h.meta.hidden_bias = hb;
        h.weights = w;
        h
    };
    // Out of fold, an item's score is the maximum over its windows, as a scan decides.
    let mut penc = vec![vec![0.0f32; nh]; train.len()];
    for k in 0..u64::from(opt.folds) {
        let idx: Vec<usize> = (0..inputs.len())
            .filter(|&r| fold_of(train[owner[r]], opt.folds) != k)
            .collect();
        let heads = fitted(&idx);
        for j in 0..train.len() {
            if fold_of(train[j], opt.folds) == k {
                for x in &windows[j] {
                    for (o, p) in penc[j].iter_mut().zip(heads.forward(x)) {
                        *o = o.max(p);
                    }
                }
            }
        }
    }
    let all: Vec<usize> = (0..inputs.len()).collect();
    let mut heads = fitted(&all);
    for (h, head) in model.meta.heads.iter().enumerate() {
        let (ngram, combined, confirm, gate) =
            choose_with_encoder(head, h, rows, oof.max, &penc, lex, model, opt);
        heads.meta.ngram[h] = ngram;
        heads.meta.combined[h] = combined;
        heads.meta.confirm[h] = confirm;
        heads.meta.gate[h] = gate;
    }
    // How much ordinary text reaches the encoder: negatives passing some head's gate.
    let (mut neg, mut gated, mut chat, mut chat_gated) = (0usize, 0usize, 0usize, 0usize);
    for (r, p) in rows.iter().zip(oof.max) {
        if r.targets[..nh]
            .iter()
            .all(|t| !matches!(t, Some((true, _))))
        {
            let g = usize::from((0..nh).any(|h| p[h] >= heads.meta.gate[h]));
            neg += 1;
            gated += g;
            if r.ordinary {
                chat += 1;
                chat_gated += g;
            }
        }
    }
    let chat_rate = (chat > 0).then(|| chat_gated as f64 / chat as f64);
    (heads, gated as f64 / neg.max(1) as f64, chat_rate)
}

fn heads_meta(
    e: &dyn Embedder,
    side: Side,
    with_context: bool,
    model: &NgramModel,
    bias: Vec<f32>,
    mlp: &MlpOptions,
) -> HeadsMeta {
    let nh = model.meta.heads.len();
    let hidden = mlp.hidden * mlp.members.max(1);
    HeadsMeta {
        side,
        encoder: e.id(),
        dim: e.dim(),
        with_context,
        heads: model.meta.heads.clone(),
        bias,
        hidden,
        hidden_bias: vec![0.0; hidden],
        ngram_inputs: true,
        combined: vec![Thresholds::all(0.5); nh],
        confirm: vec![Thresholds::all(0.0); nh],
        ngram: model.meta.thresholds.clone(),
        gate: vec![0.0; nh],
        knn: 0,
        knn_rows: 0,
        knn_temp: 0.0,
        trained: model.meta.trained.clone(),
    }
}

/// With the encoder beside it, per language: the n-gram tier's own threshold, the threshold
/// on the fused probability and the level below which the fused probability overrules a
/// lexical finding (recall-first heads: at most 0.1), by the same objective as [`choose`];
/// then the gate: the lowest n-gram probability of a positive only the encoder finds (or the
/// `gate_keep` quantile of them), less a margin.
#[expect(clippy::too_many_arguments, reason = "the training state, passed once")]
fn choose_with_encoder(
    head: &DetectorId,
    h: usize,
    rows: &[Row],
    oof: &[[f32; STRIDE]],
    penc: &[Vec<f32>],
    lex: &[Vec<DetectorId>],
    model: &NgramModel,
    opt: &Options,
) -> (Thresholds, Thresholds, Thresholds, f32) {
    let gate_keep = opt.gate_keep;
    let pick = |lang: Option<TextLang>| -> Option<(f32, f32, f32)> {
        let conf = model.confirm(h, lang.unwrap_or(TextLang::En));
        let pts: Vec<(f32, f32, bool, bool, Kind)> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| lang.is_none_or(|l| r.lang == l))
            .filter_map(|(j, r)| {
                r.targets[h].map(|(y, _)| {
                    (
                        oof[j][h],
                        penc[j][h],
                        y,
                        lex[j].contains(head) && oof[j][h] >= conf,
                        Kind::of(r, h),
                    )
                })
            })
            .collect();
        let kinds: Vec<(bool, Kind)> = pts.iter().map(|p| (p.2, p.4)).collect();
        let base = Base::of(&kinds);
        if pts.iter().filter(|p| p.2).count() < 15 {
            return None;
        }
        let ngs: Vec<f32> = (1..=19).map(|i| i as f32 * 0.05).chain([1.01]).collect();
        let cs: Vec<f32> = (3..=97).map(|i| i as f32 / 100.0).collect();
        let confirms: &[f32] = if recall_first(head) {
            &[0.0, 0.02, 0.05, 0.1]
        } else {
            &[0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3]
        };
        let mut best: Option<(f32, f32, f32, f32)> = None;
        for &cf in confirms {
            for &tn in &ngs {
                for &tc in &cs {
                    let score = score(
                        head,
                        opt,
                        base,
                        pts.iter().map(|&(p, pc, y, l, o)| {
                            (y, p >= tn || (l && pc >= cf) || pc >= tc, o)
                        }),
                    );
                    if best.is_none_or(|(s, _, _, _)| score > s) {
                        best = Some((score, tn, tc, cf));
                    }
                }
            }
        }
        best.map(|(_, a, b, c)| (a, b, c))
    };
    let pooled = pick(None).unwrap_or((model.meta.thresholds[h].en, 1.01, 0.0));
    let en = pick(Some(TextLang::En)).unwrap_or(pooled);
    let zh = pick(Some(TextLang::Zh)).unwrap_or(pooled);
    let mixed = pick(Some(TextLang::Mixed)).unwrap_or(if en.1 <= zh.1 { en } else { zh });
    let ngram = Thresholds {
        en: en.0.min(1.0),
        zh: zh.0.min(1.0),
        mixed: mixed.0.min(1.0),
    };
    let combined = Thresholds {
        en: en.1,
        zh: zh.1,
        mixed: mixed.1,
    };
    let confirm = Thresholds {
        en: en.2,
        zh: zh.2,
        mixed: mixed.2,
    };
    // The positives only the encoder finds: the fused decision passes, the n-gram tier's own
    // threshold does not, and no lexical finding of a head brings the window to the encoder
    // anyway (a scan embeds a window with a lexical finding whatever its n-gram scores). The
    // gate keeps `gate_keep` of them (1.0: every one, the lowest score less a margin).
    let mut needed: Vec<f32> = rows
        .iter()
        .enumerate()
        .filter(|(j, r)| {
            matches!(r.targets[h], Some((true, _)))
                && penc[*j][h] >= combined.get(r.lang)
                && oof[*j][h] < ngram.get(r.lang)
                && !lex[*j].iter().any(|d| model.head(d).is_some())
        })
        .map(|(j, _)| oof[j][h])
        .collect();
    needed.sort_by(f32::total_cmp);
    // A person at risk is worth an embedding: recall-first heads keep every such positive.
    let keep = if recall_first(head) {
        1.0
    } else {
        gate_keep.clamp(0.0, 1.0)
    };
    let drop = ((1.0 - keep) * needed.len() as f32).floor() as usize;
    let gate = needed.get(drop).copied().unwrap_or(1.0);
    // A window whose n-gram probability is far below the tier's own threshold is not worth
    // the encoder's time (ordinary small talk must not reach it): at least a quarter of the
    // lowest threshold for recall-first heads, half of it for the others.
    let low = ngram.en.min(ngram.zh).min(ngram.mixed);
    let floor = if recall_first(head) {
        0.25 * low
    } else {
        0.5 * low
    };
    (ngram, combined, confirm, (gate * 0.9).max(0.01).max(floor))
}

/// Share of ordinary chat a head may flag: most traffic is ordinary chat, so a threshold
/// that flags more of it over-blocks most people, whatever its precision on the task.
/// Recall-first heads (a person at risk) are not bound: a missed person costs more than a
/// help line shown to someone who did not need it (the figure is reported instead).
fn max_ordinary_flagged(head: &DetectorId) -> f32 {
    if recall_first(head) { 1.0 } else { 0.02 }
}

/// What an item with a target for a head is, for the choice of the head's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An item of the head's own task.
    Own,
    /// Ordinary chat.
    Ordinary,
    /// An item of another task.
    Other,
}

impl Kind {
    fn of(r: &Row, h: usize) -> Self {
        if r.own[h] {
            Kind::Own
        } else if r.ordinary {
            Kind::Ordinary
        } else {
            Kind::Other
        }
    }
}

/// How many ordinary items, and how many negatives outside the head's own task, a choice is
/// measured against.
#[derive(Debug, Clone, Copy)]
struct Base {
    ordinary: usize,
    outside_negatives: usize,
}

impl Base {
    fn of(points: &[(bool, Kind)]) -> Self {
        Base {
            ordinary: points.iter().filter(|p| p.1 == Kind::Ordinary).count(),
            outside_negatives: points.iter().filter(|p| !p.0 && p.1 != Kind::Own).count(),
        }
    }
}

/// Rules out (by a penalty larger than any objective) thresholds that flag more than
/// [`max_ordinary_flagged`] of the ordinary chat items (plus one item of slack), and, where
/// recall-first heads measure precision on their own task ([`Options::recall_scope_cap`]),
/// more than that cap of the negatives outside it.
fn penalty(head: &DetectorId, opt: &Options, base: Base, ordinary: usize, outside: usize) -> f32 {
    let over =
        |flagged: usize, share: f32, of: usize| of > 0 && flagged as f32 > share * of as f32 + 1.0;
    let scoped = recall_first(head).then_some(opt.recall_scope_cap).flatten();
    if over(ordinary, max_ordinary_flagged(head), base.ordinary)
        || scoped.is_some_and(|cap| over(outside, cap, base.outside_negatives))
    {
        100.0
    } else {
        0.0
    }
}

/// The selection score of one choice of thresholds: [`objective`] on its `(positive, fires,
/// kind)` points, less [`penalty`].
fn score(
    head: &DetectorId,
    opt: &Options,
    base: Base,
    points: impl Iterator<Item = (bool, bool, Kind)>,
) -> f32 {
    let scoped = recall_first(head) && opt.recall_scope_cap.is_some();
    let (mut tp, mut fp, mut fnn, mut ofp, mut outside) = (0.0f32, 0.0f32, 0.0f32, 0usize, 0usize);
    for (y, fire, k) in points {
        ofp += usize::from(k == Kind::Ordinary && fire);
        if scoped && k != Kind::Own {
            outside += usize::from(!y && fire);
            continue;
        }
        match (y, fire) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fnn += 1.0,
            _ => {}
        }
    }
    objective(head, opt, tp, fp, fnn) - penalty(head, opt, base, ofp, outside)
}

/// The out-of-fold precision recall-first heads keep while their recall is maximised, by
/// default.
const RECALL_FIRST_PRECISION: f32 = 0.8;

/// The selection objective: recall-first heads want the best recall at precision
/// [`Options::recall_precision`] or above (else the best F2), the others the best F1.
fn objective(head: &DetectorId, opt: &Options, tp: f32, fp: f32, fnn: f32) -> f32 {
    let prec = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let rec = if tp + fnn > 0.0 { tp / (tp + fnn) } else { 0.0 };
    if recall_first(head) {
        let f2 = if prec + rec > 0.0 {
            5.0 * prec * rec / (4.0 * prec + rec)
        } else {
            0.0
        };
        // The best recall at out-of-fold precision 0.8 (which held 0.85-0.9 on the
        // validation split: the model trained on every fold is surer than the fold models),
        // else the best F2.
        if prec >= opt.recall_precision {
            10.0 + rec
        } else {
            f2
        }
    } else if prec + rec > 0.0 {
        2.0 * prec * rec / (prec + rec)
    } else {
        0.0
    }
}

/// Heads tuned for recall (a person at risk, a reply that encourages self-harm).
fn recall_first(head: &DetectorId) -> bool {
    matches!(head, DetectorId::Crisis | DetectorId::ThirdParty)
}

/// The thresholds of one head per language on out-of-fold probabilities, fused with the
/// lexical tier the way a scan fuses them: a finding if the model's probability reaches
/// `fire`, or if the lexical tier fired and the probability reaches `confirm` (a lexical
/// finding the model is sure is wrong is overruled). Recall-first heads take the pair with
/// the best recall that keeps precision at 0.9 or above (else the best F2), the others the
/// best F1.
fn choose(
    head: &DetectorId,
    h: usize,
    rows: &[Row],
    oof: &[[f32; STRIDE]],
    lex: &[Vec<DetectorId>],
    opt: &Options,
) -> (Thresholds, Thresholds) {
    let pick = |lang: Option<TextLang>| -> Option<(f32, f32)> {
        let pts: Vec<(f32, bool, bool, Kind)> = rows
            .iter()
            .zip(oof)
            .zip(lex)
            .filter(|((r, _), _)| lang.is_none_or(|l| r.lang == l))
            .filter_map(|((r, p), l)| {
                r.targets[h].map(|(y, _)| (p[h], y, l.contains(head), Kind::of(r, h)))
            })
            .collect();
        let kinds: Vec<(bool, Kind)> = pts.iter().map(|p| (p.1, p.3)).collect();
        let base = Base::of(&kinds);
        let positives = pts.iter().filter(|p| p.1).count();
        if positives < 15 {
            return None;
        }
        let fires: Vec<f32> = (5..=95).map(|i| i as f32 / 100.0).collect();
        // A lexical finding that a person is at risk is never overruled by the model, unless
        // the embedded fusion's veto is asked for (then the level is the head's veto, read
        // only where no encoder runs: with the encoder, the fused network decides).
        let embedded = recall_first(head)
            .then_some(opt.embedded_precision)
            .flatten();
        let opt = &match embedded {
            Some(p) => Options {
                recall_precision: p,
                recall_scope_cap: Some(opt.recall_scope_cap.unwrap_or(EMBEDDED_OUTSIDE_CAP)),
                ..*opt
            },
            None => *opt,
        };
        let confirms: &[f32] = if embedded.is_some() {
            &[
                0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1.01,
            ]
        } else if recall_first(head) {
            &[0.0]
        } else {
            &[0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
        };
        let mut best: Option<(f32, f32, f32)> = None;
        for &c in confirms {
            for &t in &fires {
                let score = score(
                    head,
                    opt,
                    base,
                    pts.iter()
                        .map(|&(p, y, l, o)| (y, p >= t || (l && p >= c), o)),
                );
                if best.is_none_or(|(s, _, _)| score > s) {
                    best = Some((score, t, c));
                }
            }
        }
        best.map(|(_, t, c)| (t, c))
    };
    let pooled = pick(None).unwrap_or((0.5, 0.0));
    let en = pick(Some(TextLang::En)).unwrap_or(pooled);
    let zh = pick(Some(TextLang::Zh)).unwrap_or(pooled);
    let mixed = pick(Some(TextLang::Mixed)).unwrap_or(if en.0 <= zh.0 { en } else { zh });
    (
        Thresholds {
            en: en.0,
            zh: zh.0,
            mixed: mixed.0,
        },
        Thresholds {
            en: en.1,
            zh: zh.1,
            mixed: mixed.1,
        },
    )
}

/// Up to 300 positives per head, chosen by a hash of their id (not by file order), texts cut
/// at 400 bytes.
fn examples(train: &[&Item], heads: &[DetectorId]) -> Vec<Example> {
    let mut by: BTreeMap<&str, Vec<(u64, &Item)>> = BTreeMap::new();
    for i in train {
        if heads.iter().any(|h| h.as_str() == i.label) {
            by.entry(i.label.as_str())
                .or_default()
                .push((fnv(&i.id, 0xe8a), i));
        }
    }
    let mut out = Vec::new();
    for (label, mut v) in by {
        v.sort_by_key(|(k, _)| *k);
        for (_, i) in v.into_iter().take(300) {
            let mut end = i.text.len().min(400);
            while !i.text.is_char_boundary(end) {
                end -= 1;
            }
            out.push(Example {
                id: i.id.clone(),
                label: label.to_owned(),
                text: i.text[..end].to_owned(),
            });
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(
        own_tp: usize,
        own_fp: usize,
        own_fn: usize,
        outside_fp: usize,
    ) -> Vec<(bool, bool, Kind)> {
        let mut v = Vec::new();
        v.extend(std::iter::repeat_n((true, true, Kind::Own), own_tp));
        v.extend(std::iter::repeat_n((false, true, Kind::Own), own_fp));
        v.extend(std::iter::repeat_n((true, false, Kind::Own), own_fn));
        v.extend(std::iter::repeat_n((false, true, Kind::Other), outside_fp));
        v.extend(std::iter::repeat_n(
            (false, false, Kind::Other),
            100 - outside_fp,
        ));
        v
    }

    fn base(p: &[(bool, bool, Kind)]) -> Base {
        Base::of(&p.iter().map(|x| (x.0, x.2)).collect::<Vec<_>>())
    }

    #[test]
    fn prefix_rows_are_proper_prefixes_cut_where_the_early_release_cuts() {
        let det = Detectors::try_builtin().expect("built-in detectors");
        let tier = NgramTier::new(super::super::builtin_model(Side::Assistant).expect("model"));
        let item = Item {
            id: "t".into(),
            lang: "en".into(),
            task: "reply".into(),
            text: "That sounds like a really long day at work for you. I'm glad you told me \
                   about it, and I would love to hear what part of it felt the heaviest."
                .into(),
            label: "ok".into(),
            note: None,
            context: Some("Tell me about your day, please.".into()),
            group: None,
        };
        let whole: String = item_windows(&tier, &det, &item)
            .last()
            .expect("a window")
            .text
            .clone();
        let prefixes = item_prefixes(&tier, &det, &item);
        // Two sentences, two cuts each, every one long enough to decide on.
        assert_eq!(prefixes.len(), 2 * PREFIXES_PER_SENTENCE);
        let sentence_ends: Vec<usize> = item_windows(&tier, &det, &item)
            .iter()
            .map(|w| w.text.len())
            .collect();
        for w in &prefixes {
            // A prefix of the text, ending after a space, never at a sentence's end.
            assert!(whole.starts_with(&w.text), "{:?}", w.text);
            assert!(w.text.ends_with(' '), "{:?}", w.text);
            assert!(!sentence_ends.contains(&w.text.len()), "{:?}", w.text);
        }
        // The second sentence's prefixes carry the first sentence before them.
        assert!(
            prefixes[PREFIXES_PER_SENTENCE..]
                .iter()
                .all(|w| w.text.len() > sentence_ends[0])
        );
        // Chinese cuts after the full-width comma.
        let zh = Item {
            text: "今天真的辛苦你了，听起来工作上的事情很多，我很想知道哪一部分让你最累，我们可以慢慢聊。"
                .into(),
            lang: "zh".into(),
            ..item.clone()
        };
        let zh_prefixes = item_prefixes(&tier, &det, &zh);
        assert!(!zh_prefixes.is_empty());
        for w in zh_prefixes {
            assert!(w.text.ends_with('\u{FF0C}'), "{:?}", w.text);
        }
    }

    #[test]
    fn by_default_recall_first_precision_counts_every_item_with_a_target() {
        let opt = Options::default();
        // Own task: precision 80 / 90 = 0.89; with 20 false alarms outside: 80 / 110 = 0.73.
        let p = pts(80, 10, 20, 20);
        let s = score(&DetectorId::Crisis, &opt, base(&p), p.iter().copied());
        assert!(s < 10.0, "precision below 0.8 is F2 territory: {s}");
    }

    #[test]
    fn scoped_recall_first_precision_counts_the_own_task_and_caps_the_rest() {
        let mut opt = Options {
            recall_scope_cap: Some(0.25),
            ..Options::default()
        };
        let p = pts(80, 10, 20, 20);
        let s = score(&DetectorId::Crisis, &opt, base(&p), p.iter().copied());
        assert!(
            (s - 10.8).abs() < 1e-4,
            "own-task precision 0.89, recall 0.8: {s}"
        );
        // The same choice flags 20 of 100 negatives outside the task: over a cap of 0.1.
        opt.recall_scope_cap = Some(0.1);
        let s = score(&DetectorId::Crisis, &opt, base(&p), p.iter().copied());
        assert!(s < 0.0, "ruled out by the cap: {s}");
        // Heads that are not recall-first ignore the scope: F1 over every point.
        let s = score(&DetectorId::Exit, &opt, base(&p), p.iter().copied());
        let f1 = 2.0 * (80.0 / 110.0) * 0.8 / (80.0 / 110.0 + 0.8);
        assert!((s - f1).abs() < 1e-4, "{s} vs {f1}");
    }
}
