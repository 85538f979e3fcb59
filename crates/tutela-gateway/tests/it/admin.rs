//! Admin API: bearer auth, users, audit query.

use serde_json::{Value, json};

use crate::support::{TOKEN, TestGateway};

#[tokio::test]
async fn admin_needs_the_token() {
    let gw = TestGateway::start("", vec![]).await;
    let r = gw
        .http
        .get(gw.url("/admin/escalations"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = gw
        .http
        .get(gw.url("/admin/escalations"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = gw
        .http
        .get(gw.url("/admin/escalations"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn users_and_audit() {
    let gw = TestGateway::start("", vec![]).await;
    let v = gw
        .admin_send(
            reqwest::Method::PATCH,
            "/admin/users/u-a",
            json!({"age_state": "verified_adult", "jurisdiction": "us-ca"}),
        )
        .await;
    assert_eq!(v["user"]["age_state"], "verified_adult");
    let r = gw
        .http
        .patch(gw.url("/admin/users/u-a"))
        .bearer_auth(TOKEN)
        .json(&json!({"age_state": "teenager"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    gw.say("u-a", None, "hello").await;
    let v = gw.admin_get("/admin/users/u-a").await;
    assert_eq!(v["user"]["jurisdiction"], "us-ca");
    // The turn's records are batched; wait for the writer.
    let mut records: Vec<Value> = Vec::new();
    for _ in 0..50 {
        records = gw.admin_get("/admin/audit?user=u-a").await["records"]
            .as_array()
            .unwrap()
            .clone();
        if records.iter().any(|r| r["kind"] == "turn") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(records.iter().any(|r| r["kind"] == "admin"), "{records:?}");
    assert!(records.iter().any(|r| r["kind"] == "turn"), "{records:?}");
    assert!(
        !serde_json::to_string(&records).unwrap().contains("hello"),
        "no chat text in the audit log"
    );
}

/// The token followed by more bytes is not the token (a compare that folded the length into
/// a byte accepted the token followed by 256·k bytes).
#[tokio::test]
async fn the_token_with_bytes_after_it_is_refused() {
    let gw = TestGateway::start("", vec![]).await;
    for extra in [1, 255, 256, 512] {
        let forged = format!("{TOKEN}{}", "A".repeat(extra));
        let r = gw
            .http
            .get(gw.url("/admin/escalations"))
            .bearer_auth(&forged)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "token + {extra} bytes");
    }
    let prefix = &TOKEN[..TOKEN.len() - 1];
    let r = gw
        .http
        .get(gw.url("/admin/escalations"))
        .bearer_auth(prefix)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a prefix of the token");
}

/// Without the token, an admin request is refused before its body or query is read: 401, in
/// OpenAI's shape, never a 400/422 that tells an unauthenticated caller about the body.
#[tokio::test]
async fn admin_bodies_are_not_read_before_the_token() {
    let gw = TestGateway::start("", vec![]).await;
    let cases: [(reqwest::Method, &str, &str); 8] = [
        (
            reqwest::Method::POST,
            "/admin/escalations/1/reply",
            "{not json",
        ),
        (reqwest::Method::POST, "/admin/escalations/1/claim", "[]"),
        (
            reqwest::Method::POST,
            "/admin/escalations/1/resolve",
            "{\"x\":1}",
        ),
        (reqwest::Method::PATCH, "/admin/users/u1", "{\"age\": []}"),
        (reqwest::Method::POST, "/admin/obligations", "{}"),
        (reqwest::Method::POST, "/admin/obligations/1/close", "nope"),
        (reqwest::Method::POST, "/admin/complaints/1/resolve", "{"),
        (
            reqwest::Method::GET,
            "/admin/escalations?status=open&bogus=1",
            "",
        ),
    ];
    for (method, path, body) in cases {
        let r = gw
            .http
            .request(method.clone(), gw.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["error"]["code"], "invalid_api_key",
            "{method} {path}: {v}"
        );
    }
}
