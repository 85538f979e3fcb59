//! Hashed n-gram features of a normalised sentence: character 2–4-grams (with a space at
//! either end, so word edges are features), 1-grams of non-ASCII characters (ideographs,
//! emoji) and, for runs of ASCII letters and digits, word
//! unigrams and bigrams. Every feature is a bucket in `[0, 2^bits)`; a namespace value keeps
//! the user turn that an assistant reply answers apart from the reply itself.
//!
//! The text is the output of [`crate::normalize::Normalized`] (lowercase, simplified, leetspeak
//! and spacing tricks undone), so the features see what the lexical tier sees.

/// The namespace of the text being classified.
pub const NS_TEXT: u64 = 0;
/// The namespace of the preceding user turn (assistant side).
pub const NS_CONTEXT: u64 = 0xC0_17E7_u64 << 32;

const K: u64 = 0x9E37_79B9_7F4A_7C15;
const CHAR_SEED: u64 = 0x243F_6A88_85A3_08D3;
const WORD_SEED: u64 = 0x1319_8A2E_0370_7344;
const LABEL_SEED: u64 = 0xA409_3822_299F_31D0;

#[inline]
fn mix(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(K).rotate_left(29)
}

#[inline]
fn bucket(h: u64, bits: u32) -> u32 {
    // The high bits of one more multiply are the best-mixed ones.
    (h.wrapping_mul(K) >> (64 - bits)) as u32
}

/// Calls `sink` with the bucket of every feature of `norm` (a normalised sentence).
#[inline]
pub fn for_each(norm: &str, ns: u64, bits: u32, mut sink: impl FnMut(u32)) {
    let cseed = CHAR_SEED ^ ns;
    let wseed = WORD_SEED ^ ns;
    // g[n] = hash of the n+1-gram ending at the previous character.
    let mut g = [0u64; 3];
    let mut have = 0usize;
    let mut word = wseed;
    let mut in_word = false;
    let mut prev_word: Option<u64> = None;
    let mut step = |c: u32, sink: &mut dyn FnMut(u32)| {
        let c = u64::from(c);
        let g1 = mix(cseed, c);
        let g2 = mix(g[0], c);
        let g3 = mix(g[1], c);
        let g4 = mix(g[2], c);
        // A single Latin letter or digit says nothing; a single ideograph or emoji does.
        if c >= 0x80 {
            sink(bucket(g1, bits));
        }
        if have >= 1 {
            sink(bucket(g2, bits));
        }
        if have >= 2 {
            sink(bucket(g3, bits));
        }
        if have >= 3 {
            sink(bucket(g4, bits));
        }
        g = [g1, g2, g3];
        have += 1;
    };
    let sink: &mut dyn FnMut(u32) = &mut sink;
    step(u32::from(b' '), sink);
    for ch in norm.chars() {
        step(ch as u32, sink);
        if ch.is_ascii_alphanumeric() {
            word = mix(word, ch as u64);
            in_word = true;
        } else if in_word {
            end_word(word, &mut prev_word, bits, sink);
            word = wseed;
            in_word = false;
        }
    }
    if in_word {
        end_word(word, &mut prev_word, bits, sink);
    }
    step(u32::from(b' '), sink);
}

#[inline]
fn end_word(word: u64, prev: &mut Option<u64>, bits: u32, sink: &mut dyn FnMut(u32)) {
    sink(bucket(mix(word, 1), bits));
    if let Some(p) = *prev {
        sink(bucket(mix(p, word), bits));
    }
    *prev = Some(word);
}

/// The bucket of a named label feature (a lexical label of the context, `exit`, ...).
pub fn label(name: &str, ns: u64, bits: u32) -> u32 {
    let mut h = LABEL_SEED ^ ns;
    for b in name.bytes() {
        h = mix(h, u64::from(b));
    }
    bucket(h, bits)
}

/// Every feature of `norm`, in order (training and explanations).
pub fn collect(norm: &str, ns: u64, bits: u32, out: &mut Vec<u32>) {
    for_each(norm, ns, bits, |b| out.push(b));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_stable_and_bounded() {
        let mut a = Vec::new();
        collect("i want to go home", NS_TEXT, 16, &mut a);
        let mut b = Vec::new();
        collect("i want to go home", NS_TEXT, 16, &mut b);
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| x < (1 << 16)));
        // 17 characters + 2 edge spaces: 2..4-grams, 5 words + 4 bigrams (no ASCII 1-grams).
        assert_eq!(a.len(), 18 + 17 + 16 + 5 + 4);
        let mut c = Vec::new();
        collect("i want to go home", NS_CONTEXT, 16, &mut c);
        assert_ne!(a, c, "namespaces differ");
    }

    #[test]
    fn chinese_has_character_ngrams() {
        let mut a = Vec::new();
        collect("不想活了", NS_TEXT, 18, &mut a);
        // 4 + 2 edge spaces: 4 unigrams, 5 bigrams, 4 trigrams, 3 four-grams.
        assert_eq!(a.len(), 4 + 5 + 4 + 3);
    }
}
