//! Phase 1 of a turn, parse and validate: the body read and validated as OpenAI does
//! (`tutela_openai::request`: 400 naming the parameter), and what the gateway reads of the
//! request's headers (`X-Tutela-User`, `-Persona`, `-Jurisdiction`, `-Test-Key`,
//! `-Shown-Arguments`), into one typed [`Request`]. The body is kept as it came, and typed
//! with every field it has (`tutela_openai::ChatCompletionRequest`: unknown ones in `extra`),
//! so the upstream receives every field.

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde_json::Value;
use tutela_openai::ChatCompletionRequest;
use tutela_types::PersonaKind;

use crate::config::{Anonymous, parse_persona};
use crate::error::ApiError;
use crate::openai::{ChatRequest, ShownArguments};
use crate::state::AppState;
use crate::texts::Lang;

/// The longest user id a turn accepts, in bytes.
const MAX_USER_ID: usize = 256;

/// A validated chat request and what the gateway reads of its headers.
pub(crate) struct Request {
    /// The client's body as it came (forwarded as is when nothing needs changing).
    pub(crate) raw: Bytes,
    /// The same body, typed: forwarded with every field the gateway does not read.
    pub(crate) body: ChatCompletionRequest,
    /// What the gateway reads of the body (`tutela_openai::request::parse_chat`).
    pub(crate) chat: ChatRequest,
    /// The model asked for (the demo's when none is named).
    pub(crate) model: String,
    /// The user id (`safety_identifier`, `user`, `X-Tutela-User`, or the shared anonymous id).
    pub(crate) user_id: String,
    /// No user id was given (and the deployment allows that).
    pub(crate) anonymous: bool,
    /// The persona (`X-Tutela-Persona`, else the model's in the configuration).
    pub(crate) persona: PersonaKind,
    /// Test traffic (`X-Tutela-Test-Key` with the deployment's test key).
    pub(crate) test: bool,
    /// `X-Tutela-Jurisdiction`, if given.
    pub(crate) jurisdiction: Option<String>,
    /// `X-Tutela-Shown-Arguments`: tool-call arguments the app shows to the person.
    pub(crate) shown: ShownArguments,
    /// The language of the person's message.
    pub(crate) lang: Lang,
}

/// Reads and validates a chat request.
pub(crate) fn parse(st: &AppState, headers: &HeaderMap, raw: &Bytes) -> Result<Request, ApiError> {
    let body: Value = serde_json::from_slice(raw)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let (body, chat) = crate::openai::parse_chat(body)?;
    if matches!(st.upstream, crate::upstream::Upstream::Demo)
        && let Some(m) = chat.model.as_deref()
        && m != crate::demo::MODEL
    {
        // The demo serves one model; answering any other name would hide a misconfiguration.
        return Err(ApiError::ModelNotFound(m.to_owned()));
    }
    let model = chat
        .model
        .clone()
        .unwrap_or_else(|| crate::demo::MODEL.to_owned());
    let named = chat
        .user
        .clone()
        .or_else(|| header_str(headers, "x-tutela-user").map(str::to_owned));
    let anonymous = named.is_none();
    let user_id = user_id(st, named)?;
    let persona = persona(st, headers, &model)?;
    let test = crate::test_traffic::is_test(st, headers)?;
    Ok(Request {
        raw: raw.clone(),
        lang: Lang::detect(&chat.user_text),
        jurisdiction: header_str(headers, "x-tutela-jurisdiction").map(str::to_owned),
        shown: header_str(headers, "x-tutela-shown-arguments")
            .map(ShownArguments::parse)
            .unwrap_or_default(),
        body,
        chat,
        model,
        user_id,
        anonymous,
        persona,
        test,
    })
}

/// The user id of a request: the one it names (at most [`MAX_USER_ID`] bytes), or the shared
/// anonymous id where the deployment allows requests without one.
fn user_id(st: &AppState, named: Option<String>) -> Result<String, ApiError> {
    match named {
        Some(u) if u.len() <= MAX_USER_ID => Ok(u),
        Some(_) => Err(ApiError::BadRequest(format!(
            "the user id is longer than {MAX_USER_ID} bytes"
        ))),
        None => match st.config.anonymous {
            Anonymous::Reject => Err(ApiError::MissingUser),
            Anonymous::Allow => Ok("anonymous".to_owned()),
        },
    }
}

/// `X-Tutela-Persona`, else the persona the configuration gives the model.
fn persona(st: &AppState, headers: &HeaderMap, model: &str) -> Result<PersonaKind, ApiError> {
    match header_str(headers, "x-tutela-persona") {
        Some(p) => parse_persona(p).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`X-Tutela-Persona: {p}` is not one of general, partner, relative, specific_person"
            ))
        }),
        None => Ok(st.config.personas.get(model).copied().unwrap_or_default()),
    }
}

/// A header's value, trimmed; `None` when absent, empty or not text.
fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}
