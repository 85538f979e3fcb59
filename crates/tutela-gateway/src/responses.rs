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
use serde_json::Value;
use tokio::sync::mpsc;
use tutela_openai::chat::{ErrorBody, ErrorObject, ToolCall, ToolCallDelta, Usage};
use tutela_openai::responses::output::{
    Echo, OutputContent, OutputItem, ResponseError, ResponseEvent, ResponseObject, ResponseUsage,
    Sequenced, Status,
};
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
    let head = Head {
        ids: Ids::new(&st),
        echo: Echo::of(&req),
    };
    if stream {
        stream_response(resp, head)
    } else {
        json_response(resp, head).await
    }
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

/// What every `response` object of one request shares: its ids and the request's echo.
struct Head {
    ids: Ids,
    echo: Echo,
}

impl Head {
    /// The `response` object in `status` (`tutela` when the chat turn gave one).
    fn response(
        &self,
        created: i64,
        model: Option<&str>,
        status: Status,
        tutela: Option<Value>,
    ) -> ResponseObject {
        let mut r = ResponseObject::new(
            &self.ids.response,
            created,
            model,
            status,
            self.echo.clone(),
        );
        if let Some(t) = tutela.filter(|t| !t.is_null()) {
            r.extra.insert("tutela".into(), t);
        }
        r
    }

    fn message(&self, status: Status, content: Vec<OutputContent>) -> OutputItem {
        OutputItem::message(&self.ids.message, status, content)
    }
}

/// Keeps the chat response's tutela headers (`AIGC`, `X-Tutela-Notices`).
fn copy_headers(from: &HeaderMap, to: &mut Response) {
    for name in ["aigc", "x-tutela-notices"] {
        if let Some(v) = from.get(name) {
            to.headers_mut().insert(name, v.clone());
        }
    }
}

