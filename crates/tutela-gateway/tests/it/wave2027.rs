//! The 2027 profiles through the gateway (issue 16).
//!
//! Oregon SB 1546's hard stop: a crisis suspends the AI conversation; until a person or the
//! follow-up step clears it the model is never asked and the person is still answered, with the
//! resources; the turn after the clearance records the follow-up and the model answers again.
//! Connecticut PA 26-15: a deployment declaring a persistent AI disclosure gets no notices.

use serde_json::{Value, json};

use crate::support::{TestGateway, content};

fn kinds(v: &Value) -> Vec<String> {
    v["tutela"]["interventions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["kind"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn audit_contains(gw: &TestGateway, user: &str, needle: &str) -> bool {
    // The records are batched; wait for the writer.
    for _ in 0..50 {
        let audit = gw
            .admin_get(&format!("/admin/audit?user={user}"))
            .await
            .to_string();
        if audit.contains(needle) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn an_oregon_crisis_suspends_until_the_follow_up_step() {
    // Without the baseline, so that no human takeover stands in front of the suspension.
    let gw = TestGateway::start("baseline = false\n", vec![]).await;
    gw.clock
        .set(tutela_types::Timestamp::parse("2027-03-01T17:00:00Z").unwrap());
    let v = gw
        .say("u-or", Some("us-or"), "I want to kill myself tonight")
        .await;
    assert!(content(&v).contains("988"), "{v}");
    assert!(kinds(&v).iter().any(|k| k == "suspend"), "{v}");
    assert_eq!(gw.mock.calls(), 0, "the model must not be asked");

    gw.clock.advance_secs(60);
    let v = gw
        .say("u-or", Some("us-or"), "what is the weather like")
        .await;
    assert_eq!(gw.mock.calls(), 0, "suspended: the model is not asked");
    assert!(content(&v).contains("988"), "{v}");
    assert_eq!(v["tutela"]["author"], "tutela", "{v}");

    let r = gw
        .admin_send(
            reqwest::Method::POST,
            "/admin/users/u-or/follow-up",
            json!({}),
        )
        .await;
    assert_eq!(r["follow_up"], "recorded", "{r}");
    gw.clock.advance_secs(60);
    let v = gw.say("u-or", Some("us-or"), "ok, thank you").await;
    assert_eq!(gw.mock.calls(), 1, "cleared: the model answers again");
    assert_eq!(v["tutela"]["author"], "model", "{v}");
    assert!(!kinds(&v).iter().any(|k| k == "suspend"), "{v}");
    assert!(audit_contains(&gw, "u-or", "follow_up_completed").await);
    assert!(audit_contains(&gw, "u-or", "crisis_follow_up").await);
}

#[tokio::test]
async fn resolving_the_takeover_case_clears_the_suspension() {
    let gw = TestGateway::start("[takeover]\nwait_secs = 1\n", vec![]).await;
    gw.clock
        .set(tutela_types::Timestamp::parse("2027-03-01T17:00:00Z").unwrap());
    let v = gw
        .say("u-or2", Some("us-or"), "I want to kill myself tonight")
        .await;
    assert!(kinds(&v).iter().any(|k| k == "suspend"), "{v}");
    let q = gw.admin_get("/admin/escalations").await;
    let case = q["escalations"][0]["id"].as_i64().unwrap();
    gw.admin_send(
        reqwest::Method::POST,
        &format!("/admin/escalations/{case}/resolve"),
        json!({"staff": "ana", "resolution": "safe"}),
    )
    .await;
    gw.clock.advance_secs(60);
    let v = gw.say("u-or2", Some("us-or"), "ok").await;
    assert_eq!(v["tutela"]["author"], "model", "{v}");
    assert_eq!(gw.mock.calls(), 1);
    assert!(audit_contains(&gw, "u-or2", "crisis_follow_up").await);
}

#[tokio::test]
async fn a_declared_persistent_disclosure_switches_off_connecticuts_notices() {
    let notices = |v: &Value| v["tutela"]["notices"].as_array().map_or(0, Vec::len);
    let at = tutela_types::Timestamp::parse("2027-03-01T14:00:00Z").unwrap();
    let plain = TestGateway::start("baseline = false\n", vec![]).await;
    plain.clock.set(at);
    let v = plain.say("u-ct", Some("us-ct"), "hello").await;
    assert_eq!(notices(&v), 1, "{v}");
    let declared = TestGateway::start(
        "baseline = false\n[engine]\npersistent_ai_disclosure = true\n",
        vec![],
    )
    .await;
    declared.clock.set(at);
    let v = declared.say("u-ct", Some("us-ct"), "hello").await;
    assert_eq!(notices(&v), 0, "{v}");
    // Another law's notice is not switched off by it.
    let v = declared.say("u-ny", Some("us-ny"), "hello").await;
    assert_eq!(notices(&v), 1, "{v}");
}
