//! Bilingual (English and Chinese) lexical detectors for tutela, operator rule packs,
//! chunk-invariant streaming, and the evaluation harness behind `tutela eval`.
//!
//! # API
//!
//! ```ignore
//! let det = Detectors::builtin();                       // compiled once; keep and share it
//! let findings = det.scan(Side::User, "text", None);    // whole text
//! let findings = det.scan(Side::Assistant, reply, Some(user_turn)); // reply + its context
//! let mut s = det.stream(Side::Assistant, Some(user_turn));
//! let mut all = s.feed("first chunk");                  // findings of finished sentences
//! all.extend(s.feed("second chunk"));
//! all.extend(s.finish());                               // == det.scan(...) of the whole text
//! let packs = vec![RulePack::parse("gambling.toml", &text)?];  // the caller reads the file
//! let det = Detectors::with_rule_packs(packs)?;
//! ```
//!
//! Findings are [`tutela_types::Finding`]s: detector, side, tier (`lexical`), score,
//! severity, rule (`crisis/en/explicit-intent`) and spans, which are byte ranges of the
//! original text (never of the normalised one). Findings come per sentence: one finding per
//! detector and sentence, in text order. Operator categories become
//! [`DetectorId::Custom`].
//!
//! # How it works
//!
//! Text is cut into sentences ([`segment`]); each sentence is normalised once into a buffer
//! with a byte map back to the original ([`normalize`]); one Aho-Corasick automaton per side
//! finds every literal of every rule, frame and idiom in one pass; rules then interpret the
//! hits (needs, unless, idioms, negation, hypothetical/fiction/academic/past frames, subject
//! resolution for third parties). Assistant rules can require labels found in the preceding
//! user turn (`exit`, `ctx_asks_if_human`, ...), which is scanned once per reply.
//! The patterns are data (`data/*.toml`), embedded with `include_str!` and compiled once.
//!
//! Invariants: no I/O, no clock, no environment, no async runtime, no political-speech lists.
//! Chat text is never logged.

mod engine;
pub mod eval;
pub mod learned;
mod lexicon;
pub mod normalize;
mod rulepack;
pub mod segment;
mod skel;
mod t2s;

use std::sync::OnceLock;

use tutela_types::{DetectorId, Finding, Side};

pub use crate::engine::CompileError;
pub use crate::rulepack::{RulePack, RulePackError, RulePackErrors};

use crate::engine::{Carry, Engine, RuleInput, Scratch};
use crate::learned::encoder::{Embedder, EncoderHeads};
use crate::learned::model::NgramModel;
use crate::learned::{EncoderTier, NgramTier, WindowScan};
use crate::lexicon::LexFile;

/// Which detection tiers run. The lexical and n-gram tiers are compiled in and on by
/// default; the encoder tier runs when an embedder has been attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiers {
    /// Patterns over normalised text.
    pub lexical: bool,
    /// The linear model over hashed n-grams.
    pub ngram: bool,
    /// Heads over a sentence encoder (only with an embedder attached).
    pub encoder: bool,
}

impl Tiers {
    /// The lexical tier alone.
    pub const LEXICAL: Tiers = Tiers {
        lexical: true,
        ngram: false,
        encoder: false,
    };
    /// The n-gram tier alone.
    pub const NGRAM: Tiers = Tiers {
        lexical: false,
        ngram: true,
        encoder: false,
    };
    /// The encoder tier alone.
    pub const ENCODER: Tiers = Tiers {
        lexical: false,
        ngram: false,
        encoder: true,
    };
    /// Every tier there is.
    pub const ALL: Tiers = Tiers {
        lexical: true,
        ngram: true,
        encoder: true,
    };

    /// `lexical,ngram,encoder` (any subset, comma-separated).
    pub fn names(self) -> String {
        let mut v = Vec::new();
        if self.lexical {
            v.push("lexical");
        }
        if self.ngram {
            v.push("ngram");
        }
        if self.encoder {
            v.push("encoder");
        }
        v.join(",")
    }
}

impl Default for Tiers {
    fn default() -> Self {
        Tiers::ALL
    }
}

