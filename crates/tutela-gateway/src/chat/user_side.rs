//! Phase 3 of a turn, the user side: the person's message through the detectors and the
//! engine, under the user's lock. The quick tiers decide at once; the encoder tier (when one
//! is attached) has been scanning on the blocking pool since the request was read, and the
//! lock is let go while it finishes (the model may be asked meanwhile, see
//! `model::ModelCall`); the decision on every tier's findings is final, and nothing of the
//! reply leaves before it.

use std::sync::atomic::Ordering;

use serde_json::Value;
use tokio::sync::OwnedMutexGuard;
use tutela_policy::{EvalContext, Turn};
use tutela_types::{Decision, Finding, SessionState, Side, Timestamp, UserState};

use crate::encoder::{self, Pending};
use crate::error::ApiError;
use crate::state::{AppState, Cached, DeferredNotice};

use super::identity::{self, Who, empty_slot};
use super::model::ModelCall;
use super::request::Request;

/// The user side, decided.
pub(crate) struct UserSide {
    /// Every tier's findings on the message.
    pub(crate) findings: Vec<Finding>,
    /// The engine's decision on them.
    pub(crate) decision: Decision,
    /// Why the encoder tier did not take part (`timeout`, `failed`), for the record.
    pub(crate) encoder_note: Option<&'static str>,
    /// The user's state as the engine saw it.
    pub(crate) user_state: UserState,
    /// Seconds of use this turn added to today's.
    pub(crate) usage_secs: u32,
    /// A notice from an earlier turn the person has not seen yet.
    pub(crate) carried: Option<DeferredNotice>,
    /// The session id.
    pub(crate) session_id: String,
    /// The stamp the turn writes with the clocks (a shared database; see `Cached::stamp`).
    pub(crate) stamp: Option<String>,
    /// The user's lock, when the turn still holds it (an intervention's side effects, or
    /// clocks to write back).
    pub(crate) held: Option<OwnedMutexGuard<Option<Cached>>>,
    /// The user's record could not be read (the store away): the entry is a fresh one, so the
    /// side effects are held and read the record when they are written.
    pub(crate) unread: bool,
}

/// Refuses the turn with 503 when the encoder tier's queue is full, unless the quick tiers
/// find something in the message (a person in crisis gets help lines whatever the load).
/// Nothing has been recorded yet, so the app's retry is a clean new turn.
pub(crate) fn admit(st: &AppState, req: &Request) -> Result<(), ApiError> {
    if !st.encoder.saturated() || !st.scanner.has_encoder(Side::User) {
        return Ok(());
    }
    if !st
        .scanner
        .scan_quick(Side::User, &req.chat.user_text, None)
        .is_empty()
    {
        return Ok(());
    }
    st.metrics.encoder_shed.fetch_add(1, Ordering::Relaxed);
    Err(ApiError::Overloaded(
        "tutela's detectors are at capacity; retry shortly".into(),
    ))
}

/// Starts the encoder's scan of the message on the blocking pool, if an encoder is attached:
/// it runs while the user is found and the quick tiers decide.
pub(crate) fn start_encoder(st: &AppState, req: &Request) -> Option<Pending> {
    st.encoder
        .spawn(&st.scanner, Side::User, &req.chat.user_text)
}

/// Decides the user side: the quick tiers under the lock, then (with the encoder) the final
/// decision after the lock is let go and taken again if the decision writes anything.
pub(crate) async fn decide(
    st: &AppState,
    req: &Request,
    mut who: Who,
    encoder: Option<Pending>,
    model: &mut ModelCall<'_>,
    now: Timestamp,
) -> Result<UserSide, ApiError> {
    let text = &req.chat.user_text;
    let quick = st.scanner.scan_quick(Side::User, text, None);
    let compiled = who.compiled.clone();
    let cached = who.cached()?;
    let user_state = cached.user.state();
    let session_before = with_clearance(st, &req.user_id, &cached.session).await;
    let eval = |findings: &[Finding]| {
        compiled.set.evaluate(
            &EvalContext {
                now,
                user: &user_state,
                session: &session_before,
                turn: Turn {
                    side: Side::User,
                    persona: req.persona,
                },
            },
            findings,
        )
    };
    let first = eval(&quick);
    let usage_secs = advance_clocks(st, cached, &first.session);
    model.turn_no = cached.turns;
    if cached.deferred_notice.is_none()
        && let Some(case) = st.take_handback(&req.user_id).await
    {
        cached.deferred_notice = Some(handback_notice(case, req.lang));
    }
    let carried = cached.deferred_notice.clone();
    let session_id = cached.session_id.clone();
    let stamp = cached.stamp.clone();
    let mut side = UserSide {
        findings: quick,
        decision: first.clone(),
        encoder_note: None,
        user_state: user_state.clone(),
        usage_secs,
        carried,
        session_id,
        stamp,
        held: Some(who.guard),
        unread: false,
    };
    if let Some(pending) = encoder {
        side.held = None;
        if first.replacement().is_none() {
            model.start();
        }
        let (outcome, waited) = model.race(pending.wait()).await;
        st.metrics.encoder_wait.observe(waited);
        if add_encoder(st, &mut side, outcome) {
            side.decision = eval(&side.findings);
        }
        if side.decision.intervenes() || side.decision.session != first.session {
            let g = relock(
                st,
                &who.slot,
                &req.user_id,
                now,
                (&first.session, &side.decision.session),
            );
            side.held = Some(g.await?);
        }
    }
    st.metrics.learned_findings(&side.findings);
    Ok(side)
}

