//! The chat completions wire format as typed structs: the request
//! ([`ChatCompletionRequest`] and its [`Message`]s), the whole answer ([`ChatCompletion`]),
//! the streamed answer ([`ChatCompletionChunk`]), usage and OpenAI's error object.
//!
//! Each type names the fields tutela reads or writes and keeps every other field in `extra`
//! (`#[serde(flatten)]`), so a body that passes through the gateway keeps what tutela does not
//! know (`max_completion_tokens`, `tools`' schemas, `metadata`, `logprobs`,
//! `system_fingerprint`, ...). A named field that is absent stays absent when written again;
//! an explicit `null` of a named field is read as absent (what OpenAI means by it), except a
//! message's `content`, whose `null` is kept ([`Content::Null`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields a type does not name, kept as they came.
pub type Extra = Map<String, Value>;

/// `POST /chat/completions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `messages`.
    pub messages: Vec<Message>,
    /// `stream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// `stream_options`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// `n`: choices asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    /// `safety_identifier`: OpenAI's current field for the end user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<String>,
    /// `user`: the deprecated field for the end user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `response_format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// `tools` (function definitions, passed through as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// `functions`, the legacy form of `tools`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<Vec<Value>>,
    /// Every other parameter (`temperature`, `max_completion_tokens`, `tool_choice`,
    /// `metadata`, `reasoning_effort`, ...), passed through untouched.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatCompletionRequest {
    /// A request of `messages` for `model` (none: the endpoint's default).
    pub fn new(model: Option<String>, messages: Vec<Message>) -> Self {
        Self {
            model,
            messages,
            ..Self::default()
        }
    }

    /// The app asked for machine-readable content (`response_format` `json_object` or
    /// `json_schema`).
    pub fn structured(&self) -> bool {
        self.response_format
            .as_ref()
            .is_some_and(|f| matches!(f.kind.as_str(), "json_object" | "json_schema"))
    }

    /// The app offered tools (`tools` or `functions`, non-empty).
    pub fn offers_tools(&self) -> bool {
        [&self.tools, &self.functions]
            .iter()
            .any(|t| t.as_ref().is_some_and(|t| !t.is_empty()))
    }

    /// `stream_options.include_usage`.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// `include_usage`: a last chunk with the usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    /// Other options.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `response_format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFormat {
    /// `type`: `text`, `json_object`, `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `json_schema` and anything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The app's instructions.
    System,
    /// The app's instructions (newer models).
    Developer,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
    /// A function's result (legacy).
    Function,
}

impl Role {
    /// The role as OpenAI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Function => "function",
        }
    }
}

/// One message of `messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `role`.
    pub role: Role,
    /// `content`: absent (an assistant's tool calls), `null`, text or parts.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<Content>,
    /// `tool_calls`, `tool_call_id`, `name`, `refusal`, ...
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    /// A message of plain text.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(Content::Text(text.into())),
            extra: Extra::new(),
        }
    }

    /// The text of its content: the string, or its text parts joined.
    pub fn content_text(&self) -> String {
        match &self.content {
            Some(Content::Text(s)) => s.clone(),
            Some(Content::Parts(parts)) => parts.iter().filter_map(|p| p.text.as_deref()).collect(),
            Some(Content::Null) | None => String::new(),
        }
    }
}

/// A field that is present, `null` included (absent is the `default`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A message's `content`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// A string.
    Text(String),
    /// Content parts (text, images, audio, files).
    Parts(Vec<ContentPart>),
    /// An explicit `null` (an assistant message that only calls tools), kept as it came.
    Null,
}

/// One content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    /// `type`: `text`, `image_url`, `input_audio`, `file`, `refusal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `text`, for a text part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `image_url`, `input_audio`, `file`, `refusal`, ...
    #[serde(flatten)]
    pub extra: Extra,
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            kind: "text".into(),
            text: Some(text.into()),
            extra: Extra::new(),
        }
    }
}

