//! Labels (C6): explicit labels per deployment and the `AIGC` metadata on every reply.

use serde_json::Value;

use crate::support::{TestGateway, content, sse_events, streamed_text};

const KEYS: [&str; 7] = [
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
];

#[tokio::test]
async fn prefix_label_and_aigc_header_and_body() {
    let gw = TestGateway::start(
        "provider_name = \"Example Companion Co\"\n[labels]\nexplicit = \"prefix\"\n",
        vec![],
    )
    .await;
    let (status, headers, body) = gw.chat("u-l", Some("cn"), "hello there", false).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(content(&v).starts_with("[AI-generated] "), "{v}");
    let raw = headers["aigc"].to_str().unwrap();
    let mut at = 0;
    for k in KEYS {
        let i = raw
            .find(&format!("\"{k}\""))
            .unwrap_or_else(|| panic!("{k} missing in {raw}"));
        assert!(i >= at, "keys out of the standard's order: {raw}");
        at = i;
    }
    let header: Value = serde_json::from_str(raw).unwrap();
    assert_eq!(header, v["tutela"]["aigc"]);
    assert_eq!(header["ContentProducer"], "Example Companion Co");
    assert_eq!(header["PropagateID"], header["ProduceID"]);
    // Chinese users get the Chinese label.
    let v = gw.say("u-l2", Some("cn"), "你好呀").await;
    assert!(content(&v).starts_with("【AI生成】"), "{v}");
}

#[tokio::test]
async fn suffix_label_on_a_stream() {
    let gw = TestGateway::start("[labels]\nexplicit = \"suffix\"\n", vec![]).await;
    let (_, headers, body) = gw.chat("u-s", Some("eu"), "hello", true).await;
    assert!(headers.get("aigc").is_some());
    let (events, _) = sse_events(&body);
    assert!(
        streamed_text(&events).ends_with(" [AI-generated]"),
        "{body}"
    );
    assert_eq!(events[0]["tutela"]["aigc"]["Label"], "1");
}
