//! The OpenAI wire format, once: the chat completions types ([`chat`]: the request, the whole
//! answer, the stream's chunks, usage, errors; every field they do not name kept in `extra`),
//! a chat request as a server reads and validates it ([`request`]), a Responses API request
//! as a chat request and what that API answers ([`responses`]), how an
//! OpenAI-compatible endpoint fails ([`WireError`]:
//! a client error passed through, a broken, busy or silent upstream), how its server-sent
//! events are split ([`sse`]: bounded events, whole-event timeouts), and one HTTP client
//! ([`Client`]) with those rules. The gateway's upstream, the judge tier and `tutela assess`
//! all talk to models through it, so a 429 or a refused connection means the same everywhere.
//!
//! Invariant: no chat text is logged; errors carry the upstream's status and message only.
//! Invariant: a field the types do not name survives a read and a write.

pub mod chat;
mod client;
mod error;
pub mod request;
pub mod responses;
pub mod sse;

pub use chat::{ChatCompletion, ChatCompletionChunk, ChatCompletionRequest};
pub use client::{Client, ClientOptions};
pub use error::WireError;
pub use request::RequestError;
