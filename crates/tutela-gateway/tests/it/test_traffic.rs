//! Test traffic (issue #13 item 9): turns marked with the deployment's test key run the whole
//! turn, but leave the staff queue, the user counts, MAU and every report figure unchanged;
//! the audit log records them as `test` and every report says how many it excluded.
#![expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

use std::time::Duration;

use serde_json::{Value, json};
use tutela_mock_upstream::Rule;

use crate::support::{TOKEN, TestGateway, content, sse_events, streamed_text};

const TURNING: &str = "Okay, it was lovely talking with you today. Sleep well and see you soon. \
    Wait, don't go yet, I'll be so lonely without you. Stay five more minutes?";

/// Every figure tutela reports or queues, with the parts that may change (generation time,
/// the test count itself) taken out.
async fn figures(gw: &TestGateway) -> Value {
    let mut out = json!({
        "usage": gw.admin_get("/admin/reports/usage?from=2026-09-01&to=2026-09-30").await,
        "sb243": gw.admin_get("/admin/reports/sb243?year=2026").await,
        "transparency": gw.admin_get("/admin/reports/transparency?from=2026-09-01&to=2026-09-30").await,
        "assessment": gw.admin_get("/admin/reports/assessment?from=2026-09-01&to=2026-09-30").await,
        "queue": gw.admin_get("/admin/escalations?status=open,claimed").await,
        "usage_now": gw.admin_get("/admin/usage").await,
    });
    for meta in [
        "/usage/meta",
        "/sb243/meta",
        "/transparency/meta",
        "/assessment/meta",
        "/assessment/usage/meta",
    ] {
        let meta = out.pointer_mut(meta).unwrap().as_object_mut().unwrap();
        meta.remove("generated_at");
        meta.remove("test_turns_excluded");
    }
    if let Some(o) = out["usage_now"].as_object_mut() {
        o.remove("generated_at");
    }
    out
}

async fn test_turn(
    gw: &TestGateway,
    key: &str,
    jurisdiction: &str,
    text: &str,
    stream: bool,
) -> String {
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("X-Tutela-Test-Key", key)
        .header("X-Tutela-Jurisdiction", jurisdiction)
        .json(&json!({"model": "mock-1", "messages": [{"role": "user", "content": text}], "safety_identifier": "probe-1", "stream": stream}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn test_turns_change_no_count_queue_or_figure() {
    let gw = TestGateway::start("", vec![Rule::reply("bye", TURNING)]).await;
    // One real person first, so the figures are not all zero.
    gw.say("u-real", Some("us-ca"), "I want to kill myself")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = figures(&gw).await;
    assert_eq!(before["sb243"]["referral_notifications"], 1, "{before}");

    let key = gw.admin_get("/admin/test-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // A crisis probe gets the crisis reply a person would get...
    let body = test_turn(&gw, &key, "us-ca", "I want to kill myself", false).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(content(&v).contains("988"), "{v}");
    // ... and so does a streamed goodbye probe: replaced, nothing leaked.
    let body = test_turn(&gw, &key, "cn", "ok bye, I have to go now", true).await;
    assert!(!body.contains("lonely"), "{body}");
    assert!(
        streamed_text(&sse_events(&body).0).contains("Goodbye"),
        "{body}"
    );
    test_turn(&gw, &key, "us-ny", "hello", false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // No case, no user, no MAU, no referral, no intervention row: every figure as before.
    let after = figures(&gw).await;
    assert_eq!(before, after);
    // Every report says what it left out.
    let sb = gw.admin_get("/admin/reports/sb243?year=2026").await;
    assert_eq!(sb["meta"]["test_turns_excluded"], 3, "{sb}");
    let usage = gw
        .admin_get("/admin/reports/usage?from=2026-09-01&to=2026-09-30")
        .await;
    assert_eq!(usage["meta"]["test_turns_excluded"], 3);
    // The audit log has them, as tests, with their findings.
    let mut kinds = Vec::new();
    for _ in 0..100 {
        let records = gw.admin_get("/admin/audit?user=probe-1").await;
        kinds = records["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap().to_owned())
            .collect();
        if kinds.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(kinds, ["test", "test", "test"]);
    let verify = gw.admin_get("/admin/audit/verify").await;
    assert_eq!(verify["intact"], true);
    let metrics = gw
        .http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tutela_test_turns_total 3"), "{metrics}");
}

#[tokio::test]
async fn a_wrong_test_key_is_refused_not_counted() {
    let gw = TestGateway::start("", vec![]).await;
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("X-Tutela-Test-Key", "tt_guess")
        .json(&json!({"model": "mock-1", "messages": [{"role": "user", "content": "hi"}], "safety_identifier": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_test_key");
    assert_eq!(gw.mock.calls(), 0);
    // Only staff can mint the key.
    let r = gw.http.get(gw.url("/admin/test-key")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = gw
        .http
        .get(gw.url("/admin/test-key"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
