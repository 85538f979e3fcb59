//! `ApiError`: every failure of a request, with its HTTP status and whom to blame. A policy
//! block is not an error: it is a normal reply shaped by the profile.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
    /// No user id, and the deployment rejects anonymous requests.
    #[error("a user id is required: set the OpenAI `user` field or the `X-Tutela-User` header")]
    MissingUser,
    /// A jurisdiction id or alias that no profile matches.
    #[error("unknown jurisdiction: {0}")]
    UnknownJurisdiction(String),
    /// Missing or wrong admin token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// No such resource.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with the resource's state (claiming a resolved case).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The upstream answered with an error status; its message is passed on.
    #[error("upstream answered {status}: {message}")]
    UpstreamStatus {
        /// The upstream's status.
        status: u16,
        /// Its error message.
        message: String,
    },
    /// The upstream could not be reached or did not answer in time.
    #[error("upstream unavailable: {0}")]
    UpstreamUnavailable(String),
    /// The upstream answered something that is not an OpenAI response.
    #[error("upstream sent an invalid response: {0}")]
    UpstreamInvalid(String),
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
            ApiError::BadRequest(_) | ApiError::MissingUser | ApiError::UnknownJurisdiction(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::UpstreamStatus { status, .. } => match *status {
                // Rate limits and client errors of the upstream keep their meaning for the caller.
                429 => StatusCode::TOO_MANY_REQUESTS,
                400..=499 => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_GATEWAY,
            },
            ApiError::UpstreamUnavailable(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::UpstreamInvalid(_) => StatusCode::BAD_GATEWAY,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whom to blame.
    pub fn source_kind(&self) -> ErrorSource {
        match self {
            ApiError::BadRequest(_)
            | ApiError::MissingUser
            | ApiError::UnknownJurisdiction(_)
            | ApiError::Unauthorized
            | ApiError::NotFound(_)
            | ApiError::Conflict(_) => ErrorSource::Client,
            ApiError::UpstreamStatus { .. }
            | ApiError::UpstreamUnavailable(_)
            | ApiError::UpstreamInvalid(_) => ErrorSource::Upstream,
            ApiError::Store(_) | ApiError::Internal(_) => ErrorSource::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid_request",
            ApiError::MissingUser => "missing_user",
            ApiError::UnknownJurisdiction(_) => "unknown_jurisdiction",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::UpstreamStatus { .. } => "upstream_error",
            ApiError::UpstreamUnavailable(_) => "upstream_unavailable",
            ApiError::UpstreamInvalid(_) => "upstream_invalid",
            ApiError::Store(_) => "store_error",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

/// The error's source, kept in the response extensions for the logging middleware.
#[derive(Debug, Clone, Copy)]
pub struct ErrorMark(pub ErrorSource);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = match self.source_kind() {
            ErrorSource::Client => "invalid_request_error",
            ErrorSource::Upstream => "upstream_error",
            ErrorSource::Internal => "server_error",
        };
        let body =
            json!({"error": {"message": self.to_string(), "type": kind, "code": self.code()}});
        let mut resp = (self.status(), Json(body)).into_response();
        resp.extensions_mut().insert(ErrorMark(self.source_kind()));
        resp
    }
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
        assert_eq!(
            ApiError::Store("x".into()).source_kind(),
            ErrorSource::Internal
        );
    }
}
