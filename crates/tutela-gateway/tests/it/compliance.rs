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
    for format in ["json", "md", "html", "pdf"] {
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
    // The language, as `tutela report --lang` and the console: by default the regulator's
    // (the CN assessment in Chinese), `lang=en` for its English version, 400 otherwise.
    let get = |path: &str| gw.http.get(gw.url(path)).bearer_auth(TOKEN).send();
    let html = get("/admin/reports/assessment?from=2026-09-01&format=html")
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    assert_eq!(html.headers()["content-type"], "text/html; charset=utf-8");
    let zh = html.text().await.unwrap();
    assert!(zh.contains("需人工填写"), "the default is Chinese");
    assert!(!zh.contains("needs human input"));
    for lang in ["zh", "zh-CN"] {
        let page = get(&format!(
            "/admin/reports/assessment?from=2026-09-01&format=html&lang={lang}"
        ))
        .await
        .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.text().await.unwrap(), zh, "lang={lang}");
    }
    let html = get("/admin/reports/assessment?from=2026-09-01&format=html&lang=en")
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    assert!(html.text().await.unwrap().contains("needs human input"));
    let md = get("/admin/reports/assessment?from=2026-09-01&format=md&lang=en")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(md.contains("NEEDS HUMAN INPUT"), "{md}");
    for (path, says) in [
        (
            "/admin/reports/assessment?from=2026-09-01&format=html&lang=fr",
            "`fr` is not a report language; one of zh, en",
        ),
        (
            "/admin/reports/assessment?from=2026-09-01&lang=",
            "`` is not a report language",
        ),
        (
            "/admin/reports/sb243?year=2026&format=html&lang=zh",
            "the sb243 report is written in en only",
        ),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains(says), "{path}: {body}");
    }
    let en = get("/admin/reports/sb243?year=2026&format=md&lang=en")
        .await
        .unwrap();
    assert_eq!(en.status(), 200);
    assert_eq!(
        en.text().await.unwrap(),
        get("/admin/reports/sb243?year=2026&format=md")
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    );
    let pdf = gw
        .http
        .get(gw.url("/admin/reports/assessment?from=2026-09-01&format=pdf&lang=en"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let pdf = pdf.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-1.4\n"));
    let text = tutela_report::pdf::shown_text(&pdf);
    assert!(
        text.iter().any(|t| t.starts_with("NEEDS HUMAN INPUT")),
        "{text:?}"
    );
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

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn complain(
    gw: &TestGateway,
    user: Option<&str>,
    text: &str,
    client: &str,
) -> (u16, Value, Option<String>) {
    let mut body = json!({"category": "other", "text": text});
    if let Some(u) = user {
        body["user"] = json!(u);
    }
    let r = gw
        .http
        .post(gw.url("/v1/tutela/complaints"))
        .header("X-Forwarded-For", client)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

/// The public intake is bounded: a body over the size limit is 413; past the per-client,
/// per-user or global limit a complaint is 429 in OpenAI's shape with `Retry-After`, and
/// nothing is stored; the next window takes complaints again.
#[tokio::test]
async fn the_complaint_intake_is_bounded() {
    let gw = TestGateway::start(
        "[complaints]\nmax_body_bytes = 2048\nper_client_per_hour = 3\nper_user_per_day = 2\nglobal_per_hour = 6\nclient_header = \"x-forwarded-for\"\n",
        vec![],
    )
    .await;
    // Size: 413, in OpenAI's shape.
    let (status, body, _) = complain(&gw, None, &"x".repeat(4_000), "10.0.0.1").await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");

    // Per user: two a day for `u1`, from any client (global: 3 counted).
    assert_eq!(complain(&gw, Some("u1"), "one", "10.0.0.2").await.0, 200);
    assert_eq!(complain(&gw, Some("u1"), "two", "10.0.0.3").await.0, 200);
    let (status, body, retry) = complain(&gw, Some("u1"), "three", "10.0.0.4").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("user"),
        "{body}"
    );
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!(secs > 0 && secs <= 86_400, "{secs}");

    // Per client: three an hour from 10.0.0.1, whatever the user (global: 6 counted).
    for (user, text) in [(None, "a"), (Some("u2"), "b"), (Some("u3"), "c")] {
        assert_eq!(complain(&gw, user, text, "10.0.0.1").await.0, 200, "{text}");
    }
    let (status, body, _) = complain(&gw, Some("u4"), "d", "10.0.0.1").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client"),
        "{body}"
    );

    // Global: six an hour in all, so a fresh client and user are refused now.
    let (status, body, _) = complain(&gw, Some("u9"), "e", "10.0.0.9").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("service"),
        "{body}"
    );

    let stored = gw.admin_get("/admin/complaints?status=open").await;
    assert_eq!(
        stored["complaints"].as_array().unwrap().len(),
        5,
        "{stored}"
    );
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
        metrics.contains("tutela_complaints_limited_total 3"),
        "{metrics}"
    );

    // An hour later the client and global windows are fresh; the user's day is not.
    gw.clock.advance_secs(3_600);
    assert_eq!(complain(&gw, Some("u9"), "f", "10.0.0.9").await.0, 200);
    assert_eq!(complain(&gw, Some("u1"), "g", "10.0.0.9").await.0, 429);
}
