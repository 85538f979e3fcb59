//! Signing in and out, and the guard in front of every other console route.
//!
//! - Password sign-in (argon2id, `crate::accounts`), rate-limited per account (five failures
//!   lock it for fifteen minutes, in the store, so a restart does not reset it) and per client
//!   address (twenty tries in ten minutes, in memory).
//! - The session cookie `tutela_session` holds 32 random bytes; the store keeps only their
//!   SHA-256. `HttpOnly`, `SameSite=Strict`, `Path=/console`, `Secure` as configured
//!   (`[console] secure_cookies`: `auto` follows `X-Forwarded-Proto: https`).
//! - A session ends on sign-out, after `[console] idle_minutes` without a request, after twelve
//!   hours in any case, and when its account is disabled or its password reset.
//! - Every state-changing request carries the session's form token (`csrf` field, or the
//!   `X-CSRF-Token` header for scripts); the guard checks it before any handler runs. The sign-in
//!   form has its own token in a short-lived cookie (double submit), so nobody can sign a
//!   browser into their account.
//! - Every sign-in, failed sign-in and sign-out is in the audit log with the staff id.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::Form;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::json;
use tutela_gateway::config::SecureCookies;
use tutela_store::{AuditEntry, AuditKind, AuditPayload, Staff};
use tutela_types::Timestamp;

use crate::Console;
use crate::accounts::{self, same, token_hash};
use crate::i18n::Lang;
use crate::layout::{html, page, refusal, secure};
use crate::perm::{Perm, allows};

/// The session cookie.
pub const SESSION_COOKIE: &str = "tutela_session";
const LOGIN_COOKIE: &str = "tutela_login";
/// Failures in a row that lock an account.
pub const LOCK_AFTER: u32 = 5;
/// How long a locked account waits.
pub const LOCK_SECS: i64 = 15 * 60;
/// Sign-in attempts one client address may make per window.
pub const CLIENT_ATTEMPTS: u32 = 20;
/// The client window.
pub const CLIENT_WINDOW_SECS: i64 = 10 * 60;
/// A session ends this long after sign-in, however active.
pub const MAX_SESSION_SECS: i64 = 12 * 3600;
/// Bodies of console forms are small.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The signed-in staff member of a request (put there by [`guard`]).
#[derive(Clone, Debug)]
pub struct Signed {
    /// The account.
    pub staff: Staff,
    /// The session's form token.
    pub csrf: String,
    token_hash: String,
}

impl Signed {
    /// `Ok` if the role allows `perm`, else the 403 page.
    pub fn require(&self, lang: Lang, perm: Perm) -> Result<(), Response> {
        if allows(self.staff.role, perm) {
            Ok(())
        } else {
            Err(refusal(
                lang,
                Some(self),
                StatusCode::FORBIDDEN,
                lang.t("Your role does not allow this.", "您的角色不允许此操作。"),
            ))
        }
    }

    /// Whether the session is still live (not signed out, expired, or its account disabled):
    /// a long-lived event stream asks before each event.
    pub async fn still_live(&self, cs: &Console) -> bool {
        matches!(
            cs.app.records.backend.staff_session(&self.token_hash).await,
            Ok(Some(s)) if {
                let idle = i64::from(cs.app.config.console.idle_minutes) * 60;
                let now = cs.app.clock.now();
                now.secs_since(s.created_at) < MAX_SESSION_SECS
                    && now.secs_since(s.last_seen_at) < idle
            }
        )
    }

    /// Whether the role allows `perm`.
    pub fn can(&self, perm: Perm) -> bool {
        allows(self.staff.role, perm)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Signed>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

/// A cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=')
                && k == name
            {
                return Some(val.to_owned());
            }
        }
    }
    None
}

fn secure_flag(cs: &Console, headers: &HeaderMap) -> bool {
    match cs.app.config.console.secure_cookies {
        SecureCookies::Always => true,
        SecureCookies::Never => false,
        SecureCookies::Auto => headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https")),
    }
}

fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<i64>,
    secure: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Records a staff action in the audit log (no chat text; the staff id and username).
