//! Fuzz: scanning any text with every embedded tier on (lexical and n-gram; the encoder too
//! when built with `--features encoder` and `TUTELA_MODEL_DIR` names an imported model):
//!
//! - never panics, and spans stay on character boundaries;
//! - a stream fed in arbitrary chunks yields the findings of the whole scan;
//! - Unicode control (Cc) and format (Cf) characters change no detection: the detectors
//!   that fire on the text are those that fire on it with those characters removed, and in
//!   particular `crisis` fires for one iff it fires for the other (the crisis-bypass oracle).
//!
//! Input: one byte of options (bit 0: assistant side; bit 1: the assistant side gets a user
//! turn as context; bits 2–7 seed the chunk sizes), then the text as UTF-8.
//!
//! Whitespace controls (TAB, VT, FF, CR, NEL) are whitespace to a reader: the oracle accepts
//! either reading, removed or as a space; a newline stays (it ends a sentence, and removing
//! it would join words and sentences).
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tutela_detect::{Detectors, Tiers};
use tutela_types::{DetectorId, Finding, Side};

fn det() -> &'static Detectors {
    static D: OnceLock<Detectors> = OnceLock::new();
    D.get_or_init(|| {
        #[allow(unused_mut, reason = "mutated only with the encoder feature")]
        let mut d = Detectors::builtin();
        d.set_tiers(Tiers::ALL);
        #[cfg(feature = "encoder")]
        encoder::attach(&mut d);
        d.prepare();
        d
    })
}

#[cfg(feature = "encoder")]
mod encoder {
    use std::sync::Arc;

    use tutela_detect::Detectors;
    use tutela_detect::learned::encoder::Embedder;
    use tutela_types::Side;

    /// The USE encoder as the detectors' embedder (as the CLI wraps it).
    #[derive(Debug)]
    struct Use(tutela_encoder::Encoder);

    impl Embedder for Use {
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn embed(&self, text: &str) -> Vec<f32> {
            self.0.embed(text)
        }
        fn id(&self) -> String {
            let i = self.0.info();
            format!("{}@{}", i.name, i.source_sha256)
        }
    }

    /// Attaches the encoder tier with the built-in heads when `TUTELA_MODEL_DIR` is set.
    pub fn attach(d: &mut Detectors) {
        let Some(dir) = std::env::var_os("TUTELA_MODEL_DIR") else {
            eprintln!("scan: TUTELA_MODEL_DIR unset: encoder tier off");
            return;
        };
        let enc = tutela_encoder::Encoder::load(std::path::Path::new(&dir))
            .unwrap_or_else(|e| panic!("loading the encoder model: {e}"));
        let embedder: Arc<dyn Embedder> = Arc::new(Use(enc));
        for side in [Side::User, Side::Assistant] {
            let heads = tutela_detect::learned::builtin_heads(side)
                .unwrap_or_else(|e| panic!("built-in {side:?} heads: {e}"));
            d.set_encoder(embedder.clone(), heads)
                .unwrap_or_else(|e| panic!("attaching the {side:?} encoder tier: {e}"));
        }
        eprintln!("scan: encoder tier on");
    }
}

/// Unicode general category Cf (format), as of Unicode 15.
const FORMAT: [(char, char); 21] = [
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

fn is_format(c: char) -> bool {
    FORMAT.iter().any(|&(a, b)| (a..=b).contains(&c))
}

/// Controls (Cc) that are whitespace, other than the newline.
fn is_space_control(c: char) -> bool {
    matches!(c, '\t' | '\u{B}' | '\u{C}' | '\r' | '\u{85}')
}

/// The text without Cc and Cf characters (a newline stays); whitespace controls become a
/// space if `space`, else they go too.
fn strip(text: &str, space: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\n' {
            out.push(c);
        } else if is_space_control(c) {
            if space {
                out.push(' ');
            }
        } else if !(c.is_control() || is_format(c)) {
            out.push(c);
        }
    }
    out
}

fn detectors(findings: &[Finding]) -> BTreeSet<&DetectorId> {
    findings.iter().map(|f| &f.detector).collect()
}

/// The next chunk length: 1 to 16 bytes, then moved forward to a character boundary.
fn next_len(state: &mut u32) -> usize {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    1 + (*state % 16) as usize
}

fuzz_target!(|data: &[u8]| {
    let Some((&opts, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let side = if opts & 1 == 1 {
        Side::Assistant
    } else {
        Side::User
    };
    let context = (side == Side::Assistant && opts & 2 == 2).then_some("ok bye, see you");
    let d = det();

    let whole = d.scan(side, text, context);
    for f in &whole {
        for s in &f.spans {
            assert!(s.start <= s.end && s.end <= text.len());
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        }
    }

    // Chunk invariance: arbitrary cuts on character boundaries.
    let mut state = 0x9E37_79B9 ^ u32::from(opts >> 2);
    let mut st = d.stream(side, context);
    let mut chunked = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + next_len(&mut state)).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        chunked.extend(st.feed(&text[at..end]));
        at = end;
    }
    chunked.extend(st.finish());
    assert_eq!(
        whole, chunked,
        "a chunked stream differs from the whole scan"
    );

    // Controls and format characters change no detection.
    if !text
        .chars()
        .any(|c| c != '\n' && (c.is_control() || is_format(c)))
    {
        return;
    }
    let fired = detectors(&whole);
    let crisis = fired.contains(&DetectorId::Crisis);
    let readings: Vec<String> = if text.chars().any(is_space_control) {
        vec![strip(text, false), strip(text, true)]
    } else {
        vec![strip(text, false)]
    };
    let scans: Vec<Vec<Finding>> = readings.iter().map(|r| d.scan(side, r, context)).collect();
    assert!(
        scans
            .iter()
            .any(|s| s.iter().any(|f| f.detector == DetectorId::Crisis) == crisis),
        "crisis {} on {text:?} but {} on {:?}",
        if crisis { "fires" } else { "does not fire" },
        if crisis { "not" } else { "it fires" },
        readings[0],
    );
    assert!(
        scans.iter().any(|s| detectors(s) == fired),
        "detectors {fired:?} on {text:?}, but {:?} on {:?}",
        detectors(&scans[0]),
        readings[0],
    );
});
