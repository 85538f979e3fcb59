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
