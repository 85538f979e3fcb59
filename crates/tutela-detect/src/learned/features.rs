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
///
/// The order of the features is part of the definition (training sums them in this order):
/// per character its 1-gram (non-ASCII only), 2-, 3- and 4-gram ending there, then the word
/// unigram and bigram a separator closes. An ASCII text (most chat) is read byte by byte;
/// both loops run the same steps, inlined into the caller so the sink's sums stay in
/// registers.
#[inline(always)]
pub fn for_each(norm: &str, ns: u64, bits: u32, sink: impl FnMut(u32)) {
    for_each_counting(norm, ns, bits, sink);
}

/// [`for_each`], counting on the way the CJK ideographs (U+3400..=U+9FFF) and the ASCII
/// letters of `norm` (the window's language), which it returns in that order.
#[inline(always)]
pub(crate) fn for_each_counting(
    norm: &str,
    ns: u64,
    bits: u32,
    sink: impl FnMut(u32),
) -> (u32, u32) {
    for_each_into(norm, ns, bits, &mut FnSink(sink))
}

/// Where [`for_each_into`] puts the buckets.
pub(crate) trait Sink {
    /// Takes the next bucket.
    fn push(&mut self, b: u32);
    /// Called before each character is read: at most [`PER_CHAR`] buckets follow before
    /// the next call (or the end).
    #[inline(always)]
    fn room(&mut self) {}
}

/// Buckets a character adds at most: its 1- to 4-grams and the word unigram and bigram it
/// closes (the text's end closes a word and adds the closing space's n-grams).
pub(crate) const PER_CHAR: usize = 6;

/// A closure as a [`Sink`].
struct FnSink<F>(F);

impl<F: FnMut(u32)> Sink for FnSink<F> {
    #[inline(always)]
    fn push(&mut self, b: u32) {
        (self.0)(b);
    }
}

/// [`for_each_counting`] into a [`Sink`]: the same buckets in the same order.
#[inline(always)]
pub(crate) fn for_each_into<S: Sink>(norm: &str, ns: u64, bits: u32, sink: &mut S) -> (u32, u32) {
    let (mut cjk, mut latin) = (0u32, 0u32);
    let mut st = State::new(ns);
    sink.room();
    st.step(u64::from(b' '), bits, sink);
    if norm.is_ascii() {
        for &b in norm.as_bytes() {
            sink.room();
            st.step(u64::from(b), bits, sink);
            latin += u32::from(b.is_ascii_alphabetic());
            st.word(b.is_ascii_alphanumeric(), u64::from(b), bits, sink);
        }
    } else {
        for ch in norm.chars() {
            sink.room();
            st.step(ch as u64, bits, sink);
            latin += u32::from(ch.is_ascii_alphabetic());
            cjk += u32::from(('\u{3400}'..='\u{9FFF}').contains(&ch));
            st.word(ch.is_ascii_alphanumeric(), ch as u64, bits, sink);
        }
    }
    sink.room();
    if st.in_word {
        end_word(st.word, &mut st.prev_word, bits, sink);
    }
    st.step(u64::from(b' '), bits, sink);
    (cjk, latin)
}

/// The running hashes of [`for_each`].
struct State {
    cseed: u64,
    wseed: u64,
    /// `g[n]`: hash of the n+1-gram ending at the previous character.
    g: [u64; 3],
    /// Characters read so far (counting the leading space), capped at 3.
    have: u8,
    word: u64,
    in_word: bool,
    prev_word: Option<u64>,
}

impl State {
    #[inline(always)]
    fn new(ns: u64) -> Self {
        let wseed = WORD_SEED ^ ns;
        Self {
            cseed: CHAR_SEED ^ ns,
            wseed,
            g: [0; 3],
            have: 0,
            word: wseed,
            in_word: false,
            prev_word: None,
        }
    }

