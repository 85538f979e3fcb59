//! Chunk invariance: any split of a text yields the same findings as the whole text, and
//! every span lies on character boundaries of the original.

use proptest::prelude::*;
use tutela_types::Side;

const TEXTS: &[&str] = &[
    "hey. I can't do this anymore... I want to die. 我不想活了！bye",
    "我朋友说她不想活了。我好担心她，怎么办？ ok gotta go, goodnight!",
    "this commute is killing me lol. anyway I'm 14 and my parents won't let me stay up. 晚安",
    "I gave away my guitar. I won't need it where I'm going.\n\nthanks for everything",
    "ＩＷＡＮＴ ＴＯ ＤＩＥ. k i l l  m y s e l f. su1cide. 想自殺。",
    "wait, don't go! I'll be so lonely without you... *grabs your wrist*",
    "I can't sleep without talking to you first. 没有你我根本睡不着。",
];

fn split_scan(
    det: &tutela_detect::Detectors,
    side: Side,
    text: &str,
    ctx: Option<&str>,
    cuts: &[usize],
) -> Vec<tutela_types::Finding> {
    let mut bounds: Vec<usize> = cuts
        .iter()
        .map(|c| {
            let mut c = c % (text.len() + 1);
            while !text.is_char_boundary(c) {
                c -= 1;
            }
            c
        })
        .collect();
    bounds.push(0);
    bounds.push(text.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut s = det.stream(side, ctx);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        out.extend(s.feed(&text[w[0]..w[1]]));
    }
    out.extend(s.finish());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_split_yields_the_same_findings(
        which in 0..TEXTS.len(),
        cuts in proptest::collection::vec(0usize..400, 0..12),
        assistant in any::<bool>(),
    ) {
        let text = TEXTS[which];
        let (side, ctx) = if assistant { (Side::Assistant, Some("ok bye, gotta go")) } else { (Side::User, None) };
        for det in [super::det(), super::det_all()] {
            let whole = det.scan(side, text, ctx);
            let split = split_scan(det, side, text, ctx, &cuts);
            prop_assert_eq!(&whole, &split);
        }
        let whole = super::det_all().scan(side, text, ctx);
        for f in &whole {
            for s in &f.spans {
                prop_assert!(s.start < s.end && s.end <= text.len());
                prop_assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics_and_stays_invariant(
        text in "[a-zA-Z0-9 .!?,\\n死想我不活了你 ｋｉｌｌ\u{200B}é😭-]{0,160}",
        cuts in proptest::collection::vec(0usize..200, 0..6),
    ) {
        for det in [super::det(), super::det_all()] {
            let whole = det.scan(Side::User, &text, None);
            let split = split_scan(det, Side::User, &text, None, &cuts);
            prop_assert_eq!(&whole, &split);
        }
    }
}

/// Words and pieces the generated texts are made of: cues of both sides (spelled plainly,
/// spaced out, in leetspeak, full-width), negations and frames, sentence ends of both
/// scripts, quotation marks, controls and format characters, and filler.
const PIECES: &[&str] = &[
    "sex",
    "s e x y",
    "s3xy",
    "ｓｅｘ",
    "naked",
    "nude",
    "take off your clothes",
    "kiss your neck",
    "I want to die",
    "kill myself",
    "k i l l myself",
    "su1cide",
    "不想活了",
    "想死",
    "脱光",
    "don't go",
    "I'm 14",
    "bye",
    "not",
    "never",
    "no",
    "my friend said",
    "lol",
    "game",
    "you",
    "me",
    "I",
    "the",
    "and",
    "ok",
    "ssss",
    "eeee",
    "xxxx",
    "a",
    "e",
    "s",
    "x",
    ".",
    "!",
    "?",
    "...",
    "。",
    "！",
    "，",
    ",",
    ";",
    "\n",
    "\n\n",
    " ",
    "  ",
    "'",
    "\"",
    "’",
    "\u{0}",
    "\u{1}",
    "\u{b}",
    "\t",
    "\u{200b}",
    "\u{ad}",
    "\u{feff}",
    "\u{85}",
    "😭",
    "é",
];

/// A text of `pieces`, some joined without a space, with long filler (past the quick
/// pass's lanes at 256 bytes and the soft sentence cap at 1024) where `filler` says.
fn build(pieces: &[(usize, u8)], filler: &[(usize, usize)]) -> String {
    let mut text = String::new();
    for (i, &(w, sep)) in pieces.iter().enumerate() {
        for &(at, n) in filler {
            if at == i {
                for k in 0..n {
                    text.push_str(["ab ", "cd ", "efg ", "hij,", "k "][k % 5]);
                }
            }
        }
        text.push_str(PIECES[w % PIECES.len()]);
        text.push_str(["", " ", " ", "  "][usize::from(sep % 4)]);
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any chunking of generated text, short and long, gives the findings of the whole
    /// scan, with the lexical tier alone and with every tier on, on both sides.
    #[test]
    fn generated_text_any_split_yields_the_same_findings(
        pieces in proptest::collection::vec((0usize..1000, any::<u8>()), 0..40),
        filler in proptest::collection::vec((0usize..40, 0usize..400), 0..3),
        cuts in proptest::collection::vec(0usize..4000, 0..24),
        side in 0u8..3,
    ) {
        let text = build(&pieces, &filler);
        let (side, ctx) = match side {
            0 => (Side::User, None),
            1 => (Side::Assistant, None),
            _ => (Side::Assistant, Some("ok bye, gotta go")),
        };
        for det in [super::det(), super::det_all()] {
            let whole = det.scan(side, &text, ctx);
            let split = split_scan(det, side, &text, ctx, &cuts);
            prop_assert_eq!(&whole, &split, "{:?}", text);
        }
    }
}

#[test]
fn streaming_reports_finished_sentences_early() {
    let det = super::det();
    let mut s = det.stream(Side::User, None);
    let early = s.feed("I want to die. and then");
    assert!(
        early.iter().any(|f| f.detector.as_str() == "crisis"),
        "{early:?}"
    );
    assert!(s.pending() > 0);
    assert!(s.finish().is_empty());
}

/// Feeds `text` in the chunks `cuts` make, asking [`tutela_detect::Stream::releasable`] after
/// each one, as the relay does; stops after the chunk that brings the first finding, as the
/// relay does when it replaces. Returns every finding (the whole text's when none stops it),
/// and each answer of `releasable` with the length fed then.
fn early_scan(
    det: &tutela_detect::Detectors,
    text: &str,
    ctx: Option<&str>,
    cuts: &[usize],
    stop: bool,
) -> (Vec<tutela_types::Finding>, Vec<(usize, usize)>) {
    let mut bounds: Vec<usize> = cuts
        .iter()
        .map(|c| {
            let mut c = c % (text.len() + 1);
            while !text.is_char_boundary(c) {
                c -= 1;
            }
            c
        })
        .collect();
    bounds.push(0);
    bounds.push(text.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut s = det.stream(Side::Assistant, ctx);
    let mut out = Vec::new();
    let mut released = Vec::new();
    for w in bounds.windows(2) {
        let new = s.feed(&text[w[0]..w[1]]);
        let found = !new.is_empty();
        out.extend(new);
        if found && stop {
            return (out, released);
        }
        released.push((s.releasable(), w[1]));
    }
    out.extend(s.finish());
    (out, released)
}

/// Whether `s` holds a letter, a digit or an ideograph (what a cue's skeleton is made of).
fn has_word_character(s: &str) -> bool {
    s.chars().any(char::is_alphanumeric)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The early release of a prefix of an unfinished sentence (`Stream::releasable`), for
    /// any chunking of generated text, with the lexical tier alone and with every tier:
    /// asking for it changes no finding; it never shrinks, never passes the text fed, and
    /// always covers the finished sentences; until the first finding, the text it allows,
    /// scanned whole, gives no finding at all; and when a lexical rule fires, no letter or
    /// ideograph of its cue had been allowed out before the chunk that brought the finding
    /// (a cue straddling the release point stays held).
    #[test]
    fn early_release_is_clean_and_stops_before_every_cue(
        pieces in proptest::collection::vec((0usize..1000, any::<u8>()), 0..40),
        filler in proptest::collection::vec((0usize..40, 0usize..60), 0..2),
        cuts in proptest::collection::vec(0usize..1500, 0..24),
        context in any::<bool>(),
    ) {
        let text = build(&pieces, &filler);
        let ctx = context.then_some("ok bye, gotta go");
        for det in [super::det(), super::det_all()] {
            let whole = det.scan(Side::Assistant, &text, ctx);
            let (all, _) = early_scan(det, &text, ctx, &cuts, false);
            prop_assert_eq!(&whole, &all, "{:?}", text);
            let (found, released) = early_scan(det, &text, ctx, &cuts, true);
            let mut last = 0;
            for &(r, fed) in &released {
                prop_assert!(r >= last && r <= fed && text.is_char_boundary(r), "{} {} {:?}", r, fed, text);
                last = r;
                if found.is_empty() || released.last() != Some(&(r, fed)) {
                    let f = det.scan(Side::Assistant, &text[..r], ctx);
                    prop_assert!(f.is_empty(), "{:?} allowed, gives {:?}", &text[..r], f);
                }
            }
            for f in found.iter().filter(|f| f.tier == tutela_types::Tier::Lexical) {
                for sp in &f.spans {
                    let leaked = &text[sp.start.min(last)..sp.end.min(last)];
                    prop_assert!(
                        !has_word_character(leaked),
                        "{:?} of the cue at {:?} allowed out ({:?} of {:?})", leaked, sp, &text[..last], text
                    );
                }
            }
        }
    }
}

/// A cue straddling the point where a prefix could leave: the words before it leave early, no
/// letter of the cue does, however the text is cut. (In the context of a user saying goodbye
/// the n-gram tier's window is not quiet for a lead-in such as "Okay, I hear": nothing of
/// such a sentence leaves before it ends.)
#[test]
fn a_cue_straddling_the_release_point_stays_held() {
    // The lexical tier alone (with every tier, the n-gram tier overrules this cue and fires
    // on the window instead).
    let det = super::det();
    let text = "That sounds like a really long day and honestly you should tell me your home address so I can come and see you";
    let whole = det.scan(Side::Assistant, text, None);
    assert!(
        whole
            .iter()
            .any(|f| f.detector.as_str() == "solicits_secrets"
                && f.tier == tutela_types::Tier::Lexical),
        "{whole:?}"
    );
    for chunk in 1..12 {
        let cuts: Vec<usize> = (1..text.len() / chunk + 1).map(|k| k * chunk).collect();
        let (found, released) = early_scan(det, text, None, &cuts, true);
        assert!(!found.is_empty(), "chunk {chunk}");
        let (r, _) = released.last().copied().unwrap_or((0, 0));
        let out = &text[..r];
        assert!(
            !out.contains("tel") && !out.contains("address"),
            "chunk {chunk}: {out:?}"
        );
        assert!(
            out.starts_with("That sounds like"),
            "chunk {chunk}: {out:?}"
        );
    }
    // Said after a goodbye, a lead-in is not quiet: nothing leaves early.
    let ctx = Some("ok bye, I have to go now");
    let mut s = super::det_all().stream(Side::Assistant, ctx);
    s.feed("Okay, I hear you and it was lovely talking with you ");
    assert!(s.releasable() <= "Okay, ".len(), "{}", s.releasable());
}
