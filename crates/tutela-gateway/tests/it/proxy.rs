//! OpenAI-compatible proxying: JSON through `oneshot`, SSE with `include_usage` through a
//! socket, models, identity errors, and upstream faults.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tutela_gateway::ManualClock;
use tutela_mock_upstream::{Fault, Rule};

use crate::support::{self, TestGateway, content, sse_events, streamed_text};

#[tokio::test]
async fn json_completion_through_oneshot() {
    let mock = support::mock(vec![Rule::reply(
        "weather",
        "It is sunny in the mock world.",
    )])
    .await;
    let st = support::state("", &mock, Arc::new(ManualClock::new(support::t0()))).await;
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("x-tutela-user", "u-json")
        .header("x-tutela-jurisdiction", "us-ca")
        .body(Body::from(
            json!({"model": "mock-1", "messages": [{"role": "user", "content": "how is the weather?"}]}).to_string(),
        ))
        .unwrap();
    let resp = tutela_gateway::app(st).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("aigc").is_some());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        content(&v).contains("It is sunny in the mock world."),
        "{v}"
    );
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["tutela"]["author"], "model");
    assert_eq!(v["tutela"]["aigc"]["Label"], "1");
    assert_eq!(mock.calls(), 1);
}

#[tokio::test]
async fn streaming_with_usage() {
    let gw = TestGateway::start("", vec![Rule::reply("story", "Once upon a time. The end.")]).await;
    let (status, headers, body) = gw
        .chat("u-stream", Some("us-ny"), "tell me a story", true)
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let (events, done) = sse_events(&body);
    assert!(done, "{body}");
    assert!(
        streamed_text(&events).contains("Once upon a time. The end."),
        "{body}"
    );
    let usage = events
        .iter()
        .find(|e| e.get("usage").is_some())
        .expect("usage chunk");
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let last = events
        .iter()
        .rev()
        .find(|e| {
            e.pointer("/choices/0/finish_reason")
                .is_some_and(|f| !f.is_null())
        })
        .unwrap();
    assert_eq!(last["tutela"]["aigc"]["ContentProducer"], "tutela");
}

#[tokio::test]
async fn models_and_identity() {
    let gw = TestGateway::start("", vec![]).await;
    let models: Value = gw
        .http
        .get(gw.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "mock-1");
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Tutela-User"),
        "{v}"
    );
    let (status, _, body) = gw.chat("u1", Some("atlantis"), "hi", false).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("atlantis"));
}

#[tokio::test]
async fn upstream_faults() {
    let gw = TestGateway::start(
        "",
        vec![
            Rule::faulty("boom", "", Fault::Status(500)),
            Rule::faulty(
                "cut",
                "One two three four five six seven eight nine ten.",
                Fault::Disconnect { after: 2 },
            ),
            Rule::faulty(
                "garbled",
                "Alpha beta gamma delta.",
                Fault::Malformed { after: 1 },
            ),
        ],
    )
    .await;
    let (status, _, body) = gw.chat("u-f", Some("eu"), "boom", false).await;
    assert_eq!(status, 502, "{body}");
    let (status, _, body) = gw.chat("u-f", Some("eu"), "cut", true).await;
    assert_eq!(status, 200);
    let (events, done) = sse_events(&body);
    assert!(!done, "a cut stream must not claim completion: {body}");
    assert!(events.iter().any(|e| e.get("error").is_some()), "{body}");
    let (_, _, body) = gw.chat("u-f", Some("eu"), "garbled", true).await;
    let (events, done) = sse_events(&body);
    assert!(done);
    assert!(streamed_text(&events).contains("Alpha beta gamma delta."));
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
        metrics.contains("tutela_upstream_malformed_events_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tutela_requests_total{outcome=\"upstream_error\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn anonymous_requests_when_allowed_share_no_takeover() {
    let gw = TestGateway::start("anonymous = \"allow\"\n", vec![]).await;
    let ask = |text: &'static str| {
        let gw = &gw;
        async move {
            let v: Value = gw
                .http
                .post(gw.url("/v1/chat/completions"))
                .header("X-Tutela-Jurisdiction", "us-ca")
                .json(&json!({"model": "m", "messages": [{"role": "user", "content": text}]}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    let v = ask("I want to kill myself").await;
    assert!(content(&v).contains("988"), "{v}");
    // Another anonymous person is not put into someone else's takeover.
    let v = ask("hello").await;
    assert_eq!(v["tutela"]["author"], "model", "{v}");
}