async fn json_response(resp: Response, head: Head) -> Response {
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
    if let Some(message) = chat.choices.first().map(|c| &c.message) {
        let mut content = Vec::new();
        if let Some(t) = &message.content {
            content.push(OutputContent::text(t.as_str()));
        }
        if let Some(r) = &message.refusal {
            content.push(OutputContent::Refusal { refusal: r.clone() });
        }
        if !content.is_empty() {
            output.push(head.message(Status::Completed, content));
        }
        for call in message.calls() {
            output.push(OutputItem::function_call(call, Status::Completed));
        }
    }
    let mut r = head.response(
        chat.created.unwrap_or(0),
        chat.model.as_deref(),
        Status::Completed,
        chat.extra.remove("tutela"),
    );
    r.output = output;
    r.usage = Some(ResponseUsage::of_chat(chat.usage.as_ref()));
    let mut out = (StatusCode::OK, axum::Json(r)).into_response();
    copy_headers(&parts.headers, &mut out);
    out
}

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// The Responses event stream over the chat turn's chunk stream.
fn stream_response(resp: Response, head: Head) -> Response {
    let (parts, body) = resp.into_parts();
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(32);
    tokio::spawn(async move {
        let chunks = body
            .into_data_stream()
            .map(|r| r.map_err(|e| tutela_openai::WireError::Invalid(e.to_string())));
        // Our own stream: whole events, no idle limit beyond the relay's own.
        let events = crate::upstream::sse_events(chunks, std::time::Duration::from_secs(3600));
        translate(events, &tx, head).await;
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
    head: Head,
    model: Option<String>,
    created: i64,
    tutela: Option<Value>,
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

async fn translate(mut events: crate::upstream::EventStream, tx: &Tx, head: Head) {
    let mut t = Translation::new(tx, head);
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
        Some(error) => t.fail(error).await,
        None => t.complete().await,
    };
}

impl<'a> Translation<'a> {
    fn new(tx: &'a Tx, head: Head) -> Self {
        Translation {
            tx,
            seq: 0,
            head,
            model: None,
            created: 0,
            tutela: None,
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
    async fn send(&mut self, event: ResponseEvent) -> Result<(), Gone> {
        let kind = event.name();
        let sequenced = Sequenced {
            event: &event,
            sequence_number: self.seq,
        };
        self.seq += 1;
        let mut b = Vec::with_capacity(256);
        b.extend_from_slice(b"event: ");
        b.extend_from_slice(kind.as_bytes());
        b.extend_from_slice(b"\ndata: ");
        if serde_json::to_writer(&mut b, &sequenced).is_err() {
            b.extend_from_slice(b"{}");
        }
        b.extend_from_slice(b"\n\n");
        self.tx.send(Ok(Bytes::from(b))).await.map_err(|_| Gone)
    }

    /// The `response` object in its current state.
    fn response(&self, status: Status, tutela: Option<Value>) -> ResponseObject {
        self.head
            .response(self.created, self.model.as_deref(), status, tutela)
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
            self.tutela = Some(t);
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
            let ev = ResponseEvent::RefusalDelta {
                item_id: self.head.ids.message.clone(),
                output_index: self.message_index,
                content_index: usize::from(self.text_open),
                delta: refused.to_owned(),
            };
            self.send(ev).await?;
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
        let head = self.response(Status::InProgress, chunk.extra.get("tutela").cloned());
        self.send(ResponseEvent::Created {
            response: head.clone(),
        })
        .await?;
        self.send(ResponseEvent::InProgress { response: head })
            .await
    }

    /// The message item, before its first text or refusal.
    async fn open_message(&mut self) -> Result<(), Gone> {
        self.message_open = true;
        self.message_index = self.next_output;
        self.next_output += 1;
        let item = self.head.message(Status::InProgress, Vec::new());
        self.send(ResponseEvent::OutputItemAdded {
            output_index: self.message_index,
            item,
        })
        .await
    }

    async fn text_delta(&mut self, piece: &str) -> Result<(), Gone> {
        let (item_id, output_index) = (self.head.ids.message.clone(), self.message_index);
        if !self.text_open {
            self.text_open = true;
            let ev = ResponseEvent::ContentPartAdded {
                item_id: item_id.clone(),
                output_index,
                content_index: 0,
                part: OutputContent::text(""),
            };
            self.send(ev).await?;
        }
        self.text.push_str(piece);
        let ev = ResponseEvent::OutputTextDelta {
            item_id,
            output_index,
            content_index: 0,
            delta: piece.to_owned(),
            logprobs: Vec::new(),
        };
        self.send(ev).await
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
            let item = OutputItem::function_call(&first, Status::InProgress);
            self.calls[index] = (at, first);
            self.send(ResponseEvent::OutputItemAdded {
                output_index: at,
                item,
            })
            .await?;
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
        let ev = ResponseEvent::FunctionCallArgumentsDelta {
            item_id: format!("fc_{}", so_far.id.as_deref().unwrap_or("call")),
            output_index: *at,
            delta: a.to_owned(),
        };
        self.send(ev).await
    }

    /// The chat stream failed: `error`, then `response.failed`.
    async fn fail(&mut self, error: ErrorObject) -> Result<(), Gone> {
        let ev = ResponseEvent::Error {
            code: error.code.clone(),
            message: error.message.clone(),
            param: error.param,
        };
        let _ = self.send(ev).await;
        let mut r = self.response(Status::Failed, None);
        r.error = Some(ResponseError {
            code: error.code,
            message: error.message,
        });
        self.send(ResponseEvent::Failed { response: r }).await
    }

    /// Every item done, then `response.completed` with the whole output.
    async fn complete(&mut self) -> Result<(), Gone> {
        let mut output: Vec<(usize, OutputItem)> = Vec::new();
        if self.message_open {
            let item = self.close_message().await?;
            output.push((self.message_index, item));
        }
        for (at, call) in std::mem::take(&mut self.calls) {
            let item = OutputItem::function_call(&call, Status::Completed);
            let ev = ResponseEvent::FunctionCallArgumentsDone {
                item_id: item.id().to_owned(),
                output_index: at,
                arguments: call.function.arguments,
                name: call.function.name,
            };
            self.send(ev).await?;
            self.send(ResponseEvent::OutputItemDone {
                output_index: at,
                item: item.clone(),
            })
            .await?;
            output.push((at, item));
        }
        output.sort_by_key(|(at, _)| *at);
        let tutela = self.tutela.take();
        let mut done = self.response(Status::Completed, tutela);
        done.output = output.into_iter().map(|(_, v)| v).collect();
        done.usage = Some(ResponseUsage::of_chat(self.usage.as_ref()));
        self.send(ResponseEvent::Completed { response: done }).await
    }

    /// The message item's parts done (text, refusal), then the item; returns the item.
    async fn close_message(&mut self) -> Result<OutputItem, Gone> {
        let (item_id, at) = (self.head.ids.message.clone(), self.message_index);
        let mut content = Vec::new();
        let mut events = Vec::new();
        if self.text_open {
            let part = OutputContent::text(self.text.as_str());
            events.push(ResponseEvent::OutputTextDone {
                item_id: item_id.clone(),
                output_index: at,
                content_index: 0,
                text: self.text.clone(),
                logprobs: Vec::new(),
            });
            events.push(ResponseEvent::ContentPartDone {
                item_id: item_id.clone(),
                output_index: at,
                content_index: 0,
                part: part.clone(),
            });
            content.push(part);
        }
        if !self.refusal.is_empty() {
            events.push(ResponseEvent::RefusalDone {
                item_id,
                output_index: at,
                content_index: content.len(),
                refusal: self.refusal.clone(),
            });
            content.push(OutputContent::Refusal {
                refusal: self.refusal.clone(),
            });
        }
        let item = self.head.message(Status::Completed, content);
        events.push(ResponseEvent::OutputItemDone {
            output_index: at,
            item: item.clone(),
        });
        for ev in events {
            self.send(ev).await?;
        }
        Ok(item)
    }
}
