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
    /// The embedder attached to the detectors, when it is the gateway's.
    embedder: Option<Arc<CountingEmbedder>>,
}

#[cfg(feature = "detect")]
impl BuiltinScanner {
    /// Wraps detectors; `encoder_missing` says why the encoder tier is off, when it is.
    pub fn new(det: tutela_detect::Detectors, encoder_missing: Option<String>) -> Self {
        Self {
            det,
            encoder_missing,
            embedder: None,
        }
    }

    /// Names the [`CountingEmbedder`] attached to the detectors, so the user side can embed the
    /// user turn ahead for the assistant side.
    pub fn with_embedder(mut self, embedder: Option<Arc<CountingEmbedder>>) -> Self {
        self.embedder = embedder;
        self
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

/// Embeddings of user turns computed ahead, for the assistant side to read beside the reply
/// (taken once; the oldest dropped past the cap: turns answered by a template never take
/// theirs).
#[cfg(feature = "detect")]
#[derive(Debug, Default)]
struct Ahead {
    map: std::collections::HashMap<String, Vec<f32>>,
    order: std::collections::VecDeque<String>,
}

/// User turns whose embedding waits for its reply, at most (about 2 KB each).
#[cfg(feature = "detect")]
const AHEAD_CAP: usize = 1024;

#[cfg(feature = "detect")]
thread_local! {
    /// During a user-side encoder scan: the text of the whole message, and its embedding if
    /// the scan embedded exactly that text (a message of up to three sentences is one window).
    static WANTED: std::cell::RefCell<Option<(String, Option<Vec<f32>>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The [`Embedder`](tutela_detect::learned::encoder::Embedder) the gateway attaches: counts
/// the windows it embeds on the calling thread ([`crate::scan::note_window`]) for the metrics,
/// and hands the assistant side the user turn's embedding when the user side computed it ahead
/// (concurrently with the upstream), so the reply's scan does not embed it again.
#[cfg(feature = "detect")]
#[derive(Debug)]
pub struct CountingEmbedder {
    inner: Arc<dyn tutela_detect::learned::encoder::Embedder>,
    ahead: std::sync::Mutex<Ahead>,
}

#[cfg(feature = "detect")]
impl CountingEmbedder {
    /// Wraps an embedder.
    pub fn new(inner: Arc<dyn tutela_detect::learned::encoder::Embedder>) -> Self {
        Self {
            inner,
            ahead: std::sync::Mutex::new(Ahead::default()),
        }
    }

    /// Keeps `text`'s embedding for the next [`embed`](tutela_detect::learned::encoder::Embedder::embed)
    /// of the same text: the one the user-side scan just made, or (with `spare`) a new one.
    fn keep_ahead(&self, text: &str, spare: bool) {
        let made = WANTED.with(|w| {
            w.borrow_mut()
                .take()
                .and_then(|(t, v)| v.filter(|_| t == text))
        });
        let v = match made {
            Some(v) => v,
            None if spare => {
                crate::scan::note_ahead();
                self.inner.embed(text)
            }
            None => return,
        };
        let Ok(mut a) = self.ahead.lock() else {
            return;
        };
        if a.map.insert(text.to_owned(), v).is_none() {
            a.order.push_back(text.to_owned());
        }
        while a.order.len() > AHEAD_CAP {
            if let Some(old) = a.order.pop_front() {
                a.map.remove(&old);
            }
        }
    }

    fn take_ahead(&self, text: &str) -> Option<Vec<f32>> {
        let mut a = self.ahead.lock().ok()?;
        let v = a.map.remove(text)?;
        if let Some(i) = a.order.iter().position(|t| t == text) {
            a.order.remove(i);
        }
        Some(v)
    }
}

#[cfg(feature = "detect")]
impl tutela_detect::learned::encoder::Embedder for CountingEmbedder {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn embed(&self, text: &str) -> Vec<f32> {
        if let Some(v) = self.take_ahead(text) {
            crate::scan::note_reused();
            return v;
        }
        crate::scan::note_window();
        let v = self.inner.embed(text);
        WANTED.with(|w| {
            if let Some((t, slot)) = w.borrow_mut().as_mut()
                && t == text
            {
                *slot = Some(v.clone());
            }
        });
        v
    }
    fn id(&self) -> String {
        self.inner.id()
    }
}

#[cfg(feature = "detect")]
struct DetectStream<'a> {
    inner: tutela_detect::Stream<'a>,
    /// Whether the encoder runs in this stream.
    encoder: bool,
}

#[cfg(feature = "detect")]
impl ScanStream for DetectStream<'_> {
    fn feed(&mut self, chunk: &str) -> Vec<Finding> {
        self.inner.feed(chunk)
    }
    fn finish(self: Box<Self>) -> Vec<Finding> {
        self.inner.finish()
    }
    fn pending(&self) -> usize {
        self.inner.pending()
    }
    fn may_block(&mut self, chunk: &str) -> bool {
        // The stream reads a window (maybe with the encoder) for each finished sentence; it
        // says whether this chunk finishes one from the sentence as it holds it (no copy of
        // the text as fed here: runs of dropped characters would make that grow and its
        // re-reading quadratic).
        self.encoder && self.inner.would_finish(chunk)
    }
    fn releasable(&mut self) -> Option<usize> {
        // With the encoder, a window it would be asked about is embedded (milliseconds).
        Some(self.inner.releasable())
    }
    fn embeds(&self) -> bool {
        self.encoder
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
        // Watch for the whole message's embedding (see `prepare_reply`).
        let watch = side == Side::User && self.embedder.is_some();
        WANTED.with(|w| *w.borrow_mut() = watch.then(|| (text.to_owned(), None)));
        self.det
            .scan_tiers(side, text, context, tiers)
            .into_iter()
            .filter(|f| f.tier != tutela_types::Tier::Lexical)
            .collect()
    }
    fn prepare_reply(&self, user_text: &str, spare: bool) {
        match &self.embedder {
            Some(e) if self.has_encoder(Side::Assistant) => e.keep_ahead(user_text, spare),
            _ => WANTED.with(|w| *w.borrow_mut() = None),
        }
    }
    fn has_encoder(&self, side: Side) -> bool {
        self.det.has_encoder(side) && self.det.tiers().encoder
    }
    fn stream<'a>(&'a self, side: Side, context: Option<&str>) -> Box<dyn ScanStream + 'a> {
        Box::new(DetectStream {
            inner: self.det.stream(side, context),
            encoder: self.has_encoder(side),
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

#[cfg(all(test, feature = "detect"))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tutela_detect::learned::encoder::Embedder;

    use super::*;

    /// Counts the embeddings it computes.
    #[derive(Debug, Default)]
    struct Calls(AtomicUsize);

    impl Embedder for Calls {
        fn dim(&self) -> usize {
            2
        }
        fn embed(&self, text: &str) -> Vec<f32> {
            self.0.fetch_add(1, Ordering::SeqCst);
            vec![text.len() as f32, 1.0]
        }
        fn id(&self) -> String {
            "calls@test".into()
        }
    }

    #[test]
    fn a_user_turn_embedded_ahead_is_read_once() {
        let inner = Arc::new(Calls::default());
        let e = CountingEmbedder::new(inner.clone());
        // The user-side scan embeds the whole message (one window): kept without embedding
        // it again.
        WANTED.with(|w| *w.borrow_mut() = Some(("hello there".into(), None)));
        let v = e.embed("hello there");
        e.keep_ahead("hello there", true);
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        // The assistant side reads it instead of embedding, once.
        assert_eq!(e.embed("hello there"), v);
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        assert_eq!(e.embed("hello there"), v);
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
        // A message the scan did not embed whole is embedded ahead.
        e.keep_ahead("a. b. c. d.", true);
        assert_eq!(inner.0.load(Ordering::SeqCst), 3);
        e.embed("a. b. c. d.");
        assert_eq!(inner.0.load(Ordering::SeqCst), 3);
        // With no spare slot (the encoder busy), nothing new is embedded ahead; what the
        // scan embedded is still kept.
        e.keep_ahead("busy. now. x. y.", false);
        assert_eq!(inner.0.load(Ordering::SeqCst), 3);
        assert!(e.take_ahead("busy. now. x. y.").is_none());
        WANTED.with(|w| *w.borrow_mut() = Some(("kept while busy".into(), None)));
        let k = e.embed("kept while busy");
        e.keep_ahead("kept while busy", false);
        assert_eq!(e.take_ahead("kept while busy"), Some(k));
        assert_eq!(inner.0.load(Ordering::SeqCst), 4);
        // Bounded: the oldest are dropped.
        for i in 0..AHEAD_CAP + 10 {
            e.keep_ahead(&format!("m{i}"), true);
        }
        let a = e.ahead.lock().unwrap();
        assert_eq!(a.map.len(), AHEAD_CAP);
        assert_eq!(a.order.len(), AHEAD_CAP);
        assert!(!a.map.contains_key("m0"));
    }
}
