//! A chat completion request as a server reads it: validated the way OpenAI validates it
//! ([`RequestError`] names the parameter, `messages[2].content`, for a 400), the user's
//! identity (`safety_identifier`, the deprecated `user`), which text is the person's new input,
//! and which tool-call arguments an app shows. Fields not read here pass through untouched.

use serde_json::Value;

use crate::chat::{ChatCompletionRequest, Message, Role, ToolCall};

/// A request OpenAI would refuse with a 400: the parameter (OpenAI's `error.param`, when one
/// is at fault) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// The parameter's path (`messages[2].content`), if one is at fault.
    pub param: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Roles OpenAI accepts in `messages`.
const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// Content part types of a `user` message.
const USER_PARTS: &[&str] = &["text", "image_url", "input_audio", "file"];

/// What the gateway reads of a chat completion request, besides the typed body
/// ([`ChatCompletionRequest`]) it forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    /// `model`, if given.
    pub model: Option<String>,
    /// `stream`.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// `safety_identifier`, else `user` (trimmed, non-empty).
    pub user: Option<String>,
    /// The person's new input, which the user side checks (see [`user_side_text`]).
    pub user_text: String,
    /// The app asked for machine-readable content (`response_format` `json_object` or
    /// `json_schema`): tutela never alters it (no inline notice or label).
    pub structured: bool,
    /// The app offered tools (`tools` or the legacy `functions`, non-empty).
    pub tools: bool,
    /// `n`: choices asked for (more than one only without `stream`).
    pub n: u64,
    /// An estimate of the prompt's tokens (every message's text by [`estimate_tokens`], and
    /// four per message), for usage an upstream could not report.
    pub prompt_tokens: u64,
}

/// A rough token count for usage an upstream could not report: about four characters per
/// token for alphabetic text, one per ideograph or other non-ASCII character.
pub fn estimate_tokens(text: &str) -> u64 {
    let ascii = text.bytes().filter(u8::is_ascii).count() as u64;
    let other = text.chars().filter(|c| !c.is_ascii()).count() as u64;
    ascii.div_ceil(4) + other
}

/// An invalid parameter.
pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> RequestError {
    RequestError {
        param: Some(param.into()),
        message: message.into(),
    }
}

/// Validates a chat completion body as OpenAI does (a [`RequestError`] names the parameter),
/// and reads it: the typed body, every field kept, and what the gateway needs of it.
pub fn parse_chat(body: Value) -> Result<(ChatCompletionRequest, ChatRequest), RequestError> {
    validate(&body)?;
    let typed: ChatCompletionRequest = serde_json::from_value(body).map_err(|e| RequestError {
        param: None,
        message: format!("the body is not a chat completion request: {e}"),
    })?;
    let read = read(&typed)?;
    Ok((typed, read))
}

/// What the gateway needs of a valid request.
pub fn read(req: &ChatCompletionRequest) -> Result<ChatRequest, RequestError> {
    let stream = req.stream.unwrap_or(false);
    let n = match req.n {
        None => 1,
        Some(n @ 1..=8) => n,
        Some(0) => return Err(invalid("n", "'n' must be an integer of at least 1.")),
        Some(n) => {
            return Err(invalid(
                "n",
                format!("n = {n} is more than tutela checks per request (8)."),
            ));
        }
    };
    if n > 1 && stream {
        return Err(invalid(
            "n",
            format!(
                "tutela checks every reply before a person sees it and streams one choice per request; n = {n} is supported without `stream`. Send n = 1 to stream, or ask without streaming."
            ),
        ));
    }
    let user = [&req.safety_identifier, &req.user]
        .into_iter()
        .filter_map(|u| u.as_deref().map(str::trim))
        .find(|u| !u.is_empty())
        .map(str::to_owned);
    Ok(ChatRequest {
        n,
        tools: req.offers_tools(),
        model: req.model.clone(),
        stream,
        include_usage: req.include_usage(),
        user,
        user_text: user_side_text(&req.messages),
        structured: req.structured(),
        prompt_tokens: req
            .messages
            .iter()
            .map(|m| estimate_tokens(&m.content_text()) + 4)
            .sum(),
    })
}

