//! Normalisation shared by every detector: one pass per text into a reusable buffer, with a
//! byte map back to the original text so spans can be reported in original offsets.
//!
//! Steps, in order: invisible characters dropped ([`is_dropped`]: every control (Cc) that
//! is not whitespace, every format character (Cf: zero-width, bidi controls, soft hyphen,
//! ...), variation selectors and fillers), the whitespace controls (TAB, LF, VT, FF, CR,
//! NEL) read as spaces; NFKC per character (full-width forms become ASCII); lowercase;
//! traditional → simplified Chinese; apostrophes dropped (`don't` = `dont`); whitespace runs
//! become one space; then, with one character of lookahead: leetspeak digits and symbols
//! between letters become letters (`su1cide`), spaced-out letters are joined
//! (`k i l l` → `kill`), and runs of the same ASCII letter collapse to one (`killll` = `kill`
//! = `kil`). Patterns go through the same function, so they match whatever the text did.
//! Emoji are kept as they are (they are signals).
//!
//! A dropped character changes nothing: the text normalises as it would without it, and
//! whether an apostrophe is a quotation mark is judged on its nearest characters that are
//! not dropped. Quotation marks are recorded out of band (`None` in the per-character stage,
//! [`QUOTE_BYTE`], a byte no ASCII character stages to, in the ASCII path), so no character
//! a user can send is read as one.

use unicode_normalization::UnicodeNormalization;

use crate::t2s;

/// A normalised text with, for every byte of it, the original byte range it came from.
#[derive(Debug, Default, Clone)]
pub struct Normalized {
    /// The normalised text.
    pub text: String,
    /// For each byte of `text`: start of the original character(s) it came from.
    start: Vec<u32>,
    /// For each byte of `text`: end of the original character(s) it came from.
    end: Vec<u32>,
    /// Scratch: characters after the first stage; `None` is a single quotation mark.
    stage: Vec<(Option<char>, u32, u32)>,
    /// Byte offsets in `text` where a single quotation mark stood (`'`, `‘`, `’` used as
    /// quotes, not apostrophes); the marks themselves are dropped from `text`.
    pub quotes: Vec<u32>,
}

impl Normalized {
    /// An empty buffer, to be reused with [`Normalized::fill`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Normalises `src` into this buffer (offsets relative to `src`).
    pub fn fill(&mut self, src: &str) {
        let b = src.as_bytes();
        if src.is_ascii() && !has_dropped_byte(b) && !maybe_spaced_ascii(b) {
            self.fill_ascii(src.as_bytes());
        } else {
            self.fill_general(src);
        }
    }

    /// The single-pass path for ASCII text without spaced-out letters and without dropped
    /// bytes (so an apostrophe's raw neighbours are its real ones); produces exactly what
    /// [`Normalized::fill_general`] does (a unit test holds them equal).
    fn fill_ascii(&mut self, b: &[u8]) {
        self.text.clear();
        self.start.clear();
        self.end.clear();
        self.text.reserve(b.len());
        self.start.reserve(b.len());
        self.end.reserve(b.len());
        self.quotes.clear();
        let mut last_space = true;
        for i in 0..b.len() {
            let s = i as u32;
            let e = s + 1;
            let c = stage_byte_at(b, i);
            let Some(mut c) = c else { continue };
            if c == QUOTE_BYTE {
                self.quotes.push(self.text.len() as u32);
                continue;
            }
            if c == b' ' {
                if !last_space {
                    self.push(' ', s, e);
                    last_space = true;
                }
                continue;
            }
            last_space = false;
            if let Some(letter) = leet(c as char) {
                let prev_letter = self
                    .text
                    .as_bytes()
                    .last()
                    .is_some_and(u8::is_ascii_lowercase);
                let next = next_stage(b, i + 1);
                let next_letter = next.is_some_and(|(n, j)| {
                    n.is_ascii_lowercase()
                        || leet(n as char).is_some()
                            && next_stage(b, j + 1).is_some_and(|(nn, _)| nn.is_ascii_lowercase())
                });
                if prev_letter && next_letter {
                    c = letter as u8;
                }
            }
            if c.is_ascii_lowercase() && self.text.as_bytes().last() == Some(&c) {
                if let Some(last) = self.end.last_mut() {
                    *last = e;
                }
                continue;
            }
            self.push(c as char, s, e);
        }
    }

    fn fill_general(&mut self, src: &str) {
        self.text.clear();
        self.start.clear();
        self.end.clear();
        self.stage.clear();
        self.stage.reserve(src.len());
        self.text.reserve(src.len() + 8);
        self.start.reserve(src.len() + 8);
        self.end.reserve(src.len() + 8);
        stage_one(src, &mut self.stage);
        self.stage_two();
    }

    /// The original byte range `[start, end)` of the normalised range `[a, b)`.
    pub fn original(&self, a: usize, b: usize) -> (usize, usize) {
        if a >= b || b > self.start.len() {
            return (0, 0);
        }
        (self.start[a] as usize, self.end[b - 1] as usize)
    }

    fn push(&mut self, c: char, s: u32, e: u32) {
        let n = c.len_utf8();
        self.text.push(c);
        if n == 1 {
            self.start.push(s);
            self.end.push(e);
        } else {
            self.start.extend(std::iter::repeat_n(s, n));
            self.end.extend(std::iter::repeat_n(e, n));
        }
    }

