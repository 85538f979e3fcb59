//! The encoder tier: per-detector heads over a pretrained sentence encoder's embeddings (the
//! text's, and on the assistant side the user turn's beside it) and the n-gram tier's
//! scores of the same window: one hidden layer shared by the heads (version 2; version 1
//! files hold logistic heads over the embeddings alone and are still read). The encoder
//! itself comes from the caller as an [`Embedder`] (this crate does no I/O); the heads are
//! trained by `tutela train` where the model is present and stored with the n-gram models.
//!
//! The tier reads the same windows as the n-gram tier, but only those the n-gram tier does
//! not clear: a window reaches the encoder when some head's n-gram probability reaches that
//! head's gate (chosen on out-of-fold predictions so that no positive the tier would have
//! found is lost there), or when its last sentence drew a lexical finding of a head (which
//! the fused probability may then overrule). Version 2 heads read the n-gram scores as inputs, so their output is
//! the fused probability; version 1's decision is on the mean of the two tiers'.

use serde::{Deserialize, Serialize};
use tutela_types::{DetectorId, Side};

use super::model::{ModelError, Thresholds, Trained, sigmoid};

/// A sentence encoder (text → embedding), provided by the caller.
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// Floats per embedding.
    fn dim(&self) -> usize;
    /// The embedding of a text.
    fn embed(&self, text: &str) -> Vec<f32>;
    /// Identifies the model (name and digest), so heads trained on another model are refused.
    fn id(&self) -> String;
}

const MAGIC_V1: &[u8; 8] = b"TUTENCH1";
const MAGIC: &[u8; 8] = b"TUTENCH2";

/// Everything about the heads but their weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadsMeta {
    /// Which side's text they read.
    pub side: Side,
    /// The encoder they were trained on ([`Embedder::id`]).
    pub encoder: String,
    /// Floats per embedding.
    pub dim: usize,
    /// Whether the user turn's embedding is read beside the text's (assistant side).
    pub with_context: bool,
    /// The heads (same order as the n-gram model's).
    pub heads: Vec<DetectorId>,
    /// Per head: the intercept.
    pub bias: Vec<f32>,
    /// Units of the hidden layer (0: logistic heads over the inputs, version 1).
    #[serde(default)]
    pub hidden: usize,
    /// Per hidden unit: its intercept.
    #[serde(default)]
    pub hidden_bias: Vec<f32>,
    /// Whether the n-gram tier's scores of the window (a logit per head, over 4) are inputs
    /// after the embeddings: the heads' output is then the fused probability.
    #[serde(default)]
    pub ngram_inputs: bool,
    /// Per head: the threshold on the fused probability (version 1: on the mean of the
    /// n-gram and encoder probabilities).
    pub combined: Vec<Thresholds>,
    /// Per head: where the encoder ran, a lexical finding whose fused probability is below
    /// this is overruled (empty: never).
    #[serde(default)]
    pub confirm: Vec<Thresholds>,
    /// Per head: the n-gram tier's own threshold while the encoder runs beside it.
    pub ngram: Vec<Thresholds>,
    /// Per head: the n-gram probability from which a window reaches the encoder.
    pub gate: Vec<f32>,
    /// Neighbours the network reads (0: none): where set, its last inputs are, per head,
    /// the vote of the `knn` training examples whose embeddings are nearest the window's
    /// (the [`Bank`] stored after the weights), as `2 · share − 1`.
    #[serde(default)]
    pub knn: usize,
    /// Examples in the bank.
    #[serde(default)]
    pub knn_rows: usize,
    /// How sharply nearer neighbours count: a neighbour's weight is `exp(knn_temp · cosine)`.
    #[serde(default)]
    pub knn_temp: f32,
    /// How they were trained.
    pub trained: Trained,
}

/// The training examples' embeddings and labels that the heads' nearest-neighbour inputs
/// read: each example's unit embedding as `dim` signed bytes in the file (× 127, rounded;
/// widened to 16 bits in memory, where the dot products run fastest), and per head whether it
/// is a positive (2), a negative (1) or says nothing about the head (0). Similarities are
/// integer dot products, so a vote is the same on every machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bank {
    /// Floats per embedding.
    pub dim: usize,
    /// Heads per example.
    pub heads: usize,
    /// `rows × dim` quantised unit embeddings (each in -127..=127).
    pub rows: Vec<i16>,
    /// `rows × heads` labels.
    pub labels: Vec<u8>,
}

