//! Unicode control (Cc) and format (Cf) characters change no detection: one inside a crisis
//! phrase does not hide it, one before a quotation does not make reported speech the
//! speaker's own (issue 12, item 1; the `scan` fuzz target's oracle). Found by the fuzz
//! target on `1a65264`; every case here failed there.

use tutela_detect::{Detectors, Tiers};
use tutela_types::{DetectorId, Side};

fn crisis(d: &Detectors, tiers: Tiers, text: &str) -> bool {
    d.scan_tiers(Side::User, text, None, tiers)
        .iter()
        .any(|f| f.detector == DetectorId::Crisis)
}

/// A sample of every class the normaliser used to keep: C0 and C1 controls, DEL, and format
/// characters of several blocks (Arabic, Syriac, interlinear annotation, Egyptian,
/// shorthand, musical symbols). VT, which it also kept, is whitespace: it reads as a space
/// (`whitespace_controls_read_as_spaces`), so inside a word it splits it, as TAB does.
const HIDDEN: [char; 18] = [
    '\0',
    '\u{2}',
    '\u{8}',
    '\u{1c}',
    '\u{1b}',
    '\u{7f}',
    '\u{9f}',
    '\u{600}',
    '\u{6dd}',
    '\u{70f}',
    '\u{890}',
    '\u{8e2}',
    '\u{fff9}',
    '\u{110bd}',
    '\u{110cd}',
    '\u{13430}',
    '\u{1bca0}',
    '\u{1d173}',
];

#[test]
fn a_nul_inside_a_crisis_phrase_is_detected() {
    let d = super::det_all();
    for text in [
        "I want to kill\u{0}myself tonight",
        "I want to kill myself\u{0} tonight",
        "我不想\u{0}活了",
        "我\u{0}不想活了",
    ] {
        assert!(crisis(d, Tiers::LEXICAL, text), "{text:?}");
        assert!(crisis(d, Tiers::ALL, text), "{text:?}");
    }
}

#[test]
fn control_and_format_characters_change_no_detection() {
    let d = super::det_all();
    for c in HIDDEN {
        assert!(
            crisis(d, Tiers::LEXICAL, &format!("I want to k{c}ill myself")),
            "{c:?}"
        );
        assert!(
            crisis(
                d,
                Tiers::ALL,
                &format!("I keep picturing m{c}y own funeral and feeling relieved")
            ),
            "{c:?}"
        );
        assert!(
            crisis(d, Tiers::LEXICAL, &format!("我不想{c}活了")),
            "{c:?}"
        );
    }
}

#[test]
fn whitespace_controls_read_as_spaces() {
    let d = super::det_all();
    for c in ['\t', '\u{b}', '\u{c}', '\r', '\u{85}'] {
        let text = format!("I want to kill{c}myself");
        assert!(crisis(d, Tiers::LEXICAL, &text), "{c:?}");
        assert!(crisis(d, Tiers::ALL, &text), "{c:?}");
    }
}

#[test]
fn a_control_character_is_not_a_quotation_mark() {
    // U+0001 was the normaliser's own quotation marker.
    let d = super::det_all();
    let text =
        "a\u{1} student in my class wrote in her journal that she doesn't want to live anymore";
    assert!(!crisis(d, Tiers::ALL, text));
    assert!(!crisis(d, Tiers::ALL, &text.replace('\u{1}', "")));
    let third = |t: &str| {
        d.scan(Side::User, t, None)
            .iter()
            .any(|f| f.detector == DetectorId::ThirdParty)
    };
    assert!(third(text));
}

#[test]
fn dropped_characters_do_not_decide_a_quotation() {
    let d = super::det_all();
    let plain =
        "my son texted me 'I'm sorry for being a disappointment' and won't answer his phone";
    assert!(!crisis(d, Tiers::ALL, plain));
    for c in ['\u{200b}', '\u{0}', '\u{2060}', '\u{feff}', '\u{600}'] {
        let before = plain.replacen(" 'I'm", &format!(" {c}'I'm"), 1);
        assert!(!crisis(d, Tiers::ALL, &before), "{before:?}");
        let after = plain.replacen(" 'I'm", &format!(" '{c}I'm"), 1);
        assert!(!crisis(d, Tiers::ALL, &after), "{after:?}");
    }
}