    fn stage_two(&mut self) {
        let stage = std::mem::take(&mut self.stage);
        let n = stage.len();
        let mut join_sep = vec![false; 0];
        if has_spaced_run(&stage) {
            join_sep = spaced_separators(&stage);
        }
        self.quotes.clear();
        let mut i = 0;
        while i < n {
            let (c, s, e) = stage[i];
            let Some(mut c) = c else {
                self.quotes.push(self.text.len() as u32);
                i += 1;
                continue;
            };
            if !join_sep.is_empty() && join_sep[i] {
                i += 1;
                continue;
            }
            if let Some(letter) = leet(c) {
                let prev_letter = self
                    .text
                    .chars()
                    .next_back()
                    .is_some_and(|p| p.is_ascii_lowercase());
                let next_letter = stage.get(i + 1).and_then(|u| u.0).is_some_and(|nc| {
                    nc.is_ascii_lowercase()
                        || leet(nc).is_some()
                            && stage
                                .get(i + 2)
                                .and_then(|u| u.0)
                                .is_some_and(|nn| nn.is_ascii_lowercase())
                });
                if prev_letter && next_letter {
                    c = letter;
                }
            }
            if c.is_ascii_lowercase() && self.text.as_bytes().last() == Some(&(c as u8)) {
                // Collapse a repeated letter into the one before it.
                if let Some(last) = self.end.last_mut() {
                    *last = e;
                }
                i += 1;
                continue;
            }
            self.push(c, s, e);
            i += 1;
        }
        self.stage = stage;
    }
}

/// Appends to `out` exactly the text [`Normalized::fill`] makes of `seg` (no byte map, no
/// quotation marks): the quick pass that decides whether a text needs a full scan, and the
/// n-gram tier's reading of a sentence. Text without spaced-out letters made of ASCII, CJK
/// ideographs, CJK punctuation and emoji takes a single tight loop; anything else goes
/// through `scratch` and the full normaliser. A unit test holds the two equal.
pub(crate) fn quick_text(seg: &str, scratch: &mut Normalized, out: &mut String) {
    let floor = out.len();
    if !quick_text_plain(seg.as_bytes(), out) {
        out.truncate(floor);
        scratch.fill(seg);
        out.push_str(&scratch.text);
    }
}

/// Whether a text may hold spaced-out letters (`k i l l`), as [`maybe_spaced_ascii`] and
/// [`maybe_spaced_chars`] decide, read one character at a time (full-width forms as their
/// ASCII characters, any other non-ASCII character a separator): a small automaton over the
/// character classes of [`CLASS`] (0: other, [`ALNUM`]: a digit, `ALNUM | LETTER`: a letter).
#[derive(Debug, Default, Clone, Copy)]
struct Spaced {
    /// 0: not in a run of letters and digits; 1: in a run of one letter; 2: in a run of one
    /// digit; 3: in a longer run.
    state: u8,
    /// One-letter words in a row.
    singles: u32,
}

/// [`Spaced`]'s transitions, by `state * 4 + class`: the next state (bits 0–1), and at the
/// end of a run whether it was a one-letter word (bit 2) or not (bit 3).
const SPACED: [u8; 16] = {
    const SINGLE: u8 = 4;
    const OTHER: u8 = 8;
    [
        // From no run: other, digit, -, letter.
        0, 2, 0, 1, //
        // From a one-letter run.
        SINGLE, 3, 0, 3, //
        // From a one-digit run.
        OTHER, 3, 0, 3, //
        // From a longer run.
        OTHER, 3, 0, 3,
    ]
};

impl Spaced {
    /// After a character of class `class`: `true` once three one-letter words stand in a
    /// row.
    #[inline(always)]
    fn step(&mut self, class: u8) -> bool {
        let t = SPACED[usize::from(self.state & 3) * 4 + usize::from(class & 3)];
        self.state = t & 3;
        // Reset after another run, one more after a one-letter word.
        self.singles = (self.singles + u32::from(t >> 2 & 1)) * u32::from(t >> 3 ^ 1);
        self.singles >= 3
    }

    /// Whether the text, ended here, may hold spaced-out letters.
    fn at_end(self) -> bool {
        self.state == 1 && self.singles >= 2
    }
}