impl Bank {
    /// An empty bank for embeddings of `dim` floats and `heads` heads.
    pub fn new(dim: usize, heads: usize) -> Self {
        Self {
            dim,
            heads,
            ..Self::default()
        }
    }

    /// Examples in the bank.
    pub fn len(&self) -> usize {
        self.rows.len() / self.dim.max(1)
    }

    /// Whether the bank holds no example.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A unit embedding as signed bytes, widened (zeros for a zero vector).
    pub fn quantise(&self, v: &[f32]) -> Vec<i16> {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let mut out: Vec<i16> = v
            .iter()
            .map(|x| {
                if norm > 0.0 {
                    (x / norm * 127.0).round().clamp(-127.0, 127.0) as i16
                } else {
                    0
                }
            })
            .collect();
        out.resize(self.dim, 0);
        out
    }

    /// Adds an example: its embedding and, per head, its target (`None`: says nothing).
    pub fn push(&mut self, emb: &[f32], labels: &[Option<bool>]) {
        let q = self.quantise(emb);
        self.rows.extend(q);
        self.labels.extend(
            labels
                .iter()
                .copied()
                .chain(std::iter::repeat(None))
                .take(self.heads)
                .map(|l| match l {
                    None => 0u8,
                    Some(false) => 1,
                    Some(true) => 2,
                }),
        );
    }

    /// Per head, the share of positives among the `k` nearest examples (by cosine, ties to
    /// the earlier example) that have a label for the head, each weighted by
    /// `exp(temp · cosine)`; 0 where none has one. Examples for which `skip` holds are not
    /// neighbours (the trainer's out-of-fold votes).
    pub fn vote(&self, emb: &[f32], k: usize, temp: f32, skip: impl Fn(usize) -> bool) -> Vec<f32> {
        let mut out = vec![0.0f32; self.heads];
        if k == 0 || self.is_empty() {
            return out;
        }
        let q = self.quantise(emb);
        // The `k` nearest so far, nearest first; among equals, the earlier example (rows are
        // read in order, so a later one goes after its equals). No list of every similarity.
        let mut top: Vec<(i32, u32)> = Vec::with_capacity(k + 1);
        for (r, row) in self.rows.chunks_exact(self.dim.max(1)).enumerate() {
            if skip(r) {
                continue;
            }
            let d = dot_i16(&q, row);
            if top.len() == k && top.last().is_some_and(|w| w.0 >= d) {
                continue;
            }
            let at = top.partition_point(|x| x.0 >= d);
            top.insert(at, (d, r as u32));
            top.truncate(k);
        }
        let Some(&(best, _)) = top.first() else {
            return out;
        };
        let scale = 1.0 / (127.0f32 * 127.0);
        let best = best as f32 * scale;
        let mut num = vec![0.0f32; self.heads];
        let mut den = vec![0.0f32; self.heads];
        for &(d, r) in &top {
            let w = (temp * (d as f32 * scale - best)).exp();
            let labels = &self.labels[r as usize * self.heads..][..self.heads];
            for (h, &l) in labels.iter().enumerate() {
                if l != 0 {
                    den[h] += w;
                    num[h] += if l == 2 { w } else { 0.0 };
                }
            }
        }
        for h in 0..self.heads {
            if den[h] > 0.0 {
                out[h] = num[h] / den[h];
            }
        }
        out
    }
}

/// The dot product of two vectors of bytes widened to 16 bits (the shorter length), in
/// 32-bit integers: sixteen lanes, which the compiler turns into `pmaddwd` steps (measured
/// about three times faster than bytes widened in the loop).
fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0i32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: i32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            acc[k] += i32::from(x[k]) * i32::from(y[k]);
        }
    }
    acc.iter().sum::<i32>() + tail
}

/// Trained heads over an encoder.
#[derive(Debug, Clone)]
pub struct EncoderHeads {
    /// The header.
    pub meta: HeadsMeta,
    /// `heads × inputs` weights, row per head.
    pub weights: Vec<f32>,
    /// The examples the nearest-neighbour inputs read (empty unless `meta.knn` is set).
    pub bank: Bank,
}