pub async fn audit_staff(
    cs: &Console,
    at: Timestamp,
    kind: AuditKind,
    user: Option<&str>,
    staff: Option<&Staff>,
    mut detail: serde_json::Value,
) {
    if let (Some(s), Some(o)) = (staff, detail.as_object_mut()) {
        o.insert("staff_id".into(), json!(s.id));
        o.insert("staff".into(), json!(s.username));
        o.insert("role".into(), json!(s.role.as_str()));
    }
    cs.app
        .records
        .audit(AuditEntry {
            at,
            kind,
            user: user.map(str::to_owned),
            session: None,
            jurisdiction: None,
            payload: AuditPayload::detail(detail),
            profile_hash: String::new(),
            content_hash: None,
        })
        .await;
}

/// The live session of a request, if any; ends idle and expired ones.
async fn session(
    cs: &Console,
    headers: &HeaderMap,
    now: Timestamp,
) -> Result<Option<Signed>, String> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = token_hash(&token);
    let b = &cs.app.records.backend;
    let Some(s) = b.staff_session(&hash).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let idle = i64::from(cs.app.config.console.idle_minutes) * 60;
    if now.secs_since(s.last_seen_at) >= idle || now.secs_since(s.created_at) >= MAX_SESSION_SECS {
        b.end_staff_session(&hash, now)
            .await
            .map_err(|e| e.to_string())?;
        audit_staff(
            cs,
            now,
            AuditKind::Admin,
            None,
            Some(&s.staff),
            json!({"event": "session_expired"}),
        )
        .await;
        return Ok(None);
    }
    if now.secs_since(s.last_seen_at) >= 15 {
        b.touch_staff_session(&hash, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(Some(Signed {
        staff: s.staff,
        csrf: s.csrf,
        token_hash: hash,
    }))
}

/// The `csrf` field of a URL-encoded form body (the token is hex: no decoding needed).
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then_some(v)
    })
}

fn to_login(method: &Method, path_and_query: &str) -> Response {
    let next = if *method == Method::GET && path_and_query.starts_with("/console") {
        path_and_query
    } else {
        "/console"
    };
    let location = format!("/console/login?next={}", percent_encode(next));
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure(r)
}

fn percent_encode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// In front of every console route but sign-in, the language switch and the assets: no live
/// session → to the sign-in page; a state-changing request without the session's form token →
/// 403. Puts [`Signed`] into the request.
pub async fn guard(State(cs): State<Console>, req: Request, next: Next) -> Response {
    let lang = Lang::of(req.headers());
    let now = cs.app.clock.now();
    let signed = match session(&cs, req.headers(), now).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/console");
            return to_login(req.method(), pq);
        }
        Err(e) => {
            tracing::error!(error = %e, "console: cannot read the session");
            return refusal(lang, None, StatusCode::SERVICE_UNAVAILABLE, &e);
        }
    };
    let mut req = req;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return refusal(lang, Some(&signed), StatusCode::PAYLOAD_TOO_LARGE, "");
        };
        let given = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .or_else(|| form_field(&bytes, "csrf"))
            .unwrap_or("");
        if !same(given, &signed.csrf) {
            return refusal(
                lang,
                Some(&signed),
                StatusCode::FORBIDDEN,
                lang.t(
                    "This form has expired or did not come from the console. Reload the page and try again.",
                    "表单已过期或并非来自控制台。请刷新页面后重试。",
                ),
            );
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(signed);
    secure(next.run(req).await)
}

/// Inside the guard, per route: refuses (403) a role the table refuses, before the handler
/// reads anything.
pub async fn check(perm: Perm, req: Request, next: Next) -> Response {
    let lang = Lang::of(req.headers());
    match req.extensions().get::<Signed>() {
        Some(s) if allows(s.staff.role, perm) => next.run(req).await,
        Some(s) => {
            let s = s.clone();
            match s.require(lang, perm) {
                Err(r) => r,
                Ok(()) => next.run(req).await,
            }
        }
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Per-address sign-in attempts.
#[derive(Debug, Default)]
pub struct Limiter(Mutex<HashMap<IpAddr, (i64, u32)>>);

impl Limiter {
    /// Counts an attempt; false when the address is over its allowance.
    fn allow(&self, ip: IpAddr, now: Timestamp) -> bool {
        let Ok(mut m) = self.0.lock() else {
            return false;
        };
        if m.len() > 50_000 {
            m.retain(|_, (start, _)| now.unix() - *start < CLIENT_WINDOW_SECS);
        }
        let e = m.entry(ip).or_insert((now.unix(), 0));
        if now.unix() - e.0 >= CLIENT_WINDOW_SECS {
            *e = (now.unix(), 0);
        }
        e.1 += 1;
        e.1 <= CLIENT_ATTEMPTS
    }
}

/// `?next=/console/cases/7`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a console path, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/console",
    }
}