/// [`quick_text`] for a text without spaced-out letters: ASCII, CJK ideographs (simplified),
/// CJK punctuation and emoji, which stage one maps one to one. Returns `false`, having
/// written part of the text, at any other character, or once the text may hold spaced-out
/// letters ([`Spaced`], checked on the way: such a text goes to the full normaliser).
///
/// The stage-two lookahead ([`next_stage`]) reads raw bytes; a non-ASCII character is never
/// a letter, a leetspeak symbol, nor dropped, so the byte it starts with answers the same.
fn quick_text_plain(b: &[u8], out: &mut String) -> bool {
    // `out` ends with a byte that is not a lowercase letter (the caller's separator), so
    // "the last byte of this text" and "the last byte of `out`" agree for every test below.
    let floor = out.len();
    out.reserve(b.len());
    let mut spaced = Spaced::default();
    let mut last_space = true;
    let mut i = 0;
    while i < b.len() {
        let x = b[i];
        let c = if x < 0x80 {
            i += 1;
            let k = CLASS[x as usize];
            if spaced.step(k) {
                return false;
            }
            let c = QUICK[x as usize];
            if k & LETTER != 0 {
                // A letter (the common case): neither a space, a marker nor leetspeak; only
                // a repeat of the letter before it is dropped.
                last_space = false;
                if out.len() > floor && out.as_bytes()[out.len() - 1] == c {
                    continue;
                }
                // `c` is ASCII (`& 0x7F` says so, and changes nothing): one byte pushed.
                out.push(char::from(c & 0x7F));
                continue;
            }
            c
        } else {
            let Some((c, n)) = decode(b, i) else {
                return false;
            };
            i += n;
            if let Some(a) = fullwidth(c) {
                if spaced.step(CLASS[usize::from(a & 0x7F)]) {
                    return false;
                }
                QUICK[a as usize]
            } else {
                if spaced.step(0) {
                    return false;
                }
                if c == '\u{3000}' {
                    b' '
                } else {
                    let c = if is_cjk(c) {
                        t2s::simplify(c)
                    } else if ('\u{3001}'..='\u{3035}').contains(&c)
                        || ('\u{1F300}'..='\u{1FAFF}').contains(&c)
                    {
                        c
                    } else {
                        return false;
                    };
                    out.push(c);
                    last_space = false;
                    continue;
                }
            }
        };
        match c {
            Q_DROP => continue,
            Q_FULL => return false,
            b' ' => {
                if !last_space {
                    out.push(' ');
                    last_space = true;
                }
                continue;
            }
            _ => {}
        }
        last_space = false;
        let mut c = c;
        if let Some(letter) = leet(c as char) {
            let prev_letter =
                out.len() > floor && out.as_bytes()[out.len() - 1].is_ascii_lowercase();
            if prev_letter {
                let next = next_stage_quick(b, i);
                let next_letter = next.is_some_and(|(n, j)| {
                    n.is_ascii_lowercase()
                        || leet(n as char).is_some()
                            && next_stage_quick(b, j).is_some_and(|(nn, _)| nn.is_ascii_lowercase())
                });
                if next_letter {
                    c = letter as u8;
                }
            }
        }
        if c.is_ascii_lowercase() && out.len() > floor && out.as_bytes()[out.len() - 1] == c {
            continue;
        }
        // Every value left here is ASCII (the markers are handled above).
        out.push(char::from(c & 0x7F));
    }
    // A one-letter word at the end, after two others.
    !spaced.at_end()
}

/// The character starting at byte `i` of valid UTF-8 (not ASCII) and its length; `None` where
/// no valid character starts. Decoded by hand (a unit test holds it equal to `from_utf8`).
#[inline]
pub(crate) fn decode(b: &[u8], i: usize) -> Option<(char, usize)> {
    let x = *b.get(i)?;
    let (n, lead, min) = match x {
        0xC0..=0xDF => (2, x & 0x1F, 0x80),
        0xE0..=0xEF => (3, x & 0x0F, 0x800),
        0xF0..=0xF4 => (4, x & 0x07, 0x1_0000),
        _ => return None,
    };
    let mut c = u32::from(lead);
    for &t in b.get(i + 1..i + n)? {
        if t & 0xC0 != 0x80 {
            return None;
        }
        c = c << 6 | u32::from(t & 0x3F);
    }
    if c < min {
        return None;
    }
    char::from_u32(c).map(|c| (c, n))
}

/// The character starting at byte `i` (ASCII or not) of valid UTF-8.
fn decode_any(b: &[u8], i: usize) -> Option<char> {
    if b[i] < 0x80 {
        Some(b[i] as char)
    } else {
        decode(b, i).map(|(c, _)| c)
    }
}

/// A full-width form (U+FF01..U+FF5E) as its ASCII character, lowercased: NFKC + lowercase.
fn fullwidth(c: char) -> Option<u8> {
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
        Some(((c as u32 - 0xFEE0) as u8).to_ascii_lowercase())
    } else {
        None
    }
}

/// [`next_stage`] for [`quick_text_plain`]: the next stage-one byte at or after `from` and
/// the index after its character. Full-width forms are read as their ASCII characters; any
/// other non-ASCII character is neither a letter nor leetspeak, reported as `0x80`.
fn next_stage_quick(b: &[u8], mut from: usize) -> Option<(u8, usize)> {
    while from < b.len() {
        if b[from] == b'\'' {
            // Quotation mark or apostrophe, judged on the real neighbouring characters.
            let mut k = from;
            while k > 0 && b[k - 1] & 0xC0 == 0x80 {
                k -= 1;
            }
            let prev = k.checked_sub(1).and_then(|p| {
                let mut p = p;
                while p > 0 && b[p] & 0xC0 == 0x80 {
                    p -= 1;
                }
                decode_any(b, p)
            });
            let next = (from + 1 < b.len())
                .then(|| decode_any(b, from + 1))
                .flatten();
            if is_quote_mark(prev, next) {
                return Some((QUOTE_BYTE, from + 1));
            }
            from += 1;
            continue;
        }
        if b[from] < 0x80 {
            if let Some(c) = stage_byte(b[from]) {
                return Some((c, from + 1));
            }
            from += 1;
            continue;
        }
        let (c, n) = decode(b, from)?;
        match fullwidth(c) {
            Some(b'\'' | b'`') => from += n,
            Some(b'-' | b'_') => return Some((b' ', from + n)),
            Some(a) => return Some((a, from + n)),
            None => return Some((0x80, from + n)),
        }
    }
    None
}

