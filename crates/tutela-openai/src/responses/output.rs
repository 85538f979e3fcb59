//! What the Responses API answers, typed: the `response` object ([`ResponseObject`]) with its
//! output items (a message of text and refusal parts, function calls) and usage, and the
//! events of a streamed response ([`ResponseEvent`], written with their `sequence_number` by
//! [`Sequenced`]). tutela writes these from the chat turn's answer; the SDKs read them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chat::{Extra, Role, ToolCall, Usage};

/// A `response` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    /// `id` (`resp_...`).
    pub id: String,
    /// `object`: `response`.
    pub object: String,
    /// `created_at`, seconds since the epoch.
    pub created_at: i64,
    /// `status`.
    pub status: Status,
    /// `error`, when it failed.
    pub error: Option<ResponseError>,
    /// `incomplete_details` (tutela never truncates: always `null`).
    pub incomplete_details: Option<Value>,
    /// `model`.
    pub model: Option<String>,
    /// `output`, in order.
    pub output: Vec<OutputItem>,
    /// `usage` (`null` until the response is complete).
    pub usage: Option<ResponseUsage>,
    /// `store`: tutela stores nothing of the model's answer.
    pub store: bool,
    /// `previous_response_id`: tutela keeps no conversation state, always `null`.
    pub previous_response_id: Option<String>,
    /// The request fields a response echoes.
    #[serde(flatten)]
    pub echo: Echo,
    /// `tutela`, and anything else.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ResponseObject {
    /// A response of `id` in `status`, echoing `echo`, with no error.
    pub fn new(id: &str, created_at: i64, model: Option<&str>, status: Status, echo: Echo) -> Self {
        Self {
            id: id.to_owned(),
            object: "response".into(),
            created_at,
            status,
            error: None,
            incomplete_details: None,
            model: model.map(str::to_owned),
            output: Vec::new(),
            usage: None,
            store: false,
            previous_response_id: None,
            echo,
            extra: Extra::new(),
        }
    }
}

/// A response's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being written.
    InProgress,
    /// Done.
    Completed,
    /// Failed (see `error`).
    Failed,
}

/// A failed response's `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseError {
    /// `code`.
    pub code: Option<Value>,
    /// `message`.
    pub message: String,
}

/// The request fields a `response` object echoes (each written, `null` when the request did
/// not give it; `tools`, `tool_choice`, `parallel_tool_calls` and `text` with OpenAI's
/// defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Echo {
    /// `instructions`.
    pub instructions: Value,
    /// `max_output_tokens`.
    pub max_output_tokens: Value,
    /// `metadata`.
    pub metadata: Value,
    /// `parallel_tool_calls`.
    pub parallel_tool_calls: Value,
    /// `temperature`.
    pub temperature: Value,
    /// `tool_choice`.
    pub tool_choice: Value,
    /// `tools`.
    pub tools: Value,
    /// `top_p`.
    pub top_p: Value,
    /// `text`.
    pub text: Value,
    /// `reasoning`.
    pub reasoning: Value,
    /// `safety_identifier`.
    pub safety_identifier: Value,
    /// `user`.
    pub user: Value,
}

impl Echo {
    /// The echo of a Responses request.
    pub fn of(req: &Value) -> Self {
        let get = |key: &str| req.get(key).cloned().unwrap_or(Value::Null);
        let or = |key: &str, default: Value| match get(key) {
            Value::Null => default,
            v => v,
        };
        Self {
            instructions: get("instructions"),
            max_output_tokens: get("max_output_tokens"),
            metadata: get("metadata"),
            parallel_tool_calls: or("parallel_tool_calls", Value::Bool(true)),
            temperature: get("temperature"),
            tool_choice: or("tool_choice", json!("auto")),
            tools: or("tools", json!([])),
            top_p: get("top_p"),
            text: or("text", json!({"format": {"type": "text"}})),
            reasoning: get("reasoning"),
            safety_identifier: get("safety_identifier"),
            user: get("user"),
        }
    }
}

/// One item of `output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// The model's (or tutela's) message.
    Message {
        /// `id` (`msg_...`).
        id: String,
        /// `status`.
        status: Status,
        /// `role`: `assistant`.
        role: Role,
        /// Text and refusal parts.
        content: Vec<OutputContent>,
    },
    /// A function call.
    FunctionCall {
        /// `id` (`fc_...`).
        id: String,
        /// `call_id`, which the function's output names.
        call_id: String,
        /// `name`.
        name: String,
        /// `arguments`, a JSON text.
        arguments: String,
        /// `status`.
        status: Status,
    },
}

impl OutputItem {
    /// An assistant message.
    pub fn message(id: &str, status: Status, content: Vec<OutputContent>) -> Self {
        OutputItem::Message {
            id: id.to_owned(),
            status,
            role: Role::Assistant,
            content,
        }
    }

