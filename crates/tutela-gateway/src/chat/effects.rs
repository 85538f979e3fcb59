//! Phase 4 of a turn, side effects and the user side's records: an intervention's audit
//! record committed before anything of the turn reaches the person (held and retried when the
//! store cannot write), then what the decision does beyond the reply (minors' mode, the case
//! for the crisis team, notifications, counters, the session's end, intervention rows); a
//! normal turn's clocks queued for the one writer and its record kept for the assistant side.
//! The assistant side's interventions come through [`side_effects`] too (`verdict`).
//! Side effects that cannot be written (a full disk) are held in the gateway's one queue of
//! held writes, whose worker writes them in order until they are written, and in the spill
//! directory meanwhile so that a restart writes them ([`retry_side_effects`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tutela_store::{
    AuditEntry, AuditKind, AuditPayload, ContactAddress, CounterBump, HeldItem, Intervention,
    NewCaseTurn, NewEscalation, NewNotification, Tally, TurnEffects, TurnRecord, User, UserUpdate,
};
use tutela_types::{
    Action, AgeState, Counter, Decision, Finding, SessionState, Side, Timestamp, UserState,
};

use crate::error::ApiError;
use crate::held::{Attempt, Held, Kind, Outcome};
use crate::state::{AppState, Cached, Compiled};
use crate::texts::Lang;

use super::identity::empty_slot;
use super::request::Request;
use super::user_side::UserSide;

/// What the user side left written, and what the rest of the turn carries.
pub(crate) struct Recorded {
    /// The case an escalation opened or raised.
    pub(crate) case_id: Option<i64>,
    /// A normal (or test) turn's record, written with the assistant side's decision.
    pub(crate) pending: Option<AuditEntry>,
    /// The user's state after the side effects (minors' mode).
    pub(crate) user_after: UserState,
    /// The user's record.
    pub(crate) account: User,
}

/// Records the user side and carries out its side effects; lets go of the user's lock.
pub(crate) async fn user_side(
    st: &AppState,
    req: &Request,
    compiled: &Arc<Compiled>,
    side: &mut UserSide,
    now: Timestamp,
) -> Result<Recorded, ApiError> {
    let turn_record = TurnRecord {
        user_id: req.user_id.clone(),
        session_id: side.session_id.clone(),
        jurisdiction: compiled.label.clone(),
        at: now,
        state: side.decision.session.clone(),
        local_day: now.local_date(side.user_state.utc_offset_minutes),
        usage_secs: side.usage_secs,
        stamp: side.stamp.clone(),
    };
    let audit = user_audit(st, req, compiled, side, now);
    let mut done = Recorded {
        case_id: None,
        pending: None,
        user_after: side.user_state.clone(),
        account: User::new(&req.user_id, now),
    };
    if req.test {
        done.pending = Some(test_turn(st, compiled, audit, now).await);
    } else if side.decision.intervenes() {
        let effects = Effects::of_user_side(req, compiled, side, now);
        let cached = side
            .held
            .as_mut()
            .and_then(|g| g.as_mut())
            .ok_or_else(empty_slot)?;
        let unread = side.unread;
        // What staff see of the case, kept with the side effects in their transaction.
        let context = opens_case(&side.decision).then(|| {
            crate::case_context::turns(st, &req.body, &req.chat.user_text, &side.findings)
        });
        done.case_id =
            intervening_turn(st, cached, audit, &turn_record, effects, unread, context).await;
        done.user_after = cached.user.state();
    } else {
        done.pending = Some(audit);
    }
    if let Some(c) = side.held.as_ref().and_then(|g| g.as_ref()) {
        done.account = c.user.clone();
    }
    drop(side.held.take());
    if done.pending.is_some() && !req.test {
        // Queued after the user's lock is let go: a full queue holds only this turn.
        st.records.turn(turn_record).await;
    }
    Ok(done)
}

