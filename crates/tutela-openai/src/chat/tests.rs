//! The wire types against the shapes OpenAI and its SDKs send: round trips, unknown fields
//! kept, `null` and absent fields.

use serde_json::{Value, json};

use super::*;

fn round_trip<T: serde::de::DeserializeOwned + Serialize>(v: &Value) -> Value {
    let typed: T = serde_json::from_value(v.clone()).unwrap();
    serde_json::to_value(&typed).unwrap()
}

#[test]
fn a_request_keeps_every_parameter_tutela_does_not_know() {
    // What the Python and Node SDKs send for structured output, tools and reasoning models.
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "be kind"}]},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": "low"}},
            ], "name": "ana"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "max_completion_tokens": 200,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
        "metadata": {"app": "luna", "build": "7"},
        "reasoning_effort": "low",
        "logprobs": true,
        "top_logprobs": 2,
        "seed": 9007199254740993u64,
        "stop": ["\n\n", "END"],
        "temperature": 0.7,
        "stream": true,
        "stream_options": {"include_usage": true, "include_obfuscation": false},
        "safety_identifier": "s-1",
        "user": "u-1",
        "n": 1,
        "x_vendor_field": {"nested": [1, 2.5, null]},
    });
    assert_eq!(round_trip::<ChatCompletionRequest>(&body), body);
    let typed: ChatCompletionRequest = serde_json::from_value(body).unwrap();
    assert!(typed.structured());
    assert!(typed.offers_tools());
    assert!(typed.include_usage());
    assert_eq!(typed.extra["max_completion_tokens"], 200);
    assert_eq!(typed.extra["seed"], json!(9007199254740993u64));
    assert_eq!(typed.messages[1].content_text(), "what is this?");
    assert_eq!(typed.messages[2].content, Some(Content::Null));
    assert_eq!(typed.messages[3].role, Role::Tool);
}

#[test]
fn absent_stays_absent_and_a_message_null_stays_null() {
    let body = json!({"messages": [
        {"role": "assistant", "tool_calls": []},
        {"role": "assistant", "content": null},
        {"role": "user", "content": "hi"},
    ]});
    assert_eq!(round_trip::<ChatCompletionRequest>(&body), body);
    // A named top-level parameter's `null` means "not given", and is written so.
    let with_nulls = json!({"messages": [{"role": "user", "content": "hi"}], "user": null, "stream": null, "seed": null});
    assert_eq!(
        round_trip::<ChatCompletionRequest>(&with_nulls),
        json!({"messages": [{"role": "user", "content": "hi"}], "seed": null})
    );
}

#[test]
fn a_whole_answer_keeps_what_tutela_does_not_read() {
    let reply = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_733_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_1",
        "service_tier": "default",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "annotations": []},
            "logprobs": {"content": [{"token": "Hello", "logprob": -0.1, "bytes": [72], "top_logprobs": []}]},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                  "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
    });
    assert_eq!(round_trip::<ChatCompletion>(&reply), reply);
    let typed: ChatCompletion = serde_json::from_value(reply).unwrap();
    assert_eq!(typed.first_content(), Some("Hello!"));
    assert_eq!(typed.usage.as_ref().map(|u| u.total_tokens), Some(11));
}

#[test]
fn a_tool_call_answer_keeps_its_null_content_and_its_arguments() {
    let reply = json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "send_message", "arguments": "{\"text\": \"hi\"}"}}],
        }}],
    });
    assert_eq!(round_trip::<ChatCompletion>(&reply), reply);
    let typed: ChatCompletion = serde_json::from_value(reply).unwrap();
    let calls = typed.choices[0].message.calls();
    assert_eq!(calls[0].function.name, "send_message");
    assert_eq!(calls[0].function.arguments, "{\"text\": \"hi\"}");
    // A refusal of structured output.
    let refusal = json!({"choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": null, "refusal": "I can't."}}]});
    assert_eq!(round_trip::<ChatCompletion>(&refusal), refusal);
    // An upstream's odd role is read, and kept.
    let odd = json!({"choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "model", "content": "hi"}}]});
    assert_eq!(round_trip::<ChatCompletion>(&odd), odd);
    // `n = 2`.
    let two = json!({"choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "a"}},
        {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": "b"}},
    ]});
    assert_eq!(round_trip::<ChatCompletion>(&two), two);
}

#[test]
fn stream_chunks_read_text_tool_calls_usage_and_errors() {
    let first = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "system_fingerprint": "fp", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]});
    let c: ChatCompletionChunk = serde_json::from_value(first).unwrap();
    assert_eq!(c.delta().and_then(|d| d.role.as_deref()), Some("assistant"));
    assert_eq!(c.extra["system_fingerprint"], "fp");
    let text = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]});
    assert_eq!(round_trip::<ChatCompletionChunk>(&text), text);
    let tool = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}, "finish_reason": null}]});
    assert_eq!(round_trip::<ChatCompletionChunk>(&tool), tool);
    let usage = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}});
    assert_eq!(round_trip::<ChatCompletionChunk>(&usage), usage);
    let odd_usage: ChatCompletionChunk = serde_json::from_value(json!({"choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": null}}))
    .unwrap();
    assert_eq!(
        odd_usage
            .usage
            .map(|u| (u.prompt_tokens, u.completion_tokens, u.total_tokens)),
        Some((3, 0, 0))
    );
    let last = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    let c: ChatCompletionChunk = serde_json::from_value(last).unwrap();
    assert_eq!(c.choices[0].finish_reason.as_deref(), Some("stop"));
    let error = json!({"error": {"message": "overloaded", "type": "server_error", "param": null, "code": "x"}});
    let c: ChatCompletionChunk = serde_json::from_value(error).unwrap();
    assert!(c.choices.is_empty());
    assert_eq!(c.error.map(|e| e.message).as_deref(), Some("overloaded"));
}

#[test]
fn streamed_tool_calls_are_assembled() {
    let pieces: Vec<Vec<ToolCallDelta>> = serde_json::from_value(json!([
        [{"index": 0, "id": "c1", "type": "function", "function": {"name": "send_message", "arguments": ""}}],
        [{"index": 0, "function": {"arguments": "{\"text\": \"hi"}}],
        [{"index": 1, "id": "c2", "function": {"name": "x", "arguments": "{}"}}],
        [{"index": 0, "function": {"arguments": " there\"}"}}],
        [{"index": 64, "function": {"arguments": "dropped"}}],
    ]))
    .unwrap();
    let calls = assemble_calls(pieces.iter().flatten());
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].function.name, "send_message");
    assert_eq!(calls[0].function.arguments, "{\"text\": \"hi there\"}");
    assert_eq!(calls[0].kind.as_deref(), Some("function"));
    assert_eq!(calls[1].id.as_deref(), Some("c2"));
}

#[test]
fn error_bodies_read_string_and_numeric_codes() {
    let e: ErrorBody = serde_json::from_value(json!({"error": {"message": "no such model", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}})).unwrap();
    assert_eq!(e.error.param.as_deref(), Some("model"));
    assert_eq!(e.error.code, Some(json!("model_not_found")));
    let e: ErrorBody =
        serde_json::from_value(json!({"error": {"message": "busy", "code": 503}})).unwrap();
    assert_eq!(e.error.code, Some(json!(503)));
}
