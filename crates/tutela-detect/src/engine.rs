//! One compiled side: every literal of every rule, frame and idiom in one Aho-Corasick
//! automaton over normalised text, the rules that interpret the hits, and the operator
//! regexes (run on the original sentence without the characters the normaliser drops). Scanning a sentence is one automaton pass plus
//! work proportional to the number of hits.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::RegexSet;
use tutela_types::{DetectorId, Finding, Severity, Side, Span, Tier};

use crate::Lang;
use crate::lexicon::{CARRIED_FRAMES, FrameKind, LexFile, SubjectMode, expand};
use crate::normalize::{Normalized, normalize_pattern};

/// What a literal means to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Cue(u32),
    Need(u32, u8),
    Unless(u32),
    Idiom(u32),
    GlobalIdiom,
    Frame(FrameKind),
    Subject { third: bool },
}

#[derive(Debug)]
struct Lit {
    check_left: bool,
    check_right: bool,
    roles: Vec<Role>,
}

impl Lit {
    fn is_cue(&self) -> bool {
        self.roles.iter().any(|r| matches!(r, Role::Cue(_)))
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub name: String,
    pub detector: DetectorId,
    pub severity: Severity,
    pub score: f32,
    pub lang: Lang,
    pub frames: u8,
    pub subject: SubjectMode,
    pub need_groups: u8,
    pub context: Vec<DetectorId>,
    pub unless_context: Vec<DetectorId>,
}

/// A rule under construction: its literals by role.
#[derive(Debug, Clone)]
pub(crate) struct RuleInput {
    pub rule: Rule,
    pub cues: Vec<String>,
    pub needs: Vec<Vec<String>>,
    pub unless: Vec<String>,
    pub idioms: Vec<String>,
    /// Regexes over the original sentence without dropped characters (operator packs),
    /// already validated.
    pub regexes: Vec<String>,
    /// Whether cue templates are expanded and get space-free variants (built-in data).
    pub templates: bool,
}

/// Errors while compiling a side.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A data file is not valid TOML for the schema.
    #[error("{file}: {message}")]
    Data {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The automaton or the regex set could not be built.
    #[error("cannot build matcher: {0}")]
    Build(String),
}

/// State carried from one sentence to the next.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Carry {
    frames: u8,
    last_third: Option<bool>,
}

/// One compiled side.
#[derive(Debug)]
pub(crate) struct Engine {
    side: Side,
    ac: Option<AhoCorasick>,
    /// The automata of the quick pass (see [`Engine::must_read`]), built on first use.
    quick: Quick,
    lits: Vec<Lit>,
    rules: Vec<Rule>,
    regex: Option<RegexSet>,
    regex_rule: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    s: u32,
    e: u32,
    #[allow(dead_code, reason = "kept for debugging")]
    lit: u32,
}

/// The quick pass's skeletons, and their automaton, built on first use: a side that is
/// never scanned (screening reads the assistant side only) builds nothing. An automaton
/// that cannot be built is `None`, and `None` only ever lets a text through to the full scan.
#[derive(Debug)]
struct Quick {
    /// Whether every cue has a non-empty skeleton (else no skeleton shortcut).
    shortcut: bool,
    /// Every cue's skeleton.
    skeletons: Vec<Vec<char>>,
    skel: OnceLock<Option<crate::skel::Skeletons>>,
    /// Every proper, non-empty prefix of a cue's skeleton, and the longest (in symbols),
    /// built on first use ([`Engine::cue_free_prefix`]).
    prefixes: OnceLock<(HashSet<Vec<char>>, usize)>,
}