impl EncoderHeads {
    /// Inputs of the network: the embeddings, then the n-gram scores where it reads them.
    pub fn inputs(&self) -> usize {
        self.meta.dim * if self.meta.with_context { 2 } else { 1 }
            + if self.meta.ngram_inputs {
                self.meta.heads.len()
            } else {
                0
            }
            + if self.meta.knn > 0 {
                self.meta.heads.len()
            } else {
                0
            }
    }

    /// Weights the header calls for: `hidden × inputs` then `heads × hidden`, or
    /// `heads × inputs` without a hidden layer.
    fn weights_len(&self) -> usize {
        let h = self.meta.heads.len();
        match self.meta.hidden {
            0 => h * self.inputs(),
            u => u * self.inputs() + h * u,
        }
    }

    /// Whether the heads' output is the fused probability (they read the n-gram scores).
    pub fn fused(&self) -> bool {
        self.meta.ngram_inputs
    }

    /// Reads a heads file's bytes (version 2, or version 1).
    pub fn from_bytes(b: &[u8]) -> Result<Self, ModelError> {
        let rest = b
            .strip_prefix(MAGIC)
            .or_else(|| b.strip_prefix(MAGIC_V1))
            .ok_or(ModelError::Format)?;
        let (len, rest) = rest.split_at_checked(4).ok_or(ModelError::Format)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (head, table) = rest.split_at_checked(len).ok_or(ModelError::Format)?;
        let meta: HeadsMeta =
            serde_json::from_slice(head).map_err(|e| ModelError::Header(e.to_string()))?;
        let h = meta.heads.len();
        let mut out = Self {
            meta,
            weights: Vec::new(),
            bank: Bank::default(),
        };
        let misfit = || ModelError::Header("heads file does not fit its header".into());
        let wl = out.weights_len();
        let (w, rest) = table
            .split_at_checked(wl.checked_mul(4).ok_or_else(misfit)?)
            .ok_or_else(misfit)?;
        out.weights = w
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let (rows, dim) = (out.meta.knn_rows, out.meta.dim);
        let bank_len = dim
            .checked_add(h)
            .and_then(|x| x.checked_mul(rows))
            .ok_or_else(misfit)?;
        if rest.len() != bank_len
            || out.meta.hidden_bias.len() != out.meta.hidden
            || !(out.meta.confirm.is_empty() || out.meta.confirm.len() == h)
            || out.meta.bias.len() != h
            || out.meta.combined.len() != h
            || out.meta.ngram.len() != h
            || out.meta.gate.len() != h
        {
            return Err(misfit());
        }
        let (r, l) = rest.split_at(rows * dim);
        out.bank = Bank {
            dim,
            heads: h,
            rows: r.iter().map(|&b| i16::from(b as i8)).collect(),
            labels: l.to_vec(),
        };
        Ok(out)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let head = serde_json::to_vec(&self.meta).unwrap_or_default();
        let mut out = Vec::with_capacity(12 + head.len() + 4 * self.weights.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(head.len() as u32).to_le_bytes());
        out.extend_from_slice(&head);
        for w in &self.weights {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend(self.bank.rows.iter().map(|&b| b as i8 as u8));
        out.extend_from_slice(&self.bank.labels);
        out
    }

    /// The network's input row: the text's embedding, the context's (zeros when absent), and
    /// the n-gram scores as logits over 4, as the header says.
    pub fn input_row(&self, text: &[f32], ctx: Option<&[f32]>, ngram: &[f32]) -> Vec<f32> {
        self.input_row_with(text, ctx, ngram, &self.votes(text, |_| false))
    }

    /// Per head, the neighbours' vote for an embedding as the header sets it (empty where the
    /// heads read none); examples for which `skip` holds are not neighbours.
    pub fn votes(&self, emb: &[f32], skip: impl Fn(usize) -> bool) -> Vec<f32> {
        if self.meta.knn == 0 {
            return Vec::new();
        }
        self.bank.vote(emb, self.meta.knn, self.meta.knn_temp, skip)
    }

    /// [`EncoderHeads::input_row`] with the neighbours' votes given (the trainer's are out
    /// of fold).
    pub fn input_row_with(
        &self,
        text: &[f32],
        ctx: Option<&[f32]>,
        ngram: &[f32],
        knn: &[f32],
    ) -> Vec<f32> {
        let d = self.meta.dim;
        let mut x = Vec::with_capacity(self.inputs());
        x.extend(text.iter().copied().chain(std::iter::repeat(0.0)).take(d));
        if self.meta.with_context {
            let c = ctx.unwrap_or(&[]);
            x.extend(c.iter().copied().chain(std::iter::repeat(0.0)).take(d));
        }
        if self.meta.ngram_inputs {
            let h = self.meta.heads.len();
            x.extend(
                ngram
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(0.0))
                    .take(h)
                    .map(ngram_input),
            );
        }
        if self.meta.knn > 0 {
            let h = self.meta.heads.len();
            x.extend(
                knn.iter()
                    .copied()
                    .chain(std::iter::repeat(0.0))
                    .take(h)
                    .map(|s| 2.0 * s - 1.0),
            );
        }
        x
    }

