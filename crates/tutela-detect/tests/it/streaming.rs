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