/// The user side's audit record.
fn user_audit(
    st: &AppState,
    req: &Request,
    compiled: &Compiled,
    side: &UserSide,
    now: Timestamp,
) -> AuditEntry {
    let mut audit = AuditEntry {
        at: now,
        kind: if side.decision.intervenes() {
            AuditKind::Intervention
        } else {
            AuditKind::Turn
        },
        user: Some(req.user_id.clone()),
        session: Some(side.session_id.clone()),
        jurisdiction: Some(compiled.label.clone()),
        payload: AuditPayload::from_decision(&side.findings, &side.decision),
        profile_hash: compiled.set.snapshot_hash().to_owned(),
        content_hash: Some(st.records.pseudonyms.content_hash(&req.chat.user_text)),
    };
    if let Some(note) = side.encoder_note {
        // The turn was decided without the encoder tier; the record says so.
        audit.payload.detail = Some(json!({ "encoder": note }));
    }
    audit
}

/// A test turn: recorded as a test, with the assistant side's part; counted only as a test
/// turn. No case, notification, counter, session or usage row.
async fn test_turn(
    st: &AppState,
    compiled: &Compiled,
    mut audit: AuditEntry,
    now: Timestamp,
) -> AuditEntry {
    audit.kind = AuditKind::Test;
    st.metrics.test_turns.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = st
        .records
        .backend
        .bump(Counter::TestTurn, &compiled.label, now, 1)
        .await
    {
        st.write_failed("counting a test turn", &e);
    }
    audit
}

/// An intervening user turn: its record durable before anything of the turn reaches the
/// user (if the store cannot write, the record is held and retried, and the reply, help
/// lines, still goes out), then the session row, the side effects and the case's context in
/// one transaction (a notice's only through the writer's batch). Returns the case.
/// While the store's writes fail, or when the user's record could not be read (`unread`),
/// the session row and the side effects are held without a try: on PostgreSQL away, each
/// try would keep the reply waiting for the pool's acquire timeout.
async fn intervening_turn(
    st: &AppState,
    cached: &mut Cached,
    audit: AuditEntry,
    turn_record: &TurnRecord,
    mut effects: Effects,
    unread: bool,
    context: Option<CaseTurns>,
) -> Option<i64> {
    effects.seq = durable(st, audit).await;
    if unread || st.records.health().failing {
        // Never behind a full queue: in a long outage under load it fills.
        st.records.turn_now(turn_record.clone());
        let held = (!unread).then(|| cached.clone());
        hold_side_effects(st, &cached.user.id, held, effects).await;
        return None;
    }
    if only_tallies(&effects.decision) {
        // Nothing below reads these rows back at once: the one writer batches them.
        st.records.turn(turn_record.clone()).await;
        return match side_effects(st, cached, &effects).await {
            Ok(case) => case,
            Err(e) => {
                st.write_failed("the user side's side effects", &e);
                retry_side_effects(st, cached.clone(), effects).await;
                None
            }
        };
    }
    // One commit: the session row (which ending the session needs), the side effects and
    // the case's context.
    match write_effects(st, cached, &effects, Some(turn_record), context).await {
        Ok(case) => case,
        Err(e) => {
            // Nothing of it is written: the clocks go to the writer (which retries them), the
            // side effects to the queue of held writes.
            st.records.turn_now(turn_record.clone());
            st.write_failed("the user side's side effects", &e);
            retry_side_effects(st, cached.clone(), effects).await;
            None
        }
    }
}

/// The turns kept beside a case: those before the trigger, and the trigger.
type CaseTurns = (Vec<NewCaseTurn>, NewCaseTurn);

/// Whether a decision opens (or raises) a case.
fn opens_case(decision: &Decision) -> bool {
    decision
        .actions
        .iter()
        .any(|d| matches!(d.action, Action::Escalate { .. }))
}

/// Appends an intervention's audit record and waits for the commit; returns its seq. When the
/// store cannot write, the record is held and retried by the writer, the miss is logged and
/// counted, and the turn goes on: the person gets the reply (crisis help) all the same.
pub(crate) async fn durable(st: &AppState, audit: AuditEntry) -> Option<i64> {
    match st.records.audit_durable(audit).await {
        Ok(link) => {
            st.metrics.durable_audits.fetch_add(1, Ordering::Relaxed);
            Some(link.seq)
        }
        Err(e) => {
            st.metrics
                .durable_audits_late
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "an intervention's audit record is not written yet; the reply goes out");
            None
        }
    }
}