impl Quick {
    fn new<'a>(cues: impl Iterator<Item = &'a str>) -> Self {
        let skeletons: Vec<Vec<char>> = cues.map(crate::normalize::skeleton_literal).collect();
        Self {
            shortcut: !skeletons.iter().any(Vec::is_empty),
            skeletons,
            skel: OnceLock::new(),
            prefixes: OnceLock::new(),
        }
    }

    /// The proper prefixes of the cues' skeletons, and the longest one's length.
    fn prefixes(&self) -> &(HashSet<Vec<char>>, usize) {
        self.prefixes.get_or_init(|| {
            let mut set = HashSet::new();
            let mut longest = 0;
            for k in &self.skeletons {
                for l in 1..k.len() {
                    set.insert(k[..l].to_vec());
                    longest = longest.max(l);
                }
            }
            (set, longest)
        })
    }

    /// Whether the side has any cue literal.
    fn any(&self) -> bool {
        !self.skeletons.is_empty()
    }

    /// The skeleton automaton of every cue.
    fn skel(&self) -> Option<&crate::skel::Skeletons> {
        self.skel
            .get_or_init(|| crate::skel::Skeletons::new(&self.skeletons))
            .as_ref()
    }
}

/// Reusable buffers for [`Engine::must_read`].
#[derive(Debug, Default)]
pub(crate) struct QuickScratch {
    norm: Normalized,
    text: String,
    /// Per sentence: where it ends in `text`, and in the scanned text.
    ends: Vec<(usize, usize)>,
    /// Every match of the side's automaton in `text` (pattern, start, end), by end; valid
    /// when `exact` (the last `must_read` read every sentence), so that the full scan of
    /// the same sentences need not search them again.
    hits: Vec<Match>,
    exact: bool,
}

/// A match of a side's automaton: pattern, start, end.
type Match = (usize, usize, usize);

impl QuickScratch {
    /// Whether the last `must_read` kept the matches of every sentence it read.
    pub(crate) fn has_hits(&self) -> bool {
        self.exact
    }
}

/// Reusable buffers for scanning, and the state carried from sentence to sentence.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) carry: Carry,
    norm: Normalized,
    hits: Vec<Hit>,
    cands: Vec<(u32, Hit)>,
    needs: Vec<(u32, u8)>,
    unless: Vec<u32>,
    idioms: Vec<(u32, u32, u32)>,
    negs: Vec<(u32, u32)>,
    nonneg: Vec<(u32, u32)>,
    subjects: Vec<(u32, u32, bool)>,
    fired: Vec<(u32, u32, u32, bool)>,
}

struct Builder {
    lits: Vec<Lit>,
    index: HashMap<String, usize>,
    patterns: Vec<String>,
}

impl Builder {
    fn add(&mut self, literal: &str, role: Role) {
        let (left_open, body) = match literal.strip_prefix('*') {
            Some(b) => (true, b),
            None => (false, literal),
        };
        let (right_open, body) = match body.strip_suffix('*') {
            Some(b) => (true, b),
            None => (false, body),
        };
        let norm = normalize_pattern(body);
        if norm.is_empty() {
            return;
        }
        let check_left = !left_open
            && norm
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        let check_right = !right_open
            && norm
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        let key = format!("{}{}{}", u8::from(check_left), u8::from(check_right), norm);
        let idx = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.lits.len();
                self.lits.push(Lit {
                    check_left,
                    check_right,
                    roles: Vec::new(),
                });
                self.patterns.push(norm);
                self.index.insert(key, i);
                i
            }
        };
        if !self.lits[idx].roles.contains(&role) {
            self.lits[idx].roles.push(role);
        }
    }

    fn add_template(
        &mut self,
        t: &str,
        role: Role,
        templates: bool,
        spaceless: bool,
    ) -> Result<(), String> {
        if !templates {
            self.add(t, role);
            return Ok(());
        }
        for lit in expand(t).map_err(|e| e.to_string())? {
            self.add(&lit, role);
            if spaceless && lit.is_ascii() && (2..=3).contains(&lit.split(' ').count()) {
                let joined: String = lit.chars().filter(|c| *c != ' ').collect();
                if joined.trim_matches('*').len() >= 8 {
                    self.add(&joined, role);
                }
            }
        }
        Ok(())
    }
}