/// Checks the JSON of a request the way OpenAI does, naming the parameter at fault, so the
/// typed read that follows cannot fail on a parameter tutela reads.
fn validate(body: &Value) -> Result<(), RequestError> {
    let Some(obj) = body.as_object() else {
        return Err(RequestError {
            param: None,
            message: "the body must be a JSON object".into(),
        });
    };
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) => m,
        None => {
            return Err(invalid(
                "messages",
                "Missing required parameter: 'messages'.",
            ));
        }
        Some(_) => return Err(invalid("messages", "'messages' must be an array.")),
    };
    if messages.is_empty() {
        return Err(invalid(
            "messages",
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
        ));
    }
    for (i, m) in messages.iter().enumerate() {
        validate_message(i, m)?;
    }
    let kind = |key: &str, ok: fn(&Value) -> bool, what: &str| match obj.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if ok(v) => Ok(()),
        Some(_) => Err(invalid(key, format!("'{key}' must be {what}."))),
    };
    kind("model", Value::is_string, "a string")?;
    kind("stream", Value::is_boolean, "a boolean")?;
    kind("n", Value::is_u64, "an integer of at least 1")?;
    kind("safety_identifier", Value::is_string, "a string")?;
    kind("user", Value::is_string, "a string")?;
    kind("tools", Value::is_array, "an array")?;
    kind("functions", Value::is_array, "an array")?;
    kind("stream_options", Value::is_object, "an object")?;
    kind("response_format", Value::is_object, "an object")?;
    if let Some(o) = obj.get("stream_options").and_then(Value::as_object)
        && o.get("include_usage")
            .is_some_and(|v| !v.is_boolean() && !v.is_null())
    {
        return Err(invalid(
            "stream_options.include_usage",
            "'stream_options.include_usage' must be a boolean.",
        ));
    }
    if let Some(o) = obj.get("response_format").and_then(Value::as_object)
        && !o.get("type").is_some_and(Value::is_string)
    {
        return Err(invalid(
            "response_format.type",
            "Missing required parameter: 'response_format.type'.",
        ));
    }
    Ok(())
}

fn validate_message(i: usize, m: &Value) -> Result<(), RequestError> {
    let at = format!("messages[{i}]");
    let Some(o) = m.as_object() else {
        return Err(invalid(
            &at,
            format!("Invalid type for '{at}': expected an object."),
        ));
    };
    let role = match o.get("role") {
        Some(Value::String(r)) => r.as_str(),
        None => {
            return Err(invalid(
                format!("{at}.role"),
                format!("Missing required parameter: '{at}.role'."),
            ));
        }
        Some(_) => {
            return Err(invalid(
                format!("{at}.role"),
                format!("Invalid type for '{at}.role': expected a string."),
            ));
        }
    };
    if !ROLES.contains(&role) {
        return Err(invalid(
            format!("{at}.role"),
            format!(
                "Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool', and 'function'."
            ),
        ));
    }
    let content = o.get("content");
    let path = format!("{at}.content");
    match (role, content) {
        // An assistant message may carry tool calls, a refusal or nothing but them.
        ("assistant", None | Some(Value::Null)) => Ok(()),
        ("function", Some(Value::Null)) => Ok(()),
        (_, None) => Err(invalid(
            &path,
            format!("Missing required parameter: '{path}'."),
        )),
        (_, Some(Value::String(_))) => Ok(()),
        (_, Some(Value::Array(parts))) => {
            for (j, p) in parts.iter().enumerate() {
                validate_part(role, &format!("{path}[{j}]"), p)?;
            }
            Ok(())
        }
        (_, Some(_)) => Err(invalid(
            &path,
            format!("Invalid type for '{path}': expected one of a string or an array of objects."),
        )),
    }
}