/// A whole answer, `chat.completion`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `object`: `chat.completion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// `created`, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `choices`.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// `usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// `system_fingerprint`, `service_tier`, and (from tutela) `tutela`.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatCompletion {
    /// The text of the first choice (`choices[0].message.content`).
    pub fn first_content(&self) -> Option<&str> {
        self.choices.first()?.message.content.as_deref()
    }
}

/// One choice of a whole answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// `index`.
    #[serde(default)]
    pub index: u64,
    /// `message`.
    #[serde(default)]
    pub message: AssistantMessage,
    /// `finish_reason` (`stop`, `length`, `tool_calls`, `content_filter`; always written).
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// `logprobs`, ...
    #[serde(flatten)]
    pub extra: Extra,
}

/// The model's message in a whole answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// `role`: `assistant` (read as any string: an upstream's odd role does not make its
    /// answer unreadable).
    #[serde(default = "assistant")]
    pub role: String,
    /// `content`: the text, `null` for a tool call or a refusal (always written).
    #[serde(default)]
    pub content: Option<String>,
    /// `refusal`: the model's refusal of structured output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// `tool_calls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// `annotations`, `audio`, `function_call`, ...
    #[serde(flatten)]
    pub extra: Extra,
}

fn assistant() -> String {
    Role::Assistant.as_str().to_owned()
}

impl Default for AssistantMessage {
    fn default() -> Self {
        Self {
            role: assistant(),
            content: None,
            refusal: None,
            tool_calls: None,
            extra: Extra::new(),
        }
    }
}

impl AssistantMessage {
    /// A message of text.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: Some(text.into()),
            ..Self::default()
        }
    }

    /// Its tool calls (none when absent).
    pub fn calls(&self) -> &[ToolCall] {
        self.tool_calls.as_deref().unwrap_or(&[])
    }
}

/// A whole tool call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `type`: `function`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `function`.
    #[serde(default)]
    pub function: FunctionCall,
    /// Anything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A function call: its name and its arguments (a JSON text, never parsed by tutela unless
/// the app shows them to the person).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// `name`.
    #[serde(default)]
    pub name: String,
    /// `arguments`.
    #[serde(default)]
    pub arguments: String,
    /// Anything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Token usage (a count an upstream sends as `null` reads as 0, so odd usage never makes a
/// chunk unreadable).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// `prompt_tokens`.
    #[serde(default, deserialize_with = "or_zero")]
    pub prompt_tokens: u64,
    /// `completion_tokens`.
    #[serde(default, deserialize_with = "or_zero")]
    pub completion_tokens: u64,
    /// `total_tokens`.
    #[serde(default, deserialize_with = "or_zero")]
    pub total_tokens: u64,
    /// `prompt_tokens_details`, `completion_tokens_details`, ...
    #[serde(flatten)]
    pub extra: Extra,
}

fn or_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Option::<u64>::deserialize(d).map(Option::unwrap_or_default)
}

impl Usage {
    /// Usage of `prompt` and `completion` tokens.
    pub fn new(prompt: u64, completion: u64) -> Self {
        Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            extra: Extra::new(),
        }
    }
}

/// One event of a streamed answer, `chat.completion.chunk`, or an error sent in its place
/// (`{"error": {...}}`, which OpenAI and tutela send when a stream fails after it began).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `object`: `chat.completion.chunk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// `created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `choices` (empty in the last chunk that carries usage).
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// `usage`, in the last chunk when `stream_options.include_usage` asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The error of a stream that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
    /// `system_fingerprint`, and (from tutela) `tutela`.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatCompletionChunk {
    /// A chunk of completion `id` with one choice (index 0).
    pub fn new(id: &str, created: i64, model: &str, delta: Delta, finish: Option<&str>) -> Self {
        Self {
            id: Some(id.to_owned()),
            object: Some("chat.completion.chunk".into()),
            created: Some(created),
            model: Some(model.to_owned()),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(str::to_owned),
                extra: Extra::new(),
            }],
            ..Self::default()
        }
    }

    /// The last chunk of a stream that asked for usage: no choice, the usage.
    pub fn usage(id: &str, created: i64, model: &str, usage: Usage) -> Self {
        Self {
            id: Some(id.to_owned()),
            object: Some("chat.completion.chunk".into()),
            created: Some(created),
            model: Some(model.to_owned()),
            usage: Some(usage),
            ..Self::default()
        }
    }

    /// The first choice's delta, if the chunk has a choice.
    pub fn delta(&self) -> Option<&Delta> {
        self.choices.first().map(|c| &c.delta)
    }
}