impl Engine {
    /// Compiles data files and operator rules for one side.
    pub(crate) fn build(
        side: Side,
        files: &[(&str, LexFile)],
        extra: Vec<RuleInput>,
    ) -> Result<Self, CompileError> {
        let mut b = Builder {
            lits: Vec::new(),
            index: HashMap::new(),
            patterns: Vec::new(),
        };
        let mut rules = Vec::new();
        let mut regex_src = Vec::new();
        let mut regex_rule = Vec::new();
        let data_err = |file: &str, message: String| CompileError::Data {
            file: file.to_owned(),
            message,
        };
        let mut inputs: Vec<(String, RuleInput)> = Vec::new();
        for (file, lex) in files {
            let f = &lex.frames;
            for (list, kind) in [
                (&f.negation, FrameKind::Negation),
                (&f.hypothetical, FrameKind::Hypothetical),
                (&f.fiction, FrameKind::Fiction),
                (&f.academic, FrameKind::Academic),
                (&f.past, FrameKind::Past),
                (&f.not_negation, FrameKind::NotNegation),
            ] {
                for t in list {
                    b.add_template(t, Role::Frame(kind), true, false)
                        .map_err(|m| data_err(file, m))?;
                }
            }
            for t in &f.self_subject {
                b.add_template(t, Role::Subject { third: false }, true, false)
                    .map_err(|m| data_err(file, m))?;
            }
            for t in &f.third {
                b.add_template(t, Role::Subject { third: true }, true, false)
                    .map_err(|m| data_err(file, m))?;
            }
            for t in &lex.idioms {
                b.add_template(t, Role::GlobalIdiom, true, false)
                    .map_err(|m| data_err(file, m))?;
            }
            for r in &lex.rules {
                if r.needs.len() > 8 {
                    return Err(data_err(
                        file,
                        format!("rule `{}`: at most 8 needs groups", r.id),
                    ));
                }
                let lang = lex.lang.lang();
                let detector = crate::lexicon::detector(&r.detector);
                let name = format!("{}/{}/{}", detector, lang.as_str(), r.id);
                let mut frames = 0u8;
                for k in &r.frames {
                    frames |= k.bit();
                }
                inputs.push((
                    (*file).to_owned(),
                    RuleInput {
                        rule: Rule {
                            name,
                            detector,
                            severity: r.severity,
                            score: r.score,
                            lang,
                            frames,
                            subject: r.subject,
                            need_groups: r.needs.len() as u8,
                            context: r
                                .context
                                .iter()
                                .map(|c| crate::lexicon::detector(c))
                                .collect(),
                            unless_context: r
                                .unless_context
                                .iter()
                                .map(|c| crate::lexicon::detector(c))
                                .collect(),
                        },
                        cues: r.cues.clone(),
                        needs: r.needs.clone(),
                        unless: r.unless.clone(),
                        idioms: r.idioms.clone(),
                        regexes: Vec::new(),
                        templates: true,
                    },
                ));
            }
        }
        inputs.extend(extra.into_iter().map(|r| (String::from("rule pack"), r)));
        for (file, input) in inputs {
            let ri = rules.len() as u32;
            let t = input.templates;
            for c in &input.cues {
                b.add_template(c, Role::Cue(ri), t, true)
                    .map_err(|m| data_err(&file, m))?;
            }
            for (g, group) in input.needs.iter().enumerate() {
                for c in group {
                    b.add_template(c, Role::Need(ri, g as u8), t, true)
                        .map_err(|m| data_err(&file, m))?;
                }
            }
            for c in &input.unless {
                b.add_template(c, Role::Unless(ri), t, false)
                    .map_err(|m| data_err(&file, m))?;
            }
            for c in &input.idioms {
                b.add_template(c, Role::Idiom(ri), t, false)
                    .map_err(|m| data_err(&file, m))?;
            }
            for re in input.regexes {
                regex_src.push(re);
                regex_rule.push(ri);
            }
            rules.push(input.rule);
        }
        let ac = if b.patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .build(&b.patterns)
                    .map_err(|e| CompileError::Build(e.to_string()))?,
            )
        };
        let quick = Quick::new(
            b.lits
                .iter()
                .zip(&b.patterns)
                .filter(|(l, _)| l.is_cue())
                .map(|(_, p)| p.as_str()),
        );
        let regex = if regex_src.is_empty() {
            None
        } else {
            Some(RegexSet::new(&regex_src).map_err(|e| CompileError::Build(e.to_string()))?)
        };
        Ok(Self {
            side,
            ac,
            quick,
            lits: b.lits,
            rules,
            regex,
            regex_rule,
        })
    }

    /// How much of `text` a scan must read: `0` if no rule can fire on any of its sentences,
    /// else the end of the last sentence on which one could (a rule fires only on a
    /// sentence holding one of its cues, or matching an operator regex; sentences after the
    /// last such one add no finding, and the sentences before it are cut the same way
    /// whether the text goes on or not). A sentence "could" when, as normalised for the
    /// full scan, it contains a cue literal; boundary checks, frames, subjects and
    /// languages are not looked at here, so this only ever errs towards reading more.
    pub(crate) fn must_read(&self, text: &str, q: &mut QuickScratch) -> usize {
        q.exact = false;
        let quick = &self.quick;
        if !quick.any() && self.regex.is_none() {
            return 0;
        }
        // Without a skeleton shortcut (a cue with no letters in it, as on the user side),
        // the per-sentence pass alone costs about as much as it saves on chat-sized texts
        // and adds to every text that fires: go straight to the full scan.
        if self.regex.is_none() && !quick.shortcut {
            return text.len();
        }
        // Without operator regexes: a cue in one of the normalised sentences puts the cue's
        // skeleton in the text's skeleton; no skeleton means no cue.
        if self.regex.is_none() && !quick.skel().is_none_or(|d| d.hit(text)) {
            return 0;
        }
        q.text.clear();
        q.text.push('\0');
        q.ends.clear();
        let mut regex_end = 0;
        let mut s = 0;
        loop {
            let p = crate::segment::next_boundary(text, s).unwrap_or(text.len());
            let seg = &text[s..p];
            if let Some(set) = &self.regex
                && set.is_match(&crate::normalize::without_dropped(seg))
            {
                regex_end = p;
            }
            if quick.any() {
                crate::normalize::quick_text(seg, &mut q.norm, &mut q.text);
                q.ends.push((q.text.len(), p));
                // A separator no literal contains, so that no cue spans two sentences.
                q.text.push('\0');
            }
            if p >= text.len() {
                break;
            }
            s = p;
        }
        if !quick.any() {
            return regex_end;
        }
        let Some(ac) = &self.ac else {
            return text.len();
        };
        // The side's automaton over the normalised sentences: the last cue literal, and
        // the end of its sentence. The matches are kept for the full scan.
        q.hits.clear();
        let mut last_cue = None;
        for m in ac.find_overlapping_iter(q.text.as_bytes()) {
            if self.lits[m.pattern().as_usize()].is_cue() {
                last_cue = Some(m.end());
            }
            q.hits.push((m.pattern().as_usize(), m.start(), m.end()));
        }
        q.exact = true;
        let cue_end = last_cue.map_or(0, |e| {
            let i = q.ends.partition_point(|&(t, _)| t < e);
            q.ends.get(i).map_or(text.len(), |&(_, p)| p)
        });
        regex_end.max(cue_end)
    }

    /// How much of an unfinished sentence `seg` (the text fed so far of a sentence that goes
    /// on) holds no letter or ideograph of any cue, whatever text follows: the byte offset in
    /// `seg` before which no cue of a rule that fires on the finished sentence can begin.
    /// `Some(0)` when a cue's skeleton is already in `seg`'s (a rule may fire on it once the
    /// sentence ends); `None` when the side cannot tell (operator regexes, which read the
    /// whole sentence; a cue without letters; no skeleton automaton).
    ///
    /// Why it holds: a cue a rule fires on puts its skeleton into the finished sentence's
    /// skeleton (the quick pass's invariant, [`Engine::must_read`]), and the skeleton of `seg`
    /// is a prefix of the finished sentence's (it is read character by character, a run
    /// collapsing onto what came before). An occurrence that began inside `seg` and goes on
    /// past it leaves a suffix of `seg`'s skeleton that is a proper prefix of the cue's; the
    /// longest such suffix starts at the earliest symbol any of them can start at. The offset
    /// returned is the source character of that symbol (or `seg`'s end).
    pub(crate) fn cue_free_prefix(&self, seg: &str) -> Option<usize> {
        let quick = &self.quick;
        if self.regex.is_some() {
            return None;
        }
        if !quick.any() {
            return Some(seg.len());
        }
        if !quick.shortcut {
            return None;
        }
        if quick.skel()?.hit(seg) {
            return Some(0);
        }
        let mut marks = Vec::new();
        crate::normalize::skeleton_marks(seg, &mut marks);
        let (prefixes, longest) = quick.prefixes();
        let syms: Vec<char> = marks.iter().map(|m| m.0).collect();
        for l in (1..=(*longest).min(syms.len())).rev() {
            if prefixes.contains(&syms[syms.len() - l..]) {
                return Some(marks[marks.len() - l].1);
            }
        }
        Some(seg.len())
    }

    /// Builds now, rather than on first use, the skeleton automaton [`Engine::must_read`]
    /// will use (none for a side without a skeleton shortcut or with operator regexes).
    pub(crate) fn prepare(&self) {
        if self.regex.is_none() && self.quick.shortcut {
            let _ = self.quick.skel();
        }
    }

    /// Number of distinct literals and of rules.
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.lits.len(), self.rules.len())
    }

    /// Scans one sentence `seg` (which starts at `base` in the caller's text) and appends one
    /// finding per detector that fired.
    pub(crate) fn scan_segment(
        &self,
        seg: &str,
        base: usize,
        lang: Lang,
        context: &[DetectorId],
        sc: &mut Scratch,
        out: &mut Vec<Finding>,
    ) {
        self.scan_segment_with(seg, base, lang, context, sc, out, None);
    }

    /// Scans `text` (a prefix, ending at a sentence boundary, of the text the last
    /// `must_read` read into `q`, which must hold its matches: [`QuickScratch::has_hits`])
    /// sentence by sentence, as [`Engine::scan_segment`] does, taking each sentence's
    /// automaton matches from `q`: its normalised sentences equal those of the full scan (a
    /// property test shows), so their matches are the same.
    pub(crate) fn scan_with_hits(
        &self,
        text: &str,
        lang: Lang,
        context: &[DetectorId],
        q: &QuickScratch,
        out: &mut Vec<Finding>,
    ) {
        let mut sc = Scratch::default();
        // `q.text` opens with a separator; each sentence's text is followed by one.
        let mut from_q = 1;
        let mut s = 0;
        let mut h = 0;
        for &(to_q, p) in &q.ends {
            if s >= text.len() {
                break;
            }
            // Matches end in order, and none spans a separator.
            let first = h;
            while h < q.hits.len() && q.hits[h].2 <= to_q {
                h += 1;
            }
            let pre = (&q.hits[first..h], from_q);
            self.scan_segment_with(&text[s..p], s, lang, context, &mut sc, out, Some(pre));
            s = p;
            from_q = to_q + 1;
        }
    }

    /// [`Engine::scan_segment`], with the sentence's automaton matches given (`pre`: the
    /// matches and the offset of the sentence in the text they were found in) or searched.
    #[expect(
        clippy::too_many_arguments,
        reason = "scan_segment's arguments and the matches found before"
    )]
    fn scan_segment_with(
        &self,
        seg: &str,
        base: usize,
        lang: Lang,
        context: &[DetectorId],
        sc: &mut Scratch,
        out: &mut Vec<Finding>,
        pre: Option<(&[Match], usize)>,
    ) {
        let mut carry = sc.carry;
        sc.hits.clear();
        sc.cands.clear();
        sc.needs.clear();
        sc.unless.clear();
        sc.idioms.clear();
        sc.negs.clear();
        sc.nonneg.clear();
        sc.subjects.clear();
        sc.fired.clear();
        let mut frames = 0u8;
        if let Some(ac) = &self.ac {
            sc.norm.fill(seg);
            let text = sc.norm.text.as_bytes();
            let mut given;
            let mut searched;
            let matches: &mut dyn Iterator<Item = (usize, usize, usize)> = match pre {
                Some((hits, off)) => {
                    given = hits.iter().map(move |&(p, s, e)| (p, s - off, e - off));
                    &mut given
                }
                None => {
                    searched = ac
                        .find_overlapping_iter(sc.norm.text.as_str())
                        .map(|m| (m.pattern().as_usize(), m.start(), m.end()));
                    &mut searched
                }
            };
            for (pid, start, end) in matches {
                let lit = &self.lits[pid];
                if lit.check_left && start > 0 && text[start - 1].is_ascii_alphanumeric() {
                    continue;
                }
                if lit.check_right && end < text.len() && text[end].is_ascii_alphanumeric() {
                    continue;
                }
                let hit = Hit {
                    s: start as u32,
                    e: end as u32,
                    lit: pid as u32,
                };
                for role in &lit.roles {
                    match *role {
                        Role::Cue(r) => sc.cands.push((r, hit)),
                        Role::Need(r, g) => sc.needs.push((r, g)),
                        Role::Unless(r) => sc.unless.push(r),
                        Role::Idiom(r) => sc.idioms.push((r, hit.s, hit.e)),
                        Role::GlobalIdiom => sc.idioms.push((u32::MAX, hit.s, hit.e)),
                        Role::Frame(FrameKind::Negation) => sc.negs.push((hit.s, hit.e)),
                        Role::Frame(FrameKind::NotNegation) => sc.nonneg.push((hit.s, hit.e)),
                        Role::Frame(k) => frames |= k.bit(),
                        Role::Subject { third } => {
                            let skip = is_object(&sc.norm.text, hit.s as usize)
                                || third && is_perceiver(&sc.norm.text, hit.e as usize);
                            if !skip {
                                sc.subjects.push((hit.s, hit.e, third));
                            }
                        }
                    }
                }
                sc.hits.push(hit);
            }
        }
        if !sc.nonneg.is_empty() {
            let nonneg = &sc.nonneg;
            sc.negs
                .retain(|&(s, e)| !nonneg.iter().any(|&(ns, ne)| ns < e && s < ne));
        }
        let active = frames | carry.frames;
        let text = sc.norm.text.as_str();
        for &(r, hit) in &sc.cands {
            let rule = &self.rules[r as usize];
            if !lang.admits(rule.lang) {
                continue;
            }
            if active & rule.frames & !FrameKind::Negation.bit() != 0 {
                continue;
            }
            if sc.unless.contains(&r) {
                continue;
            }
            if rule.need_groups > 0
                && !(0..rule.need_groups)
                    .all(|g| sc.needs.iter().any(|&(nr, ng)| nr == r && ng == g))
            {
                continue;
            }
            if sc
                .idioms
                .iter()
                .any(|&(ir, s, e)| (ir == r || ir == u32::MAX) && s < hit.e && hit.s < e)
            {
                continue;
            }
            if rule.frames & FrameKind::Negation.bit() != 0 && negated(text, &sc.negs, hit) {
                continue;
            }
            if !rule.context.is_empty() && !rule.context.iter().any(|c| context.contains(c)) {
                continue;
            }
            if rule.unless_context.iter().any(|c| context.contains(c)) {
                continue;
            }
            let third = match rule.subject {
                SubjectMode::Any => false,
                SubjectMode::Resolve => subject_is_third(text, &sc.norm.quotes, &sc.subjects, hit)
                    .or(carry.last_third)
                    .unwrap_or(false),
                SubjectMode::SelfOnly => {
                    let before = Hit { e: hit.s, ..hit };
                    if subject_is_third(text, &sc.norm.quotes, &sc.subjects, before)
                        .unwrap_or(false)
                    {
                        continue;
                    }
                    false
                }
            };
            sc.fired.push((r, hit.s, hit.e, third));
        }
        if let Some(set) = &self.regex {
            for i in set.matches(&crate::normalize::without_dropped(seg)).iter() {
                let r = self.regex_rule[i];
                if lang.admits(self.rules[r as usize].lang) && !sc.unless.contains(&r) {
                    sc.fired.push((r, u32::MAX, u32::MAX, false));
                }
            }
        }
        // Carry for the next sentence.
        carry.frames = frames & CARRIED_FRAMES;
        if let Some(&(_, _, t)) = sc.subjects.iter().max_by_key(|s| (s.0, s.1)) {
            carry.last_third = Some(t);
        }
        sc.carry = carry;
        self.emit(seg, base, sc, out);
    }

    fn emit(&self, seg: &str, base: usize, sc: &Scratch, out: &mut Vec<Finding>) {
        let first = out.len();
        for &(r, s, e, third) in &sc.fired {
            let rule = &self.rules[r as usize];
            let detector = if third {
                DetectorId::ThirdParty
            } else {
                rule.detector.clone()
            };
            let span = if s == u32::MAX {
                Span {
                    start: base,
                    end: base + seg.len(),
                }
            } else {
                let (a, b) = sc.norm.original(s as usize, e as usize);
                Span {
                    start: base + a,
                    end: base + b,
                }
            };
            match out[first..].iter_mut().find(|f| f.detector == detector) {
                Some(f) => {
                    if rule.score > f.score {
                        f.score = rule.score;
                        f.rule = Some(rule.name.clone());
                    }
                    f.severity = f.severity.max(rule.severity);
                    if !f.spans.contains(&span) {
                        f.spans.push(span);
                    }
                }
                None => out.push(Finding {
                    detector,
                    side: self.side,
                    tier: Tier::Lexical,
                    score: rule.score,
                    severity: rule.severity,
                    rule: Some(rule.name.clone()),
                    spans: vec![span],
                    threshold: None,
                    examples: Vec::new(),
                }),
            }
        }
        for f in &mut out[first..] {
            f.spans.sort();
            // Merge overlapping spans: one range per stretch of matched text.
            let mut merged: Vec<Span> = Vec::with_capacity(f.spans.len());
            for s in f.spans.drain(..) {
                match merged.last_mut() {
                    Some(last) if s.start < last.end => last.end = last.end.max(s.end),
                    _ => merged.push(s),
                }
            }
            f.spans = merged;
        }
    }
}

