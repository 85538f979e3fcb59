//! What the model behind the gateway answers, whichever it is (an OpenAI-compatible upstream
//! or the `demo`): a whole completion, or a stream of chunk events.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tutela_openai::{ChatCompletion, ChatCompletionChunk, WireError};

use crate::error::ApiError;

/// One event of an upstream stream (`tutela_openai::sse::Event`), a typed chunk.
pub(crate) type StreamEvent = tutela_openai::sse::Event<ChatCompletionChunk>;

/// A stream of upstream events; an `Err` ends it (disconnect, timeout, an event too large).
pub(crate) type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ApiError>> + Send>>;

/// The upstream's answer.
pub(crate) enum UpstreamReply {
    /// A whole `chat.completion` object.
    Json(ChatCompletion),
    /// Chunk events.
    Stream(EventStream),
}

/// Splits an SSE byte stream into chunk events (`tutela_openai::sse::events`: bounded events,
/// each within `idle`, and at most `idle` between them).
pub(crate) fn sse_events<S>(bytes: S, idle: Duration) -> EventStream
where
    S: Stream<Item = Result<Bytes, WireError>> + Send + 'static,
{
    typed(tutela_openai::sse::events(bytes, idle))
}

/// Chunk events with the gateway's errors.
pub(crate) fn typed(events: tutela_openai::sse::Events<ChatCompletionChunk>) -> EventStream {
    Box::pin(events.map(|r| r.map_err(ApiError::from)))
}
