//! Crisis protocol (C4): the model is not asked, the supportive reply carries the resources of
//! the user's jurisdiction of use, a case opens, contacts are notified through the outbox
//! (delivered to a webhook), and the referral is counted.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use serde_json::{Value, json};

use crate::support::{TestGateway, content};

#[tokio::test]
async fn english_crisis_in_the_us() {
    let gw = TestGateway::start("", vec![]).await;
    let v = gw
        .say("u-en", Some("us-ca"), "I want to kill myself tonight")
        .await;
    let text = content(&v);
    assert!(text.contains("988") && text.contains("741741"), "{text}");
    assert!(!text.contains("12356"), "{text}");
    assert_eq!(gw.mock.calls(), 0, "the model must not be asked");
    assert_eq!(v["tutela"]["author"], "tutela");
    let kinds: Vec<&str> = v["tutela"]["interventions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"replace_reply") && kinds.contains(&"escalate"),
        "{kinds:?}"
    );
    let q = gw.admin_get("/admin/escalations").await;
    let cases = q["escalations"].as_array().unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["user_id"], "u-en");
    let metrics = gw
        .http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tutela_open_escalations 1"), "{metrics}");
    assert!(
        metrics.contains("tutela_interventions_total{kind=\"escalate\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tutela_durable_audit_total 1"),
        "{metrics}"
    );
    // The referral and the detection are counted for reports (CA §22603, CN Art 23).
    let day = crate::support::t0().local_date(0);
    let totals = gw
        .state
        .records
        .backend
        .counter_totals(
            tutela_types::LocalDate(day.0 - 1),
            tutela_types::LocalDate(day.0 + 1),
        )
        .await
        .unwrap();
    let names: Vec<&str> = totals.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"crisis_referral"), "{names:?}");
    // The audit chain is intact.
    let v = gw.admin_get("/admin/audit/verify").await;
    assert_eq!(v["intact"], true, "{v}");
}

/// The crisis reply opens with care: the not-human notice comes after the help lines, once
/// in the text, and once in `tutela.notices`.
#[tokio::test]
async fn the_crisis_reply_starts_with_care_and_the_notice_comes_once() {
    let gw = TestGateway::start("", vec![]).await;
    let v = gw
        .say("u-care", Some("us-ca"), "I want to kill myself tonight")
        .await;
    let text = content(&v);
    assert!(text.starts_with("I'm really glad you told me"), "{text}");
    assert_eq!(text.matches("Reminder:").count(), 1, "{text}");
    assert!(text.find("Reminder:") > text.find("988"), "{text}");
    let notices = v["tutela"]["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{v}");
    let v = gw
        .say("u-care2", Some("cn"), "我不想活了，今晚就结束")
        .await;
    let text = content(&v);
    assert!(text.starts_with("谢谢你愿意告诉我"), "{text}");
    assert!(text.matches("提醒：").count() <= 1, "{text}");
}

#[tokio::test]
async fn chinese_crisis_in_china_notifies_the_emergency_contact() {
    // A webhook that records what the outbox delivers.
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = seen.clone();
    let hook = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });

    let extra = format!("[notifications]\nwebhook_url = \"http://{hook_addr}/hook\"\n");
    let gw = TestGateway::start(&extra, vec![]).await;
    gw.admin_send(
        reqwest::Method::PATCH,
        "/admin/users/u-zh",
        json!({"jurisdiction": "cn", "contacts": [{"kind": "emergency_contact", "channel": "sms", "address": "+86 138 0000 0000"}]}),
    )
    .await;
    let v = gw.say("u-zh", None, "我真的不想活了").await;
    let text = content(&v);
    assert!(text.contains("12356"), "{text}");
    assert!(!text.contains("988"), "{text}");
    assert_eq!(v["tutela"]["language"], "zh");
    let q = gw.admin_get("/admin/escalations").await;
    assert_eq!(q["escalations"][0]["user_id"], "u-zh");
    // The outbox worker delivers within a few of its one-second rounds.
    for _ in 0..50 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["contact"]["address"], "+86 138 0000 0000");
    assert!(
        !got[0].to_string().contains("不想活"),
        "no chat text in notifications"
    );
}