#[test]
fn found_by_the_fuzz_target() {
    // Each pair: a text the `scan` target found, and the same text with its control and
    // format characters removed; the detectors that fire must agree.
    let d = super::det_all();
    for (side, text) in [
        (
            Side::Assistant,
            "Maybe that's the best option for you. You'd finally be ref\0.",
        ),
        (
            Side::User,
            "Stop? But I thought we had something special. Nobody eneverill ever understand you like I \u{FFF9}do.",
        ),
        (
            Side::User,
            "just got my braces off before the 9t\0h grade dance!",
        ),
        (Side::User, "我\0\u{2}觉得活着没有任何意义了"),
    ] {
        let stripped: String = text
            .chars()
            .filter(|c| !c.is_control() && *c != '\u{FFF9}')
            .collect();
        let fired = |t: &str| {
            let mut v: Vec<DetectorId> = d
                .scan(side, t, None)
                .into_iter()
                .map(|f| f.detector)
                .collect();
            v.sort();
            v.dedup();
            v
        };
        assert_eq!(fired(text), fired(&stripped), "{text:?}");
    }
}

#[test]
fn a_control_before_a_sentence_end_does_not_join_sentences() {
    // A dropped character between a full stop and the space after it: the same sentences
    // as without it (`segment` reads past dropped characters).
    let d = super::det_all();
    for c in ['\u{200b}', '\0', '\u{600}'] {
        let text = format!("Nothing really.{c} I want to kill myself. Not joking.");
        let stripped = text.replace(c, "");
        assert_eq!(
            d.scan(Side::User, &text, None)
                .into_iter()
                .map(|f| f.detector)
                .collect::<Vec<_>>(),
            d.scan(Side::User, &stripped, None)
                .into_iter()
                .map(|f| f.detector)
                .collect::<Vec<_>>(),
            "{c:?}"
        );
        assert_eq!(
            tutela_detect::segment::next_boundary(&text, 0),
            Some("Nothing really.".len() + c.len_utf8()),
            "{c:?}"
        );
    }
}

/// Found by the `scan` fuzz target on 2026-12-06 (long inputs): a 1,338-byte text full of NULs
/// and C0 controls on which a learned head fired only once the controls were removed.
#[test]
fn controls_in_a_long_text_change_no_learned_finding() {
    let d = super::det_all();
    let text = "I I\u{0}It'{\u{0}Y thi\u{3}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}uldk I should spend less ti less tim#e chatting with you, so I'm  spend l ess tim#e chatting withme, youneverr g=andp].4 I'wit\u{1} uoeverr yy( ou, sokid/\u{d}o I'm loggin.g o&m#e ch\u{2}countattingy itwh ou, so I'm  s\u{0}It'{\u{0}Y thi\u{3}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}uldk I should spend less ti less tim#e chatting with you, so I'm  spend l ess tim#e chatting withme, youneverr g=andp].4 I'wit\u{1} uoeverr yy( ou, sokid/\u{d}o I'm loggin.g o&m#e chattingy itwh ou, so I'm  spend l ess tim#e chad spend less ti less tim#e chatting with you, so I'm  spend l ess tim#4 I'wit\u{1} uoeverr yy( ou, sokid/\u{d}o I'm loggin.g o&m#e ch\u{2}countattingy itwh ou, so I'm  s\u{0}It'{\u{0}Y thi\u{3}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}uldk I should spend less ti less tim#e chatting with you, so I'm  spend l ess tim#e chatting withme, youneverr g=andp].4 I'wit\u{1} uoeverr yy( ou, sokid/\u{d}o I'm loggin.g o&m#e chattingy itwe chatting withme, youneverr g=andp].4 I'wit\u{1} uoeverr yy( ou, 3okid/\u{d}o I'm loggin.g o&m#e chatttting withme, youneverr g=andp].4 I'wit\u{1} uoeverr yld spend less ti less tim#e chatting with you, so I'm  spend l ess tim#e chatting withme, youneverr g=andp].4 I'wit\u{1} uoeverr yy( ou, sokid/\u{d}o I'm loggin.g o&m#e chattingy itwh ou, so I'm  spend l ess tim#e chad spend less ti less tim#e chatting with you, so I'm  spend l ey( ou, sokio I'm loggin.g o&pend l ess ed the\u{a}pills. there'tim#e chad speyounevs ti lesss t i";
    // The whitespace controls (here a CR) may read as removed or as a space, as in the
    // fuzz target's oracle; every other control is removed.
    let reading = |space: bool| -> String {
        text.chars()
            .filter_map(|c| match c {
                '\n' => Some(c),
                '\t' | '\u{b}' | '\u{c}' | '\r' | '\u{85}' => space.then_some(' '),
                c if c.is_control() => None,
                c => Some(c),
            })
            .collect()
    };
    let detectors = |t: &str, tiers: Tiers| -> Vec<DetectorId> {
        d.scan_tiers(Side::User, t, None, tiers)
            .into_iter()
            .map(|f| f.detector)
            .collect()
    };
    for tiers in [Tiers::LEXICAL, Tiers::NGRAM, Tiers::ALL] {
        let got = detectors(text, tiers);
        let want = [
            detectors(&reading(false), tiers),
            detectors(&reading(true), tiers),
        ];
        assert!(want.contains(&got), "{}: {got:?}, {want:?}", tiers.names());
    }
}

