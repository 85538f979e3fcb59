//! Human takeover: after a crisis the user's messages go to the case; without a human reply
//! the user gets the holding message with the resources; a staff reply comes back as the
//! assistant's message; resolving the case hands the conversation back to the model. Human
//! replies reach the app only on its channel, with the app key, and a read never consumes them.

use serde_json::json;

use crate::support::{TestGateway, content};

#[tokio::test]
async fn takeover_round_trip() {
    let gw = TestGateway::start("[takeover]\nwait_secs = 1\n", vec![]).await;
    let v = gw.say("u-t", Some("us-ny"), "I want to end my life").await;
    assert!(content(&v).contains("988"));
    let case = gw.admin_get("/admin/escalations").await["escalations"][0]["id"]
        .as_i64()
        .unwrap();

    // No human yet: the holding message, with the resources again.
    let v = gw.say("u-t", Some("us-ny"), "is anyone there?").await;
    assert_eq!(v["tutela"]["author"], "tutela");
    assert!(content(&v).contains("988"), "{v}");
    let shown = gw.admin_get(&format!("/admin/escalations/{case}")).await;
    let msgs = shown["messages"].as_array().unwrap();
    assert!(
        msgs.iter()
            .any(|m| m["body"] == "is anyone there?" && m["direction"] == "from_user"),
        "{shown}"
    );

    // A human replies while the user's turn waits.
    let gw2 = &gw;
    let waiting = async move { gw2.say("u-t", Some("us-ny"), "please").await };
    let staff = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        gw.admin_send(
            reqwest::Method::POST,
            &format!("/admin/escalations/{case}/reply"),
            json!({"staff": "ana", "text": "Hi, I'm Ana from the support team. I'm here with you."}),
        )
        .await
    };
    let (v, _) = tokio::join!(waiting, staff);
    assert_eq!(v["tutela"]["author"], "human", "{v}");
    assert!(content(&v).contains("I'm Ana"), "{v}");
    assert!(
        v["tutela"].get("aigc").is_none(),
        "a human's reply is not labelled AI-generated"
    );
    assert_eq!(gw.mock.calls(), 0);

    // Resolved: the model answers again.
    gw.admin_send(
        reqwest::Method::POST,
        &format!("/admin/escalations/{case}/resolve"),
        json!({"staff": "ana", "resolution": "talked, safe, referred"}),
    )
    .await;
    let shown = gw.admin_get(&format!("/admin/escalations/{case}")).await;
    assert_eq!(shown["escalation"]["status"], "resolved", "{shown}");
    let v = gw.say("u-t", Some("us-ny"), "thanks").await;
    assert_eq!(v["tutela"]["author"], "model", "{v}");
    assert_eq!(gw.mock.calls(), 1);
}

