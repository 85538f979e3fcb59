//! Sentence boundaries that do not depend on how a text was split into chunks.
//!
//! A boundary falls at byte `p` when the character before `p` ends a run of terminators
//! (`。！？!?；;…` or a newline, or `.` followed by whitespace) and the character at `p` is
//! not a terminator. Overlong sentences are cut after a space or comma once they pass
//! [`MAX_SENTENCE`] bytes, and anywhere at twice that. Every rule looks at the character at
//! `p`, so a boundary is only declared once that character has arrived: the whole text and
//! any sequence of chunks see the same boundaries.

/// Soft cap on a sentence's length, in bytes.
pub const MAX_SENTENCE: usize = 1024;

fn is_term(c: char) -> bool {
    matches!(
        c,
        '。' | '！' | '？' | '!' | '?' | '\n' | '；' | ';' | '…' | '｡' | '．' | '.'
    )
}

/// The first boundary in `text` after `from` (the start of the current sentence) that is
/// strictly inside `text`, or `None`.
pub fn next_boundary(text: &str, from: usize) -> Option<usize> {
    let mut prev: Option<char> = None;
    for (i, c) in text.get(from..)?.char_indices() {
        let p = from + i;
        if let Some(pc) = prev {
            if is_term(pc) && !is_term(c) && (pc != '.' || c.is_whitespace()) {
                return Some(p);
            }
            let len = p - from;
            if len >= MAX_SENTENCE && (pc == ' ' || pc == ',' || pc == '，') {
                return Some(p);
            }
            if len >= 2 * MAX_SENTENCE {
                return Some(p);
            }
        }
        prev = Some(c);
    }
    None
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

    #[test]
    fn splits_sentences() {
        assert_eq!(
            split("Hi. I am ok!! 好的。再见"),
            ["Hi.", " I am ok!!", " 好的。", "再见"]
        );
        assert_eq!(split("v3.5 is out"), ["v3.5 is out"]);
    }
}
