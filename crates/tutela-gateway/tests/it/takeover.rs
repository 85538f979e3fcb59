//! Human takeover: after a crisis the user's messages go to the case; without a human reply
//! the user gets the holding message with the resources; a staff reply comes back as the
//! assistant's message; resolving the case hands the conversation back to the model.

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