/// A negator ends before the cue, in the same clause, with at most three words between.
fn negated(text: &str, negs: &[(u32, u32)], hit: Hit) -> bool {
    negs.iter().any(|&(s, e)| {
        if e > hit.s || s >= hit.s {
            return false;
        }
        let gap = &text[e as usize..hit.s as usize];
        gap.len() <= 24
            && !gap.contains([',', '.', ';', '!', '?', '，', '。', '；', '！', '？', '、'])
            && !gap.contains(" but ")
            && !gap.contains("但")
            && gap.split_whitespace().count() <= 3
            && gap.chars().filter(|c| !c.is_ascii()).count() <= 3
    })
}

/// Whether the word starting at `at` is the object of a preposition or verb just before it
/// (`跟大家`, `told her`), and so not the subject of what follows.
fn is_object(text: &str, at: usize) -> bool {
    let Some(before) = text.get(..at) else {
        return false;
    };
    if before
        .chars()
        .next_back()
        .is_some_and(|c| "跟和向给对替帮把让被陪找问".contains(c))
        || before.ends_with("告诉")
    {
        return true;
    }
    let mut words = before.trim_end().rsplit(' ');
    let mut prev = words.next().unwrap_or("");
    if matches!(
        prev,
        "my" | "his" | "her" | "their" | "our" | "your" | "the" | "a" | "an"
    ) {
        prev = words.next().unwrap_or("");
    }
    before.ends_with(' ')
        && matches!(
            prev,
            "to" | "with"
                | "for"
                | "at"
                | "about"
                | "from"
                | "told"
                | "tell"
                | "gave"
                | "give"
                | "send"
                | "sent"
                | "texted"
                | "called"
                | "asked"
                | "help"
                | "helped"
                | "miss"
                | "love"
                | "hate"
                | "without"
        )
}

