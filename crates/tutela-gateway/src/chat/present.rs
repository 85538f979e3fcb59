//! Phase 7 of a turn, labels and notices: the turn's context with the notices the engine
//! decided (and one carried from an earlier turn the person has not seen), the inline notice
//! and the explicit label around a reply's text, the `tutela` object, the `AIGC` and
//! `X-Tutela-Notices` headers, chunk envelopes, and the replies tutela writes itself
//! (template, human, holding message), JSON or SSE. Content for the app (structured output,
//! tool calls) is never altered: a notice that cannot be shown waits for the next plain-text
//! reply ([`settle_notice`]).

use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tutela_openai::chat::{AssistantMessage, Choice, Delta, Extra, Usage};
use tutela_openai::{ChatCompletion, ChatCompletionChunk};
use tutela_store::{AuditEntry, AuditKind, AuditPayload};
use tutela_types::{Action, Decision, NoticeContent, ReplyTemplate, Side, Timestamp};

use crate::config::ExplicitLabel;
use crate::labels::Aigc;
use crate::state::{AppState, Cached, Compiled, DeferredNotice};
use crate::texts::{self, Lang};

use super::context::{Author, TurnCtx};
use super::effects::Recorded;
use super::identity::Who;
use super::request::Request;
use super::user_side::UserSide;

/// The turn's context for the author and the assistant side: the user side's outcome, the
/// reply's ids and label, and the notices to deliver with it.
pub(crate) fn context(
    st: &AppState,
    req: &Request,
    compiled: &std::sync::Arc<Compiled>,
    side: &UserSide,
    done: Recorded,
    now: Timestamp,
) -> TurnCtx {
    let id = st.ids.next();
    let (notice_text, notices, carried_notice) =
        notices_with_carried(st, compiled, &side.decision, side.carried.clone(), req.lang);
    let mut interventions = interventions_json(&side.decision, Side::User);
    if let Some(c) = done.case_id
        && let Some(Value::Object(o)) = interventions.iter_mut().find(|v| v["kind"] == "escalate")
    {
        o.insert("case".into(), json!(c));
    }
    TurnCtx {
        st: st.clone(),
        user_id: req.user_id.clone(),
        session_id: side.session_id.clone(),
        compiled: compiled.clone(),
        user: done.user_after,
        account: done.account,
        session: side.decision.session.clone(),
        persona: req.persona,
        now,
        lang: req.lang,
        user_text: req.chat.user_text.clone(),
        model: req.model.clone(),
        completion_id: format!("chatcmpl-tutela-{id}"),
        aigc: Aigc::new(&st.config.provider_name, &st.config.propagator, &id),
        notice_text,
        notices,
        interventions,
        include_usage: req.chat.include_usage,
        pending_audit: std::sync::Mutex::new(done.pending),
        structured: req.chat.structured,
        carried_notice,
        prompt_tokens: req.chat.prompt_tokens,
        test: req.test,
        anonymous: req.anonymous,
        tools: req.chat.tools,
        shown: req.shown.clone(),
        n: req.chat.n,
    }
}

/// The context of a takeover turn: no notices, no decision of the engine.
pub(crate) fn takeover_context(
    st: &AppState,
    req: &Request,
    who: &Who,
    session_id: String,
    now: Timestamp,
) -> TurnCtx {
    let id = st.ids.next();
    TurnCtx {
        st: st.clone(),
        user_id: req.user_id.clone(),
        session_id,
        compiled: who.compiled.clone(),
        user: tutela_types::UserState::default(),
        account: tutela_store::User::new(&req.user_id, now),
        session: tutela_types::SessionState::default(),
        persona: tutela_types::PersonaKind::General,
        now,
        lang: req.lang,
        user_text: req.chat.user_text.clone(),
        model: req.model.clone(),
        completion_id: format!("chatcmpl-tutela-{id}"),
        aigc: Aigc::new(&st.config.provider_name, &st.config.propagator, &id),
        notice_text: None,
        notices: json!([]),
        interventions: Vec::new(),
        include_usage: req.chat.include_usage,
        pending_audit: std::sync::Mutex::new(None),
        structured: req.chat.structured,
        carried_notice: false,
        prompt_tokens: 0,
        test: false,
        anonymous: false,
        tools: false,
        shown: crate::openai::ShownArguments::default(),
        n: 1,
    }
}