/// A decision's side effects, with what they are written for (kept to write them again
/// after a failed write, see [`retry_side_effects`]).
pub(crate) struct Effects {
    /// The composed jurisdiction's label.
    pub(crate) jurisdiction: String,
    pub(crate) decision: Decision,
    /// The gravest finding's detector, named in the case and the intervention rows.
    pub(crate) detector: Option<String>,
    pub(crate) side: Side,
    pub(crate) now: Timestamp,
    pub(crate) session_id: String,
    pub(crate) lang: Lang,
    /// The seq of the intervention's audit record, when it is written.
    pub(crate) seq: Option<i64>,
    /// A named user: a takeover case reaches their cache entry (an anonymous request has no
    /// one to hand a human's reply back to).
    pub(crate) named: bool,
}

impl Effects {
    fn of_user_side(
        req: &Request,
        compiled: &Arc<Compiled>,
        side: &UserSide,
        now: Timestamp,
    ) -> Self {
        Effects {
            jurisdiction: compiled.label.clone(),
            decision: side.decision.clone(),
            detector: gravest(&side.findings),
            side: Side::User,
            now,
            session_id: side.session_id.clone(),
            lang: req.lang,
            seq: None,
            named: !req.anonymous && !req.test,
        }
    }
}

/// The gravest finding's detector.
pub(crate) fn gravest(findings: &[Finding]) -> Option<String> {
    findings
        .iter()
        .max_by(|a, b| a.severity.cmp(&b.severity))
        .map(|f| f.detector.as_str().to_owned())
}

/// Carries out the side effects of a decision: minors' mode, escalation, notifications,
/// counters, session end, and the intervention rows. Returns the escalation case id.
pub(crate) async fn side_effects(
    st: &AppState,
    cached: &mut Cached,
    e: &Effects,
) -> Result<Option<i64>, ApiError> {
    write_effects(st, cached, e, None, None).await
}

/// [`side_effects`], with the turn's clocks and session row and the case's context written in
/// the same transaction (the user side of an intervening turn). A decision that only tallies
/// goes to the writer's next batch instead (`turn` is then the caller's to write).
async fn write_effects(
    st: &AppState,
    cached: &mut Cached,
    e: &Effects,
    turn: Option<&TurnRecord>,
    context: Option<CaseTurns>,
) -> Result<Option<i64>, ApiError> {
    if let Some(fault) = &st.records.write_fault
        && fault.fails(&cached.user.id)
    {
        return Err(ApiError::Internal(
            "database or disk is full (fault test)".into(),
        ));
    }
    if only_tallies(&e.decision) {
        st.records.tally(tally_of(st, &cached.user.id, e)).await;
        return Ok(None);
    }
    let mut fx = TurnEffects::new(&cached.user.id, e.now);
    fx.turn = turn.cloned();
    fx.case_turns = context;
    for d in &e.decision.actions {
        act(cached, e, &d.action, &d.reasons, &mut fx);
        if !matches!(d.action, Action::Label { .. } | Action::Count { .. }) {
            st.metrics.intervention(d.action.kind());
            fx.interventions.push(Intervention {
                id: 0,
                at: e.now,
                user_id: Some(cached.user.id.clone()),
                session_id: Some(e.session_id.clone()),
                jurisdiction: e.jurisdiction.clone(),
                detector: e.detector.clone(),
                side: Some(e.side),
                action: d.action.clone(),
                reasons: d.reasons.clone(),
                audit_seq: e.seq,
            });
        }
    }
    // Alerts name the case the same transaction opens (the store fills its id in).
    for d in &e.decision.actions {
        if let Action::NotifyContact { contact } = d.action {
            for a in cached.user.contacts_of(contact) {
                fx.notifications.push(notification(cached, e, a.clone()));
            }
        }
    }
    let written = st.records.backend.record_effects(&fx).await?;
    if let Some(user) = written.user {
        cached.user = user;
    }
    let case_id = written.escalation.map(|(esc, _created)| {
        if esc.takeover && e.named {
            cached.takeover_case = Some(esc.id);
        }
        esc.id
    });
    if !fx.escalations.is_empty() {
        // The console's queue, on every instance.
        st.queue_changed();
    }
    if !fx.notifications.is_empty() {
        crate::outbox::kick(st);
    }
    if written.session_missing {
        // Everything else is written; held side effects replayed before their turn's session
        // row (written by the writer) meet this.
        tracing::warn!("an intervention ended a session that is not recorded");
    }
    Ok(case_id)
}