fn login_form(lang: Lang, token: &str, next: &str, error: Option<&str>) -> maud::Markup {
    page(
        lang,
        lang.t("Sign in", "登录"),
        None,
        "login",
        html! {
            section.card.login {
                h1 { (lang.t("Sign in to the console", "登录控制台")) }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form method="post" action="/console/login" {
                    input type="hidden" name="csrf" value=(token);
                    input type="hidden" name="next" value=(next);
                    label { (lang.t("Username", "用户名"))
                        input type="text" name="username" autocomplete="username" required autofocus; }
                    label { (lang.t("Password", "密码"))
                        input type="password" name="password" autocomplete="current-password" required; }
                    button type="submit" { (lang.t("Sign in", "登录")) }
                }
                p.hint { (lang.t("Accounts are made with `tutela staff add`.", "账号由 `tutela staff add` 创建。")) }
            }
        },
    )
}

fn login_response(
    cs: &Console,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
) -> Response {
    let lang = Lang::of(headers);
    let Ok(token) = accounts::random_token() else {
        return refusal(
            lang,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "no secure random source",
        );
    };
    let mut r = html(status, login_form(lang, &token, next, error));
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_COOKIE,
            &token,
            "/console/login",
            Some(3600),
            secure_flag(cs, headers),
        ),
    );
    r
}

/// `GET /console/login`.
pub async fn login_page(
    State(cs): State<Console>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let now = cs.app.clock.now();
    if let Ok(Some(_)) = session(&cs, &headers, now).await {
        return redirect(safe_next(q.next.as_deref()));
    }
    login_response(
        &cs,
        &headers,
        StatusCode::OK,
        safe_next(q.next.as_deref()),
        None,
    )
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// A 303 to a console path.
pub fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    secure(r)
}

