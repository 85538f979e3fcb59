//! A linear model over hashed n-grams, one logistic head per detector of a side, its weights
//! quantised to `i8` per head, its decision thresholds per detector and language, and the
//! labelled examples it explains itself with. Serialised as one file (`ngram-<side>.bin`):
//! a magic, a JSON header ([`Meta`]), then the weight table.

use serde::{Deserialize, Serialize};
use tutela_types::{DetectorId, Side};

use super::features;

/// Heads per weight row (padded: a row is two 8-byte words, in one cache line).
pub const STRIDE: usize = 16;
/// 8-byte words per row.
const WORDS: usize = STRIDE / 8;
/// Version 2: rows of [`STRIDE`] (16) weights.
const MAGIC: &[u8; 8] = b"TUTNGRM2";
/// Version 1: rows of 8 weights (read, widened with zero weights).
const MAGIC_V1: &[u8; 8] = b"TUTNGRM1";
/// Weights per row in a version 1 file.
const STRIDE_V1: usize = 8;

/// Which language's threshold applies to a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextLang {
    /// Latin script only (or next to no Chinese).
    En,
    /// Chinese (few Latin letters).
    Zh,
    /// Both.
    Mixed,
}

impl TextLang {
    /// The language of a normalised text, by its characters.
    pub fn of(norm: &str) -> TextLang {
        let (mut cjk, mut latin) = (0usize, 0usize);
        for c in norm.chars() {
            if c.is_ascii_alphabetic() {
                latin += 1;
            } else if ('\u{3400}'..='\u{9FFF}').contains(&c) {
                cjk += 1;
            }
        }
        Self::from_counts(cjk, latin)
    }

    /// The language of a text with `cjk` ideographs and `latin` ASCII letters.
    pub fn from_counts(cjk: usize, latin: usize) -> TextLang {
        match (cjk, latin) {
            (0, _) => TextLang::En,
            (_, l) if l < 4 => TextLang::Zh,
            (c, l) if c * 6 >= l * 4 && l < 12 => TextLang::Zh,
            _ => TextLang::Mixed,
        }
    }

    /// `en`, `zh` or `mixed`.
    pub fn as_str(self) -> &'static str {
        match self {
            TextLang::En => "en",
            TextLang::Zh => "zh",
            TextLang::Mixed => "mixed",
        }
    }
}

/// Decision thresholds of one head, per language, on the head's probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// English.
    pub en: f32,
    /// Chinese.
    pub zh: f32,
    /// Mixed.
    pub mixed: f32,
}

impl Thresholds {
    /// One threshold for every language.
    pub fn all(t: f32) -> Self {
        Self {
            en: t,
            zh: t,
            mixed: t,
        }
    }

    /// The threshold for `lang`.
    pub fn get(&self, lang: TextLang) -> f32 {
        match lang {
            TextLang::En => self.en,
            TextLang::Zh => self.zh,
            TextLang::Mixed => self.mixed,
        }
    }
}

/// A labelled example kept to explain findings ("the nearest labelled examples").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// Corpus id.
    pub id: String,
    /// The head it is a positive of.
    pub label: String,
    /// The text.
    pub text: String,
}

/// Everything about a model but its weight table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Which side's text it reads.
    pub side: Side,
    /// Hash bits: the table has `2^bits` rows.
    pub bits: u32,
    /// The heads, in column order (at most [`STRIDE`]).
    pub heads: Vec<DetectorId>,
    /// Per head: the weight of one `i8` step.
    pub scales: Vec<f32>,
    /// Per head: the intercept.
    pub bias: Vec<f32>,
    /// Per head: the decision thresholds.
    pub thresholds: Vec<Thresholds>,
    /// Per head: the probability a lexical finding of the head needs from this model to
    /// stand (0: the lexical tier is never overruled). Chosen with the thresholds.
    #[serde(default)]
    pub confirm: Vec<Thresholds>,
    /// Per head: where no encoder runs, the probability a lexical finding of the head needs
    /// from this model to stand, when above `confirm` (empty: `confirm` alone). Chosen with
    /// the thresholds, for the embedded tiers' fusion; a scan with the encoder ignores it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub veto: Vec<Thresholds>,
    /// How it was trained (seed, epochs, corpus digest and size), for the record.
    pub trained: Trained,
    /// Positives kept to explain findings.
    #[serde(default)]
    pub examples: Vec<Example>,
}

