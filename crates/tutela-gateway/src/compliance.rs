//! The compliance half of the admin API: usage against the thresholds (console-ready JSON, with
//! records opened and a webhook on a warning or crossing), obligation records and declared
//! triggers, reports, complaints (with a public intake), and data export and deletion.
//! Handlers are thin: check the token, call the report compiler or the store, map the result.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tutela_profile::{ProfileSet, Registry};
use tutela_report::compile::{self, Options, Period, parse_day};
use tutela_report::{Format, Lang, Report};
use tutela_store::{ComplaintStatus, NewComplaint, NewObligation, ObligationKind, Registration};
use tutela_types::LocalDate;

use crate::auth::authorize;
use crate::error::ApiError;
use crate::state::AppState;

/// The published complaint handling time limit (CN Art. 21): answers are due within it.
pub const COMPLAINT_LIMIT_HOURS: u64 = 72;

fn compile_err(e: compile::CompileError) -> ApiError {
    match e {
        compile::CompileError::Store(s) => s.into(),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// The deployment's profiles as one set (reports cover every jurisdiction it serves).
fn deployment_set(st: &AppState) -> Result<ProfileSet, ApiError> {
    // The built-in profiles are compile-time data: parse and validate them once per process.
    static BUILTIN: std::sync::OnceLock<Result<Registry, String>> = std::sync::OnceLock::new();
    let reg = BUILTIN
        .get_or_init(|| Registry::builtin().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ApiError::Internal(e.clone()))?;
    let mut names = st.config.jurisdictions.clone();
    if st.config.baseline {
        names.push("baseline".into());
    }
    reg.select(&names)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// `?month=2026-10&tz_offset=480&registration=first_seen|admin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageQuery {
    month: Option<String>,
    tz_offset: Option<i32>,
    registration: Option<Registration>,
}

fn parse_month(s: &str) -> Result<u32, ApiError> {
    compile::parse_month(s)
        .ok_or_else(|| ApiError::BadRequest(format!("`{s}` is not a month such as `2026-10`")))
}

/// `GET /admin/usage`: registered users and monthly active users against the thresholds; opens
/// a record (once) for each warning or crossing and posts it to the deployment's webhook.
pub(crate) async fn usage(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<UsageQuery>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let set = deployment_set(&st)?;
    let now = st.clock.now();
    let month = q.month.as_deref().map(parse_month).transpose()?;
    let tz = q.tz_offset.unwrap_or(0);
    let (statuses, opened) = compile::check_thresholds(
        &*st.records.backend,
        &set,
        q.registration.unwrap_or_default(),
        tz,
        now,
        month,
    )
    .await
    .map_err(compile_err)?;
    for record in &opened {
        notify_webhook(
            &st,
            json!({"event": "obligation_opened", "obligation": record}),
        );
    }
    Ok(Json(json!({
        "at": now.to_string(),
        "month": month.unwrap_or_else(|| tutela_store::month_of(now, tz)),
        "thresholds": statuses,
        "opened": opened,
    }))
    .into_response())
}

/// How often the gateway counts users against the thresholds on its own: often enough that a
/// compliance officer hears of a 90 % warning the day it happens, rarely enough that counting a
/// million users (about 2 s) never matters.
pub(crate) const THRESHOLD_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Runs until the process ends: every [`THRESHOLD_CHECK_EVERY`], counts registered users and
/// this month's active users (UTC months, first-seen registration; `/admin/usage` takes other
/// choices), opens a record for each new warning or crossing and posts it to the webhook.
pub(crate) async fn watch_thresholds(st: AppState) {
    loop {
        match deployment_set(&st) {
            Ok(set) => {
                let now = st.clock.now();
                match compile::check_thresholds(
                    &*st.records.backend,
                    &set,
                    Registration::FirstSeen,
                    0,
                    now,
                    None,
                )
                .await
                {
                    Ok((_, opened)) => {
                        for record in opened {
                            tracing::warn!(
                                target: "tutela::compliance",
                                "obligation opened: {}",
                                record.description
                            );
                            notify_webhook(
                                &st,
                                json!({"event": "obligation_opened", "obligation": record}),
                            );
                        }
                    }
                    Err(e) => {
                        tracing::error!(target: "tutela::compliance", "threshold check failed: {e}")
                    }
                }
            }
            Err(e) => tracing::error!(target: "tutela::compliance", "threshold check: {e}"),
        }
        tokio::time::sleep(THRESHOLD_CHECK_EVERY).await;
    }
}

/// Posts an event to the deployment's webhook, if one is configured, with a few retries; never
/// holds up the request.
fn notify_webhook(st: &AppState, event: serde_json::Value) {
    let Some(url) = st.config.webhook_url.clone() else {
        return;
    };
    let attempts = st.config.notify_max_attempts.max(1);
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for attempt in 0..attempts {
            let sent = client
                .post(&url)
                .json(&event)
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if sent {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500 << attempt.min(6))).await;
        }
        tracing::warn!(target: "tutela::compliance", "obligation webhook not delivered");
    });
}

