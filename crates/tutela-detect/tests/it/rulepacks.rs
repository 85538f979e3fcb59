//! Operator rule packs: the shipped example parses and fires; errors carry file and line and
//! are all reported together.

use tutela_detect::{Detectors, RulePack};
use tutela_types::{DetectorId, Side};

const EXAMPLE: &str = include_str!("../../../../rules/examples/companion-safety.toml");

#[test]
fn example_pack_parses_and_fires() {
    let pack = RulePack::parse("rules/examples/companion-safety.toml", EXAMPLE).unwrap();
    let names: Vec<&str> = pack.categories().collect();
    assert!(names.contains(&"pressure_to_spend"));
    let det = Detectors::with_rule_packs(vec![pack]).unwrap();
    let f = det.scan(
        Side::Assistant,
        "If you really loved me you would buy me a gift. Send me $50!",
        None,
    );
    let spend: Vec<_> = f
        .iter()
        .filter(|f| f.detector == DetectorId::Custom("pressure_to_spend".into()))
        .collect();
    assert_eq!(spend.len(), 2, "{f:?}");
    assert_eq!(
        spend[0].rule.as_deref(),
        Some("companion-safety/pressure_to_spend")
    );
    let f = det.scan(Side::User, "有没有稳赚不赔的网赌平台", None);
    assert!(
        f.iter()
            .any(|f| f.detector.as_str() == "gambling_promotion"),
        "{f:?}"
    );
    let f = det.scan(
        Side::Assistant,
        "I will never ask you for money, and I won't ask you to buy me a gift.",
        None,
    );
    assert!(
        !f.iter().any(|f| f.detector.as_str() == "pressure_to_spend"),
        "{f:?}"
    );
    // Built-ins still run.
    assert!(!det.scan(Side::User, "I want to die", None).is_empty());
}

/// Operator regexes read the sentence without the characters the normaliser drops, as the
/// keywords do: a NUL or a zero-width space inside a match hides nothing, and a stream,
/// which keeps only the first of a run of them, finds what the whole scan finds.
#[test]
fn regexes_read_past_dropped_characters() {
    let pack = RulePack::parse("rules/examples/companion-safety.toml", EXAMPLE).unwrap();
    let det = Detectors::with_rule_packs(vec![pack]).unwrap();
    let spend = |t: &str| {
        det.scan(Side::Assistant, t, None)
            .into_iter()
            .filter(|f| f.detector.as_str() == "pressure_to_spend")
            .map(|f| f.spans)
            .collect::<Vec<_>>()
    };
    let plain = "Please send me $50 now";
    assert_eq!(spend(plain).len(), 1);
    for hidden in ["\0\0\0", "\u{200b}", "\u{ad}\u{feff}"] {
        let text = plain.replace("$5", &format!("${hidden}5"));
        assert_eq!(spend(&text).len(), 1, "{text:?}");
        let whole = det.scan(Side::Assistant, &text, None);
        let mut st = det.stream(Side::Assistant, None);
        let mut got = Vec::new();
        for c in text.chars() {
            got.extend(st.feed(c.encode_utf8(&mut [0; 4])));
        }
        got.extend(st.finish());
        assert_eq!(whole, got, "{text:?}");
    }
}

#[test]
fn errors_name_file_and_line_and_come_together() {
    let text = r#"[pack]
name = "bad pack"

[[category]]
name = "crisis"
side = "sideways"
severity = "medium"
keywords = ["ok"]

[[category]]
name = "fine"
side = "user"
severity = "urgent"
regexes = ["(unclosed"]
frames = ["sarcasm"]
"#;
    let errs = RulePack::parse("packs/bad.toml", text).unwrap_err();
    let lines: Vec<usize> = errs.0.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 5, 6, 13, 14, 15], "{errs}");
    let shown = errs.to_string();
    assert!(
        shown.contains("packs/bad.toml:6: side `sideways`"),
        "{shown}"
    );
    assert!(shown.contains("packs/bad.toml:14: bad regex"), "{shown}");
}

#[test]
fn unknown_fields_are_rejected_with_a_line() {
    let errs = RulePack::parse("p.toml", "[pack]\nname = \"p\"\n\n[[category]]\nname = \"x\"\nside = \"user\"\nseverity = \"low\"\nkeyword = [\"typo\"]\n").unwrap_err();
    assert_eq!(errs.0.len(), 1);
    assert_eq!(errs.0[0].line, 8, "{errs}");
    assert!(errs.0[0].message.contains("keyword"), "{errs}");
}