/// The app key of the test deployment (derived from the admin token: none configured).
fn app_key() -> String {
    tutela_gateway::auth::app_key_for(crate::support::TOKEN)
}

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn channel(gw: &TestGateway, query: &str, key: Option<&str>) -> (u16, serde_json::Value) {
    let mut r = gw.http.get(gw.url(&format!("/v1/tutela/replies?{query}")));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// What the crisis team writes to a person reaches only that person's conversation (their next
/// chat turn) and the app's authenticated channel: no one without the app key reads it, and a
/// read never consumes it.
#[tokio::test]
async fn human_replies_need_the_app_key_and_a_read_never_loses_them() {
    let gw = TestGateway::start("[takeover]\nwait_secs = 1\n", vec![]).await;
    let v = gw.say("u-r", Some("us-ny"), "I want to end my life").await;
    assert!(content(&v).contains("988"));
    let case = gw.admin_get("/admin/escalations").await["escalations"][0]["id"]
        .as_i64()
        .unwrap();
    gw.admin_send(
        reqwest::Method::POST,
        &format!("/admin/escalations/{case}/reply"),
        json!({"staff": "ana", "text": "Hi, it's Ana. I'm here with you."}),
    )
    .await;

    // Without the key, or with another one (the admin token, the test key): 401, nothing read.
    let test_key = tutela_gateway::test_traffic::key_for(crate::support::TOKEN);
    for key in [
        None,
        Some("wrong"),
        Some(crate::support::TOKEN),
        Some(test_key.as_str()),
    ] {
        let (status, body) = channel(&gw, "user=u-r&wait=0", key).await;
        assert_eq!(status, 401, "{key:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
        assert!(!body.to_string().contains("Ana"), "{body}");
    }

    // With the app key: the reply, as often as the app asks.
    let key = app_key();
    for _ in 0..2 {
        let (status, body) = channel(&gw, "user=u-r&wait=0", Some(&key)).await;
        assert_eq!(status, 200, "{body}");
        let replies = body["replies"].as_array().unwrap();
        assert_eq!(replies.len(), 1, "{body}");
        assert_eq!(replies[0]["text"], "Hi, it's Ana. I'm here with you.");
        assert_eq!(replies[0]["case"], case);
    }
    // Another user's channel holds nothing of it.
    let (_, other) = channel(&gw, "user=someone-else&wait=0", Some(&key)).await;
    assert_eq!(other["replies"], json!([]), "{other}");

    // The person's next chat turn gets it: the reads above did not consume it.
    let v = gw.say("u-r", Some("us-ny"), "are you there?").await;
    assert_eq!(v["tutela"]["author"], "human", "{v}");
    assert!(content(&v).contains("I'm here with you"), "{v}");
    // Delivered: the channel no longer lists it.
    let (_, body) = channel(&gw, "user=u-r&wait=0", Some(&key)).await;
    assert_eq!(body["replies"], json!([]), "{body}");
}

/// The app shows a reply on its channel and acknowledges it: the person's next turn does not
/// repeat it. Replies after a cursor (`after`) are the new ones only.
#[tokio::test]
async fn replies_the_app_acknowledged_are_not_repeated_in_the_chat() {
    let gw = TestGateway::start("[takeover]\nwait_secs = 1\n", vec![]).await;
    gw.say("u-a", Some("us-ny"), "I want to end my life").await;
    let case = gw.admin_get("/admin/escalations").await["escalations"][0]["id"]
        .as_i64()
        .unwrap();
    for text in ["first", "second"] {
        gw.admin_send(
            reqwest::Method::POST,
            &format!("/admin/escalations/{case}/reply"),
            json!({"staff": "ana", "text": text}),
        )
        .await;
    }
    let key = app_key();
    let (_, body) = channel(&gw, "user=u-a&wait=0", Some(&key)).await;
    let replies = body["replies"].as_array().unwrap().clone();
    assert_eq!(replies.len(), 2, "{body}");
    let first = replies[0]["id"].as_i64().unwrap();
    let (_, after) = channel(&gw, &format!("user=u-a&wait=0&after={first}"), Some(&key)).await;
    assert_eq!(after["replies"].as_array().unwrap().len(), 1, "{after}");
    assert_eq!(after["replies"][0]["text"], "second");

    // Acknowledging needs the key too.
    let ack = json!({"user": "u-a", "through": first});
    let r = gw
        .http
        .post(gw.url("/v1/tutela/replies/ack"))
        .json(&ack)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = gw
        .http
        .post(gw.url("/v1/tutela/replies/ack"))
        .bearer_auth(&key)
        .json(&ack)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["acknowledged"], 1, "{v}");

    // The chat turn brings only what the app has not shown.
    let v = gw.say("u-a", Some("us-ny"), "hello?").await;
    assert_eq!(v["tutela"]["author"], "human", "{v}");
    assert_eq!(content(&v), "second", "{v}");
}

/// Opens a takeover case for `user` and returns its id.
#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn open_case(gw: &TestGateway, user: &str) -> i64 {
    gw.say(user, Some("us-ny"), "I want to end my life").await;
    let list = gw.admin_get("/admin/escalations").await;
    list["escalations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user_id"] == user)
        .and_then(|c| c["id"].as_i64())
        .unwrap()
}

async fn staff(gw: &TestGateway, case: i64, what: &str, body: serde_json::Value) {
    gw.admin_send(
        reqwest::Method::POST,
        &format!("/admin/escalations/{case}/{what}"),
        body,
    )
    .await;
}

/// Once a person from the team has written, the holding message no longer says that a person
/// will join: it says the person has the message, with the resources again.
#[tokio::test]
async fn no_person_will_join_after_one_has() {
    let gw = TestGateway::start("[takeover]\nwait_secs = 1\n", vec![]).await;
    let case = open_case(&gw, "u-j").await;
    let v = gw.say("u-j", Some("us-ny"), "hello?").await;
    assert!(content(&v).contains("will join"), "{v}");
    staff(
        &gw,
        case,
        "reply",
        json!({"staff": "ana", "text": "I'm Ana, I'm here."}),
    )
    .await;
    let v = gw.say("u-j", Some("us-ny"), "ok").await;
    assert_eq!(v["tutela"]["author"], "human", "{v}");
    let v = gw.say("u-j", Some("us-ny"), "are you still there?").await;
    assert_eq!(v["tutela"]["author"], "tutela", "{v}");
    assert!(!content(&v).contains("will join"), "{v}");
    assert!(content(&v).contains("will answer here"), "{v}");
    assert!(content(&v).contains("988"), "{v}");
}

