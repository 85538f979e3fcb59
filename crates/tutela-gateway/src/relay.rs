//! The streaming relay, as explicit phases with a per-request context:
//!
//! 1. **open**: headers (with `AIGC`), the first chunk with `tutela.notices` and the label,
//!    and the inline notice;
//! 2. **relay**: each upstream content delta is fed to the streaming detectors and held back;
//!    text is released only once the detectors have finished the sentence it belongs to *and*
//!    it lies at least `streaming.hold_back_chars` behind the newest text (0 by default: a
//!    sentence leaves as soon as the detectors have settled its boundary and checked it);
//! 3. **finish**: the last sentence is scanned and decided, the rest released, the final
//!    chunk carries `tutela` (interventions, AIGC), then usage and `[DONE]`;
//! 4. **replace** (instead of 2–3 on a violation): the stream stops, nothing more of the
//!    model's text is sent, a safe replacement follows, and the intervention is recorded
//!    durably before the replacement is sent.
//!
//! Invariant: text that the engine blocks is never written to the client.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tutela_types::Side;

use crate::chat::{self, Author, TurnCtx};
use crate::error::ApiError;
use crate::upstream::{EventStream, StreamEvent};

/// One `chat.completion.chunk` in this turn's envelope.
pub fn chunk(ctx: &TurnCtx, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": ctx.completion_id,
        "object": "chat.completion.chunk",
        "created": ctx.now.unix(),
        "model": ctx.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
}

/// The usage chunk (`stream_options.include_usage`).
pub fn usage_chunk(ctx: &TurnCtx, prompt: u64, completion: u64) -> Value {
    json!({
        "id": ctx.completion_id,
        "object": "chat.completion.chunk",
        "created": ctx.now.unix(),
        "model": ctx.model,
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    })
}