    /// The function call item of a chat tool call (`fc_` and the call's id).
    pub fn function_call(call: &ToolCall, status: Status) -> Self {
        let call_id = call.id.as_deref().unwrap_or("call");
        OutputItem::FunctionCall {
            id: format!("fc_{call_id}"),
            call_id: call_id.to_owned(),
            name: call.function.name.clone(),
            arguments: call.function.arguments.clone(),
            status,
        }
    }

    /// The item's `id`.
    pub fn id(&self) -> &str {
        match self {
            OutputItem::Message { id, .. } | OutputItem::FunctionCall { id, .. } => id,
        }
    }
}

/// A part of a message item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    /// Text.
    OutputText {
        /// The text.
        text: String,
        /// `annotations` (none from tutela).
        annotations: Vec<Value>,
        /// `logprobs` (none from tutela).
        logprobs: Vec<Value>,
    },
    /// A refusal (structured output tutela or the model refused).
    Refusal {
        /// The refusal's text.
        refusal: String,
    },
}

impl OutputContent {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        OutputContent::OutputText {
            text: text.into(),
            annotations: Vec::new(),
            logprobs: Vec::new(),
        }
    }
}

/// A response's `usage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseUsage {
    /// `input_tokens`.
    pub input_tokens: u64,
    /// `input_tokens_details`.
    pub input_tokens_details: InputDetails,
    /// `output_tokens`.
    pub output_tokens: u64,
    /// `output_tokens_details`.
    pub output_tokens_details: OutputDetails,
    /// `total_tokens`.
    pub total_tokens: u64,
}

/// `input_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputDetails {
    /// `cached_tokens`.
    pub cached_tokens: u64,
}

/// `output_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputDetails {
    /// `reasoning_tokens`.
    pub reasoning_tokens: u64,
}

impl ResponseUsage {
    /// The usage of a chat answer (none: zero).
    pub fn of_chat(usage: Option<&Usage>) -> Self {
        let (i, o) = usage.map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
        Self {
            input_tokens: i,
            output_tokens: o,
            total_tokens: i + o,
            ..Self::default()
        }
    }
}

/// One event of a streamed response (`type` is the event's name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ResponseEvent {
    /// The response began.
    #[serde(rename = "response.created")]
    Created {
        /// The response so far.
        response: ResponseObject,
    },
    /// The response is being written.
    #[serde(rename = "response.in_progress")]
    InProgress {
        /// The response so far.
        response: ResponseObject,
    },
    /// An output item began.
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        /// Its place in `output`.
        output_index: usize,
        /// The item as it begins.
        item: OutputItem,
    },
    /// A part of a message began.
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        /// The message's id.
        item_id: String,
        /// The message's place in `output`.
        output_index: usize,
        /// The part's place in the message.
        content_index: usize,
        /// The part as it begins.
        part: OutputContent,
    },
    /// More text.
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        /// The message's id.
        item_id: String,
        /// The message's place in `output`.
        output_index: usize,
        /// The part's place in the message.
        content_index: usize,
        /// The text added.
        delta: String,
        /// `logprobs` (none from tutela).
        logprobs: Vec<Value>,
    },
    /// More of a refusal.
    #[serde(rename = "response.refusal.delta")]
    RefusalDelta {
        /// The message's id.
        item_id: String,
        /// The message's place in `output`.
        output_index: usize,
        /// The part's place in the message.
        content_index: usize,
        /// The refusal text added.
        delta: String,
    },
    /// More of a function call's arguments.
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        /// The call's item id.
        item_id: String,
        /// Its place in `output`.
        output_index: usize,
        /// The arguments added.
        delta: String,
    },
    /// A function call's arguments are whole.
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        /// The call's item id.
        item_id: String,
        /// Its place in `output`.
        output_index: usize,
        /// The whole arguments.
        arguments: String,
        /// The function's name.
        name: String,
    },
    /// A text part is whole.
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        /// The message's id.
        item_id: String,
        /// The message's place in `output`.
        output_index: usize,
        /// The part's place in the message.
        content_index: usize,
        /// The whole text.
        text: String,
        /// `logprobs` (none from tutela).
        logprobs: Vec<Value>,
    },
    /// A message part is whole.
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        /// The message's id.
        item_id: String,
        /// The message's place in `output`.
        output_index: usize,
        /// The part's place in the message.
        content_index: usize,
        /// The whole part.
        part: OutputContent,
    },
    /// A refusal is whole.
    #[serde(rename = "response.refusal.done")]
    RefusalDone {
        /// The message's id.
        item_id: String,
        /// The message's place in `output`.
        output_index: usize,
        /// The part's place in the message.
        content_index: usize,
        /// The whole refusal.
        refusal: String,
    },
    /// An output item is whole.
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        /// Its place in `output`.
        output_index: usize,
        /// The whole item.
        item: OutputItem,
    },
    /// The response is complete.
    #[serde(rename = "response.completed")]
    Completed {
        /// The whole response.
        response: ResponseObject,
    },
    /// The response failed.
    #[serde(rename = "response.failed")]
    Failed {
        /// The response, with its `error`.
        response: ResponseObject,
    },
    /// An error, before `response.failed`.
    #[serde(rename = "error")]
    Error {
        /// OpenAI's error code.
        code: Option<Value>,
        /// The message.
        message: String,
        /// The parameter at fault.
        param: Option<String>,
    },
}