/// Whether a decision changes nothing that a later read depends on at once (no case, no
/// minors' mode, no notification, no session end): only the report's rows, which the one
/// writer commits in its next batch ([`Tally`]). The decision's audit record is durable
/// before the reply leaves either way.
fn only_tallies(decision: &Decision) -> bool {
    decision.actions.iter().all(|d| {
        !matches!(
            d.action,
            Action::SwitchMinorsMode
                | Action::Escalate { .. }
                | Action::NotifyContact { .. }
                | Action::EndSession { .. }
        )
    })
}

/// A decision's intervention rows and counter bumps, as [`side_effects`] writes them.
fn tally_of(st: &AppState, user_id: &str, e: &Effects) -> Tally {
    let mut tally = Tally::default();
    for d in &e.decision.actions {
        match &d.action {
            Action::Count { counter } => tally.counts.push(CounterBump {
                counter: *counter,
                jurisdiction: e.jurisdiction.clone(),
                at: e.now,
                by: 1,
            }),
            Action::Label { .. } => {}
            action => {
                st.metrics.intervention(action.kind());
                tally.interventions.push(Intervention {
                    id: 0,
                    at: e.now,
                    user_id: Some(user_id.to_owned()),
                    session_id: Some(e.session_id.clone()),
                    jurisdiction: e.jurisdiction.clone(),
                    detector: e.detector.clone(),
                    side: Some(e.side),
                    action: action.clone(),
                    reasons: d.reasons.clone(),
                    audit_seq: e.seq,
                });
            }
        }
    }
    tally
}

/// One action's writes, added to the turn's effects.
fn act(
    cached: &Cached,
    e: &Effects,
    action: &Action,
    reasons: &[tutela_types::Reason],
    fx: &mut TurnEffects,
) {
    match action {
        Action::SwitchMinorsMode if !cached.user.age_state.is_minor_or_suspected() => {
            fx.user_update = Some(UserUpdate {
                age_state: Some(AgeState::SuspectedMinor),
                ..UserUpdate::default()
            });
        }
        Action::Escalate { takeover, severity } => fx.escalations.push(NewEscalation {
            user_id: cached.user.id.clone(),
            session_id: Some(e.session_id.clone()),
            jurisdiction: Some(e.jurisdiction.clone()),
            severity: *severity,
            takeover: *takeover,
            detector: e.detector.clone(),
            reasons: reasons.to_vec(),
            at: e.now,
        }),
        Action::Count { counter } => fx.counts.push(CounterBump {
            counter: *counter,
            jurisdiction: e.jurisdiction.clone(),
            at: e.now,
            by: 1,
        }),
        // A session ends once: the first reason stays.
        Action::EndSession { reason } if fx.end_session.is_none() => {
            let r = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            fx.end_session = Some((e.session_id.clone(), r));
        }
        _ => {}
    }
}

/// A safety alert to one of the user's contacts (no conversation text in it); its
/// `escalation` is filled in by the store with the case the same transaction opens.
fn notification(cached: &Cached, e: &Effects, contact: ContactAddress) -> NewNotification {
    let payload = json!({
        "type": "tutela.safety_alert",
        "user": cached.user.id,
        "contact_kind": contact.kind,
        "escalation": null,
        "jurisdiction": e.jurisdiction,
        "at": e.now,
        "language": e.lang.code(),
        "message": match e.lang {
            Lang::En => "Someone you are a contact for may need support right now. Please reach out to them. (No conversation text is included.)",
            Lang::Zh => "您登记的联系人目前可能需要帮助，请尽快与其联系。（通知不包含对话内容。）",
        },
    });
    NewNotification {
        user_id: Some(cached.user.id.clone()),
        escalation_id: None,
        contact,
        payload,
        at: e.now,
    }
}

/// The kind of the spill directory's held items that are side effects.
const HELD_KIND: &str = "effects";

/// What held side effects count for against the held queue's byte cap (the user's record
/// with their contacts, the decision with its reasons).
const EFFECTS_BYTES: usize = 4 * 1024;