/// How a model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trained {
    /// SHA-256 (hex) over the training items, in order.
    pub corpus_sha256: String,
    /// Training items (the validation split excluded).
    pub items: usize,
    /// Held-out validation items.
    pub validation_items: usize,
    /// PRNG seed.
    pub seed: u64,
    /// Passes over the data.
    pub epochs: u32,
}

/// A model file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Not a model file, or cut short.
    #[error("not an n-gram model file (bad magic or truncated)")]
    Format,
    /// The header does not parse or does not fit the table.
    #[error("model header: {0}")]
    Header(String),
}

/// A trained n-gram model.
#[derive(Debug, Clone)]
pub struct NgramModel {
    /// The header.
    pub meta: Meta,
    /// `2^bits` rows of [`STRIDE`] quantised `i8` weights, each row's bytes as
    /// [`WORDS`] little-endian words (one 16-byte load per feature, aligned so that a row
    /// never straddles a cache line; see [`NgramModel::add_text`]).
    rows: Vec<Row>,
}

/// The running sum of a text's features: per head, the sum of their quantised weights, and
/// how many there were. Sums of sentences add up to the sum of their window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Partial {
    /// Per head.
    pub acc: [i32; STRIDE],
    /// Features counted.
    pub n: u32,
}

impl Partial {
    /// The sum of two texts' partials.
    pub fn add(&mut self, o: &Partial) {
        for (a, b) in self.acc.iter_mut().zip(o.acc) {
            *a += b;
        }
        self.n += o.n;
    }
}

impl NgramModel {
    /// A model from its parts (the trainer).
    pub fn from_parts(meta: Meta, weights: Vec<i8>) -> Result<Self, ModelError> {
        let rows = 1usize
            .checked_shl(meta.bits)
            .filter(|_| (4..=24).contains(&meta.bits))
            .ok_or_else(|| ModelError::Header(format!("bits {} out of range", meta.bits)))?;
        let h = meta.heads.len();
        if h == 0 || h > STRIDE {
            return Err(ModelError::Header(format!("{h} heads (1..={STRIDE})")));
        }
        if meta.scales.len() != h
            || meta.bias.len() != h
            || meta.thresholds.len() != h
            || !(meta.confirm.is_empty() || meta.confirm.len() == h)
            || !(meta.veto.is_empty() || meta.veto.len() == h)
        {
            return Err(ModelError::Header(
                "scales, bias and thresholds need one value per head".into(),
            ));
        }
        if weights.len() != rows * STRIDE {
            return Err(ModelError::Header(format!(
                "table has {} weights, {} expected",
                weights.len(),
                rows * STRIDE
            )));
        }
        let rows = weights
            .chunks_exact(STRIDE)
            .map(|r| {
                Row(std::array::from_fn(|w| {
                    u64::from_le_bytes(std::array::from_fn(|j| r[8 * w + j] as u8))
                }))
            })
            .collect();
        Ok(Self { meta, rows })
    }

    /// The `i8` weights of row `b` (zeros past the table).
    fn row_weights(&self, b: usize) -> [i8; STRIDE] {
        let r = self.rows.get(b).copied().unwrap_or_default();
        std::array::from_fn(|j| (r.0[j / 8] >> (8 * (j % 8))) as u8 as i8)
    }

