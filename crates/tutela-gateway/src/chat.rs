//! One chat turn, end to end: identity and jurisdiction, the user side (detectors → engine →
//! side effects), the model or a template, the assistant side (whole replies here, streams in
//! `relay`), labels and notices, and the records.
//!
//! Invariant: a reply that the engine blocks never reaches the client, and an intervention's
//! audit record is committed before its reply leaves.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tutela_policy::{EvalContext, Turn};
use tutela_store::{
    AuditEntry, AuditKind, AuditPayload, ContactAddress, Intervention, NewEscalation,
    NewNotification, TurnRecord, UserUpdate,
};
use tutela_types::{
    Action, AgeState, Counter, Decision, Finding, NoticeContent, PersonaKind, ReplyTemplate,
    SessionState, Side, Timestamp,
};

use crate::clock::Stopwatch;
use crate::config::{Anonymous, ExplicitLabel, parse_persona};
use crate::encoder;
use crate::error::{ApiError, ErrorSource};
use crate::labels::Aigc;
use crate::relay;
use crate::state::{AppState, Cached, Compiled};
use crate::texts::{self, Lang};
use crate::upstream::UpstreamReply;

/// Who wrote a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    /// The model.
    Model,
    /// tutela's own template.
    Tutela,
    /// A human during takeover.
    Human,
}

impl Author {
    fn as_str(self) -> &'static str {
        match self {
            Author::Model => "model",
            Author::Tutela => "tutela",
            Author::Human => "human",
        }
    }
}

/// What a turn knows once the user side is decided; the relay carries it into the stream.
pub struct TurnCtx {
    /// The shared state.
    pub st: AppState,
    /// The user id.
    pub user_id: String,
    /// The session id.
    pub session_id: String,
    /// The composed profiles.
    pub compiled: Arc<Compiled>,
    /// The user's state as the engine saw it.
    pub user: tutela_types::UserState,
    /// The user's record, carried so the assistant side's side effects reach it without a
    /// lookup (anonymous users have no cache entry).
    pub account: tutela_store::User,
    /// The clocks after the user turn.
    pub session: tutela_types::SessionState,
    /// The persona.
    pub persona: PersonaKind,
    /// The instant of the turn.
    pub now: Timestamp,
    /// The language to answer in.
    pub lang: Lang,
    /// The user's message (context for assistant-side detectors).
    pub user_text: String,
    /// Model name for chunk envelopes.
    pub model: String,
    /// Completion id.
    pub completion_id: String,
    /// The `AIGC` metadata of this reply.
    pub aigc: Aigc,
    /// The notice text to show (already rendered), if any.
    pub notice_text: Option<String>,
    /// `tutela.notices`.
    pub notices: Value,
    /// `tutela.interventions` from the user side.
    pub interventions: Vec<Value>,
    /// Whether the client asked for the usage chunk.
    pub include_usage: bool,
    /// The user side's audit record of a normal turn, written together with the assistant
    /// side's decision as one record (or on drop, if the turn ends early).
    pub pending_audit: std::sync::Mutex<Option<AuditEntry>>,
    /// The app asked for structured output (`response_format` JSON): the content is never
    /// altered; tutela's own text goes in `refusal`.
    pub structured: bool,
    /// `notice_text` includes a notice deferred from an earlier turn.
    pub carried_notice: bool,
    /// An estimate of the request's prompt tokens, for usage the upstream could not report
    /// (a stream stopped before its usage chunk).
    pub prompt_tokens: u64,
    /// Test traffic (`X-Tutela-Test-Key`): recorded as a test, no side effects.
    pub test: bool,
    /// An anonymous request: no per-user cache entry, its side effects use `account`.
    pub anonymous: bool,
    /// The app offered tools (`tools`, `functions`): the reply may be a tool call, so the
    /// inline notice waits for the first text.
    pub tools: bool,
    /// Tool-call arguments the app shows to the person (`X-Tutela-Shown-Arguments`): checked
    /// as the reply's text is.
    pub shown: crate::openai::ShownArguments,
    /// Choices asked for (`n`, JSON only): a reply tutela writes gives that many.
    pub n: u64,
}

impl Drop for TurnCtx {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pending_audit.lock()
            && let Some(entry) = p.take()
        {
            self.st.records.audit_now(entry);
        }
    }
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    axum::extract::State(st): axum::extract::State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sw = Stopwatch::start();
    let result = turn(&st, &headers, &body, sw).await;
    let m = &st.metrics;
    match result {
        Ok(resp) => {
            m.requests_ok
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            resp
        }
        Err(e) => {
            let c = match e.source_kind() {
                ErrorSource::Client => &m.requests_client_err,
                ErrorSource::Upstream => &m.requests_upstream_err,
                ErrorSource::Internal => &m.requests_internal_err,
            };
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if e.source_kind() != ErrorSource::Client {
                tracing::warn!(
                    source = e.source_kind().as_str(),
                    "chat request failed: {e}"
                );
            }
            e.into_response()
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn store_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::Store(e.to_string())
}

/// The user's record, clocks and case. A store that cannot write (a full disk) must not keep
/// a person from the crisis reply: a newcomer who cannot be written is served as a fresh user
/// (logged, counted); only a store that cannot be read fails the turn.
async fn load_user(st: &AppState, id: &str, now: Timestamp) -> Result<Cached, ApiError> {
    let b = &st.records.backend;
    let user = match b.touch_user(id, now).await {
        Ok(u) => u,
        Err(e) => {
            st.metrics
                .store_write_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "cannot record a user; serving the turn without it");
            b.get_user(id)
                .await
                .map_err(store_err)?
                .unwrap_or_else(|| tutela_store::User::new(id, now))
        }
    };
    let session = b
        .session_state(id)
        .await
        .map_err(store_err)?
        .unwrap_or_default();
    let case = b.active_escalation(id).await.map_err(store_err)?;
    Ok(Cached {
        user,
        session,
        session_id: st.ids.next(),
        takeover_case: case.filter(|c| c.takeover).map(|c| c.id),
        turns: 0,
        deferred_notice: None,
    })
}