/// `?all=true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObligationQuery {
    all: Option<bool>,
}

/// `GET /admin/obligations`.
pub(crate) async fn list_obligations(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ObligationQuery>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let list = st
        .records
        .backend
        .list_obligations(!q.all.unwrap_or(false))
        .await?;
    Ok(Json(json!({"obligations": list})).into_response())
}

/// Body of `POST /admin/obligations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Declare {
    /// `feature_launch`, `major_change` or `other`.
    trigger: String,
    /// What happened.
    description: String,
}

/// `POST /admin/obligations`: declares a trigger that opens an assessment record.
pub(crate) async fn declare(
    State(st): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Declare>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let record = declare_trigger(&st, &body.trigger, &body.description).await?;
    Ok(Json(json!({"obligation": record})).into_response())
}

/// Opens the assessment record of a declared trigger (`feature_launch`, `major_change`,
/// `other`; CN Art. 22) and posts it to the deployment's webhook: the admin API and the
/// operator console both declare through here.
pub async fn declare_trigger(
    st: &AppState,
    trigger: &str,
    description: &str,
) -> Result<tutela_store::ObligationRecord, ApiError> {
    let article = match trigger {
        "feature_launch" => "Art. 22(1)",
        "major_change" => "Art. 22(2)",
        "other" => "Art. 22(5)",
        other => {
            return Err(ApiError::BadRequest(format!(
                "`{other}` is not one of feature_launch, major_change, other"
            )));
        }
    };
    let now = st.clock.now();
    let (record, _) = st
        .records
        .backend
        .open_obligation(&NewObligation {
            key: format!("declared:{}:{}:{}", trigger, now.unix(), st.ids.next()),
            kind: ObligationKind::Declared,
            trigger: trigger.to_owned(),
            profile: Some("cn-anthropomorphic-2026".into()),
            obligation: Some("security-assessment".into()),
            article: Some(article.into()),
            value: None,
            threshold: None,
            description: format!("{}: {}", trigger.replace('_', " "), description),
            due_items: compile::assessment_items(),
            at: now,
        })
        .await?;
    notify_webhook(
        st,
        json!({"event": "obligation_opened", "obligation": record}),
    );
    Ok(record)
}

/// Body of `POST /admin/obligations/{id}/close`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Close {
    /// How it was discharged.
    note: String,
}

/// `POST /admin/obligations/{id}/close`.
pub(crate) async fn close(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<Close>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let record = st
        .records
        .backend
        .close_obligation(id, &body.note, st.clock.now())
        .await?;
    Ok(Json(json!({"obligation": record})).into_response())
}

/// `?from=2026-10-01&to=2026-10-31&format=html|md|json|pdf&lang=zh|en&tz_offset=480&year=2026`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    lang: Option<String>,
    tz_offset: Option<i32>,
    year: Option<i32>,
    registration: Option<Registration>,
}

fn day(s: &str) -> Result<LocalDate, ApiError> {
    parse_day(s)
        .ok_or_else(|| ApiError::BadRequest(format!("`{s}` is not a date such as `2026-09-01`")))
}

/// The yearly reports: SB 243's, and the states' public pages of crisis-referral counts.
async fn yearly(
    b: &dyn tutela_store::Backend,
    set: &ProfileSet,
    kind: &str,
    year: i32,
    o: &Options,
) -> Result<Report, compile::CompileError> {
    Ok(match kind {
        "referrals-wa" => Report::Referrals(compile::referrals(b, set, "us-wa", year, o).await?),
        "referrals-or" => Report::Referrals(compile::referrals(b, set, "us-or", year, o).await?),
        _ => Report::Sb243(compile::sb243(b, set, year, o).await?),
    })
}