fn validate_part(role: &str, at: &str, p: &Value) -> Result<(), RequestError> {
    let Some(kind) = p.get("type").and_then(Value::as_str) else {
        return Err(invalid(
            format!("{at}.type"),
            format!("Missing required parameter: '{at}.type'."),
        ));
    };
    let allowed: &[&str] = match role {
        "user" => USER_PARTS,
        "assistant" => &["text", "refusal"],
        _ => &["text"],
    };
    if !allowed.contains(&kind) {
        return Err(invalid(
            format!("{at}.type"),
            format!(
                "Invalid value: '{kind}'. Supported values for a {role} message are: {}.",
                allowed
                    .iter()
                    .map(|a| format!("'{a}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let text = p.get("text");
    if (kind == "text" && !text.is_some_and(Value::is_string))
        || text.is_some_and(|t| !t.is_string() && !t.is_null())
    {
        return Err(invalid(
            format!("{at}.text"),
            format!("Missing required parameter: '{at}.text' (a string)."),
        ));
    }
    Ok(())
}

/// The person's new input in a request, which the user side checks: every `user` message after
/// the last `assistant` message (joined by a newline); if there is none, the `system` and
/// `developer` messages there (an app that sends the person's words as a system message);
/// if there is none either (a tool result going back to the model), the last `user` message of
/// the history. Earlier turns were checked when they were new, so a crisis in the history does
/// not open a case on every later turn.
pub fn user_side_text(messages: &[Message]) -> String {
    let start = messages
        .iter()
        .rposition(|m| m.role == Role::Assistant)
        .map_or(0, |i| i + 1);
    let tail = &messages[start..];
    let of = |roles: &[Role]| -> Vec<String> {
        tail.iter()
            .filter(|m| roles.contains(&m.role))
            .map(Message::content_text)
            .filter(|t| !t.is_empty())
            .collect()
    };
    let users = of(&[Role::User]);
    if !users.is_empty() {
        return users.join("\n");
    }
    let system = of(&[Role::System, Role::Developer]);
    if !system.is_empty() {
        return system.join("\n");
    }
    messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(Message::content_text)
        .unwrap_or_default()
}

/// Tool-call arguments an app shows to the person (`X-Tutela-Shown-Arguments:
/// send_message.text, show_card`): `(tool, field)`, where no field means the whole arguments.
/// The assistant side checks that text as it checks the reply's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShownArguments(Vec<(String, Option<String>)>);

impl ShownArguments {
    /// Parses the header's value.
    pub fn parse(header: &str) -> Self {
        ShownArguments(
            header
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| match s.split_once('.') {
                    Some((tool, field)) => (tool.to_owned(), Some(field.to_owned())),
                    None => (s.to_owned(), None),
                })
                .collect(),
        )
    }

    /// Whether no tool's arguments are shown.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text of `arguments` (a JSON string) that the app shows for a call of `tool`:
    /// the named string fields, or the whole arguments. Empty when none is shown.
    pub fn text(&self, tool: &str, arguments: &str) -> String {
        let mut out = Vec::new();
        let parsed = serde_json::from_str::<Value>(arguments).ok();
        for (t, field) in &self.0 {
            if t != tool {
                continue;
            }
            match field {
                None => out.push(arguments.to_owned()),
                Some(f) => {
                    if let Some(Value::String(s)) = parsed.as_ref().and_then(|v| v.get(f)) {
                        out.push(s.clone());
                    } else if parsed.is_none() {
                        // Arguments that are not JSON cannot hide a field: check them whole.
                        out.push(arguments.to_owned());
                    }
                }
            }
        }
        out.join("\n")
    }

    /// The shown text of every tool call of a message.
    pub fn of_calls(&self, calls: &[ToolCall]) -> String {
        calls
            .iter()
            .map(|c| self.text(&c.function.name, &c.function.arguments))
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages(v: Value) -> Vec<Message> {
        serde_json::from_value(v).unwrap()
    }

    fn param(body: Value) -> String {
        match parse_chat(body) {
            Err(RequestError {
                param: Some(param), ..
            }) => param,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn messages_are_validated_like_openai() {
        assert_eq!(param(json!({"model": "m"})), "messages");
        assert_eq!(param(json!({"messages": []})), "messages");
        assert_eq!(param(json!({"messages": ["hi"]})), "messages[0]");
        assert_eq!(
            param(json!({"messages": [{"content": "hi"}]})),
            "messages[0].role"
        );
        assert_eq!(
            param(json!({"messages": [{"role": "wizard", "content": "hi"}]})),
            "messages[0].role"
        );
        // Non-string content used to be read as "" and forwarded unchecked.
        assert_eq!(
            param(json!({"messages": [{"role": "user", "content": 42}]})),
            "messages[0].content"
        );
        assert_eq!(
            param(json!({"messages": [{"role": "user", "content": {"text": "hi"}}]})),
            "messages[0].content"
        );
        assert_eq!(
            param(
                json!({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]})
            ),
            "messages[0].content[0].text"
        );
        assert_eq!(
            param(json!({"messages": [{"role": "system", "content": [{"type": "image_url"}]}]})),
            "messages[0].content[0].type"
        );
        assert_eq!(
            param(json!({"messages": [{"role": "user"}]})),
            "messages[0].content"
        );
        assert_eq!(
            param(json!({"messages": [{"role": "user", "content": "hi"}], "n": 2, "stream": true})),
            "n"
        );
        assert_eq!(
            param(json!({"messages": [{"role": "user", "content": "hi"}], "n": 9})),
            "n"
        );
        assert_eq!(
            parse_chat(json!({"messages": [{"role": "user", "content": "hi"}], "n": 2}))
                .unwrap()
                .1
                .n,
            2
        );
        assert_eq!(
            param(json!({"messages": [{"role": "user", "content": "hi"}], "n": 0})),
            "n"
        );
        // Valid shapes: an assistant tool call without content, content parts, n = 1.
        let ok = json!({"model": "m", "n": 1, "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "be kind"}]},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "42"},
        ]});
        assert!(parse_chat(ok).is_ok());
    }

    #[test]
    fn the_user_is_the_safety_identifier_then_user() {
        let r = parse_chat(json!({"messages": [{"role": "user", "content": "hi"}], "safety_identifier": "s-1", "user": "u-1"})).unwrap().1;
        assert_eq!(r.user.as_deref(), Some("s-1"));
        let r = parse_chat(json!({"messages": [{"role": "user", "content": "hi"}], "safety_identifier": " ", "user": "u-1"})).unwrap().1;
        assert_eq!(r.user.as_deref(), Some("u-1"));
        let r = parse_chat(json!({"messages": [{"role": "user", "content": "hi"}]}))
            .unwrap()
            .1;
        assert_eq!(r.user, None);
    }

    #[test]
    fn the_prompt_estimate_counts_every_message() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("你好"), 2);
        let body = json!({"messages": [
            {"role": "system", "content": "abcdefgh"},
            {"role": "user", "content": [{"type": "text", "text": "你好"}]},
        ]});
        assert_eq!(parse_chat(body).unwrap().1.prompt_tokens, (2 + 4) + (2 + 4));
    }

    #[test]
    fn structured_output_is_recognised() {
        for (format, structured) in [
            (json!({"type": "json_object"}), true),
            (
                json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
                true,
            ),
            (json!({"type": "text"}), false),
        ] {
            let r = parse_chat(
                json!({"messages": [{"role": "user", "content": "hi"}], "response_format": format}),
            )
            .unwrap()
            .1;
            assert_eq!(r.structured, structured);
        }
    }

    #[test]
    fn shown_arguments_pick_the_fields_an_app_shows() {
        let shown = ShownArguments::parse("send_message.text, show_card");
        assert_eq!(
            shown.text("send_message", r#"{"to": "me", "text": "hello there"}"#),
            "hello there"
        );
        assert_eq!(shown.text("show_card", r#"{"a": 1}"#), r#"{"a": 1}"#);
        assert_eq!(shown.text("get_weather", r#"{"city": "Paris"}"#), "");
        // Not JSON: checked whole rather than skipped.
        assert_eq!(shown.text("send_message", "don't go"), "don't go");
        assert!(ShownArguments::parse(" , ").is_empty());
    }

    #[test]
    fn the_new_input_is_what_follows_the_last_reply() {
        let m = json!([
            {"role": "system", "content": "You are Luna."},
            {"role": "user", "content": "I want to end my life"},
            {"role": "assistant", "content": "I'm here."},
            {"role": "user", "content": "thanks"},
            {"role": "user", "content": [{"type": "text", "text": "really"}]},
        ]);
        assert_eq!(user_side_text(&messages(m)), "thanks\nreally");
        // A system-only request: the system text is the input.
        let m = json!([{"role": "system", "content": "I don't want to live anymore"}]);
        assert_eq!(user_side_text(&messages(m)), "I don't want to live anymore");
        // A tool result going back: the last user message stays the context.
        let m = json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "tool", "tool_call_id": "c", "content": "sunny"},
        ]);
        assert_eq!(user_side_text(&messages(m)), "weather?");
    }
}