/// Logs and counts a failed write of a turn whose reply goes out anyway.
fn write_failed(st: &AppState, what: &str, e: &dyn std::fmt::Display) {
    st.metrics
        .store_write_errors
        .fetch_add(1, Ordering::Relaxed);
    tracing::error!(error = %e, "{what} failed; the reply goes out anyway");
}

async fn turn(
    st: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    sw: Stopwatch,
) -> Result<Response, ApiError> {
    let now = st.clock.now();
    let mut req: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let parsed = crate::openai::parse_chat(&req)?;
    let prompt_tokens = req
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, |m| {
            m.iter()
                .map(|m| relay::estimate_tokens(&crate::openai::content_text(m)) + 4)
                .sum()
        });
    if matches!(st.upstream, crate::upstream::Upstream::Demo)
        && let Some(m) = parsed.model.as_deref()
        && m != crate::demo::MODEL
    {
        // The demo serves one model; answering any other name would hide a misconfiguration.
        return Err(ApiError::ModelNotFound(m.to_owned()));
    }
    let stream = parsed.stream;
    let include_usage = parsed.include_usage;
    let model = parsed
        .model
        .clone()
        .unwrap_or_else(|| crate::demo::MODEL.to_owned());
    let user_text = parsed.user_text.clone();
    let named_user = parsed
        .user
        .clone()
        .or_else(|| header_str(headers, "x-tutela-user").map(str::to_owned));
    let anonymous = named_user.is_none();
    let user_id = match named_user {
        Some(u) if u.len() <= 256 => u,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "the user id is longer than 256 bytes".into(),
            ));
        }
        None => match st.config.anonymous {
            Anonymous::Reject => return Err(ApiError::MissingUser),
            Anonymous::Allow => "anonymous".to_owned(),
        },
    };
    let persona = match header_str(headers, "x-tutela-persona") {
        Some(p) => parse_persona(p).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`X-Tutela-Persona: {p}` is not one of general, partner, relative, specific_person"
            ))
        })?,
        None => st.config.personas.get(&model).copied().unwrap_or_default(),
    };
    let test = crate::test_traffic::is_test(st, headers)?;
    let lang = Lang::detect(&user_text);
    // The encoder's scan of the message starts now, on the blocking pool, and runs while the
    // rest of the user side and the upstream request go on.
    let encoder = st.encoder.spawn(&st.scanner, Side::User, &user_text);

    // The user side, under the user's lock: read the clocks, decide, write them back.
    // Anonymous requests share no state: each gets fresh clocks and never enters takeover
    // (there is no one to hand a human's reply back to).
    // Test traffic is the same: a user that is never stored (see `test_traffic`).
    let slot = if anonymous || test {
        let user = if test {
            tutela_store::User::new(user_id.clone(), now)
        } else {
            match st
                .anonymous_user
                .get_or_try_init(|| st.records.backend.touch_user(&user_id, now))
                .await
            {
                Ok(u) => u.clone(),
                Err(e) => {
                    write_failed(st, "recording the anonymous user", &e);
                    tutela_store::User::new(&user_id, now)
                }
            }
        };
        Arc::new(tokio::sync::Mutex::new(Some(Cached {
            user,
            session: tutela_types::SessionState::default(),
            session_id: st.ids.next(),
            takeover_case: None,
            turns: 0,
            deferred_notice: None,
        })))
    } else {
        st.user_slot(&user_id)
    };
    let mut guard = slot.lock().await;
    if guard.is_none() {
        *guard = Some(load_user(st, &user_id, now).await?);
    }
    let Some(cached) = guard.as_mut() else {
        return Err(ApiError::Internal(
            "user cache slot empty after load".into(),
        ));
    };
    let jurisdictions: Vec<String> = match header_str(headers, "x-tutela-jurisdiction") {
        Some(h) => split_list(h),
        None => match &cached.user.jurisdiction {
            Some(j) => split_list(j),
            None => st.config.jurisdictions.clone(),
        },
    };
    if jurisdictions.is_empty() {
        return Err(ApiError::BadRequest(
            "`X-Tutela-Jurisdiction` names no jurisdiction".into(),
        ));
    }
    let compiled = st.compiled(&jurisdictions)?;

    if let Some(case) = cached.takeover_case {
        // Staff may have resolved the case since this user's last turn.
        let active = st
            .records
            .backend
            .active_escalation(&user_id)
            .await
            .map_err(store_err)?;
        if active.as_ref().is_none_or(|c| c.id != case || !c.takeover) {
            cached.takeover_case = None;
        }
    }
    if let Some(case) = cached.takeover_case {
        cached.turns += 1;
        let session_id = cached.session_id.clone();
        drop(guard);
        st.metrics.takeover_turns.fetch_add(1, Ordering::Relaxed);
        return crate::takeover::turn(
            st,
            &user_id,
            &session_id,
            case,
            &compiled,
            &user_text,
            lang,
            &model,
            stream,
            include_usage,
            parsed.structured,
            now,
        )
        .await;
    }

    // The quick tiers now, under the lock; the encoder (when attached) has been running on
    // the blocking pool since the request was read.
    let quick = st.scanner.scan_quick(Side::User, &user_text, None);
    let user_state = cached.user.state();
    let session_before = cached.session.clone();
    let eval_user = |findings: &[Finding]| {
        compiled.set.evaluate(
            &EvalContext {
                now,
                user: &user_state,
                session: &session_before,
                turn: Turn {
                    side: Side::User,
                    persona,
                },
            },
            findings,
        )
    };
    let first = eval_user(&quick);
    if first.session.continuous_since != cached.session.continuous_since {
        cached.session_id = st.ids.next();
    }
    let usage_secs = if first.session.usage_day == cached.session.usage_day {
        first
            .session
            .used_today_secs
            .saturating_sub(cached.session.used_today_secs)
    } else {
        first.session.used_today_secs
    };
    cached.session = first.session.clone();
    cached.turns += 1;
    let carried = cached.deferred_notice.clone();
    let turn_no = cached.turns;
    let session_id = cached.session_id.clone();

    // With the encoder in flight: let go of the user's lock, ask the upstream (unless a
    // template answers) while the encoder finishes, then decide on every tier's findings.
    // Nothing of the reply leaves before that decision.
    let mut findings = quick;
    let mut decision = first.clone();
    let mut encoder_note: Option<&'static str> = None;
    let up = Stopwatch::start();
    let mut call = None;
    let mut early: Option<(Result<UpstreamReply, ApiError>, f64)> = None;
    let mut held = Some(guard);
    if let Some(pending) = encoder {
        held = None;
        if first.replacement().is_none() {
            call = Some(Box::pin(st.upstream.complete(
                &mut req,
                body.clone(),
                stream,
                &user_text,
                turn_no,
                now,
            )));
        }
        let wait = pending.wait();
        tokio::pin!(wait);
        let outcome = match call.as_mut() {
            None => {
                let w = Stopwatch::start();
                let o = wait.await;
                st.metrics.encoder_wait.observe(w.secs());
                o
            }
            Some(c) => tokio::select! {
                biased;
                o = &mut wait => {
                    st.metrics.encoder_wait.observe(0.0);
                    o
                }
                a = c.as_mut() => {
                    early = Some((a, up.secs()));
                    let w = Stopwatch::start();
                    let o = wait.await;
                    st.metrics.encoder_wait.observe(w.secs());
                    o
                }
            },
        };
        match outcome {
            encoder::Outcome::Ran(found, windows) => {
                st.metrics.encoder_ran(Side::User, windows);
                let added = crate::scan::merge_encoder(&findings, found);
                if !added.is_empty() {
                    findings.extend(added);
                    decision = eval_user(&findings);
                }
            }
            encoder::Outcome::TimedOut => {
                st.metrics.encoder_timeouts.fetch_add(1, Ordering::Relaxed);
                encoder_note = Some("timeout");
            }
            encoder::Outcome::Failed => {
                st.metrics.encoder_failures.fetch_add(1, Ordering::Relaxed);
                encoder_note = Some("failed");
            }
        }
        if decision.intervenes() || decision.session != first.session {
            let mut g = slot.lock().await;
            if g.is_none() {
                *g = Some(load_user(st, &user_id, now).await?);
            }
            if let Some(c) = g.as_mut() {
                merge_session(&mut c.session, &first.session, &decision.session);
            }
            held = Some(g);
        }
    }
    st.metrics.learned_findings(&findings);

    let turn_record = TurnRecord {
        user_id: user_id.clone(),
        session_id: session_id.clone(),
        jurisdiction: compiled.label.clone(),
        at: now,
        state: decision.session.clone(),
        local_day: now.local_date(user_state.utc_offset_minutes),
        usage_secs,
    };
    let mut audit = AuditEntry {
        at: now,
        kind: if decision.intervenes() {
            AuditKind::Intervention
        } else {
            AuditKind::Turn
        },
        user: Some(user_id.clone()),
        session: Some(session_id.clone()),
        jurisdiction: Some(compiled.label.clone()),
        payload: AuditPayload::from_decision(&findings, &decision),
        profile_hash: compiled.set.snapshot_hash().to_owned(),
        content_hash: Some(st.records.pseudonyms.content_hash(&user_text)),
    };
    if let Some(note) = encoder_note {
        // The turn was decided without the encoder tier; the record says so.
        audit.payload.detail = Some(json!({ "encoder": note }));
    }
    let mut case_id = None;
    let mut pending = None;
    let mut user_after = user_state.clone();
    if test {
        // Recorded as a test, with the assistant side's part; counted only as a test turn.
        // No case, notification, counter, session or usage row.
        audit.kind = AuditKind::Test;
        st.metrics.test_turns.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = st
            .records
            .backend
            .bump(Counter::TestTurn, &compiled.label, now, 1)
            .await
        {
            write_failed(st, "counting a test turn", &e);
        }
        pending = Some(audit);
    } else if decision.intervenes() {
        let Some(cached) = held.as_mut().and_then(|g| g.as_mut()) else {
            return Err(ApiError::Internal(
                "user cache slot empty after load".into(),
            ));
        };
        // Durable before anything of this turn reaches the user; if the store cannot write,
        // the record is held and retried, and the reply (help lines) still goes out.
        let seq = durable(st, audit).await;
        // The session row must exist before an `end_session` can close it.
        if let Err(e) = st.records.backend.record_turn(&turn_record).await {
            write_failed(st, "recording an intervening turn", &e);
        }
        case_id = side_effects(
            st,
            cached,
            &compiled,
            &decision,
            &findings,
            Side::User,
            now,
            &session_id,
            lang,
            seq,
        )
        .await
        .unwrap_or_else(|e| {
            write_failed(st, "the user side's side effects", &e);
            retry_side_effects(
                st,
                cached.clone(),
                Effects {
                    compiled: compiled.clone(),
                    decision: decision.clone(),
                    findings: findings.clone(),
                    side: Side::User,
                    now,
                    session_id: session_id.clone(),
                    lang,
                    seq,
                    named: !anonymous && !test,
                },
            );
            None
        });
        if let Some(case) = case_id {
            crate::case_context::keep(st, case, body, &user_text, &findings, now).await;
        }
        user_after = cached.user.state();
    } else {
        pending = Some(audit);
    }
    let account = held
        .as_ref()
        .and_then(|g| g.as_ref())
        .map(|c| c.user.clone())
        .unwrap_or_else(|| tutela_store::User::new(&user_id, now));
    let session_after = decision.session.clone();
    drop(held);
    if pending.is_some() && !test {
        // Queued after the user's lock is let go: a full queue holds only this turn.
        st.records.turn(turn_record).await;
    }

    let id = st.ids.next();
    let completion_id = format!("chatcmpl-tutela-{id}");
    let aigc = Aigc::new(&st.config.provider_name, &st.config.propagator, &id);
    let (mut notice_text, mut notices) = render_notices(st, &compiled, &decision, lang);
    let contents_of = |notices: &[Value]| -> Vec<String> {
        notices
            .iter()
            .filter_map(|n| n["contents"].as_array())
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect()
    };
    let fresh = contents_of(notices.as_array().map_or(&[], Vec::as_slice));
    let had_carried = carried.is_some();
    // A new notice that says everything the unseen one said supersedes it.
    let carried = carried.filter(|d| {
        notice_text.is_none() || !contents_of(&d.notices).iter().all(|c| fresh.contains(c))
    });
    let superseded = had_carried && carried.is_none();
    if let Some(d) = &carried {
        // A notice the person has not seen yet (an earlier reply was for the app) goes first.
        notice_text = Some(match notice_text {
            Some(t) => format!("{}\n\n{t}", d.text),
            None => d.text.clone(),
        });
        if let Value::Array(a) = &mut notices {
            a.extend(d.notices.iter().cloned());
        }
    }
    let mut interventions = interventions_json(&decision, Side::User);
    if let Some(c) = case_id
        && let Some(Value::Object(o)) = interventions.iter_mut().find(|v| v["kind"] == "escalate")
    {
        o.insert("case".into(), json!(c));
    }
    let ctx = TurnCtx {
        st: st.clone(),
        user_id,
        session_id,
        compiled: compiled.clone(),
        user: user_after,
        account,
        session: session_after,
        persona,
        now,
        lang,
        user_text: user_text.clone(),
        model,
        completion_id,
        aigc,
        notice_text,
        notices,
        interventions,
        include_usage,
        pending_audit: std::sync::Mutex::new(pending),
        structured: parsed.structured,
        carried_notice: carried.is_some() || superseded,
        prompt_tokens,
        test,
        anonymous,
        tools: parsed.tools,
        n: parsed.n,
        shown: header_str(headers, "x-tutela-shown-arguments")
            .map(crate::openai::ShownArguments::parse)
            .unwrap_or_default(),
    };

    if let Some((template, resources)) = decision.replacement() {
        // The model's reply, if it was asked (the encoder decided after), is dropped unread:
        // its connection closes and not a byte of it reaches the client.
        drop(early);
        drop(call);
        let text = render_template(st, &compiled, template, resources, lang);
        st.metrics.added_latency.observe(sw.secs());
        return Ok(reply(&ctx, text, Author::Tutela, stream, None).await);
    }

    // The model's turn.
    let (answer, up_secs) = if let Some(a) = early {
        a
    } else if let Some(c) = call.as_mut() {
        let a = c.await;
        (a, up.secs())
    } else {
        // Asked only now: without the encoder, or when the quick tiers chose a template the
        // full decision did not keep.
        drop(call);
        let up = Stopwatch::start();
        let a = st
            .upstream
            .complete(&mut req, body.clone(), stream, &user_text, turn_no, now)
            .await;
        (a, up.secs())
    };
    st.metrics.upstream_latency.observe(up_secs);
    match answer? {
        UpstreamReply::Json(v) => {
            let resp = json_reply(&ctx, v).await?;
            st.metrics
                .added_latency
                .observe((sw.secs() - up_secs).max(0.0));
            Ok(resp)
        }
        UpstreamReply::Stream(events) => {
            st.metrics
                .added_latency
                .observe((sw.secs() - up_secs).max(0.0));
            st.metrics.streams.fetch_add(1, Ordering::Relaxed);
            Ok(relay::start(ctx, events))
        }
    }
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

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Carries out the side effects of a decision: minors' mode, escalation, notifications,
/// counters, session end, and the intervention rows. Returns the escalation case id.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the turn's parts, named"
)]
pub async fn side_effects(
    st: &AppState,
    cached: &mut Cached,
    compiled: &Compiled,
    decision: &Decision,
    findings: &[Finding],
    side: Side,
    now: Timestamp,
    session_id: &str,
    lang: Lang,
    audit_seq: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    let b = &st.records.backend;
    let detector = findings
        .iter()
        .max_by(|a, b| a.severity.cmp(&b.severity))
        .map(|f| f.detector.as_str().to_owned());
    let mut case_id = None;
    let mut rows = Vec::new();
    for d in &decision.actions {
        match &d.action {
            Action::SwitchMinorsMode if !cached.user.age_state.is_minor_or_suspected() => {
                let update = UserUpdate {
                    age_state: Some(AgeState::SuspectedMinor),
                    ..UserUpdate::default()
                };
                cached.user = b
                    .update_user(&cached.user.id, &update, now)
                    .await
                    .map_err(store_err)?;
            }
            Action::Escalate { takeover, severity } => {
                let (esc, _created) = b
                    .open_escalation(&NewEscalation {
                        user_id: cached.user.id.clone(),
                        session_id: Some(session_id.to_owned()),
                        jurisdiction: Some(compiled.label.clone()),
                        severity: *severity,
                        takeover: *takeover,
                        detector: detector.clone(),
                        reasons: d.reasons.clone(),
                        at: now,
                    })
                    .await
                    .map_err(store_err)?;
                if esc.takeover && cached.user.id != "anonymous" {
                    cached.takeover_case = Some(esc.id);
                }
                case_id = Some(esc.id);
            }
            Action::Count { counter } => {
                b.bump(*counter, &compiled.label, now, 1)
                    .await
                    .map_err(store_err)?;
            }
            Action::EndSession { reason } => {
                let r = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                b.end_session(session_id, now, &r)
                    .await
                    .map_err(store_err)?;
            }
            _ => {}
        }
        if !matches!(d.action, Action::Label { .. } | Action::Count { .. }) {
            st.metrics.intervention(d.action.kind());
            rows.push(Intervention {
                id: 0,
                at: now,
                user_id: Some(cached.user.id.clone()),
                session_id: Some(session_id.to_owned()),
                jurisdiction: compiled.label.clone(),
                detector: detector.clone(),
                side: Some(side),
                action: d.action.clone(),
                reasons: d.reasons.clone(),
                audit_seq,
            });
        }
    }
    // Notifications after the case exists, so they can name it.
    for d in &decision.actions {
        if let Action::NotifyContact { contact } = d.action {
            let addrs: Vec<ContactAddress> = cached.user.contacts_of(contact).cloned().collect();
            for a in addrs {
                let payload = json!({
                    "type": "tutela.safety_alert",
                    "user": cached.user.id,
                    "contact_kind": a.kind,
                    "escalation": case_id,
                    "jurisdiction": compiled.label,
                    "at": now,
                    "language": lang.code(),
                    "message": match lang {
                        Lang::En => "Someone you are a contact for may need support right now. Please reach out to them. (No conversation text is included.)",
                        Lang::Zh => "您登记的联系人目前可能需要帮助，请尽快与其联系。（通知不包含对话内容。）",
                    },
                });
                b.enqueue(&NewNotification {
                    user_id: Some(cached.user.id.clone()),
                    escalation_id: case_id,
                    contact: a,
                    payload,
                    at: now,
                })
                .await
                .map_err(store_err)?;
                crate::outbox::kick(st);
            }
        }
    }
    if !rows.is_empty() {
        b.record_interventions(&rows).await.map_err(store_err)?;
    }
    Ok(case_id)
}