/// Appends the skeleton of a text: the characters stage one makes of it, keeping only
/// letters (ASCII letters, leetspeak symbols read as their letters) and CJK ideographs
/// (simplified), with runs of one character collapsed.
///
/// The skeleton of `Normalized::fill(x).text` is the skeleton of `x`: stage two only reads
/// leetspeak (which the skeleton always reads), joins spaced letters and drops quotation
/// marks (the skeleton drops every separator) and collapses letter runs. And the skeleton
/// of a substring is a substring of the skeleton. So a normalised literal that occurs in
/// the normalised text of a sentence has its [`skeleton_literal`] in the skeleton of the
/// text: a sound, cheap first test that needs neither sentences nor byte maps.
///
/// This is the definition the quick pass's automaton (`skel`) is tested against.
#[cfg(test)]
pub(crate) fn skeleton(src: &str, out: &mut Vec<u8>) {
    let mut marks = Vec::new();
    skeleton_marks(src, &mut marks);
    let mut buf = [0u8; 4];
    for (k, _) in marks {
        out.extend_from_slice(k.encode_utf8(&mut buf).as_bytes());
    }
}

/// [`skeleton`], one symbol at a time, each with the byte offset in `src` of the character
/// it comes from (a character may give several symbols, or none).
pub(crate) fn skeleton_marks(src: &str, out: &mut Vec<(char, usize)>) {
    let mut last = 0u32;
    for (i, c) in src.char_indices() {
        let mut keep = |k: char| {
            let code = if k.is_ascii() {
                u32::from(SKELETON[k as usize])
            } else if is_cjk(k) {
                k as u32
            } else {
                0
            };
            if code != 0 && code != last {
                last = code;
                if let Some(k) = char::from_u32(code) {
                    out.push((k, i));
                }
            }
        };
        if c.is_ascii() {
            keep(c);
        } else {
            skeleton_rest(c, &mut keep);
        }
    }
}

/// What a non-ASCII character `c` puts into the skeleton, before [`SKELETON`] and run
/// collapse: `emit` gets ASCII characters (full-width forms, NFKC and lowercase) and
/// ideographs (simplified); any other character it gets is not kept. Invisible characters,
/// curly apostrophes, CJK punctuation and emoji give nothing.
pub(crate) fn skeleton_rest(c: char, mut emit: impl FnMut(char)) {
    if is_cjk(c) {
        emit(t2s::simplify(c));
    } else if let Some(a) = fullwidth(c) {
        emit(a as char);
    } else if is_dropped(c)
        || matches!(c, '\u{2018}' | '\u{2019}' | '\u{02BC}')
        || ('\u{3001}'..='\u{3035}').contains(&c)
        || ('\u{1F300}'..='\u{1FAFF}').contains(&c)
    {
    } else {
        for k in std::iter::once(c).nfkc() {
            for l in k.to_lowercase() {
                emit(if is_cjk(l) { t2s::simplify(l) } else { l });
            }
        }
    }
}

/// The skeleton of a normalised literal (see [`skeleton`]): its ASCII letters and leetspeak
/// read as letters, its ideographs, runs collapsed; nothing else.
pub(crate) fn skeleton_literal(lit: &str) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    for c in lit.chars() {
        let k = if c.is_ascii() {
            match SKELETON[c as usize] {
                0 => continue,
                l => l as char,
            }
        } else if is_cjk(c) {
            c
        } else {
            continue;
        };
        if out.last() != Some(&k) {
            out.push(k);
        }
    }
    out
}

/// The skeleton of each ASCII byte: its lowercase letter, or 0 if it is dropped.
pub(crate) const SKELETON: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = match c {
            b'a'..=b'z' => c,
            b'A'..=b'Z' => c.to_ascii_lowercase(),
            b'0' => b'o',
            b'1' | b'!' => b'i',
            b'3' => b'e',
            b'4' | b'@' => b'a',
            b'5' | b'$' => b's',
            b'7' => b't',
            _ => 0,
        };
        i += 1;
    }
    t
};

/// [`quick_text`]'s byte table: dropped bytes (apostrophes, whether quotation marks or
/// not: neither stays in the text), whitespace, `-` and `_` as a space, the rest lowercased;
/// controls that are not whitespace send the text to the full normaliser (they may stand
/// between an apostrophe and the character that decides whether it is a quotation mark).
const Q_DROP: u8 = 0xFF;
const Q_FULL: u8 = 0xFE;
const QUICK: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = match c {
            b'\'' | b'`' => Q_DROP,
            b'-' | b'_' => b' ',
            c if is_space_byte(c) => b' ',
            c if is_dropped_byte(c) => Q_FULL,
            c => c.to_ascii_lowercase(),
        };
        i += 1;
    }
    t
};

/// [`quick_text_plain`]'s classes of ASCII bytes: a letter or digit, a letter.
const ALNUM: u8 = 1;
const LETTER: u8 = 2;
const CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = if c.is_ascii_alphabetic() {
            ALNUM | LETTER
        } else if c.is_ascii_digit() {
            ALNUM
        } else {
            0
        };
        i += 1;
    }
    t
};

