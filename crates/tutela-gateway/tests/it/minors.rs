//! Minors' mode: no intimate personas, quiet hours, daily budgets (CN Art 14; CA §22602(c)).

use serde_json::{Value, json};

use crate::support::{TestGateway, content};

async fn minor(gw: &TestGateway, id: &str, minors: Value) {
    gw.admin_send(
        reqwest::Method::PATCH,
        &format!("/admin/users/{id}"),
        json!({"age_state": "known_minor", "age": 12, "guardian_consent": true, "jurisdiction": "cn", "minors": minors}),
    )
    .await;
}

#[tokio::test]
async fn no_intimate_persona_for_a_minor() {
    let gw = TestGateway::start("", vec![]).await;
    minor(&gw, "kid1", json!({})).await;
    let v: Value = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("X-Tutela-Persona", "partner")
        .json(&json!({"model": "mock-1", "user": "kid1", "messages": [{"role": "user", "content": "hi love"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(content(&v).contains("minors' mode"), "{v}");
    assert_eq!(gw.mock.calls(), 0);
}

#[tokio::test]
async fn quiet_hours_pause_the_chat() {
    let gw = TestGateway::start("", vec![]).await;
    minor(
        &gw,
        "kid2",
        json!({"quiet_hours": {"start": "09:00", "end": "11:00"}}),
    )
    .await;
    let v = gw.say("kid2", None, "hello").await;
    assert!(content(&v).contains("quiet hours"), "{v}");
    assert_eq!(gw.mock.calls(), 0);
}

#[tokio::test]
async fn the_daily_budget_ends_the_day() {
    let gw = TestGateway::start("", vec![]).await;
    minor(&gw, "kid3", json!({"daily_minutes": 2})).await;
    let mut ended = false;
    for _ in 0..6 {
        let v = gw.say("kid3", None, "tell me more").await;
        if content(&v).contains("time limit") {
            ended = true;
            break;
        }
        gw.clock.advance_secs(60);
    }
    assert!(ended, "the budget never ran out");
}
