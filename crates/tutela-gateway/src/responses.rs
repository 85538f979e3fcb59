//! `POST /v1/responses`, OpenAI's Responses API, carried by the chat turn: the request is
//! translated into a chat completion request, the whole turn runs as for
//! `/v1/chat/completions` (notices, crisis protocol, the assistant-side checks with the
//! hold-back window, labels, records), and its answer is translated back: a `response`
//! object, or the Responses event stream (`response.created`, `response.output_text.delta`,
//! ..., `response.completed`). Every duty is therefore the chat turn's; this module only
//! re-shapes what the turn already decided and released.
//!
//! tutela keeps no conversation state: `previous_response_id` and `conversation` are refused
//! with a 400 that says to send the conversation in `input`. Built-in tools (web search, file
//! search, ...) are refused; function tools are supported.

use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tutela_openai::chat::{ErrorBody, ErrorObject, ToolCall, ToolCallDelta, Usage};
use tutela_openai::{ChatCompletion, ChatCompletionChunk};

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::StreamEvent;

/// `POST /v1/responses`.
pub(crate) async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::BadRequest(format!("the body is not JSON: {e}")).into_response();
        }
    };
    let (chat, stream) = match tutela_openai::responses::to_chat(&req) {
        Ok(c) => c,
        Err(e) => {
            st.metrics
                .requests_client_err
                .fetch_add(1, Ordering::Relaxed);
            return ApiError::from(e).into_response();
        }
    };
    let chat_body = match serde_json::to_vec(&chat) {
        Ok(b) => Bytes::from(b),
        Err(e) => return ApiError::Internal(e.to_string()).into_response(),
    };
    let resp = crate::chat::completions(State(st.clone()), headers, chat_body).await;
    if !resp.status().is_success() {
        // Errors have the same shape in both APIs.
        return resp;
    }
    let ids = Ids::new(&st);
    let echo = echo_of(&req);
    if stream {
        stream_response(resp, ids, echo)
    } else {
        json_response(resp, ids, echo).await
    }
}

/// The request fields a `response` object echoes.
fn echo_of(req: &Value) -> Value {
    let mut o = Map::new();
    for key in [
        "instructions",
        "max_output_tokens",
        "metadata",
        "parallel_tool_calls",
        "temperature",
        "tool_choice",
        "tools",
        "top_p",
        "text",
        "reasoning",
        "safety_identifier",
        "user",
    ] {
        o.insert(key.into(), req.get(key).cloned().unwrap_or(Value::Null));
    }
    if o["tools"].is_null() {
        o.insert("tools".into(), json!([]));
    }
    if o["tool_choice"].is_null() {
        o.insert("tool_choice".into(), json!("auto"));
    }
    if o["parallel_tool_calls"].is_null() {
        o.insert("parallel_tool_calls".into(), json!(true));
    }
    if o["text"].is_null() {
        o.insert("text".into(), json!({"format": {"type": "text"}}));
    }
    Value::Object(o)
}

/// The ids of one response.
struct Ids {
    response: String,
    message: String,
}

impl Ids {
    fn new(st: &AppState) -> Self {
        let id = st.ids.next();
        Ids {
            response: format!("resp_tutela_{id}"),
            message: format!("msg_tutela_{id}"),
        }
    }
}

/// A `response` object.
#[expect(
    clippy::too_many_arguments,
    reason = "the object's parts, named; four call sites in this module"
)]
fn response_object(
    ids: &Ids,
    echo: &Value,
    created: i64,
    model: Option<&str>,
    status: &str,
    output: Vec<Value>,
    usage: Value,
    tutela: Value,
) -> Value {
    let mut v = json!({
        "id": ids.response,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "model": model,
        "output": output,
        "usage": usage,
        "store": false,
        "previous_response_id": null,
    });
    if let (Value::Object(o), Value::Object(e)) = (&mut v, echo) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    if !tutela.is_null() {
        v["tutela"] = tutela;
    }
    v
}

fn usage_of(chat_usage: Option<&Usage>) -> Value {
    let (i, o) = chat_usage.map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
    json!({
        "input_tokens": i,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": o,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": i + o,
    })
}

