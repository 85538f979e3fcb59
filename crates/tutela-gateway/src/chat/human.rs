//! Phase 5 when a human has taken over (C4): while a user's case is open with takeover, their
//! messages go to the case, and the turn waits (long-poll) for a human reply; if none comes in
//! time, the user gets a holding message that repeats the crisis resources and says where the
//! case stands (never "a person will join" once one has taken or written in it); a turn that finds the case handed back tells the person
//! they are talking to the AI again. The engine is not asked: the human is the author.

use axum::response::Response;
use serde_json::{Value, json};
use tutela_store::{AuditEntry, AuditKind, AuditPayload, Direction, Escalation, EscalationStatus};
use tutela_types::{ReplyTemplate, Timestamp};

use crate::error::ApiError;
use crate::state::AppState;
use crate::takeover::take_replies;

use super::context::Author;
use super::identity::Who;
use super::present;
use super::request::Request;

/// A user turn during takeover of `active`, the user's case as the store had it a moment ago
/// (`identity::takeover_case` read it in this turn).
pub(crate) async fn turn(
    st: &AppState,
    req: &Request,
    mut who: Who,
    active: Escalation,
    now: Timestamp,
) -> Result<Response, ApiError> {
    let case = active.id;
    let cached = who.cached()?;
    cached.turns += 1;
    let session_id = cached.session_id.clone();
    let ctx = present::takeover_context(st, req, &who, session_id, now);
    drop(who);
    st.metrics
        .takeover_turns
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (user_id, user_text) = (&req.user_id, &req.chat.user_text);
    // The case was read active in this turn (`identity::takeover_case`): if staff resolve it
    // in between, the store refuses the message (the holding message still goes out).
    if !user_text.is_empty() {
        crate::takeover::store_case_message(st, case, user_text, now).await;
    }
    // Register interest before looking, so a reply that lands in between is not missed.
    let waiter = st.waiter(user_id);
    let notified = waiter.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let mut text = take_replies(st, user_id, now).await?;
    // Without a wait (`[takeover] wait_secs = 0`) nothing can have changed worth a second look.
    let waited = text.is_none() && !st.config.takeover_wait.is_zero();
    if waited {
        let _ = tokio::time::timeout(st.config.takeover_wait, notified).await;
        text = take_replies(st, user_id, st.clock.now()).await?;
    }
    let (reply, author, event) = match text {
        Some(t) => (t, Author::Human, "human_reply_delivered"),
        None => without_reply(st, req, &ctx, active, waited).await?,
    };
    // On the writer's durable lane: a person with an open case is never kept waiting by a
    // full queue of records (a long outage), as a crisis turn is not.
    st.records.audit_now(AuditEntry {
        at: now,
        kind: AuditKind::Escalation,
        user: Some(user_id.clone()),
        session: Some(ctx.session_id.clone()),
        jurisdiction: Some(ctx.compiled.label.clone()),
        payload: AuditPayload::detail(json!({"event": event, "case": case})),
        profile_hash: ctx.compiled.set.snapshot_hash().to_owned(),
        content_hash: Some(st.records.pseudonyms.content_hash(user_text)),
    });
    let extra: Value = json!({"kind": "takeover", "case": case, "event": event});
    Ok(present::reply(&ctx, reply, author, req.chat.stream, Some(extra)).await)
}

/// The turn's reply when no human reply came: the case was handed back to the AI (the person
/// is told so), or a holding message with the resources that says honestly where the case
/// stands: a person will join (nobody has taken it yet), a person has the conversation open
/// (claimed, nothing written yet), or the person who wrote has the message; never "a person
/// will join" once one has taken the case.
/// `active` is the case as read at the turn's start; after a wait (`waited`) it is read again.
async fn without_reply(
    st: &AppState,
    req: &Request,
    ctx: &super::context::TurnCtx,
    active: Escalation,
    waited: bool,
) -> Result<(String, Author, &'static str), ApiError> {
    let b = &st.records.backend;
    let case = active.id;
    let still = if waited {
        b.active_escalation(&req.user_id).await?
    } else {
        Some(active)
    };
    if still.as_ref().map(|c| c.id) != Some(case) {
        st.drop_handback(&req.user_id).await;
        let text = crate::texts::ai_again(req.lang).to_owned();
        return Ok((text, Author::Tutela, "ai_resumed"));
    }
    let joined = b
        .escalation_messages(case)
        .await?
        .iter()
        .any(|m| m.direction == Direction::ToUser);
    // Claimed: a person has the conversation open (the console's claim, or the admin API's).
    let claimed = still.is_some_and(|c| c.status == EscalationStatus::Claimed);
    let lang = req.lang;
    let lines = || crate::texts::resource_lines(&st.config.resources, &ctx.compiled.regions, lang);
    Ok(if joined {
        let text = crate::texts::human_with_you(lang, &lines());
        (text, Author::Tutela, "holding_message_joined")
    } else if claimed {
        let text = crate::texts::human_reading(lang, &lines());
        (text, Author::Tutela, "holding_message_claimed")
    } else {
        let text =
            present::render_template(st, &ctx.compiled, ReplyTemplate::HumanHolding, true, lang);
        (text, Author::Tutela, "holding_message")
    })
}