/// `GET /admin/reports/{kind}`: `assessment`, `sb243`, `transparency`, `usage`,
/// `referrals-wa` or `referrals-or`.
pub(crate) async fn report(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let set = deployment_set(&st)?;
    let now = st.clock.now();
    let tz = q.tz_offset.unwrap_or(0);
    let today = now.local_date(tz);
    let options = Options {
        utc_offset_minutes: tz,
        deployment: st.config.provider_name.clone(),
        registration: q.registration.unwrap_or_default(),
        complaint_time_limit_hours: COMPLAINT_LIMIT_HOURS,
        generated_at: now,
    };
    let to = q.to.as_deref().map(day).transpose()?.unwrap_or(today);
    let from = match q.from.as_deref() {
        Some(f) => day(f)?,
        None => Period::month(tutela_store::month_of(now, tz)).from,
    };
    let period = Period { from, to };
    let b = &*st.records.backend;
    let report = match kind.as_str() {
        "usage" => Report::Usage(
            compile::usage(b, &set, period, &options)
                .await
                .map_err(compile_err)?,
        ),
        "assessment" => Report::Assessment(Box::new(
            compile::assessment(b, &set, period, &options)
                .await
                .map_err(compile_err)?,
        )),
        "transparency" => Report::Transparency(
            compile::transparency(b, &set, period, &options, Vec::new())
                .await
                .map_err(compile_err)?,
        ),
        "sb243" | "referrals-wa" | "referrals-or" => {
            let this_year: i32 = compile::day_string(today)[..4].parse().unwrap_or(2026);
            let year = q.year.unwrap_or(this_year - 1);
            yearly(b, &set, &kind, year, &options)
                .await
                .map_err(compile_err)?
        }
        other => {
            return Err(ApiError::NotFound(format!(
                "report `{other}`; one of assessment, sb243, transparency, usage, referrals-wa, referrals-or"
            )));
        }
    };
    let (format, mime) = match q.format.as_deref().unwrap_or("json") {
        "html" => (Some(Format::Html), "text/html; charset=utf-8"),
        "md" => (Some(Format::Markdown), "text/markdown; charset=utf-8"),
        "json" => (Some(Format::Json), "application/json"),
        "pdf" => (None, "application/pdf"),
        other => {
            return Err(ApiError::BadRequest(format!(
                "`{other}` is not one of html, md, json, pdf"
            )));
        }
    };
    let lang = report_lang(&report, q.lang.as_deref())?;
    let mut resp = match format {
        Some(f) => report.render_in(f, lang).into_response(),
        None => report.pdf_in(lang).into_response(),
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    Ok(resp)
}

/// The language of a report's HTML, Markdown and PDF, as `tutela report --lang` and the
/// console choose it: by default the language of the report's regulator (the CN assessment in
/// Chinese); `lang` names another the report is written in (`zh`, `en`, also `zh-CN`, `en-US`).
/// An unknown value, or a language the report is not written in, is a 400. JSON is the same in
/// every language.
fn report_lang(report: &Report, lang: Option<&str>) -> Result<Lang, ApiError> {
    let langs = report.languages();
    let Some(asked) = lang else {
        return Ok(langs[0]);
    };
    let written: Vec<&str> = langs.iter().map(|l| l.as_str()).collect();
    match Lang::parse(asked) {
        Some(l) if langs.contains(&l) => Ok(l),
        Some(_) => Err(ApiError::BadRequest(format!(
            "the {} report is written in {} only",
            report.kind().as_str(),
            written.join(", ")
        ))),
        None => Err(ApiError::BadRequest(format!(
            "`{asked}` is not a report language; one of {}",
            written.join(", ")
        ))),
    }
}

/// Body of the public complaint intake.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComplaintBody {
    /// The user, if the app knows them (or the `X-Tutela-User` header).
    #[serde(default)]
    user: Option<String>,
    /// `appeal` (against an intervention), `content`, `privacy`, `minors`, `other`.
    category: String,
    /// For an appeal: the intervention id shown in `tutela.interventions`.
    #[serde(default)]
    intervention_id: Option<i64>,
    /// What the user wants to say.
    #[serde(default)]
    text: Option<String>,
}

