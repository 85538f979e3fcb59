//! The queue at `/console`: every open and claimed case, gravest first (by what the findings
//! say), then longest waiting; the time since the person's last message; an SLA clock per case
//! (the smallest figure of the case's jurisdictions in `[console] sla_minutes_by_jurisdiction`,
//! else `[console] sla_minutes`: no shipped profile sets a number of minutes); filters by
//! state, jurisdiction, detector and assignee; search by user pseudonym or case id.
//!
//! Live: `/console/events` (server-sent events, same filters) sends the rendered rows whenever
//! they change: at once after a staff action in this process, otherwise within two seconds
//! (the gateway opens cases without knowing the console). The script swaps the rows in, keeps
//! the clocks ticking and rings (sound and desktop notification) for a new imminent case.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use tutela_store::{Escalation, EscalationStatus};
use tutela_types::Timestamp;

use crate::Console;
use crate::auth::Signed;
use crate::i18n::Lang;
use crate::layout::{html, refusal};
use crate::perm::Perm;
use crate::signal::Signal;

/// `?state=open&jurisdiction=cn&detector=crisis&assignee=me&q=u-42`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    state: Option<String>,
    jurisdiction: Option<String>,
    detector: Option<String>,
    assignee: Option<String>,
    q: Option<String>,
}

impl Filters {
    fn query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("state", &self.state),
            ("jurisdiction", &self.jurisdiction),
            ("detector", &self.detector),
            ("assignee", &self.assignee),
            ("q", &self.q),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        parts.join("&")
    }
}

fn encode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// One row of the queue.
#[derive(Clone, Debug)]
pub struct Row {
    /// The case.
    pub case: Escalation,
    /// How grave.
    pub signal: Signal,
    /// The person's latest message.
    pub last_user_at: Timestamp,
    /// When a human should have taken it.
    pub due: Timestamp,
    /// Its time to a human, and where that comes from.
    pub sla: Sla,
}

/// A case's time to a human (its SLA) and where the figure comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sla {
    /// Minutes from the case opening to a person taking it.
    pub minutes: u32,
    /// The jurisdiction whose `[console] sla_minutes_by_jurisdiction` entry set it; `None` for
    /// the deployment's `[console] sla_minutes`.
    pub jurisdiction: Option<String>,
}

impl Sla {
    /// Where the figure comes from, for the page. No profile states a number of minutes to a
    /// human (the laws ask for a takeover, or a referral, without one: CN Art. 13, CA SB 243,
    /// OR SB 1546), so the figure is always the deployment's, and the page says so.
    pub fn source(&self, lang: Lang) -> String {
        match &self.jurisdiction {
            Some(j) => format!(
                "{} [console] sla_minutes_by_jurisdiction.{j} {}",
                lang.t("the deployment's setting", "部署配置"),
                lang.t(
                    "(no profile in force states a time to a human)",
                    "（现行法域规则配置均未规定转人工时限）"
                )
            ),
            None => format!(
                "{} [console] sla_minutes {}",
                lang.t("the deployment's setting", "部署配置"),
                lang.t(
                    "(default 5; no profile in force states a time to a human)",
                    "（默认 5 分钟；现行法域规则配置均未规定转人工时限）"
                )
            ),
        }
    }
}

/// The SLA of a case: the smallest figure among its jurisdictions in
/// `[console] sla_minutes_by_jurisdiction`, else the deployment's `[console] sla_minutes`.
pub fn sla(cs: &Console, case: &Escalation) -> Sla {
    let c = &cs.app.config.console;
    case.jurisdiction
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter_map(|j| {
            let j = j.trim();
            c.sla_minutes_by_jurisdiction.get(j).map(|m| (*m, j))
        })
        .min()
        .map_or(
            Sla {
                minutes: c.sla_minutes,
                jurisdiction: None,
            },
            |(minutes, j)| Sla {
                minutes,
                jurisdiction: Some(j.to_owned()),
            },
        )
}