/// The holding message says honestly where the case stands: a person will join while nobody
/// has taken the case; once someone has claimed it (and not written yet), that a person has the
/// conversation open, never "will join"; each in its own event, the resources every time.
#[tokio::test]
async fn the_holding_message_says_when_a_person_has_the_case_open() {
    let gw = TestGateway::start("[takeover]\nwait_secs = 1\n", vec![]).await;
    let case = open_case(&gw, "u-o").await;
    let v = gw.say("u-o", Some("us-ny"), "is anyone there?").await;
    assert!(content(&v).contains("will join"), "{v}");
    assert!(v.to_string().contains("\"holding_message\""), "{v}");
    staff(&gw, case, "claim", json!({"staff": "ana"})).await;
    let v = gw.say("u-o", Some("us-ny"), "hello?").await;
    assert_eq!(v["tutela"]["author"], "tutela", "{v}");
    assert!(!content(&v).contains("will join"), "{v}");
    assert!(content(&v).contains("has your conversation open"), "{v}");
    assert!(content(&v).contains("988"), "{v}");
    assert!(v.to_string().contains("holding_message_claimed"), "{v}");
    // In Chinese too.
    let v = gw.say("u-o", Some("us-ny"), "有人在吗？").await;
    assert!(content(&v).contains("已经打开了你的对话"), "{v}");
    assert!(!content(&v).contains("很快会来"), "{v}");
}

/// After staff resolve a takeover case, the person's next reply (the model's again) opens with
/// the news that they are talking to the AI again, once; its delivery is in the audit log.
#[tokio::test]
async fn the_person_is_told_the_ai_is_back() {
    let gw = TestGateway::start("[takeover]\nwait_secs = 1\n", vec![]).await;
    let case = open_case(&gw, "u-b").await;
    staff(
        &gw,
        case,
        "reply",
        json!({"staff": "ana", "text": "I'm Ana."}),
    )
    .await;
    gw.say("u-b", Some("us-ny"), "thank you").await;
    let body = json!({"staff": "ana", "resolution": "safe"});
    staff(&gw, case, "resolve", body).await;
    let v = gw.say("u-b", Some("us-ny"), "ok").await;
    assert_eq!(v["tutela"]["author"], "model", "{v}");
    assert!(
        content(&v).starts_with("Our team has handed this conversation back"),
        "{v}"
    );
    let v = gw.say("u-b", Some("us-ny"), "and now?").await;
    assert!(
        !content(&v).contains("handed this conversation back"),
        "{v}"
    );
    // The records are batched; wait for the writer.
    let mut audit = String::new();
    for _ in 0..50 {
        audit = gw.admin_get("/admin/audit?user=u-b").await.to_string();
        if audit.contains("ai_resumed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(audit.contains("\"handed_back\":true"), "{audit}");
    assert!(audit.contains("ai_resumed"), "{audit}");
}

/// A turn waiting for a human when the case is resolved is told the AI is back, not "a person
/// will join", and only once.
#[tokio::test]
async fn a_waiting_turn_is_told_the_ai_is_back() {
    let gw = TestGateway::start("[takeover]\nwait_secs = 5\n", vec![]).await;
    let case = open_case(&gw, "u-w").await;
    let gw2 = &gw;
    let waiting = async move { gw2.say("u-w", Some("us-ny"), "hello?").await };
    let resolve = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        staff(
            &gw,
            case,
            "resolve",
            json!({"staff": "ana", "resolution": "x"}),
        )
        .await;
    };
    let (v, ()) = tokio::join!(waiting, resolve);
    assert_eq!(v["tutela"]["author"], "tutela", "{v}");
    assert!(content(&v).contains("talking to the AI again"), "{v}");
    let v = gw.say("u-w", Some("us-ny"), "ok").await;
    assert_eq!(v["tutela"]["author"], "model", "{v}");
    assert!(!content(&v).contains("talking to the AI again"), "{v}");
}

/// With structured notices only, the hand-back is in `tutela.notices` of the next reply, once.
#[tokio::test]
async fn a_structured_hand_back_is_shown_once() {
    let config = "[takeover]\nwait_secs = 1\n[notices]\nmode = \"structured\"\n";
    let gw = TestGateway::start(config, vec![]).await;
    let case = open_case(&gw, "u-s").await;
    staff(
        &gw,
        case,
        "resolve",
        json!({"staff": "ana", "resolution": "x"}),
    )
    .await;
    let resumed = |v: &serde_json::Value| v["tutela"]["notices"].to_string().contains("ai_resumed");
    let v = gw.say("u-s", Some("us-ny"), "ok").await;
    assert!(resumed(&v), "{v}");
    let v = gw.say("u-s", Some("us-ny"), "and now?").await;
    assert!(!resumed(&v), "{v}");
}

/// Deleting the user's data drops a pending hand-back with it.
#[tokio::test]
async fn deleting_the_user_drops_a_pending_hand_back() {
    let gw = TestGateway::start("[takeover]\nwait_secs = 1\n", vec![]).await;
    let case = open_case(&gw, "u-d").await;
    staff(
        &gw,
        case,
        "resolve",
        json!({"staff": "ana", "resolution": "x"}),
    )
    .await;
    gw.admin_send(reqwest::Method::DELETE, "/admin/users/u-d/data", json!({}))
        .await;
    let v = gw.say("u-d", Some("us-ny"), "ok").await;
    assert!(!content(&v).contains("talking to the AI again"), "{v}");
}
