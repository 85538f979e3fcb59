//! The model behind the gateway: any OpenAI-compatible endpoint (pooled HTTP client, API key
//! from the environment, timeouts) or the built-in `demo` companion. Both answer in the same
//! shape, a whole completion or a stream of chunk events, so the turn pipeline has one path.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::config::UpstreamConfig;
use crate::demo;
use crate::error::ApiError;

/// One event of an upstream stream.
#[derive(Debug)]
pub enum StreamEvent {
    /// A `chat.completion.chunk` object.
    Chunk(Value),
    /// An event that is not JSON; skipped and counted.
    Malformed,
    /// `[DONE]`.
    Done,
}

/// A stream of upstream events; an `Err` ends it (disconnect, idle timeout).
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ApiError>> + Send>>;

/// The upstream's answer.
pub enum UpstreamReply {
    /// A whole `chat.completion` object.
    Json(Value),
    /// Chunk events.
    Stream(EventStream),
}

/// The model behind the gateway.
#[derive(Clone)]
pub enum Upstream {
    /// The scripted demo companion.
    Demo,
    /// An OpenAI-compatible endpoint.
    Http(Arc<HttpUpstream>),
}

/// An OpenAI-compatible endpoint with a pooled client.
pub struct HttpUpstream {
    client: reqwest::Client,
    completions_url: String,
    models_url: String,
    auth: Option<String>,
    model: Option<String>,
    timeout: Duration,
}

impl Upstream {
    /// Builds the upstream of a configuration.
    pub fn new(config: &UpstreamConfig) -> Result<Upstream, ApiError> {
        match config {
            UpstreamConfig::Demo => Ok(Upstream::Demo),
            UpstreamConfig::OpenAi {
                base_url,
                api_key,
                model,
                timeout,
                connect_timeout,
                pool_max_idle_per_host,
            } => {
                let client = reqwest::Client::builder()
                    .connect_timeout(*connect_timeout)
                    .pool_max_idle_per_host(*pool_max_idle_per_host)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .tcp_nodelay(true)
                    .build()
                    .map_err(|e| ApiError::Internal(format!("http client: {e}")))?;
                Ok(Upstream::Http(Arc::new(HttpUpstream {
                    client,
                    completions_url: format!("{base_url}/chat/completions"),
                    models_url: format!("{base_url}/models"),
                    auth: api_key.as_ref().map(|k| format!("Bearer {k}")),
                    model: model.clone(),
                    timeout: *timeout,
                })))
            }
        }
    }

    /// The models list (`GET /v1/models`).
    pub async fn models(&self) -> Result<Value, ApiError> {
        match self {
            Upstream::Demo => Ok(json!({
                "object": "list",
                "data": [{"id": demo::MODEL, "object": "model", "created": 0, "owned_by": "tutela-demo"}]
            })),
            Upstream::Http(h) => {
                let mut req = h.client.get(&h.models_url).timeout(h.timeout);
                if let Some(a) = &h.auth {
                    req = req.header(reqwest::header::AUTHORIZATION, a);
                }
                let resp = req.send().await.map_err(unavailable)?;
                let status = resp.status();
                let retry_after = retry_after(&resp);
                let body = resp.bytes().await.map_err(unavailable)?;
                if !status.is_success() {
                    return Err(upstream_status(status.as_u16(), &body, retry_after));
                }
                serde_json::from_slice(&body).map_err(|e| ApiError::UpstreamInvalid(e.to_string()))
            }
        }
    }

