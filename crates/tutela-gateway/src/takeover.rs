//! Human takeover (C4): while a user's case is open with takeover, their messages go to the
//! case, and the turn waits (long-poll) for a human reply; if none comes in time, the user gets
//! a holding message that repeats the crisis resources.

use axum::response::Response;
use serde_json::{Value, json};
use tutela_store::{AuditEntry, AuditKind, AuditPayload, Direction};
use tutela_types::{ReplyTemplate, Timestamp};

use crate::chat::{self, Author, TurnCtx};
use crate::error::ApiError;
use crate::labels::Aigc;
use crate::state::{AppState, Compiled};
use crate::texts::Lang;

fn store_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::Store(e.to_string())
}

/// Human replies not yet delivered, joined, marked delivered.
pub async fn take_replies(
    st: &AppState,
    user: &str,
    now: Timestamp,
) -> Result<Option<String>, ApiError> {
    let b = &st.records.backend;
    let msgs = b.undelivered_replies(user).await.map_err(store_err)?;
    if msgs.is_empty() {
        return Ok(None);
    }
    let ids: Vec<i64> = msgs.iter().map(|m| m.id).collect();
    b.mark_delivered(&ids, now).await.map_err(store_err)?;
    Ok(Some(
        msgs.into_iter()
            .map(|m| m.body)
            .collect::<Vec<_>>()
            .join("\n\n"),
    ))
}

/// Human replies to `user` not yet delivered with an id above `after`, oldest first; reading
/// them delivers nothing.
pub async fn pending_replies(
    st: &AppState,
    user: &str,
    after: i64,
) -> Result<Vec<tutela_store::EscalationMessage>, ApiError> {
    let mut msgs = st
        .records
        .backend
        .undelivered_replies(user)
        .await
        .map_err(store_err)?;
    msgs.retain(|m| m.id > after);
    Ok(msgs)
}

/// Marks the user's undelivered replies up to `through` delivered (the app showed them);
/// returns how many.
pub async fn acknowledge_replies(
    st: &AppState,
    user: &str,
    through: i64,
    now: Timestamp,
) -> Result<usize, ApiError> {
    let ids: Vec<i64> = pending_replies(st, user, 0)
        .await?
        .into_iter()
        .map(|m| m.id)
        .filter(|id| *id <= through)
        .collect();
    st.records
        .backend
        .mark_delivered(&ids, now)
        .await
        .map_err(store_err)?;
    Ok(ids.len())
}

/// A user turn during takeover.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the turn's parts, named"
)]
pub async fn turn(
    st: &AppState,
    user_id: &str,
    session_id: &str,
    case: i64,
    compiled: &std::sync::Arc<Compiled>,
    user_text: &str,
    lang: Lang,
    model: &str,
    stream: bool,
    include_usage: bool,
    structured: bool,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let b = &st.records.backend;
    // The case may have been resolved since the cache saw it.
    let active = b.active_escalation(user_id).await.map_err(store_err)?;
    if active.as_ref().map(|c| c.id) != Some(case) {
        st.forget_user(user_id).await;
    }
    if !user_text.is_empty() && active.is_some() {
        b.add_escalation_message(case, Direction::FromUser, None, user_text, now)
            .await
            .map_err(store_err)?;
    }
    // Register interest before looking, so a reply that lands in between is not missed.
    let waiter = st.waiter(user_id);
    let notified = waiter.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let mut text = take_replies(st, user_id, now).await?;
    if text.is_none() && active.is_some() {
        let _ = tokio::time::timeout(st.config.takeover_wait, notified).await;
        text = take_replies(st, user_id, st.clock.now()).await?;
    }
    let id = st.ids.next();
    let ctx = TurnCtx {
        st: st.clone(),
        user_id: user_id.to_owned(),
        session_id: session_id.to_owned(),
        compiled: compiled.clone(),
        user: tutela_types::UserState::default(),
        account: tutela_store::User::new(user_id, now),
        session: tutela_types::SessionState::default(),
        persona: tutela_types::PersonaKind::General,
        now,
        lang,
        user_text: user_text.to_owned(),
        model: model.to_owned(),
        completion_id: format!("chatcmpl-tutela-{id}"),
        aigc: Aigc::new(&st.config.provider_name, &st.config.propagator, &id),
        notice_text: None,
        notices: json!([]),
        interventions: Vec::new(),
        include_usage,
        pending_audit: std::sync::Mutex::new(None),
        structured,
        carried_notice: false,
        prompt_tokens: 0,
        test: false,
        anonymous: false,
        tools: false,
        shown: crate::openai::ShownArguments::default(),
        n: 1,
    };
    let (reply, author, event) = match text {
        Some(t) => (t, Author::Human, "human_reply_delivered"),
        None => (
            chat::render_template(st, compiled, ReplyTemplate::HumanHolding, true, lang),
            Author::Tutela,
            "holding_message",
        ),
    };
    st.records
        .audit(AuditEntry {
            at: now,
            kind: AuditKind::Escalation,
            user: Some(user_id.to_owned()),
            session: Some(session_id.to_owned()),
            jurisdiction: Some(compiled.label.clone()),
            payload: AuditPayload::detail(json!({"event": event, "case": case})),
            profile_hash: compiled.set.snapshot_hash().to_owned(),
            content_hash: Some(st.records.pseudonyms.content_hash(user_text)),
        })
        .await;
    let extra: Value = json!({"kind": "takeover", "case": case, "event": event});
    Ok(chat::reply(&ctx, reply, author, stream, Some(extra)).await)
}