impl std::str::FromStr for Tiers {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut t = Tiers {
            lexical: false,
            ngram: false,
            encoder: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "lexical" => t.lexical = true,
                "ngram" => t.ngram = true,
                "encoder" => t.encoder = true,
                "all" => t = Tiers::ALL,
                other => {
                    return Err(format!(
                        "unknown tier `{other}` (expected lexical, ngram, encoder or all)"
                    ));
                }
            }
        }
        if t == (Tiers {
            lexical: false,
            ngram: false,
            encoder: false,
        }) {
            return Err("no tier selected".into());
        }
        Ok(t)
    }
}

/// Which language's rules run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Every language (mixed text is common).
    #[default]
    Auto,
    /// English rules only.
    En,
    /// Chinese rules only.
    Zh,
    /// Rules that apply whatever the language (operator rule packs without a language).
    Any,
}

impl Lang {
    /// `auto`, `en`, `zh` or `any`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Auto => "auto",
            Lang::En => "en",
            Lang::Zh => "zh",
            Lang::Any => "any",
        }
    }

    /// Whether a scan restricted to `self` runs a rule of language `rule`.
    fn admits(self, rule: Lang) -> bool {
        matches!(self, Lang::Auto) || rule == Lang::Any || rule == self
    }
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Lang::Auto),
            "en" => Ok(Lang::En),
            "zh" => Ok(Lang::Zh),
            "any" => Ok(Lang::Any),
            _ => Err(format!("unknown language `{s}` (expected auto, en or zh)")),
        }
    }
}

const USER_FILES: [(&str, &str); 2] = [
    ("data/user_en.toml", include_str!("../data/user_en.toml")),
    ("data/user_zh.toml", include_str!("../data/user_zh.toml")),
];
const ASSISTANT_FILES: [(&str, &str); 2] = [
    (
        "data/assistant_en.toml",
        include_str!("../data/assistant_en.toml"),
    ),
    (
        "data/assistant_zh.toml",
        include_str!("../data/assistant_zh.toml"),
    ),
];
const CONTEXT_FILES: [(&str, &str); 2] = [
    (
        "data/context_en.toml",
        include_str!("../data/context_en.toml"),
    ),
    (
        "data/context_zh.toml",
        include_str!("../data/context_zh.toml"),
    ),
];

fn parse_files(
    files: &[(&'static str, &'static str)],
) -> Result<Vec<(&'static str, LexFile)>, CompileError> {
    files
        .iter()
        .map(|&(name, text)| {
            toml::from_str::<LexFile>(text)
                .map(|lex| (name, lex))
                .map_err(|e| CompileError::Data {
                    file: name.to_owned(),
                    message: e.to_string(),
                })
        })
        .collect()
}

/// Every detector, compiled: the user side, the assistant side, and the reader of the user
/// turn that assistant rules take as context.
#[derive(Debug)]
pub struct Detectors {
    /// The user side, built on first use (screening a corpus never reads it; a server's
    /// `prepare` builds it up front).
    user: OnceLock<Engine>,
    /// The operator's user-side categories, for that build.
    user_extra: Vec<RuleInput>,
    assistant: Engine,
    context: Engine,
    /// The n-gram tier per side (user, assistant), when a model is loaded.
    ngram: [Option<NgramTier>; 2],
    /// The encoder tier per side, when an embedder and its heads are attached.
    encoder: [Option<EncoderTier>; 2],
    /// The tiers that run.
    tiers: Tiers,
}

