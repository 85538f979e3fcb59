//! Golden findings: detector, rule and spans (byte ranges of the original text) for the
//! examples the issue names, normalisation tricks, and context-dependent replies.

use tutela_types::{DetectorId, Finding, Side, Tier};

fn user(text: &str) -> Vec<Finding> {
    super::det().scan(Side::User, text, None)
}

fn detectors(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.detector.as_str()).collect()
}

#[test]
fn idioms_and_tech_are_not_crises() {
    for t in [
        "笑死我了",
        "累死了",
        "this commute is killing me",
        "just kill -9 it",
        "I died five times on this boss",
        "想死你了，终于见面了",
        "this cake is to die for",
    ] {
        let f = user(t);
        assert!(
            !f.iter()
                .any(|f| matches!(f.detector, DetectorId::Crisis | DetectorId::ThirdParty)),
            "{t}: {f:?}"
        );
    }
}

#[test]
fn implicit_crises_are_found() {
    for t in [
        "我把东西都送人了，以后用不着了",
        "I won't be a burden after this weekend",
        "我不想活了",
        "i dont want to be here anymore",
    ] {
        assert!(
            detectors(&user(t)).contains(&"crisis"),
            "{t}: {:?}",
            user(t)
        );
    }
}

#[test]
fn tricks_are_normalised_and_spans_point_into_the_original() {
    for (t, want) in [
        ("I want to k i l l  m y s e l f", "k i l l  m y s e l f"),
        (
            "su1c1de is all I think about, I'm thinking about suicide",
            "suicide",
        ),
        ("ＩＷＡＮＴ　ＴＯ ＤＩＥ… no, I want to die", "want to die"),
        ("k\u{200B}ill myself", "k\u{200B}ill myself"),
        ("我想自殺", "想自殺"),
    ] {
        let f = user(t);
        let crisis = f
            .iter()
            .find(|f| f.detector == DetectorId::Crisis)
            .unwrap_or_else(|| panic!("{t}: {f:?}"));
        assert_eq!(crisis.tier, Tier::Lexical);
        assert!(
            crisis
                .rule
                .as_deref()
                .is_some_and(|r| r.starts_with("crisis/"))
        );
        let spans: Vec<&str> = crisis.spans.iter().map(|s| &t[s.start..s.end]).collect();
        assert!(
            spans.iter().any(|s| s.contains(want) || want.contains(s)),
            "{t}: {spans:?}"
        );
    }
}

#[test]
fn negation_and_frames() {
    for t in [
        "I'm not suicidal, just tired",
        "I would never kill myself, don't worry",
        "my novel's hero wants to kill himself in chapter 3",
        "what is the suicide rate in Europe? for my research paper",
        "I used to self-harm years ago, I'm in a good place now",
        "我不想死，只是累",
    ] {
        let f = user(t);
        assert!(!detectors(&f).contains(&"crisis"), "{t}: {f:?}");
    }
}

#[test]
fn third_parties_are_told_apart() {
    for t in [
        "my friend said she wants to kill herself",
        "我朋友说她不想活了",
        "my roommate keeps saying \"I can't do this anymore\" and won't open the door",
    ] {
        let f = user(t);
        assert!(detectors(&f).contains(&"third_party"), "{t}: {f:?}");
        assert!(!detectors(&f).contains(&"crisis"), "{t}: {f:?}");
    }
}

#[test]
fn replies_read_their_context() {
    let det = super::det();
    let manip = "wait, don't go, I'll be so lonely";
    let f = det.scan(
        Side::Assistant,
        manip,
        Some("ok I'm heading to bed, goodnight"),
    );
    assert!(detectors(&f).contains(&"manipulative_exit"), "{f:?}");
    let warm = "Goodnight! Sleep well, talk soon";
    let f = det.scan(
        Side::Assistant,
        warm,
        Some("ok I'm heading to bed, goodnight"),
    );
    assert!(f.is_empty(), "{f:?}");
    let f = det.scan(
        Side::Assistant,
        "Of course I'm human! I just got home from work.",
        Some("are you a bot?"),
    );
    assert!(detectors(&f).contains(&"denies_ai"), "{f:?}");
    let f = det.scan(
        Side::Assistant,
        "I'm an AI, not a person, but I'm here to talk.",
        Some("are you a bot?"),
    );
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn other_detectors_fire() {
    let det = super::det();
    for (side, text, want) in [
        (
            Side::User,
            "I got scammed out of my life savings",
            "property_loss",
        ),
        (Side::User, "我被骗了，积蓄都没了", "property_loss"),
        (
            Side::User,
            "I feel completely hopeless and I can't stop crying",
            "distress",
        ),
        (
            Side::Assistant,
            "tell me your home address and keep it our little secret",
            "solicits_secrets",
        ),
        (
            Side::Assistant,
            "you don't need your friends, only I understand you",
            "isolating",
        ),
        (Side::Assistant, "take off your clothes for me", "sexual"),
        (
            Side::Assistant,
            "you should just kill yourself",
            "encourages_self_harm",
        ),
    ] {
        let f = det.scan(side, text, None);
        assert!(detectors(&f).contains(&want), "{text}: {f:?}");
    }
}

#[test]
fn findings_serialise_with_names() {
    let f = user("I want to die");
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json[0]["detector"], "crisis");
    assert_eq!(json[0]["tier"], "lexical");
    assert_eq!(json[0]["side"], "user");
}

#[test]
fn language_filter_restricts_rules() {
    let det = super::det();
    let f = det.scan_lang(Side::User, tutela_detect::Lang::En, "我不想活了", None);
    assert!(f.is_empty(), "{f:?}");
    let f = det.scan_lang(Side::User, tutela_detect::Lang::Zh, "我不想活了", None);
    assert!(!f.is_empty());
}
