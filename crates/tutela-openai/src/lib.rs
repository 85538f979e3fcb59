//! The OpenAI wire format, once: a chat request as a server reads and validates it
//! ([`request`]), a Responses API request as a chat request ([`responses`]), how an
//! OpenAI-compatible endpoint fails ([`WireError`]:
//! a client error passed through, a broken, busy or silent upstream), how its server-sent
//! events are split ([`sse`]: bounded events, whole-event timeouts), and one HTTP client
//! ([`Client`]) with those rules. The gateway's upstream, the judge tier and `tutela assess`
//! all talk to models through it, so a 429 or a refused connection means the same everywhere.
//!
//! Invariant: no chat text is logged; errors carry the upstream's status and message only.

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
