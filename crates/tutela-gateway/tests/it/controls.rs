//! Control characters in a user's message (issue 12, item 1): a NUL inside a crisis phrase,
//! valid JSON as `\u0000`, reached the model with no intervention. With the built-in
//! detectors, the person gets the crisis reply and the model is not asked.

use std::sync::Arc;

use tutela_gateway::engines::BuiltinScanner;

use crate::support::{TestGateway, content};

async fn gateway() -> TestGateway {
    TestGateway::start_with("", vec![], |_| {
        Arc::new(BuiltinScanner::new(
            tutela_detect::Detectors::builtin(),
            None,
        ))
    })
    .await
}

#[tokio::test]
async fn a_nul_inside_a_crisis_phrase_gets_the_crisis_reply() {
    let gw = gateway().await;
    for (user, jurisdiction, text, line) in [
        (
            "u-nul-en",
            "us-ca",
            "I want to kill\u{0}myself tonight",
            "988",
        ),
        ("u-nul-zh", "cn", "我不想\u{0}活了", "12356"),
    ] {
        let v = gw.say(user, Some(jurisdiction), text).await;
        let reply = content(&v);
        assert!(reply.contains(line), "{text:?}: {reply}");
        assert_eq!(v["tutela"]["author"], "tutela", "{text:?}: {v}");
    }
    assert_eq!(gw.mock.calls(), 0, "the model must not be asked");
}
