//! How an OpenAI-compatible endpoint fails, classified once.

use serde::Deserialize;
use serde_json::Value;

use crate::chat::ErrorBody;

/// A failed call to an OpenAI-compatible endpoint.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WireError {
    /// The endpoint refused the request as the caller's fault (4xx other than an auth failure
    /// of our own key or a timeout): its status, message, OpenAI error body and `Retry-After`.
    #[error("upstream answered {status}: {message}")]
    Rejected {
        /// The status (400..=499).
        status: u16,
        /// The error message.
        message: String,
        /// The body when it was an OpenAI error object.
        body: Option<Value>,
        /// `Retry-After`, if sent (429).
        retry_after: Option<String>,
    },
    /// The endpoint failed (5xx), or refused our own credentials (401, 403).
    #[error("upstream answered {status}: {message}")]
    Status {
        /// The status.
        status: u16,
        /// The error message.
        message: String,
    },
    /// The endpoint could not be reached (refused, reset, TLS), or a body was cut off.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// The endpoint did not answer in time.
    #[error("upstream timed out: {0}")]
    Timeout(String),
    /// The endpoint answered something that is not OpenAI's format.
    #[error("upstream sent an invalid response: {0}")]
    Invalid(String),
}

impl WireError {
    /// Whether trying again may help: rate limits, server errors, an unreachable or silent
    /// endpoint. A rejected request or an invalid answer will fail the same way again.
    pub fn retryable(&self) -> bool {
        match self {
            WireError::Rejected { status, .. } => *status == 429,
            WireError::Status { status, .. } => !matches!(status, 401 | 403),
            WireError::Unreachable(_) | WireError::Timeout(_) => true,
            WireError::Invalid(_) => false,
        }
    }

    /// An error status with its body: client errors pass through; 401 and 403 refuse our own
    /// key (the deployment's fault, not the caller's); 408 is a timeout; the rest failed.
    pub fn from_status(status: u16, body: &[u8], retry_after: Option<String>) -> WireError {
        // The body as it came, to pass through, when it is OpenAI's error object.
        let parsed = serde_json::from_slice::<Value>(body)
            .ok()
            .filter(|v| v.get("error").is_some_and(Value::is_object));
        let message = parsed
            .as_ref()
            .and_then(|v| ErrorBody::deserialize(v).ok())
            .map(|b| b.error.message)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                let end = (0..=body.len().min(200))
                    .rev()
                    .find(|&i| std::str::from_utf8(&body[..i]).is_ok())
                    .unwrap_or(0);
                String::from_utf8_lossy(&body[..end]).into_owned()
            });
        match status {
            401 | 403 => WireError::Status {
                status,
                message: format!("the upstream refused our credentials: {message}"),
            },
            408 => WireError::Timeout(message),
            400..=499 => WireError::Rejected {
                status,
                message,
                body: parsed,
                retry_after,
            },
            _ => WireError::Status { status, message },
        }
    }

    /// A transport failure: a timeout, or an unreachable endpoint.
    pub fn from_reqwest(e: reqwest::Error) -> WireError {
        let timeout = e.is_timeout();
        // reqwest's message is "error sending request"; the cause says what happened.
        let cause = std::error::Error::source(&e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        let text = format!("{}{cause}", e.without_url());
        if timeout {
            WireError::Timeout(text)
        } else {
            WireError::Unreachable(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_once() {
        let body = br#"{"error": {"message": "too long", "code": "context_length_exceeded"}}"#;
        let e = WireError::from_status(400, body, None);
        assert!(matches!(
            &e,
            WireError::Rejected {
                status: 400,
                body: Some(_),
                ..
            }
        ));
        assert!(!e.retryable());
        let e = WireError::from_status(429, b"slow down", Some("2".into()));
        assert!(matches!(
            &e,
            WireError::Rejected {
                status: 429,
                body: None,
                ..
            }
        ));
        assert!(e.retryable());
        assert!(matches!(
            WireError::from_status(401, b"", None),
            WireError::Status { status: 401, .. }
        ));
        assert!(!WireError::from_status(401, b"", None).retryable());
        assert!(WireError::from_status(503, b"", None).retryable());
        assert!(matches!(
            WireError::from_status(408, b"", None),
            WireError::Timeout(_)
        ));
        // A body cut in the middle of a character keeps whole characters.
        let e = WireError::from_status(500, "é".repeat(150).as_bytes(), None);
        assert!(
            matches!(e, WireError::Status { message, .. } if message.chars().all(|c| c == 'é'))
        );
    }
}
