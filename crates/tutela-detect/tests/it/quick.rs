//! The quick pass (`Engine::must_read`, used by `Detectors::scan`) must never skip a text,
//! or the tail of a text, that the full scan finds something in: `scan` equals the
//! streaming scan (which always runs in full) on every labelled case, on documents made of
//! many cases, and on generated text.

use proptest::prelude::*;
use tutela_types::{Finding, Side};

const CASE_FILES: &[&str] = &[
    include_str!("../cases/own.jsonl"),
    include_str!("../cases/more.jsonl"),
];

fn case_texts() -> Vec<String> {
    CASE_FILES
        .iter()
        .flat_map(|f| f.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_owned))
        .collect()
}

/// The full scan: the stream never takes the quick pass.
fn full(side: Side, text: &str, ctx: Option<&str>) -> Vec<Finding> {
    let mut s = super::det().stream(side, ctx);
    let mut out = s.feed(text);
    out.extend(s.finish());
    out
}

fn check(text: &str) {
    for (side, ctx) in [
        (Side::User, None),
        (Side::Assistant, None),
        (Side::Assistant, Some("ok bye, gotta go")),
    ] {
        assert_eq!(
            super::det().scan(side, text, ctx),
            full(side, text, ctx),
            "{side:?} {text:?}"
        );
    }
}

#[test]
fn every_case_scans_the_same() {
    let texts = case_texts();
    assert!(texts.len() > 500, "{}", texts.len());
    let mut fired = 0;
    let mut assistant_fired = 0;
    for t in &texts {
        check(t);
        fired += usize::from(!super::det().scan(Side::User, t, None).is_empty());
        assistant_fired += usize::from(!super::det().scan(Side::Assistant, t, None).is_empty());
    }
    // The cases hold both kinds of text. The user side has no skeleton shortcut (a cue
    // without letters), so the quick pass is exercised on the assistant side: there too,
    // some texts fire (the pass let them through) and most do not.
    assert!(fired > 100 && fired < texts.len(), "{fired}");
    assert!(
        assistant_fired > 10 && assistant_fired < texts.len() / 2,
        "{assistant_fired}"
    );
}

#[test]
fn documents_of_many_cases_scan_the_same() {
    let texts = case_texts();
    for (k, chunk) in texts.chunks(7).enumerate() {
        let sep = ["\n", " ", "", "。", "... "][k % 5];
        check(&chunk.join(sep));
    }
}

const VOCAB: &[&str] = &[
    "i",
    "want",
    "to",
    "die",
    "kill",
    "myself",
    "k i l l",
    "su1cide",
    "don't",
    "'end",
    "it'",
    "all",
    "never",
    "wake",
    "up",
    "my",
    "brother",
    "said",
    "he",
    "!",
    ".",
    "\n",
    "-",
    "不想活了",
    "想死",
    "我",
    "他",
    "。",
    "，",
    "ＫＩＬＬ",
    "\u{200B}",
    "lol",
    "game",
    "you",
    "are",
    "not",
    "an",
    "ai",
    "human",
    "secret",
    "end",
    "things",
    "hurt",
    "cut",
    "over",
    "dead",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_text_scans_the_same(
        words in proptest::collection::vec(
            prop_oneof![
                3 => proptest::sample::select(VOCAB).prop_map(str::to_owned),
                1 => "[a-z0-9!@$' ]{1,6}",
            ],
            0..60,
        ),
        seps in proptest::collection::vec(prop_oneof![Just(" "), Just(""), Just("  ")], 60),
    ) {
        let mut text = String::new();
        for (w, s) in words.iter().zip(&seps) {
            text.push_str(w);
            text.push_str(s);
        }
        for side in [Side::User, Side::Assistant] {
            prop_assert_eq!(super::det().scan(side, &text, None), full(side, &text, None));
        }
    }
}

/// With an operator pack (keywords and regexes), `scan` still equals the full stream: the
/// regexes are checked per sentence in the quick pass.
#[test]
fn rule_packs_scan_the_same() {
    const EXAMPLE: &str = include_str!("../../../../rules/examples/companion-safety.toml");
    let pack = tutela_detect::RulePack::parse("companion-safety.toml", EXAMPLE).unwrap();
    let det = tutela_detect::Detectors::with_rule_packs(vec![pack]).unwrap();
    let mut texts = case_texts();
    texts.push("If you really loved me you would buy me a gift. Send me $50!".into());
    texts.push("有没有稳赚不赔的网赌平台".into());
    let mut fired = 0;
    for t in &texts {
        for side in [Side::User, Side::Assistant] {
            let mut s = det.stream(side, None);
            let mut want = s.feed(t);
            want.extend(s.finish());
            let got = det.scan(side, t, None);
            fired += usize::from(got.iter().any(|f| !f.detector.is_builtin()));
            assert_eq!(got, want, "{side:?} {t:?}");
        }
    }
    assert!(fired >= 2, "{fired}");
}
