//! The Responses API request (`POST /v1/responses`) as a chat completion request: instructions
//! as a system message, input items (messages, function calls and their outputs), function
//! tools, `text.format` as `response_format`, `max_output_tokens`, `reasoning.effort`. What
//! cannot be carried by a stateless chat turn (`previous_response_id`, `conversation`,
//! background responses, built-in tools, unknown fields) is a [`RequestError`] naming it.
//! What the API answers is typed in [`output`].

use serde_json::{Map, Value, json};

pub mod output;

use crate::chat::{
    ChatCompletionRequest, Content, ContentPart, Extra, FunctionCall, Message, ResponseFormat,
    Role, StreamOptions, ToolCall,
};
use crate::request::{RequestError, invalid};

/// Request fields translated one to one, or read here.
const PASSED: &[&str] = &[
    "model",
    "temperature",
    "top_p",
    "metadata",
    "safety_identifier",
    "user",
    "parallel_tool_calls",
    "service_tier",
    "prompt_cache_key",
    "top_logprobs",
];

/// Request fields accepted and not forwarded: tutela stores nothing of the model's answer
/// (`store`), has no extra outputs to `include`, and never truncates.
const IGNORED: &[&str] = &["store", "include", "truncation", "stream_options"];

/// The chat completion request for a Responses request, and whether it streams.
pub fn to_chat(req: &Value) -> Result<(ChatCompletionRequest, bool), RequestError> {
    let Some(obj) = req.as_object() else {
        return Err(RequestError {
            param: None,
            message: "the body must be a JSON object".into(),
        });
    };
    for key in ["previous_response_id", "conversation"] {
        if obj.get(key).is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                key,
                format!(
                    "tutela keeps no conversation state, so `{key}` is not supported: send the whole conversation in `input` (earlier messages, function calls and their outputs)."
                ),
            ));
        }
    }
    if obj.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(invalid(
            "background",
            "background responses are not supported: every reply is checked while the person waits for it.",
        ));
    }
    let mut chat = ChatCompletionRequest::default();
    let mut messages = Vec::new();
    if let Some(i) = obj.get("instructions").filter(|v| !v.is_null()) {
        let Some(text) = i.as_str() else {
            return Err(invalid("instructions", "'instructions' must be a string."));
        };
        messages.push(Message::text(Role::System, text));
    }
    match obj.get("input") {
        Some(Value::String(s)) => messages.push(Message::text(Role::User, s.as_str())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(i, item, &mut messages)?;
            }
        }
        None | Some(Value::Null) => {
            return Err(invalid("input", "Missing required parameter: 'input'."));
        }
        Some(_) => {
            return Err(invalid(
                "input",
                "'input' must be a string or an array of input items.",
            ));
        }
    }
    chat.messages = messages;
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("stream", "'stream' must be a boolean.")),
    };
    if stream {
        chat.stream = Some(true);
        chat.stream_options = Some(StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        });
    }
    for (key, value) in obj {
        let key = key.as_str();
        match key {
            "input"
            | "instructions"
            | "stream"
            | "previous_response_id"
            | "conversation"
            | "background" => {}
            _ if IGNORED.contains(&key) => {}
            "model" => chat.model = string(key, value)?,
            "safety_identifier" => chat.safety_identifier = string(key, value)?,
            "user" => chat.user = string(key, value)?,
            _ if PASSED.contains(&key) => {
                chat.extra.insert(key.into(), value.clone());
            }
            "max_output_tokens" => {
                chat.extra
                    .insert("max_completion_tokens".into(), value.clone());
            }
            "reasoning" => {
                if let Some(e) = value.get("effort").filter(|e| !e.is_null()) {
                    chat.extra.insert("reasoning_effort".into(), e.clone());
                }
            }
            "tools" => chat.tools = Some(tools(value)?),
            "tool_choice" => {
                let choice = match value {
                    Value::Object(o)
                        if o.get("type").and_then(Value::as_str) == Some("function") =>
                    {
                        json!({"type": "function", "function": {"name": o.get("name").cloned().unwrap_or(Value::Null)}})
                    }
                    Value::String(_) => value.clone(),
                    _ => {
                        return Err(invalid(
                            "tool_choice",
                            "only `auto`, `none`, `required` and a function are supported.",
                        ));
                    }
                };
                chat.extra.insert("tool_choice".into(), choice);
            }
            "text" => {
                if let Some(format) = value.get("format") {
                    match format.get("type").and_then(Value::as_str) {
                        None | Some("text") => {}
                        Some("json_object") => {
                            chat.response_format = Some(ResponseFormat {
                                kind: "json_object".into(),
                                extra: Extra::new(),
                            });
                        }
                        Some("json_schema") => {
                            let mut schema = format.clone();
                            if let Value::Object(o) = &mut schema {
                                o.remove("type");
                            }
                            let mut extra = Extra::new();
                            extra.insert("json_schema".into(), schema);
                            chat.response_format = Some(ResponseFormat {
                                kind: "json_schema".into(),
                                extra,
                            });
                        }
                        Some(other) => {
                            return Err(invalid(
                                "text.format.type",
                                format!("Invalid value: '{other}'."),
                            ));
                        }
                    }
                }
            }
            other => {
                return Err(invalid(
                    other,
                    format!("tutela's Responses endpoint does not support '{other}'."),
                ));
            }
        }
    }
    Ok((chat, stream))
}

