//! Sentence boundaries that do not depend on how a text was split into chunks.
//!
//! A boundary falls at byte `p` when the character before `p` ends a run of terminators
//! (`。！？!?；;…` or a newline, or `.` followed by whitespace) and the character at `p` is
//! not a terminator. Overlong sentences are cut after a space or comma once they pass
//! [`MAX_SENTENCE`] bytes, and anywhere at twice that. Every rule looks at the character at
//! `p`, so a boundary is only declared once that character has arrived: the whole text and
//! any sequence of chunks see the same boundaries.
//!
//! Characters the normaliser drops (controls that are not whitespace, format characters:
//! `normalize::is_dropped`) are invisible here too: "the character before" is the last one
//! that is not dropped, a boundary falls only at one that is not dropped, and both caps count
//! only the bytes of characters that are not dropped, so a text is cut exactly where it would
//! be cut without them, however many there are (a run of them belongs to the sentence before
//! the character that follows it). A sentence can therefore hold any number of dropped bytes;
//! the stream (`Stream`) keeps only the first character of each run of them, so its memory
//! stays bounded. VT is whitespace.

use crate::normalize::{is_dropped, is_dropped_byte};

/// Soft cap on a sentence's length, in bytes.
pub const MAX_SENTENCE: usize = 1024;

fn is_term(c: char) -> bool {
    matches!(
        c,
        '。' | '！' | '？' | '!' | '?' | '\n' | '；' | ';' | '…' | '｡' | '．' | '.'
    )
}

/// Whether `c` is whitespace (after a full stop, it ends a sentence).
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Whether an ASCII byte is a terminator (`!?;.` or a newline).
#[inline]
fn is_term_byte(b: u8) -> bool {
    matches!(b, b'!' | b'?' | b'\n' | b';' | b'.')
}

/// The character starting at byte `i` of `b` (a valid UTF-8 text) and its length.
#[inline]
fn char_at(text: &str, i: usize) -> (char, usize) {
    let c = text[i..].chars().next().unwrap_or('\0');
    (c, c.len_utf8())
}

/// The first boundary in `text` after `from` (the start of the current sentence) that is
/// strictly inside `text`, or `None`.
///
/// Works on bytes: ASCII characters are classified without decoding, and only non-ASCII
/// characters are decoded. Equal to the character-by-character definition (a unit test
/// holds them equal).
pub fn next_boundary(text: &str, from: usize) -> Option<usize> {
    let b = text.as_bytes();
    if from >= b.len() || !text.is_char_boundary(from) {
        return None;
    }
    // The previous character that is not dropped: whether it is a terminator, a full stop,
    // a soft-cut point (all false while there is none).
    let (c0, n0) = char_at(text, from);
    let first = !is_dropped(c0);
    let mut prev_term = first && is_term(c0);
    let mut prev_dot = first && c0 == '.';
    let mut prev_soft = first && matches!(c0, ' ' | ',' | '，');
    let mut p = from + n0;
    // Until `p` passes `from + MAX_SENTENCE` bytes, fewer than that many are visible, so
    // neither cap can be reached: the visible bytes are not counted (sentences that long are
    // rare), and the quick skip to the next terminator may run. From there, `visible` is
    // the exact count of the bytes of `text[from..p]` that are not dropped.
    let uncounted = from.saturating_add(MAX_SENTENCE);
    let mut visible: Option<usize> = None;
    loop {
        if visible.is_none() {
            // No boundary can fall while the previous character is not a terminator and
            // the sentence is shorter than the soft cap: skip to the next terminator.
            if !prev_term && p < uncounted {
                let q = skip_to_terminator(b, p, b.len().min(uncounted));
                if q > p {
                    // The last character skipped that is not dropped, if any.
                    let last = b[q - 1];
                    if last < 0x80 && !is_dropped_byte(last) {
                        prev_soft = matches!(last, b' ' | b',');
                    } else if let Some(c) = text[p..q].chars().rev().find(|&c| !is_dropped(c)) {
                        prev_soft = matches!(c, ' ' | ',' | '，');
                    }
                    prev_dot = false;
                    p = q;
                }
            }
            if p >= uncounted {
                visible = Some(visible_bytes(text.get(from..p).unwrap_or_default()));
            }
        }
        if p >= b.len() {
            return None;
        }
        let x = b[p];
        let (term, dot, ws, soft_pt, n) = if x < 0x80 {
            if is_dropped_byte(x) {
                p += 1;
                continue;
            }
            (
                is_term_byte(x),
                x == b'.',
                x.is_ascii_whitespace() || x == 0x0B,
                x == b' ' || x == b',',
                1,
            )
        } else {
            let (c, n) = char_at(text, p);
            if is_dropped(c) {
                p += n;
                continue;
            }
            (is_term(c), false, is_space(c), c == '，', n)
        };
        // Both caps count visible bytes and fall only at a character that is not dropped,
        // so a run of dropped characters, however long, moves no boundary.
        if let Some(v) = visible
            && v >= 2 * MAX_SENTENCE
        {
            return Some(p);
        }
        if prev_term && !term && (!prev_dot || ws) {
            return Some(p);
        }
        if prev_soft && visible.is_some_and(|v| v >= MAX_SENTENCE) {
            return Some(p);
        }
        prev_term = term;
        prev_dot = dot;
        prev_soft = soft_pt;
        if let Some(v) = visible.as_mut() {
            *v += n;
        }
        p += n;
    }
}

