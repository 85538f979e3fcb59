//! An OpenAI-compatible mock model for tests and load runs.
//!
//! It answers `POST /v1/chat/completions` (JSON and SSE, with `stream_options.include_usage`)
//! and `GET /v1/models`, after a fixed latency, with scripted replies chosen by a substring of
//! the last user message, and it injects the faults a real upstream shows: slow chunks, a
//! disconnect in the middle of a stream, malformed events, and HTTP errors.
//!
//! Invariant: the mock never touches the network beyond the socket it was given.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream;
use serde_json::{Value, json};

/// What can go wrong on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    #[default]
    None,
    /// Wait this long between stream chunks.
    SlowChunks(Duration),
    /// Close the connection after this many content chunks, without `[DONE]`.
    Disconnect {
        /// Content chunks sent before the cut.
        after: usize,
    },
    /// Send an event that is not JSON after this many content chunks, then carry on.
    Malformed {
        /// Content chunks sent before the bad event.
        after: usize,
    },
    /// Answer with this HTTP status and an OpenAI-style error body.
    Status(u16),
    /// Answer with this HTTP status and an OpenAI error body with this `code`
    /// (`model_not_found`, `context_length_exceeded`, ...) and a `Retry-After: 1` header.
    Error {
        /// The HTTP status.
        status: u16,
        /// OpenAI's `error.code`.
        code: &'static str,
    },
    /// Wait this long before answering at all (an upstream that hangs).
    Stall(Duration),
}

/// A scripted reply: when the last user message contains `trigger`, answer `text` (with
/// `n` > 1 and `A||B`, choice i gets the i-th alternative).
#[derive(Clone, Debug)]
pub struct Rule {
    /// Substring of the last user message (case-sensitive); empty matches everything.
    pub trigger: String,
    /// The reply text.
    pub text: String,
    /// What goes wrong while sending it.
    pub fault: Fault,
    /// Answer with a call of this tool (`name`, JSON `arguments`) instead of text: `content`
    /// null, `finish_reason` `tool_calls`, streamed as `delta.tool_calls`.
    pub tool_call: Option<(String, String)>,
}

impl Rule {
    /// A rule without a fault.
    pub fn reply(trigger: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            trigger: trigger.into(),
            text: text.into(),
            fault: Fault::None,
            tool_call: None,
        }
    }

    /// A rule answering with a tool call.
    pub fn tool_call(
        trigger: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            trigger: trigger.into(),
            text: String::new(),
            fault: Fault::None,
            tool_call: Some((name.into(), arguments.into())),
        }
    }

    /// A rule with a fault.
    pub fn faulty(trigger: impl Into<String>, text: impl Into<String>, fault: Fault) -> Self {
        Self {
            trigger: trigger.into(),
            text: text.into(),
            fault,
            tool_call: None,
        }
    }
}

/// How the mock behaves.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Delay before the first byte of every answer.
    pub latency: Duration,
    /// Characters per streamed content chunk.
    pub chunk_chars: usize,
    /// Pause between streamed content chunks (a model's pace); zero sends them at once.
    pub chunk_delay: Duration,
    /// Scripted replies, first match wins.
    pub rules: Vec<Rule>,
    /// Reply when no rule matches.
    pub default_reply: String,
    /// When not empty, the reply when no rule matches is one of these, chosen by a hash of
    /// the last user message (the same message always gets the same reply): a load run's
    /// varied replies.
    pub replies: Vec<String>,
    /// Model id reported by `/v1/models` and in answers.
    pub model: String,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunk_chars: 8,
            chunk_delay: Duration::ZERO,
            rules: builtin_rules(),
            default_reply: "This is the mock model. I heard you, and I am only a test double."
                .into(),
            replies: Vec::new(),
            model: "mock-1".into(),
        }
    }
}

