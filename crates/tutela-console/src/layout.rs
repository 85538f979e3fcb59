//! The page shell every console page shares (header, navigation, language switch, sign-out),
//! and the headers every console response carries: a strict Content-Security-Policy (scripts,
//! styles and connections from the console itself only, no inline script), no caching of
//! personal data, no framing, no referrer.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::auth::Signed;
use crate::i18n::Lang;
use crate::perm::Perm;

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Adds the console's security headers to any response.
pub fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    // A page that set its own (a self-contained report) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// An HTML page with `status`.
pub fn html(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(r)
}

/// A full page: the shell around `body`. `signed` is the staff member, if signed in.
pub fn page(lang: Lang, title: &str, signed: Option<&Signed>, here: &str, body: Markup) -> Markup {
    let (other, other_name) = lang.other();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · tutela" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/console" { "tutela" span.sub { (lang.t(" console", " 控制台")) } }
                    @if let Some(s) = signed {
                        nav {
                            a href="/console" aria-current=[(here == "queue").then_some("page")] { (lang.t("Queue", "队列")) }
                            @if crate::perm::allows(s.staff.role, Perm::LookUpUsers) {
                                a href="/console/users" aria-current=[(here == "users").then_some("page")] { (lang.t("Users", "用户")) }
                            }
                            @if crate::perm::allows(s.staff.role, Perm::Compliance) {
                                a href="/console/compliance" aria-current=[(here == "compliance").then_some("page")] { (lang.t("Compliance", "合规")) }
                            }
                        }
                    }
                    span.spacer {}
                    a.lang href={ "/console/lang?set=" (other) "&back=" (here_path(here)) } hreflang=(other) { (other_name) }
                    @if let Some(s) = signed {
                        span.who title=(s.staff.username) {
                            (s.staff.display_name) " · " (role_name(lang, s.staff.role))
                        }
                        form.inline method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button.link type="submit" { (lang.t("Sign out", "退出")) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// Where the language switch returns: the page itself (`here` is a name or a console path).
fn here_path(here: &str) -> &str {
    match here {
        "users" => "/console/users",
        "compliance" => "/console/compliance",
        "login" => "/console/login",
        p if p.starts_with("/console/")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'-' || b == b'_') =>
        {
            p
        }
        _ => "/console",
    }
}

/// A role's name for people.
pub fn role_name(lang: Lang, role: tutela_store::StaffRole) -> &'static str {
    use tutela_store::StaffRole::{Admin, Agent, Compliance, Supervisor};
    match role {
        Agent => lang.t("agent", "坐席"),
        Supervisor => lang.t("supervisor", "主管"),
        Compliance => lang.t("compliance", "合规"),
        Admin => lang.t("admin", "管理员"),
    }
}

/// A page that says why something was refused (403, 404, 409, 429).
pub fn refusal(lang: Lang, signed: Option<&Signed>, status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => lang.t("Not allowed", "无权操作"),
        StatusCode::NOT_FOUND => lang.t("Not found", "未找到"),
        StatusCode::CONFLICT => lang.t("Not possible now", "当前无法操作"),
        StatusCode::TOO_MANY_REQUESTS => lang.t("Too many attempts", "尝试次数过多"),
        StatusCode::BAD_REQUEST => lang.t("Check the form", "请检查表单"),
        _ => lang.t("Something went wrong", "出错了"),
    };
    html(
        status,
        page(
            lang,
            title,
            signed,
            "",
            html! {
                section.card.refusal {
                    h1 { (title) }
                    p { (message) }
                    p { a href="/console" { (lang.t("Back to the queue", "返回队列")) } }
                }
            },
        ),
    )
}

/// Text with byte ranges marked (`<mark>`), everything escaped. Ranges out of bounds or off a
/// character boundary are skipped; overlapping ones are merged.
pub fn highlight(text: &str, spans: &[(usize, usize)]) -> Markup {
    let mut spans: Vec<(usize, usize)> = spans
        .iter()
        .copied()
        .filter(|&(s, e)| {
            s < e && e <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(e)
        })
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut out = String::new();
    let mut at = 0;
    for (s, e) in merged {
        out.push_str(&escape(&text[at..s]));
        out.push_str("<mark>");
        out.push_str(&escape(&text[s..e]));
        out.push_str("</mark>");
        at = e;
    }
    out.push_str(&escape(&text[at..]));
    PreEscaped(out)
}

fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlight_escapes_and_marks_merged_spans() {
        let m = highlight("a <b> 我想死 c", &[(6, 15), (9, 12), (100, 200), (7, 8)]);
        assert_eq!(m.into_string(), "a &lt;b&gt; <mark>我想死</mark> c");
        assert_eq!(highlight("x", &[]).into_string(), "x");
    }
}
