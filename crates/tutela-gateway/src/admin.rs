//! The admin API behind a bearer token: escalations (list, show, claim, reply, resolve), users
//! (age state, consents, contacts, minors' settings), and the audit log (query, verify).
//! Handlers are thin: check the token, call the store, map the result.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tutela_store::{
    AuditEntry, AuditKind, AuditPayload, AuditQuery, Direction, EscalationStatus, UserUpdate,
};
use tutela_types::Timestamp;

use crate::auth::authorize;
use crate::error::ApiError;
use crate::state::AppState;

/// `?status=open,claimed&limit=100`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
}

/// `GET /admin/escalations`.
pub(crate) async fn list_escalations(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let mut statuses = Vec::new();
    for s in q.status.as_deref().unwrap_or("open,claimed").split(',') {
        statuses.push(match s.trim() {
            "open" => EscalationStatus::Open,
            "claimed" => EscalationStatus::Claimed,
            "resolved" => EscalationStatus::Resolved,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "`{other}` is not one of open, claimed, resolved"
                )));
            }
        });
    }
    let list = st
        .records
        .backend
        .list_escalations(&statuses, q.limit.unwrap_or(100).min(1000))
        .await?;
    Ok(Json(json!({"escalations": list})).into_response())
}

/// `GET /admin/escalations/{id}`: the case and its messages.
pub(crate) async fn show_escalation(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let b = &st.records.backend;
    let Some(case) = b.get_escalation(id).await? else {
        return Err(ApiError::NotFound(format!("escalation {id}")));
    };
    let messages = b.escalation_messages(id).await?;
    Ok(Json(json!({"escalation": case, "messages": messages})).into_response())
}

/// Body of claim / reply / resolve.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StaffBody {
    /// Who acts.
    staff: String,
    /// The reply text (reply only).
    #[serde(default)]
    text: Option<String>,
    /// A short note (resolve only).
    #[serde(default)]
    resolution: Option<String>,
}

async fn staff_audit(st: &AppState, at: Timestamp, user: &str, detail: serde_json::Value) {
    user_audit(st, AuditKind::Escalation, at, user, detail).await;
}

/// A staff action on one user, in the audit log.
async fn user_audit(
    st: &AppState,
    kind: AuditKind,
    at: Timestamp,
    user: &str,
    detail: serde_json::Value,
) {
    st.records
        .audit(AuditEntry {
            at,
            kind,
            user: Some(user.to_owned()),
            session: None,
            jurisdiction: None,
            payload: AuditPayload::detail(detail),
            profile_hash: String::new(),
            content_hash: None,
        })
        .await;
}

/// `POST /admin/escalations/{id}/claim`.
pub(crate) async fn claim(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<StaffBody>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let now = st.clock.now();
    let case = st
        .records
        .backend
        .claim_escalation(id, &body.staff, now)
        .await?;
    staff_audit(
        &st,
        now,
        &case.user_id,
        json!({"event": "claimed", "case": id, "staff": body.staff}),
    )
    .await;
    Ok(Json(json!({"escalation": case})).into_response())
}

/// `POST /admin/escalations/{id}/reply`: the text reaches the user as the assistant's reply.
pub(crate) async fn reply(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<StaffBody>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let Some(text) = body
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(ApiError::BadRequest("`text` is required".into()));
    };
    let now = st.clock.now();
    let b = &st.records.backend;
    let Some(case) = b.get_escalation(id).await? else {
        return Err(ApiError::NotFound(format!("escalation {id}")));
    };
    if case.status == EscalationStatus::Open {
        b.claim_escalation(id, &body.staff, now).await?;
    }
    let msg = b
        .add_escalation_message(id, Direction::ToUser, Some(&body.staff), text, now)
        .await?;
    // Every waiter: the person's turn and the app's channel may both be waiting, on any
    // instance of a shared database.
    st.wake(&case.user_id);
    staff_audit(
        &st,
        now,
        &case.user_id,
        json!({"event": "replied", "case": id, "staff": body.staff}),
    )
    .await;
    Ok(Json(json!({"message": msg})).into_response())
}