/// When the store cannot write an intervention's side effects (a full disk), the reply has
/// already gone out; the case for the crisis team, the notifications, the intervention rows
/// and counters must still reach the store. They are held: in the spill directory where the
/// deployment has one (`[store] spill_dir`, one fsync'd file each, so a restart writes them,
/// [`replay_held_side_effects`]), and in memory, in the gateway's one queue of held writes
/// (`held.rs`), whose single worker writes them in the order they were held, again and again
/// with a bounded backoff (250 ms to 5 s) until they are written, for as long as the process
/// lives, logging at error level about every ten minutes while they are not
/// (`tutela_side_effects_held` says how many wait, and `/readyz` answers 503). At the queue's
/// cap this waits for room (backpressure), except for side effects that open a case for a
/// person in crisis: those are held beyond the cap, since the crisis reply waits for this
/// and must always reach the person. Opening a case is idempotent (the active case is
/// returned); a counter bumped, a row or a notification written before the failure, or before
/// a crash that left the held file behind, may be written again.
pub(crate) async fn retry_side_effects(st: &AppState, cached: Cached, e: Effects) {
    let user = cached.user.id.clone();
    hold_side_effects(st, &user, Some(cached), e).await;
}

/// Holds side effects in the queue of held writes (and the spill directory); without the
/// user's entry (`None`), the first attempt reads the user's record from the store.
async fn hold_side_effects(st: &AppState, user: &str, cached: Option<Cached>, e: Effects) {
    let file = spill(st, user, &e);
    let held = Box::new(HeldSideEffects {
        user: user.to_owned(),
        cached,
        effects: e,
        file,
    });
    st.held.hold(held).await;
}

/// Side effects in the held queue.
struct HeldSideEffects {
    user: String,
    /// The user's cache entry as the turn saw it; read from the store on the first attempt
    /// for side effects replayed from the spill directory.
    cached: Option<Cached>,
    effects: Effects,
    /// Their file in the spill directory, released once they are written.
    file: Option<HeldItem>,
}

impl Held<AppState> for HeldSideEffects {
    fn kind(&self) -> Kind {
        Kind::SideEffects
    }

    fn bytes(&self) -> usize {
        EFFECTS_BYTES
    }

    /// Side effects that open a case for a person in crisis: the crisis reply waits for this.
    fn urgent(&self) -> bool {
        self.effects
            .decision
            .actions
            .iter()
            .any(|d| matches!(d.action, Action::Escalate { .. }))
    }

    fn write<'a>(&'a mut self, st: &'a AppState) -> Attempt<'a> {
        Box::pin(self.attempt(st))
    }
}

impl HeldSideEffects {
    /// One attempt; once written, the held file goes and a takeover case opened late reaches
    /// the user's cache entry.
    async fn attempt(&mut self, st: &AppState) -> Outcome {
        let cached = match &self.cached {
            Some(c) => c.clone(),
            // Recorded if the turn could not (its record unread or unwritten): the case and
            // the rows refer to the user.
            None => match st
                .records
                .backend
                .touch_user(&self.user, self.effects.now)
                .await
            {
                Ok(u) => self.cached.insert(replayed_user(u, &self.effects)).clone(),
                Err(err) => return Outcome::Failed(format!("reading the user: {err}")),
            },
        };
        let mut written = cached;
        let refused = match side_effects(st, &mut written, &self.effects).await {
            Ok(_) => None,
            Err(err @ (ApiError::NotFound(_) | ApiError::Conflict(_))) => Some(err.to_string()),
            Err(err) => return Outcome::Failed(err.to_string()),
        };
        if let Some(item) = self.file.take()
            && let Err(err) = item.release()
        {
            tracing::error!(error = %err, "written side effects' spill file cannot be removed; a restart writes them again");
        }
        if let Some(why) = refused {
            return Outcome::Refused(why);
        }
        st.metrics.side_effects_late.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("an intervention's side effects were written late, after a failed write");
        if self.effects.named
            && let Some(case) = written.takeover_case
        {
            late_takeover(st, &written.user.id, case);
        }
        Outcome::Written
    }
}

/// Side effects as held in the spill directory: what [`side_effects`] needs, and the user's
/// id (no chat text).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeldEffects {
    tutela_held_effects: u32,
    user: String,
    jurisdiction: String,
    decision: Decision,
    detector: Option<String>,
    side: Side,
    at: Timestamp,
    session_id: String,
    lang: String,
    seq: Option<i64>,
    named: bool,
}

