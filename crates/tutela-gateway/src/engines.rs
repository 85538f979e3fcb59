//! The real engines behind the seams: `tutela-detect` for findings, `tutela-profile` +
//! `tutela-policy` for decisions.

use std::sync::Arc;

use tutela_policy::{EngineOptions, EvalContext};
use tutela_profile::{ProfileSet, Registry};
use tutela_types::{Decision, Finding};

use crate::duties::{Policy, PolicySet};
#[cfg(feature = "detect")]
use crate::scan::{ScanStream, Scanner, TierStatus};
#[cfg(feature = "detect")]
use tutela_types::Side;

/// The built-in detectors, with whatever learned tiers were attached to them.
#[cfg(feature = "detect")]
pub struct BuiltinScanner {
    det: tutela_detect::Detectors,
    encoder_missing: Option<String>,
}

#[cfg(feature = "detect")]
impl BuiltinScanner {
    /// Wraps detectors; `encoder_missing` says why the encoder tier is off, when it is.
    pub fn new(det: tutela_detect::Detectors, encoder_missing: Option<String>) -> Self {
        Self {
            det,
            encoder_missing,
        }
    }

    /// The detectors.
    pub fn detectors(&self) -> &tutela_detect::Detectors {
        &self.det
    }

    /// The tiers without the encoder.
    fn quick(&self) -> tutela_detect::Tiers {
        tutela_detect::Tiers {
            encoder: false,
            ..self.det.tiers()
        }
    }
}

/// An [`Embedder`](tutela_detect::learned::encoder::Embedder) that counts the windows it
/// embeds on the calling thread ([`crate::scan::note_window`]), for the gateway's metrics.
#[cfg(feature = "detect")]
#[derive(Debug)]
pub struct CountingEmbedder(pub Arc<dyn tutela_detect::learned::encoder::Embedder>);

#[cfg(feature = "detect")]
impl tutela_detect::learned::encoder::Embedder for CountingEmbedder {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn embed(&self, text: &str) -> Vec<f32> {
        crate::scan::note_window();
        self.0.embed(text)
    }
    fn id(&self) -> String {
        self.0.id()
    }
}

#[cfg(feature = "detect")]
struct DetectStream<'a> {
    inner: tutela_detect::Stream<'a>,
    /// Whether the encoder runs in this stream.
    encoder: bool,
    /// The text fed but not yet scanned (a copy of the stream's unfinished sentence), to tell
    /// whether the next chunk finishes a sentence.
    tail: String,
}

#[cfg(feature = "detect")]
impl ScanStream for DetectStream<'_> {
    fn feed(&mut self, chunk: &str) -> Vec<Finding> {
        let out = self.inner.feed(chunk);
        if self.encoder {
            self.tail.push_str(chunk);
            let keep = self.inner.pending().min(self.tail.len());
            let mut cut = self.tail.len() - keep;
            while cut < self.tail.len() && !self.tail.is_char_boundary(cut) {
                cut += 1;
            }
            self.tail.drain(..cut);
        }
        out
    }
    fn finish(self: Box<Self>) -> Vec<Finding> {
        self.inner.finish()
    }
    fn pending(&self) -> usize {
        self.inner.pending()
    }
    fn may_block(&mut self, chunk: &str) -> bool {
        if !self.encoder {
            return false;
        }
        // The stream cuts its buffer (unfinished sentence + chunk) at the boundaries this
        // finds, and reads a window (maybe with the encoder) for each finished sentence.
        let len = self.tail.len();
        self.tail.push_str(chunk);
        let finishes = tutela_detect::segment::next_boundary(&self.tail, 0).is_some();
        self.tail.truncate(len);
        finishes
    }
}

#[cfg(feature = "detect")]
impl Scanner for BuiltinScanner {
    fn scan(&self, side: Side, text: &str, context: Option<&str>) -> Vec<Finding> {
        self.det.scan(side, text, context)
    }
    fn scan_quick(&self, side: Side, text: &str, context: Option<&str>) -> Vec<Finding> {
        self.det.scan_tiers(side, text, context, self.quick())
    }
    fn scan_encoder(&self, side: Side, text: &str, context: Option<&str>) -> Vec<Finding> {
        if !self.has_encoder(side) {
            return Vec::new();
        }
        // The learned tiers as they run together (the n-gram tier gates the encoder and
        // fuses with it); the caller keeps what the quick scan does not already hold.
        let tiers = tutela_detect::Tiers {
            lexical: false,
            ngram: self.det.tiers().ngram,
            encoder: true,
        };
        self.det
            .scan_tiers(side, text, context, tiers)
            .into_iter()
            .filter(|f| f.tier != tutela_types::Tier::Lexical)
            .collect()
    }
    fn has_encoder(&self, side: Side) -> bool {
        self.det.has_encoder(side) && self.det.tiers().encoder
    }
    fn stream<'a>(&'a self, side: Side, context: Option<&str>) -> Box<dyn ScanStream + 'a> {
        Box::new(DetectStream {
            inner: self.det.stream(side, context),
            encoder: self.has_encoder(side),
            tail: String::new(),
        })
    }
    fn tiers(&self) -> TierStatus {
        let t = self.det.tiers();
        let encoder_user = self.has_encoder(Side::User);
        let encoder_assistant = self.has_encoder(Side::Assistant);
        let encoder_missing = if encoder_user && encoder_assistant {
            None
        } else {
            Some(self.encoder_missing.clone().unwrap_or_else(|| {
                if encoder_user || encoder_assistant {
                    "no heads for one side".into()
                } else {
                    "no encoder attached".into()
                }
            }))
        };
        TierStatus {
            lexical: t.lexical,
            ngram: t.ngram
                && (self.det.ngram_model(Side::User).is_some()
                    || self.det.ngram_model(Side::Assistant).is_some()),
            encoder_user,
            encoder_assistant,
            encoder_missing,
        }
    }
}

/// The profile registry and the engine's options.
pub struct Engine {
    /// All known profiles.
    pub registry: Registry,
    /// Engine parameters (idle reset).
    pub options: EngineOptions,
}

struct Set {
    set: ProfileSet,
    options: EngineOptions,
}

impl PolicySet for Set {
    fn ids(&self) -> Vec<String> {
        self.set.ids().into_iter().map(str::to_owned).collect()
    }
    fn snapshot_hash(&self) -> &str {
        self.set.snapshot_hash()
    }
    fn evaluate(&self, ctx: &EvalContext<'_>, findings: &[Finding]) -> Decision {
        tutela_policy::evaluate(&self.set, &self.options, ctx, findings)
    }
}

impl Policy for Engine {
    fn select(&self, ids: &[String]) -> Result<Arc<dyn PolicySet>, String> {
        let set = self.registry.select(ids).map_err(|e| e.to_string())?;
        Ok(Arc::new(Set {
            set,
            options: self.options,
        }))
    }
}
