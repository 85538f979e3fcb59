//! Phase 6's decision, shared by whole replies (`whole`) and streams (`relay`): the model's
//! reply through the assistant-side detectors (with the user's message as context) and the
//! engine; its record (one record for a normal turn, the user side's and the assistant side's
//! decision together; a durable one and the side effects for an intervention); and the
//! replacement text when the reply must not reach the person.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use tutela_policy::{EvalContext, Turn};
use tutela_store::{AuditEntry, AuditKind, AuditPayload};
use tutela_types::{Decision, Finding, ReplyTemplate, Side};

use crate::error::ApiError;
use crate::state::Cached;

use super::context::TurnCtx;
use super::effects::{self, Effects};
use super::present;

/// A reply the engine blocks: tutela's replacement text and the interventions to report.
pub(crate) type Replacement = (String, Vec<Value>);

/// A whole reply scanned with every tier: with the encoder on the blocking pool (it takes
/// milliseconds; other requests keep their worker), the quick tiers if that scan fails.
pub(crate) async fn scan_whole(ctx: &TurnCtx, text: &str) -> Vec<Finding> {
    let st = &ctx.st;
    if !st.scanner.has_encoder(Side::Assistant) {
        return st.scanner.scan(Side::Assistant, text, Some(&ctx.user_text));
    }
    let scanner = st.scanner.clone();
    let (reply, user) = (text.to_owned(), ctx.user_text.clone());
    let scanned = st
        .encoder
        .run_off(move || scanner.scan(Side::Assistant, &reply, Some(&user)))
        .await;
    match scanned {
        Some((f, windows)) => {
            st.metrics.encoder_ran(Side::Assistant, windows);
            f
        }
        None => {
            // The scan failed (a panic in the encoder): the quick tiers still decide.
            st.metrics.encoder_failures.fetch_add(1, Ordering::Relaxed);
            st.scanner
                .scan_quick(Side::Assistant, text, Some(&ctx.user_text))
        }
    }
}

/// The engine's decision on an assistant reply (pure).
fn decision(ctx: &TurnCtx, findings: &[Finding]) -> Decision {
    ctx.compiled.set.evaluate(
        &EvalContext {
            now: ctx.now,
            user: &ctx.user,
            session: &ctx.session,
            turn: Turn {
                side: Side::Assistant,
                persona: ctx.persona,
            },
        },
        findings,
    )
}

/// Whether the engine blocks a reply with these findings (pure: nothing is recorded).
pub(crate) fn blocks(ctx: &TurnCtx, findings: &[Finding]) -> bool {
    let d = decision(ctx, findings);
    d.has("block_output") || d.replacement().is_some()
}

/// Decides on an assistant reply. `Some((replacement, interventions))` when it must not reach
/// the user; the audit record is committed before this returns.
pub(crate) async fn decide(
    ctx: &TurnCtx,
    findings: &[Finding],
    text: &str,
) -> Result<Option<Replacement>, ApiError> {
    let decision = decision(ctx, findings);
    let audit = AuditEntry {
        at: ctx.now,
        kind: if decision.intervenes() {
            AuditKind::Intervention
        } else {
            AuditKind::Turn
        },
        user: Some(ctx.user_id.clone()),
        session: Some(ctx.session_id.clone()),
        jurisdiction: Some(ctx.compiled.label.clone()),
        payload: AuditPayload::from_decision(findings, &decision),
        profile_hash: ctx.compiled.set.snapshot_hash().to_owned(),
        content_hash: Some(ctx.st.records.pseudonyms.content_hash(text)),
    };
    let blocked = decision.has("block_output") || decision.replacement().is_some();
    let pending = ctx.pending_audit.lock().ok().and_then(|mut p| p.take());
    if !decision.intervenes() || ctx.test {
        record_normal(ctx, pending, audit, findings, &decision).await;
        // A test turn sees the replacement a person would, with nothing recorded but the test.
        return Ok((ctx.test && blocked).then(|| replacement(ctx, &decision)));
    }
    if let Some(user) = pending {
        // Ahead of the intervention's durable record, on the same lane when the queue is full:
        // an intervening turn never waits for room.
        ctx.st.records.audit_now(user);
    }
    intervene(ctx, audit, findings, &decision).await;
    Ok(blocked.then(|| replacement(ctx, &decision)))
}

/// One record for the whole normal (or test) turn: the user side's, with the assistant side's
/// findings (they carry their side) and decision added.
async fn record_normal(
    ctx: &TurnCtx,
    pending: Option<AuditEntry>,
    audit: AuditEntry,
    findings: &[Finding],
    decision: &Decision,
) {
    let mut entry = match pending {
        Some(mut user) => {
            user.payload.findings.extend_from_slice(findings);
            let assistant = json!({
                "actions": decision.actions,
                "diagnostics": decision.diagnostics,
                "content_hash": audit.content_hash,
            });
            match &mut user.payload.detail {
                // The user side's note (an encoder fallback) stays beside it.
                Some(Value::Object(o)) => {
                    o.insert("assistant".into(), assistant);
                }
                d => *d = Some(json!({ "assistant": assistant })),
            }
            user
        }
        None => audit,
    };
    if ctx.test {
        entry.kind = AuditKind::Test;
    }
    ctx.st.records.audit(entry).await;
}

/// An intervention on the reply: its record durable, then its side effects on the user's
/// cache entry when there is one (its updates stay there); otherwise (an anonymous user, or
/// one evicted meanwhile) on the record the turn carries.
async fn intervene(ctx: &TurnCtx, audit: AuditEntry, findings: &[Finding], decision: &Decision) {
    let st = &ctx.st;
    let seq = effects::durable(st, audit).await;
    let slot = (!ctx.anonymous).then(|| st.user_slot(&ctx.user_id));
    let mut guard = match &slot {
        Some(s) => Some(s.lock().await),
        None => None,
    };
    let mut carried = None;
    let cached = match guard.as_mut().and_then(|g| g.as_mut()) {
        Some(c) => c,
        None => carried.insert(Cached {
            user: ctx.account.clone(),
            session: ctx.session.clone(),
            session_id: ctx.session_id.clone(),
            takeover_case: None,
            turns: 0,
            deferred_notice: None,
            deferred_stored: false,
            stamp: None,
        }),
    };
    let e = Effects {
        jurisdiction: ctx.compiled.label.clone(),
        decision: decision.clone(),
        detector: effects::gravest(findings),
        side: Side::Assistant,
        now: ctx.now,
        session_id: ctx.session_id.clone(),
        lang: ctx.lang,
        seq,
        named: !ctx.anonymous && !ctx.test,
    };
    if let Err(err) = effects::side_effects(st, cached, &e).await {
        st.write_failed("the assistant side's side effects", &err);
        effects::retry_side_effects(st, cached.clone(), e).await;
    }
}

/// The text that replaces a blocked reply, and the interventions to report.
fn replacement(ctx: &TurnCtx, decision: &Decision) -> Replacement {
    let (template, resources) = decision
        .replacement()
        .unwrap_or((ReplyTemplate::SafeReply, false));
    let text = present::render_template(&ctx.st, &ctx.compiled, template, resources, ctx.lang);
    (text, present::interventions_json(decision, Side::Assistant))
}