    /// Sends a chat completion request. `raw` is the client's body, forwarded as it came when
    /// nothing needs changing (saves re-serialising it); `request` is the same body parsed.
    pub async fn complete(
        &self,
        request: &mut Value,
        raw: Bytes,
        stream: bool,
        last_user: &str,
        turn_no: usize,
        now: tutela_types::Timestamp,
    ) -> Result<UpstreamReply, ApiError> {
        match self {
            Upstream::Demo => Ok(demo::reply(request, stream, last_user, turn_no, now)),
            Upstream::Http(h) => {
                let body = match (&h.model, request.as_object_mut()) {
                    (Some(m), Some(obj)) if !obj.contains_key("model") => {
                        obj.insert("model".into(), Value::String(m.clone()));
                        Bytes::from(
                            serde_json::to_vec(&request)
                                .map_err(|e| ApiError::Internal(e.to_string()))?,
                        )
                    }
                    _ => raw,
                };
                let mut req = h
                    .client
                    .post(&h.completions_url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body);
                if let Some(a) = &h.auth {
                    req = req.header(reqwest::header::AUTHORIZATION, a);
                }
                let resp = tokio::time::timeout(h.timeout, req.send())
                    .await
                    .map_err(|_| {
                        ApiError::UpstreamTimeout(format!(
                            "no answer within {} ms",
                            h.timeout.as_millis()
                        ))
                    })?
                    .map_err(unavailable)?;
                let status = resp.status();
                if !status.is_success() {
                    let retry_after = retry_after(&resp);
                    let body = tokio::time::timeout(h.timeout, resp.bytes())
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default();
                    return Err(upstream_status(status.as_u16(), &body, retry_after));
                }
                if !stream {
                    let body = tokio::time::timeout(h.timeout, resp.bytes())
                        .await
                        .map_err(|_| {
                            ApiError::UpstreamTimeout(format!(
                                "the body did not arrive within {} ms",
                                h.timeout.as_millis()
                            ))
                        })?
                        .map_err(unavailable)?;
                    let v: Value = serde_json::from_slice(&body)
                        .map_err(|e| ApiError::UpstreamInvalid(e.to_string()))?;
                    return Ok(UpstreamReply::Json(v));
                }
                let idle = h.timeout;
                let bytes = resp.bytes_stream().map(|r| r.map_err(unavailable));
                Ok(UpstreamReply::Stream(sse_events(bytes, idle)))
            }
        }
    }
}

/// A transport failure: a timeout is 504, anything else (refused, reset, TLS, a body cut off)
/// is a broken upstream, 502.
fn unavailable(e: reqwest::Error) -> ApiError {
    let timeout = e.is_timeout();
    // reqwest's message is "error sending request"; the cause says what happened.
    let cause = std::error::Error::source(&e)
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    let text = e.without_url().to_string();
    if timeout {
        ApiError::UpstreamTimeout(format!("{text}{cause}"))
    } else {
        ApiError::UpstreamUnreachable(format!("{text}{cause}"))
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// An upstream error status: its client errors pass through (status and OpenAI body), its own
/// failures become 502 or 503 (see `ApiError::status`). A 401 or 403 refuses tutela's own key,
/// which is the deployment's fault, not the caller's: 502.
pub fn upstream_status(status: u16, body: &[u8], retry_after: Option<String>) -> ApiError {
    let parsed = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|v| v.get("error").is_some_and(Value::is_object));
    let message = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let end = (0..=body.len().min(200))
                .rev()
                .find(|&i| std::str::from_utf8(&body[..i]).is_ok())
                .unwrap_or(0);
            String::from_utf8_lossy(&body[..end]).into_owned()
        });
    match status {
        401 | 403 => ApiError::UpstreamStatus {
            status,
            message: format!("the upstream refused tutela's credentials: {message}"),
        },
        408 => ApiError::UpstreamTimeout(message),
        400..=499 => ApiError::UpstreamRejected {
            status,
            message,
            body: parsed,
            retry_after,
        },
        _ => ApiError::UpstreamStatus { status, message },
    }
}

/// The largest upstream SSE event tutela reads (a chunk is a few hundred bytes; a tool call's
/// arguments or logprobs may make one larger). A longer event ends the stream with a 502-kind
/// error instead of growing memory without bound.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Splits an SSE byte stream into events. Waits at most `idle` for the next event to begin,
/// and at most `idle` from an event's first byte to its end (a trickle of bytes without a
/// separator does not keep it alive); an event longer than [`MAX_EVENT_BYTES`] ends the
/// stream. The separator search resumes where it stopped, so a long event costs linear time.
pub fn sse_events<S>(bytes: S, idle: Duration) -> EventStream
where
    S: Stream<Item = Result<Bytes, ApiError>> + Send + 'static,
{
    struct St<S> {
        inner: Pin<Box<S>>,
        buf: BytesMut,
        /// Bytes of `buf` already searched for a separator.
        searched: usize,
        /// When the event now in `buf` began.
        started: Option<tokio::time::Instant>,
        done: bool,
    }
    let st = St {
        inner: Box::pin(bytes),
        buf: BytesMut::new(),
        searched: 0,
        started: None,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(st, move |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if let Some(event) = next_event(&mut st.buf, &mut st.searched) {
                st.started = None;
                match event {
                    Some(ev) => {
                        if matches!(ev, StreamEvent::Done) {
                            st.done = true;
                        }
                        return Some((Ok(ev), st));
                    }
                    None => continue, // comment or empty event
                }
            }
            if st.buf.len() > MAX_EVENT_BYTES {
                st.done = true;
                return Some((
                    Err(ApiError::UpstreamInvalid(format!(
                        "a stream event longer than {MAX_EVENT_BYTES} bytes"
                    ))),
                    st,
                ));
            }
            if st.buf.is_empty() {
                st.started = None;
            }
            let deadline = match st.started {
                Some(t) => t + idle,
                None => tokio::time::Instant::now() + idle,
            };
            match tokio::time::timeout_at(deadline, st.inner.next()).await {
                Err(_) => {
                    st.done = true;
                    let what = if st.started.is_some() {
                        "a stream event did not end"
                    } else {
                        "the stream was idle"
                    };
                    return Some((
                        Err(ApiError::UpstreamTimeout(format!(
                            "{what} for {} ms",
                            idle.as_millis()
                        ))),
                        st,
                    ));
                }
                Ok(None) => {
                    st.done = true;
                    return Some((
                        Err(ApiError::UpstreamUnreachable(
                            "stream ended before [DONE]".into(),
                        )),
                        st,
                    ));
                }
                Ok(Some(Err(e))) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                Ok(Some(Ok(b))) => {
                    if st.started.is_none() && !b.is_empty() {
                        st.started = Some(tokio::time::Instant::now());
                    }
                    st.buf.extend_from_slice(&b);
                }
            }
        }
    }))
}