    /// Reads a model file's bytes (version 2, or version 1: rows of 8 weights, widened).
    pub fn from_bytes(b: &[u8]) -> Result<Self, ModelError> {
        let (rest, width) = match b.strip_prefix(MAGIC) {
            Some(rest) => (rest, STRIDE),
            None => (
                b.strip_prefix(MAGIC_V1).ok_or(ModelError::Format)?,
                STRIDE_V1,
            ),
        };
        let (len, rest) = rest.split_at_checked(4).ok_or(ModelError::Format)?;
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (head, table) = rest.split_at_checked(len).ok_or(ModelError::Format)?;
        let meta: Meta =
            serde_json::from_slice(head).map_err(|e| ModelError::Header(e.to_string()))?;
        if table.len() % width != 0 {
            return Err(ModelError::Format);
        }
        let weights = table
            .chunks_exact(width)
            .flat_map(|r| (0..STRIDE).map(|j| r.get(j).map_or(0, |&x| x as i8)))
            .collect();
        Self::from_parts(meta, weights)
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let head = serde_json::to_vec(&self.meta).unwrap_or_default();
        let mut out = Vec::with_capacity(12 + head.len() + self.rows.len() * STRIDE);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(head.len() as u32).to_le_bytes());
        out.extend_from_slice(&head);
        for r in &self.rows {
            for w in r.0 {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// The probability a lexical finding of head `h` needs to stand, in `lang`.
    pub fn confirm(&self, h: usize, lang: TextLang) -> f32 {
        self.meta.confirm.get(h).map_or(0.0, |t| t.get(lang))
    }

    /// The probability a lexical finding of head `h` needs to stand in `lang` where no
    /// encoder runs: the higher of its confirm and veto levels.
    pub fn embedded_confirm(&self, h: usize, lang: TextLang) -> f32 {
        let veto = self.meta.veto.get(h).map_or(0.0, |t| t.get(lang));
        self.confirm(h, lang).max(veto)
    }

    /// The column of a detector, if the model has a head for it.
    pub fn head(&self, d: &DetectorId) -> Option<usize> {
        self.meta.heads.iter().position(|h| h == d)
    }

    /// Adds the features of `norm` (a normalised sentence) in namespace `ns` to `p`.
    ///
    /// The buckets are hashed into a small buffer first and looked up in a second, tight
    /// loop: the table does not fit in the cache, and a loop of nothing but independent
    /// loads keeps many of them in flight.
    pub fn add_text(&self, norm: &str, ns: u64, p: &mut Partial) {
        self.add_text_counting(norm, ns, p);
    }

    /// [`NgramModel::add_text`], returning the CJK ideographs and ASCII letters of `norm`
    /// ([`features::for_each_counting`]).
    pub(crate) fn add_text_counting(&self, norm: &str, ns: u64, p: &mut Partial) -> (u32, u32) {
        let mut batch = Batch {
            model: self,
            p,
            buf: [0; LANE_MAX],
            len: 0,
        };
        let counts = features::for_each_into(norm, ns, self.meta.bits, &mut batch);
        batch.flush();
        counts
    }

    /// Adds the rows `idx` (at most [`LANE_MAX`]) to `p`, exactly: each row (16 `i8`
    /// weights) is read as two words, their bytes offset by 128 into `0..=255` (`^ 0x80`)
    /// and added into 16-bit lanes, even heads of a word in one sum and odd heads in
    /// another; the lanes go into `p` minus 128 per row.
    #[inline(always)]
    fn add_rows(&self, idx: &[u32], p: &mut Partial) {
        let mut even = [0u64; WORDS];
        let mut odd = [0u64; WORDS];
        for &b in idx {
            // `b < 2^bits = rows.len()` (checked in `from_parts`); a missing row would read
            // as zeros.
            let r = self.rows.get(b as usize).copied().unwrap_or_default();
            for w in 0..WORDS {
                let r = r.0[w] ^ BIAS;
                even[w] += r & LOW_BYTES;
                odd[w] += (r >> 8) & LOW_BYTES;
            }
        }
        let off = 128 * idx.len() as i32;
        for w in 0..WORDS {
            for k in 0..4 {
                p.acc[8 * w + 2 * k] += ((even[w] >> (16 * k)) & 0xFFFF) as i32 - off;
                p.acc[8 * w + 2 * k + 1] += ((odd[w] >> (16 * k)) & 0xFFFF) as i32 - off;
            }
        }
    }

    /// Adds a named label feature (a lexical label of the context) to `p`.
    pub fn add_label(&self, name: &str, ns: u64, p: &mut Partial) {
        let i = features::label(name, ns, self.meta.bits) as usize;
        for (a, x) in p.acc.iter_mut().zip(self.row_weights(i)) {
            *a += i32::from(x);
        }
        p.n += 1;
    }

    /// Per head, the probability for a text (`text`) and, on the assistant side, the user
    /// turn it answers (`ctx`). Each part is scaled by one over the square root of its
    /// feature count, as in training.
    pub fn probs(&self, text: &Partial, ctx: Option<&Partial>) -> [f32; STRIDE] {
        let mut out = self.logits(text, ctx);
        for o in out.iter_mut().take(self.meta.heads.len()) {
            *o = sigmoid(*o);
        }
        out
    }

    /// Per head, the logit whose [`sigmoid`] [`NgramModel::probs`] gives (0 past the heads).
    pub(crate) fn logits(&self, text: &Partial, ctx: Option<&Partial>) -> [f32; STRIDE] {
        let mut out = [0.0f32; STRIDE];
        let norm = |p: &Partial| scale(p.n as usize);
        let (tn, cn) = (norm(text), ctx.map_or(0.0, norm));
        for (h, o) in out.iter_mut().enumerate().take(self.meta.heads.len()) {
            let s = self.meta.scales[h];
            let mut z = self.meta.bias[h] + s * text.acc[h] as f32 * tn;
            if let Some(c) = ctx {
                z += s * c.acc[h] as f32 * cn;
            }
            *o = z;
        }
        out
    }

    /// Per head and language (`en`, `zh`, `mixed`): a logit below which the head's
    /// probability is surely below its threshold, so that [`sigmoid`] need not be computed
    /// to know it fails (`-inf` for a threshold too near 0 or 1 for the bound to be safe).
    /// The margin (0.001 on the logit, at least 10^-5 on the probability for thresholds in
    /// `[0.01, 0.99]`) is far wider than `f32` rounding (below 10^-6).
    pub(crate) fn fail_below(&self) -> [[f32; 3]; STRIDE] {
        let mut out = [[f32::NEG_INFINITY; 3]; STRIDE];
        for (h, t) in self.meta.thresholds.iter().enumerate().take(STRIDE) {
            for (k, lang) in [TextLang::En, TextLang::Zh, TextLang::Mixed]
                .into_iter()
                .enumerate()
            {
                let t = f64::from(t.get(lang));
                if (0.01..=0.99).contains(&t) {
                    out[h][k] = ((t / (1.0 - t)).ln() - 1e-3) as f32;
                }
            }
        }
        out
    }
}

impl TextLang {
    /// `0`, `1`, `2` for `en`, `zh`, `mixed` (the order of [`NgramModel::fail_below`]).
    pub(crate) fn index(self) -> usize {
        match self {
            TextLang::En => 0,
            TextLang::Zh => 1,
            TextLang::Mixed => 2,
        }
    }
}

/// The buckets of a text, hashed into a buffer and summed a buffer at a time
/// ([`NgramModel::add_text_counting`]).
struct Batch<'a> {
    model: &'a NgramModel,
    p: &'a mut Partial,
    buf: [u32; LANE_MAX],
    /// Buckets in `buf`: at most `LANE_MAX - PER_CHAR` before a character is read.
    len: usize,
}

impl Batch<'_> {
    #[inline(always)]
    fn flush(&mut self) {
        let len = self.len.min(LANE_MAX);
        self.model.add_rows(&self.buf[..len], self.p);
        self.p.n += len as u32;
        self.len = 0;
    }
}