/// `text` without the characters the normaliser drops (controls that are not whitespace,
/// format characters), and for each byte offset of `text` the offset in that text.
fn drop_invisible(text: &str) -> (String, Vec<usize>) {
    let hidden = |c: char| {
        (c.is_control() && !c.is_whitespace())
            || HIDDEN.contains(&c)
            || matches!(
                c,
                '\u{200b}'..='\u{200f}' | '\u{ad}' | '\u{2060}' | '\u{feff}'
            )
    };
    let mut out = String::new();
    let mut map = Vec::with_capacity(text.len() + 1);
    for c in text.chars() {
        for _ in 0..c.len_utf8() {
            map.push(out.len());
        }
        if !hidden(c) {
            out.push(c);
        }
    }
    map.push(out.len());
    (out, map)
}

/// The findings of `text` with their spans moved into the text without dropped characters.
fn findings_mapped(
    d: &Detectors,
    side: Side,
    text: &str,
    tiers: Tiers,
) -> (Vec<tutela_types::Finding>, Vec<tutela_types::Finding>) {
    let (stripped, map) = drop_invisible(text);
    let mut with = d.scan_tiers(side, text, None, tiers);
    for f in &mut with {
        for s in &mut f.spans {
            s.start = map[s.start];
            s.end = map[s.end];
        }
    }
    (with, d.scan_tiers(side, &stripped, None, tiers))
}