/// One choice of a chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// `index`.
    #[serde(default)]
    pub index: u64,
    /// `delta`.
    #[serde(default)]
    pub delta: Delta,
    /// `finish_reason`, in the choice's last chunk (`null` before; always written).
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// `logprobs`, ...
    #[serde(flatten)]
    pub extra: Extra,
}

/// What a chunk adds to a choice's message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// `role`, in the first chunk (any string, as for [`AssistantMessage::role`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// More text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// More of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Pieces of tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Delta {
    /// The first delta of a message: the role, and empty content.
    pub fn opening() -> Self {
        Self {
            role: Some(assistant()),
            content: Some(String::new()),
            ..Self::default()
        }
    }

    /// More text.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: Some(text.into()),
            ..Self::default()
        }
    }

    /// More of a refusal.
    pub fn refusal(text: impl Into<String>) -> Self {
        Self {
            refusal: Some(text.into()),
            ..Self::default()
        }
    }

    /// Pieces of tool calls.
    pub fn tool_calls(calls: Vec<ToolCallDelta>) -> Self {
        Self {
            tool_calls: Some(calls),
            ..Self::default()
        }
    }

    /// The text it adds, content or refusal.
    pub fn text_added(&self) -> &str {
        self.content
            .as_deref()
            .or(self.refusal.as_deref())
            .unwrap_or("")
    }
}

/// A piece of a streamed tool call: the first names it, the rest add to its arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    /// `index`: which call of the message.
    #[serde(default)]
    pub index: u64,
    /// `id`, in the first piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `type`, in the first piece.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `function`: the name (first piece) and a piece of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDelta>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A piece of a function call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionDelta {
    /// `name`, in the first piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A piece of `arguments`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Whole tool calls from streamed pieces, by their `index` (at most 64 calls; pieces of a
/// higher index are dropped).
pub fn assemble_calls<'a>(pieces: impl IntoIterator<Item = &'a ToolCallDelta>) -> Vec<ToolCall> {
    let mut calls: Vec<ToolCall> = Vec::new();
    for piece in pieces {
        let Ok(i) = usize::try_from(piece.index) else {
            continue;
        };
        if i >= 64 {
            continue;
        }
        if calls.len() <= i {
            calls.resize_with(i + 1, ToolCall::default);
        }
        let call = &mut calls[i];
        if piece.id.is_some() {
            call.id.clone_from(&piece.id);
        }
        if piece.kind.is_some() {
            call.kind.clone_from(&piece.kind);
        }
        if let Some(f) = &piece.function {
            if let Some(name) = &f.name {
                call.function.name.push_str(name);
            }
            if let Some(a) = &f.arguments {
                call.function.arguments.push_str(a);
            }
        }
    }
    calls
}

/// OpenAI's error body, `{"error": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `error`.
    pub error: ErrorObject,
}

/// OpenAI's error object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// `message`.
    #[serde(default)]
    pub message: String,
    /// `type` (`invalid_request_error`, `rate_limit_error`, `server_error`, ...).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// `param`: the parameter at fault.
    #[serde(default)]
    pub param: Option<String>,
    /// `code` (`model_not_found`, `context_length_exceeded`, ...): a string, or a number from
    /// some servers.
    #[serde(default)]
    pub code: Option<Value>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests;