/// Takes one complete event off the buffer: `None` if none is complete yet; `Some(None)` for an
/// event without data. `searched` is how far the buffer was already searched.
fn next_event(buf: &mut BytesMut, searched: &mut usize) -> Option<Option<StreamEvent>> {
    let Some((end, sep)) = find_separator(buf, searched.saturating_sub(2)) else {
        *searched = buf.len();
        return None;
    };
    *searched = 0;
    let raw = buf.split_to(end + sep);
    let text = &raw[..end];
    let mut data: Vec<u8> = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(rest);
        }
    }
    if data.is_empty() {
        return Some(None);
    }
    if data == b"[DONE]" {
        return Some(Some(StreamEvent::Done));
    }
    Some(Some(match serde_json::from_slice::<Value>(&data) {
        Ok(v) => StreamEvent::Chunk(v),
        Err(_) => StreamEvent::Malformed,
    }))
}

fn find_separator(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some((i, 2));
            }
            if buf[i + 1] == b'\r' && i + 2 < buf.len() && buf[i + 2] == b'\n' {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sse_split_anywhere_parses_the_same() {
        let text =
            "data: {\"a\":1}\n\n: comment\n\ndata: nope\n\r\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        for cut in 1..text.len() {
            let (a, b) = text.split_at(cut);
            let parts: Vec<Result<Bytes, ApiError>> = vec![
                Ok(Bytes::copy_from_slice(a.as_bytes())),
                Ok(Bytes::copy_from_slice(b.as_bytes())),
            ];
            let mut s = sse_events(futures_util::stream::iter(parts), Duration::from_secs(5));
            let mut kinds = Vec::new();
            while let Some(ev) = s.next().await {
                kinds.push(match ev.unwrap() {
                    StreamEvent::Chunk(v) => v.to_string(),
                    StreamEvent::Malformed => "bad".into(),
                    StreamEvent::Done => "done".into(),
                });
            }
            assert_eq!(
                kinds,
                ["{\"a\":1}", "bad", "{\"b\":2}", "done"],
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn an_event_without_separators_is_bounded() {
        // 2 MB of data without a blank line: the stream ends with an error once the event
        // passes the bound, instead of buffering it all.
        let piece = Bytes::from(vec![b'x'; 64 * 1024]);
        let parts = std::iter::once(Bytes::from_static(b"data: "))
            .chain(std::iter::repeat_n(piece, 32))
            .map(Ok)
            .collect::<Vec<Result<Bytes, ApiError>>>();
        let mut s = sse_events(futures_util::stream::iter(parts), Duration::from_secs(5));
        let first = s.next().await;
        assert!(
            matches!(&first, Some(Err(ApiError::UpstreamInvalid(m))) if m.contains("longer")),
            "expected a bound error, got {first:?}"
        );
        assert!(s.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_event_times_out_as_a_whole() {
        // One byte every 100 ms never completes an event: each byte would reset an idle
        // timer, but the event as a whole must end within the bound (1 s).
        let trickle = futures_util::stream::unfold(0u32, |n| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((Ok(Bytes::from_static(b"x")), n + 1))
        });
        let mut s = sse_events(trickle, Duration::from_secs(1));
        let t = tokio::time::Instant::now();
        let first = s.next().await;
        assert!(
            matches!(&first, Some(Err(ApiError::UpstreamTimeout(m))) if m.contains("did not end")),
            "expected a timeout, got {first:?}"
        );
        assert!(
            t.elapsed() <= Duration::from_millis(1100),
            "{:?}",
            t.elapsed()
        );
    }
}