/// The rows the filters select, sorted.
pub async fn rows(cs: &Console, signed: &Signed, f: &Filters) -> Result<Vec<Row>, String> {
    let b = &cs.app.records.backend;
    let statuses: &[EscalationStatus] = match f.state.as_deref() {
        Some("open") => &[EscalationStatus::Open],
        Some("claimed") => &[EscalationStatus::Claimed],
        _ => &[EscalationStatus::Open, EscalationStatus::Claimed],
    };
    let cases = b
        .list_escalations(statuses, 1000)
        .await
        .map_err(|e| e.to_string())?;
    let ids: Vec<i64> = cases.iter().map(|c| c.id).collect();
    let mut summaries: HashMap<i64, tutela_store::CaseSummary> = b
        .case_summaries(&ids)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let q = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let mut out = Vec::new();
    for case in cases {
        if let Some(j) = f.jurisdiction.as_deref().filter(|j| !j.is_empty())
            && !case
                .jurisdiction
                .as_deref()
                .unwrap_or("")
                .split(',')
                .any(|x| x == j)
        {
            continue;
        }
        if let Some(d) = f.detector.as_deref().filter(|d| !d.is_empty())
            && case.detector.as_deref() != Some(d)
        {
            continue;
        }
        match f.assignee.as_deref() {
            Some("me") if case.claimed_by.as_deref() != Some(signed.staff.username.as_str()) => {
                continue;
            }
            Some("none") if case.claimed_by.is_some() => continue,
            Some(a)
                if !matches!(a, "" | "me" | "none") && case.claimed_by.as_deref() != Some(a) =>
            {
                continue;
            }
            _ => {}
        }
        if let Some(q) = q
            && !(case.id.to_string() == q.trim_start_matches('#') || case.user_id.contains(q))
        {
            continue;
        }
        let summary = summaries.remove(&case.id);
        let findings = summary
            .as_ref()
            .map(|s| s.findings.as_slice())
            .unwrap_or(&[]);
        let signal = Signal::of_case(&case, findings);
        let last_user_at = summary
            .as_ref()
            .and_then(|s| s.last_user_at)
            .unwrap_or(case.created_at)
            .max(case.created_at);
        let sla = sla(cs, &case);
        let due = Timestamp::from_unix(case.created_at.unix() + i64::from(sla.minutes) * 60);
        out.push(Row {
            case,
            signal,
            last_user_at,
            due,
            sla,
        });
    }
    out.sort_by(|a, b| {
        b.signal
            .cmp(&a.signal)
            .then(a.case.created_at.cmp(&b.case.created_at))
            .then(a.case.id.cmp(&b.case.id))
    });
    Ok(out)
}

fn detector_name(lang: Lang, d: &str) -> String {
    match d {
        "crisis" => lang.t("crisis", "危机").to_owned(),
        "third_party" => lang.t("third party", "第三方").to_owned(),
        "distress" => lang.t("distress", "困扰").to_owned(),
        other => other.to_owned(),
    }
}

