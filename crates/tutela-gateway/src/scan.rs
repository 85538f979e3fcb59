//! The seam to the detectors: the gateway asks for findings on whole texts and on streams;
//! tests may pass a fake.
//!
//! Two speeds: the quick tiers (lexical, n-gram: microseconds) and the encoder tier
//! (milliseconds of one core per embedded window). On the user side the gateway runs the quick
//! tiers inline and the encoder on the blocking pool, concurrently with the upstream request
//! (`chat.rs`); on the assistant side every tier runs inside the hold-back window, the encoder
//! through [`blocking`] (`relay.rs`, `chat::json_reply`).

use std::cell::Cell;

use tutela_types::{Finding, Side};

/// Which tiers run, for the start-up line, `/readyz` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierStatus {
    /// Patterns over normalised text (built-in and operator rule packs).
    pub lexical: bool,
    /// The n-gram model.
    pub ngram: bool,
    /// The encoder tier on the user side.
    pub encoder_user: bool,
    /// The encoder tier on the assistant side.
    pub encoder_assistant: bool,
    /// Why the encoder tier is off (on a side or both), when it is.
    pub encoder_missing: Option<String>,
}

impl TierStatus {
    /// Whether the encoder tier runs on either side.
    pub fn encoder(&self) -> bool {
        self.encoder_user || self.encoder_assistant
    }

    /// `lexical, ngram, encoder (user, assistant)`: the tiers that run.
    pub fn describe(&self) -> String {
        let mut v: Vec<String> = Vec::new();
        if self.lexical {
            v.push("lexical".into());
        }
        if self.ngram {
            v.push("ngram".into());
        }
        match (self.encoder_user, self.encoder_assistant) {
            (true, true) => v.push("encoder (user and assistant sides)".into()),
            (true, false) => v.push("encoder (user side only)".into()),
            (false, true) => v.push("encoder (assistant side only)".into()),
            (false, false) => {}
        }
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    }
}

/// Findings for one text.
pub trait Scanner: Send + Sync + 'static {
    /// Scans a whole text with every tier; `context` is the preceding user turn (assistant
    /// side). With the encoder attached for `side` this blocks for milliseconds: call it
    /// through [`blocking`].
    fn scan(&self, side: Side, text: &str, context: Option<&str>) -> Vec<Finding>;

    /// The quick tiers only (everything but the encoder): microseconds, safe on an async
    /// worker.
    fn scan_quick(&self, side: Side, text: &str, context: Option<&str>) -> Vec<Finding> {
        self.scan(side, text, context)
    }

    /// What the encoder tier adds: its findings (and the learned findings it fuses with),
    /// to be merged into [`Scanner::scan_quick`]'s by [`merge_encoder`]. Blocks for
    /// milliseconds; empty when no encoder is attached for `side`.
    fn scan_encoder(&self, _side: Side, _text: &str, _context: Option<&str>) -> Vec<Finding> {
        Vec::new()
    }

    /// Work for the assistant side's scan of the reply to `user_text` that can be done ahead,
    /// on the user side's blocking task while the upstream answers (the user turn's embedding,
    /// which the encoder reads beside the reply's). Called right after
    /// [`Scanner::scan_encoder`] of the same text, on the same thread. Without `spare` (the
    /// encoder is busy) only what that scan already computed is kept; nothing new is embedded.
    fn prepare_reply(&self, _user_text: &str, _spare: bool) {}

    /// Whether the encoder tier is attached for `side`.
    fn has_encoder(&self, _side: Side) -> bool {
        false
    }

    /// A streaming scan with every tier: any split of a text yields the same findings as
    /// [`Scanner::scan`].
    fn stream<'a>(&'a self, side: Side, context: Option<&str>) -> Box<dyn ScanStream + 'a>;

    /// The tiers that run.
    fn tiers(&self) -> TierStatus {
        TierStatus {
            lexical: true,
            ngram: false,
            encoder_user: self.has_encoder(Side::User),
            encoder_assistant: self.has_encoder(Side::Assistant),
            encoder_missing: None,
        }
    }
}