/// An intervention's side effects to write again later (see [`retry_side_effects`]).
struct Effects {
    compiled: Arc<Compiled>,
    decision: tutela_types::Decision,
    findings: Vec<Finding>,
    side: Side,
    now: Timestamp,
    session_id: String,
    lang: Lang,
    seq: Option<i64>,
    /// A named user (their cache entry learns of a takeover case opened late).
    named: bool,
}

/// Side effects retried after a failed write: for about an hour, backing off to 5 s.
const SIDE_EFFECT_ATTEMPTS: u32 = 720;

/// When the store cannot write an intervention's side effects (a full disk), the reply has
/// already gone out; the case for the crisis team, the notifications, the intervention rows
/// and counters must still reach the store. A background task writes them again with a
/// bounded backoff until they are written (`tutela_side_effects_late_total`), or gives up
/// after about an hour and logs it at error level. Opening a case is idempotent (the active
/// case is returned); a counter bumped before the failure may be bumped again.
fn retry_side_effects(st: &AppState, cached: Cached, e: Effects) {
    let st = st.clone();
    tokio::spawn(async move {
        let mut delay = std::time::Duration::from_millis(250);
        for _ in 0..SIDE_EFFECT_ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
            let mut c = cached.clone();
            let done = side_effects(
                &st,
                &mut c,
                &e.compiled,
                &e.decision,
                &e.findings,
                e.side,
                e.now,
                &e.session_id,
                e.lang,
                e.seq,
            )
            .await;
            if done.is_err() {
                continue;
            }
            st.metrics.side_effects_late.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "an intervention's side effects were written late, after a failed write"
            );
            if e.named
                && let Some(case) = c.takeover_case
            {
                let slot = st.user_slot(&c.user.id);
                let mut g = slot.lock().await;
                if let Some(entry) = g.as_mut()
                    && entry.takeover_case.is_none()
                {
                    entry.takeover_case = Some(case);
                }
            }
            return;
        }
        tracing::error!(
            "gave up writing an intervention's side effects (case, notifications, rows) after an hour of failed writes"
        );
    });
}