impl features::Sink for Batch<'_> {
    #[inline(always)]
    fn push(&mut self, b: u32) {
        // `len < LANE_MAX` here (`room` leaves room for a character's buckets), so the
        // mask changes nothing; it only spares the bounds check.
        debug_assert!(self.len < LANE_MAX);
        self.buf[self.len % LANE_MAX] = b;
        self.len += 1;
    }

    #[inline(always)]
    fn room(&mut self) {
        if self.len > LANE_MAX - features::PER_CHAR {
            self.flush();
        }
    }
}

/// One row of the table: [`STRIDE`] `i8` weights in [`WORDS`] little-endian words, 16-byte
/// aligned (a row is one aligned load, never split across cache lines).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(16))]
struct Row([u64; WORDS]);

/// Flips the sign bit of every byte: an `i8` weight `w` becomes the `u8` `w + 128`.
const BIAS: u64 = 0x8080_8080_8080_8080;
/// The low byte of every 16-bit lane.
const LOW_BYTES: u64 = 0x00FF_00FF_00FF_00FF;

/// Rows summed in 16-bit lanes at most: 256 × 255 < 2^16.
const LANE_MAX: usize = 256;

/// Features a text is scaled as if it had at least: a very short text ("I am fine") has too
/// few features to carry strong evidence either way, so its sum is damped instead of being
/// blown up by `1/sqrt(n)`.
pub const MIN_FEATURES: usize = 64;

