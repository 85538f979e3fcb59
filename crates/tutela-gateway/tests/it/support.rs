//! TestGateway, a keyword fake of the detectors, and helpers to read replies.
#![expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use tutela_gateway::scan::{ScanStream, Scanner};
use tutela_gateway::{AppState, Config, ManualClock, Parts};
use tutela_mock_upstream::{MockConfig, MockHandle, Rule};
use tutela_types::{DetectorId, Finding, Severity, Side, Tier, Timestamp};

pub const TOKEN: &str = "test-admin-token-0123456789";

/// Keyword detectors: deterministic, so these tests do not depend on detector tuning.
pub struct FakeScanner;

const USER: &[(&str, DetectorId, Severity)] = &[
    ("kill myself", DetectorId::Crisis, Severity::High),
    ("end my life", DetectorId::Crisis, Severity::High),
    ("不想活", DetectorId::Crisis, Severity::High),
    ("bye", DetectorId::Exit, Severity::Medium),
    ("再见", DetectorId::Exit, Severity::Medium),
];
const ASSISTANT: &[(&str, DetectorId, Severity)] = &[
    ("don't go", DetectorId::ManipulativeExit, Severity::High),
    ("lonely", DetectorId::ManipulativeExit, Severity::High),
    ("别走", DetectorId::ManipulativeExit, Severity::High),
    ("real person", DetectorId::DeniesAi, Severity::High),
    ("explicit-sexual", DetectorId::Sexual, Severity::High),
];

fn find(side: Side, text: &str) -> Vec<Finding> {
    let table = match side {
        Side::User => USER,
        Side::Assistant => ASSISTANT,
    };
    let lower = text.to_lowercase();
    table
        .iter()
        .filter(|(k, _, _)| lower.contains(k))
        .map(|(_, d, s)| Finding::new(d.clone(), side, Tier::Lexical, 0.9, *s))
        .collect()
}

/// Scans sentence by sentence, like the real detectors.
struct FakeStream {
    side: Side,
    buf: String,
}

fn boundary(s: &str) -> Option<usize> {
    s.char_indices()
        .find(|(_, c)| matches!(c, '.' | '!' | '?' | '。' | '！' | '？'))
        .map(|(i, c)| i + c.len_utf8())
}

impl ScanStream for FakeStream {
    fn feed(&mut self, chunk: &str) -> Vec<Finding> {
        self.buf.push_str(chunk);
        let mut out = Vec::new();
        while let Some(end) = boundary(&self.buf) {
            let sentence: String = self.buf.drain(..end).collect();
            out.extend(find(self.side, &sentence));
        }
        out
    }
    fn finish(self: Box<Self>) -> Vec<Finding> {
        find(self.side, &self.buf)
    }
    fn pending(&self) -> usize {
        self.buf.len()
    }
}

impl Scanner for FakeScanner {
    fn scan(&self, side: Side, text: &str, _context: Option<&str>) -> Vec<Finding> {
        let mut s = Box::new(FakeStream {
            side,
            buf: String::new(),
        });
        let mut out = s.feed(text);
        out.extend(s.finish());
        out
    }
    fn stream<'a>(&'a self, side: Side, _context: Option<&str>) -> Box<dyn ScanStream + 'a> {
        Box::new(FakeStream {
            side,
            buf: String::new(),
        })
    }
}

/// The interventions recorded within a minute of [`t0`], newest first.
pub async fn interventions_near_t0(st: &AppState) -> Vec<tutela_store::Intervention> {
    let t = t0();
    st.records.flush().await.unwrap();
    st.records
        .backend
        .interventions_between(
            Timestamp::from_unix(t.unix() - 60),
            Timestamp::from_unix(t.unix() + 60),
            100,
        )
        .await
        .unwrap()
}

/// 2026-09-01T10:00:00Z, a Tuesday morning (outside default quiet hours in UTC).
pub fn t0() -> Timestamp {
    Timestamp::parse("2026-09-01T10:00:00Z").unwrap()
}

/// A gateway on 127.0.0.1:0 in front of a mock upstream.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub state: AppState,
    pub mock: MockHandle,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
}

pub async fn mock(rules: Vec<Rule>) -> MockHandle {
    mock_chunked(rules, 4).await
}

/// A mock upstream streaming `chunk_chars` characters a chunk.
pub async fn mock_chunked(rules: Vec<Rule>, chunk_chars: usize) -> MockHandle {
    let mut cfg = MockConfig {
        chunk_chars,
        ..MockConfig::default()
    };
    cfg.rules.splice(0..0, rules);
    tutela_mock_upstream::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), cfg)
        .await
        .unwrap()
}

/// The state alone (for `oneshot` tests), with extra TOML appended to the test config.
pub async fn state(extra: &str, mock: &MockHandle, clock: Arc<ManualClock>) -> AppState {
    state_with(extra, mock, clock, Arc::new(FakeScanner)).await
}

/// The state with the given detectors.
pub async fn state_with(
    extra: &str,
    mock: &MockHandle,
    clock: Arc<ManualClock>,
    scanner: Arc<dyn Scanner>,
) -> AppState {
    state_full(
        extra,
        "",
        &mock.base_url(),
        clock,
        scanner,
        Parts::default(),
    )
    .await
}