/// Whether the third person ending at `at` only perceives or asks about what follows
/// (`they didn't realise it was...`, `他们都问我...`): the speaker is still the one at risk.
fn is_perceiver(text: &str, at: usize) -> bool {
    let Some(after) = text.get(at..) else {
        return false;
    };
    let after = after.trim_start();
    const EN: [&str; 14] = [
        "dont know",
        "didnt know",
        "doesnt know",
        "dont realise",
        "didnt realise",
        "dont realize",
        "didnt realize",
        "had no idea",
        "have no idea",
        "never knew",
        "wont know",
        "didnt notice",
        "wont notice",
        "will never know",
    ];
    const ZH: [&str; 10] = [
        "不知道",
        "没发现",
        "没注意",
        "以为",
        "还以为",
        "都问我",
        "问我",
        "不懂",
        "都不知道",
        "没看出",
    ];
    EN.iter().any(|p| after.starts_with(p)) || ZH.iter().any(|p| after.starts_with(p))
}

/// The subject nearest before the end of the cue: third person or not; `None` if none.
/// A cue inside quotation marks is reported speech: only subjects before the opening mark
/// count, so `she keeps saying "I can't go on"` speaks of her.
fn subject_is_third(
    text: &str,
    quotes: &[u32],
    subjects: &[(u32, u32, bool)],
    hit: Hit,
) -> Option<bool> {
    // Subjects starting inside the cue (`欠朋友的钱`) are not its subject; one starting with
    // it (`i want to die`) is.
    let (limit_s, limit_e) =
        quote_start(text, quotes, hit.s as usize).map_or((hit.s, hit.e), |q| (q as u32, q as u32));
    subjects
        .iter()
        .filter(|&&(s, e, _)| s <= limit_s && e <= limit_e)
        .max_by_key(|&&(s, e, _)| (s, e))
        .map(|&(_, _, t)| t)
}

