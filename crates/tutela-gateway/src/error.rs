//! `ApiError`: every failure of a request, with its HTTP status and whom to blame, answered in
//! OpenAI's error shape (`{"error": {"message", "type", "param", "code"}}`) so that the SDKs
//! raise the exception an app expects. A policy block is not an error: it is a normal reply
//! shaped by the profile.
//!
//! Upstream faults follow the rule of `docs/openai-compatibility.md`: an upstream client error
//! (4xx) is passed through with its status and body; a broken upstream (5xx, refused
//! connection, a body that is not OpenAI's) is 502, an overloaded one (503, 529) is 503, and
//! one that does not answer in time is 504.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Who caused an error, so metrics separate "the model failed" from "the client sent junk"
/// from "our bug".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The caller.
    Client,
    /// The upstream model.
    Upstream,
    /// tutela itself (including its store).
    Internal,
}

impl ErrorSource {
    /// `client`, `upstream`, `internal`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorSource::Client => "client",
            ErrorSource::Upstream => "upstream",
            ErrorSource::Internal => "internal",
        }
    }
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not a valid request.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// One parameter of the request is invalid (`param` is its path, `messages[2].content`).
    #[error("{message}")]
    InvalidParam {
        /// The parameter's path, as OpenAI names it.
        param: String,
        /// What is wrong with it.
        message: String,
    },
    /// No user id, and the deployment rejects anonymous requests.
    #[error(
        "a user id is required: set the OpenAI `safety_identifier` (or `user`) field or the `X-Tutela-User` header"
    )]
    MissingUser,
    /// A jurisdiction id or alias that no profile matches.
    #[error("unknown jurisdiction: {0}")]
    UnknownJurisdiction(String),
    /// Missing or wrong admin token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// `X-Tutela-Test-Key` is not the deployment's test key.
    #[error(
        "`X-Tutela-Test-Key` is not this deployment's test key (staff get it from GET /admin/test-key)"
    )]
    InvalidTestKey,
    /// No such resource.
    #[error("not found: {0}")]
    NotFound(String),
    /// A model the upstream does not serve (the demo upstream serves only its own).
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    ModelNotFound(String),
    /// The request conflicts with the resource's state (claiming a resolved case).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The upstream refused the request as the client's fault (4xx other than an auth failure
    /// of tutela's own key): passed through with its status and body.
    #[error("upstream answered {status}: {message}")]
    UpstreamRejected {
        /// The upstream's status (400..=499).
        status: u16,
        /// The upstream's error message (for logs and the fallback body).
        message: String,
        /// The upstream's body when it was an OpenAI error object; passed through as is.
        body: Option<Value>,
        /// The upstream's `Retry-After`, passed through (429).
        retry_after: Option<String>,
    },
    /// The upstream failed (5xx, or refused tutela's own credentials): 502, or 503 when it
    /// says it is overloaded.
    #[error("upstream answered {status}: {message}")]
    UpstreamStatus {
        /// The upstream's status.
        status: u16,
        /// Its error message.
        message: String,
    },
    /// The upstream could not be reached (connection refused, reset, TLS): 502.
    #[error("upstream unreachable: {0}")]
    UpstreamUnreachable(String),
    /// The upstream did not answer in time: 504.
    #[error("upstream timed out: {0}")]
    UpstreamTimeout(String),
    /// The upstream answered something that is not an OpenAI response: 502.
    #[error("upstream sent an invalid response: {0}")]
    UpstreamInvalid(String),
    /// The caller is over a rate limit of tutela's own (the complaint intake): 429 with
    /// `Retry-After`.
    #[error("{message}")]
    RateLimited {
        /// Which limit, and when to try again.
        message: String,
        /// Seconds until the limit's window ends.
        retry_after_secs: u64,
    },
    /// tutela is over its capacity for the moment: 503 (the SDKs retry it).
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// The store failed.
    #[error("store error: {0}")]
    Store(String),
    /// Our bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_)
            | ApiError::InvalidParam { .. }
            | ApiError::MissingUser
            | ApiError::UnknownJurisdiction(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::InvalidTestKey => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::ModelNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UpstreamRejected { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::UpstreamStatus { status, .. } => match *status {
                503 | 529 => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            },
            ApiError::UpstreamUnreachable(_) | ApiError::UpstreamInvalid(_) => {
                StatusCode::BAD_GATEWAY
            }
            ApiError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whom to blame. An upstream's client error is the caller's (the request was wrong),
    /// except a rate limit, which is the upstream's capacity.
    pub fn source_kind(&self) -> ErrorSource {
        match self {
            ApiError::BadRequest(_)
            | ApiError::InvalidParam { .. }
            | ApiError::MissingUser
            | ApiError::UnknownJurisdiction(_)
            | ApiError::Unauthorized
            | ApiError::InvalidTestKey
            | ApiError::NotFound(_)
            | ApiError::ModelNotFound(_)
            | ApiError::Conflict(_)
            | ApiError::RateLimited { .. } => ErrorSource::Client,
            ApiError::UpstreamRejected { status, .. } if *status != 429 => ErrorSource::Client,
            ApiError::UpstreamRejected { .. }
            | ApiError::UpstreamStatus { .. }
            | ApiError::UpstreamUnreachable(_)
            | ApiError::UpstreamTimeout(_)
            | ApiError::UpstreamInvalid(_) => ErrorSource::Upstream,
            ApiError::Overloaded(_) | ApiError::Store(_) | ApiError::Internal(_) => {
                ErrorSource::Internal
            }
        }
    }

    /// OpenAI's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidParam { .. } => "invalid_request",
            ApiError::MissingUser => "missing_user",
            ApiError::UnknownJurisdiction(_) => "unknown_jurisdiction",
            ApiError::Unauthorized => "invalid_api_key",
            ApiError::InvalidTestKey => "invalid_test_key",
            ApiError::NotFound(_) => "not_found",
            ApiError::ModelNotFound(_) => "model_not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::RateLimited { .. } => "rate_limit_exceeded",
            ApiError::UpstreamRejected { status: 429, .. } => "rate_limit_exceeded",
            ApiError::UpstreamRejected { .. } => "upstream_rejected",
            ApiError::UpstreamStatus {
                status: 503 | 529, ..
            } => "upstream_overloaded",
            ApiError::UpstreamStatus { .. } => "upstream_error",
            ApiError::UpstreamUnreachable(_) => "upstream_unreachable",
            ApiError::UpstreamTimeout(_) => "upstream_timeout",
            ApiError::UpstreamInvalid(_) => "upstream_invalid",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::Store(_) => "store_error",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// OpenAI's `error.param`.
    fn param(&self) -> Option<&str> {
        match self {
            ApiError::InvalidParam { param, .. } => Some(param),
            ApiError::ModelNotFound(_) => Some("model"),
            ApiError::MissingUser => Some("safety_identifier"),
            _ => None,
        }
    }

    /// The error object as it goes on the wire (also as an SSE event mid-stream).
    pub fn body(&self) -> Value {
        if let ApiError::UpstreamRejected { body: Some(b), .. } = self {
            return b.clone();
        }
        let status = self.status();
        error_body(
            &self.to_string(),
            error_type(status),
            self.param(),
            Some(self.code()),
        )
    }
}

/// A store failure as the client sees it: a missing row is 404, a conflicting state 409,
/// anything else the store's fault (500).
impl From<tutela_store::StoreError> for ApiError {
    fn from(e: tutela_store::StoreError) -> Self {
        use tutela_store::StoreError;
        match e {
            StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            StoreError::Conflict { .. } => ApiError::Conflict(e.to_string()),
            other => ApiError::Store(other.to_string()),
        }
    }
}

/// OpenAI's `error.type` for a status.
pub(crate) fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn error_body(
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

impl From<tutela_openai::RequestError> for ApiError {
    fn from(e: tutela_openai::RequestError) -> Self {
        match e.param {
            Some(param) => ApiError::InvalidParam {
                param,
                message: e.message,
            },
            None => ApiError::BadRequest(e.message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), Json(self.body())).into_response();
        let h = resp.headers_mut();
        h.insert(
            "x-tutela-error-source",
            HeaderValue::from_static(self.source_kind().as_str()),
        );
        if let ApiError::UpstreamRejected {
            retry_after: Some(r),
            ..
        } = &self
            && let Ok(v) = HeaderValue::from_str(r)
        {
            h.insert(header::RETRY_AFTER, v);
        }
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = &self
        {
            h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        if let ApiError::Overloaded(_) = &self {
            h.insert(header::RETRY_AFTER, HeaderValue::from(1u32));
        }
        resp
    }
}

/// Router middleware: an error response that is not JSON (axum's own rejections: unknown path
/// 404, 405, 413 body too large, 415, 422 and 400 of the extractors) is rewritten into OpenAI's
/// error shape with the same status. The probes (`/healthz`, `/readyz`, `/metrics`) keep
/// their plain text.
pub(crate) async fn openai_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let resp = next.run(req).await;
    let status = resp.status();
    if status.as_u16() < 400 || matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") {
        return resp;
    }
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match status {
        StatusCode::NOT_FOUND => format!("Invalid URL ({method} {path})"),
        StatusCode::METHOD_NOT_ALLOWED => format!("Method {method} is not allowed on {path}"),
        _ if !text.is_empty() => text,
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    };
    let code = match status {
        StatusCode::NOT_FOUND => "unknown_url",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => "invalid_request",
        _ => "error",
    };
    let body = error_body(&message, error_type(status), None, Some(code));
    let mut out = Response::from_parts(parts, Body::from(body.to_string()));
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out.headers_mut().remove(header::CONTENT_LENGTH);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_sources() {
        assert_eq!(ApiError::MissingUser.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ApiError::MissingUser.source_kind(), ErrorSource::Client);
        let up = ApiError::UpstreamStatus {
            status: 500,
            message: "x".into(),
        };
        assert_eq!(up.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(up.source_kind(), ErrorSource::Upstream);
        let busy = ApiError::UpstreamStatus {
            status: 503,
            message: "x".into(),
        };
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            ApiError::UpstreamUnreachable("refused".into()).status(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            ApiError::UpstreamTimeout("x".into()).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            ApiError::Store("x".into()).source_kind(),
            ErrorSource::Internal
        );
    }

    #[test]
    fn upstream_client_errors_keep_their_status_and_body() {
        let body = json!({"error": {"message": "too long", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}});
        let e = ApiError::UpstreamRejected {
            status: 400,
            message: "too long".into(),
            body: Some(body.clone()),
            retry_after: None,
        };
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.source_kind(), ErrorSource::Client);
        assert_eq!(e.body(), body);
        let limited = ApiError::UpstreamRejected {
            status: 429,
            message: "slow down".into(),
            body: None,
            retry_after: Some("2".into()),
        };
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.source_kind(), ErrorSource::Upstream);
        assert_eq!(limited.body()["error"]["code"], "rate_limit_exceeded");
        let resp = limited.into_response();
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn every_error_has_the_openai_shape() {
        let e = ApiError::InvalidParam {
            param: "messages[0].content".into(),
            message: "bad".into(),
        };
        let b = e.body();
        for key in ["message", "type", "param", "code"] {
            assert!(b["error"].get(key).is_some(), "{b}");
        }
        assert_eq!(b["error"]["param"], "messages[0].content");
        assert_eq!(
            ApiError::ModelNotFound("gpt-x".into()).body()["error"]["code"],
            "model_not_found"
        );
    }
}