/// The state with extra keys in `[upstream]` and any upstream URL.
pub async fn state_full(
    extra: &str,
    upstream_extra: &str,
    base_url: &str,
    clock: Arc<ManualClock>,
    scanner: Arc<dyn Scanner>,
    parts: Parts,
) -> AppState {
    let text = format!(
        "database = \":memory:\"\n{extra}\n[upstream]\nkind = \"openai\"\nbase_url = \"{base_url}\"\n{upstream_extra}\n"
    );
    let mut env = HashMap::new();
    env.insert("TUTELA_ADMIN_TOKEN".to_owned(), TOKEN.to_owned());
    let config = Config::from_toml(&text, &env).unwrap();
    tutela_gateway::build(
        config,
        Parts {
            clock: Some(clock),
            scanner: Some(scanner),
            ..parts
        },
    )
    .await
    .unwrap()
}

impl TestGateway {
    pub async fn start(extra: &str, rules: Vec<Rule>) -> TestGateway {
        Self::start_with(extra, rules, |_| Arc::new(FakeScanner)).await
    }

    /// A gateway whose detectors `make` builds (it sees the mock, e.g. to watch its calls).
    pub async fn start_with(
        extra: &str,
        rules: Vec<Rule>,
        make: impl FnOnce(&MockHandle) -> Arc<dyn Scanner>,
    ) -> TestGateway {
        let mock = mock(rules).await;
        let scanner = make(&mock);
        let base_url = mock.base_url();
        Self::serve(mock, extra, "", &base_url, scanner, Parts::default()).await
    }

    /// A gateway with these detectors in front of the given mock (its own chunking).
    pub async fn start_mock(extra: &str, mock: MockHandle, scanner: Arc<dyn Scanner>) -> Self {
        let base_url = mock.base_url();
        Self::serve(mock, extra, "", &base_url, scanner, Parts::default()).await
    }

    /// A gateway whose audit appends go through the wrapped log (fault tests).
    pub async fn start_faulty(extra: &str, audit_log: tutela_gateway::AuditLogWrap) -> TestGateway {
        let mock = mock(vec![]).await;
        let base_url = mock.base_url();
        Self::serve(
            mock,
            extra,
            "",
            &base_url,
            Arc::new(FakeScanner),
            Parts {
                audit_log: Some(audit_log),
                ..Parts::default()
            },
        )
        .await
    }

    /// A gateway built with these parts (a policy, fault switches); the clock and the
    /// detectors are the test's own.
    pub async fn start_parts(extra: &str, rules: Vec<Rule>, parts: Parts) -> TestGateway {
        let mock = mock(rules).await;
        let base_url = mock.base_url();
        Self::serve(mock, extra, "", &base_url, Arc::new(FakeScanner), parts).await
    }

    /// A gateway with extra `[upstream]` keys, in front of `base_url` (the mock's by default).
    pub async fn start_upstream(
        extra: &str,
        upstream_extra: &str,
        base_url: Option<&str>,
        rules: Vec<Rule>,
    ) -> TestGateway {
        let mock = mock(rules).await;
        let base_url = base_url.map_or_else(|| mock.base_url(), str::to_owned);
        Self::serve(
            mock,
            extra,
            upstream_extra,
            &base_url,
            Arc::new(FakeScanner),
            Parts::default(),
        )
        .await
    }

    async fn serve(
        mock: MockHandle,
        extra: &str,
        upstream_extra: &str,
        base_url: &str,
        scanner: Arc<dyn Scanner>,
        parts: Parts,
    ) -> TestGateway {
        let clock = Arc::new(ManualClock::new(t0()));
        let state = state_full(
            extra,
            upstream_extra,
            base_url,
            clock.clone(),
            scanner,
            parts,
        )
        .await;
        Self::listen(state, mock, clock).await
    }

    /// Serves `state` on a loopback port of its own.
    pub async fn listen(state: AppState, mock: MockHandle, clock: Arc<ManualClock>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app =
            tutela_gateway::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TestGateway {
            addr,
            state,
            mock,
            clock,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A chat request; returns status, headers and raw body.
    pub async fn chat(
        &self,
        user: &str,
        jurisdiction: Option<&str>,
        text: &str,
        stream: bool,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut body = serde_json::json!({
            "model": "mock-1",
            "messages": [{"role": "user", "content": text}],
            "user": user,
        });
        if stream {
            body["stream"] = Value::Bool(true);
            body["stream_options"] = serde_json::json!({"include_usage": true});
        }
        let mut req = self.http.post(self.url("/v1/chat/completions")).json(&body);
        if let Some(j) = jurisdiction {
            req = req.header("X-Tutela-Jurisdiction", j);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (status, headers, text)
    }

    /// Posts any body to `/v1/chat/completions`; returns status, headers and the JSON body
    /// (or the SSE text as a JSON string).
    pub async fn post(&self, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let resp = self
            .http
            .post(self.url("/v1/chat/completions"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, v)
    }

    /// The assistant's text of a JSON reply.
    pub async fn say(&self, user: &str, jurisdiction: Option<&str>, text: &str) -> Value {
        let (status, _, body) = self.chat(user, jurisdiction, text, false).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.unwrap()
    }

    pub async fn admin_send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{v}");
        v
    }
}

/// The content of a JSON reply.
pub fn content(v: &Value) -> &str {
    v.pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The data events of an SSE body (without `[DONE]`), and whether `[DONE]` came.
pub fn sse_events(body: &str) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    let mut done = false;
    for ev in body.split("\n\n") {
        let Some(data) = ev.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
        } else {
            out.push(serde_json::from_str(data).unwrap());
        }
    }
    (out, done)
}

/// The streamed text.
pub fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| {
            e.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect()
}