/// `POST /console/login`.
pub async fn login(State(cs): State<Console>, req: Request) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let headers = req.headers().clone();
    let lang = Lang::of(&headers);
    let Ok(Form(f)) = Form::<LoginForm>::from_request(req, &()).await else {
        return login_response(
            &cs,
            &headers,
            StatusCode::BAD_REQUEST,
            "/console",
            Some(lang.t("Fill in both fields.", "请填写两个字段。")),
        );
    };
    let next = safe_next(f.next.as_deref()).to_owned();
    let now = cs.app.clock.now();
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !same(&f.csrf, &expected) {
        return login_response(
            &cs,
            &headers,
            StatusCode::FORBIDDEN,
            &next,
            Some(lang.t(
                "The sign-in form expired. Try again.",
                "登录表单已过期，请重试。",
            )),
        );
    }
    if !cs.limiter.allow(ip, now) {
        return login_response(
            &cs,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            Some(lang.t(
                "Too many sign-in attempts from this address. Wait ten minutes.",
                "此地址登录尝试过多，请十分钟后再试。",
            )),
        );
    }
    let b = &cs.app.records.backend;
    let staff = match b.staff_by_username(f.username.trim()).await {
        Ok(s) => s.filter(Staff::is_active),
        Err(e) => return refusal(lang, None, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    if let Some(s) = &staff
        && s.locked_until.is_some_and(|t| t > now)
    {
        audit_staff(
            &cs,
            now,
            AuditKind::Admin,
            None,
            Some(s),
            json!({"event": "login_refused_locked"}),
        )
        .await;
        return login_response(&cs, &headers, StatusCode::TOO_MANY_REQUESTS, &next, Some(lang.t(
            "Too many failed attempts for this account. Try again in fifteen minutes, or ask an admin to reset the password.",
            "该账号失败次数过多。请十五分钟后再试，或请管理员重置密码。",
        )));
    }
    let phc = staff.as_ref().map_or_else(
        || accounts::decoy_hash().to_owned(),
        |s| s.password_hash.clone(),
    );
    let password = f.password;
    let ok = tokio::task::spawn_blocking(move || accounts::verify_password(&password, &phc))
        .await
        .unwrap_or(false);
    let Some(staff) = staff.filter(|_| ok) else {
        if let Ok(Some(s)) = b.staff_by_username(f.username.trim()).await {
            let lock = (s.failed_logins + 1 >= LOCK_AFTER)
                .then(|| Timestamp::from_unix(now.unix() + LOCK_SECS));
            if let Err(e) = b.record_failed_login(s.id, lock).await {
                tracing::error!(error = %e, "console: cannot count a failed sign-in");
            }
            audit_staff(
                &cs,
                now,
                AuditKind::Admin,
                None,
                Some(&s),
                json!({"event": "login_failed", "locked": lock.is_some()}),
            )
            .await;
        }
        return login_response(
            &cs,
            &headers,
            StatusCode::UNAUTHORIZED,
            &next,
            Some(lang.t("Wrong username or password.", "用户名或密码错误。")),
        );
    };
    let (Ok(token), Ok(csrf)) = (accounts::random_token(), accounts::random_token()) else {
        return refusal(
            lang,
            None,
            StatusCode::INTERNAL_SERVER_ERROR,
            "no secure random source",
        );
    };
    if let Err(e) = b
        .open_staff_session(&token_hash(&token), staff.id, &csrf, now)
        .await
    {
        return refusal(lang, None, StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    audit_staff(
        &cs,
        now,
        AuditKind::Admin,
        None,
        Some(&staff),
        json!({"event": "login"}),
    )
    .await;
    let secure = secure_flag(&cs, &headers);
    let mut r = redirect(&next);
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, "/console", None, secure),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", "/console/login", Some(0), secure),
    );
    r
}

/// `POST /console/logout`.
pub async fn logout(State(cs): State<Console>, headers: HeaderMap, signed: Signed) -> Response {
    let now = cs.app.clock.now();
    if let Err(e) = cs
        .app
        .records
        .backend
        .end_staff_session(&signed.token_hash, now)
        .await
    {
        return refusal(
            Lang::of(&headers),
            Some(&signed),
            StatusCode::SERVICE_UNAVAILABLE,
            &e.to_string(),
        );
    }
    audit_staff(
        &cs,
        now,
        AuditKind::Admin,
        None,
        Some(&signed.staff),
        json!({"event": "logout"}),
    )
    .await;
    let mut r = redirect("/console/login");
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            "",
            "/console",
            Some(0),
            secure_flag(&cs, &headers),
        ),
    );
    r
}

/// `?set=zh&back=/console`.
#[derive(Debug, Deserialize)]
pub struct LangQuery {
    set: String,
    back: Option<String>,
}

/// `GET /console/lang`: remembers the language in a cookie (a preference, no state on the
/// server) and goes back.
pub async fn switch_lang(
    State(cs): State<Console>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = Lang::parse(&q.set).unwrap_or(Lang::En);
    let code = if lang == Lang::Zh { "zh" } else { "en" };
    let mut r = redirect(safe_next(q.back.as_deref()));
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            "tutela_lang",
            code,
            "/console",
            Some(365 * 86_400),
            secure_flag(&cs, &headers),
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_and_next_paths() {
        assert_eq!(form_field(b"a=1&csrf=abc&b=2", "csrf"), Some("abc"));
        assert_eq!(form_field(b"a=1", "csrf"), None);
        assert_eq!(safe_next(Some("/console/cases/3")), "/console/cases/3");
        assert_eq!(safe_next(Some("https://evil.example/")), "/console");
        assert_eq!(safe_next(Some("//evil.example/console")), "/console");
        assert_eq!(safe_next(None), "/console");
        assert_eq!(percent_encode("/console?q=a b"), "/console%3Fq%3Da%20b");
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("x=1; tutela_session=abc"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "y"), None);
        let c = set_cookie("a", "b", "/console", None, true);
        assert_eq!(
            c.to_str().unwrap(),
            "a=b; Path=/console; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