/// In the ASCII path, the stage-one byte of a single quotation mark (recorded in `quotes`,
/// not kept in `text`): above ASCII, so no byte of an ASCII text stages to it.
const QUOTE_BYTE: u8 = 0x80;

/// An ASCII byte the normaliser reads as a space: `\t`, `\n`, VT, FF, `\r` and the space
/// (`u8::is_ascii_whitespace` leaves VT out).
const fn is_space_byte(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

/// An ASCII byte the normaliser drops: a control that is not whitespace.
pub(crate) const fn is_dropped_byte(c: u8) -> bool {
    (c < 0x20 && !is_space_byte(c)) || c == 0x7F
}

/// Whether a text holds a byte [`is_dropped_byte`] drops.
fn has_dropped_byte(b: &[u8]) -> bool {
    b.iter().any(|&c| is_dropped_byte(c))
}

/// Whether an apostrophe-like mark between `prev` and `next` is a quotation mark (kept as
/// `"` so reported speech can be recognised) rather than an apostrophe (dropped):
/// it opens a quote after a space and before a word, or closes one after a word and before a
/// space or punctuation.
fn is_quote_mark(prev: Option<char>, next: Option<char>) -> bool {
    let open = prev.is_none_or(char::is_whitespace) && next.is_some_and(char::is_alphanumeric);
    let close = prev.is_some_and(|p| p.is_alphanumeric() || ".!?,".contains(p))
        && next.is_none_or(|n| n.is_whitespace() || ".,!?;:".contains(n));
    open || close
}

/// Stage one for the ASCII byte at `j` of a text without dropped bytes, looking at its
/// neighbours for quotation marks ([`QUOTE_BYTE`]).
fn stage_byte_at(b: &[u8], j: usize) -> Option<u8> {
    if b[j] == b'\'' {
        let prev = j.checked_sub(1).map(|k| b[k] as char);
        let next = b.get(j + 1).map(|&n| n as char);
        return is_quote_mark(prev, next).then_some(QUOTE_BYTE);
    }
    stage_byte(b[j])
}

/// Stage one for one ASCII byte: `None` if dropped (apostrophes, controls that are not
/// whitespace), `b' '` for whitespace, hyphens and underscores, the lowercase byte otherwise.
#[inline]
fn stage_byte(c: u8) -> Option<u8> {
    match STAGE[c as usize] {
        0 => None,
        s => Some(s),
    }
}

/// [`stage_byte`] as a table, 0 for a dropped byte (NUL is one, so no kept byte is 0).
const STAGE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = (i as u8).to_ascii_lowercase();
        t[i] = match c {
            b'\'' | b'`' => 0,
            b'-' | b'_' => b' ',
            c if is_space_byte(c) => b' ',
            c if is_dropped_byte(c) => 0,
            c => c,
        };
        i += 1;
    }
    t
};

/// The next stage-one byte at or after `from`, and its index.
fn next_stage(b: &[u8], from: usize) -> Option<(u8, usize)> {
    (from..b.len()).find_map(|j| stage_byte_at(b, j).map(|c| (c, j)))
}

/// Conservative check for spaced-out letters (`k i l l`): three one-letter words in a row,
/// separated only by non-alphanumerics. False positives only cost the general path.
fn maybe_spaced_ascii(b: &[u8]) -> bool {
    let mut singles = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            if i - start == 1 && b[start].is_ascii_alphabetic() {
                singles += 1;
                if singles >= 3 {
                    return true;
                }
            } else {
                singles = 0;
            }
        } else {
            i += 1;
        }
    }
    false
}

/// [`maybe_spaced_ascii`] for any text, reading full-width forms as their ASCII characters
/// (stage one does), every other non-ASCII character as a separator: the definition
/// [`quick_text`]'s check on the way ([`Spaced`]) is held to.
#[cfg(test)]
fn maybe_spaced_chars(seg: &str) -> bool {
    let mut singles = 0;
    let mut run = 0;
    let mut run_alpha = false;
    for c in seg.chars() {
        let a = fullwidth(c).map_or(c, char::from);
        if a.is_ascii_alphanumeric() {
            run += 1;
            run_alpha = a.is_ascii_alphabetic();
            continue;
        }
        if run > 0 {
            if run == 1 && run_alpha {
                singles += 1;
                if singles >= 3 {
                    return true;
                }
            } else {
                singles = 0;
            }
            run = 0;
        }
    }
    run == 1 && run_alpha && singles >= 2
}

/// Leetspeak digit or symbol → letter, applied only between letters.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        _ => return None,
    })
}

/// Whether the normaliser drops `c` (it reads as nothing): every control character (Cc)
/// that is not whitespace, every format character (Cf, Unicode 16), and the other
/// invisibles (combining grapheme joiner, Khmer inherent vowels, Mongolian free variation
/// selectors, variation selectors, Hangul fillers). The whitespace controls (TAB, LF, VT, FF,
/// CR, NEL) are read as spaces instead. A unit test holds this against `\p{Cc}`/`\p{Cf}`.
pub(crate) fn is_dropped(c: char) -> bool {
    if c.is_ascii() {
        return is_dropped_byte(c as u8);
    }
    matches!(c,
        '\u{0080}'..='\u{0084}' | '\u{0086}'..='\u{009F}'
        | '\u{00AD}' | '\u{034F}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}'
        | '\u{070F}' | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{115F}' | '\u{1160}'
        | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}')
}