/// `POST /admin/escalations/{id}/resolve`: ends takeover.
pub(crate) async fn resolve(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(body): Json<StaffBody>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let now = st.clock.now();
    let case = st
        .records
        .backend
        .resolve_escalation(id, &body.staff, body.resolution.as_deref(), now)
        .await?;
    // Every waiter wakes: the person's turn and the app's channel may both be waiting.
    if case.takeover {
        st.hand_back(&case.user_id, id).await;
    } else {
        st.forget_user(&case.user_id).await;
        st.wake(&case.user_id);
    }
    staff_audit(
        &st,
        now,
        &case.user_id,
        json!({"event": "resolved", "case": id, "staff": body.staff, "handed_back": case.takeover}),
    )
    .await;
    Ok(Json(json!({"escalation": case})).into_response())
}

/// `GET /admin/users/{id}`.
pub(crate) async fn get_user(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let Some(user) = st.records.backend.get_user(&id).await? else {
        return Err(ApiError::NotFound(format!("user `{id}`")));
    };
    Ok(Json(json!({"user": user})).into_response())
}

/// `PATCH /admin/users/{id}`: age state, age, age assurance level, consents, jurisdiction, contacts, minors'
/// settings (fields absent are left alone).
pub(crate) async fn update_user(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let update: UserUpdate = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid user update: {e}")))?;
    let now = st.clock.now();
    let user = st.records.backend.update_user(&id, &update, now).await?;
    st.forget_user(&id).await;
    let fields: Vec<&str> =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body)
            .map(|m| {
                m.keys()
                    .map(|k| match k.as_str() {
                        "age_state" => "age_state",
                        "age" => "age",
                        "age_assurance" => "age_assurance",
                        "elderly" => "elderly",
                        "guardian_consent" => "guardian_consent",
                        "jurisdiction" => "jurisdiction",
                        "utc_offset_minutes" => "utc_offset_minutes",
                        "minors" => "minors",
                        "contacts" => "contacts",
                        "registered_at" => "registered_at",
                        _ => "other",
                    })
                    .collect()
            })
            .unwrap_or_default();
    user_audit(
        &st,
        AuditKind::Admin,
        now,
        &id,
        json!({"event": "user_updated", "fields": fields}),
    )
    .await;
    Ok(Json(json!({"user": user})).into_response())
}

/// `?user=ID&after_seq=N&limit=N&from=RFC3339&to=RFC3339`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    user: Option<String>,
    after_seq: Option<i64>,
    limit: Option<u32>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /admin/audit`.
pub(crate) async fn audit(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<AuditParams>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let parse = |s: &Option<String>| -> Result<Option<Timestamp>, ApiError> {
        s.as_deref()
            .map(|t| Timestamp::parse(t).map_err(|e| ApiError::BadRequest(e.to_string())))
            .transpose()
    };
    let q = AuditQuery {
        subject: p.user.as_deref().map(|u| st.records.pseudonyms.subject(u)),
        from: parse(&p.from)?,
        to: parse(&p.to)?,
        after_seq: p.after_seq,
        limit: p.limit.unwrap_or(100).min(1000),
    };
    let rows = st.records.backend.query_audit(&q).await?;
    let mut records = Vec::with_capacity(rows.len());
    for r in rows {
        records.push(tutela_store::AuditRecord::try_from(r)?);
    }
    Ok(Json(json!({"records": records})).into_response())
}

/// `GET /admin/audit/verify`: walks the hash chain; `intact: false` names the first bad record.
pub(crate) async fn verify(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let v = tutela_store::audit::verify(&*st.records.backend, None).await?;
    Ok(Json(json!({
        "intact": v.is_intact(),
        "records": v.records,
        "head": v.head,
        "tamper": v.tamper,
    }))
    .into_response())
}

/// `POST /admin/users/{id}/follow-up`: the follow-up step after an OR SB 1546 hard stop (a
/// clinically informed check-in the operator runs) is complete; the person's next turn records
/// it and lifts the suspension. The event is in the audit log.
pub(crate) async fn follow_up(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let now = st.clock.now();
    st.clear_suspension(&id, tutela_types::ClearedBy::FollowUp)
        .await;
    user_audit(
        &st,
        AuditKind::Admin,
        now,
        &id,
        json!({"event": "follow_up_completed"}),
    )
    .await;
    Ok(Json(json!({"user": id, "follow_up": "recorded"})).into_response())
}