/// If byte `at` is inside an open quotation, the byte where the quotation starts. Quotation
/// marks are the ones left in the text (`"`, `“”`, `「」`, ...) and the single quotes the
/// normaliser recorded in `quotes`.
fn quote_start(text: &str, quotes: &[u32], at: usize) -> Option<usize> {
    let mut open: Option<usize> = None;
    let mut marks = quotes
        .iter()
        .map(|&q| q as usize)
        .filter(|&q| q < at)
        .peekable();
    for (i, c) in text.get(..at)?.char_indices() {
        while let Some(&q) = marks.peek() {
            if q > i {
                break;
            }
            open = if open.is_some() { None } else { Some(q) };
            marks.next();
        }
        match c {
            '“' | '「' | '『' | '«' => open = Some(i),
            '”' | '」' | '』' | '»' => open = None,
            '"' => open = if open.is_some() { None } else { Some(i) },
            _ => {}
        }
    }
    for q in marks {
        open = if open.is_some() { None } else { Some(q) };
    }
    open
}

#[cfg(test)]
mod tests {
    #[test]
    fn built_in_skeleton_automaton_reads_ideographs_in_bounded_memory() {
        let d = crate::Detectors::builtin();
        let Some(s) = d.assistant.quick.skel() else {
            panic!("the assistant side's skeleton automaton builds");
        };
        assert!(s.reads_ideographs());
        eprintln!("assistant skeleton automaton: {} bytes", s.bytes());
        assert!(s.bytes() < 40 << 20, "{} bytes", s.bytes());
    }
}