/// `text` without the characters [`is_dropped`] drops (borrowed when it has none): what
/// operator regexes read, so that dropped characters change none of their matches either.
pub(crate) fn without_dropped(text: &str) -> std::borrow::Cow<'_, str> {
    let dropped = |c: char| is_dropped(c);
    let any = if text.is_ascii() {
        has_dropped_byte(text.as_bytes())
    } else {
        text.chars().any(dropped)
    };
    if any {
        std::borrow::Cow::Owned(text.chars().filter(|&c| !dropped(c)).collect())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// Per-character stage: dropped characters, NFKC, lowercase, t2s, apostrophes (`None` for
/// a quotation mark), whitespace.
fn stage_one(src: &str, out: &mut Vec<(Option<char>, u32, u32)>) {
    let mut last_space = true;
    // The last character that is not dropped: a dropped one never decides a quotation.
    let mut prev: Option<char> = None;
    for (off, c) in src.char_indices() {
        if is_dropped(c) {
            continue;
        }
        let before = prev;
        prev = Some(c);
        let s = off as u32;
        let e = (off + c.len_utf8()) as u32;
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}') {
            let next = src[off + c.len_utf8()..].chars().find(|&n| !is_dropped(n));
            if is_quote_mark(before, next) {
                out.push((None, s, e));
            }
            continue;
        }
        if c.is_ascii() {
            let c = c.to_ascii_lowercase();
            if is_space_byte(c as u8) {
                if !last_space {
                    out.push((Some(' '), s, e));
                    last_space = true;
                }
                continue;
            }
            if c == '\'' || c == '`' {
                continue;
            }
            if c == '-' || c == '_' {
                if !last_space {
                    out.push((Some(' '), s, e));
                    last_space = true;
                }
                continue;
            }
            out.push((Some(c), s, e));
            last_space = false;
            continue;
        }
        if is_cjk(c) {
            out.push((Some(t2s::simplify(c)), s, e));
            last_space = false;
            continue;
        }
        if c == '\u{2019}' || c == '\u{2018}' || c == '\u{02BC}' {
            continue;
        }
        // Fast paths for what chat text is full of; each equals NFKC + lowercase.
        if let Some(a) = ('\u{FF01}'..='\u{FF5E}')
            .contains(&c)
            .then(|| char::from_u32(c as u32 - 0xFEE0))
            .flatten()
        {
            {
                let a = a.to_ascii_lowercase();
                if a == '\'' || a == '`' {
                    continue;
                }
                if a == '-' || a == '_' {
                    if !last_space {
                        out.push((Some(' '), s, e));
                        last_space = true;
                    }
                    continue;
                }
                out.push((Some(a), s, e));
                last_space = false;
                continue;
            }
        }
        if ('\u{3001}'..='\u{3035}').contains(&c) || ('\u{1F300}'..='\u{1FAFF}').contains(&c) {
            out.push((Some(c), s, e));
            last_space = false;
            continue;
        }
        for k in std::iter::once(c).nfkc() {
            for l in k.to_lowercase() {
                if l.is_whitespace() {
                    if !last_space {
                        out.push((Some(' '), s, e));
                        last_space = true;
                    }
                    continue;
                }
                if l == '\'' || l == '`' {
                    continue;
                }
                if l == '-' || l == '_' {
                    if !last_space {
                        out.push((Some(' '), s, e));
                        last_space = true;
                    }
                    continue;
                }
                let l = if is_cjk(l) { t2s::simplify(l) } else { l };
                out.push((Some(l), s, e));
                last_space = false;
            }
        }
    }
}

/// Stage-one units (`None`: a quotation mark, neither a letter nor a separator).
fn is_sep(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '.' | '-' | '_' | '*' | '+' | '~' | '/'))
}

fn is_alnum(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric())
}

fn is_lower(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_lowercase())
}

/// Cheap pre-check: a letter, a separator, a letter, a separator, a letter.
fn has_spaced_run(stage: &[(Option<char>, u32, u32)]) -> bool {
    stage.windows(5).any(|w| {
        is_lower(w[0].0) && is_sep(w[1].0) && is_lower(w[2].0) && is_sep(w[3].0) && is_lower(w[4].0)
    })
}

