//! The network: USE multilingual v3's DAN + CNN encoder over the token ids of one or more
//! texts, batched so that every weight matrix is read once per batch.
//!
//! For a text of `T` tokens (with `<s>` and `</s>`):
//! 1. each token's row of the quantised table, dequantised (`q · scale + offset` of its chunk):
//!    `E`, `T × emb`;
//! 2. `X = layernorm(E · proj + b)`, `T × 3cnn`, one `cnn`-wide slice per n-gram branch;
//! 3. per branch of order `n` with `left` tokens of left context: two residual convolutions
//!    `H = relu(window(Xᵢ) · W1 + b1) + Xᵢ`, `Cᵢ = relu(window(H) · W2 + b2) + H`, where
//!    `window` sets each token's `n` neighbours (from `t - left`) side by side, zero past the
//!    text's ends;
//! 4. `F = layernorm([E | C₂ | C₃ | C₅])`, `T × (emb + 3cnn)`;
//! 5. `m = (Σₜ F · pool + T · b) / √T` (the sum taken before the product, which is linear);
//! 6. `y₀ = relu(m·d0)`, `y₁ = relu(m·p1 + y₀·d1)`, `y₂ = relu(y₁·d2)`,
//!    `z = tanh(y₁·p3 + y₂·d3)`, returned divided by its L2 norm.

use crate::matmul::{Packed, matmul};

/// The widths of the layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dims {
    /// Token embedding width (512).
    pub(crate) embedding: usize,
    /// Width of each n-gram branch (256).
    pub(crate) cnn: usize,
    /// Width of the pooled text vector (512).
    pub(crate) pooled: usize,
    /// Width of the first two dense layers (320).
    pub(crate) hidden: usize,
    /// Width of the third dense layer (512).
    pub(crate) wide: usize,
    /// Width of the output (512).
    pub(crate) output: usize,
}

impl Dims {
    /// Width of the feature rows: the embedding and the three branches.
    pub(crate) fn features(&self) -> usize {
        self.embedding + ORDERS.len() * self.cnn
    }
}

/// The n-gram branches: (order, tokens of left context).
pub(crate) const ORDERS: [(usize, usize); 3] = [(2, 0), (3, 1), (5, 2)];

/// The token table: 6-bit codes, four to three bytes, rows by token id; row `id` belongs to
/// chunk `id % chunks`, whose scale and offset dequantise it.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) codes: Vec<u8>,
    pub(crate) scale: Vec<f32>,
    pub(crate) offset: Vec<f32>,
}

/// One n-gram branch.
#[derive(Debug)]
pub(crate) struct Branch {
    pub(crate) order: usize,
    pub(crate) left: usize,
    pub(crate) w1: Packed,
    pub(crate) b1: Vec<f32>,
    pub(crate) w2: Packed,
    pub(crate) b2: Vec<f32>,
}

/// All the weights, packed for [`matmul`].
#[derive(Debug)]
pub(crate) struct Network {
    pub(crate) dims: Dims,
    pub(crate) eps: f32,
    pub(crate) table: Table,
    pub(crate) proj: Packed,
    pub(crate) proj_b: Vec<f32>,
    pub(crate) proj_ln: (Vec<f32>, Vec<f32>),
    pub(crate) branches: Vec<Branch>,
    pub(crate) feat_ln: (Vec<f32>, Vec<f32>),
    pub(crate) pool: Packed,
    pub(crate) pool_b: Vec<f32>,
    pub(crate) d0: Packed,
    pub(crate) p1: Packed,
    pub(crate) d1: Packed,
    pub(crate) d2: Packed,
    pub(crate) p3: Packed,
    pub(crate) d3: Packed,
}

/// Packs four 6-bit codes into three bytes.
pub(crate) fn pack6(codes: &[u8], out: &mut Vec<u8>) {
    for q in codes.chunks_exact(4) {
        out.push(q[0] | q[1] << 6);
        out.push(q[1] >> 2 | q[2] << 4);
        out.push(q[2] >> 4 | q[3] << 2);
    }
}

impl Table {
    /// Writes the dequantised row of token `id` into `out` (`embedding` floats); an id past
    /// the table (which the tokenizer never gives) reads as zeros.
    pub(crate) fn row(&self, id: u32, out: &mut [f32]) {
        let id = id as usize;
        let row_bytes = out.len() / 4 * 3;
        let Some(codes) = self.codes.get(id * row_bytes..(id + 1) * row_bytes) else {
            out.fill(0.0);
            return;
        };
        let chunk = id % self.scale.len().max(1);
        let (scale, offset) = (self.scale[chunk], self.offset[chunk]);
        for (q, o) in codes.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
            let (b0, b1, b2) = (q[0], q[1], q[2]);
            let v = [
                b0 & 63,
                b0 >> 6 | (b1 & 15) << 2,
                b1 >> 4 | (b2 & 3) << 4,
                b2 >> 2,
            ];
            for (o, v) in o.iter_mut().zip(v) {
                *o = f32::from(v) * scale + offset;
            }
        }
    }

    /// The bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.codes.len() + 8 * self.scale.len()
    }
}