    /// Per head, the probability for a text's embedding (and the context's), with the n-gram
    /// tier's probabilities of the same window (read where the heads take them as inputs).
    pub fn probs(&self, text: &[f32], ctx: Option<&[f32]>, ngram: &[f32]) -> Vec<f32> {
        let x = self.input_row(text, ctx, ngram);
        self.forward(&x)
    }

    /// Per head, the probability for an input row.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let n = self.inputs();
        let u = self.meta.hidden;
        if u == 0 {
            return self
                .weights
                .chunks_exact(n)
                .zip(&self.meta.bias)
                .map(|(w, b)| sigmoid(*b + dot(w, x)))
                .collect();
        }
        let (w1, w2) = self.weights.split_at(u * n);
        let hid: Vec<f32> = w1
            .chunks_exact(n)
            .zip(&self.meta.hidden_bias)
            .map(|(w, b)| (*b + dot(w, x)).max(0.0))
            .collect();
        w2.chunks_exact(u)
            .zip(&self.meta.bias)
            .map(|(w, b)| sigmoid(*b + dot(w, &hid)))
            .collect()
    }
}

/// An n-gram probability as the network reads it: its logit over 4 (clamped).
pub fn ngram_input(p: f32) -> f32 {
    let p = p.clamp(1e-4, 1.0 - 1e-4);
    (p / (1.0 - p)).ln() / 4.0
}

/// The dot product of two slices (the shorter length), summed in eight lanes so that the
/// compiler can keep them in vector registers (one chain of additions waits on each add);
/// the order of the additions is fixed, so the same inputs give the same bits.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Settings of the heads' network.
#[derive(Debug, Clone, Copy)]
pub struct MlpOptions {
    /// Hidden units (0: logistic heads).
    pub hidden: usize,
    /// Passes over the data.
    pub epochs: u32,
    /// Adam's step.
    pub lr: f32,
    /// L2 penalty on the weights.
    pub l2: f32,
    /// Rows per step.
    pub batch: usize,
    /// Seed of the initial weights and the shuffle (member `k` of an ensemble: `seed + k`).
    pub seed: u64,
    /// Networks trained from consecutive seeds and averaged (their logits): one network of
    /// `members × hidden` units whose output layer is the members' mean, so the file format
    /// and the forward pass are those of one network (`members` times the heads' work per
    /// window). Default 1: four members, on the 33,286-item corpus, scored within the
    /// seed-to-seed spread of one network on the validation split (some heads up by up to
    /// 0.01 F1, more false alarms on ordinary chat: `bench/learned/results.md`, ninth session).
    pub members: usize,
}

impl Default for MlpOptions {
    fn default() -> Self {
        Self {
            hidden: 128,
            epochs: 20,
            lr: 1e-3,
            l2: 1e-4,
            batch: 64,
            seed: 20261205,
            members: 1,
        }
    }
}

/// A seeded xorshift64* stream (the trainers' shuffles and initial weights).
pub(crate) struct Stream(pub(crate) u64);
impl Stream {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Adam's state for one parameter vector.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    fn new(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    /// One step on `w` with gradient `g` (plus `l2 · w`), at step `t` (from 1).
    fn step(&mut self, w: &mut [f32], g: &[f32], lr: f32, l2: f32, t: i32) {
        let (b1, b2) = (0.9f32, 0.999f32);
        let c1 = 1.0 - b1.powi(t);
        let c2 = 1.0 - b2.powi(t);
        for (((wk, &gk), mk), vk) in w.iter_mut().zip(g).zip(&mut self.m).zip(&mut self.v) {
            let gk = gk + l2 * *wk;
            *mk = b1 * *mk + (1.0 - b1) * gk;
            *vk = b2 * *vk + (1.0 - b2) * gk * gk;
            *wk -= lr * (*mk / c1) / ((*vk / c2).sqrt() + 1e-8);
        }
    }
}