/// The rows as HTML (the page's table body, and each event).
pub fn rows_html(lang: Lang, now: Timestamp, rows: &[Row]) -> Markup {
    html! {
        @if rows.is_empty() {
            li.empty { (lang.t("No open cases.", "没有待处理的案例。")) }
        }
        @for r in rows {
            @let c = &r.case;
            @let overdue = c.claimed_at.is_none() && now >= r.due;
            li class={ "case " (r.signal.as_str()) } data-case=(c.id) data-signal=(r.signal.as_str()) {
                a.row href={ "/console/cases/" (c.id) } {
                    span class={ "badge " (r.signal.as_str()) } { (r.signal.label(lang)) }
                    span.id { "#" (c.id) }
                    span.user title=(lang.t("user pseudonym", "用户假名")) { (c.user_id) }
                    span.juris { (c.jurisdiction.as_deref().unwrap_or("—")) }
                    span.det { (detector_name(lang, c.detector.as_deref().unwrap_or("—"))) }
                    span.state {
                        @match (c.status, c.claimed_by.as_deref()) {
                            (EscalationStatus::Claimed, Some(by)) => { (lang.t("held by ", "处理人：")) strong { (by) } }
                            _ => { (lang.t("waiting", "等待接手")) }
                        }
                    }
                    span.age {
                        (lang.t("last message ", "最后消息 "))
                        time data-since=(r.last_user_at.unix()) { (lang.ago(now.secs_since(r.last_user_at))) }
                        (lang.t(" ago", "前"))
                    }
                    @if let Some(t) = c.claimed_at {
                        span.sla.met { (lang.t("taken after ", "接手用时 ")) (lang.ago(t.secs_since(c.created_at))) }
                    } @else {
                        span class={ "sla" @if overdue { " overdue" } } data-due=(r.due.unix())
                            title={ (r.sla.minutes) (lang.t(" min to a human: ", " 分钟内转人工：")) (r.sla.source(lang)) } {
                            @if overdue {
                                (lang.t("SLA overdue by ", "已超时 ")) (lang.ago(now.secs_since(r.due)))
                            } @else {
                                (lang.t("SLA ", "时限剩余 ")) (lang.ago(r.due.secs_since(now)))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /console`.
pub async fn page(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Query(f): Query<Filters>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(r) = signed.require(lang, Perm::ViewCases) {
        return r;
    }
    let now = cs.app.clock.now();
    let rows = match rows(&cs, &signed, &f).await {
        Ok(r) => r,
        Err(e) => return refusal(lang, Some(&signed), StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    let jurisdictions = {
        let mut j: Vec<String> = cs.app.config.jurisdictions.clone();
        j.sort();
        j
    };
    // A supervisor sees who holds what: every colleague who can take cases is a filter.
    let colleagues: Vec<String> = if signed.can(Perm::Supervise) {
        cs.app
            .records
            .backend
            .list_staff()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.is_active() && crate::perm::allows(s.role, Perm::ActOnCases))
            .map(|s| s.username)
            .collect()
    } else {
        Vec::new()
    };
    let sel = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    let body = html! {
        section.queue {
            header.bar {
                h1 { (lang.t("Open cases", "待处理案例")) " " span.count id="count" { (rows.len()) } }
                span.live id="live" data-on=(lang.t("live", "实时")) data-off=(lang.t("reconnecting…", "重新连接中…")) { (lang.t("connecting…", "连接中…")) }
                button.small id="alerts" type="button" data-on=(lang.t("Alerts on", "提醒已开启")) { (lang.t("Turn on alerts", "开启提醒")) }
            }
            form.filters method="get" action="/console" {
                label { (lang.t("State", "状态"))
                    select name="state" {
                        option value="" { (lang.t("open and claimed", "待处理和处理中")) }
                        option value="open" selected[sel(&f.state, "open")] { (lang.t("waiting", "等待接手")) }
                        option value="claimed" selected[sel(&f.state, "claimed")] { (lang.t("claimed", "处理中")) }
                    }
                }
                label { (lang.t("Jurisdiction", "法域"))
                    select name="jurisdiction" {
                        option value="" { (lang.t("all", "全部")) }
                        @for j in &jurisdictions { option value=(j) selected[sel(&f.jurisdiction, j)] { (j) } }
                    }
                }
                label { (lang.t("Detector", "检测器"))
                    select name="detector" {
                        option value="" { (lang.t("all", "全部")) }
                        @for d in ["crisis", "third_party", "distress"] {
                            option value=(d) selected[sel(&f.detector, d)] { (detector_name(lang, d)) }
                        }
                    }
                }
                label { (lang.t("Assignee", "处理人"))
                    select name="assignee" {
                        option value="" { (lang.t("anyone", "任何人")) }
                        option value="me" selected[sel(&f.assignee, "me")] { (lang.t("me", "我")) }
                        option value="none" selected[sel(&f.assignee, "none")] { (lang.t("nobody", "无人")) }
                        @for c in &colleagues { option value=(c) selected[sel(&f.assignee, c)] { (c) } }
                    }
                }
                label.grow { (lang.t("Search", "搜索"))
                    input type="search" name="q" value=[f.q.as_deref()] placeholder=(lang.t("user pseudonym or case #", "用户假名或案例编号"));
                }
                button type="submit" { (lang.t("Apply", "应用")) }
            }
            ol.cases id="queue" data-events={ "/console/events?" (f.query()) } data-now=(now.unix())
                data-new-critical=(lang.t("New imminent case", "新的紧急案例"))
                data-ago=(lang.t(" ago", "前")) data-overdue=(lang.t("SLA overdue by ", "已超时 ")) data-left=(lang.t("SLA ", "时限剩余 "))
                data-lang=(if lang == Lang::Zh { "zh" } else { "en" }) {
                (rows_html(lang, now, &rows))
            }
        }
    };
    html(
        StatusCode::OK,
        crate::layout::page(lang, lang.t("Queue", "队列"), Some(&signed), "queue", body),
    )
}

/// `GET /console/events`: the rows, again whenever they change.
pub async fn events(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Query(f): Query<Filters>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(r) = signed.require(lang, Perm::ViewCases) {
        return r;
    }
    let stream = futures_util::stream::unfold(
        (cs, signed, f, None::<String>, true),
        move |(cs, signed, f, last, first)| async move {
            let mut first = first;
            loop {
                if !first {
                    let bell = cs.app.bell().notified();
                    let _ = tokio::time::timeout(Duration::from_secs(2), bell).await;
                }
                first = false;
                // A stream open in a tab must not outlive the session it was opened with.
                if !signed.still_live(&cs).await {
                    return None;
                }
                let now = cs.app.clock.now();
                let rows = match rows(&cs, &signed, &f).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "console: cannot read the queue");
                        continue;
                    }
                };
                // What the people see changes with the rows, not with the clock (the script
                // keeps the clocks ticking).
                let key: String = rows
                    .iter()
                    .map(|r| {
                        format!(
                            "{}:{:?}:{:?}:{}:{};",
                            r.case.id,
                            r.signal,
                            r.case.claimed_by,
                            r.last_user_at.unix(),
                            r.case.status.as_str()
                        )
                    })
                    .collect();
                if last.as_deref() == Some(key.as_str()) {
                    continue;
                }
                let data = serde_json::json!({
                    "html": rows_html(lang, now, &rows).into_string(),
                    "count": rows.len(),
                    "now": now.unix(),
                    "imminent": rows.iter().filter(|r| r.signal == Signal::Imminent && r.case.status == EscalationStatus::Open).map(|r| r.case.id).collect::<Vec<_>>(),
                });
                let event = Event::default().event("queue").data(data.to_string());
                return Some((
                    Ok::<Event, Infallible>(event),
                    (cs, signed, f, Some(key), false),
                ));
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_into_the_events_url() {
        let f = Filters {
            state: Some("open".into()),
            q: Some("u 42".into()),
            ..Filters::default()
        };
        assert_eq!(f.query(), "state=open&q=u%2042");
        assert_eq!(Filters::default().query(), "");
    }
}