/// One SSE event.
pub fn sse(v: &Value) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut out, v).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Starts relaying; the response streams as the relay task writes.
pub fn start(ctx: TurnCtx, events: EventStream) -> Response {
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(32);
    let aigc = ctx.aigc.header_value();
    let notices = chat::notice_header(&ctx);
    tokio::spawn(async move {
        if let Err(e) = run(ctx, events, &tx).await {
            // A store failure mid-stream: end the stream with an error event rather than
            // releasing anything unchecked.
            let _ = tx.send(Ok(sse(&e.body()))).await;
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&aigc) {
        h.insert("aigc", v);
    }
    if let Some(v) = notices {
        h.insert("x-tutela-notices", v);
    }
    resp
}

/// Sends an event; `false` when the client has gone.
async fn send(tx: &Tx, v: &Value) -> bool {
    tx.send(Ok(sse(v))).await.is_ok()
}

/// The byte index `n` characters before the end of `s` (0 if `s` is shorter).
fn back_chars(s: &str, n: usize) -> usize {
    if n == 0 {
        return s.len();
    }
    s.char_indices()
        .rev()
        .nth(n - 1)
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// The largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

async fn run(ctx: TurnCtx, mut events: EventStream, tx: &Tx) -> Result<(), ApiError> {
    let st = ctx.st.clone();
    let cfg = &st.config;
    let scanner = st.scanner.clone();
    let mut scan = Some(scanner.stream(Side::Assistant, Some(&ctx.user_text)));
    let encoder = scanner.has_encoder(Side::Assistant);
    let mut windows = 0u64;

    // Phase 1: open.
    let mut first = chunk(&ctx, json!({"role": "assistant", "content": ""}), None);
    let head = chat::tutela_object(&ctx, Author::Model, &[]);
    first["tutela"] =
        json!({"notices": ctx.notices, "aigc": head.get("aigc"), "label": head.get("label")});
    if !send(tx, &first).await {
        return Ok(());
    }
    // The inline notice and a prefix label: never into structured output; with the first
    // text when the app offered tools (a reply that turns out to be a tool call gets no text);
    // otherwise at once, so the person sees the notice while the model is still writing.
    let mut opening = if ctx.structured {
        String::new()
    } else {
        chat::opening(&ctx, Author::Model)
    };
    let mut opened = false;
    if !ctx.tools && !opening.is_empty() {
        if !send(tx, &chunk(&ctx, json!({"content": opening}), None)).await {
            return Ok(());
        }
        opening.clear();
        opened = true;
    }

    // Phase 2: relay with hold-back.
    let window = cfg.hold_back_chars;
    let mut fed = String::new();
    let mut released = 0usize;
    let mut findings = Vec::new();
    let mut evaluated = usize::MAX;
    let mut finish_reason: Option<String> = None;
    let mut usage: Option<Value> = None;
    let mut upstream_error: Option<ApiError> = None;
    let mut held_calls: Vec<Value> = Vec::new();
    loop {
        // The client leaving ends the relay at once: dropping `events` closes the upstream
        // connection, so the model stops generating for nobody.
        let next = tokio::select! {
            biased;
            _ = tx.closed() => {
                st.metrics
                    .client_gone
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            n = events.next() => n,
        };
        let ev = match next {
            None | Some(Ok(StreamEvent::Done)) => break,
            Some(Err(e)) => {
                upstream_error = Some(e);
                break;
            }
            Some(Ok(StreamEvent::Malformed)) => {
                st.metrics
                    .malformed_events
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            Some(Ok(StreamEvent::Chunk(v))) => v,
        };
        if let Some(u) = ev.get("usage").filter(|u| !u.is_null()) {
            usage = Some(u.clone());
        }
        let Some(choice) = ev.pointer("/choices/0") else {
            continue;
        };
        if let Some(fr) = choice.get("finish_reason").and_then(Value::as_str) {
            finish_reason = Some(fr.to_owned());
        }
        let delta = choice.get("delta");
        if let Some(tools) = delta.and_then(|d| d.get("tool_calls")) {
            if ctx.shown.is_empty() {
                // Tool-call arguments are for the app, not the person: they pass through.
                if !send(tx, &chunk(&ctx, json!({"tool_calls": tools}), None)).await {
                    return Ok(());
                }
            } else {
                // The app shows some arguments to the person: held until they are whole and
                // checked (see phase 3).
                held_calls.push(tools.clone());
            }
        }
        let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str) else {
            continue;
        };
        if text.is_empty() {
            continue;
        }
        fed.push_str(text);
        let Some(s) = scan.as_mut() else { continue };
        // A chunk that finishes a sentence may run the encoder (milliseconds): off the async
        // worker, inside the hold-back window (nothing past the sentence is released yet).
        let new = if s.may_block(text) {
            let (f, w) = st.encoder.run_here(|| s.feed(text)).await;
            windows += w;
            f
        } else {
            s.feed(text)
        };
        if !new.is_empty() {
            st.metrics.learned_findings(&new);
            findings.extend(new);
            evaluated = findings.len();
            if let Some((replacement, extra)) =
                chat::assistant_verdict(&ctx, &findings, &fed).await?
            {
                let stopped = Stopped {
                    released,
                    fed: &fed,
                    opening,
                    usage,
                };
                return replace(&ctx, tx, stopped, replacement, extra).await;
            }
        }
        let scanned = fed.len().saturating_sub(s.pending());
        let limit = floor_boundary(&fed, scanned.min(back_chars(&fed, window)));
        if limit > released {
            let piece = format!("{}{}", std::mem::take(&mut opening), &fed[released..limit]);
            opened = true;
            released = limit;
            if !send(tx, &chunk(&ctx, json!({"content": piece}), None)).await {
                return Ok(());
            }
        }
    }

    // Phase 3: finish.
    if let Some(s) = scan.take() {
        let last = if encoder {
            let (f, w) = st.encoder.run_here(|| s.finish()).await;
            windows += w;
            f
        } else {
            s.finish()
        };
        st.metrics.learned_findings(&last);
        findings.extend(last);
    }
    if encoder {
        st.metrics.encoder_ran(Side::Assistant, windows);
    }
    // Tool-call arguments the app shows to the person, whole now: checked like the text.
    let shown = ctx.shown.of_calls(&assemble_calls(&held_calls));
    let mut checked = fed.clone();
    if !shown.is_empty() {
        let found = if encoder {
            let (scanner, text, user) = (st.scanner.clone(), shown.clone(), ctx.user_text.clone());
            match st
                .encoder
                .run_off(move || scanner.scan(Side::Assistant, &text, Some(&user)))
                .await
            {
                Some((f, w)) => {
                    st.metrics.encoder_ran(Side::Assistant, w);
                    f
                }
                None => st
                    .scanner
                    .scan_quick(Side::Assistant, &shown, Some(&ctx.user_text)),
            }
        } else {
            st.scanner
                .scan(Side::Assistant, &shown, Some(&ctx.user_text))
        };
        st.metrics.learned_findings(&found);
        findings.extend(found);
        checked.push('\n');
        checked.push_str(&shown);
    }
    if evaluated != findings.len()
        && let Some((replacement, extra)) =
            chat::assistant_verdict(&ctx, &findings, &checked).await?
    {
        let stopped = Stopped {
            released,
            fed: &fed,
            opening,
            usage,
        };
        return replace(&ctx, tx, stopped, replacement, extra).await;
    }
    if released < fed.len() {
        let piece = format!("{}{}", std::mem::take(&mut opening), &fed[released..]);
        opened = true;
        if !send(tx, &chunk(&ctx, json!({"content": piece}), None)).await {
            return Ok(());
        }
    }
    for tools in held_calls {
        if !send(tx, &chunk(&ctx, json!({ "tool_calls": tools }), None)).await {
            return Ok(());
        }
    }
    let closing = chat::closing(&ctx, Author::Model);
    if opened
        && !ctx.structured
        && !closing.is_empty()
        && !send(tx, &chunk(&ctx, json!({"content": closing}), None)).await
    {
        return Ok(());
    }
    let why = if ctx.structured {
        "structured_output"
    } else {
        "tool_call"
    };
    chat::settle_notice(&ctx, opened && !ctx.structured, why).await;
    if let Some(e) = upstream_error {
        tracing::warn!("upstream stream failed: {e}");
        let _ = send(tx, &e.body()).await;
        return Ok(());
    }
    let mut last = chunk(
        &ctx,
        json!({}),
        Some(finish_reason.as_deref().unwrap_or("stop")),
    );
    last["tutela"] = chat::tutela_object(&ctx, Author::Model, &[]);
    if !send(tx, &last).await {
        return Ok(());
    }
    if ctx.include_usage {
        let u = match usage {
            Some(u) => {
                let mut c = usage_chunk(&ctx, 0, 0);
                c["usage"] = u;
                c
            }
            None => usage_chunk(&ctx, 0, 0),
        };
        if !send(tx, &u).await {
            return Ok(());
        }
    }
    let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
    Ok(())
}

/// Phase 4: the model's stream is dropped (closing the upstream connection), and the
/// replacement goes out. The audit record is already durable (see `assistant_verdict`).
async fn replace(
    ctx: &TurnCtx,
    tx: &Tx,
    stopped: Stopped<'_>,
    replacement: String,
    extra: Vec<Value>,
) -> Result<(), ApiError> {
    let Stopped {
        released,
        fed,
        opening,
        usage,
    } = stopped;
    ctx.st
        .metrics
        .streams_replaced
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Structured output: tutela's text is a refusal, as OpenAI streams a model's refusal.
    let delta = if ctx.structured {
        json!({ "refusal": replacement })
    } else if released > 0 {
        json!({ "content": format!("\n\n{replacement}") })
    } else {
        json!({ "content": format!("{opening}{replacement}") })
    };
    chat::settle_notice(ctx, !ctx.structured, "structured_output").await;
    if !send(tx, &chunk(ctx, delta.clone(), None)).await {
        return Ok(());
    }
    let usage_missing = usage.is_none();
    let mut extra = extra;
    for e in &mut extra {
        if let Value::Object(o) = e {
            o.insert("stream_stopped".into(), json!(true));
            o.insert("released_bytes_before_stop".into(), json!(released));
        }
    }
    // The model was asked and generated `fed` before tutela stopped reading: that is what
    // the upstream consumed (its own figure when it came before the stop, else an estimate);
    // what tutela sent is in `tutela.usage` of the last chunk.
    let sent = format!("{}{}", &fed[..released], delta_text(&delta));
    let mut last = chunk(ctx, json!({}), Some("stop"));
    last["tutela"] = chat::tutela_object(ctx, Author::Tutela, &extra);
    last["tutela"]["usage"] = json!({
        "upstream_estimated": usage_missing,
        "sent": {"completion_tokens": estimate_tokens(&sent), "estimated": true},
    });
    if !send(tx, &last).await {
        return Ok(());
    }
    if ctx.include_usage {
        let c = match usage {
            Some(u) => {
                let mut c = usage_chunk(ctx, 0, 0);
                c["usage"] = u;
                c
            }
            None => usage_chunk(ctx, ctx.prompt_tokens, estimate_tokens(fed)),
        };
        if !send(tx, &c).await {
            return Ok(());
        }
    }
    let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
    Ok(())
}

/// Whole tool calls (`id`, `function.name`, `function.arguments`) from streamed
/// `delta.tool_calls` pieces, by their `index`.
fn assemble_calls(deltas: &[Value]) -> Vec<Value> {
    let mut calls: Vec<Value> = Vec::new();
    for piece in deltas.iter().filter_map(Value::as_array).flatten() {
        let i = piece["index"].as_u64().unwrap_or(0) as usize;
        if i >= 64 {
            continue;
        }
        while calls.len() <= i {
            calls.push(json!({"function": {"name": "", "arguments": ""}}));
        }
        let call = &mut calls[i];
        if let Some(id) = piece.get("id").filter(|v| !v.is_null()) {
            call["id"] = id.clone();
        }
        for key in ["name", "arguments"] {
            if let Some(part) = piece
                .pointer(&format!("/function/{key}"))
                .and_then(Value::as_str)
            {
                let joined = format!("{}{part}", call["function"][key].as_str().unwrap_or(""));
                call["function"][key] = json!(joined);
            }
        }
    }
    calls
}

/// Where a stream stopped.
struct Stopped<'a> {
    /// Bytes of `fed` released to the client.
    released: usize,
    /// Everything the model sent.
    fed: &'a str,
    /// The opening (inline notice, prefix label) if it has not gone out yet.
    opening: String,
    /// The upstream's usage, if it came before the stop.
    usage: Option<Value>,
}

fn delta_text(delta: &Value) -> &str {
    delta
        .get("content")
        .or_else(|| delta.get("refusal"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A rough token count for usage the upstream could not report: about four characters per
/// token for alphabetic text, one per ideograph or other non-ASCII character.
pub fn estimate_tokens(text: &str) -> u64 {
    let ascii = text.bytes().filter(u8::is_ascii).count() as u64;
    let other = text.chars().filter(|c| !c.is_ascii()).count() as u64;
    ascii.div_ceil(4) + other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_tool_calls_are_assembled() {
        let deltas = vec![
            json!([{"index": 0, "id": "c1", "function": {"name": "send_message", "arguments": ""}}]),
            json!([{"index": 0, "function": {"arguments": "{\"text\": \"hi"}}]),
            json!([{"index": 1, "id": "c2", "function": {"name": "x", "arguments": "{}"}}]),
            json!([{"index": 0, "function": {"arguments": " there\"}"}}]),
        ];
        let calls = assemble_calls(&deltas);
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0]["function"]["name"], "send_message");
        assert_eq!(
            calls[0]["function"]["arguments"],
            "{\"text\": \"hi there\"}"
        );
        assert_eq!(calls[1]["id"], "c2");
    }

    #[test]
    fn token_estimates() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("你好"), 2);
    }

    #[test]
    fn char_arithmetic() {
        assert_eq!(back_chars("hello", 2), 3);
        assert_eq!(back_chars("héllo", 4), 1);
        assert_eq!(back_chars("ab", 5), 0);
        assert_eq!(floor_boundary("é", 1), 0);
    }
}