/// `POST /v1/tutela/complaints`: the public complaint and appeal intake (CN Art. 21). Answers
/// are due within the published time limit, which the response states.
///
/// Bounded (`[complaints]`): the body's size (413), complaints per client per hour, per user
/// per day and in all per hour (429 with `Retry-After`). The client's limit is counted on every
/// request, before the body is read as JSON; the user's and the global one on complaints that
/// pass validation.
pub(crate) async fn file_complaint(
    State(st): State<AppState>,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    const CATEGORIES: [&str; 5] = ["appeal", "content", "privacy", "minors", "other"];
    let now = st.clock.now();
    let limits = &st.complaint_limits;
    let client = client_of(&st, &headers, peer.map(|p| p.0.0));
    limits
        .per_client
        .hit(&client, now)
        .map_err(|secs| limited(&st, "from this client in an hour", secs))?;
    let body: ComplaintBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the complaint is not valid JSON: {e}")))?;
    if !CATEGORIES.contains(&body.category.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "`{}` is not one of {}",
            body.category,
            CATEGORIES.join(", ")
        )));
    }
    if body.text.as_ref().is_some_and(|t| t.len() > 8_000) {
        return Err(ApiError::BadRequest(
            "the text is longer than 8,000 bytes".into(),
        ));
    }
    let user = body.user.or_else(|| {
        headers
            .get("x-tutela-user")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    if user.as_ref().is_some_and(|u| u.len() > 256) {
        return Err(ApiError::BadRequest(
            "the user id is longer than 256 bytes".into(),
        ));
    }
    limits
        .global
        .hit("", now)
        .map_err(|secs| limited(&st, "for this service in an hour", secs))?;
    if let Some(u) = &user {
        limits
            .per_user
            .hit(u, now)
            .map_err(|secs| limited(&st, "for this user in a day", secs))?;
    }
    let c = st
        .records
        .backend
        .file_complaint(&NewComplaint {
            user_id: user,
            category: body.category,
            intervention_id: body.intervention_id,
            body: body.text,
            at: now,
            handling_limit_secs: i64::try_from(COMPLAINT_LIMIT_HOURS * 3600).unwrap_or(i64::MAX),
        })
        .await?;
    Ok(Json(json!({
        "id": c.id,
        "status": c.status,
        "received_at": c.received_at,
        "due_at": c.due_at,
        "handling_time_limit_hours": COMPLAINT_LIMIT_HOURS,
    }))
    .into_response())
}

/// Who sent a complaint, for the per-client limit: the first address of the configured header
/// (behind a trusted proxy), else the connection's peer address.
fn client_of(st: &AppState, headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> String {
    if let Some(name) = &st.config.complaints.client_header {
        let first = headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(c) = first {
            return c.to_owned();
        }
    }
    peer.map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string())
}

fn limited(st: &AppState, what: &str, retry_after_secs: u64) -> ApiError {
    st.metrics
        .complaints_limited
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ApiError::RateLimited {
        message: format!(
            "too many complaints {what}; try again in {retry_after_secs} s (or write to the operator)"
        ),
        retry_after_secs,
    }
}

/// `?status=open|resolved&limit=100`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComplaintQuery {
    status: Option<String>,
    limit: Option<u32>,
}

/// `GET /admin/complaints`.
pub(crate) async fn list_complaints(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ComplaintQuery>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let status = match q.status.as_deref() {
        None => None,
        Some("open") => Some(ComplaintStatus::Open),
        Some("resolved") => Some(ComplaintStatus::Resolved),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`{other}` is not one of open, resolved"
            )));
        }
    };
    let list = st
        .records
        .backend
        .list_complaints(status, q.limit.unwrap_or(100).min(1000))
        .await?;
    Ok(Json(json!({"complaints": list})).into_response())
}

/// Body of `POST /admin/complaints/{id}/resolve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveComplaint {
    /// `upheld` / `overturned` (an appeal decided for the user), `rejected`, `answered`, ...
    outcome: String,
}

/// `POST /admin/complaints/{id}/resolve`.
pub(crate) async fn resolve_complaint(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<ResolveComplaint>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let c = st
        .records
        .backend
        .resolve_complaint(id, &body.outcome, st.clock.now())
        .await?;
    Ok(Json(json!({"complaint": c})).into_response())
}

/// `GET /admin/users/{id}/export`: everything held about the user (CN Art. 16 copy).
pub(crate) async fn export_user(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let Some(export) = st.records.backend.export_user(&id, st.clock.now()).await? else {
        return Err(ApiError::NotFound(format!("user `{id}`")));
    };
    Ok(Json(json!({"export": export})).into_response())
}

/// `DELETE /admin/users/{id}/data`: deletes the user's content (CN Art. 16); statistics keep a
/// pseudonym and the audit chain stays verifiable.
pub(crate) async fn delete_user(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let report = st.records.backend.delete_user(&id, st.clock.now()).await?;
    st.forget_user(&id).await;
    // Nothing of the deleted user stays, not even a pending hand-back.
    st.drop_handback(&id).await;
    Ok(Json(json!({"deleted": report})).into_response())
}
