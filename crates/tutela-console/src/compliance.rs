//! The compliance pages (`/console/compliance`): usage against the thresholds with six months'
//! trend; the reports for a chosen month or year, rendered in the browser and downloadable
//! (HTML, Markdown, JSON, PDF); obligation records with what each needs, and closing
//! them with a note; the complaints queue by due time, answered with an outcome; audit verify
//! with the chain head to keep. For the compliance and admin roles; every action in the audit
//! log with the staff id.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::json;
use tutela_profile::{ProfileSet, Registry};
use tutela_report::compile::{self, Options, Period};
use tutela_report::model::Metric;
use tutela_report::render::thousands;
use tutela_report::{Format, Lang as ReportLang, Report, ThresholdState, UsageReport};
use tutela_store::{AuditKind, ComplaintStatus};

use crate::Console;
use crate::auth::{Signed, audit_staff, redirect};
use crate::i18n::Lang;
use crate::layout::{html, page, refusal};

/// The published complaint time limit (the gateway's, CN Art. 21).
const COMPLAINT_LIMIT_HOURS: u64 = tutela_gateway::compliance::COMPLAINT_LIMIT_HOURS;

/// Report kinds with their names for people.
const REPORTS: [(&str, &str, &str); 6] = [
    ("usage", "Usage against the thresholds", "用量与阈值"),
    (
        "assessment",
        "CN security assessment",
        "安全评估报告（中国）",
    ),
    ("transparency", "Transparency report", "透明度报告"),
    (
        "sb243",
        "California SB 243 annual report",
        "加州 SB 243 年度报告",
    ),
    (
        "referrals-wa",
        "Washington HB 2225 public referral count",
        "华盛顿州 HB 2225 危机转介公开统计",
    ),
    (
        "referrals-or",
        "Oregon SB 1546 public referral report",
        "俄勒冈州 SB 1546 危机转介公开报告",
    ),
];

fn deployment_set(cs: &Console) -> Result<ProfileSet, String> {
    static BUILTIN: std::sync::OnceLock<Result<Registry, String>> = std::sync::OnceLock::new();
    let reg = BUILTIN
        .get_or_init(|| Registry::builtin().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)?;
    let mut names = cs.app.config.jurisdictions.clone();
    if cs.app.config.baseline {
        names.push("baseline".into());
    }
    reg.select(&names).map_err(|e| e.to_string())
}

/// Which period the reports cover: `?month=2026-10` for the monthly reports (usage,
/// assessment, transparency; default: the current month), `?year=2025` for the yearly ones
/// (SB 243 and the referral pages; default: the last calendar year).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodQuery {
    #[serde(default)]
    month: Option<String>,
    #[serde(default)]
    year: Option<String>,
}

/// The report time zone: UTC, as `tutela report`'s default (one default for the CLI, the API
/// and the console).
const TZ: i32 = 0;

impl PeriodQuery {
    /// `yyyymm` of the chosen month; `None` when given and not a month.
    fn month(&self, now: tutela_types::Timestamp) -> Option<u32> {
        match self
            .month
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            None => Some(tutela_store::month_of(now, TZ)),
            Some(m) => compile::parse_month(m),
        }
    }

    /// The chosen year; `None` when given and not a year.
    fn year(&self, now: tutela_types::Timestamp) -> Option<i32> {
        let this: i32 = compile::day_string(now.local_date(TZ))[..4]
            .parse()
            .unwrap_or(2026);
        match self
            .year
            .as_deref()
            .map(str::trim)
            .filter(|y| !y.is_empty())
        {
            None => Some(this - 1),
            Some(y) => y.parse().ok().filter(|y| (2000..=this).contains(y)),
        }
    }

    /// The query string of the chosen period for a report of `kind`.
    fn for_report(&self, kind: &str, now: tutela_types::Timestamp) -> String {
        if YEARLY.contains(&kind) {
            format!("year={}", self.year(now).unwrap_or(2000))
        } else {
            let m = self.month(now).unwrap_or(197001);
            format!("month={:04}-{:02}", m / 100, m % 100)
        }
    }
}