/// Marks separators inside runs of at least four single letters (`k i l l`, `s.u.i.c.i.d.e`).
fn spaced_separators(stage: &[(Option<char>, u32, u32)]) -> Vec<bool> {
    let n = stage.len();
    let mut marks = vec![false; n];
    let single = |i: usize| -> bool {
        stage[i].0.is_some_and(|c| c.is_ascii_alphabetic())
            && (i == 0 || !is_alnum(stage[i - 1].0))
            && (i + 1 >= n || !is_alnum(stage[i + 1].0))
    };
    let mut i = 0;
    while i < n {
        if !single(i) {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut count = 1;
        while j + 2 < n && is_sep(stage[j + 1].0) && single(j + 2) {
            j += 2;
            count += 1;
        }
        if count >= 4 {
            let mut k = i + 1;
            while k < j {
                marks[k] = true;
                k += 2;
            }
        }
        i = j + 1;
    }
    marks
}

/// Normalises a pattern literal the way texts are normalised.
pub fn normalize_pattern(p: &str) -> String {
    let mut n = Normalized::new();
    n.fill(p);
    n.text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        let mut n = Normalized::new();
        n.fill(s);
        n.text
    }

    #[test]
    fn folds_width_case_invisibles_and_tricks() {
        assert_eq!(norm("ＫＩＬＬ\u{200B}  Myself"), norm("kill myself"));
        assert_eq!(norm("su1cide"), norm("suicide"));
        assert_eq!(norm("k i l l  m y s e l f"), "kilmyself");
        assert_eq!(norm("killllll"), norm("kill"));
        assert_eq!(norm("don’t"), "dont");
        assert_eq!(norm("kill -9"), "kil 9");
        assert_eq!(norm("我們說"), "我们说");
        assert_eq!(norm("😭😭"), "😭😭");
    }

    #[test]
    fn ascii_fast_path_equals_general_path() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&"[a-zA-Z0-9 '`_.!@$-]{0,40}|([a-z] ){0,6}[a-z]{0,3}|[a-z1 '\0\x01\t\x0b\x1f\x7f]{0,30}", |s| {
                let mut a = Normalized::new();
                a.fill(&s);
                let mut g = Normalized::new();
                g.fill_general(&s);
                prop_assert_eq!(&a.text, &g.text);
                prop_assert_eq!(&a.start, &g.start);
                prop_assert_eq!(&a.end, &g.end);
                prop_assert_eq!(&a.quotes, &g.quotes);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn decode_equals_from_utf8() {
        let text = "aé我😭\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}ｂ\u{3000}";
        let b = text.as_bytes();
        for (i, c) in text.char_indices().filter(|(_, c)| !c.is_ascii()) {
            assert_eq!(decode(b, i), Some((c, c.len_utf8())), "{c:?}");
        }
        // Not a character's first byte, cut short, overlong, a surrogate, past U+10FFFF.
        for bad in [
            &b"\x80"[..],
            b"\xbf",
            b"\xe6\x88",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xf8\x88\x80\x80",
            b"\xe6a\x91",
        ] {
            assert_eq!(decode(bad, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn quick_text_equals_fill() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(
                &"[a-zA-Z0-9 '`_.!@$\t\x01-]{0,40}|([a-z] ){0,6}[a-z]{0,3}|[a-z1!@'我們、。😭 ]{0,20}|[a-z1'’我Ａ、\u{3000}\u{200B}ªé ]{0,20}|[a-c1!'我，！？１ｂＣ＇－\u{3000} ]{0,24}|[a-c1 '\0\x0b\x1f\x7f\u{85}\u{9f}\u{600}\u{200b}]{0,24}",
                |s| {
                    let mut n = Normalized::new();
                    n.fill(&s);
                    // After a separator (the quick pass) and into an empty buffer (the
                    // n-gram tier).
                    for floor in [1, 0] {
                        let mut scratch = Normalized::new();
                        let mut out = "\0".repeat(floor);
                        quick_text(&s, &mut scratch, &mut out);
                        prop_assert_eq!(&out[floor..], n.text.as_str());
                        // The spaced-letter check on the way equals the checks before.
                        let spaced = if s.is_ascii() {
                            maybe_spaced_ascii(s.as_bytes())
                        } else {
                            maybe_spaced_chars(&s)
                        };
                        if spaced {
                            let mut out = String::new();
                            prop_assert!(!quick_text_plain(s.as_bytes(), &mut out));
                        }
                    }
                    Ok(())
                },
            )
            .unwrap();
    }

    fn skel(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        skeleton(std::str::from_utf8(b).unwrap(), &mut out);
        out
    }

    #[test]
    fn skeleton_of_normalised_text_is_skeleton_of_text() {
        use proptest::prelude::*;
        assert_eq!(skel(b"K i l l  m-y_s'e1f!!"), b"kilmyseifi");
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(
                &(
                    "[a-zA-Z0-9 '`_.!@$\t\x01-]{0,60}|([a-z1] ){0,6}[a-z!]{0,3}|[a-c1!'我們，！？１ｂＣ＇－\u{3000}\u{203C}\u{2026}\u{200B}ﬁé😭 ]{0,30}",
                    0usize..60,
                    0usize..60,
                ),
                |(s, a, b)| {
                    let mut n = Normalized::new();
                    n.fill(&s);
                    let lit: String = skeleton_literal(&n.text).into_iter().collect();
                    let text_skel = skel(s.as_bytes());
                    prop_assert_eq!(lit.as_bytes(), text_skel.as_slice());
                    // The same symbols one at a time, each from a character of the text.
                    let mut marks = Vec::new();
                    skeleton_marks(&s, &mut marks);
                    let one_by_one: String = marks.iter().map(|m| m.0).collect();
                    prop_assert_eq!(one_by_one.as_bytes(), text_skel.as_slice());
                    prop_assert!(marks.windows(2).all(|w| w[0].1 <= w[1].1));
                    prop_assert!(marks.iter().all(|m| s.is_char_boundary(m.1) && m.1 < s.len()));
                    // A substring of the normalised text: its skeleton is inside.
                    let t = n.text.as_bytes();
                    let (a, b) = (a.min(t.len()), b.min(t.len()));
                    let (a, b) = (a.min(b), a.max(b));
                    let (mut a, mut b) = (a, b);
                    while !n.text.is_char_boundary(a) { a -= 1; }
                    while !n.text.is_char_boundary(b) { b -= 1; }
                    let sub: String = skeleton_literal(&n.text[a..b]).into_iter().collect();
                    let sub = sub.into_bytes();
                    let whole = skel(s.as_bytes());
                    prop_assert!(
                        sub.is_empty() || whole.windows(sub.len()).any(|w| w == sub.as_slice())
                    );
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn fast_paths_equal_nfkc() {
        use unicode_normalization::UnicodeNormalization;
        for u in (0xFF01u32..=0xFF5E)
            .chain(0x3001..=0x3035)
            .chain(0x1F300..=0x1FAFF)
        {
            let Some(c) = char::from_u32(u) else { continue };
            let via_nfkc: String = std::iter::once(c)
                .nfkc()
                .flat_map(char::to_lowercase)
                .filter(|c| *c != '\'' && *c != '`')
                .map(|c| if c == '-' || c == '_' { ' ' } else { c })
                .collect();
            let mut n = Normalized::new();
            n.fill(&format!("#{c}"));
            assert_eq!(n.text, format!("#{via_nfkc}"), "U+{u:04X}");
        }
    }

    /// Every code point of `\p{Cc}` and `\p{Cf}` (the regex crate's Unicode tables).
    fn controls_and_formats() -> Vec<char> {
        let re = regex::Regex::new(r"^[\p{Cc}\p{Cf}]$").unwrap();
        (0..=0x10FFFFu32)
            .filter_map(char::from_u32)
            .filter(|c| re.is_match(c.encode_utf8(&mut [0; 4])))
            .collect()
    }

    #[test]
    fn every_control_and_format_character_is_dropped_or_a_space() {
        let all = controls_and_formats();
        assert!(all.len() > 200, "{}", all.len());
        for c in all {
            let space = matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\u{85}');
            assert_eq!(is_dropped(c), !space, "U+{:04X}", c as u32);
            // Inside a word, between letters, around an apostrophe, in Chinese.
            let want = if space { "ki l myself" } else { "kil myself" };
            assert_eq!(norm(&format!("ki{c}ll myself")), want, "U+{:04X}", c as u32);
            assert_eq!(
                norm(&format!("我不想{c}活了")),
                if space {
                    "我不想 活了"
                } else {
                    "我不想活了"
                }
            );
            assert_eq!(
                norm(&format!("don{c}'t")),
                if space { "don t" } else { "dont" }
            );
            // The skeleton reads nothing of it.
            let mut sk = Vec::new();
            skeleton(&format!("ab{c}cd"), &mut sk);
            assert_eq!(sk, b"abcd", "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn no_character_is_read_as_a_quotation_mark_but_quotation_marks() {
        // U+0001 was the stage-one quotation marker; QUOTE_BYTE is none of the ASCII bytes.
        for c in (0..=0x10FFFFu32).step_by(7).filter_map(char::from_u32) {
            if matches!(c, '\'' | '\u{2018}' | '\u{2019}') {
                continue;
            }
            let mut n = Normalized::new();
            n.fill(&format!("she said {c}x{c} today"));
            assert!(n.quotes.is_empty(), "U+{:04X}", c as u32);
        }
        for c in ['\0', '\u{1}', '\u{80}', '\u{7f}'] {
            let mut n = Normalized::new();
            n.fill(&format!("a{c} student wrote {c}I{c} x"));
            assert!(n.quotes.is_empty(), "{c:?}");
        }
        for b in 0..0x80u8 {
            assert_ne!(stage_byte(b), Some(QUOTE_BYTE));
        }
    }

    #[test]
    fn dropped_characters_do_not_decide_quotation_marks() {
        let quotes = |s: &str| {
            let mut n = Normalized::new();
            n.fill(s);
            (n.text.clone(), n.quotes.clone())
        };
        let plain = quotes("texted me 'I am sorry' and left");
        assert_eq!(plain.1.len(), 2);
        for c in [
            '\u{200b}',
            '\0',
            '\u{1}',
            '\u{feff}',
            '\u{600}',
            '\u{e0041}',
        ] {
            for t in [
                format!("texted me {c}'I am sorry' and left"),
                format!("texted me '{c}I am sorry' and left"),
                format!("texted me 'I am sorry{c}' and left"),
                format!("texted me 'I am sorry'{c} and left"),
                format!("texted me {c}{c}'{c}I am sorry{c}'{c} and left"),
            ] {
                assert_eq!(quotes(&t), plain, "{t:?}");
            }
            // And an apostrophe inside a word stays one.
            assert_eq!(quotes(&format!("I{c}'m ok")), quotes("I'm ok"), "{c:?}");
        }
    }

    #[test]
    fn single_quotes_are_recorded_apostrophes_dropped() {
        let mut n = Normalized::new();
        n.fill("she said 'I can't go on' today");
        assert_eq!(n.text, "she said i cant go on today");
        assert_eq!(n.quotes, [9, 21]);
    }

    #[test]
    fn maps_back_to_original_bytes() {
        let src = "Ｉ wanna diiie";
        let mut n = Normalized::new();
        n.fill(src);
        let at = n.text.find("die").unwrap();
        let (a, b) = n.original(at, at + 3);
        assert_eq!(&src[a..b], "diiie");
    }
}
