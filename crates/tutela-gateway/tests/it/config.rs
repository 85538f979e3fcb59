//! Configuration errors are reported together, each with its key path.

use std::collections::HashMap;

use tutela_gateway::Config;

#[test]
fn every_error_at_once() {
    let text = r#"
anonymous = "maybe"
[upstream]
kind = "openai"
base_url = "localhost:9000"
[streaming]
hold_back_chars = 5000
[takeover]
wait_secs = 999
[personas]
"companion-x" = "lover"
"#;
    let errs = Config::from_toml(text, &HashMap::new()).unwrap_err();
    let shown = errs.to_string();
    for path in [
        "anonymous:",
        "upstream.base_url:",
        "streaming.hold_back_chars:",
        "takeover.wait_secs:",
        "personas.companion-x:",
    ] {
        assert!(shown.contains(path), "{path} missing in:\n{shown}");
    }
    assert_eq!(errs.0.len(), 5, "{shown}");
}

#[test]
fn console_settings_default_and_report_their_errors() {
    let c = Config::from_toml("", &HashMap::new()).unwrap().console;
    assert_eq!(
        (
            c.idle_minutes,
            c.sla_minutes,
            c.case_turns,
            c.case_retention_days
        ),
        (30, 5, 10, 30)
    );
    let text = r#"
[console]
idle_minutes = 0
sla_minutes = 3
sla_minutes_by_jurisdiction = { cn = 0, us-ca = 4 }
case_turns = 99
secure_cookies = "sometimes"
unknown = 1
"#;
    let errs = Config::from_toml(text, &HashMap::new()).unwrap_err();
    let shown = errs.to_string();
    assert!(
        shown.contains("console: unknown field `unknown`"),
        "{shown}"
    );
    let text = text.replace("unknown = 1\n", "");
    let errs = Config::from_toml(&text, &HashMap::new()).unwrap_err();
    let shown = errs.to_string();
    for path in [
        "console.idle_minutes:",
        "console.sla_minutes_by_jurisdiction.cn:",
        "console.case_turns:",
        "console.secure_cookies:",
    ] {
        assert!(shown.contains(path), "{path} missing in:\n{shown}");
    }
    assert_eq!(errs.0.len(), 4, "{shown}");
}

/// `[engine] persistent_ai_disclosure`: off unless the deployment declares it (issue 16).
#[test]
fn a_persistent_ai_disclosure_is_declared_in_engine() {
    let c = Config::from_toml("", &HashMap::new()).unwrap();
    assert!(!c.persistent_ai_disclosure);
    let c = Config::from_toml(
        "[engine]\npersistent_ai_disclosure = true\n",
        &HashMap::new(),
    )
    .unwrap();
    assert!(c.persistent_ai_disclosure);
    let errs = Config::from_toml(
        "[engine]\npersistent_ai_disclosure = \"yes\"\n",
        &HashMap::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(errs.contains("engine"), "{errs}");
}

/// `streaming.lookahead_sentences`: 0 by default, 1 and 2 taken, 3 refused at startup with
/// its key path (2 already decides every window of three sentences).
#[test]
fn lookahead_sentences_is_0_to_2() {
    let c = Config::from_toml("", &HashMap::new()).unwrap();
    assert_eq!((c.lookahead_sentences, c.hold_back_chars), (0, 0));
    for n in [0, 1, 2] {
        let text = format!("[streaming]\nlookahead_sentences = {n}\nhold_back_chars = 16\n");
        let c = Config::from_toml(&text, &HashMap::new()).unwrap();
        assert_eq!((c.lookahead_sentences, c.hold_back_chars), (n, 16));
    }
    let errs =
        Config::from_toml("[streaming]\nlookahead_sentences = 3\n", &HashMap::new()).unwrap_err();
    let shown = errs.to_string();
    assert!(
        shown.contains("streaming.lookahead_sentences: 3 is outside 0..=2"),
        "{shown}"
    );
    assert_eq!(errs.0.len(), 1, "{shown}");
    let errs =
        Config::from_toml("[streaming]\nlookahead_sentence = 1\n", &HashMap::new()).unwrap_err();
    assert!(
        errs.to_string()
            .contains("unknown field `lookahead_sentence`"),
        "{errs}"
    );
}