/// The notice text and `tutela.notices` of this turn, with a notice carried from an earlier
/// turn the person has not seen yet going first (unless a new notice says everything it
/// said: then it is superseded). The flag says whether a carried notice was settled here.
fn notices_with_carried(
    st: &AppState,
    compiled: &Compiled,
    decision: &Decision,
    carried: Option<DeferredNotice>,
    lang: Lang,
) -> (Option<String>, Value, bool) {
    let (mut notice_text, mut notices) = render_notices(st, compiled, decision, lang);
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
    let carried = carried.filter(|d| {
        notice_text.is_none() || !contents_of(&d.notices).iter().all(|c| fresh.contains(c))
    });
    let superseded = had_carried && carried.is_none();
    if let Some(d) = &carried {
        notice_text = Some(match notice_text {
            Some(t) => format!("{}\n\n{t}", d.text),
            None => d.text.clone(),
        });
        if let Value::Array(a) = &mut notices {
            a.extend(d.notices.iter().cloned());
        }
    }
    (notice_text, notices, carried.is_some() || superseded)
}

/// Template text with the resources of the user's regions.
pub(crate) fn render_template(
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

/// `tutela.interventions` for a decision (everything but labels, counters and notices).
pub(crate) fn interventions_json(decision: &Decision, side: Side) -> Vec<Value> {
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
pub(crate) fn decorate(ctx: &TurnCtx, text: &str, author: Author) -> String {
    if author == Author::Tutela && care_first(ctx) {
        // A person at risk reads care first; the (legal) notice follows, once.
        let mut out = prefix_label(ctx, author);
        out.push_str(text);
        out.push_str(&closing(ctx, author));
        if ctx.st.config.notices.inline()
            && let Some(n) = &ctx.notice_text
        {
            out.push_str("\n\n");
            out.push_str(n);
        }
        return out;
    }
    let mut out = opening(ctx, author);
    out.push_str(text);
    out.push_str(&closing(ctx, author));
    out
}

/// Whether the reply is a supportive one written for a person at risk or worried about
/// someone (crisis, third party, eating-disorder support, violence de-escalation, comfort):
/// those open with care, not with a notice.
fn care_first(ctx: &TurnCtx) -> bool {
    ctx.interventions.iter().any(|i| {
        i["kind"] == "replace_reply"
            && matches!(
                i["template"].as_str(),
                Some(
                    "crisis_support"
                        | "third_party_support"
                        | "eating_disorder_support"
                        | "violence_support"
                        | "comfort"
                )
            )
    })
}

/// What goes before the reply text: the inline notice and a prefix label.
pub(crate) fn opening(ctx: &TurnCtx, author: Author) -> String {
    let cfg = &ctx.st.config;
    let mut out = String::new();
    if cfg.notices.inline()
        && let Some(n) = &ctx.notice_text
    {
        out.push_str(n);
        out.push_str("\n\n");
    }
    out.push_str(&prefix_label(ctx, author));
    out
}

/// A prefix label, when the deployment puts one before tutela's and the model's replies.
fn prefix_label(ctx: &TurnCtx, author: Author) -> String {
    if author != Author::Human && ctx.st.config.explicit_label == ExplicitLabel::Prefix {
        format!("{} ", label_text(ctx))
    } else {
        String::new()
    }
}

/// What goes after the reply text: a suffix label.
pub(crate) fn closing(ctx: &TurnCtx, author: Author) -> String {
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
pub(crate) fn tutela_object(ctx: &TurnCtx, author: Author, extra_interventions: &[Value]) -> Value {
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
pub(crate) fn add_label_headers(resp: &mut Response, ctx: &TurnCtx, author: Author) {
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
pub(crate) fn notice_header(ctx: &TurnCtx) -> Option<HeaderValue> {
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

/// One `chat.completion.chunk` in this turn's envelope.
pub(crate) fn chunk(ctx: &TurnCtx, delta: Delta, finish: Option<&str>) -> ChatCompletionChunk {
    ChatCompletionChunk::new(
        &ctx.completion_id,
        ctx.now.unix(),
        &ctx.model,
        delta,
        finish,
    )
}

/// The usage chunk (`stream_options.include_usage`).
pub(crate) fn usage_chunk(ctx: &TurnCtx, usage: Usage) -> ChatCompletionChunk {
    ChatCompletionChunk::usage(&ctx.completion_id, ctx.now.unix(), &ctx.model, usage)
}

/// The `tutela` object of a stream's first chunk: the notices and the label.
pub(crate) fn opening_tutela(ctx: &TurnCtx, tutela: &Value) -> Value {
    json!({"notices": ctx.notices, "aigc": tutela.get("aigc"), "label": tutela.get("label")})
}

/// One SSE event.
pub(crate) fn sse(v: &impl serde::Serialize) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut out, v).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// A reply that tutela writes itself (template, human, holding message), JSON or SSE. For a
/// structured-output request the text goes in `refusal` (content null), as OpenAI sends a
/// model's refusal, so the app's JSON parsing never sees prose.
pub(crate) async fn reply(
    ctx: &TurnCtx,
    text: String,
    author: Author,
    stream: bool,
    extra: Option<Value>,
) -> Response {
    let (field, content) = if ctx.structured {
        (Field::Refusal, text)
    } else {
        (Field::Content, decorate(ctx, &text, author))
    };
    settle_notice(ctx, !ctx.structured, "structured_output").await;
    let extra: Vec<Value> = extra.into_iter().collect();
    let tutela = tutela_object(ctx, author, &extra);
    let mut resp = if stream {
        own_stream(ctx, field, content, tutela)
    } else {
        let mut message = AssistantMessage::default();
        match field {
            Field::Refusal => message.refusal = Some(content),
            Field::Content => message.content = Some(content),
        }
        let choices = (0..ctx.n.max(1))
            .map(|index| Choice {
                index,
                message: message.clone(),
                finish_reason: Some("stop".into()),
                extra: Extra::new(),
            })
            .collect();
        let mut extra = Extra::new();
        extra.insert("tutela".into(), tutela);
        let v = ChatCompletion {
            id: Some(ctx.completion_id.clone()),
            object: Some("chat.completion".into()),
            created: Some(ctx.now.unix()),
            model: Some(ctx.model.clone()),
            choices,
            usage: Some(Usage::new(0, 0)),
            extra,
        };
        axum::Json(v).into_response()
    };
    add_label_headers(&mut resp, ctx, author);
    resp
}

/// Where tutela's own text goes in the message.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// `content`: plain text.
    Content,
    /// `refusal`: the app asked for structured output.
    Refusal,
}

/// tutela's own reply as a whole event stream: the opening chunk with the notices and the
/// label, the text in `field`, the last chunk with `tutela`, usage if asked, `[DONE]`.
fn own_stream(ctx: &TurnCtx, field: Field, content: String, tutela: Value) -> Response {
    let mut out = Vec::with_capacity(4);
    let mut first = chunk(ctx, Delta::opening(), None);
    first
        .extra
        .insert("tutela".into(), opening_tutela(ctx, &tutela));
    out.push(sse(&first));
    let delta = match field {
        Field::Content => Delta::text(content),
        Field::Refusal => Delta::refusal(content),
    };
    out.push(sse(&chunk(ctx, delta, None)));
    let mut last = chunk(ctx, Delta::default(), Some("stop"));
    last.extra.insert("tutela".into(), tutela);
    out.push(sse(&last));
    if ctx.include_usage {
        out.push(sse(&usage_chunk(ctx, Usage::new(0, 0))));
    }
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let body: Vec<u8> = out.concat();
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r
}

/// After a reply: a notice that went before its text is settled (a carried one is cleared);
/// one that could not (the reply was for the app: structured output, a tool call) is kept
/// for the next plain-text reply, in the user's entry and with the user in the store (so a
/// restart or a dropped entry does not lose it). Both are recorded in the audit log.
/// Deployments with `notices.mode = "structured"` never put notices in the text, so there is
/// nothing to carry. Only these turns write the store: a turn without a carried notice
/// returns before, and one that defers the notice the store already holds writes nothing.
pub(crate) async fn settle_notice(ctx: &TurnCtx, shown: bool, why: &'static str) {
    let st = &ctx.st;
    let Some(text) = &ctx.notice_text else {
        return;
    };
    // Structured notices are shown in `tutela.notices` of any reply: a carried one (a
    // hand-back) is settled by the reply that carries it.
    let shown = shown || !st.config.notices.inline();
    if ctx.test || (shown && !ctx.carried_notice) {
        return;
    }
    let contents: Vec<Value> = ctx
        .notices
        .as_array()
        .map(|a| a.iter().map(|n| n["contents"].clone()).collect())
        .unwrap_or_default();
    let notice = (!shown).then(|| DeferredNotice {
        text: text.clone(),
        notices: deferred(&ctx.notices),
    });
    // Under the user's lock, store write included: their next turn's write never lands first.
    let slot = st.user_slot(&ctx.user_id);
    let mut guard = slot.lock().await;
    match guard.as_mut() {
        Some(cached) => keep_notice(ctx, cached, notice).await,
        // The entry was dropped meanwhile (an admin change, a hand-back): the store alone
        // keeps it for the reload. An anonymous request has no entry and keeps nothing.
        None if !ctx.anonymous => {
            store_notice(ctx, notice.as_ref()).await;
            st.restamp(&ctx.user_id).await;
        }
        None => return,
    }
    drop(guard);
    let detail = if shown {
        json!({"notice_delivery": "shown", "carried": true, "contents": contents, "completion": ctx.completion_id})
    } else {
        st.metrics.notices_deferred.fetch_add(1, Ordering::Relaxed);
        json!({"notice_delivery": "deferred", "why": why, "contents": contents, "completion": ctx.completion_id})
    };
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

/// Keeps `notice` (deferred) in the user's entry, or clears the entry's (`None`: shown), and
/// writes the store only when it changes what the store holds.
async fn keep_notice(ctx: &TurnCtx, cached: &mut Cached, notice: Option<DeferredNotice>) {
    let unchanged = cached.deferred_stored && notice.is_some() && cached.deferred_notice == notice;
    let stored_before = cached.deferred_stored;
    if !unchanged && (notice.is_some() || stored_before) {
        cached.deferred_stored = store_notice(ctx, notice.as_ref()).await && notice.is_some();
        // Every other instance's entry of this user is older now (a shared database).
        if let Some(stamp) = ctx.st.restamp(&ctx.user_id).await {
            cached.stamp = Some(stamp);
        }
    }
    cached.deferred_notice = notice;
}

/// Writes the user's deferred notice (or clears it) in the store; returns whether that worked.
/// A failure is logged and counted: the entry still carries the notice, so only a restart or
/// a dropped entry during the outage loses it (a clear that failed shows it once more then).
async fn store_notice(ctx: &TurnCtx, notice: Option<&DeferredNotice>) -> bool {
    let st = &ctx.st;
    match st
        .records
        .backend
        .set_deferred_notice(&ctx.user_id, notice, ctx.now)
        .await
    {
        Ok(()) => true,
        Err(e) => {
            st.write_failed("keeping a deferred notice", &e);
            false
        }
    }
}

/// `tutela.notices` entries marked `deferred`.
fn deferred(notices: &Value) -> Vec<Value> {
    notices
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
        .unwrap_or_default()
}