impl HeldEffects {
    fn of(user: &str, e: &Effects) -> Self {
        HeldEffects {
            tutela_held_effects: 1,
            user: user.to_owned(),
            jurisdiction: e.jurisdiction.clone(),
            decision: e.decision.clone(),
            detector: e.detector.clone(),
            side: e.side,
            at: e.now,
            session_id: e.session_id.clone(),
            lang: e.lang.code().to_owned(),
            seq: e.seq,
            named: e.named,
        }
    }

    fn into_effects(self) -> (String, Effects) {
        let lang = if self.lang == Lang::Zh.code() {
            Lang::Zh
        } else {
            Lang::En
        };
        let e = Effects {
            jurisdiction: self.jurisdiction,
            decision: self.decision,
            detector: self.detector,
            side: self.side,
            now: self.at,
            session_id: self.session_id,
            lang,
            seq: self.seq,
            named: self.named,
        };
        (self.user, e)
    }
}

/// Holds the side effects in the spill directory, if the deployment has one.
fn spill(st: &AppState, user: &str, e: &Effects) -> Option<HeldItem> {
    let dir = st.records.spill.as_ref()?;
    let body = match serde_json::to_vec(&HeldEffects::of(user, e)) {
        Ok(b) => b,
        Err(err) => {
            tracing::error!(error = %err, "side effects cannot be encoded for the spill directory");
            return None;
        }
    };
    let tag = st.records.pseudonyms.database_tag();
    match dir.hold(HELD_KIND, &tag, e.now.unix(), &body) {
        Ok(item) => {
            st.metrics
                .side_effects_spilled
                .fetch_add(1, Ordering::Relaxed);
            Some(item)
        }
        Err(err) => {
            tracing::error!(error = %err, "an intervention's side effects cannot be held in the spill directory; they are retried in memory only (lost if the process ends first)");
            None
        }
    }
}

/// At start: the side effects an earlier process held in the spill directory (it ended before
/// it could write them) are held again, ahead of anything this process holds, and written by
/// the same worker; their files are removed after.
pub(crate) fn replay_held_side_effects(st: &AppState) {
    let Some(dir) = st.records.spill.as_ref() else {
        return;
    };
    let items = match dir.held(HELD_KIND, &st.records.pseudonyms.database_tag()) {
        Ok(items) => items,
        Err(err) => {
            tracing::error!(error = %err, "held side effects cannot be read; they stay in the spill directory");
            return;
        }
    };
    for (item, body) in items {
        let held: HeldEffects = match serde_json::from_slice(&body) {
            Ok(h) => h,
            Err(err) => {
                let path = item.path().display().to_string();
                tracing::error!(error = %err, path, "a held side effects file cannot be read; it stays in the spill directory");
                continue;
            }
        };
        st.metrics
            .side_effects_replayed
            .fetch_add(1, Ordering::Relaxed);
        let (user, effects) = held.into_effects();
        st.held.hold_now(Box::new(HeldSideEffects {
            user,
            cached: None,
            effects,
            file: Some(item),
        }));
    }
}

/// The cache entry of replayed side effects' user, as read from the store (their contacts,
/// their age state).
fn replayed_user(user: User, e: &Effects) -> Cached {
    Cached {
        user,
        session: SessionState::default(),
        session_id: e.session_id.clone(),
        takeover_case: None,
        turns: 0,
        deferred_notice: None,
        deferred_stored: false,
        stamp: None,
    }
}

/// A takeover case opened late reaches the user's cache entry. The worker never waits for a
/// user's lock (a turn holding it may be waiting for room in the held queue): when the lock
/// is taken, a task of its own waits for it.
fn late_takeover(st: &AppState, user_id: &str, case: i64) {
    let slot = st.user_slot(user_id);
    if let Ok(mut g) = slot.try_lock() {
        set_takeover(&mut g, case);
        return;
    }
    tokio::spawn(async move {
        let mut g = slot.lock().await;
        set_takeover(&mut g, case);
    });
}

fn set_takeover(entry: &mut Option<Cached>, case: i64) {
    if let Some(entry) = entry.as_mut()
        && entry.takeover_case.is_none()
    {
        entry.takeover_case = Some(case);
    }
}