/// Appends an intervention's audit record and waits for the commit; returns its seq. When the
/// store cannot write, the record is held and retried by the writer, the miss is logged and
/// counted, and the turn goes on: the person gets the reply (crisis help) all the same.
async fn durable(st: &AppState, audit: AuditEntry) -> Option<i64> {
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

/// Template text with the resources of the user's regions.
pub fn render_template(
    st: &AppState,
    compiled: &Compiled,
    template: ReplyTemplate,
    resources: bool,
    lang: Lang,
) -> String {
    let lines = if resources {
        texts::resource_lines(&st.config.resources, &compiled.regions, lang)
    } else {
        String::new()
    };
    texts::template(template, lang, &lines)
}

/// The notice text and `tutela.notices`.
fn render_notices(
    st: &AppState,
    compiled: &Compiled,
    decision: &Decision,
    lang: Lang,
) -> (Option<String>, Value) {
    let contents = decision.notice_contents();
    if contents.is_empty() {
        return (None, json!([]));
    }
    let minutes = decision
        .actions
        .iter()
        .find_map(|d| match &d.action {
            Action::Notice {
                continuous_minutes, ..
            } => Some(*continuous_minutes),
            _ => None,
        })
        .unwrap_or(0);
    let resources = if contents.contains(&NoticeContent::HelpResources) {
        texts::resource_lines(&st.config.resources, &compiled.regions, lang)
    } else {
        String::new()
    };
    let text = texts::notice(&contents, minutes, lang, &resources);
    let reasons: Vec<&tutela_types::Reason> = decision
        .actions
        .iter()
        .filter(|d| matches!(d.action, Action::Notice { .. }))
        .flat_map(|d| d.reasons.iter())
        .collect();
    let v = json!([{ "contents": contents, "continuous_minutes": minutes, "text": text, "reasons": reasons }]);
    (Some(text), v)
}

/// `tutela.interventions` for a decision (everything but labels and counters).
pub fn interventions_json(decision: &Decision, side: Side) -> Vec<Value> {
    decision
        .actions
        .iter()
        .filter(|d| {
            !matches!(
                d.action,
                Action::Label { .. } | Action::Count { .. } | Action::Notice { .. }
            )
        })
        .map(|d| {
            let mut v = serde_json::to_value(&d.action).unwrap_or(Value::Null);
            if let Value::Object(o) = &mut v {
                o.insert("side".into(), json!(side));
                o.insert("reasons".into(), json!(d.reasons));
            }
            v
        })
        .collect()
}

/// The reply text with the inline notice and the explicit label applied.
pub fn decorate(ctx: &TurnCtx, text: &str, author: Author) -> String {
    let mut out = opening(ctx, author);
    out.push_str(text);
    out.push_str(&closing(ctx, author));
    out
}

/// What goes before the reply text: the inline notice and a prefix label.
pub fn opening(ctx: &TurnCtx, author: Author) -> String {
    let cfg = &ctx.st.config;
    let mut out = String::new();
    if cfg.notices.inline()
        && let Some(n) = &ctx.notice_text
    {
        out.push_str(n);
        out.push_str("\n\n");
    }
    if author != Author::Human && cfg.explicit_label == ExplicitLabel::Prefix {
        out.push_str(label_text(ctx));
        out.push(' ');
    }
    out
}

/// What goes after the reply text: a suffix label.
pub fn closing(ctx: &TurnCtx, author: Author) -> String {
    if author != Author::Human && ctx.st.config.explicit_label == ExplicitLabel::Suffix {
        format!(" {}", label_text(ctx))
    } else {
        String::new()
    }
}

fn label_text(ctx: &TurnCtx) -> &str {
    match ctx.lang {
        Lang::En => &ctx.st.config.label_text_en,
        Lang::Zh => &ctx.st.config.label_text_zh,
    }
}

/// The `tutela` object of a reply.
pub fn tutela_object(ctx: &TurnCtx, author: Author, extra_interventions: &[Value]) -> Value {
    let mut o = Map::new();
    o.insert("notices".into(), ctx.notices.clone());
    let mut iv = ctx.interventions.clone();
    iv.extend_from_slice(extra_interventions);
    o.insert("interventions".into(), Value::Array(iv));
    o.insert("author".into(), json!(author.as_str()));
    if author != Author::Human {
        o.insert(
            "aigc".into(),
            serde_json::to_value(&ctx.aigc).unwrap_or(Value::Null),
        );
        o.insert("label".into(), json!(label_text(ctx)));
    }
    o.insert("jurisdictions".into(), json!(ctx.compiled.label));
    o.insert("language".into(), json!(ctx.lang.code()));
    Value::Object(o)
}

/// Headers of every reply: the `AIGC` metadata (not on a human's reply) and
/// `X-Tutela-Notices`.
pub fn add_label_headers(resp: &mut Response, ctx: &TurnCtx, author: Author) {
    if author != Author::Human
        && let Ok(v) = HeaderValue::from_str(&ctx.aigc.header_value())
    {
        resp.headers_mut().insert("aigc", v);
    }
    if let Some(v) = notice_header(ctx) {
        resp.headers_mut().insert("x-tutela-notices", v);
    }
}

/// `X-Tutela-Notices`: the contents of this reply's notices (`ai_identity,take_break`), so
/// an app that reads only headers (or a reply whose content is for the app) still learns that
/// a notice is due; the texts are in `tutela.notices`.
pub fn notice_header(ctx: &TurnCtx) -> Option<HeaderValue> {
    let mut ids: Vec<&str> = ctx
        .notices
        .as_array()?
        .iter()
        .filter_map(|n| n["contents"].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return None;
    }
    HeaderValue::from_str(&ids.join(",")).ok()
}

/// A reply that tutela writes itself (template, human, holding message), JSON or SSE. For a
/// structured-output request the text goes in `refusal` (content null), as OpenAI sends a
/// model's refusal, so the app's JSON parsing never sees prose.
pub async fn reply(
    ctx: &TurnCtx,
    text: String,
    author: Author,
    stream: bool,
    extra: Option<Value>,
) -> Response {
    let (field, content) = if ctx.structured {
        ("refusal", text)
    } else {
        ("content", decorate(ctx, &text, author))
    };
    settle_notice(ctx, !ctx.structured, "structured_output").await;
    let extra: Vec<Value> = extra.into_iter().collect();
    let tutela = tutela_object(ctx, author, &extra);
    let mut resp = if stream {
        let mut out = Vec::with_capacity(4);
        let mut first = relay::chunk(ctx, json!({"role": "assistant", "content": ""}), None);
        first["tutela"] = json!({"notices": ctx.notices, "aigc": tutela.get("aigc"), "label": tutela.get("label")});
        out.push(relay::sse(&first));
        out.push(relay::sse(&relay::chunk(
            ctx,
            json!({ field: content }),
            None,
        )));
        let mut last = relay::chunk(ctx, json!({}), Some("stop"));
        last["tutela"] = tutela;
        out.push(relay::sse(&last));
        if ctx.include_usage {
            out.push(relay::sse(&relay::usage_chunk(ctx, 0, 0)));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        let body: Vec<u8> = out.concat();
        let mut r = Response::new(Body::from(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        r
    } else {
        let mut message = json!({"role": "assistant", "content": Value::Null});
        message[field] = Value::String(content);
        let choices: Vec<Value> = (0..ctx.n.max(1))
            .map(|i| json!({"index": i, "message": message, "finish_reason": "stop"}))
            .collect();
        let v = json!({
            "id": ctx.completion_id,
            "object": "chat.completion",
            "created": ctx.now.unix(),
            "model": ctx.model,
            "choices": choices,
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "tutela": tutela,
        });
        axum::Json(v).into_response()
    };
    add_label_headers(&mut resp, ctx, author);
    resp
}

/// After a reply: a notice that went before its text is settled (a carried one is cleared);
/// one that could not (the reply was for the app: structured output, a tool call) is kept
/// for the next plain-text reply. Both are recorded in the audit log. Deployments with
/// `notices.mode = "structured"` never put notices in the text, so there is nothing to carry.
pub async fn settle_notice(ctx: &TurnCtx, shown: bool, why: &'static str) {
    let st = &ctx.st;
    let Some(text) = &ctx.notice_text else {
        return;
    };
    if ctx.test || !st.config.notices.inline() || (shown && !ctx.carried_notice) {
        return;
    }
    let slot = st.user_slot(&ctx.user_id);
    let mut guard = slot.lock().await;
    let Some(cached) = guard.as_mut() else {
        return;
    };
    let contents: Vec<Value> = ctx
        .notices
        .as_array()
        .map(|a| a.iter().map(|n| n["contents"].clone()).collect())
        .unwrap_or_default();
    let detail = if shown {
        cached.deferred_notice = None;
        json!({"notice_delivery": "shown", "carried": true, "contents": contents, "completion": ctx.completion_id})
    } else {
        let notices = ctx
            .notices
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| {
                        let mut n = n.clone();
                        n["deferred"] = json!(true);
                        n
                    })
                    .collect()
            })
            .unwrap_or_default();
        st.metrics.notices_deferred.fetch_add(1, Ordering::Relaxed);
        cached.deferred_notice = Some(crate::state::DeferredNotice {
            text: text.clone(),
            notices,
        });
        json!({"notice_delivery": "deferred", "why": why, "contents": contents, "completion": ctx.completion_id})
    };
    drop(guard);
    st.records
        .audit(AuditEntry {
            at: ctx.now,
            kind: AuditKind::Turn,
            user: Some(ctx.user_id.clone()),
            session: Some(ctx.session_id.clone()),
            jurisdiction: Some(ctx.compiled.label.clone()),
            payload: AuditPayload::detail(detail),
            profile_hash: ctx.compiled.set.snapshot_hash().to_owned(),
            content_hash: None,
        })
        .await;
}

/// Checks a whole model reply, every choice of it, and answers with it or with replacements.
async fn json_reply(ctx: &TurnCtx, mut v: Value) -> Result<Response, ApiError> {
    let n = v["choices"].as_array().map_or(0, Vec::len).max(1);
    let mut texts = Vec::with_capacity(n);
    let mut per = Vec::with_capacity(n);
    let mut all = Vec::new();
    for i in 0..n {
        let text = checked_text(ctx, &v, i);
        let found = scan_whole(ctx, &text).await;
        all.extend(found.iter().cloned());
        per.push(found);
        texts.push(text);
    }
    ctx.st.metrics.learned_findings(&all);
    // One decision and one record for the turn, on every choice's findings.
    let verdict = assistant_verdict(ctx, &all, &texts.join("\n\n")).await?;
    let mut shown = false;
    let mut replaced = Vec::new();
    let (author, extra) = match verdict {
        Some((replacement, extra)) => {
            // The choices the engine blocks on their own findings; all of them when only the
            // choices together draw the block.
            replaced = (0..n)
                .filter(|&i| !per[i].is_empty() && blocks(ctx, &per[i]))
                .collect();
            if replaced.is_empty() {
                replaced = (0..n).collect();
            }
            for (i, text) in texts.iter().enumerate() {
                shown |= if replaced.contains(&i) {
                    replace_choice(ctx, &mut v, i, &replacement)
                } else {
                    keep_choice(ctx, &mut v, i, text)
                };
            }
            (Author::Tutela, extra)
        }
        None => {
            for (i, text) in texts.iter().enumerate() {
                shown |= keep_choice(ctx, &mut v, i, text);
            }
            (Author::Model, Vec::new())
        }
    };
    let why = if ctx.structured {
        "structured_output"
    } else {
        "tool_call"
    };
    settle_notice(ctx, shown, why).await;
    if let Value::Object(o) = &mut v {
        let mut t = tutela_object(ctx, author, &extra);
        if n > 1 {
            t["replaced_choices"] = json!(replaced);
        }
        o.insert("tutela".into(), t);
    }
    let mut resp = axum::Json(v).into_response();
    add_label_headers(&mut resp, ctx, author);
    Ok(resp)
}

/// The text of choice `i` the assistant side checks: its content, and the tool-call arguments
/// the app shows to the person.
fn checked_text(ctx: &TurnCtx, v: &Value, i: usize) -> String {
    let message = &v["choices"][i]["message"];
    let mut text = message["content"].as_str().unwrap_or("").to_owned();
    if !ctx.shown.is_empty()
        && let Some(calls) = message["tool_calls"].as_array()
    {
        let shown = ctx.shown.of_calls(calls);
        if !shown.is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&shown);
        }
    }
    text
}