impl Detectors {
    /// The built-in detectors. The embedded data is checked by the crate's tests, so this
    /// cannot fail in a released build.
    #[expect(
        clippy::expect_used,
        reason = "embedded pattern data is validated by unit tests"
    )]
    pub fn builtin() -> Self {
        Self::try_builtin().expect("built-in pattern data compiles")
    }

    /// The built-in detectors, reporting a data error instead of panicking.
    pub fn try_builtin() -> Result<Self, CompileError> {
        Self::build(Vec::new())
    }

    /// The built-in detectors plus operator categories from rule packs.
    pub fn with_rule_packs(packs: Vec<RulePack>) -> Result<Self, CompileError> {
        Self::build(packs)
    }

    fn build(packs: Vec<RulePack>) -> Result<Self, CompileError> {
        let mut user_extra: Vec<RuleInput> = Vec::new();
        let mut assistant_extra: Vec<RuleInput> = Vec::new();
        for pack in packs {
            for (side, input) in pack.into_inputs() {
                match side {
                    Side::User => user_extra.push(input),
                    Side::Assistant => assistant_extra.push(input),
                }
            }
        }
        // The user side is built on first use. Whatever could make that build fail is
        // checked now: the built-in files parse here (and compile, as the unit tests show),
        // and the operator's user-side categories compile on their own.
        parse_files(&USER_FILES)?;
        Engine::build(Side::User, &[], user_extra.clone())?;
        let assistant = Engine::build(
            Side::Assistant,
            &parse_files(&ASSISTANT_FILES)?,
            assistant_extra,
        )?;
        let context = Engine::build(Side::User, &parse_files(&CONTEXT_FILES)?, Vec::new())?;
        let ngram = [Side::User, Side::Assistant]
            .map(|side| learned::builtin_model(side).ok().map(NgramTier::new));
        Ok(Self {
            user: OnceLock::new(),
            user_extra,
            assistant,
            context,
            ngram,
            encoder: [None, None],
            tiers: Tiers::default(),
        })
    }

    /// Attaches an encoder with heads for one side (the heads' side); refuses heads trained
    /// on another encoder, or for a side without an n-gram model (the encoder is gated by it).
    pub fn set_encoder(
        &mut self,
        embedder: std::sync::Arc<dyn Embedder>,
        heads: EncoderHeads,
    ) -> Result<(), String> {
        if heads.meta.encoder != embedder.id() || heads.meta.dim != embedder.dim() {
            return Err(format!(
                "the {:?}-side heads were trained on encoder `{}` ({} dims), not on `{}` ({} dims): run `tutela train`",
                heads.meta.side,
                heads.meta.encoder,
                heads.meta.dim,
                embedder.id(),
                embedder.dim()
            ));
        }
        let i = side_index(heads.meta.side);
        if self.ngram[i].is_none() {
            return Err("the encoder tier needs the side's n-gram model".into());
        }
        self.encoder[i] = Some(EncoderTier { embedder, heads });
        Ok(())
    }

    /// Whether the encoder tier is attached for a side.
    pub fn has_encoder(&self, side: Side) -> bool {
        self.encoder[side_index(side)].is_some()
    }

    /// The encoder tier of a side, if attached and selected by `tiers`.
    fn encoder_tier(&self, side: Side, tiers: Tiers) -> Option<&EncoderTier> {
        self.encoder[side_index(side)]
            .as_ref()
            .filter(|_| tiers.encoder)
    }

    /// Replaces the n-gram model of the model's side (an operator's retrained model).
    pub fn set_ngram_model(&mut self, model: NgramModel) {
        let i = side_index(model.meta.side);
        self.ngram[i] = Some(NgramTier::new(model));
    }

    /// The n-gram model of a side, if one is loaded.
    pub fn ngram_model(&self, side: Side) -> Option<&NgramModel> {
        self.ngram[side_index(side)].as_ref().map(|t| &t.model)
    }

    /// Chooses the tiers that run (the lexical tier of operator rule packs included).
    pub fn set_tiers(&mut self, tiers: Tiers) {
        self.tiers = tiers;
    }

    /// The tiers that run.
    pub fn tiers(&self) -> Tiers {
        self.tiers
    }

    /// The n-gram tier of a side whether or not it is switched on.
    pub(crate) fn ngram_tier_any(&self, side: Side) -> Option<&NgramTier> {
        self.ngram[side_index(side)].as_ref()
    }

    /// The user side, built now if it is not yet.
    #[expect(
        clippy::expect_used,
        reason = "checked at construction: the built-in data by unit tests and parsing, the \
                  operator's categories by a build of their own"
    )]
    fn user(&self) -> &Engine {
        self.user.get_or_init(|| {
            let files = parse_files(&USER_FILES).expect("built-in user-side data parses");
            Engine::build(Side::User, &files, self.user_extra.clone())
                .expect("built-in user-side data and checked rule packs compile")
        })
    }

    /// Builds now what [`Detectors::scan`] would otherwise build on first use (the user
    /// side, the quick-pass automata: a few hundred milliseconds): for servers, so no
    /// request pays for it.
    pub fn prepare(&self) {
        // The context engine is read sentence by sentence, never through the quick pass.
        self.user().prepare();
        self.assistant.prepare();
    }

    /// Distinct literals and rules per engine (user, assistant, context), for reports.
    pub fn stats(&self) -> [(usize, usize); 3] {
        [
            self.user().size(),
            self.assistant.size(),
            self.context.size(),
        ]
    }

    fn engine(&self, side: Side) -> &Engine {
        match side {
            Side::User => self.user(),
            Side::Assistant => &self.assistant,
        }
    }

    /// Scans a whole text. `context` is the preceding user turn (assistant side only).
    pub fn scan(&self, side: Side, text: &str, context: Option<&str>) -> Vec<Finding> {
        self.scan_lang(side, Lang::Auto, text, context)
    }

    /// Like [`Detectors::scan`] with other tiers than the ones set (evaluation, training).
    pub fn scan_tiers(
        &self,
        side: Side,
        text: &str,
        context: Option<&str>,
        tiers: Tiers,
    ) -> Vec<Finding> {
        let lexical = if tiers.lexical {
            self.scan_lexical(side, Lang::Auto, text, context)
        } else {
            Vec::new()
        };
        self.scan_tiers_after(side, text, context, tiers, lexical)
    }

    /// Like [`Detectors::scan`], running only the lexical rules of `lang`.
    pub fn scan_lang(
        &self,
        side: Side,
        lang: Lang,
        text: &str,
        context: Option<&str>,
    ) -> Vec<Finding> {
        let lexical = if self.tiers.lexical {
            self.scan_lexical(side, lang, text, context)
        } else {
            Vec::new()
        };
        self.scan_tiers_after(side, text, context, self.tiers, lexical)
    }

    fn scan_tiers_after(
        &self,
        side: Side,
        text: &str,
        context: Option<&str>,
        tiers: Tiers,
        lexical: Vec<Finding>,
    ) -> Vec<Finding> {
        let enc = self.encoder_tier(side, tiers);
        match self.ngram[side_index(side)]
            .as_ref()
            .filter(|_| tiers.ngram || enc.is_some())
        {
            Some(tier) => {
                let scan = WindowScan::new(
                    tier,
                    self.ngram_context(tier, side, context),
                    enc.map(|e| (e, context)),
                    tiers.ngram,
                );
                self.merge_learned(scan, text, lexical)
            }
            None => lexical,
        }
    }

    /// The learned findings of `text`, window by window, placed after the lexical findings
    /// of the sentence that ends each window: the order a stream gives.
    fn merge_learned(
        &self,
        mut scan: WindowScan<'_>,
        text: &str,
        lexical: Vec<Finding>,
    ) -> Vec<Finding> {
        let mut out = Vec::with_capacity(lexical.len() + 2);
        let mut lex = lexical.into_iter().peekable();
        // The sentences of `learned::sentences`, as they are found.
        let mut next = 0;
        while next < text.len() {
            let s = next;
            let e = segment::next_boundary(text, s).unwrap_or(text.len());
            next = e;
            let first = out.len();
            while let Some(f) = lex.next_if(|f| f.spans.first().is_none_or(|sp| sp.start < e)) {
                out.push(f);
            }
            scan.sentence(&text[s..e], (s, e), &mut out, first);
        }
        out.extend(lex);
        out
    }

    /// The n-gram tier's partial of the user turn an assistant reply answers.
    fn ngram_context(
        &self,
        tier: &NgramTier,
        side: Side,
        context: Option<&str>,
    ) -> Option<learned::model::Partial> {
        match (side, context) {
            (Side::Assistant, Some(c)) => Some(tier.context(c, &self.context_labels(c))),
            _ => None,
        }
    }

    /// The lexical tier alone.
    fn scan_lexical(
        &self,
        side: Side,
        lang: Lang,
        text: &str,
        context: Option<&str>,
    ) -> Vec<Finding> {
        thread_local! {
            static QUICK: std::cell::RefCell<engine::QuickScratch> =
                std::cell::RefCell::new(engine::QuickScratch::default());
        }
        let engine = self.engine(side);
        QUICK.with(|q| {
            let Ok(mut q) = q.try_borrow_mut() else {
                return self.scan_stream(side, lang, text, context);
            };
            // Only the sentences up to the last one on which a rule could fire.
            let end = engine.must_read(text, &mut q);
            if end == 0 {
                return Vec::new();
            }
            let text = text.get(..end).unwrap_or(text);
            if !q.has_hits() {
                return self.scan_stream(side, lang, text, context);
            }
            let mut out = Vec::new();
            engine.scan_with_hits(text, lang, &self.context_for(side, context), &q, &mut out);
            out
        })
    }

    /// The labels assistant-side rules read from the preceding user turn (none on the
    /// user side).
    fn context_for(&self, side: Side, context: Option<&str>) -> Vec<DetectorId> {
        match (side, context) {
            (Side::Assistant, Some(c)) => self.context_labels(c),
            _ => Vec::new(),
        }
    }

    /// A whole text through a lexical stream (which searches every sentence itself).
    fn scan_stream(
        &self,
        side: Side,
        lang: Lang,
        text: &str,
        context: Option<&str>,
    ) -> Vec<Finding> {
        let mut s = self.stream_inner(side, lang, context, Tiers::LEXICAL);
        s.run(text, true);
        s.take()
    }

    /// The labels the context reader finds in a user turn: the user-side detectors that fire
    /// (`exit`, `crisis`, ...) and the context-only labels (`ctx_asks_human`, ...).
    pub fn context_labels(&self, context: &str) -> Vec<DetectorId> {
        let mut out = Vec::new();
        let mut sc = Scratch::default();
        let mut findings = Vec::new();
        for engine in [self.user(), &self.context] {
            sc.carry = Carry::default();
            let mut s = 0;
            while let Some(p) = segment::next_boundary(context, s) {
                engine.scan_segment(&context[s..p], s, Lang::Auto, &[], &mut sc, &mut findings);
                s = p;
            }
            engine.scan_segment(&context[s..], s, Lang::Auto, &[], &mut sc, &mut findings);
        }
        for f in findings {
            if !out.contains(&f.detector) {
                out.push(f.detector);
            }
        }
        out
    }

    /// A streaming scanner: feed chunks, get the findings of each finished sentence; any
    /// split of a text yields the same findings as [`Detectors::scan`] of the whole.
    pub fn stream(&self, side: Side, context: Option<&str>) -> Stream<'_> {
        self.stream_lang(side, Lang::Auto, context)
    }

    /// Like [`Detectors::stream`], running only the lexical rules of `lang`.
    pub fn stream_lang(&self, side: Side, lang: Lang, context: Option<&str>) -> Stream<'_> {
        self.stream_inner(side, lang, context, self.tiers)
    }

    fn stream_inner(
        &self,
        side: Side,
        lang: Lang,
        context: Option<&str>,
        tiers: Tiers,
    ) -> Stream<'_> {
        let enc = self.encoder_tier(side, tiers);
        let learned = self.ngram[side_index(side)]
            .as_ref()
            .filter(|_| tiers.ngram || enc.is_some())
            .map(|tier| {
                WindowScan::new(
                    tier,
                    self.ngram_context(tier, side, context),
                    enc.map(|e| (e, context)),
                    tiers.ngram,
                )
            });
        Stream {
            engine: tiers.lexical.then(|| self.engine(side)),
            lang,
            ctx: self.context_for(side, context),
            buf: String::new(),
            base: 0,
            runs: Vec::new(),
            in_run: false,
            scratch: Scratch::default(),
            out: Vec::new(),
            learned,
            early: 0,
        }
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::User => 0,
        Side::Assistant => 1,
    }
}