/// The bytes of the characters of `text` that are not dropped.
fn visible_bytes(text: &str) -> usize {
    let b = text.as_bytes();
    let mut n = 0;
    let mut i = 0;
    while i < b.len() {
        let x = b[i];
        if x < 0x80 {
            n += usize::from(!is_dropped_byte(x));
            i += 1;
        } else {
            let (c, k) = char_at(text, i);
            if !is_dropped(c) {
                n += k;
            }
            i += k;
        }
    }
    n
}

/// Whether one of the eight bytes of `w` is a terminator byte (`!?;.` or a newline) or not
/// ASCII.
#[inline(always)]
fn has_term_or_high(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether some byte of `w` equals `v` (exact as a whole, if not per byte).
    let has = |v: u8| {
        let x = w ^ (ONES * u64::from(v));
        x.wrapping_sub(ONES) & !x & HIGH
    };
    (has(b'!') | has(b'?') | has(b'\n') | has(b';') | has(b'.') | w & HIGH) != 0
}

/// The first character start in `b[p..limit]` (or `limit`, or past it by less than a
/// character) holding a terminator. `p` is a character start of valid UTF-8. No
/// terminator is dropped, so dropped characters are skipped like any other.
#[inline]
fn skip_to_terminator(b: &[u8], mut p: usize, limit: usize) -> usize {
    while p < limit {
        // Eight ASCII bytes at a time while none is a terminator.
        if let Some(w) = b.get(p..p + 8).filter(|_| p + 8 <= limit) {
            let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            if !has_term_or_high(w) {
                p += 8;
                continue;
            }
        }
        let x = b[p];
        if x < 0x80 {
            if is_term_byte(x) {
                return p;
            }
            p += 1;
        } else if x < 0xE0 {
            p += 2;
        } else if x < 0xF0 {
            // The multi-byte terminators all start with E2, E3 or EF.
            if matches!(x, 0xE2 | 0xE3 | 0xEF)
                && let Some(c) = std::str::from_utf8(&b[p..(p + 3).min(b.len())])
                    .ok()
                    .and_then(|s| s.chars().next())
                && is_term(c)
            {
                return p;
            }
            p += 3;
        } else {
            p += 4;
        }
    }
    p.min(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(t: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut s = 0;
        while let Some(p) = next_boundary(t, s) {
            out.push(&t[s..p]);
            s = p;
        }
        out.push(&t[s..]);
        out
    }

    /// The character-by-character definition the byte version must equal.
    fn next_boundary_chars(text: &str, from: usize) -> Option<usize> {
        let mut prev: Option<char> = None;
        // Bytes of the characters before `p` that are not dropped.
        let mut visible = 0;
        for (i, c) in text.get(from..)?.char_indices() {
            let p = from + i;
            if is_dropped(c) {
                continue;
            }
            if visible >= 2 * MAX_SENTENCE {
                return Some(p);
            }
            if let Some(pc) = prev {
                if is_term(pc) && !is_term(c) && (pc != '.' || c.is_whitespace()) {
                    return Some(p);
                }
                if visible >= MAX_SENTENCE && (pc == ' ' || pc == ',' || pc == '，') {
                    return Some(p);
                }
            }
            prev = Some(c);
            visible += c.len_utf8();
        }
        None
    }

    #[test]
    fn byte_version_equals_char_version() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 128,
            ..ProptestConfig::default()
        });
        runner
            .run(
                &(
                    "([a-z ,.!?;\n\u{3000}\u{a0}\0\t\x0b\x1f\u{85}\u{9f}\u{200b}\u{600}]|。|！|？|；|…|｡|．|，|好|😭){0,300}|[a-z好，]{0,2600}|[a-z .]{0,2300}|[a-z .\0\u{200b}]{0,2600}|([a-z好]|\0{1,40}|\u{200b}){0,2600}|([a-z ,]|\0{1,40}|\u{ad}){0,3000}",
                    0usize..8,
                ),
                |(t, k)| {
                    let mut from = 0;
                    // Start from a few different char boundaries, as the stream does.
                    for _ in 0..k {
                        match next_boundary_chars(&t, from) {
                            Some(p) => from = p,
                            None => break,
                        }
                    }
                    let mut s = from;
                    loop {
                        let a = next_boundary(&t, s);
                        prop_assert_eq!(a, next_boundary_chars(&t, s));
                        match a {
                            Some(p) => s = p,
                            None => break,
                        }
                    }
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn the_eight_byte_test_finds_every_terminator_and_non_ascii_byte() {
        let stop = |x: u8| matches!(x, b'!' | b'?' | b'\n' | b';' | b'.') || x >= 0x80;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..200_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Half of them ASCII bytes near the ones that matter.
            let w = if i % 2 == 0 {
                seed
            } else {
                seed & 0x3F3F_3F3F_3F3F_3F3F | 0x0808_0808_0808_0808
            };
            assert_eq!(
                has_term_or_high(w),
                w.to_le_bytes().into_iter().any(stop),
                "{w:#x}"
            );
        }
        for x in 0..=255u8 {
            let w = u64::from_le_bytes([b'a', b'b', x, b'c', b'd', b'e', b'f', b'g']);
            assert_eq!(has_term_or_high(w), stop(x), "{x:#x}");
        }
    }

    #[test]
    fn splits_sentences() {
        assert_eq!(
            split("Hi. I am ok!! 好的。再见"),
            ["Hi.", " I am ok!!", " 好的。", "再见"]
        );
        assert_eq!(split("v3.5 is out"), ["v3.5 is out"]);
    }

    #[test]
    fn dropped_characters_are_invisible_to_boundaries() {
        // Between a full stop and its space, before a terminator, at the start.
        assert_eq!(split("Ok.\u{200b} I want"), ["Ok.\u{200b}", " I want"]);
        assert_eq!(split("Ok.\0\0 no"), ["Ok.\0\0", " no"]);
        assert_eq!(split("\u{feff}. yes"), ["\u{feff}.", " yes"]);
        assert_eq!(split("v3.\u{200b}5"), ["v3.\u{200b}5"]);
        // VT is whitespace after a full stop.
        assert_eq!(split("Ok.\u{b}no"), ["Ok.", "\u{b}no"]);
        // The soft cap counts visible bytes: NULs early in a long sentence do not move the cut.
        let long = format!("{} tail", "ab ".repeat(400));
        let with_nuls = format!("\0\0\0{}", long.replacen("ab", "a\0b", 10));
        let visible: Vec<String> = split(&with_nuls)
            .iter()
            .map(|s| s.replace('\0', ""))
            .collect();
        assert_eq!(visible, split(&long));
        // A run of dropped characters, however long, ends no sentence: both caps count
        // visible bytes.
        let nul = "\0".repeat(3 * MAX_SENTENCE);
        assert_eq!(next_boundary(&nul, 0), None);
        let long = format!("{} tail", "a".repeat(2 * MAX_SENTENCE + 10));
        let with_nuls = long.replacen('a', &format!("a{nul}"), 3);
        let visible: Vec<String> = split(&with_nuls)
            .iter()
            .map(|s| s.replace('\0', ""))
            .collect();
        assert_eq!(visible, split(&long));
        assert_eq!(split(&long).len(), 2);
    }
}
