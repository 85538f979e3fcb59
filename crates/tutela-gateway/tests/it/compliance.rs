//! The compliance admin API: usage against thresholds, obligation records, reports compiled
//! from the records, complaints with their time limit, data export and deletion.

use serde_json::{Value, json};

use crate::support::{TOKEN, TestGateway};

#[tokio::test]
async fn usage_obligations_reports_complaints_and_data_rights() {
    let gw = TestGateway::start("", vec![]).await;
    for user in ["u-comp-1", "u-comp-2", "u-comp-3"] {
        gw.say(user, Some("us-ca"), "hello there").await;
    }
    gw.say("u-comp-1", Some("us-ca"), "I want to end my life")
        .await;

    // Usage against the thresholds: three users, far below them.
    let v = gw.admin_get("/admin/usage?month=2026-09").await;
    let t = v["thresholds"].as_array().unwrap();
    assert_eq!(t.len(), 2, "{v}");
    assert!(
        t.iter().all(|s| s["value"] == 3 && s["state"] == "ok"),
        "{v}"
    );
    assert_eq!(v["opened"].as_array().unwrap().len(), 0);

    // A declared trigger opens an assessment record with its due items; closing it.
    let d = gw
        .admin_send(
            reqwest::Method::POST,
            "/admin/obligations",
            json!({"trigger": "feature_launch", "description": "voice companions"}),
        )
        .await;
    let id = d["obligation"]["id"].as_i64().unwrap();
    assert_eq!(d["obligation"]["article"], "Art. 22(1)");
    assert!(!d["obligation"]["due_items"].as_array().unwrap().is_empty());
    let list = gw.admin_get("/admin/obligations").await;
    assert_eq!(list["obligations"].as_array().unwrap().len(), 1);
    gw.admin_send(
        reqwest::Method::POST,
        &format!("/admin/obligations/{id}/close"),
        json!({"note": "assessment filed"}),
    )
    .await;
    assert_eq!(
        gw.admin_get("/admin/obligations").await["obligations"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Reports from the records.
    let usage = gw
        .admin_get("/admin/reports/usage?from=2026-09-01&to=2026-09-30")
        .await;
    assert_eq!(usage["registered_users"], 3);
    assert_eq!(usage["monthly_active"][0]["total"], 3);
    let sb = gw.admin_get("/admin/reports/sb243?year=2026").await;
    assert_eq!(sb["referral_notifications"], 1, "{sb}");
    for format in ["json", "md", "html"] {
        let r = gw
            .http
            .get(gw.url(&format!("/admin/reports/sb243?year=2026&format={format}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            !r.text().await.unwrap().contains("u-comp"),
            "a user id leaked ({format})"
        );
    }
    let html = gw
        .http
        .get(gw.url("/admin/reports/assessment?from=2026-09-01&format=html"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    assert!(html.text().await.unwrap().contains("needs human input"));
    let r = gw
        .http
        .get(gw.url("/admin/reports/nope"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Complaints: public intake with the published time limit, admin queue, resolution.
    let r = gw
        .http
        .post(gw.url("/v1/tutela/complaints"))
        .header("X-Tutela-User", "u-comp-2")
        .json(&json!({"category": "appeal", "intervention_id": 1, "text": "that was not a crisis"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["handling_time_limit_hours"], 72);
    assert_eq!(c["due_at"], "2026-09-04T10:00:00Z");
    let bad = gw
        .http
        .post(gw.url("/v1/tutela/complaints"))
        .json(&json!({"category": "politics"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let open = gw.admin_get("/admin/complaints?status=open").await;
    assert_eq!(open["complaints"].as_array().unwrap().len(), 1);
    let cid = c["id"].as_i64().unwrap();
    let done = gw
        .admin_send(
            reqwest::Method::POST,
            &format!("/admin/complaints/{cid}/resolve"),
            json!({"outcome": "upheld"}),
        )
        .await;
    assert_eq!(done["complaint"]["status"], "resolved");

    // Data rights: export, then deletion; the audit chain still verifies.
    let export = gw.admin_get("/admin/users/u-comp-1/export").await;
    assert_eq!(export["export"]["user"]["id"], "u-comp-1");
    let del = gw
        .admin_send(
            reqwest::Method::DELETE,
            "/admin/users/u-comp-1/data",
            json!({}),
        )
        .await;
    assert!(
        !del["deleted"]["pseudonym"].as_str().unwrap().is_empty(),
        "{del}"
    );
    let gone = gw
        .http
        .get(gw.url("/admin/users/u-comp-1/export"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let verify = gw.admin_get("/admin/audit/verify").await;
    assert_eq!(verify["intact"], true, "{verify}");
}