/// A streaming scan of one text (see [`Detectors::stream`]).
///
/// The unfinished sentence is buffered with only the first character of each run of the
/// characters the normaliser drops: the rest of a run changes no boundary and no finding
/// (sentences are cut on visible bytes), so a run of any length costs a few bytes, and the
/// buffer stays within the sentence caps. Spans are mapped back to the text as fed.
#[derive(Debug)]
pub struct Stream<'a> {
    engine: Option<&'a Engine>,
    lang: Lang,
    ctx: Vec<DetectorId>,
    /// The text not yet scanned, each run of dropped characters cut to its first character.
    buf: String,
    /// Offset in the text as fed of `buf[0]`.
    base: usize,
    /// The runs cut short in `buf`, in order: the end in `buf` of the character kept of the
    /// run, and the bytes left out of this and every earlier run in `buf` (a running sum).
    runs: Vec<(usize, usize)>,
    /// Whether `buf` ends with a dropped character (a run the next chunk may go on with).
    in_run: bool,
    scratch: Scratch,
    out: Vec<Finding>,
    learned: Option<WindowScan<'a>>,
    /// The furthest offset, in the text as fed, [`Stream::releasable`] has answered.
    early: usize,
}

impl Stream<'_> {
    /// Adds a chunk; returns the findings of the sentences it finished.
    pub fn feed(&mut self, chunk: &str) -> Vec<Finding> {
        self.push(chunk);
        let buf = std::mem::take(&mut self.buf);
        let used = self.run(&buf, false);
        self.buf = buf;
        self.consume(used);
        self.take()
    }

    /// Ends the text; returns the findings of the last sentence.
    pub fn finish(mut self) -> Vec<Finding> {
        let buf = std::mem::take(&mut self.buf);
        self.run(&buf, true);
        self.take()
    }

    /// Bytes fed so far that are not yet scanned (the unfinished sentence), counted in the
    /// text as fed.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.runs.last().map_or(0, |r| r.1)
    }

    /// Bytes this stream holds for the unfinished sentence: [`Stream::pending`] less the
    /// dropped characters it does not keep. Within the sentence caps however long the runs
    /// of dropped characters.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether feeding `chunk` would finish a sentence (so that [`Stream::feed`] would scan
    /// one), without feeding it. Reads the unfinished sentence as this stream holds it (each
    /// run of dropped characters cut to its first), so its cost is bounded by the sentence caps
    /// plus the chunk, however long the runs.
    pub fn would_finish(&self, chunk: &str) -> bool {
        let mut probe = String::with_capacity(self.buf.len() + chunk.len().min(4_096));
        probe.push_str(&self.buf);
        let mut in_run = self.in_run;
        for c in chunk.chars() {
            let dropped = normalize::is_dropped(c);
            if !(dropped && in_run) {
                probe.push(c);
            }
            in_run = dropped;
        }
        segment::next_boundary(&probe, 0).is_some()
    }

    /// How much of the text as fed may be shown before the unfinished sentence ends (the
    /// relay's early release): every finished sentence, and of the unfinished one the longest
    /// prefix that ends after a space or `，、：`, and
    ///
    /// 1. holds no letter or ideograph of a cue of the lexical rules, whatever text follows
    ///    (`Engine::cue_free_prefix`: no cue's skeleton in it, and the prefix stops before the
    ///    earliest point at which a cue begun in the sentence may still be going on), and
    /// 2. would give no finding of any tier as the text's last sentence: with (1) no lexical
    ///    rule can fire on it, and the window of the learned tiers that it would end (it and
    ///    the sentences before it in the window) is quiet (`WindowScan::quiet`: long enough
    ///    for the model to judge, and every head under half its n-gram threshold and, with
    ///    the encoder, either under half its gate, so the encoder would not be asked, or,
    ///    the window embedded, every head's fused probability under half its threshold: with
    ///    the encoder this call may embed, milliseconds).
    ///
    /// So the text up to the offset returned, scanned whole, gives no finding
    /// ([`Detectors::scan`] of it is empty: a property test). What comes after it may still
    /// fire on the finished sentence: the prefix is then text the checks passed on its own,
    /// as a sentence released before a window that fires is. Never less than an earlier
    /// answer. Never more than the finished sentences when the side has operator regexes
    /// (they read the whole sentence) or a cue without letters.
    pub fn releasable(&mut self) -> usize {
        let finished = self.base;
        if let Some(r) = self.early_prefix() {
            self.early = self.early.max(self.offset(r));
        }
        self.early = self.early.max(finished);
        self.early
    }

    /// The end, in the buffer, of the prefix of the unfinished sentence
    /// [`Stream::releasable`] allows, if any.
    fn early_prefix(&mut self) -> Option<usize> {
        let guard = match self.engine {
            Some(e) => e.cue_free_prefix(&self.buf)?,
            None => self.buf.len(),
        };
        let r = self.buf[..guard]
            .char_indices()
            .rev()
            .find(|&(_, c)| c.is_whitespace() || matches!(c, '\u{3001}' | '\u{FF0C}' | '\u{FF1A}'))
            .map(|(i, c)| i + c.len_utf8())?;
        if let Some(l) = &mut self.learned
            && !l.quiet(&self.buf[..r])
        {
            return None;
        }
        Some(r)
    }

    fn take(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.out)
    }

    /// Appends `chunk` to the buffer, leaving out every dropped character that follows
    /// another one (counted in `runs`).
    fn push(&mut self, chunk: &str) {
        let b = chunk.as_bytes();
        let mut copied = 0;
        let mut i = 0;
        while i < b.len() {
            let x = b[i];
            let (dropped, n) = if x < 0x80 {
                (normalize::is_dropped_byte(x), 1)
            } else {
                let c = chunk[i..].chars().next().unwrap_or(' ');
                (normalize::is_dropped(c), c.len_utf8())
            };
            if !dropped {
                self.in_run = false;
            } else if !self.in_run {
                self.in_run = true;
            } else {
                self.buf.push_str(&chunk[copied..i]);
                copied = i + n;
                let end = self.buf.len();
                match self.runs.last_mut() {
                    Some(r) if r.0 == end => r.1 += n,
                    last => {
                        let before = last.map_or(0, |r| r.1);
                        self.runs.push((end, before + n));
                    }
                }
            }
            i += n;
        }
        self.buf.push_str(&chunk[copied..]);
    }

    /// The offset in the text as fed of byte `i` of the buffer. Every offset asked for is a
    /// character boundary that is not strictly inside a run (the start or end of a character
    /// that is not dropped, a sentence boundary, the buffer's ends): the bytes a run left out
    /// lie after the character kept of it.
    fn offset(&self, i: usize) -> usize {
        let k = self.runs.partition_point(|r| r.0 <= i);
        self.base + i + k.checked_sub(1).map_or(0, |k| self.runs[k].1)
    }

    /// Drops the first `used` bytes of the buffer (scanned sentences).
    fn consume(&mut self, used: usize) {
        if used == 0 {
            return;
        }
        let new_base = self.offset(used);
        let k = self.runs.partition_point(|r| r.0 <= used);
        let left_out = k.checked_sub(1).map_or(0, |k| self.runs[k].1);
        self.runs.drain(..k);
        for r in &mut self.runs {
            r.0 -= used;
            r.1 -= left_out;
        }
        self.buf.drain(..used);
        self.base = new_base;
    }

    /// Scans the finished sentences of `text` (all of it if `last`); returns bytes consumed.
    fn run(&mut self, text: &str, last: bool) -> usize {
        let mut s = 0;
        while let Some(p) = segment::next_boundary(text, s) {
            self.sentence(&text[s..p], s);
            s = p;
        }
        if last && s < text.len() {
            self.sentence(&text[s..], s);
            s = text.len();
        }
        s
    }

    /// One finished sentence at byte `s` of the buffer: its lexical findings, then the
    /// learned findings of the window it ends.
    fn sentence(&mut self, seg: &str, s: usize) {
        let first = self.out.len();
        if let Some(engine) = self.engine {
            engine.scan_segment(
                seg,
                s,
                self.lang,
                &self.ctx,
                &mut self.scratch,
                &mut self.out,
            );
            // Spans of the buffer, to spans of the text as fed.
            for i in first..self.out.len() {
                for j in 0..self.out[i].spans.len() {
                    let sp = self.out[i].spans[j];
                    self.out[i].spans[j] = tutela_types::Span {
                        start: self.offset(sp.start),
                        end: self.offset(sp.end),
                    };
                }
            }
        }
        let range = (self.offset(s), self.offset(s + seg.len()));
        if let Some(l) = self.learned.as_mut() {
            l.sentence(seg, range, &mut self.out, first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_data_compiles() {
        let d = Detectors::try_builtin();
        assert!(d.is_ok(), "{:?}", d.err());
    }
}