/// The clocks to decide on: with the clearance of a suspension (OR hard stop) that a person or
/// the follow-up step gave since the last turn, so the engine records the follow-up and lifts it.
async fn with_clearance(st: &AppState, user_id: &str, session: &SessionState) -> SessionState {
    let mut s = session.clone();
    let clearance = st.take_clearance(user_id).await;
    if let (Some(susp), Some(c)) = (s.suspension.as_mut(), clearance)
        && susp.cleared.is_none()
    {
        susp.cleared = Some(c);
    }
    s
}

/// Writes the clocks a decision advanced into the user's entry (a new period of continuous
/// use starts a new session id) and counts the turn; returns the seconds of use it added.
fn advance_clocks(st: &AppState, cached: &mut Cached, after: &SessionState) -> u32 {
    if after.continuous_since != cached.session.continuous_since {
        cached.session_id = st.ids.next();
    }
    let usage_secs = if after.usage_day == cached.session.usage_day {
        after
            .used_today_secs
            .saturating_sub(cached.session.used_today_secs)
    } else {
        after.used_today_secs
    };
    cached.session = after.clone();
    cached.turns += 1;
    if st.records.shared() {
        cached.stamp = Some(st.ids.next());
    }
    usage_secs
}

/// Adds the encoder tier's findings; returns whether it found anything new (the engine then
/// decides again). A scan that timed out or failed is noted for the record.
fn add_encoder(st: &AppState, side: &mut UserSide, outcome: encoder::Outcome) -> bool {
    match outcome {
        encoder::Outcome::Ran(found, windows) => {
            st.metrics.encoder_ran(Side::User, windows);
            let added = crate::scan::merge_encoder(&side.findings, found);
            let any = !added.is_empty();
            side.findings.extend(added);
            any
        }
        encoder::Outcome::TimedOut => {
            st.metrics.encoder_timeouts.fetch_add(1, Ordering::Relaxed);
            side.encoder_note = Some("timeout");
            false
        }
        encoder::Outcome::Failed => {
            st.metrics.encoder_failures.fetch_add(1, Ordering::Relaxed);
            side.encoder_note = Some("failed");
            false
        }
    }
}

/// Takes the user's lock again to write what the final decision moved beyond the quick one.
/// `moved` is the clocks before and after that step.
async fn relock(
    st: &AppState,
    slot: &identity::Slot,
    user_id: &str,
    now: Timestamp,
    moved: (&SessionState, &SessionState),
) -> Result<OwnedMutexGuard<Option<Cached>>, ApiError> {
    let mut g = slot.clone().lock_owned().await;
    if g.is_none() {
        *g = Some(identity::load_user(st, user_id, now).await?);
    }
    let c = g.as_mut().ok_or_else(empty_slot)?;
    merge_session(&mut c.session, moved.0, moved.1);
    Ok(g)
}

/// Applies to `current` what moved between `before` and `after` (the clocks a decision on more
/// findings moved further), keeping what another turn of the same user wrote meanwhile.
fn merge_session(current: &mut SessionState, before: &SessionState, after: &SessionState) {
    if current == before {
        *current = after.clone();
        return;
    }
    let (Ok(Value::Object(b)), Ok(Value::Object(a)), Ok(Value::Object(mut c))) = (
        serde_json::to_value(before),
        serde_json::to_value(after),
        serde_json::to_value(&*current),
    ) else {
        return;
    };
    for (k, v) in a {
        let old = b.get(&k);
        if old == Some(&v) {
            continue;
        }
        // Maps (the clocks' last firings) merge key by key.
        match (old, &v, c.get_mut(&k)) {
            (Some(Value::Object(ob)), Value::Object(nv), Some(Value::Object(cur))) => {
                for (kk, vv) in nv {
                    if ob.get(kk) != Some(vv) {
                        cur.insert(kk.clone(), vv.clone());
                    }
                }
            }
            _ => {
                c.insert(k, v);
            }
        }
    }
    if let Ok(s) = serde_json::from_value(Value::Object(c)) {
        *current = s;
    }
}

/// The hand-back of `case` as a notice carried to the person's next plain-text reply: it goes
/// before the model's text and its delivery is recorded (`present::settle_notice`).
fn handback_notice(case: i64, lang: crate::texts::Lang) -> crate::state::DeferredNotice {
    let text = crate::texts::ai_again(lang).to_owned();
    crate::state::DeferredNotice {
        notices: vec![serde_json::json!({
            "contents": ["ai_resumed"], "case": case, "text": text, "deferred": true,
        })],
        text,
    }
}