impl Network {
    /// The bytes of weights held.
    pub(crate) fn bytes(&self) -> usize {
        let floats = self.proj_b.len()
            + self.proj_ln.0.len() * 2
            + self.feat_ln.0.len() * 2
            + self.pool_b.len()
            + self
                .branches
                .iter()
                .map(|b| b.b1.len() + b.b2.len())
                .sum::<usize>();
        let packed = [
            &self.proj, &self.pool, &self.d0, &self.p1, &self.d1, &self.d2, &self.p3, &self.d3,
        ]
        .iter()
        .map(|p| p.bytes())
        .chain(self.branches.iter().map(|b| b.w1.bytes() + b.w2.bytes()))
        .sum::<usize>();
        self.table.bytes() + floats * 4 + packed
    }

    /// Adds, for each span, the sum of the layer-normed feature rows of its core tokens into
    /// row `span.text` of `sums` (`features()` floats per text).
    pub(crate) fn feature_sums(&self, spans: &[Span<'_>], sums: &mut [f32]) {
        let d = self.dims;
        let (emb, cnn, feat) = (d.embedding, d.cnn, d.features());
        let width = ORDERS.len() * cnn;
        let total: usize = spans.iter().map(|s| s.ids.len()).sum();
        if total == 0 {
            return;
        }
        // Where each token's span starts and ends: the convolution windows stop there.
        let mut bounds = Vec::with_capacity(total);
        let mut start = 0;
        for s in spans {
            bounds.extend(std::iter::repeat_n(
                (start, start + s.ids.len()),
                s.ids.len(),
            ));
            start += s.ids.len();
        }

        // 1. Token rows, straight into the first columns of the feature rows.
        let mut feats = vec![0.0f32; total * feat];
        let ids = spans.iter().flat_map(|s| s.ids.iter());
        for (row, &id) in feats.chunks_exact_mut(feat).zip(ids) {
            self.table.row(id, &mut row[..emb]);
        }

        // 2. Projection and layer norm.
        let mut x = vec![0.0f32; total * width];
        matmul(&feats, feat, total, &self.proj, &mut x, width, false);
        for row in x.chunks_exact_mut(width) {
            add(row, &self.proj_b);
            layer_norm(row, &self.proj_ln.0, &self.proj_ln.1, self.eps);
        }

        // 3. The n-gram branches.
        let widest = ORDERS.iter().map(|&(n, _)| n).max().unwrap_or(1);
        let mut window = vec![0.0f32; total * widest * cnn];
        let mut h = vec![0.0f32; total * cnn];
        let mut c = vec![0.0f32; total * cnn];
        for (i, branch) in self.branches.iter().enumerate() {
            let xs = |t: usize| &x[t * width + i * cnn..t * width + (i + 1) * cnn];
            let n = branch.order;
            gather(&mut window, n, cnn, branch.left, &bounds, xs);
            matmul(&window, n * cnn, total, &branch.w1, &mut h, cnn, false);
            for (t, row) in h.chunks_exact_mut(cnn).enumerate() {
                for ((v, &b), &r) in row.iter_mut().zip(&branch.b1).zip(xs(t)) {
                    *v = (*v + b).max(0.0) + r;
                }
            }
            gather(&mut window, n, cnn, branch.left, &bounds, |t| {
                &h[t * cnn..(t + 1) * cnn]
            });
            matmul(&window, n * cnn, total, &branch.w2, &mut c, cnn, false);
            let column = emb + i * cnn;
            for (t, (row, res)) in c.chunks_exact(cnn).zip(h.chunks_exact(cnn)).enumerate() {
                let dst = &mut feats[t * feat + column..t * feat + column + cnn];
                for (((o, &v), &b), &r) in dst.iter_mut().zip(row).zip(&branch.b2).zip(res) {
                    *o = (v + b).max(0.0) + r;
                }
            }
        }
        drop((x, window, h, c));

        // 4. Layer norm of the core rows, summed per text.
        let mut rows = feats.chunks_exact_mut(feat);
        for span in spans {
            let sum = &mut sums[span.text * feat..(span.text + 1) * feat];
            for (t, row) in rows.by_ref().take(span.ids.len()).enumerate() {
                if span.core.contains(&t) {
                    layer_norm(row, &self.feat_ln.0, &self.feat_ln.1, self.eps);
                    add(sum, row);
                }
            }
        }
    }

    /// From each text's feature sum and token count to its embedding (`dims.output` floats
    /// per text in `out`).
    pub(crate) fn head(&self, sums: &[f32], lens: &[usize], out: &mut [f32]) {
        let d = self.dims;
        let s = lens.len();
        let (pooled, hid, wide, outw) = (d.pooled, d.hidden, d.wide, d.output);
        // 5. Pooled: (Σ F · pool + T · b) / √T.
        let mut m = vec![0.0f32; s * pooled];
        matmul(sums, d.features(), s, &self.pool, &mut m, pooled, false);
        for (row, &len) in m.chunks_exact_mut(pooled).zip(lens) {
            let len = len as f32;
            let inv = 1.0 / len.sqrt();
            for (v, &b) in row.iter_mut().zip(&self.pool_b) {
                *v = (*v + len * b) * inv;
            }
        }
        // 6. The dense layers.
        let mut y0 = vec![0.0f32; s * hid];
        matmul(&m, pooled, s, &self.d0, &mut y0, hid, false);
        relu(&mut y0);
        let mut y1 = vec![0.0f32; s * hid];
        matmul(&m, pooled, s, &self.p1, &mut y1, hid, false);
        matmul(&y0, hid, s, &self.d1, &mut y1, hid, true);
        relu(&mut y1);
        let mut y2 = vec![0.0f32; s * wide];
        matmul(&y1, hid, s, &self.d2, &mut y2, wide, false);
        relu(&mut y2);
        let z = &mut out[..s * outw];
        matmul(&y1, hid, s, &self.p3, z, outw, false);
        matmul(&y2, wide, s, &self.d3, z, outw, true);
        for row in z.chunks_exact_mut(outw) {
            for v in row.iter_mut() {
                *v = v.tanh();
            }
            let norm2 = dot(row, row).max(self.eps);
            let inv = 1.0 / norm2.sqrt();
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

/// Tokens of context a span needs on each side of its core so that the core's features are
/// those of the whole text: two stacked convolutions, each reaching two tokens either way.
pub(crate) const CONTEXT: usize = 4;

/// A run of one text's token ids whose `core` rows (indices into `ids`) count towards text
/// `text`; the rest is context, at least [`CONTEXT`] tokens or up to the text's end.
#[derive(Debug, Clone)]
pub(crate) struct Span<'a> {
    pub(crate) text: usize,
    pub(crate) ids: &'a [u32],
    pub(crate) core: std::ops::Range<usize>,
}

/// Writes each token's window: `n` rows of `source` from `t - left`, side by side, zeros for
/// positions outside the token's text.
fn gather<'a>(
    window: &mut [f32],
    n: usize,
    cnn: usize,
    left: usize,
    bounds: &[(usize, usize)],
    source: impl Fn(usize) -> &'a [f32],
) {
    for (t, (row, &(lo, hi))) in window.chunks_exact_mut(n * cnn).zip(bounds).enumerate() {
        for (j, slot) in row.chunks_exact_mut(cnn).enumerate() {
            match (t + j).checked_sub(left) {
                Some(p) if p >= lo && p < hi => slot.copy_from_slice(source(p)),
                _ => slot.fill(0.0),
            }
        }
    }
}

fn add(dst: &mut [f32], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

fn relu(v: &mut [f32]) {
    for x in v {
        *x = x.max(0.0);
    }
}

/// A dot product in eight lanes (vectorises; the order of the sum is fixed).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn sum(a: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = a.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for x in chunks {
        for k in 0..8 {
            lanes[k] += x[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `row = (row - mean) / √(var + eps) · gamma + beta`, over the whole row.
fn layer_norm(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    for v in row.iter_mut() {
        *v -= mean;
    }
    let var = dot(row, row) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = *v * inv * g + b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_bit_codes_round_trip() {
        let codes: Vec<u8> = (0..64u8).chain((0..64).rev()).collect();
        let mut packed = Vec::new();
        pack6(&codes, &mut packed);
        assert_eq!(packed.len(), codes.len() / 4 * 3);
        let table = Table {
            codes: packed,
            scale: vec![1.0],
            offset: vec![0.0],
        };
        let mut row = vec![0.0; codes.len()];
        table.row(0, &mut row);
        let back: Vec<u8> = row.iter().map(|&v| v as u8).collect();
        assert_eq!(back, codes);
        table.row(1, &mut row);
        assert!(row.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn windows_stop_at_the_ends_of_each_text() {
        // Two texts of 3 and 2 tokens; rows hold their token's index.
        let bounds = [(0, 3), (0, 3), (0, 3), (3, 5), (3, 5)];
        let src: Vec<f32> = (0..5).map(|t| t as f32 + 1.0).collect();
        let mut window = vec![9.0; 5 * 3];
        gather(&mut window, 3, 1, 1, &bounds, |t| &src[t..t + 1]);
        assert_eq!(
            window,
            [0., 1., 2., 1., 2., 3., 2., 3., 0., 0., 4., 5., 4., 5., 0.]
        );
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let mut row = [1.0, 2.0, 3.0, 4.0];
        layer_norm(&mut row, &[1.0; 4], &[0.5; 4], 0.0);
        let mean: f32 = row.iter().sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6);
        assert!((row[3] - row[0] - 2.0 * 3.0 / 5f32.sqrt()).abs() < 1e-5);
    }
}