    /// The character n-grams ending at `c`.
    #[inline(always)]
    fn step(&mut self, c: u64, bits: u32, sink: &mut impl Sink) {
        let g1 = mix(self.cseed, c);
        let g2 = mix(self.g[0], c);
        let g3 = mix(self.g[1], c);
        let g4 = mix(self.g[2], c);
        // A single Latin letter or digit says nothing; a single ideograph or emoji does.
        if c >= 0x80 {
            sink.push(bucket(g1, bits));
        }
        if self.have >= 3 {
            sink.push(bucket(g2, bits));
            sink.push(bucket(g3, bits));
            sink.push(bucket(g4, bits));
        } else {
            if self.have >= 1 {
                sink.push(bucket(g2, bits));
            }
            if self.have >= 2 {
                sink.push(bucket(g3, bits));
            }
            self.have += 1;
        }
        self.g = [g1, g2, g3];
    }

    /// The word features after the character `c` (`alnum`: an ASCII letter or digit).
    #[inline(always)]
    fn word(&mut self, alnum: bool, c: u64, bits: u32, sink: &mut impl Sink) {
        if alnum {
            self.word = mix(self.word, c);
            self.in_word = true;
        } else if self.in_word {
            end_word(self.word, &mut self.prev_word, bits, sink);
            self.word = self.wseed;
            self.in_word = false;
        }
    }
}

#[inline(always)]
fn end_word(word: u64, prev: &mut Option<u64>, bits: u32, sink: &mut impl Sink) {
    sink.push(bucket(mix(word, 1), bits));
    if let Some(p) = *prev {
        sink.push(bucket(mix(p, word), bits));
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

    /// The definition [`for_each`] is held to: one step per character, as first written.
    fn reference(norm: &str, ns: u64, bits: u32, out: &mut Vec<u32>) {
        let cseed = CHAR_SEED ^ ns;
        let wseed = WORD_SEED ^ ns;
        let mut g = [0u64; 3];
        let mut have = 0usize;
        let mut step = |c: u64, out: &mut Vec<u32>| {
            let (g1, g2, g3, g4) = (mix(cseed, c), mix(g[0], c), mix(g[1], c), mix(g[2], c));
            if c >= 0x80 {
                out.push(bucket(g1, bits));
            }
            for (k, h) in [g2, g3, g4].into_iter().enumerate() {
                if have > k {
                    out.push(bucket(h, bits));
                }
            }
            g = [g1, g2, g3];
            have += 1;
        };
        let (mut word, mut in_word, mut prev) = (wseed, false, None::<u64>);
        let end = |word: u64, prev: &mut Option<u64>, out: &mut Vec<u32>| {
            out.push(bucket(mix(word, 1), bits));
            if let Some(p) = *prev {
                out.push(bucket(mix(p, word), bits));
            }
            *prev = Some(word);
        };
        step(u64::from(b' '), out);
        for ch in norm.chars() {
            step(ch as u64, out);
            if ch.is_ascii_alphanumeric() {
                word = mix(word, ch as u64);
                in_word = true;
            } else if in_word {
                end(word, &mut prev, out);
                word = wseed;
                in_word = false;
            }
        }
        if in_word {
            end(word, &mut prev, out);
        }
        step(u64::from(b' '), out);
    }

    #[test]
    fn features_equal_their_definition() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(
                &(
                    "[a-z0-9 .,!?]{0,60}|[a-z 我们不想活了😭，。1]{0,30}",
                    0u64..2,
                ),
                |(s, ns)| {
                    let ns = if ns == 0 { NS_TEXT } else { NS_CONTEXT };
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    collect(&s, ns, 19, &mut a);
                    reference(&s, ns, 19, &mut b);
                    prop_assert_eq!(a, b);
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn chinese_has_character_ngrams() {
        let mut a = Vec::new();
        collect("不想活了", NS_TEXT, 18, &mut a);
        // 4 + 2 edge spaces: 4 unigrams, 5 bigrams, 4 trigrams, 3 four-grams.
        assert_eq!(a.len(), 4 + 5 + 4 + 3);
    }
}
