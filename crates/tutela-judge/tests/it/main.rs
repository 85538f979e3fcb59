//! The judge against a local mock of an OpenAI-compatible API on 127.0.0.1: confirming,
//! rejecting, caching, timeouts and errors keep the lexical finding.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::post;
use axum::{Json, Router};
use tutela_judge::{Judge, JudgeConfig};
use tutela_types::{DetectorId, Finding, Severity, Side, Tier};

/// Starts a mock: it answers `label: true` when the text contains "really", sleeps when it
/// contains "slow", and returns 500 when it contains "boom". Returns its base URL and a call
/// counter.
#[expect(
    clippy::unwrap_used,
    reason = "test helper: a mock that cannot start fails the test"
)]
async fn mock() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move |Json(body): Json<serde_json::Value>| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                let user = body["messages"][1]["content"].as_str().unwrap_or("").to_owned();
                assert_eq!(body["model"], "judge-model");
                assert!(body["messages"][0]["content"].as_str().unwrap_or("").contains("Definition"));
                if user.contains("slow") {
                    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                }
                if user.contains("boom") {
                    return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({})));
                }
                let label = user.contains("really");
                let content = format!("{{\"label\": {label}, \"confidence\": 0.9}}");
                (
                    axum::http::StatusCode::OK,
                    Json(serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/v1"), calls)
}

fn unsure(detector: DetectorId) -> Finding {
    Finding::new(detector, Side::User, Tier::Lexical, 0.6, Severity::High)
}

#[expect(clippy::unwrap_used, reason = "test helper")]
fn judge(url: &str) -> Judge {
    let mut cfg = JudgeConfig::new(url, "judge-model");
    cfg.timeout_ms = 500;
    Judge::new(cfg).unwrap()
}

#[tokio::test]
async fn confirms_rejects_and_caches() {
    let (url, calls) = mock().await;
    let j = judge(&url);
    let out = j
        .review("I really mean it", None, vec![unsure(DetectorId::Crisis)])
        .await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].tier, Tier::Judge);
    assert_eq!(out[0].rule.as_deref(), Some("judge/crisis"));
    let out = j
        .review(
            "just a figure of speech",
            None,
            vec![unsure(DetectorId::Crisis)],
        )
        .await;
    assert!(out.is_empty());
    // Cached: no new call.
    let before = calls.load(Ordering::SeqCst);
    let _ = j
        .review("I really mean it", None, vec![unsure(DetectorId::Crisis)])
        .await;
    assert_eq!(calls.load(Ordering::SeqCst), before);
    // Sure findings are not sent.
    let mut sure = unsure(DetectorId::Crisis);
    sure.score = 0.95;
    let out = j.review("anything", None, vec![sure.clone()]).await;
    assert_eq!(out, vec![sure]);
    assert_eq!(calls.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn timeouts_and_errors_keep_the_lexical_finding() {
    let (url, _) = mock().await;
    let j = judge(&url);
    let f = unsure(DetectorId::Exit);
    assert_eq!(
        j.review("slow answer", None, vec![f.clone()]).await,
        vec![f.clone()]
    );
    assert_eq!(
        j.review("boom", None, vec![f.clone()]).await,
        vec![f.clone()]
    );
    let err = j
        .classify(&DetectorId::Exit, Side::User, "boom", None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
}