/// Features a window needs before the learned tiers decide on it: shorter messages ("ok",
/// "好的", "I am fine") are left to the lexical tier, which reads short cues ("kms", "想死")
/// exactly.
pub const MIN_DECIDE: u32 = 40;

/// The factor a text's feature sum is scaled by: `1/sqrt(max(n, MIN_FEATURES))`.
#[inline]
pub fn scale(n: usize) -> f32 {
    1.0 / (n.max(MIN_FEATURES) as f32).sqrt()
}

/// The logistic function.
#[inline]
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> NgramModel {
        let bits = 8;
        let meta = Meta {
            side: Side::User,
            bits,
            heads: vec![DetectorId::Crisis, DetectorId::Exit],
            scales: vec![0.1, 0.2],
            bias: vec![-1.0, 0.5],
            thresholds: vec![Thresholds::all(0.5), Thresholds::all(0.6)],
            confirm: vec![],
            veto: vec![],
            trained: Trained {
                corpus_sha256: String::new(),
                items: 0,
                validation_items: 0,
                seed: 1,
                epochs: 1,
            },
            examples: vec![],
        };
        let weights = (0..(1usize << bits) * STRIDE)
            .map(|i| (i % 7) as i8 - 3)
            .collect();
        NgramModel::from_parts(meta, weights).unwrap()
    }

    #[test]
    fn bytes_round_trip() {
        let m = tiny();
        let back = NgramModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back.meta, m.meta);
        assert_eq!(back.rows, m.rows);
        assert_eq!(back.to_bytes(), m.to_bytes());
        assert!(NgramModel::from_bytes(b"nope").is_err());
    }

    #[test]
    fn version_1_files_are_read_with_zero_weights_past_their_eight_heads() {
        let m = tiny();
        let v2 = m.to_bytes();
        let len = u32::from_le_bytes(v2[8..12].try_into().unwrap()) as usize;
        let (head, table) = v2[12..].split_at(len);
        let mut v1 = MAGIC_V1.to_vec();
        v1.extend_from_slice(&v2[8..12]);
        v1.extend_from_slice(head);
        for row in table.chunks_exact(STRIDE) {
            v1.extend_from_slice(&row[..STRIDE_V1]);
        }
        let back = NgramModel::from_bytes(&v1).unwrap();
        assert_eq!(back.meta, m.meta);
        for b in [0, 1, 77, (1 << m.meta.bits) - 1] {
            let (old, new) = (m.row_weights(b), back.row_weights(b));
            assert_eq!(old[..STRIDE_V1], new[..STRIDE_V1]);
            assert!(new[STRIDE_V1..].iter().all(|&w| w == 0));
        }
        assert!(NgramModel::from_bytes(&v1[..v1.len() - 3]).is_err());
    }

    #[test]
    fn partials_add_up() {
        let m = tiny();
        let mut a = Partial::default();
        m.add_text("hello there", features::NS_TEXT, &mut a);
        let mut b = Partial::default();
        m.add_text("bye now", features::NS_TEXT, &mut b);
        let mut both = Partial::default();
        m.add_text("hello there", features::NS_TEXT, &mut both);
        m.add_text("bye now", features::NS_TEXT, &mut both);
        a.add(&b);
        assert_eq!(a, both);
        let p = m.probs(&a, None);
        assert!(p[0] > 0.0 && p[0] < 1.0);
    }

    #[test]
    fn sums_equal_the_plain_sum_of_rows() {
        // Texts of more than 256 features cross a lane flush; weights at both ends of `i8`.
        let t = tiny();
        let extreme: Vec<i8> = (0..t.rows.len() * STRIDE)
            .map(|i| match i % 3 {
                0 => -128,
                1 => 127,
                _ => (i % 256) as u8 as i8,
            })
            .collect();
        for (m, text) in [
            t.clone(),
            NgramModel::from_parts(t.meta.clone(), extreme).unwrap(),
        ]
        .into_iter()
        .flat_map(|m| {
            [
                "".to_owned(),
                "hi".to_owned(),
                "i really do not know what to do anymore, everything is pointless".to_owned(),
                "我今天好累 ok honestly 😭 ".repeat(40),
                "z".repeat(700),
            ]
            .map(|t| (m.clone(), t))
        }) {
            let text = text.as_str();
            let mut p = Partial::default();
            m.add_text(text, features::NS_TEXT, &mut p);
            let mut want = Partial::default();
            let mut f = Vec::new();
            features::collect(text, features::NS_TEXT, m.meta.bits, &mut f);
            for b in &f {
                for (a, x) in want.acc.iter_mut().zip(m.row_weights(*b as usize)) {
                    *a += i32::from(x);
                }
            }
            want.n = f.len() as u32;
            assert!(want.n > 0);
            assert_eq!(p, want, "{text:?}");
        }
    }

    #[test]
    fn sums_of_any_text_equal_the_plain_sum_of_rows() {
        // Texts of up to about 1,700 features, mixed scripts: the buffer is summed and
        // emptied at every point a character can leave it at.
        use proptest::prelude::*;
        let m = tiny();
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&"[a-z0-9 .,!?我们不想活了😭，]{0,400}", |text| {
                let mut p = Partial::default();
                m.add_text(&text, features::NS_TEXT, &mut p);
                let mut want = Partial::default();
                let mut f = Vec::new();
                features::collect(&text, features::NS_TEXT, m.meta.bits, &mut f);
                for b in &f {
                    for (a, x) in want.acc.iter_mut().zip(m.row_weights(*b as usize)) {
                        *a += i32::from(x);
                    }
                }
                want.n = f.len() as u32;
                prop_assert_eq!(p, want);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn languages() {
        assert_eq!(TextLang::of("i want to go"), TextLang::En);
        assert_eq!(TextLang::of("我不想活了"), TextLang::Zh);
        assert_eq!(TextLang::of("我今天好累 ok"), TextLang::Zh);
        assert_eq!(
            TextLang::of("honestly 我觉得 everything is pointless"),
            TextLang::Mixed
        );
    }
}
