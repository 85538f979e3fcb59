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

/// The built-in engine, with what an operator's profile may add on the assistant side: a
/// reply that is blocked also opens a case for the crisis team and is counted.
struct EscalatingReplies(tutela_gateway::engines::Engine);

struct EscalatingSet(Arc<dyn tutela_gateway::duties::PolicySet>);

impl tutela_gateway::duties::Policy for EscalatingReplies {
    fn select(&self, ids: &[String]) -> Result<Arc<dyn tutela_gateway::duties::PolicySet>, String> {
        Ok(Arc::new(EscalatingSet(self.0.select(ids)?)))
    }
}

impl tutela_gateway::duties::PolicySet for EscalatingSet {
    fn ids(&self) -> Vec<String> {
        self.0.ids()
    }
    fn snapshot_hash(&self) -> &str {
        self.0.snapshot_hash()
    }
    fn evaluate(
        &self,
        ctx: &tutela_policy::EvalContext<'_>,
        findings: &[tutela_types::Finding],
    ) -> tutela_types::Decision {
        use tutela_types::{Action, Counter, Decided, Reason, Severity, Side};
        let mut d = self.0.evaluate(ctx, findings);
        if ctx.turn.side == Side::Assistant && d.has("block_output") {
            let reasons = vec![Reason {
                profile: "operator-test".into(),
                obligation: "blocked-reply-case".into(),
                article: "test".into(),
            }];
            d.actions.push(Decided {
                action: Action::Escalate {
                    takeover: false,
                    severity: Severity::High,
                },
                reasons: reasons.clone(),
            });
            d.actions.push(Decided {
                action: Action::Count {
                    counter: Counter::RiskDetection,
                },
                reasons,
            });
        }
        d
    }
}

/// #12 item 15: an intervention on the model's reply to an anonymous request (no `user`)
/// writes its intervention rows, its counters and its case like a named user's (the turn
/// carries its user record; it is not looked up again by id).
#[tokio::test]
async fn an_anonymous_user_s_reply_intervention_writes_rows_counters_and_case() {
    let engine = tutela_gateway::engines::Engine {
        registry: tutela_profile::Registry::builtin().unwrap(),
        options: tutela_policy::EngineOptions::default(),
    };
    let parts = tutela_gateway::Parts {
        policy: Some(Arc::new(EscalatingReplies(engine))),
        ..tutela_gateway::Parts::default()
    };
    let gw = TestGateway::start_parts(
        "anonymous = \"allow\"\n",
        vec![Rule::reply("bye", "Wait, don't go yet, I'll be so lonely.")],
        parts,
    )
    .await;
    let v: Value = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("X-Tutela-Jurisdiction", "us-ca")
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "ok bye, I have to go now"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!content(&v).contains("lonely"), "{v}");
    let b = &gw.state.records.backend;
    let t = support::t0();
    let rows = support::interventions_near_t0(&gw.state).await;
    let replies: Vec<_> = rows
        .iter()
        .filter(|r| r.side == Some(tutela_types::Side::Assistant))
        .collect();
    assert!(
        replies.iter().any(|r| r.action.kind() == "block_output"),
        "the reply's intervention rows: {rows:?}"
    );
    assert!(
        replies
            .iter()
            .all(|r| r.user_id.as_deref() == Some("anonymous")),
        "{replies:?}"
    );
    let day = t.local_date(0);
    let counters = b.counter_totals(day, day).await.unwrap();
    assert!(
        counters
            .iter()
            .any(|c| c.name == "risk_detection" && c.value == 1),
        "counters: {counters:?}"
    );
    let case = b.active_escalation("anonymous").await.unwrap();
    assert!(case.is_some(), "the blocked reply's case is open");
    // The usage report counts the reply's interventions too.
    let counts = b
        .intervention_counts(
            tutela_types::Timestamp::from_unix(t.unix() - 60),
            tutela_types::Timestamp::from_unix(t.unix() + 60),
        )
        .await
        .unwrap();
    assert!(!counts.is_empty(), "{counts:?}");
}
