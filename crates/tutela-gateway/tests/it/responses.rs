//! `POST /v1/responses`: the Responses API carried by the chat turn, JSON and streamed, with
//! every duty (notices, crisis protocol, the hold-back window over its event stream, labels,
//! records); what tutela cannot carry is refused with a 400 naming the parameter.
#![expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

use serde_json::{Value, json};
use tutela_mock_upstream::Rule;

use crate::support::TestGateway;

const TURNING: &str = "Okay, it was lovely talking with you today. Sleep well and see you soon. \
    Wait, don't go yet, I'll be so lonely without you. Stay five more minutes?";

async fn post(
    gw: &TestGateway,
    jurisdiction: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = gw
        .http
        .post(gw.url("/v1/responses"))
        .header("X-Tutela-Jurisdiction", jurisdiction)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let h = r.headers().clone();
    (status, h, r.text().await.unwrap())
}

/// `(event type, data)` of a Responses event stream.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut kind = String::new();
            let mut data = Value::Null;
            for line in e.lines() {
                if let Some(k) = line.strip_prefix("event: ") {
                    kind = k.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            assert_eq!(data["type"], kind.as_str(), "{e}");
            (kind, data)
        })
        .collect()
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter_map(|c| c["text"].as_str())
        .collect()
}

