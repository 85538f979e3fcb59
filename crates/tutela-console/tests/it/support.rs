//! A console beside a gateway (demo upstream, in-memory store, manual clock), accounts and
//! signed-in sessions, and small request helpers.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tutela_gateway::scan::Scanner;
use tutela_gateway::{AppState, Config, ManualClock, Parts};
use tutela_store::{NewStaff, StaffRole};
use tutela_types::Timestamp;

/// The test clock's start (2026-09-21, UTC).
pub const START: i64 = 1_790_000_000;

pub const PASSWORD: &str = "a long enough password";

pub struct Env {
    pub app: Router,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
}

fn scanner() -> Arc<dyn Scanner> {
    static S: OnceLock<Arc<dyn Scanner>> = OnceLock::new();
    S.get_or_init(|| {
        let det = tutela_detect::Detectors::try_builtin().unwrap();
        det.prepare();
        Arc::new(tutela_gateway::engines::BuiltinScanner::new(det, None))
    })
    .clone()
}

pub async fn env() -> Env {
    env_with("").await
}

pub async fn env_with(extra_toml: &str) -> Env {
    let vars: HashMap<String, String> = HashMap::new();
    let mut config = Config::from_toml(extra_toml, &vars).unwrap();
    config.database = ":memory:".into();
    config.takeover_wait = std::time::Duration::from_millis(10);
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix(START)));
    let state = tutela_gateway::build(
        config,
        Parts {
            clock: Some(clock.clone()),
            scanner: Some(scanner()),
            ..Parts::default()
        },
    )
    .await
    .unwrap();
    let app = tutela_gateway::app(state.clone()).merge(tutela_console::router(state.clone()));
    Env { app, state, clock }
}

impl Env {
    pub async fn staff(&self, username: &str, role: StaffRole) {
        let hash = tutela_console::accounts::hash_password(PASSWORD).unwrap();
        self.state
            .records
            .backend
            .add_staff(&NewStaff {
                username: username.into(),
                display_name: username.to_uppercase(),
                role,
                password_hash: hash,
                at: self.state.clock.now(),
            })
            .await
            .unwrap();
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let r: Response<Body> = self.app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// The login form's token and cookie.
    pub async fn login_form(&self) -> (String, String) {
        let (status, headers, body) = self.send(get("/console/login", None)).await;
        assert_eq!(status, StatusCode::OK);
        let cookie = set_cookie(&headers, "tutela_login").unwrap();
        (field(&body, "csrf").unwrap(), cookie)
    }

    /// Posts the sign-in form; the response.
    pub async fn try_login(
        &self,
        username: &str,
        password: &str,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let (token, cookie) = self.login_form().await;
        let body = format!(
            "username={username}&password={}&csrf={token}&next=%2Fconsole",
            password.replace(' ', "+")
        );
        let req = Request::post("/console/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("tutela_login={cookie}"))
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    /// Signs in; the session.
    pub async fn login(&self, username: &str) -> Session {
        let (status, headers, _) = self.try_login(username, PASSWORD).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "sign-in of {username}");
        let cookie = set_cookie(&headers, "tutela_session").unwrap();
        let (status, _, body) = self
            .send(get(
                "/console",
                Some(&Session {
                    cookie: cookie.clone(),
                    csrf: String::new(),
                }),
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        Session {
            cookie,
            csrf: field(&body, "csrf").unwrap(),
        }
    }

    /// A chat turn from `user`: the reply's text.
    pub async fn chat(&self, user: &str, messages: serde_json::Value) -> serde_json::Value {
        let req = Request::post("/v1/chat/completions")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-tutela-user", user)
            .body(Body::from(
                serde_json::json!({"messages": messages}).to_string(),
            ))
            .unwrap();
        let (status, _, body) = self.send(req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Opens a case with one crisis message after a short conversation; its id.
    pub async fn crisis(&self, user: &str, text: &str) -> i64 {
        self.chat(
            user,
            serde_json::json!([
                {"role": "user", "content": "hi, long day"},
                {"role": "assistant", "content": "I'm here. What happened?"},
                {"role": "user", "content": text},
            ]),
        )
        .await;
        self.state
            .records
            .backend
            .active_escalation(user)
            .await
            .unwrap()
            .expect("a case opened")
            .id
    }
}

#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

pub fn get(path: &str, s: Option<&Session>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(s) = s {
        b = b.header(header::COOKIE, format!("tutela_session={}", s.cookie));
    }
    b.body(Body::empty()).unwrap()
}

/// A form post with the session's cookie; `csrf` decides the token sent (None: none at all).
pub fn post(
    path: &str,
    s: Option<&Session>,
    csrf: Option<&str>,
    fields: &[(&str, &str)],
) -> Request<Body> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(c) = csrf {
        parts.push(format!("csrf={c}"));
    }
    for (k, v) in fields {
        parts.push(format!("{k}={}", encode(v)));
    }
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(s) = s {
        b = b.header(header::COOKIE, format!("tutela_session={}", s.cookie));
    }
    b.body(Body::from(parts.join("&"))).unwrap()
}

pub fn encode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The value of a `Set-Cookie` named `name`.
pub fn set_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let (k, rest) = v.split_once('=')?;
        (k == name).then(|| rest.split(';').next().unwrap_or("").to_owned())
    })
}

/// The whole `Set-Cookie` line for `name`.
pub fn set_cookie_line(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of the first `<input name="NAME" value="...">`.
pub fn field(html: &str, name: &str) -> Option<String> {
    let key = format!("name=\"{name}\" value=\"");
    let at = html.find(&key)? + key.len();
    let end = html[at..].find('"')?;
    Some(html[at..at + end].to_owned())
}

pub fn location(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The `detail` of the first audit record whose event is `event`, waiting for the writer (it
/// commits in the background) for up to two seconds.
pub async fn audit_event(state: &AppState, event: &str) -> Option<serde_json::Value> {
    for _ in 0..200 {
        let rows = state
            .records
            .backend
            .query_audit(&tutela_store::AuditQuery {
                subject: None,
                from: None,
                to: None,
                after_seq: None,
                limit: 1000,
            })
            .await
            .unwrap();
        for r in rows {
            let r = tutela_store::AuditRecord::try_from(r).unwrap();
            if let Some(d) = r.payload.detail
                && d["event"] == event
            {
                return Some(d);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    None
}

/// The details of every audit record of `event` written so far.
pub async fn audit_events(state: &AppState, event: &str) -> Vec<serde_json::Value> {
    let rows = state
        .records
        .backend
        .query_audit(&tutela_store::AuditQuery {
            subject: None,
            from: None,
            to: None,
            after_seq: None,
            limit: 10_000,
        })
        .await
        .unwrap();
    rows.into_iter()
        .filter_map(|r| {
            tutela_store::AuditRecord::try_from(r)
                .unwrap()
                .payload
                .detail
        })
        .filter(|d| d["event"] == event)
        .collect()
}