/// Trains heads with one shared hidden layer (ReLU) on dense inputs: masked, class-balanced
/// cross-entropy per head, Adam, mini-batches in a seeded order, single-threaded (the same
/// inputs give the same bytes). Returns `(weights, hidden_bias, bias)` in the layout of
/// [`EncoderHeads`] (`hidden × inputs`, then `heads × hidden`). The classes are balanced over
/// the first `balanced` rows; the rows after them are trained on with the weights those
/// rows give (extra negatives that should not dilute the item rows' negatives).
pub(crate) fn fit_mlp(
    rows: &[Vec<f32>],
    targets: &[Vec<Option<(bool, f32)>>],
    balanced: usize,
    heads: usize,
    opt: &MlpOptions,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = rows.first().map_or(0, Vec::len);
    let u = opt.hidden.max(1);
    let mut rng = Stream(opt.seed | 1);
    let a1 = (6.0 / n.max(1) as f32).sqrt();
    let a2 = (3.0 / u as f32).sqrt();
    let mut w1: Vec<f32> = (0..u * n).map(|_| rng.unit() * a1).collect();
    let mut b1 = vec![0.0f32; u];
    let mut w2: Vec<f32> = (0..heads * u).map(|_| rng.unit() * a2).collect();
    let mut b2 = vec![0.0f32; heads];
    let (mut s_w1, mut s_b1, mut s_w2, mut s_b2) = (
        Adam::new(w1.len()),
        Adam::new(u),
        Adam::new(w2.len()),
        Adam::new(heads),
    );
    let cw = class_weights(&targets[..balanced.min(targets.len())], heads);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let (mut g_w1, mut g_b1, mut g_w2, mut g_b2) = (
        vec![0.0f32; w1.len()],
        vec![0.0f32; u],
        vec![0.0f32; w2.len()],
        vec![0.0f32; heads],
    );
    let mut hid = vec![0.0f32; u];
    let mut gh = vec![0.0f32; u];
    let mut t = 0i32;
    for _ in 0..opt.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        for batch in order.chunks(opt.batch.max(1)) {
            g_w1.iter_mut().for_each(|x| *x = 0.0);
            g_b1.iter_mut().for_each(|x| *x = 0.0);
            g_w2.iter_mut().for_each(|x| *x = 0.0);
            g_b2.iter_mut().for_each(|x| *x = 0.0);
            let scale = 1.0 / batch.len() as f32;
            for &i in batch {
                let x = &rows[i];
                for (j, hj) in hid.iter_mut().enumerate() {
                    *hj = (b1[j] + dot(&w1[j * n..(j + 1) * n], x)).max(0.0);
                }
                gh.iter_mut().for_each(|x| *x = 0.0);
                for h in 0..heads {
                    let Some((y, wt)) = targets[i][h] else {
                        continue;
                    };
                    let w2h = &w2[h * u..(h + 1) * u];
                    let p = sigmoid(b2[h] + dot(w2h, &hid));
                    let cls = if y { cw[h].0 } else { cw[h].1 };
                    let e = (p - if y { 1.0 } else { 0.0 }) * wt * cls * scale;
                    g_b2[h] += e;
                    for (g, &hv) in g_w2[h * u..(h + 1) * u].iter_mut().zip(&hid) {
                        *g += e * hv;
                    }
                    for (g, &wv) in gh.iter_mut().zip(w2h) {
                        *g += e * wv;
                    }
                }
                for j in 0..u {
                    if hid[j] <= 0.0 || gh[j] == 0.0 {
                        continue;
                    }
                    let e = gh[j];
                    g_b1[j] += e;
                    for (g, &xv) in g_w1[j * n..(j + 1) * n].iter_mut().zip(x) {
                        *g += e * xv;
                    }
                }
            }
            t += 1;
            s_w1.step(&mut w1, &g_w1, opt.lr, opt.l2, t);
            s_b1.step(&mut b1, &g_b1, opt.lr, 0.0, t);
            s_w2.step(&mut w2, &g_w2, opt.lr, opt.l2, t);
            s_b2.step(&mut b2, &g_b2, opt.lr, 0.0, t);
        }
    }
    w1.extend(w2);
    (w1, b1, b2)
}