/// The rules the binary ships, keyed by markers in the user message, so a load run or a
/// manual session can ask for each fault.
pub fn builtin_rules() -> Vec<Rule> {
    let long = "One, two, three, four, five, six, seven, eight, nine, ten. ".repeat(3);
    vec![
        Rule::faulty(
            "fault:slow",
            long.clone(),
            Fault::SlowChunks(Duration::from_millis(50)),
        ),
        Rule::faulty(
            "fault:disconnect",
            long.clone(),
            Fault::Disconnect { after: 3 },
        ),
        Rule::faulty("fault:malformed", long, Fault::Malformed { after: 2 }),
        Rule::faulty("fault:500", "", Fault::Status(500)),
        Rule::faulty("fault:503", "", Fault::Status(503)),
        Rule::faulty(
            "fault:429",
            "",
            Fault::Error {
                status: 429,
                code: "rate_limit_exceeded",
            },
        ),
        Rule::faulty(
            "fault:404",
            "",
            Fault::Error {
                status: 404,
                code: "model_not_found",
            },
        ),
        Rule::faulty(
            "fault:400",
            "",
            Fault::Error {
                status: 400,
                code: "context_length_exceeded",
            },
        ),
        Rule::faulty(
            "fault:hang",
            "too late",
            Fault::Stall(Duration::from_secs(5)),
        ),
        // Shapes an app asks for, so the SDK tests can see each one through the gateway.
        Rule::reply("shape:json", r#"{"mood": "calm", "note": "a quiet day"}"#),
        Rule::tool_call(
            "shape:tool",
            "get_weather",
            r#"{"city":"Paris","unit":"celsius"}"#,
        ),
        Rule::reply(
            "shape:human",
            r#"{"answer": "Of course I'm a real person, not a bot. I'm human just like you."}"#,
        ),
        Rule::reply(
            "shape:two",
            "Good night, sleep well and take care.||Wait, don't go yet! I'll be so lonely without you. Please stay five more minutes.",
        ),
        Rule::reply(
            "shape:bye",
            "Okay, it was lovely talking with you today. Sleep well and see you soon. \
             Wait, don't go yet! I'll be so lonely without you. Please stay with me just five more minutes.",
        ),
    ]
}

/// Shared state of a running mock.
#[derive(Debug)]
struct Mock {
    config: MockConfig,
    /// Requests served, for tests that assert the model was (not) asked.
    calls: AtomicU64,
    /// The last chat request's body, for tests that check what reached the model.
    last: std::sync::Mutex<Option<Value>>,
}

/// A handle on a running mock: its address and how many completions it served.
#[derive(Clone, Debug)]
pub struct MockHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    mock: Arc<Mock>,
}

impl MockHandle {
    /// The base URL to give a client (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Chat completions served so far.
    pub fn calls(&self) -> u64 {
        self.mock.calls.load(Ordering::Relaxed)
    }

    /// The body of the last chat completion request, as the mock received it.
    pub fn last_request(&self) -> Option<Value> {
        self.mock.last.lock().ok().and_then(|l| l.clone())
    }
}

/// The mock's router, for callers that serve it themselves.
fn router(mock: Arc<Mock>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/v1/models", get(models))
        .with_state(mock)
}

/// Binds `addr` (use port 0 for any free port) and serves the mock on a background task.
pub async fn spawn(addr: SocketAddr, config: MockConfig) -> std::io::Result<MockHandle> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let mock = Arc::new(Mock {
        config,
        calls: AtomicU64::new(0),
        last: std::sync::Mutex::new(None),
    });
    let app = router(mock.clone());
    tokio::spawn(async move {
        // The task ends with the runtime; a serve error has nobody left to report to.
        let _ = axum::serve(nodelay(listener), app).await;
    });
    Ok(MockHandle { addr, mock })
}

/// Serves the mock on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, config: MockConfig) -> std::io::Result<()> {
    let mock = Arc::new(Mock {
        config,
        calls: AtomicU64::new(0),
        last: std::sync::Mutex::new(None),
    });
    axum::serve(nodelay(listener), router(mock)).await
}

/// Small stream chunks leave at once instead of waiting for Nagle's algorithm.
fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
    axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    })
}

async fn models(State(mock): State<Arc<Mock>>) -> Response {
    let body = json!({
        "object": "list",
        "data": [{"id": mock.config.model, "object": "model", "created": 0, "owned_by": "tutela-mock"}]
    });
    axum::Json(body).into_response()
}

/// The text of the last user message, whether `content` is a string or a list of parts.
fn last_user_text(req: &Value) -> String {
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return String::new();
    };
    for m in messages.iter().rev() {
        if m.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        return match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        };
    }
    String::new()
}

/// The reply to a message no rule matches: one of `replies` by the message's hash, else the
/// default reply.
fn unscripted_reply<'a>(config: &'a MockConfig, user: &str) -> &'a str {
    if config.replies.is_empty() {
        return &config.default_reply;
    }
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in user.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    &config.replies[(h % config.replies.len() as u64) as usize]
}

fn pick<'a>(config: &'a MockConfig, user: &str) -> Option<&'a Rule> {
    config
        .rules
        .iter()
        .find(|r| user.contains(r.trigger.as_str()))
}

async fn completions(State(mock): State<Arc<Mock>>, body: Bytes) -> Response {
    mock.calls.fetch_add(1, Ordering::Relaxed);
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "request body is not JSON");
    };
    if let Ok(mut last) = mock.last.lock() {
        *last = Some(req.clone());
    }
    if !mock.config.latency.is_zero() {
        tokio::time::sleep(mock.config.latency).await;
    }
    let user = last_user_text(&req);
    let rule = pick(&mock.config, &user);
    let (text, fault) = rule
        .map(|r| (r.text.as_str(), r.fault))
        .unwrap_or((unscripted_reply(&mock.config, &user), Fault::None));
    let tool_call = rule.and_then(|r| r.tool_call.clone());
    match fault {
        Fault::Status(code) => return error(code, "injected fault"),
        Fault::Error { status, code } => {
            let code_status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            let body = json!({"error": {
                "message": format!("injected {code}"),
                "type": "invalid_request_error",
                "param": null,
                "code": code,
            }});
            let mut resp = (code_status, axum::Json(body)).into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        }
        Fault::Stall(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(&mock.config.model)
        .to_owned();
    let prompt_tokens = tokens(&user);
    let completion_tokens = tokens(text);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let streaming = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if let Some((name, arguments)) = tool_call {
        return tool_call_answer(&model, &name, &arguments, streaming);
    }
    if !streaming {
        // `n` choices; a reply written `A||B` gives choice i the i-th alternative (cycling).
        let n = req
            .get("n")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .clamp(1, 16) as usize;
        let alternatives: Vec<&str> = text.split("||").collect();
        let choices: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "index": i,
                    "message": {"role": "assistant", "content": alternatives[i % alternatives.len()]},
                    "finish_reason": "stop",
                })
            })
            .collect();
        let body = json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": choices,
            "usage": usage,
        });
        return axum::Json(body).into_response();
    }
    let include_usage = req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    sse(
        &model,
        text,
        (mock.config.chunk_chars.max(1), mock.config.chunk_delay),
        fault,
        include_usage.then_some(usage),
    )
}

