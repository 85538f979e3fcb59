//! The encoder tier: per-detector logistic heads over a pretrained sentence encoder's
//! embeddings (the text's, and on the assistant side the user turn's beside it). The encoder
//! itself comes from the caller as an [`Embedder`] (this crate does no I/O); the heads are
//! trained by `tutela train` where the model is present and stored with the n-gram models.
//!
//! The tier reads the same windows as the n-gram tier, but only those the n-gram tier does
//! not clear: a window reaches the encoder when some head's n-gram probability reaches that
//! head's gate (chosen on out-of-fold predictions so that no positive the tier would have
//! found is lost there). Its decision is on the mean of the two tiers' probabilities.

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

const MAGIC: &[u8; 8] = b"TUTENCH1";

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
    /// Per head: the threshold on the mean of the n-gram and encoder probabilities.
    pub combined: Vec<Thresholds>,
    /// Per head: the n-gram tier's own threshold while the encoder runs beside it.
    pub ngram: Vec<Thresholds>,
    /// Per head: the n-gram probability from which a window reaches the encoder.
    pub gate: Vec<f32>,
    /// How they were trained.
    pub trained: Trained,
}

/// Trained heads over an encoder.
#[derive(Debug, Clone)]
pub struct EncoderHeads {
    /// The header.
    pub meta: HeadsMeta,
    /// `heads × inputs` weights, row per head.
    pub weights: Vec<f32>,
}

impl EncoderHeads {
    /// Inputs per head.
    pub fn inputs(&self) -> usize {
        self.meta.dim * if self.meta.with_context { 2 } else { 1 }
    }

    /// Reads a heads file's bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, ModelError> {
        let rest = b.strip_prefix(MAGIC).ok_or(ModelError::Format)?;
        let (len, rest) = rest.split_at_checked(4).ok_or(ModelError::Format)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (head, table) = rest.split_at_checked(len).ok_or(ModelError::Format)?;
        let meta: HeadsMeta =
            serde_json::from_slice(head).map_err(|e| ModelError::Header(e.to_string()))?;
        let weights: Vec<f32> = table
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let h = meta.heads.len();
        let out = Self { meta, weights };
        if out.weights.len() != h * out.inputs()
            || out.meta.bias.len() != h
            || out.meta.combined.len() != h
            || out.meta.ngram.len() != h
            || out.meta.gate.len() != h
        {
            return Err(ModelError::Header(
                "heads file does not fit its header".into(),
            ));
        }
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
        out
    }

    /// Per head, the probability for a text's embedding (and the context's).
    pub fn probs(&self, text: &[f32], ctx: Option<&[f32]>) -> Vec<f32> {
        let n = self.inputs();
        let d = self.meta.dim;
        self.weights
            .chunks_exact(n)
            .zip(&self.meta.bias)
            .map(|(w, b)| {
                let mut z = *b + dot(&w[..d], text);
                if let Some(c) = ctx.filter(|_| self.meta.with_context) {
                    z += dot(&w[d..], c);
                }
                sigmoid(z)
            })
            .collect()
    }
}

/// The dot product of two slices (the shorter length).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Trains logistic heads on dense inputs: Adagrad, L2, class-balanced, a seeded shuffle.
/// `rows[i]` are the inputs, `targets[i][h]` the targets (`None`: no evidence).
pub(crate) fn fit_dense(
    rows: &[Vec<f32>],
    targets: &[Vec<Option<(bool, f32)>>],
    heads: usize,
    epochs: u32,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let n = rows.first().map_or(0, Vec::len);
    let mut w = vec![0.0f32; heads * n];
    let mut g = vec![0.0f32; heads * n];
    let mut b = vec![0.0f32; heads];
    let mut gb = vec![0.0f32; heads];
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
    let (lr, l2) = (0.05f32, 1e-4f32);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut state = seed | 1;
    for _ in 0..epochs {
        for i in (1..order.len()).rev() {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            order.swap(i, (r % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let x = &rows[i];
            for h in 0..heads {
                let Some((y, wt)) = targets[i][h] else {
                    continue;
                };
                let row = &mut w[h * n..(h + 1) * n];
                let p = sigmoid(b[h] + dot(row, x));
                let cls = if y { cw[h].0 } else { cw[h].1 };
                let e = (p - if y { 1.0 } else { 0.0 }) * wt * cls;
                gb[h] += e * e;
                b[h] -= lr * e / (gb[h] + 1e-8).sqrt();
                let gr = &mut g[h * n..(h + 1) * n];
                for ((wk, gk), &xk) in row.iter_mut().zip(gr.iter_mut()).zip(x) {
                    let d = e * xk + l2 * *wk;
                    *gk += d * d;
                    *wk -= lr * d / (*gk + 1e-8).sqrt();
                }
            }
        }
    }
    (w, b)
}