/// [`fit_mlp`] for each of `opt.members` seeds (`opt.seed + k`), one after another (the
/// core crates start no threads), merged into one network of `members × hidden` units: the
/// hidden layers side by side, the output layer each member's weights over `members` and the
/// mean of the biases, so its logit is the mean of the members' logits (one member: the
/// bytes of [`fit_mlp`]).
pub(crate) fn fit_mlp_ensemble(
    rows: &[Vec<f32>],
    targets: &[Vec<Option<(bool, f32)>>],
    balanced: usize,
    heads: usize,
    opt: &MlpOptions,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let k = opt.members.max(1);
    let fits: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..k as u64)
        .map(|m| {
            let o = MlpOptions {
                seed: opt.seed.wrapping_add(m),
                members: 1,
                ..*opt
            };
            fit_mlp(rows, targets, balanced, heads, &o)
        })
        .collect();
    merge_members(
        &fits,
        rows.first().map_or(0, Vec::len),
        opt.hidden.max(1),
        heads,
    )
}

/// Merges member networks (`(weights, hidden_bias, bias)`, each of `u` hidden units over
/// `n` inputs) into one whose logit per head is the members' mean.
fn merge_members(
    fits: &[(Vec<f32>, Vec<f32>, Vec<f32>)],
    n: usize,
    u: usize,
    heads: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let k = fits.len();
    let scale = 1.0 / k as f32;
    let mut w1 = Vec::with_capacity(k * u * n);
    let mut hb = Vec::with_capacity(k * u);
    for (w, b, _) in fits {
        w1.extend_from_slice(&w[..u * n]);
        hb.extend_from_slice(b);
    }
    let mut w2 = Vec::with_capacity(heads * k * u);
    for h in 0..heads {
        for (w, _, _) in fits {
            w2.extend(
                w[u * n + h * u..u * n + (h + 1) * u]
                    .iter()
                    .map(|x| x * scale),
            );
        }
    }
    let bias = (0..heads)
        .map(|h| fits.iter().map(|f| f.2[h]).sum::<f32>() * scale)
        .collect();
    w1.extend(w2);
    (w1, hb, bias)
}