/// A streaming scan in progress.
pub trait ScanStream: Send {
    /// Adds a chunk; returns the findings it completed.
    fn feed(&mut self, chunk: &str) -> Vec<Finding>;
    /// Ends the text; returns the remaining findings.
    fn finish(self: Box<Self>) -> Vec<Finding>;
    /// Bytes fed but not yet scanned (an unfinished sentence); they must not be released.
    fn pending(&self) -> usize;
    /// Whether feeding `chunk` may run the encoder (it finishes a sentence on a side with the
    /// encoder attached), so the caller runs that feed through [`blocking`]. `finish` may
    /// whenever the encoder is attached.
    fn may_block(&mut self, _chunk: &str) -> bool {
        false
    }
    /// How many bytes of the text fed may be released now: the finished sentences and, where
    /// the detectors allow it, a prefix of the unfinished one that no check can block
    /// (`tutela_detect::Stream::releasable`); `None` when this stream offers no early release
    /// (then only the finished sentences may leave). May run the encoder where
    /// [`ScanStream::embeds`] says so (the caller then runs it through [`blocking`]).
    fn releasable(&mut self) -> Option<usize> {
        None
    }
    /// Whether the encoder runs in this stream (so [`ScanStream::releasable`] may embed).
    fn embeds(&self) -> bool {
        false
    }
}

/// Adds the encoder's findings to the quick tiers': every finding of the encoder tier, and a
/// learned finding of another tier only when the quick scan has none of that detector and tier
/// (the n-gram tier's threshold beside the encoder may differ from its own).
pub fn merge_encoder(quick: &[Finding], encoder: Vec<Finding>) -> Vec<Finding> {
    encoder
        .into_iter()
        .filter(|f| {
            f.tier == tutela_types::Tier::Encoder
                || !quick
                    .iter()
                    .any(|q| q.detector == f.detector && q.tier == f.tier)
        })
        .collect()
}

thread_local! {
    /// Windows embedded on this thread (the encoder runs on the thread that calls it).
    static WINDOWS: Cell<u64> = const { Cell::new(0) };
}

/// Counts one embedded window on this thread (called by the embedder the gateway wraps).
pub fn note_window() {
    WINDOWS.with(|w| w.set(w.get().wrapping_add(1)));
}

/// Embeddings taken from those computed ahead instead of embedded again.
static REUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts one embedding computed ahead and used (called by the embedder the gateway wraps).
pub fn note_reused() {
    REUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Embeddings computed ahead and used so far (process-wide).
pub fn reused() -> u64 {
    REUSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// User turns embedded ahead for the assistant side that the user side's scan had not embedded
/// itself (windows beyond the scan's).
static AHEAD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts one user turn embedded ahead beyond the scan's windows.
pub fn note_ahead() {
    AHEAD.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// User turns embedded ahead beyond the scans' windows so far (process-wide).
pub fn ahead() -> u64 {
    AHEAD.load(std::sync::atomic::Ordering::Relaxed)
}

/// Windows embedded on this thread so far: the difference around a scan is what that scan
/// embedded.
pub fn windows_here() -> u64 {
    WINDOWS.with(Cell::get)
}

/// Runs `f`, which may block for milliseconds (the encoder), without stalling the async
/// worker: through `block_in_place` on a multi-threaded runtime (the worker's other tasks move
/// to another thread while this one computes), inline on a current-thread runtime (tests).
/// Returns `f`'s value and the windows it embedded.
pub fn blocking<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let run = || {
        let before = windows_here();
        let r = f();
        (r, windows_here().wrapping_sub(before))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}

/// A scanner that finds nothing (for a deployment that switches detection off, and tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoScanner;

struct NoStream;

impl ScanStream for NoStream {
    fn feed(&mut self, _chunk: &str) -> Vec<Finding> {
        Vec::new()
    }
    fn finish(self: Box<Self>) -> Vec<Finding> {
        Vec::new()
    }
    fn pending(&self) -> usize {
        0
    }
}

impl Scanner for NoScanner {
    fn scan(&self, _side: Side, _text: &str, _context: Option<&str>) -> Vec<Finding> {
        Vec::new()
    }
    fn stream<'a>(&'a self, _side: Side, _context: Option<&str>) -> Box<dyn ScanStream + 'a> {
        Box::new(NoStream)
    }
    fn tiers(&self) -> TierStatus {
        TierStatus {
            encoder_missing: Some("detection is off".into()),
            ..TierStatus::default()
        }
    }
}
