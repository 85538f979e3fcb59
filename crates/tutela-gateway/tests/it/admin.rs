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

/// Every staff route of the router, as `(METHOD, path)` from the source of `app` in
/// `src/lib.rs`: each `.route("/admin/...", get(..).patch(..))` call, with every method it
/// carries. Read from the source so that a route added there is walked by the test below
/// without anyone remembering to list it.
fn admin_routes_in_source() -> Vec<(reqwest::Method, String)> {
    let src = include_str!("../../src/lib.rs");
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's text, to its closing parenthesis.
        let mut depth = 1;
        // (A call the parser cannot read ends the walk; the test checks what it found.)
        let Some(end) = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
        else {
            break;
        };

        let call = &rest[..end];
        let Some(path) = call.split('"').nth(1) else {
            continue;
        };
        if !path.starts_with("/admin") {
            continue;
        }
        for (word, method) in [
            ("get(", reqwest::Method::GET),
            ("post(", reqwest::Method::POST),
            ("patch(", reqwest::Method::PATCH),
            ("put(", reqwest::Method::PUT),
            ("delete(", reqwest::Method::DELETE),
        ] {
            let called = call
                .match_indices(word)
                .any(|(i, _)| !call[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
            if called {
                out.push((method, path.replace("{id}", "1").replace("{kind}", "usage")));
            }
        }
    }
    out
}

/// Role checks of the admin API, route by route: the bearer token is its only role. Every
/// `/admin/...` route refuses a request without it, with a wrong token, and with the app's key
/// or the test key (keys of their own channels, not staff credentials): 401, nothing read. With
/// the token, none of them answers 401.
#[tokio::test]
async fn every_admin_route_refuses_every_credential_but_the_token() {
    let gw = TestGateway::start("", vec![]).await;
    let routes = admin_routes_in_source();
    // The parser sees the routes as written (a guard against it finding nothing).
    for want in [
        (reqwest::Method::GET, "/admin/escalations"),
        (reqwest::Method::PATCH, "/admin/users/1"),
        (reqwest::Method::DELETE, "/admin/users/1/data"),
        (reqwest::Method::POST, "/admin/obligations"),
        (reqwest::Method::GET, "/admin/app-key"),
    ] {
        assert!(
            routes.iter().any(|(m, p)| *m == want.0 && p == want.1),
            "{want:?} not found in {routes:?}"
        );
    }
    assert!(routes.len() >= 20, "{routes:?}");
    let app_key = gw.admin_get("/admin/app-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let test_key = gw.admin_get("/admin/test-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in &routes {
        for (who, key) in [
            ("none", None),
            ("wrong", Some("wrong-token")),
            ("app key", Some(app_key.as_str())),
            ("test key", Some(test_key.as_str())),
        ] {
            let mut req = gw
                .http
                .request(method.clone(), gw.url(path))
                .header("content-type", "application/json")
                .body("{}");
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} with {who}");
        }
        let r = gw
            .http
            .request(method.clone(), gw.url(path))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 401, "{method} {path} with the token");
    }
}