/// The reports that cover a calendar year.
const YEARLY: [&str; 3] = ["sb243", "referrals-wa", "referrals-or"];

/// `GET /console/compliance`.
pub async fn overview(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Query(pq): Query<PeriodQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    let b = &cs.app.records.backend;
    let now = cs.app.clock.now();
    let (Some(month), Some(year)) = (pq.month(now), pq.year(now)) else {
        return bad_period(lang, &signed);
    };
    let usage = usage_trend(&cs, month).await;
    let obligations = match b.list_obligations(false).await {
        Ok(o) => o,
        Err(e) => {
            return refusal(
                lang,
                Some(&signed),
                StatusCode::SERVICE_UNAVAILABLE,
                &e.to_string(),
            );
        }
    };
    let complaints = match b.list_complaints(Some(ComplaintStatus::Open), 500).await {
        Ok(c) => c,
        Err(e) => {
            return refusal(
                lang,
                Some(&signed),
                StatusCode::SERVICE_UNAVAILABLE,
                &e.to_string(),
            );
        }
    };
    let body = html! {
        section.card.compliance {
            h1 { (lang.t("Compliance", "合规")) }
            (usage_section(lang, &usage))
            h2 { (lang.t("Reports", "报告")) }
            form.filters.period method="get" action="/console/compliance" {
                label { (lang.t("Month (usage, assessment, transparency)", "月份（用量、评估、透明度）"))
                    input type="month" name="month" value=(format!("{:04}-{:02}", month / 100, month % 100)); }
                label { (lang.t("Year (SB 243, referral pages)", "年份（SB 243、转介公开页）"))
                    input type="number" name="year" min="2000" value=(year); }
                button.small type="submit" { (lang.t("Show", "显示")) }
            }
            ul.reports {
                @for (kind, en, zh) in REPORTS {
                    @let period = pq.for_report(kind, now);
                    li {
                        a href={ "/console/reports/" (kind) "?format=html&" (period) } { (lang.t(en, zh)) }
                        " · " span.hint { (period.split_once('=').map_or("", |p| p.1)) }
                        @if kind == "assessment" {
                            // In the language of its regulator, with the English version.
                            @for (code, name) in [("zh", "中文"), ("en", "English")] {
                                " · " a href={ "/console/reports/" (kind) "?format=html&" (period) "&lang=" (code) } lang=(code) { (name) }
                                " (" (lang.t("download", "下载")) ": "
                                @for f in ["html", "md", "pdf"] {
                                    a href={ "/console/reports/" (kind) "?format=" (f) "&download=1&" (period) "&lang=" (code) } download { (f) } " "
                                }
                                ")"
                            }
                            " · " a href={ "/console/reports/" (kind) "?format=json&download=1&" (period) } download { "json" }
                        } @else {
                            " · " (lang.t("download", "下载")) ": "
                            @for f in ["html", "md", "json", "pdf"] {
                                a href={ "/console/reports/" (kind) "?format=" (f) "&download=1&" (period) } download { (f) } " "
                            }
                        }
                    }
                }
            }
            p.hint { (lang.t("Monthly reports cover the chosen month; SB 243 and the referral pages the chosen calendar year. Times in UTC.", "月度报告为所选月份；SB 243 与转介公开页为所选自然年。时间为 UTC。")) }

            h2 { (lang.t("Audit log", "审计日志")) }
            p { a href="/console/audit" { (lang.t("Verify the hash chain", "验证哈希链")) } }

            h2 { (lang.t("Complaints waiting for an answer", "待答复的投诉")) " " span.count { (complaints.len()) } }
            p.hint { (lang.t("Due times: the published handling time limit, ", "截止时间：公布的处理时限 ")) (COMPLAINT_LIMIT_HOURS) (lang.t(" h (tutela's published figure; the laws in the profiles ask the provider to set and publish one, none states a number).", " 小时（tutela 公布的时限；各法域规则配置均要求服务提供者自行设定并公布，未规定具体数值）。")) }
            @if complaints.is_empty() { p.empty { "—" } }
            ol.cases {
                @for c in &complaints {
                    @let overdue = now >= c.due_at;
                    li.complaint {
                        div {
                            strong { "#" (c.id) } " · " (c.category) " · "
                            span class=[overdue.then_some("overdue")] {
                                @if overdue { (lang.t("overdue since ", "已逾期，截止于 ")) } @else { (lang.t("due ", "截止 ")) }
                                time { (c.due_at) }
                            }
                            @if let Some(u) = &c.user_id { " · " span.user { (u) } }
                        }
                        @if let Some(text) = &c.body { p.body { (text) } }
                        form.inline-form method="post" action={ "/console/complaints/" (c.id) "/resolve" } {
                            input type="hidden" name="csrf" value=(signed.csrf);
                            select name="outcome" required {
                                @for o in ["answered", "upheld", "overturned", "rejected"] { option value=(o) { (o) } }
                            }
                            button.small type="submit" { (lang.t("Answer", "答复")) }
                        }
                    }
                }
            }

            h2 { (lang.t("Obligation records", "义务记录")) }
            form.declare method="post" action="/console/obligations" {
                input type="hidden" name="csrf" value=(signed.csrf);
                label { (lang.t("Declare a trigger (CN Art. 22): opens an assessment record", "申报触发事项（第二十二条）：将新建评估记录"))
                    select name="trigger" required {
                        option value="feature_launch" { (lang.t("new feature launched", "上线新功能")) }
                        option value="major_change" { (lang.t("major technical change", "重大技术变更")) }
                        option value="other" { (lang.t("other", "其他")) }
                    }
                }
                label { (lang.t("What happened (required)", "事项说明（必填）"))
                    input type="text" name="description" required maxlength="2000"; }
                button.small type="submit" { (lang.t("Declare", "申报")) }
            }
            @if obligations.is_empty() { p.empty { "—" } }
            ol.cases {
                @for o in &obligations {
                    li.obligation {
                        div { strong { "#" (o.id) } " · " (o.status) " · " (o.article.as_deref().unwrap_or("")) " · " time { (o.opened_at) } }
                        p { (o.description) }
                        @if !o.due_items.is_empty() {
                            ul { @for item in &o.due_items { li { (item) } } }
                        }
                        @if let Some(n) = &o.note { p.note { (n) } }
                        @if o.status == "open" {
                            form method="post" action={ "/console/obligations/" (o.id) "/close" } {
                                input type="hidden" name="csrf" value=(signed.csrf);
                                label { (lang.t("How it was discharged (required)", "履行情况（必填）"))
                                    input type="text" name="note" required maxlength="2000"; }
                                button.small type="submit" { (lang.t("Close", "关闭")) }
                            }
                        }
                    }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        page(
            lang,
            lang.t("Compliance", "合规"),
            Some(&signed),
            "compliance",
            body,
        ),
    )
}

/// Usage against the thresholds over the six months up to `month`: the usage report's figures
/// (thresholds as of the month's end, monthly active users per month), or why they are missing.
async fn usage_trend(cs: &Console, month: u32) -> Result<UsageReport, String> {
    let set = deployment_set(cs)?;
    let (y, m) = (month / 100, month % 100);
    let first = if m > 5 {
        month - 5
    } else {
        (y - 1) * 100 + m + 7
    };
    let period = Period {
        from: Period::month(first).from,
        to: Period::month(month).to,
    };
    let options = Options {
        utc_offset_minutes: TZ,
        deployment: cs.app.config.provider_name.clone(),
        registration: tutela_store::Registration::default(),
        complaint_time_limit_hours: COMPLAINT_LIMIT_HOURS,
        generated_at: cs.app.clock.now(),
    };
    compile::usage(&*cs.app.records.backend, &set, period, &options)
        .await
        .map_err(|e| e.to_string())
}

fn state_label(lang: Lang, s: ThresholdState) -> &'static str {
    match s {
        ThresholdState::Ok => lang.t("below the warning level", "低于预警线"),
        ThresholdState::Warning => lang.t("warning: near the threshold", "预警：接近阈值"),
        ThresholdState::Crossed => lang.t("crossed: the duty is open", "已达到：义务已触发"),
    }
}

/// The usage section of the compliance page: each threshold as a meter (value, warning level,
/// threshold), then monthly active users month by month.
fn usage_section(lang: Lang, usage: &Result<UsageReport, String>) -> maud::Markup {
    let u = match usage {
        Ok(u) => u,
        Err(e) => {
            return html! {
                h2 { (lang.t("Usage against the thresholds", "用量与阈值")) }
                p.error { (e) }
            };
        }
    };
    let most = u
        .monthly_active
        .iter()
        .map(|m| m.total)
        .max()
        .unwrap_or(0)
        .max(1);
    html! {
        h2 { (lang.t("Usage against the thresholds", "用量与阈值")) }
        @if u.thresholds.is_empty() {
            p.empty { (lang.t("No profile in force sets a usage threshold.", "现行规则均未设定用量阈值。")) }
        }
        ul.thresholds {
            @for t in &u.thresholds {
                @let metric = match t.metric {
                    Metric::RegisteredUsers => lang.t("Registered users", "注册用户"),
                    Metric::MonthlyActiveUsers => lang.t("Monthly active users", "月活跃用户"),
                };
                li class={ "threshold " (match t.state { ThresholdState::Ok => "below", ThresholdState::Warning => "near", ThresholdState::Crossed => "crossed" }) } {
                    div {
                        strong { (metric) } " · "
                        span.figure { (thousands(t.value)) " / " (thousands(t.threshold)) }
                        " (" (format!("{:.1} %", t.ratio * 100.0)) ") · "
                        span.state { (state_label(lang, t.state)) }
                    }
                    meter min="0" max=(t.threshold) low=(((t.threshold as f64) * t.warn_ratio) as u64) high=(t.threshold) optimum="0" value=(t.value.min(t.threshold)) {
                        (thousands(t.value))
                    }
                    p.hint { (t.profile) " · " (t.article) }
                }
            }
        }
        p { (lang.t("Registered users: ", "注册用户：")) strong { (thousands(u.registered_users)) } }
        table.trend {
            caption { (lang.t("Monthly active users, last six months", "近六个月月活跃用户")) }
            tbody {
                @for m in &u.monthly_active {
                    tr {
                        th scope="row" { (m.month) }
                        td.meter { meter min="0" max=(most) value=(m.total) { (thousands(m.total)) } }
                        td.num { (thousands(m.total)) }
                    }
                }
            }
        }
    }
}

/// `?format=html|md|json|pdf&download=1&month=2026-10` (or `&year=2025`), `&lang=zh|en` for
/// a report written in both (the CN assessment; default: the language of its regulator).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    format: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    download: Option<u8>,
    #[serde(default)]
    month: Option<String>,
    #[serde(default)]
    year: Option<String>,
}

/// `GET /console/reports/{kind}`: a report in the browser, or as a file.
pub async fn report(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(kind): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    let fail = |e: String| refusal(lang, Some(&signed), StatusCode::SERVICE_UNAVAILABLE, &e);
    let set = match deployment_set(&cs) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let now = cs.app.clock.now();
    let pq = PeriodQuery {
        month: q.month.clone(),
        year: q.year.clone(),
    };
    let (Some(month), Some(year)) = (pq.month(now), pq.year(now)) else {
        return bad_period(lang, &signed);
    };
    let options = Options {
        utc_offset_minutes: TZ,
        deployment: cs.app.config.provider_name.clone(),
        registration: tutela_store::Registration::default(),
        complaint_time_limit_hours: COMPLAINT_LIMIT_HOURS,
        generated_at: now,
    };
    let period = Period::month(month);
    let covers = if YEARLY.contains(&kind.as_str()) {
        year.to_string()
    } else {
        format!("{:04}-{:02}", month / 100, month % 100)
    };
    let b = &*cs.app.records.backend;
    let report = match kind.as_str() {
        "usage" => compile::usage(b, &set, period, &options)
            .await
            .map(Report::Usage),
        "assessment" => compile::assessment(b, &set, period, &options)
            .await
            .map(|r| Report::Assessment(Box::new(r))),
        "transparency" => compile::transparency(b, &set, period, &options, Vec::new())
            .await
            .map(Report::Transparency),
        "sb243" | "referrals-wa" | "referrals-or" => match kind.as_str() {
            "referrals-wa" => compile::referrals(b, &set, "us-wa", year, &options)
                .await
                .map(Report::Referrals),
            "referrals-or" => compile::referrals(b, &set, "us-or", year, &options)
                .await
                .map(Report::Referrals),
            _ => compile::sb243(b, &set, year, &options)
                .await
                .map(Report::Sb243),
        },
        _ => return refusal(lang, Some(&signed), StatusCode::NOT_FOUND, &kind),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let (format, mime, ext) = match q.format.as_deref().unwrap_or("html") {
        "html" => (Some(Format::Html), "text/html; charset=utf-8", "html"),
        "md" => (Some(Format::Markdown), "text/markdown; charset=utf-8", "md"),
        "json" => (Some(Format::Json), "application/json", "json"),
        "pdf" => (None, "application/pdf", "pdf"),
        _ => {
            return refusal(
                lang,
                Some(&signed),
                StatusCode::BAD_REQUEST,
                "html, md, json, pdf",
            );
        }
    };
    let langs = report.languages();
    let report_lang = match q.lang.as_deref().map(ReportLang::parse) {
        None => langs[0],
        Some(Some(l)) if langs.contains(&l) => l,
        Some(_) => {
            let ok: Vec<&str> = langs.iter().map(|l| l.as_str()).collect();
            return refusal(lang, Some(&signed), StatusCode::BAD_REQUEST, &ok.join(", "));
        }
    };
    // The file name says the language where the report has more than one.
    let suffix = if langs.len() > 1 && format != Some(Format::Json) {
        format!("-{}", report_lang.as_str())
    } else {
        String::new()
    };
    audit_staff(
        &cs,
        now,
        AuditKind::Admin,
        None,
        Some(&signed.staff),
        json!({"event": "report_viewed", "report": kind, "format": ext, "period": covers, "lang": report_lang.as_str()}),
    )
    .await;
    let mut r = match format {
        Some(f) => report.render_in(f, report_lang).into_response(),
        None => report.pdf_in(report_lang).into_response(),
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    // The report's HTML is self-contained: its own inline styles and SVG, never a script.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A PDF is always a download: a viewer plugin would meet the report's CSP.
    if (q.download == Some(1) || format.is_none())
        && let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"tutela-{kind}-{covers}{suffix}.{ext}\""
        ))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /console/audit`: walks the chain; shows the head to keep elsewhere.
pub async fn audit(State(cs): State<Console>, headers: HeaderMap, signed: Signed) -> Response {
    let lang = Lang::of(&headers);
    let v = match tutela_store::audit::verify(&*cs.app.records.backend, None).await {
        Ok(v) => v,
        Err(e) => {
            return refusal(
                lang,
                Some(&signed),
                StatusCode::SERVICE_UNAVAILABLE,
                &e.to_string(),
            );
        }
    };
    let now = cs.app.clock.now();
    audit_staff(
        &cs,
        now,
        AuditKind::Admin,
        None,
        Some(&signed.staff),
        json!({"event": "audit_verified", "intact": v.is_intact()}),
    )
    .await;
    let body = html! {
        section.card {
            h1 { (lang.t("Audit log", "审计日志")) }
            @if v.is_intact() {
                p.ok { (lang.t("The chain verifies: ", "哈希链验证通过：")) (v.records) (lang.t(" records.", " 条记录。")) }
            } @else {
                p.error { (lang.t("The chain does not verify: ", "哈希链验证失败：")) (json!(v.tamper)) }
            }
            @if let Some(head) = &v.head {
                p { (lang.t("Head to keep elsewhere (pass it as --head to `tutela audit verify` later):", "请在别处保存此链头（之后作为 --head 传给 `tutela audit verify`）：")) }
                pre.help { code { (head) } }
            }
            p { a href="/console/compliance" { "← " (lang.t("Compliance", "合规")) } }
        }
    };
    html(
        StatusCode::OK,
        page(
            lang,
            lang.t("Audit log", "审计日志"),
            Some(&signed),
            "compliance",
            body,
        ),
    )
}

/// The complaint answer form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerForm {
    #[serde(rename = "csrf")]
    _csrf: String,
    #[serde(default)]
    outcome: String,
}

/// `POST /console/complaints/{id}/resolve`.
pub async fn resolve_complaint(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<i64>,
    Form(f): Form<AnswerForm>,
) -> Response {
    let lang = Lang::of(&headers);
    if !["answered", "upheld", "overturned", "rejected"].contains(&f.outcome.as_str()) {
        return refusal(
            lang,
            Some(&signed),
            StatusCode::BAD_REQUEST,
            lang.t("Choose an outcome.", "请选择结果。"),
        );
    }
    let now = cs.app.clock.now();
    match cs
        .app
        .records
        .backend
        .resolve_complaint(id, &f.outcome, now)
        .await
    {
        Ok(c) => {
            audit_staff(
                &cs,
                now,
                AuditKind::Admin,
                c.user_id.as_deref(),
                Some(&signed.staff),
                json!({"event": "complaint_answered", "complaint": id, "outcome": f.outcome}),
            )
            .await;
            redirect("/console/compliance")
        }
        Err(e) => refusal(lang, Some(&signed), StatusCode::CONFLICT, &e.to_string()),
    }
}

/// The obligation closing form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseForm {
    #[serde(rename = "csrf")]
    _csrf: String,
    #[serde(default)]
    note: String,
}

/// `POST /console/obligations/{id}/close`.
pub async fn close_obligation(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<i64>,
    Form(f): Form<CloseForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let note = f.note.trim();
    if note.is_empty() {
        return refusal(
            lang,
            Some(&signed),
            StatusCode::BAD_REQUEST,
            lang.t("Say how it was discharged.", "请说明履行情况。"),
        );
    }
    let now = cs.app.clock.now();
    match cs.app.records.backend.close_obligation(id, note, now).await {
        Ok(_) => {
            audit_staff(
                &cs,
                now,
                AuditKind::Admin,
                None,
                Some(&signed.staff),
                json!({"event": "obligation_closed", "obligation": id}),
            )
            .await;
            redirect("/console/compliance")
        }
        Err(e) => refusal(lang, Some(&signed), StatusCode::CONFLICT, &e.to_string()),
    }
}

/// The declaration form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclareForm {
    #[serde(rename = "csrf")]
    _csrf: String,
    #[serde(default)]
    trigger: String,
    #[serde(default)]
    description: String,
}

/// `POST /console/obligations`: declares a trigger (the gateway's `declare_trigger`: the same
/// record and webhook as the admin API).
pub async fn declare(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Form(f): Form<DeclareForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let description = f.description.trim();
    if description.is_empty() {
        return refusal(
            lang,
            Some(&signed),
            StatusCode::BAD_REQUEST,
            lang.t("Say what happened.", "请说明事项。"),
        );
    }
    match tutela_gateway::compliance::declare_trigger(&cs.app, &f.trigger, description).await {
        Ok(record) => {
            let now = cs.app.clock.now();
            audit_staff(&cs, now, AuditKind::Admin, None, Some(&signed.staff), json!({"event": "obligation_declared", "obligation": record.id, "trigger": f.trigger})).await;
            redirect("/console/compliance")
        }
        Err(e) => refusal(lang, Some(&signed), StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

/// The answer to a report period that does not parse (the compliance page and the report
/// download share it).
fn bad_period(lang: Lang, signed: &Signed) -> Response {
    refusal(
        lang,
        Some(signed),
        StatusCode::BAD_REQUEST,
        lang.t(
            "Choose a month such as 2026-10 and a year such as 2025.",
            "请选择月份（如 2026-10）和年份（如 2025）。",
        ),
    )
}