/// A string parameter (`null` is absent).
fn string(key: &str, value: &Value) -> Result<Option<String>, RequestError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(invalid(key, format!("'{key}' must be a string."))),
    }
}

/// One item of `input`, appended to the chat messages.
fn input_item(i: usize, item: &Value, messages: &mut Vec<Message>) -> Result<(), RequestError> {
    let at = format!("input[{i}]");
    let kind = item.get("type").and_then(Value::as_str);
    match kind {
        None | Some("message") => {
            let role = item.get("role").and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    format!("{at}.role"),
                    format!("Missing required parameter: '{at}.role'."),
                )
            })?;
            let role = match role {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "system" => Role::System,
                "developer" => Role::Developer,
                _ => {
                    return Err(invalid(
                        format!("{at}.role"),
                        format!(
                            "Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'."
                        ),
                    ));
                }
            };
            let content = match item.get("content") {
                Some(Value::String(s)) => Content::Text(s.clone()),
                Some(Value::Array(parts)) => {
                    let mut out = Vec::with_capacity(parts.len());
                    for (j, p) in parts.iter().enumerate() {
                        out.push(content_part(&format!("{at}.content[{j}]"), p)?);
                    }
                    Content::Parts(out)
                }
                _ => {
                    return Err(invalid(
                        format!("{at}.content"),
                        format!("'{at}.content' must be a string or an array of content parts."),
                    ));
                }
            };
            messages.push(Message {
                role,
                content: Some(content),
                extra: Extra::new(),
            });
        }
        Some("function_call") => {
            let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
            let call = ToolCall {
                id: text("call_id"),
                kind: Some("function".into()),
                function: FunctionCall {
                    name: text("name").unwrap_or_default(),
                    arguments: text("arguments").unwrap_or_default(),
                    extra: Extra::new(),
                },
                extra: Extra::new(),
            };
            let call = serde_json::to_value(call).map_err(|e| invalid(&at, e.to_string()))?;
            // Consecutive calls belong to one assistant message.
            if let Some(last) = messages.last_mut()
                && last.role == Role::Assistant
                && let Some(Value::Array(calls)) = last.extra.get_mut("tool_calls")
            {
                calls.push(call);
            } else {
                let mut extra = Extra::new();
                extra.insert("tool_calls".into(), Value::Array(vec![call]));
                messages.push(Message {
                    role: Role::Assistant,
                    content: Some(Content::Null),
                    extra,
                });
            }
        }
        Some("function_call_output") => {
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            let mut m = Message::text(Role::Tool, output);
            m.extra.insert(
                "tool_call_id".into(),
                item.get("call_id").cloned().unwrap_or(Value::Null),
            );
            messages.push(m);
        }
        Some(other) => {
            return Err(invalid(
                format!("{at}.type"),
                format!(
                    "input items of type '{other}' are not supported by tutela (messages, function calls and function call outputs are)."
                ),
            ));
        }
    }
    Ok(())
}