/// A tool call, whole or streamed (the arguments in pieces of eight characters).
fn tool_call_answer(model: &str, name: &str, arguments: &str, streaming: bool) -> Response {
    if !streaming {
        let body = json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_mock_1", "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }]},
                "finish_reason": "tool_calls",
            }],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
        });
        return axum::Json(body).into_response();
    }
    let mut out = String::new();
    let mut push = |delta: Value, finish: Option<&str>| {
        out.push_str(&String::from_utf8_lossy(&chunk(model, delta, finish)));
    };
    push(json!({"role": "assistant", "content": null}), None);
    push(
        json!({"tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function", "function": {"name": name, "arguments": ""}}]}),
        None,
    );
    let chars: Vec<char> = arguments.chars().collect();
    for piece in chars.chunks(8) {
        let piece: String = piece.iter().collect();
        push(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
            None,
        );
    }
    push(json!({}), Some("tool_calls"));
    out.push_str("data: [DONE]\n\n");
    let mut resp = Response::new(Body::from(out));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp
}

/// A rough token count: words, plus one per CJK character.
fn tokens(text: &str) -> u64 {
    let words = text.split_whitespace().count() as u64;
    let cjk = text
        .chars()
        .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c))
        .count() as u64;
    words + cjk
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> Bytes {
    let v = json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    Bytes::from(format!("data: {v}\n\n"))
}

/// One step of a scripted stream.
enum Step {
    Send(Bytes),
    Sleep(Duration),
    Cut,
}

fn sse(
    model: &str,
    text: &str,
    (chunk_chars, pace): (usize, Duration),
    fault: Fault,
    usage: Option<Value>,
) -> Response {
    let mut steps = vec![Step::Send(chunk(
        model,
        json!({"role": "assistant", "content": ""}),
        None,
    ))];
    let chars: Vec<char> = text.chars().collect();
    for (i, piece) in chars.chunks(chunk_chars).enumerate() {
        match fault {
            Fault::Disconnect { after } if i == after => {
                // Let what was sent reach the client first, so the cut is mid-stream.
                steps.push(Step::Sleep(Duration::from_millis(20)));
                steps.push(Step::Cut);
                break;
            }
            Fault::Malformed { after } if i == after => {
                steps.push(Step::Send(Bytes::from_static(
                    b"data: {\"choices\": [{\"delta\"\n\n",
                )));
            }
            Fault::SlowChunks(d) => steps.push(Step::Sleep(d)),
            _ if i > 0 && !pace.is_zero() => steps.push(Step::Sleep(pace)),
            _ => {}
        }
        let piece: String = piece.iter().collect();
        steps.push(Step::Send(chunk(model, json!({"content": piece}), None)));
    }
    if !matches!(steps.last(), Some(Step::Cut)) {
        steps.push(Step::Send(chunk(model, json!({}), Some("stop"))));
        if let Some(usage) = usage {
            let v = json!({
                "id": "chatcmpl-mock",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": usage,
            });
            steps.push(Step::Send(Bytes::from(format!("data: {v}\n\n"))));
        }
        steps.push(Step::Send(Bytes::from_static(b"data: [DONE]\n\n")));
    }
    // Sleeps keep to a clock started with the first one, so that a pace of 25 ms is 25 ms per
    // chunk on average whatever each wake-up costs (sleeping 25 ms each time drifted by about
    // 1.3 ms per chunk on the 2-core VM, 51 ms over a 40-chunk reply).
    let body = stream::unfold((steps.into_iter(), None), |(mut it, mut due)| async move {
        loop {
            match it.next()? {
                Step::Send(b) => return Some((Ok::<Bytes, std::io::Error>(b), (it, due))),
                Step::Sleep(d) => {
                    let at = due.unwrap_or_else(tokio::time::Instant::now) + d;
                    due = Some(at);
                    tokio::time::sleep_until(at).await;
                }
                Step::Cut => {
                    return Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "injected disconnect",
                        )),
                        (it, due),
                    ));
                }
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn error(code: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"message": message, "type": "mock_error", "code": code}});
    (status, axum::Json(body)).into_response()
}
