//! What a turn knows once its user side is decided ([`TurnCtx`]), carried into the author,
//! the assistant side (whole or streamed) and the labels and notices; and who wrote a reply
//! ([`Author`]).

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tutela_store::{AuditEntry, User};
use tutela_types::{PersonaKind, SessionState, Timestamp, UserState};

use crate::labels::Aigc;
use crate::openai::ShownArguments;
use crate::state::{AppState, Compiled};
use crate::texts::Lang;

/// Who wrote a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Author {
    /// The model.
    Model,
    /// tutela's own template.
    Tutela,
    /// A human during takeover.
    Human,
}

impl Author {
    /// `model`, `tutela`, `human` (`tutela.author`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Author::Model => "model",
            Author::Tutela => "tutela",
            Author::Human => "human",
        }
    }
}

/// What a turn knows once the user side is decided; the relay carries it into the stream.
pub(crate) struct TurnCtx {
    /// The shared state.
    pub(crate) st: AppState,
    /// The user id.
    pub(crate) user_id: String,
    /// The session id.
    pub(crate) session_id: String,
    /// The composed profiles.
    pub(crate) compiled: Arc<Compiled>,
    /// The user's state as the engine saw it.
    pub(crate) user: UserState,
    /// The user's record, carried so the assistant side's side effects reach it without a
    /// lookup (anonymous users have no cache entry).
    pub(crate) account: User,
    /// The clocks after the user turn.
    pub(crate) session: SessionState,
    /// The persona.
    pub(crate) persona: PersonaKind,
    /// The instant of the turn.
    pub(crate) now: Timestamp,
    /// The language to answer in.
    pub(crate) lang: Lang,
    /// The user's message (context for assistant-side detectors).
    pub(crate) user_text: String,
    /// Model name for chunk envelopes.
    pub(crate) model: String,
    /// Completion id.
    pub(crate) completion_id: String,
    /// The `AIGC` metadata of this reply.
    pub(crate) aigc: Aigc,
    /// The notice text to show (already rendered), if any.
    pub(crate) notice_text: Option<String>,
    /// `tutela.notices`.
    pub(crate) notices: Value,
    /// `tutela.interventions` from the user side.
    pub(crate) interventions: Vec<Value>,
    /// Whether the client asked for the usage chunk.
    pub(crate) include_usage: bool,
    /// The user side's audit record of a normal turn, written together with the assistant
    /// side's decision as one record (or on drop, if the turn ends early).
    pub(crate) pending_audit: Mutex<Option<AuditEntry>>,
    /// The app asked for structured output (`response_format` JSON): the content is never
    /// altered; tutela's own text goes in `refusal`.
    pub(crate) structured: bool,
    /// `notice_text` includes a notice deferred from an earlier turn.
    pub(crate) carried_notice: bool,
    /// An estimate of the request's prompt tokens, for usage the upstream could not report
    /// (a stream stopped before its usage chunk).
    pub(crate) prompt_tokens: u64,
    /// Test traffic (`X-Tutela-Test-Key`): recorded as a test, no side effects.
    pub(crate) test: bool,
    /// An anonymous request: no per-user cache entry, its side effects use `account`.
    pub(crate) anonymous: bool,
    /// The app offered tools (`tools`, `functions`): the reply may be a tool call, so the
    /// inline notice waits for the first text.
    pub(crate) tools: bool,
    /// Tool-call arguments the app shows to the person (`X-Tutela-Shown-Arguments`): checked
    /// as the reply's text is.
    pub(crate) shown: ShownArguments,
    /// Choices asked for (`n`, JSON only): a reply tutela writes gives that many.
    pub(crate) n: u64,
}

impl Drop for TurnCtx {
    /// The records phase of a turn that ends before its assistant side was decided (a
    /// template, an upstream error, a client gone): the user side's record is written now.
    fn drop(&mut self) {
        if let Ok(mut p) = self.pending_audit.lock()
            && let Some(entry) = p.take()
        {
            self.st.records.audit_now(entry);
        }
    }
}