impl ResponseEvent {
    /// The event's name, as its `type` and its SSE `event:` line.
    pub fn name(&self) -> &'static str {
        match self {
            ResponseEvent::Created { .. } => "response.created",
            ResponseEvent::InProgress { .. } => "response.in_progress",
            ResponseEvent::OutputItemAdded { .. } => "response.output_item.added",
            ResponseEvent::ContentPartAdded { .. } => "response.content_part.added",
            ResponseEvent::OutputTextDelta { .. } => "response.output_text.delta",
            ResponseEvent::RefusalDelta { .. } => "response.refusal.delta",
            ResponseEvent::FunctionCallArgumentsDelta { .. } => {
                "response.function_call_arguments.delta"
            }
            ResponseEvent::FunctionCallArgumentsDone { .. } => {
                "response.function_call_arguments.done"
            }
            ResponseEvent::OutputTextDone { .. } => "response.output_text.done",
            ResponseEvent::ContentPartDone { .. } => "response.content_part.done",
            ResponseEvent::RefusalDone { .. } => "response.refusal.done",
            ResponseEvent::OutputItemDone { .. } => "response.output_item.done",
            ResponseEvent::Completed { .. } => "response.completed",
            ResponseEvent::Failed { .. } => "response.failed",
            ResponseEvent::Error { .. } => "error",
        }
    }
}

/// An event as it is sent: the event and its `sequence_number`.
#[derive(Debug, Serialize)]
pub struct Sequenced<'a> {
    /// The event.
    #[serde(flatten)]
    pub event: &'a ResponseEvent,
    /// Its place in the stream, from 0.
    pub sequence_number: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: serde::de::DeserializeOwned + Serialize>(v: &Value) -> Value {
        let typed: T = serde_json::from_value(v.clone()).unwrap();
        serde_json::to_value(&typed).unwrap()
    }

    fn completed() -> Value {
        json!({
            "id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
            "error": null, "incomplete_details": null, "model": "m",
            "output": [
                {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "hi", "annotations": [], "logprobs": []},
                             {"type": "refusal", "refusal": "no"}]},
                {"type": "function_call", "id": "fc_c1", "call_id": "c1", "name": "f", "arguments": "{}", "status": "completed"},
            ],
            "usage": {"input_tokens": 3, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 2,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 5},
            "store": false, "previous_response_id": null,
            "instructions": null, "max_output_tokens": 50, "metadata": {"a": "b"}, "parallel_tool_calls": true,
            "temperature": null, "tool_choice": "auto", "tools": [], "top_p": null,
            "text": {"format": {"type": "text"}}, "reasoning": null, "safety_identifier": "s-1", "user": null,
            "tutela": {"notices": []},
        })
    }

    #[test]
    fn a_response_object_round_trips_with_its_echo_and_tutela() {
        let v = completed();
        assert_eq!(round_trip::<ResponseObject>(&v), v);
        let r: ResponseObject = serde_json::from_value(v).unwrap();
        assert_eq!(r.status, Status::Completed);
        assert_eq!(r.output[1].id(), "fc_c1");
        assert!(r.extra.contains_key("tutela"));
    }

    #[test]
    fn the_echo_has_openais_defaults() {
        let e = Echo::of(&json!({"input": "hi", "max_output_tokens": 5}));
        assert_eq!(e.max_output_tokens, 5);
        assert_eq!(e.tools, json!([]));
        assert_eq!(e.tool_choice, "auto");
        assert_eq!(e.parallel_tool_calls, true);
        assert_eq!(e.text, json!({"format": {"type": "text"}}));
        assert_eq!(e.instructions, Value::Null);
    }

    #[test]
    fn events_carry_their_type_and_sequence_number() {
        let ev = ResponseEvent::OutputTextDelta {
            item_id: "msg_1".into(),
            output_index: 0,
            content_index: 0,
            delta: "Hel".into(),
            logprobs: Vec::new(),
        };
        let v = serde_json::to_value(Sequenced {
            event: &ev,
            sequence_number: 4,
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
                   "content_index": 0, "delta": "Hel", "logprobs": [], "sequence_number": 4})
        );
        assert_eq!(v["type"], ev.name());
        let back: ResponseEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);
        let done = json!({"type": "response.completed", "response": completed()});
        assert_eq!(round_trip::<ResponseEvent>(&done), done);
    }
}