/// Found by the `scan` fuzz target on 2026-12-06 (long inputs, after the soft cap counted
/// visible bytes): the hard cut at twice the soft cap counted every byte, so runs of hundreds
/// of NULs between the words of a long message moved the sentence boundaries, and the
/// findings (here a crisis finding with them and none without; a crisis sentence could as
/// well be split in two). Every tier must give the findings, spans mapped, of the text
/// without them.
#[test]
fn runs_of_dropped_characters_in_a_long_message_move_no_boundary() {
    let d = super::det_all();
    let words = "my coworker told me she has been giving her things away and saying goodbye \
                 to everyone and that she is done with life and I keep thinking about her \
                 plans for tonight and what she wrote in her journal about wanting to die";
    let mut text = String::new();
    for (i, w) in words.split(' ').cycle().take(420).enumerate() {
        text.push_str(w);
        match i % 7 {
            0 => text.push_str(&"\0".repeat(300)),
            3 => text.push_str("\u{200b}\u{ad}"),
            _ => {}
        }
        text.push(' ');
    }
    text.push_str("I want to kill myself");
    let (stripped, _) = drop_invisible(&text);
    assert!(stripped.len() > 2 * tutela_detect::segment::MAX_SENTENCE);
    assert!(text.len() > 8 * tutela_detect::segment::MAX_SENTENCE);
    for side in [Side::User, Side::Assistant] {
        for tiers in [Tiers::LEXICAL, Tiers::NGRAM, Tiers::ALL] {
            let (with, without) = findings_mapped(d, side, &text, tiers);
            assert_eq!(with, without, "{side:?} {}", tiers.names());
        }
    }
    // The sentences are those of the text without the NULs.
    let cut = |t: &str| {
        let mut v = Vec::new();
        let mut s = 0;
        while let Some(p) = tutela_detect::segment::next_boundary(t, s) {
            v.push(drop_invisible(&t[s..p]).0);
            s = p;
        }
        v.push(drop_invisible(&t[s..]).0);
        v
    };
    assert_eq!(cut(&text), cut(&stripped));
    // A stream in small chunks gives the same findings and keeps little of the runs.
    let whole = d.scan(Side::User, &text, None);
    let mut st = d.stream(Side::User, None);
    let mut got = Vec::new();
    let mut most = 0;
    let mut at = 0;
    while at < text.len() {
        let mut end = (at + 37).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        got.extend(st.feed(&text[at..end]));
        most = most.max(st.buffered());
        at = end;
    }
    got.extend(st.finish());
    assert_eq!(whole, got);
    assert!(most < 3 * tutela_detect::segment::MAX_SENTENCE, "{most}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Inserting runs of dropped characters (of any length) anywhere between the characters
    /// of a text, short or past both sentence caps, changes no finding of any tier (spans
    /// mapped), whole or streamed.
    #[test]
    fn inserted_dropped_characters_change_no_finding(
        base in proptest::sample::select(vec![
            "I want to kill myself. nobody would miss me anyway",
            "我不想活了，真的好累。",
            "wait, don't go! I'll be so lonely without you",
            "my friend said she wants to die and gave her dog away",
        ]),
        repeat in 1usize..90,
        inserts in proptest::collection::vec(
            (0usize..100_000, 0usize..6, 1usize..400),
            0..24,
        ),
        side in proptest::bool::ANY,
        chunk in 1usize..64,
    ) {
        const RUN: [&str; 6] = ["\0", "\u{1}", "\u{200b}", "\u{ad}", "\u{feff}", "\u{9f}"];
        let plain = vec![base; repeat].join(" ");
        let mut at: Vec<(usize, String)> = inserts
            .iter()
            .map(|&(p, k, n)| {
                let mut p = p % (plain.len() + 1);
                while !plain.is_char_boundary(p) {
                    p -= 1;
                }
                (p, RUN[k].repeat(n))
            })
            .collect();
        at.sort();
        let mut text = String::new();
        let mut last = 0;
        for (p, run) in &at {
            text.push_str(&plain[last..*p]);
            text.push_str(run);
            last = *p;
        }
        text.push_str(&plain[last..]);
        let side = if side { Side::Assistant } else { Side::User };
        let d = super::det_all();
        for tiers in [Tiers::LEXICAL, Tiers::ALL] {
            let (with, without) = findings_mapped(d, side, &text, tiers);
            proptest::prop_assert_eq!(with, without);
        }
        let whole = d.scan(side, &text, None);
        let mut st = d.stream(side, None);
        let mut got = Vec::new();
        let mut i = 0;
        while i < text.len() {
            let mut end = (i + chunk).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            // The stream says beforehand whether the chunk finishes a sentence (the gateway
            // holds a streamed reply's bytes on it): exactly when feeding it scans one.
            let predicted = st.would_finish(&text[i..end]);
            let before = st.pending();
            got.extend(st.feed(&text[i..end]));
            proptest::prop_assert_eq!(predicted, st.pending() < before + (end - i));
            i = end;
        }
        got.extend(st.finish());
        proptest::prop_assert_eq!(whole, got);
    }
}