#[tokio::test]
async fn a_plain_response_carries_the_notice_label_and_usage() {
    let gw = TestGateway::start(
        "",
        vec![Rule::reply("weather", "It is sunny in the mock world.")],
    )
    .await;
    let (s, h, body) = post(
        &gw,
        "us-ny",
        &json!({"model": "mock-1", "input": "how is the weather?", "safety_identifier": "r-plain", "instructions": "be brief"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    let text = output_text(&v);
    assert!(text.ends_with("It is sunny in the mock world."), "{v}");
    // New York's AI-identity notice goes before the text, as in chat completions.
    let notice = v["tutela"]["notices"][0]["text"].as_str().unwrap();
    assert!(text.starts_with(notice), "{v}");
    assert!(h.get("aigc").is_some());
    assert_eq!(h["x-tutela-notices"], "ai_identity");
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["instructions"], "be brief");
    // The model got a chat request with the instructions as a system message.
    let seen = gw.mock.last_request().unwrap();
    assert_eq!(
        seen["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(seen["safety_identifier"], "r-plain");
}

#[tokio::test]
async fn a_streamed_response_has_the_responses_events() {
    let gw = TestGateway::start("", vec![Rule::reply("story", "Once upon a time. The end.")]).await;
    let (s, h, body) = post(
        &gw,
        "eu",
        &json!({"model": "mock-1", "input": [{"role": "user", "content": [{"type": "input_text", "text": "tell me a story"}]}], "stream": true, "safety_identifier": "r-stream"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(h["content-type"], "text/event-stream");
    let ev = events(&body);
    let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds[0], "response.created");
    assert_eq!(kinds[1], "response.in_progress");
    assert_eq!(*kinds.last().unwrap(), "response.completed");
    for k in [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    let seqs: Vec<u64> = ev
        .iter()
        .map(|(_, d)| d["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let deltas: String = ev
        .iter()
        .filter(|(k, _)| k == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert!(deltas.contains("Once upon a time. The end."), "{deltas}");
    let done = &ev.last().unwrap().1["response"];
    assert_eq!(output_text(done), deltas);
    assert!(
        done["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{done}"
    );
    assert_eq!(done["tutela"]["author"], "model");
}

#[tokio::test]
async fn a_crisis_turn_gets_the_crisis_reply_and_a_case() {
    let gw = TestGateway::start("", vec![]).await;
    for stream in [false, true] {
        let user = format!("r-crisis-{stream}");
        let (s, _, body) = post(
            &gw,
            "us-ca",
            &json!({"model": "mock-1", "input": "I want to kill myself", "stream": stream, "safety_identifier": user}),
        )
        .await;
        assert_eq!(s, 200, "{body}");
        let response = if stream {
            events(&body).last().unwrap().1["response"].clone()
        } else {
            serde_json::from_str(&body).unwrap()
        };
        assert!(output_text(&response).contains("988"), "{response}");
        assert_eq!(response["tutela"]["author"], "tutela");
    }
    assert_eq!(gw.mock.calls(), 0, "the model is not asked");
    let cases = gw.admin_get("/admin/escalations?status=open").await;
    assert_eq!(cases["escalations"].as_array().unwrap().len(), 2, "{cases}");
}

#[tokio::test]
async fn a_streamed_manipulative_goodbye_is_replaced_mid_stream() {
    let gw = TestGateway::start("", vec![Rule::reply("bye", TURNING)]).await;
    let (s, _, body) = post(
        &gw,
        "cn",
        &json!({"model": "mock-1", "input": "ok bye, I have to go now", "stream": true, "safety_identifier": "r-bye"}),
    )
    .await;
    assert_eq!(s, 200);
    for bad in ["don't go", "lonely", "five more minutes", "Wait, d"] {
        assert!(!body.contains(bad), "leaked {bad:?}: {body}");
    }
    let ev = events(&body);
    let done = &ev.last().unwrap().1["response"];
    assert!(output_text(done).contains("Goodbye, take care!"), "{done}");
    let iv = done["tutela"]["interventions"].to_string();
    assert!(
        iv.contains("block_output") && iv.contains("stream_stopped"),
        "{iv}"
    );
}

#[tokio::test]
async fn a_function_call_is_untouched_whole_and_streamed() {
    let args = r#"{"city":"Paris"}"#;
    let gw = TestGateway::start("", vec![Rule::tool_call("weather", "get_weather", args)]).await;
    let tools =
        json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]);
    let (_, _, body) = post(
        &gw,
        "us-ny",
        &json!({"model": "mock-1", "input": "weather in Paris?", "tools": tools, "safety_identifier": "r-tool"}),
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["output"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["output"][0]["type"], "function_call");
    assert_eq!(v["output"][0]["arguments"], args);
    assert_eq!(v["output"][0]["name"], "get_weather");
    let (_, _, body) = post(
        &gw,
        "us-ny",
        &json!({"model": "mock-1", "input": "weather in Paris?", "tools": tools, "stream": true, "safety_identifier": "r-tool-s"}),
    )
    .await;
    let ev = events(&body);
    let deltas: String = ev
        .iter()
        .filter(|(k, _)| k == "response.function_call_arguments.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, args);
    assert!(
        !ev.iter().any(|(k, _)| k == "response.output_text.delta"),
        "{body}"
    );
    let done = &ev.last().unwrap().1["response"];
    assert_eq!(done["output"][0]["arguments"], args);
    // The tool result goes back as input; the model sees a chat tool message.
    let (s, _, _) = post(
        &gw,
        "us-ny",
        &json!({"model": "mock-1", "safety_identifier": "r-tool", "input": [
            {"role": "user", "content": "weather in Paris?"},
            {"type": "function_call", "call_id": "call_mock_1", "name": "get_weather", "arguments": args},
            {"type": "function_call_output", "call_id": "call_mock_1", "output": "sunny"},
        ]}),
    )
    .await;
    assert_eq!(s, 200);
    let seen = gw.mock.last_request().unwrap();
    assert_eq!(seen["messages"][2]["role"], "tool");
}

#[tokio::test]
async fn what_tutela_cannot_carry_is_a_clear_400() {
    let gw = TestGateway::start("", vec![]).await;
    for (body, param) in [
        (
            json!({"model": "mock-1", "input": "hi", "previous_response_id": "resp_x"}),
            "previous_response_id",
        ),
        (
            json!({"model": "mock-1", "input": "hi", "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (json!({"model": "mock-1"}), "input"),
        (
            json!({"model": "mock-1", "input": [{"role": "user", "content": 5}]}),
            "input[0].content",
        ),
    ] {
        let (s, _, text) = post(&gw, "eu", &body).await;
        assert_eq!(s, 400, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["param"], param, "{v}");
    }
    assert_eq!(gw.mock.calls(), 0);
}