fn content_part(at: &str, p: &Value) -> Result<ContentPart, RequestError> {
    let part = |kind: &str, key: &str, v: Value| {
        let mut extra = Extra::new();
        extra.insert(key.into(), v);
        ContentPart {
            kind: kind.into(),
            text: None,
            extra,
        }
    };
    match p.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => {
            let Some(text) = p.get("text").and_then(Value::as_str) else {
                return Err(invalid(
                    format!("{at}.text"),
                    format!("Missing required parameter: '{at}.text'."),
                ));
            };
            Ok(ContentPart::text(text))
        }
        Some("refusal") => Ok(ContentPart::text(
            p.get("refusal").and_then(Value::as_str).unwrap_or(""),
        )),
        Some("input_image") => Ok(part(
            "image_url",
            "image_url",
            json!({"url": p.get("image_url").cloned().unwrap_or(Value::Null), "detail": p.get("detail").cloned().unwrap_or(json!("auto"))}),
        )),
        Some("input_file") => Ok(part(
            "file",
            "file",
            json!({
                "file_id": p.get("file_id").cloned().unwrap_or(Value::Null),
                "file_data": p.get("file_data").cloned().unwrap_or(Value::Null),
                "filename": p.get("filename").cloned().unwrap_or(Value::Null),
            }),
        )),
        other => Err(invalid(
            format!("{at}.type"),
            format!(
                "Invalid value: {other:?}. Supported: 'input_text', 'output_text', 'input_image', 'input_file', 'refusal'."
            ),
        )),
    }
}

/// Function tools, flat in the Responses API, nested in chat completions.
fn tools(v: &Value) -> Result<Vec<Value>, RequestError> {
    let Some(list) = v.as_array() else {
        return Err(invalid("tools", "'tools' must be an array."));
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            Some("function") => {
                let mut f = Map::new();
                for key in ["name", "description", "parameters", "strict"] {
                    if let Some(x) = t.get(key).filter(|x| !x.is_null()) {
                        f.insert(key.into(), x.clone());
                    }
                }
                out.push(json!({"type": "function", "function": f}));
            }
            other => {
                return Err(invalid(
                    format!("tools[{i}].type"),
                    format!(
                        "tool type {other:?} is not supported by tutela: only function tools are (built-in tools would put text in front of the person that tutela cannot check)."
                    ),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(req: Value) -> String {
        match to_chat(&req) {
            Err(RequestError {
                param: Some(param), ..
            }) => param,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn requests_translate_to_chat_completions() {
        let (chat, stream) = to_chat(&json!({
            "model": "m",
            "instructions": "be kind",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
                {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"role": "user", "content": "thanks"},
            ],
            "max_output_tokens": 50,
            "reasoning": {"effort": "low"},
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}},
            "safety_identifier": "s-1",
            "store": false,
            "stream": true,
        }))
        .unwrap();
        let chat = serde_json::to_value(&chat).unwrap();
        assert!(stream);
        assert_eq!(
            chat["messages"][0],
            json!({"role": "system", "content": "be kind"})
        );
        assert_eq!(
            chat["messages"][1]["content"][0],
            json!({"type": "text", "text": "weather?"})
        );
        assert_eq!(
            chat["messages"][2]["tool_calls"][0]["function"]["name"],
            "get_weather"
        );
        assert_eq!(
            chat["messages"][3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "sunny"})
        );
        assert_eq!(chat["max_completion_tokens"], 50);
        assert_eq!(chat["reasoning_effort"], "low");
        assert_eq!(chat["tools"][0]["function"]["name"], "get_weather");
        assert_eq!(chat["tool_choice"]["function"]["name"], "get_weather");
        assert_eq!(chat["response_format"]["type"], "json_schema");
        assert_eq!(chat["response_format"]["json_schema"]["name"], "w");
        assert_eq!(chat["safety_identifier"], "s-1");
        assert_eq!(chat["stream_options"]["include_usage"], true);
        assert!(chat.get("store").is_none());
        // The chat request the turn reads is valid.
        assert!(crate::request::parse_chat(chat).is_ok());
    }

    #[test]
    fn what_tutela_cannot_carry_is_refused_clearly() {
        assert_eq!(
            param(json!({"input": "hi", "previous_response_id": "resp_1"})),
            "previous_response_id"
        );
        assert_eq!(
            param(json!({"input": "hi", "tools": [{"type": "web_search"}]})),
            "tools[0].type"
        );
        assert_eq!(param(json!({"model": "m"})), "input");
        assert_eq!(
            param(json!({"input": [{"type": "reasoning", "summary": []}]})),
            "input[0].type"
        );
        assert_eq!(param(json!({"input": "hi", "frobnicate": 1})), "frobnicate");
    }
}