fn message_item(ids: &Ids, status: &str, content: Vec<Value>) -> Value {
    json!({"type": "message", "id": ids.message, "status": status, "role": "assistant", "content": content})
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn function_item(call: &ToolCall, status: &str) -> Value {
    let id = call.id.as_deref().unwrap_or("call");
    json!({
        "type": "function_call",
        "id": format!("fc_{id}"),
        "call_id": id,
        "name": call.function.name,
        "arguments": call.function.arguments,
        "status": status,
    })
}

/// Keeps the chat response's tutela headers (`AIGC`, `X-Tutela-Notices`).
fn copy_headers(from: &HeaderMap, to: &mut Response) {
    for name in ["aigc", "x-tutela-notices"] {
        if let Some(v) = from.get(name) {
            to.headers_mut().insert(name, v.clone());
        }
    }
}

async fn json_response(resp: Response, ids: Ids, echo: Value) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return ApiError::Internal(format!("reading the reply: {e}")).into_response(),
    };
    let Ok(mut chat) = serde_json::from_slice::<ChatCompletion>(&bytes) else {
        return ApiError::Internal("the chat turn's reply is not a chat completion".into())
            .into_response();
    };
    let mut output = Vec::new();
    let mut content = Vec::new();
    if let Some(message) = chat.choices.first().map(|c| &c.message) {
        if let Some(t) = &message.content {
            content.push(text_part(t));
        }
        if let Some(r) = &message.refusal {
            content.push(json!({"type": "refusal", "refusal": r}));
        }
        if !content.is_empty() {
            output.push(message_item(&ids, "completed", content));
        }
        for call in message.calls() {
            output.push(function_item(call, "completed"));
        }
    }
    let v = response_object(
        &ids,
        &echo,
        chat.created.unwrap_or(0),
        chat.model.as_deref(),
        "completed",
        output,
        usage_of(chat.usage.as_ref()),
        chat.extra.remove("tutela").unwrap_or(Value::Null),
    );
    let mut out = (StatusCode::OK, axum::Json(v)).into_response();
    copy_headers(&parts.headers, &mut out);
    out
}

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// The Responses event stream over the chat turn's chunk stream.
fn stream_response(resp: Response, ids: Ids, echo: Value) -> Response {
    let (parts, body) = resp.into_parts();
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(32);
    tokio::spawn(async move {
        let chunks = body
            .into_data_stream()
            .map(|r| r.map_err(|e| tutela_openai::WireError::Invalid(e.to_string())));
        // Our own stream: whole events, no idle limit beyond the relay's own.
        let events = crate::upstream::sse_events(chunks, std::time::Duration::from_secs(3600));
        translate(events, &tx, ids, echo).await;
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut out = Response::new(Body::from_stream(body));
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    copy_headers(&parts.headers, &mut out);
    out
}

/// The client has gone: the chat stream is dropped, which stops the turn's relay and its
/// upstream read.
struct Gone;

/// A chat chunk stream being translated into Responses events.
struct Translation<'a> {
    tx: &'a Tx,
    seq: u64,
    ids: Ids,
    echo: Value,
    model: Option<String>,
    created: i64,
    tutela: Value,
    usage: Option<Usage>,
    text: String,
    refusal: String,
    message_open: bool,
    text_open: bool,
    /// Function calls by their chat index: (output index, call so far).
    calls: Vec<(usize, ToolCall)>,
    next_output: usize,
    message_index: usize,
    started: bool,
}

async fn translate(mut events: crate::upstream::EventStream, tx: &Tx, ids: Ids, echo: Value) {
    let mut t = Translation::new(tx, ids, echo);
    let mut failed: Option<ErrorObject> = None;
    while let Some(ev) = events.next().await {
        let mut chunk = match ev {
            Ok(StreamEvent::Chunk(c)) => c,
            Ok(StreamEvent::Done) => break,
            Ok(StreamEvent::Malformed) => continue,
            Err(e) => {
                // The gateway's own error body, read back as OpenAI's error object.
                failed = Some(
                    serde_json::from_value::<ErrorBody>(e.body())
                        .map(|b| b.error)
                        .unwrap_or_default(),
                );
                break;
            }
        };
        if let Some(e) = chunk.error.take() {
            failed = Some(e);
            break;
        }
        if t.chunk(chunk).await.is_err() {
            return;
        }
    }
    let _ = match failed {
        Some(error) => t.fail(&error).await,
        None => t.complete().await,
    };
}

impl<'a> Translation<'a> {
    fn new(tx: &'a Tx, ids: Ids, echo: Value) -> Self {
        Translation {
            tx,
            seq: 0,
            ids,
            echo,
            model: None,
            created: 0,
            tutela: Value::Null,
            usage: None,
            text: String::new(),
            refusal: String::new(),
            message_open: false,
            text_open: false,
            calls: Vec::new(),
            next_output: 0,
            message_index: 0,
            started: false,
        }
    }

    /// Sends one event.
    async fn send(&mut self, kind: &str, mut v: Value) -> Result<(), Gone> {
        v["type"] = json!(kind);
        v["sequence_number"] = json!(self.seq);
        self.seq += 1;
        let mut b = Vec::with_capacity(256);
        b.extend_from_slice(b"event: ");
        b.extend_from_slice(kind.as_bytes());
        b.extend_from_slice(b"\ndata: ");
        if serde_json::to_writer(&mut b, &v).is_err() {
            b.extend_from_slice(b"{}");
        }
        b.extend_from_slice(b"\n\n");
        self.tx.send(Ok(Bytes::from(b))).await.map_err(|_| Gone)
    }

    /// The `response` object in its current state.
    fn response(&self, status: &str, output: Vec<Value>, usage: Value, tutela: Value) -> Value {
        response_object(
            &self.ids,
            &self.echo,
            self.created,
            self.model.as_deref(),
            status,
            output,
            usage,
            tutela,
        )
    }

    /// One chat chunk: the response opened on the first, then text, refusal and tool-call
    /// deltas as Responses events.
    async fn chunk(&mut self, mut chunk: ChatCompletionChunk) -> Result<(), Gone> {
        if !self.started {
            self.start(&chunk).await?;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage.take();
        }
        // The last chunk's `tutela` (the first one's carries only notices and the label).
        if let Some(t) = chunk
            .extra
            .remove("tutela")
            .filter(|t| t.get("interventions").is_some())
        {
            self.tutela = t;
        }
        let Some(delta) = chunk.choices.into_iter().next().map(|c| c.delta) else {
            return Ok(());
        };
        let piece = delta.content.as_deref().unwrap_or("");
        let refused = delta.refusal.as_deref().unwrap_or("");
        if (!piece.is_empty() || !refused.is_empty()) && !self.message_open {
            self.open_message().await?;
        }
        if !piece.is_empty() {
            self.text_delta(piece).await?;
        }
        if !refused.is_empty() {
            self.refusal.push_str(refused);
            let index = usize::from(self.text_open);
            let v = json!({"item_id": self.ids.message, "output_index": self.message_index, "content_index": index, "delta": refused});
            self.send("response.refusal.delta", v).await?;
        }
        for call in delta.tool_calls.iter().flatten() {
            self.tool_call(call).await?;
        }
        Ok(())
    }

    /// `response.created` and `response.in_progress`, from the first chunk.
    async fn start(&mut self, chunk: &ChatCompletionChunk) -> Result<(), Gone> {
        self.started = true;
        self.model.clone_from(&chunk.model);
        self.created = chunk.created.unwrap_or(0);
        let tutela = chunk.extra.get("tutela").cloned().unwrap_or(Value::Null);
        let head = self.response("in_progress", Vec::new(), Value::Null, tutela);
        self.send("response.created", json!({"response": head}))
            .await?;
        self.send("response.in_progress", json!({"response": head}))
            .await
    }

    /// The message item, before its first text or refusal.
    async fn open_message(&mut self) -> Result<(), Gone> {
        self.message_open = true;
        self.message_index = self.next_output;
        self.next_output += 1;
        let item = message_item(&self.ids, "in_progress", Vec::new());
        let v = json!({"output_index": self.message_index, "item": item});
        self.send("response.output_item.added", v).await
    }

    async fn text_delta(&mut self, piece: &str) -> Result<(), Gone> {
        if !self.text_open {
            self.text_open = true;
            let v = json!({"item_id": self.ids.message, "output_index": self.message_index, "content_index": 0, "part": text_part("")});
            self.send("response.content_part.added", v).await?;
        }
        self.text.push_str(piece);
        let v = json!({"item_id": self.ids.message, "output_index": self.message_index, "content_index": 0, "delta": piece, "logprobs": []});
        self.send("response.output_text.delta", v).await
    }

    /// A tool-call delta: a new function call item, or more of its arguments.
    async fn tool_call(&mut self, call: &ToolCallDelta) -> Result<(), Gone> {
        let Ok(index) = usize::try_from(call.index) else {
            return Ok(());
        };
        if self.calls.len() <= index {
            let at = self.next_output;
            self.next_output += 1;
            self.calls.resize(index + 1, (at, ToolCall::default()));
            let mut first = ToolCall {
                id: call.id.clone(),
                ..ToolCall::default()
            };
            if let Some(name) = call.function.as_ref().and_then(|f| f.name.clone()) {
                first.function.name = name;
            }
            self.calls[index] = (at, first);
            let item = function_item(&self.calls[index].1, "in_progress");
            let v = json!({"output_index": at, "item": item});
            self.send("response.output_item.added", v).await?;
        }
        let Some(a) = call
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        else {
            return Ok(());
        };
        let (at, so_far) = &mut self.calls[index];
        so_far.function.arguments.push_str(a);
        let item_id = format!("fc_{}", so_far.id.as_deref().unwrap_or("call"));
        let v = json!({"item_id": item_id, "output_index": *at, "delta": a});
        self.send("response.function_call_arguments.delta", v).await
    }

    /// The chat stream failed: `error`, then `response.failed`.
    async fn fail(&mut self, error: &ErrorObject) -> Result<(), Gone> {
        let v = json!({"code": error.code, "message": error.message, "param": error.param});
        let _ = self.send("error", v).await;
        let mut r = self.response("failed", Vec::new(), Value::Null, Value::Null);
        r["error"] = json!({"code": error.code, "message": error.message});
        self.send("response.failed", json!({"response": r})).await
    }

    /// Every item done, then `response.completed` with the whole output.
    async fn complete(&mut self) -> Result<(), Gone> {
        let mut output: Vec<(usize, Value)> = Vec::new();
        if self.message_open {
            let item = self.close_message().await?;
            output.push((self.message_index, item));
        }
        for (at, call) in std::mem::take(&mut self.calls) {
            let item = function_item(&call, "completed");
            let v = json!({"item_id": item["id"], "output_index": at, "arguments": item["arguments"], "name": item["name"]});
            self.send("response.function_call_arguments.done", v)
                .await?;
            let v = json!({"output_index": at, "item": item});
            self.send("response.output_item.done", v).await?;
            output.push((at, item));
        }
        output.sort_by_key(|(at, _)| *at);
        let output = output.into_iter().map(|(_, v)| v).collect();
        let usage = usage_of(self.usage.as_ref());
        let tutela = std::mem::take(&mut self.tutela);
        let done = self.response("completed", output, usage, tutela);
        self.send("response.completed", json!({"response": done}))
            .await
    }

    /// The message item's parts done (text, refusal), then the item; returns the item.
    async fn close_message(&mut self) -> Result<Value, Gone> {
        let (ids, at) = (&self.ids, self.message_index);
        let mut content = Vec::new();
        let mut events = Vec::new();
        if self.text_open {
            let part = text_part(&self.text);
            events.push(("response.output_text.done", json!({"item_id": ids.message, "output_index": at, "content_index": 0, "text": self.text, "logprobs": []})));
            events.push(("response.content_part.done", json!({"item_id": ids.message, "output_index": at, "content_index": 0, "part": part})));
            content.push(part);
        }
        if !self.refusal.is_empty() {
            events.push(("response.refusal.done", json!({"item_id": ids.message, "output_index": at, "content_index": content.len(), "refusal": self.refusal})));
            content.push(json!({"type": "refusal", "refusal": self.refusal}));
        }
        let item = message_item(ids, "completed", content);
        events.push((
            "response.output_item.done",
            json!({"output_index": at, "item": item}),
        ));
        for (kind, v) in events {
            self.send(kind, v).await?;
        }
        Ok(item)
    }
}
