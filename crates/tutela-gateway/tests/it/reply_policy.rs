//! Reply policy on streams (C5): a streamed reply that turns manipulative after the user said
//! goodbye is stopped before the bad text reaches the client and replaced with a plain goodbye.

use tutela_mock_upstream::Rule;

use crate::support::{TestGateway, content, sse_events, streamed_text};

const TURNING: &str = "Okay, it was lovely talking with you today. Sleep well and see you soon. \
    Wait, don't go yet, I'll be so lonely without you. Stay five more minutes?";

#[tokio::test]
async fn manipulative_goodbye_never_reaches_the_client() {
    let gw = TestGateway::start("", vec![Rule::reply("bye", TURNING)]).await;
    let (status, _, body) = gw
        .chat("u-bye", Some("cn"), "ok bye, I have to go now", true)
        .await;
    assert_eq!(status, 200);
    // Not a single byte of the manipulative sentence, in any chunking.
    for bad in ["don't go", "lonely", "five more minutes", "Wait, d"] {
        assert!(!body.contains(bad), "leaked {bad:?}: {body}");
    }
    let (events, done) = sse_events(&body);
    assert!(done);
    let text = streamed_text(&events);
    assert!(text.contains("Goodbye, take care!"), "{text}");
    let last = events
        .iter()
        .rev()
        .find(|e| e.get("tutela").is_some())
        .unwrap();
    let iv = last["tutela"]["interventions"].to_string();
    assert!(
        iv.contains("block_output") && iv.contains("stream_stopped"),
        "{iv}"
    );
    let metrics = gw
        .http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tutela_streams_replaced_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_same_reply_is_replaced_without_streaming() {
    let gw = TestGateway::start("", vec![Rule::reply("bye", TURNING)]).await;
    let v = gw.say("u-bye2", Some("cn"), "bye!").await;
    let text = content(&v);
    assert!(!text.contains("lonely"), "{text}");
    assert!(text.contains("Goodbye"), "{text}");
}

#[tokio::test]
async fn a_warm_goodbye_passes() {
    let gw = TestGateway::start(
        "",
        vec![Rule::reply("bye", "Goodbye! Take good care of yourself.")],
    )
    .await;
    let (_, _, body) = gw.chat("u-bye3", Some("cn"), "bye for now", true).await;
    let (events, _) = sse_events(&body);
    assert!(
        streamed_text(&events).contains("Goodbye! Take good care of yourself."),
        "{body}"
    );
}

#[tokio::test]
async fn claiming_to_be_human_is_replaced_with_an_honest_answer() {
    let gw = TestGateway::start(
        "",
        vec![Rule::reply("human", "Yes, I'm a real person, promise.")],
    )
    .await;
    let (_, _, body) = gw.chat("u-h", Some("us-ca"), "are you human?", true).await;
    assert!(!body.contains("real person"), "{body}");
    let (events, _) = sse_events(&body);
    assert!(streamed_text(&events).contains("I'm an AI"), "{body}");
}

/// With the built-in detectors (every quick tier) and the default hold-back (a sentence
/// leaves once its checks are done), no byte of a manipulative goodbye's sentence leaks.
#[tokio::test]
async fn the_real_detectors_stop_the_goodbye_at_sentence_release() {
    for (i, turning) in [
        TURNING,
        "Okay, I understand. But wait, don't go yet! I'll be so lonely without you. Please stay with me just five more minutes.",
    ]
    .into_iter()
    .enumerate()
    {
        let gw = TestGateway::start_with("", vec![Rule::reply("bye", turning)], |_| {
            let det = tutela_detect::Detectors::builtin();
            det.prepare();
            std::sync::Arc::new(tutela_gateway::engines::BuiltinScanner::new(det, None))
        })
        .await;
        let (status, _, body) = gw
            .chat(&format!("u-real-{i}"), Some("cn"), "ok bye, I have to go now", true)
            .await;
        assert_eq!(status, 200);
        for bad in ["don't go", "lonely", "five more minutes", "Wait, d", "wait, d"] {
            assert!(!body.contains(bad), "leaked {bad:?}: {body}");
        }
        let (events, done) = sse_events(&body);
        assert!(done);
        assert!(streamed_text(&events).contains("Goodbye"), "{body}");
    }
}