/// Per head, the weights of a positive and of a negative so that each class weighs half.
fn class_weights(targets: &[Vec<Option<(bool, f32)>>], heads: usize) -> Vec<(f32, f32)> {
    let mut cw = vec![(1.0f32, 1.0f32); heads];
    for (h, c) in cw.iter_mut().enumerate() {
        let (mut pos, mut neg) = (0.0f32, 0.0f32);
        for t in targets {
            match t[h] {
                Some((true, x)) => pos += x,
                Some((false, x)) => neg += x,
                None => {}
            }
        }
        if pos > 0.0 && neg > 0.0 {
            *c = ((pos + neg) / (2.0 * pos), (pos + neg) / (2.0 * neg));
        }
    }
    cw
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(hidden: usize, ngram_inputs: bool) -> HeadsMeta {
        HeadsMeta {
            side: Side::User,
            encoder: "toy".into(),
            dim: 2,
            with_context: false,
            heads: vec![DetectorId::Crisis],
            bias: vec![0.0],
            hidden,
            hidden_bias: vec![0.0; hidden],
            ngram_inputs,
            combined: vec![Thresholds::all(0.5)],
            confirm: Vec::new(),
            ngram: vec![Thresholds::all(0.5)],
            gate: vec![0.0],
            knn: 0,
            knn_rows: 0,
            knn_temp: 0.0,
            trained: Trained {
                corpus_sha256: String::new(),
                items: 0,
                validation_items: 0,
                seed: 1,
                epochs: 1,
            },
        }
    }

    #[test]
    fn a_version_1_file_is_read_as_logistic_heads_on_the_mean() {
        let v1 = serde_json::json!({
            "side": "user", "encoder": "toy", "dim": 2, "with_context": false,
            "heads": ["crisis"], "bias": [0.5], "combined": [{"en": 0.5, "zh": 0.5, "mixed": 0.5}],
            "ngram": [{"en": 0.5, "zh": 0.5, "mixed": 0.5}], "gate": [0.1],
            "trained": {"corpus_sha256": "", "items": 0, "validation_items": 0, "seed": 1, "epochs": 1}
        });
        let head = serde_json::to_vec(&v1).expect("json");
        let mut b = b"TUTENCH1".to_vec();
        b.extend((head.len() as u32).to_le_bytes());
        b.extend(&head);
        for w in [1.0f32, -1.0] {
            b.extend(w.to_le_bytes());
        }
        let h = EncoderHeads::from_bytes(&b).expect("version 1");
        assert!(!h.fused());
        assert_eq!(h.meta.hidden, 0);
        let p = h.probs(&[2.0, 1.0], None, &[0.9]);
        assert!((p[0] - sigmoid(1.5)).abs() < 1e-6);
    }

    #[test]
    fn the_vote_is_the_nearest_labelled_examples_weighted_share() {
        let mut bank = Bank::new(2, 2);
        bank.push(&[1.0, 0.0], &[Some(true), None]);
        bank.push(&[0.9, 0.1], &[Some(true), Some(false)]);
        bank.push(&[0.8, 0.6], &[Some(false), Some(false)]);
        assert_eq!(bank.len(), 3);
        // The two nearest: both positives for the first head; only the second has a label
        // for the second head, a negative.
        assert_eq!(bank.vote(&[1.0, 0.05], 2, 20.0, |_| false), vec![1.0, 0.0]);
        // Skipped examples are never neighbours.
        assert_eq!(bank.vote(&[1.0, 0.05], 2, 20.0, |r| r < 2), vec![0.0, 0.0]);
        // Three neighbours: the farther negative counts, less than the near positives
        // (cosine 0.83 against 1.00: a weight of about e^-3.4 each).
        let v = bank.vote(&[1.0, 0.05], 3, 20.0, |_| false);
        assert!(v[0] > 0.95 && v[0] < 0.995, "{v:?}");
        // No neighbour at all.
        assert_eq!(
            Bank::new(2, 1).vote(&[1.0, 0.0], 3, 20.0, |_| false),
            vec![0.0]
        );
    }

    #[test]
    fn a_heads_file_with_a_bank_round_trips_and_reads_the_vote() {
        let mut m = meta(0, false);
        m.knn = 1;
        m.knn_rows = 2;
        m.knn_temp = 20.0;
        let mut bank = Bank::new(2, 1);
        bank.push(&[1.0, 0.0], &[Some(true)]);
        bank.push(&[0.0, 1.0], &[Some(false)]);
        // Inputs: the embedding (2), then the vote (1); only the vote has a weight.
        let h = EncoderHeads {
            meta: m,
            weights: vec![0.0, 0.0, 4.0],
            bank,
        };
        assert_eq!(h.inputs(), 3);
        let back = EncoderHeads::from_bytes(&h.to_bytes()).expect("round trip");
        assert_eq!(back.bank, h.bank);
        assert!((back.probs(&[0.9, 0.1], None, &[])[0] - sigmoid(4.0)).abs() < 1e-6);
        assert!((back.probs(&[0.1, 0.9], None, &[])[0] - sigmoid(-4.0)).abs() < 1e-6);
        // A bank that does not fit the header is refused.
        let mut short = h.to_bytes();
        short.pop();
        assert!(EncoderHeads::from_bytes(&short).is_err());
    }

    #[test]
    fn the_byte_dot_product_is_the_plain_one() {
        let mut rng = Stream(11);
        for n in [0usize, 1, 15, 16, 17, 100, 512] {
            let a: Vec<i16> = (0..n)
                .map(|_| i16::from((rng.next() % 255) as i8))
                .collect();
            let b: Vec<i16> = (0..n)
                .map(|_| i16::from((rng.next() % 255) as i8))
                .collect();
            let plain: i32 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| i32::from(*x) * i32::from(*y))
                .sum();
            assert_eq!(dot_i16(&a, &b), plain, "length {n}");
        }
    }

    #[test]
    fn the_lane_sum_is_the_dot_product_at_every_length() {
        let mut rng = Stream(7);
        for n in 0..40 {
            let a: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
            let b: Vec<f32> = (0..n + 3).map(|_| rng.unit()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-5, "length {n}");
            assert_eq!(dot(&a, &b).to_bits(), dot(&a, &b).to_bits());
        }
    }

    #[test]
    fn the_network_learns_a_rule_deterministically_and_round_trips() {
        // Positive when the first input exceeds the second (not linear in the n-gram input).
        let rows: Vec<Vec<f32>> = (0..400)
            .map(|i| {
                let a = ((i * 37) % 101) as f32 / 101.0;
                let b = ((i * 53) % 97) as f32 / 97.0;
                vec![a, b, ngram_input(0.5)]
            })
            .collect();
        let targets: Vec<Vec<Option<(bool, f32)>>> = rows
            .iter()
            .map(|r| vec![Some((r[0] > r[1], 1.0))])
            .collect();
        let opt = MlpOptions {
            hidden: 8,
            epochs: 60,
            lr: 1e-2,
            ..MlpOptions::default()
        };
        let fit = fit_mlp(&rows, &targets, targets.len(), 1, &opt);
        assert_eq!(
            fit,
            fit_mlp(&rows, &targets, targets.len(), 1, &opt),
            "same inputs, same weights"
        );
        let (weights, hidden_bias, bias) = fit;
        let mut m = meta(8, true);
        m.bias = bias;
        m.hidden_bias = hidden_bias;
        let h = EncoderHeads {
            meta: m,
            weights,
            bank: Bank::default(),
        };
        let back = EncoderHeads::from_bytes(&h.to_bytes()).expect("round trip");
        assert_eq!(back.weights, h.weights);
        let right = rows
            .iter()
            .zip(&targets)
            .filter(|(r, t)| {
                (back.probs(&r[..2], None, &[0.5])[0] >= 0.5) == t[0].is_some_and(|x| x.0)
            })
            .count();
        assert!(right >= 360, "{right} of 400 right");
    }

    #[test]
    fn an_ensemble_is_one_network_whose_logit_is_the_members_mean() {
        let rows: Vec<Vec<f32>> = (0..200)
            .map(|i| {
                let a = ((i * 37) % 101) as f32 / 101.0;
                let b = ((i * 53) % 97) as f32 / 97.0;
                vec![a, b, ngram_input(0.5), ngram_input(0.5)]
            })
            .collect();
        let targets: Vec<Vec<Option<(bool, f32)>>> = rows
            .iter()
            .map(|r| vec![Some((r[0] > r[1], 1.0)), Some((r[0] + r[1] > 1.0, 1.0))])
            .collect();
        let opt = MlpOptions {
            hidden: 4,
            epochs: 5,
            lr: 1e-2,
            members: 3,
            ..MlpOptions::default()
        };
        let net = |(weights, hidden_bias, bias): (Vec<f32>, Vec<f32>, Vec<f32>), u: usize| {
            let mut m = meta(u, true);
            m.heads = vec![DetectorId::Crisis, DetectorId::ThirdParty];
            m.bias = bias;
            m.hidden_bias = hidden_bias;
            EncoderHeads {
                meta: m,
                weights,
                bank: Bank::default(),
            }
        };
        let merged = net(
            fit_mlp_ensemble(&rows, &targets, targets.len(), 2, &opt),
            12,
        );
        assert_eq!(
            merged.weights,
            fit_mlp_ensemble(&rows, &targets, targets.len(), 2, &opt).0,
            "same inputs, same weights"
        );
        let members: Vec<EncoderHeads> = (0..3u64)
            .map(|k| {
                let o = MlpOptions {
                    seed: opt.seed + k,
                    members: 1,
                    ..opt
                };
                net(fit_mlp(&rows, &targets, targets.len(), 2, &o), 4)
            })
            .collect();
        let logit = |p: f32| (p / (1.0 - p)).ln();
        for r in rows.iter().step_by(17) {
            let got = merged.forward(r);
            assert_eq!(got.len(), 2);
            for (h, &p) in got.iter().enumerate() {
                let mean = members.iter().map(|m| logit(m.forward(r)[h])).sum::<f32>() / 3.0;
                assert!((logit(p) - mean).abs() < 1e-3, "{} vs {mean}", logit(p));
            }
        }
        let one = MlpOptions { members: 1, ..opt };
        assert_eq!(
            fit_mlp_ensemble(&rows, &targets, targets.len(), 2, &one),
            fit_mlp(&rows, &targets, targets.len(), 2, &one),
            "one member is the single network"
        );
    }
}