/// A whole reply scanned with every tier: with the encoder on the blocking pool (it takes
/// milliseconds; other requests keep their worker), the quick tiers if that scan fails.
async fn scan_whole(ctx: &TurnCtx, text: &str) -> Vec<Finding> {
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

/// Whether the engine blocks a reply with these findings (pure: nothing is recorded).
fn blocks(ctx: &TurnCtx, findings: &[Finding]) -> bool {
    let d = assistant_decision(ctx, findings);
    d.has("block_output") || d.replacement().is_some()
}

/// Choice `i` replaced by tutela's text: the model's whole message is dropped, tool calls
/// included; a refusal for structured output. Returns whether the person sees text.
fn replace_choice(ctx: &TurnCtx, v: &mut Value, i: usize, replacement: &str) -> bool {
    let mut m = json!({"role": "assistant", "content": Value::Null});
    if ctx.structured {
        m["refusal"] = Value::String(replacement.to_owned());
    } else {
        m["content"] = Value::String(decorate(ctx, replacement, Author::Tutela));
    }
    if let Some(slot) = v.pointer_mut(&format!("/choices/{i}/message")) {
        *slot = m;
    }
    if let Some(f) = v.pointer_mut(&format!("/choices/{i}/finish_reason")) {
        *f = json!("stop");
    }
    !ctx.structured
}

/// Choice `i` kept: content for the app (structured output, a tool call, no text) is never
/// altered; plain text gets the inline notice and the label. Returns whether it was decorated.
fn keep_choice(ctx: &TurnCtx, v: &mut Value, i: usize, text: &str) -> bool {
    let message = &v["choices"][i]["message"];
    let tool_call = message["tool_calls"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    let no_content = !message["content"].is_string();
    if ctx.structured || tool_call || no_content {
        return false;
    }
    if let Some(m) = v.pointer_mut(&format!("/choices/{i}/message/content")) {
        *m = Value::String(decorate(ctx, text, Author::Model));
    }
    true
}

/// The engine's decision on an assistant reply (pure).
fn assistant_decision(ctx: &TurnCtx, findings: &[Finding]) -> Decision {
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

/// Decides on an assistant reply. `Some((replacement, interventions))` when it must not reach
/// the user; the audit record is committed before this returns.
pub async fn assistant_verdict(
    ctx: &TurnCtx,
    findings: &[Finding],
    text: &str,
) -> Result<Option<(String, Vec<Value>)>, ApiError> {
    let st = &ctx.st;
    let decision = assistant_decision(ctx, findings);
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
        content_hash: Some(st.records.pseudonyms.content_hash(text)),
    };
    let blocked = decision.has("block_output") || decision.replacement().is_some();
    let pending = ctx.pending_audit.lock().ok().and_then(|mut p| p.take());
    if !decision.intervenes() || ctx.test {
        // One record for the whole normal turn: the user side's, with the assistant side's
        // findings (they carry their side) and decision added.
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
        st.records.audit(entry).await;
        if !(ctx.test && blocked) {
            return Ok(None);
        }
        // A test turn sees the replacement a person would, with nothing recorded but the test.
        let (template, resources) = decision
            .replacement()
            .unwrap_or((ReplyTemplate::SafeReply, false));
        let text = render_template(st, &ctx.compiled, template, resources, ctx.lang);
        return Ok(Some((text, interventions_json(&decision, Side::Assistant))));
    }
    if let Some(user) = pending {
        st.records.audit(user).await;
    }
    let seq = durable(st, audit).await;
    // The user's cache entry when there is one (its updates stay there); otherwise (an
    // anonymous user, or one evicted meanwhile) the record the turn carries.
    let slot = if ctx.anonymous {
        None
    } else {
        Some(st.user_slot(&ctx.user_id))
    };
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
        }),
    };
    if let Err(e) = side_effects(
        st,
        cached,
        &ctx.compiled,
        &decision,
        findings,
        Side::Assistant,
        ctx.now,
        &ctx.session_id,
        ctx.lang,
        seq,
    )
    .await
    {
        write_failed(st, "the assistant side's side effects", &e);
        retry_side_effects(
            st,
            cached.clone(),
            Effects {
                compiled: ctx.compiled.clone(),
                decision: decision.clone(),
                findings: findings.to_vec(),
                side: Side::Assistant,
                now: ctx.now,
                session_id: ctx.session_id.clone(),
                lang: ctx.lang,
                seq,
                named: !ctx.anonymous && !ctx.test,
            },
        );
    }
    drop(guard);
    if !blocked {
        return Ok(None);
    }
    let (template, resources) = decision
        .replacement()
        .unwrap_or((ReplyTemplate::SafeReply, false));
    let text = render_template(st, &ctx.compiled, template, resources, ctx.lang);
    Ok(Some((text, interventions_json(&decision, Side::Assistant))))
}
