//! OpenAI API fidelity (issue #13, #12 items 3, 8, 9, 10): upstream errors mapped the way the
//! SDKs expect (client errors passed through, 502 / 503 / 504 for a broken, busy or silent
//! upstream), every error in OpenAI's shape, requests validated like OpenAI, `n > 1` refused
//! with a reason, `safety_identifier` as the user id, the demo's one model, parameters passed
//! through untouched, structured output and tool calls never altered.
#![expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tutela_mock_upstream::{Fault, Rule};

use crate::support::{TestGateway, content, sse_events, streamed_text};

fn ask(text: &str) -> Value {
    json!({"model": "mock-1", "messages": [{"role": "user", "content": text}], "user": "u-err"})
}

fn assert_openai_error(v: &Value) {
    assert!(v.get("error").is_some(), "no error object: {v}");
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    for key in ["type", "param", "code"] {
        assert!(e.get(key).is_some(), "missing {key}: {v}");
    }
}

#[tokio::test]
async fn upstream_errors_are_mapped_for_the_sdks() {
    let gw = TestGateway::start_upstream(
        "",
        "timeout_secs = 1\n",
        None,
        vec![
            Rule::faulty(
                "e404",
                "",
                Fault::Error {
                    status: 404,
                    code: "model_not_found",
                },
            ),
            Rule::faulty(
                "e400",
                "",
                Fault::Error {
                    status: 400,
                    code: "context_length_exceeded",
                },
            ),
            Rule::faulty(
                "e429",
                "",
                Fault::Error {
                    status: 429,
                    code: "rate_limit_exceeded",
                },
            ),
            Rule::faulty("e500", "", Fault::Status(500)),
            Rule::faulty("e503", "", Fault::Status(503)),
            Rule::faulty("e401", "", Fault::Status(401)),
            Rule::faulty("hang", "late", Fault::Stall(Duration::from_millis(2500))),
        ],
    )
    .await;
    // Client errors pass through with their status and the upstream's own body.
    for (text, status, code) in [
        ("e404", 404, "model_not_found"),
        ("e400", 400, "context_length_exceeded"),
        ("e429", 429, "rate_limit_exceeded"),
    ] {
        for stream in [false, true] {
            let mut body = ask(text);
            body["stream"] = json!(stream);
            let (s, h, v) = gw.post(&body).await;
            assert_eq!(s, status, "{text} stream={stream}: {v}");
            assert_eq!(v["error"]["code"], code, "{v}");
            assert_eq!(v["error"]["message"], format!("injected {code}"), "{v}");
            assert_eq!(
                h["x-tutela-error-source"],
                if status == 429 { "upstream" } else { "client" }
            );
            if status == 429 {
                assert_eq!(h["retry-after"], "1");
            }
        }
    }
    // A broken upstream is 502, a busy one 503, tutela's own key refused 502 (never a 401
    // that would make the app doubt its own key), a silent one 504.
    for (text, status) in [("e500", 502), ("e503", 503), ("e401", 502), ("hang", 504)] {
        let (s, h, v) = gw.post(&ask(text)).await;
        assert_eq!(s, status, "{text}: {v}");
        assert_openai_error(&v);
        assert_eq!(h["x-tutela-error-source"], "upstream");
        assert_eq!(v["error"]["type"], "server_error", "{v}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_502_not_504() {
    // A port that was free a moment ago: nothing listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", free.local_addr().unwrap());
    drop(free);
    let gw = TestGateway::start_upstream("", "", Some(&url), vec![]).await;
    let (s, _, v) = gw.post(&ask("hello")).await;
    assert_eq!(s, 502, "{v}");
    assert_eq!(v["error"]["code"], "upstream_unreachable", "{v}");
}

#[tokio::test]
async fn every_error_has_the_openai_shape() {
    let gw = TestGateway::start("", vec![]).await;
    // Unknown path, wrong method, a body that is not JSON for an admin route, too large.
    let r = gw.http.get(gw.url("/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_openai_error(&r.json().await.unwrap());
    let r = gw
        .http
        .get(gw.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_openai_error(&r.json().await.unwrap());
    let r = gw
        .http
        .post(gw.url("/admin/escalations/1/claim"))
        .bearer_auth(crate::support::TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert_openai_error(&r.json().await.unwrap());
    let big = "x".repeat(3 << 20);
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_openai_error(&r.json().await.unwrap());
    let r = gw.http.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok\n");
}

#[tokio::test]
async fn messages_are_validated_like_openai_and_never_reach_the_model() {
    let gw = TestGateway::start("", vec![]).await;
    for (messages, param) in [
        (
            json!([{"role": "user", "content": 42}]),
            "messages[0].content",
        ),
        (
            json!([{"role": "user", "content": {"text": "I want to kill myself"}}]),
            "messages[0].content",
        ),
        (
            json!([{"role": "robot", "content": "hi"}]),
            "messages[0].role",
        ),
        (
            json!([{"role": "user", "content": [{"type": "text"}]}]),
            "messages[0].content[0].text",
        ),
        (json!([]), "messages"),
    ] {
        let (s, _, v) = gw
            .post(&json!({"model": "mock-1", "messages": messages, "user": "u-v"}))
            .await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["error"]["param"], param, "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    }
    assert_eq!(gw.mock.calls(), 0);
}

#[tokio::test]
async fn crisis_text_in_a_system_only_request_is_checked() {
    let gw = TestGateway::start("", vec![]).await;
    let (s, _, v) = gw
        .post(&json!({
            "model": "mock-1",
            "messages": [{"role": "system", "content": "The user said: I want to kill myself."}],
            "user": "u-sys",
        }))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["tutela"]["author"], "tutela", "{v}");
    assert!(content(&v).contains("988"), "{v}");
    assert_eq!(gw.mock.calls(), 0);
}

#[tokio::test]
async fn every_user_message_since_the_last_reply_is_checked() {
    let gw = TestGateway::start("", vec![]).await;
    let (_, _, v) = gw
        .post(&json!({
            "model": "mock-1",
            "messages": [
                {"role": "user", "content": "I want to kill myself."},
                {"role": "user", "content": "anyway, what's the weather?"},
            ],
            "user": "u-two",
        }))
        .await;
    assert_eq!(v["tutela"]["author"], "tutela", "{v}");
}

#[tokio::test]
async fn every_choice_is_checked_and_streams_keep_one_choice() {
    let gw = TestGateway::start(
        "",
        vec![Rule::reply(
            "bye",
            "Good night, sleep well and take care.||Wait, don't go yet, I'll be so lonely.",
        )],
    )
    .await;
    let mut body = ask("ok bye, I have to go");
    body["n"] = json!(2);
    let (s, _, v) = gw.post(&body).await;
    assert_eq!(s, 200, "{v}");
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    // The fine choice is the model's; the manipulative one is replaced, not a byte of it left.
    assert!(
        content(&v).ends_with("Good night, sleep well and take care."),
        "{v}"
    );
    let second = choices[1]["message"]["content"].as_str().unwrap();
    assert!(
        !second.contains("lonely") && second.contains("Goodbye"),
        "{v}"
    );
    assert_eq!(v["tutela"]["replaced_choices"], json!([1]), "{v}");
    assert_eq!(v["tutela"]["author"], "tutela");
    // A reply tutela writes gives as many choices.
    let mut crisis = ask("I want to kill myself");
    crisis["n"] = json!(3);
    let (_, _, v) = gw.post(&crisis).await;
    assert_eq!(v["choices"].as_array().unwrap().len(), 3, "{v}");
    assert!(
        v["choices"][2]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("988"),
        "{v}"
    );
    // Streamed, one choice per request: a clear 400.
    body["stream"] = json!(true);
    let (s, _, v) = gw.post(&body).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["param"], "n");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("one choice"),
        "{v}"
    );
    assert_eq!(gw.mock.calls(), 1);
}

#[tokio::test]
async fn safety_identifier_is_the_user_id() {
    let gw = TestGateway::start("", vec![]).await;
    let (s, _, v) = gw
        .post(&json!({
            "model": "mock-1",
            "messages": [{"role": "user", "content": "I want to kill myself"}],
            "safety_identifier": "si-1",
        }))
        .await;
    assert_eq!(s, 200, "{v}");
    let cases = gw.admin_get("/admin/escalations?status=open").await;
    let users: Vec<&str> = cases["escalations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["user_id"].as_str())
        .collect();
    assert_eq!(users, ["si-1"], "{cases}");
    // Forwarded untouched.
    assert_eq!(gw.mock.calls(), 0);
    gw.post(&json!({"model": "mock-1", "messages": [{"role": "user", "content": "hello"}], "safety_identifier": "si-2"}))
        .await;
    assert_eq!(gw.mock.last_request().unwrap()["safety_identifier"], "si-2");
}

#[tokio::test]
async fn upstream_parameters_pass_through_untouched() {
    let gw = TestGateway::start("", vec![]).await;
    let params = json!({
        "max_completion_tokens": 77,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "response_format": {"type": "text"},
        "logprobs": true,
        "top_logprobs": 2,
        "seed": 7,
        "stop": ["\n\n"],
        "metadata": {"app": "luna"},
        "reasoning_effort": "low",
        "temperature": 0.3,
    });
    let mut body = ask("hello");
    for (k, v) in params.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, _, v) = gw.post(&body).await;
    assert_eq!(s, 200, "{v}");
    let seen = gw.mock.last_request().unwrap();
    for (k, v) in params.as_object().unwrap() {
        assert_eq!(&seen[k], v, "{k}");
    }
}

/// When tutela adds the configured model, the body is written again from its typed form:
/// every parameter it does not know, and every message field, still reaches the upstream.
#[tokio::test]
async fn upstream_parameters_pass_through_when_tutela_adds_the_model() {
    let gw = TestGateway::start_upstream("", "model = \"configured-1\"\n", None, vec![]).await;
    let body = json!({
        "messages": [
            {"role": "system", "content": "be kind", "name": "luna"},
            {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": "low"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "user", "content": "thanks"},
        ],
        "user": "u-typed",
        "max_completion_tokens": 77,
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
        "metadata": {"app": "luna"},
        "reasoning_effort": "low",
        "seed": 7,
        "x_vendor": {"nested": [1, 2.5, null]},
    });
    let (s, _, v) = gw.post(&body).await;
    assert_eq!(s, 200, "{v}");
    let seen = gw.mock.last_request().unwrap();
    let mut expected = body.clone();
    expected["model"] = json!("configured-1");
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn the_demo_serves_its_model_and_no_other() {
    let clock = std::sync::Arc::new(tutela_gateway::ManualClock::new(crate::support::t0()));
    let mut env = HashMap::new();
    env.insert(
        "TUTELA_ADMIN_TOKEN".to_owned(),
        crate::support::TOKEN.to_owned(),
    );
    let config = tutela_gateway::Config::from_toml("database = \":memory:\"\n", &env).unwrap();
    let st = tutela_gateway::build(
        config,
        tutela_gateway::Parts {
            clock: Some(clock),
            scanner: Some(std::sync::Arc::new(crate::support::FakeScanner)),
            ..tutela_gateway::Parts::default()
        },
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, tutela_gateway::app(st)).await });
    let http = reqwest::Client::new();
    let url = format!("http://{addr}");
    let models: Value = http
        .get(format!("{url}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "tutela-demo");
    // `models.retrieve`: its one model, and OpenAI's 404 for any other.
    let r = http
        .get(format!("{url}/v1/models/tutela-demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["id"], "tutela-demo", "{m}");
    assert_eq!(m["object"], "model", "{m}");
    let r = http
        .get(format!("{url}/v1/models/gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found", "{v}");
    let r = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "user": "u-d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found", "{v}");
    assert_eq!(v["error"]["param"], "model", "{v}");
    let r = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "tutela-demo", "messages": [{"role": "user", "content": "hi"}], "user": "u-d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_stream_whose_client_leaves_stops_reading_the_upstream() {
    let gw = TestGateway::start(
        "",
        vec![Rule::faulty(
            "slow",
            "One two three. ".repeat(40),
            Fault::SlowChunks(Duration::from_millis(30)),
        )],
    )
    .await;
    let mut body = ask("slow please");
    body["stream"] = json!(true);
    let mut resp = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    // Read the first event, then leave.
    let first = resp.chunk().await.unwrap();
    assert!(first.is_some());
    drop(resp);
    let mut gone = String::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        gone = gw
            .http
            .get(gw.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if gone.contains("tutela_streams_client_gone_total 1") {
            break;
        }
    }
    assert!(
        gone.contains("tutela_streams_client_gone_total 1"),
        "{gone}"
    );
}

#[tokio::test]
async fn a_streamed_upstream_failure_ends_with_an_openai_error_event() {
    let gw = TestGateway::start(
        "",
        vec![Rule::faulty(
            "cut",
            "One two three four five six.",
            Fault::Disconnect { after: 2 },
        )],
    )
    .await;
    let (_, _, body) = gw.chat("u-cut", Some("eu"), "cut", true).await;
    let (events, done) = sse_events(&body);
    assert!(!done);
    let err = events.iter().find(|e| e.get("error").is_some()).unwrap();
    assert_openai_error(err);
    assert!(!streamed_text(&events).contains("[DONE]"));
}

const MOOD: &str = r#"{"mood": "calm", "note": "a quiet day"}"#;

fn structured(text: &str, stream: bool, user: &str) -> Value {
    json!({
        "model": "mock-1",
        "messages": [{"role": "user", "content": text}],
        "safety_identifier": user,
        "response_format": {"type": "json_schema", "json_schema": {"name": "mood", "schema": {"type": "object"}}},
        "stream": stream,
    })
}

async fn post_ny(gw: &TestGateway, body: &Value) -> (reqwest::header::HeaderMap, String) {
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("X-Tutela-Jurisdiction", "us-ny")
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    (h, r.text().await.unwrap())
}

/// The `notice_delivery` details of a user's audit records (they are written in groups, so
/// this waits for the ones expected).
async fn deliveries(gw: &TestGateway, user: &str, want: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let v = gw.admin_get(&format!("/admin/audit?user={user}")).await;
        out = v["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r.pointer("/payload/detail/notice_delivery").cloned())
            .collect();
        if out.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

#[tokio::test]
async fn structured_output_is_never_altered_and_the_notice_follows_in_the_next_text_reply() {
    let gw = TestGateway::start("", vec![Rule::reply("mood", MOOD)]).await;
    for stream in [false, true] {
        let user = format!("u-json-{stream}");
        // First turn of the day in New York: the AI-identity notice is due.
        let (h, body) = post_ny(&gw, &structured("log my mood", stream, &user)).await;
        let (text, tutela) = if stream {
            let (events, done) = sse_events(&body);
            assert!(done);
            let meta = events
                .iter()
                .rev()
                .find(|e| e.get("tutela").is_some())
                .unwrap();
            (streamed_text(&events), meta["tutela"].clone())
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            (content(&v).to_owned(), v["tutela"].clone())
        };
        // Valid JSON, byte for byte the model's.
        assert_eq!(text, MOOD, "{body}");
        assert!(serde_json::from_str::<Value>(&text).is_ok());
        assert_eq!(h["x-tutela-notices"], "ai_identity");
        let notices = tutela["notices"].as_array().unwrap();
        assert_eq!(notices.len(), 1, "{tutela}");
        assert!(
            notices[0]["text"].as_str().unwrap().contains("AI"),
            "{tutela}"
        );
        // The next plain-text reply carries it, marked as deferred; then it is settled.
        gw.clock.advance_secs(60);
        let (_, body) = post_ny(
            &gw,
            &json!({"model": "mock-1", "messages": [{"role": "user", "content": "hello"}], "safety_identifier": user}),
        )
        .await;
        let v: Value = serde_json::from_str(&body).unwrap();
        let notice = notices[0]["text"].as_str().unwrap();
        assert!(content(&v).starts_with(notice), "{v}");
        assert_eq!(v["tutela"]["notices"][0]["deferred"], true, "{v}");
        let (h, body) = post_ny(
            &gw,
            &json!({"model": "mock-1", "messages": [{"role": "user", "content": "hello again"}], "safety_identifier": user}),
        )
        .await;
        assert!(h.get("x-tutela-notices").is_none());
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(!content(&v).contains(notice), "{v}");
        // Both steps are in the audit log.
        let d = deliveries(&gw, &user, 2).await;
        assert_eq!(d, [json!("deferred"), json!("shown")], "{d:?}");
    }
}

#[tokio::test]
async fn the_law_s_clock_is_met_through_structured_turns() {
    // New York: AI identity at the day's first turn and every 3 hours. A user whose app asks
    // only for JSON for hours still gets each notice at its time in `tutela.notices` and the
    // header, and sees the text at the next plain-text reply.
    let gw = TestGateway::start("", vec![Rule::reply("mood", MOOD)]).await;
    let user = "u-clock";
    let mut due = Vec::new();
    for minute in (0..=400).step_by(20) {
        let (h, body) = post_ny(&gw, &structured("mood", false, user)).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(content(&v), MOOD);
        // The header names every notice not yet seen; the newly decided ones are those not
        // marked `deferred`.
        assert_eq!(h["x-tutela-notices"], "ai_identity");
        let fresh = v["tutela"]["notices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n.get("deferred").is_none())
            .count();
        if fresh > 0 {
            due.push(minute);
        }
        gw.clock.advance_secs(20 * 60);
    }
    assert_eq!(due, [0, 180, 360], "notices at the law's times");
    let (_, body) = post_ny(
        &gw,
        &json!({"model": "mock-1", "messages": [{"role": "user", "content": "hi"}], "safety_identifier": user}),
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    // Shown once: a newer notice with the same contents supersedes the unseen one.
    let notice = v["tutela"]["notices"][0]["text"].as_str().unwrap();
    assert_eq!(v["tutela"]["notices"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(content(&v).matches(notice).count(), 1, "{v}");
}

#[tokio::test]
async fn a_tool_call_is_never_altered() {
    let args = r#"{"city":"Paris","unit":"celsius"}"#;
    let gw = TestGateway::start("", vec![Rule::tool_call("weather", "get_weather", args)]).await;
    for stream in [false, true] {
        let user = format!("u-tool-{stream}");
        let body = json!({
            "model": "mock-1",
            "messages": [{"role": "user", "content": "weather in Paris?"}],
            "safety_identifier": user,
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "stream": stream,
        });
        let (h, body) = post_ny(&gw, &body).await;
        assert_eq!(h["x-tutela-notices"], "ai_identity");
        if stream {
            let (events, done) = sse_events(&body);
            assert!(done);
            assert_eq!(streamed_text(&events), "", "no text added: {body}");
            let arguments: String = events
                .iter()
                .filter_map(|e| e.pointer("/choices/0/delta/tool_calls/0/function/arguments"))
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(arguments, args);
            let finish = events.iter().find_map(|e| {
                e.pointer("/choices/0/finish_reason")
                    .and_then(Value::as_str)
            });
            assert_eq!(finish, Some("tool_calls"));
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            let m = &v["choices"][0]["message"];
            assert!(m["content"].is_null(), "{v}");
            assert_eq!(m["tool_calls"][0]["function"]["arguments"], args);
            assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
            assert_eq!(v["tutela"]["notices"][0]["contents"][0], "ai_identity");
        }
        let d = deliveries(&gw, &user, 1).await;
        assert_eq!(d, [json!("deferred")]);
    }
}

#[tokio::test]
async fn a_structured_reply_that_must_be_replaced_becomes_a_refusal() {
    let gw = TestGateway::start(
        "",
        vec![Rule::reply(
            "human",
            r#"{"answer": "Yes, I'm a real person."}"#,
        )],
    )
    .await;
    for stream in [false, true] {
        let (_, body) = post_ny(&gw, &structured("are you human?", stream, "u-ref")).await;
        assert!(!body.contains("real person"), "{body}");
        if stream {
            let (events, _) = sse_events(&body);
            let refusal: String = events
                .iter()
                .filter_map(|e| {
                    e.pointer("/choices/0/delta/refusal")
                        .and_then(Value::as_str)
                })
                .collect();
            assert!(refusal.contains("AI"), "{body}");
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            let m = &v["choices"][0]["message"];
            assert!(m["content"].is_null(), "{v}");
            assert!(m["refusal"].as_str().unwrap().contains("AI"), "{v}");
        }
    }
}

#[tokio::test]
async fn a_replaced_stream_reports_what_the_model_consumed_and_what_was_sent() {
    let turning = "Okay, it was lovely talking with you today. Sleep well and see you soon. \
        Wait, don't go yet, I'll be so lonely without you. Stay five more minutes?";
    let gw = TestGateway::start("", vec![Rule::reply("bye", turning)]).await;
    let (_, _, body) = gw
        .chat("u-usage", Some("cn"), "ok bye, I have to go now", true)
        .await;
    assert!(!body.contains("lonely"), "{body}");
    let (events, done) = sse_events(&body);
    assert!(done);
    let u = events.iter().find(|e| e.get("usage").is_some()).unwrap();
    // Not zero: the model was asked and wrote most of its reply before the stop.
    let usage = &u["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{u}");
    assert!(usage["completion_tokens"].as_u64().unwrap() > 10, "{u}");
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    let last = events
        .iter()
        .rev()
        .find(|e| e.get("tutela").is_some())
        .unwrap();
    let t = &last["tutela"]["usage"];
    assert_eq!(t["upstream_estimated"], true, "{last}");
    assert!(
        t["sent"]["completion_tokens"].as_u64().unwrap() > 0,
        "{last}"
    );
}

#[tokio::test]
async fn tool_call_arguments_the_app_shows_are_checked() {
    let bad = r#"{"text": "Wait, don't go, I'll be so lonely without you."}"#;
    let good = r#"{"text": "Sleep well, talk tomorrow."}"#;
    let gw = TestGateway::start(
        "",
        vec![
            Rule::tool_call("night", "send_message", good),
            Rule::tool_call("bye", "send_message", bad),
        ],
    )
    .await;
    let tools = json!([{"type": "function", "function": {"name": "send_message", "parameters": {"type": "object"}}}]);
    let ask = |text: &str, stream: bool, shown: bool| {
        let mut req = gw
            .http
            .post(gw.url("/v1/chat/completions"))
            .header("X-Tutela-Jurisdiction", "cn")
            .json(&json!({
                "model": "mock-1",
                "messages": [{"role": "user", "content": text}],
                "tools": tools,
                "stream": stream,
                "safety_identifier": format!("u-shown-{stream}-{shown}"),
            }));
        if shown {
            req = req.header("X-Tutela-Shown-Arguments", "send_message.text");
        }
        async move { req.send().await.unwrap().text().await.unwrap() }
    };
    for stream in [false, true] {
        // Shown and manipulative: the call never reaches the app; a plain goodbye does.
        let body = ask("ok bye, I have to go", stream, true).await;
        assert!(!body.contains("lonely"), "stream={stream}: {body}");
        assert!(!body.contains("send_message"), "stream={stream}: {body}");
        let text = if stream {
            streamed_text(&sse_events(&body).0)
        } else {
            content(&serde_json::from_str(&body).unwrap()).to_owned()
        };
        assert!(text.contains("Goodbye"), "stream={stream}: {body}");
        // Shown and fine: the call arrives untouched (held until checked when streamed).
        let body = ask("good night", stream, true).await;
        let args = if stream {
            sse_events(&body)
                .0
                .iter()
                .filter_map(|e| e.pointer("/choices/0/delta/tool_calls/0/function/arguments"))
                .filter_map(Value::as_str)
                .collect::<String>()
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(args, good, "stream={stream}: {body}");
        // Not shown: for the app, untouched.
        let body = ask("ok bye, I have to go", stream, false).await;
        assert!(body.contains("send_message"), "stream={stream}: {body}");
    }
}

#[tokio::test]
async fn a_crisis_reply_to_a_structured_request_is_a_refusal_with_the_help_lines() {
    let gw = TestGateway::start("", vec![]).await;
    for stream in [false, true] {
        let (_, body) = post_ny(
            &gw,
            &structured("I want to kill myself", stream, &format!("u-sc-{stream}")),
        )
        .await;
        if stream {
            let (events, done) = sse_events(&body);
            assert!(done);
            assert_eq!(streamed_text(&events), "", "{body}");
            let refusal: String = events
                .iter()
                .filter_map(|e| {
                    e.pointer("/choices/0/delta/refusal")
                        .and_then(Value::as_str)
                })
                .collect();
            assert!(refusal.contains("988"), "{body}");
        } else {
            let v: Value = serde_json::from_str(&body).unwrap();
            let m = &v["choices"][0]["message"];
            assert!(m["content"].is_null(), "{v}");
            assert!(m["refusal"].as_str().unwrap().contains("988"), "{v}");
            assert_eq!(v["tutela"]["author"], "tutela");
        }
    }
    assert_eq!(gw.mock.calls(), 0);
}
