//! Sign-in, sign-out, cookies, form tokens, rate limits and idle expiry.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tutela_console::GUARDED_ROUTES;
use tutela_store::StaffRole;

use crate::support::{
    PASSWORD, Session, audit_event, env, env_with, get, location, post, set_cookie, set_cookie_line,
};

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
}

#[tokio::test]
async fn without_a_session_every_guarded_route_goes_to_sign_in() {
    let e = env().await;
    for (method, path, _) in GUARDED_ROUTES {
        let p = concrete(path);
        let req = if *method == "GET" {
            get(&p, None)
        } else {
            post(&p, None, Some("x"), &[])
        };
        let (status, headers, _) = e.send(req).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{method} {path}");
        let to = location(&headers);
        assert!(
            to.starts_with("/console/login?next="),
            "{method} {path}: {to}"
        );
        if *method == "GET" {
            assert!(
                to.contains(&p.replace('/', "%2F").replace("%2F", "/")),
                "{to}"
            );
        }
    }
    // A forged cookie is no session either.
    let fake = Session {
        cookie: "00".repeat(32),
        csrf: String::new(),
    };
    let (status, _, _) = e.send(get("/console", Some(&fake))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_records_it() {
    let e = env().await;
    e.staff("ann", StaffRole::Agent).await;
    let (status, headers, _) = e.try_login("ann", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console");
    let line = set_cookie_line(&headers, "tutela_session").unwrap();
    assert!(line.contains("HttpOnly"), "{line}");
    assert!(line.contains("SameSite=Strict"), "{line}");
    assert!(line.contains("Path=/console"), "{line}");
    assert!(!line.contains("Secure"), "plain HTTP, auto: {line}");
    let d = audit_event(&e.state, "login")
        .await
        .expect("sign-in recorded");
    assert_eq!(d["staff"], "ann");
    assert!(d["staff_id"].is_i64(), "{d}");
    // The page carries the policy and the session's form token.
    let s = e.login("ann").await;
    let r = e.app.clone();
    let _ = r;
    let (_, headers, body) = e.send(get("/console", Some(&s))).await;
    let csp = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(body.contains(&s.csrf));
    assert!(!body.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn secure_cookies_behind_tls_or_when_configured() {
    let e = env().await;
    e.staff("ann", StaffRole::Agent).await;
    let (token, cookie) = e.login_form().await;
    let req = Request::post("/console/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("tutela_login={cookie}"))
        .header("x-forwarded-proto", "https")
        .body(Body::from(format!(
            "username=ann&password={}&csrf={token}",
            PASSWORD.replace(' ', "+")
        )))
        .unwrap();
    let (status, headers, _) = e.send(req).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        set_cookie_line(&headers, "tutela_session")
            .unwrap()
            .ends_with("; Secure")
    );

    let e = env_with("[console]\nsecure_cookies = \"always\"\n").await;
    e.staff("ann", StaffRole::Agent).await;
    let (_, headers, _) = e.try_login("ann", PASSWORD).await;
    assert!(
        set_cookie_line(&headers, "tutela_session")
            .unwrap()
            .ends_with("; Secure")
    );
}

#[tokio::test]
async fn a_sign_in_form_without_its_token_is_refused() {
    let e = env().await;
    e.staff("ann", StaffRole::Agent).await;
    let (token, _) = e.login_form().await;
    // The form's token without the matching cookie (a cross-site form cannot set it).
    let req = Request::post("/console/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "username=ann&password={}&csrf={token}",
            PASSWORD.replace(' ', "+")
        )))
        .unwrap();
    let (status, headers, _) = e.send(req).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(set_cookie(&headers, "tutela_session").is_none());
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account() {
    let e = env().await;
    e.staff("ann", StaffRole::Agent).await;
    for _ in 0..5 {
        let (status, headers, body) = e.try_login("ann", "wrong password here").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(set_cookie(&headers, "tutela_session").is_none());
        assert!(body.contains("Wrong username or password"));
    }
    let (status, _, _) = e.try_login("ann", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "locked even with the right password"
    );
    assert!(audit_event(&e.state, "login_failed").await.is_some());
    e.clock.advance_secs(15 * 60 + 1);
    let (status, _, _) = e.try_login("ann", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "unlocked after fifteen minutes"
    );
    // Unknown users get the same answer as a wrong password.
    let (status, _, body) = e.try_login("nobody", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("Wrong username or password"));
}

#[tokio::test]
async fn one_client_address_gets_twenty_tries_per_ten_minutes() {
    let e = env().await;
    // Different unknown usernames: the account limit never applies.
    for i in 0..20 {
        let (status, _, _) = e.try_login(&format!("x{i}"), "whatever-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "try {i}");
    }
    let (status, _, _) = e.try_login("x21", "whatever-password").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    e.clock.advance_secs(10 * 60);
    let (status, _, _) = e.try_login("x22", "whatever-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_state_changing_route_needs_the_session_form_token() {
    let e = env().await;
    e.staff("root", StaffRole::Admin).await;
    let s = e.login("root").await;
    for (method, path, _) in GUARDED_ROUTES.iter().filter(|(m, _, _)| *m == "POST") {
        let p = concrete(path);
        for token in [None, Some("0".repeat(64).as_str()), Some("")] {
            let (status, _, _) = e.send(post(&p, Some(&s), token, &[])).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {path} with {token:?}"
            );
        }
    }
    // The header works for scripts.
    let req = Request::post("/console/logout")
        .header(header::COOKIE, format!("tutela_session={}", s.cookie))
        .header("x-csrf-token", &s.csrf)
        .body(Body::empty())
        .unwrap();
    let (status, headers, _) = e.send(req).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console/login");
}

#[tokio::test]
async fn sessions_end_on_sign_out_idle_time_and_disabling() {
    let e = env().await;
    e.staff("ann", StaffRole::Agent).await;
    let s = e.login("ann").await;
    let (status, _, _) = e
        .send(post("/console/logout", Some(&s), Some(&s.csrf), &[]))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = e.send(get("/console", Some(&s))).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
    assert!(audit_event(&e.state, "logout").await.is_some());

    // Idle: 30 minutes by default; activity keeps it alive.
    let s = e.login("ann").await;
    e.clock.advance_secs(29 * 60);
    assert_eq!(e.send(get("/console", Some(&s))).await.0, StatusCode::OK);
    e.clock.advance_secs(29 * 60);
    assert_eq!(e.send(get("/console", Some(&s))).await.0, StatusCode::OK);
    e.clock.advance_secs(30 * 60);
    assert_eq!(
        e.send(get("/console", Some(&s))).await.0,
        StatusCode::SEE_OTHER
    );
    assert!(audit_event(&e.state, "session_expired").await.is_some());

    // Disabled: the live session ends at once.
    let s = e.login("ann").await;
    let ann = e
        .state
        .records
        .backend
        .staff_by_username("ann")
        .await
        .unwrap()
        .unwrap();
    e.state
        .records
        .backend
        .set_staff_disabled(ann.id, true, e.state.clock.now())
        .await
        .unwrap();
    assert_eq!(
        e.send(get("/console", Some(&s))).await.0,
        StatusCode::SEE_OTHER
    );
    let (status, _, _) = e.try_login("ann", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_language_follows_the_browser_and_the_switch() {
    let e = env().await;
    let req = Request::get("/console/login")
        .header("accept-language", "zh-CN,zh;q=0.9")
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = e.send(req).await;
    assert!(body.contains("登录控制台"), "{body}");
    assert!(body.contains("lang=\"zh-CN\""));
    let (status, headers, _) = e
        .send(get("/console/lang?set=en&back=%2Fconsole%2Flogin", None))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console/login");
    assert_eq!(set_cookie(&headers, "tutela_lang").as_deref(), Some("en"));
    let req = Request::get("/console/login")
        .header("accept-language", "zh-CN")
        .header(header::COOKIE, "tutela_lang=en")
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = e.send(req).await;
    assert!(body.contains("Sign in to the console"));
    // Never back to another site.
    let (_, headers, _) = e
        .send(get(
            "/console/lang?set=zh&back=https%3A%2F%2Fevil.example",
            None,
        ))
        .await;
    assert_eq!(location(&headers), "/console");
}

#[tokio::test]
async fn assets_are_served_with_the_policy() {
    let e = env().await;
    for (path, kind) in [
        ("/console/assets/console.js", "text/javascript"),
        ("/console/assets/console.css", "text/css"),
    ] {
        let (status, headers, body) = e.send(get(path, None)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
        assert!(!body.is_empty());
    }
    assert_eq!(
        e.send(get("/console/assets/other.js", None)).await.0,
        StatusCode::NOT_FOUND
    );
}

/// The demo page at `/` stays for newcomers and links to the console.
#[tokio::test]
async fn the_demo_page_links_to_the_console() {
    let e = env().await;
    let (status, _, body) = e.send(get("/", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("href=\"/console\""), "{body}");
}
