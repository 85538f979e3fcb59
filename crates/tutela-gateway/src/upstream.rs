//! The model behind the gateway: any OpenAI-compatible endpoint (through `tutela-openai`'s one
//! client: pooled, API key from the environment, timeouts, faults classified once) or the
//! built-in `demo` companion. Both answer in the same shape, a whole completion or a stream of
//! chunk events, so the turn pipeline has one path.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use tutela_openai::request::ChatRequest;
use tutela_openai::{ChatCompletionRequest, Client, ClientOptions, WireError};

pub(crate) use crate::answer::{EventStream, StreamEvent, UpstreamReply, sse_events};
use crate::config::UpstreamConfig;
use crate::demo;
use crate::error::ApiError;

/// The model behind the gateway.
#[derive(Clone)]
pub enum Upstream {
    /// The scripted demo companion.
    Demo,
    /// An OpenAI-compatible endpoint.
    Http(Arc<HttpUpstream>),
}

/// An OpenAI-compatible endpoint with a pooled client.
pub struct HttpUpstream {
    client: Client,
    model: Option<String>,
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Rejected {
                status,
                message,
                body,
                retry_after,
            } => ApiError::UpstreamRejected {
                status,
                message,
                body,
                retry_after,
            },
            WireError::Status { status, message } => ApiError::UpstreamStatus { status, message },
            WireError::Unreachable(m) => ApiError::UpstreamUnreachable(m),
            WireError::Timeout(m) => ApiError::UpstreamTimeout(m),
            WireError::Invalid(m) => ApiError::UpstreamInvalid(m),
        }
    }
}

impl Upstream {
    /// Builds the upstream of a configuration.
    pub fn new(config: &UpstreamConfig) -> Result<Upstream, ApiError> {
        match config {
            UpstreamConfig::Demo => Ok(Upstream::Demo),
            UpstreamConfig::OpenAi {
                base_url,
                api_key,
                model,
                timeout,
                connect_timeout,
                pool_max_idle_per_host,
            } => {
                let client = Client::new(
                    base_url,
                    api_key.as_deref(),
                    ClientOptions {
                        timeout: *timeout,
                        connect_timeout: *connect_timeout,
                        pool_max_idle_per_host: *pool_max_idle_per_host,
                    },
                )
                .map_err(|e| ApiError::Internal(e.to_string()))?;
                Ok(Upstream::Http(Arc::new(HttpUpstream {
                    client,
                    model: model.clone(),
                })))
            }
        }
    }

    /// The models list (`GET /v1/models`), passed through as the upstream wrote it.
    pub async fn models(&self) -> Result<Value, ApiError> {
        match self {
            Upstream::Demo => Ok(json!({
                "object": "list",
                "data": [{"id": demo::MODEL, "object": "model", "created": 0, "owned_by": "tutela-demo"}]
            })),
            Upstream::Http(h) => Ok(h.client.get_json("/models").await?),
        }
    }

    /// `GET /v1/models/{id}`: the model's object. The demo knows its one model (any other id is
    /// OpenAI's 404 `model_not_found`); an HTTP upstream is asked, its client errors passed
    /// through.
    pub async fn model(&self, id: &str) -> Result<Value, ApiError> {
        match self {
            Upstream::Demo if id == demo::MODEL => Ok(
                json!({"id": demo::MODEL, "object": "model", "created": 0, "owned_by": "tutela-demo"}),
            ),
            Upstream::Demo => Err(ApiError::ModelNotFound(id.to_owned())),
            Upstream::Http(h) => Ok(h
                .client
                .get_json(&format!("/models/{}", path_segment(id)))
                .await?),
        }
    }

    /// Sends a chat completion request. `raw` is the client's body, forwarded as it came when
    /// nothing needs changing (saves re-serialising it); `body` is the same body typed (every
    /// field kept) and `chat` what the gateway read of it.
    pub(crate) async fn complete(
        &self,
        body: &ChatCompletionRequest,
        raw: Bytes,
        chat: &ChatRequest,
        turn_no: usize,
        now: tutela_types::Timestamp,
    ) -> Result<UpstreamReply, ApiError> {
        match self {
            Upstream::Demo => Ok(demo::reply(chat, turn_no, now)),
            Upstream::Http(h) => {
                let body = match &h.model {
                    // The configured model for a request that names none.
                    Some(m) if body.model.is_none() => {
                        let mut body = body.clone();
                        body.model = Some(m.clone());
                        Bytes::from(
                            serde_json::to_vec(&body)
                                .map_err(|e| ApiError::Internal(e.to_string()))?,
                        )
                    }
                    _ => raw,
                };
                let resp = h.client.post("/chat/completions", body).await?;
                if !chat.stream {
                    return Ok(UpstreamReply::Json(h.client.json_body(resp).await?));
                }
                Ok(UpstreamReply::Stream(crate::answer::typed(
                    h.client.chunks(resp),
                )))
            }
        }
    }
}

/// `id` as one URL path segment: unreserved characters as they are, every other byte
/// percent-encoded.
fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    /// Each way the client classifies a failed call, as the app sees it: a client error passed
    /// through with its status, 502 for a broken or refusing upstream, 503 for a busy one, 504
    /// for a silent one.
    #[test]
    fn every_wire_error_has_the_gateways_status() {
        let body = json!({"error": {"message": "no such model", "code": "model_not_found"}});
        let cases = [
            (
                WireError::Rejected {
                    status: 404,
                    message: "no such model".into(),
                    body: Some(body.clone()),
                    retry_after: None,
                },
                StatusCode::NOT_FOUND,
            ),
            (
                WireError::Rejected {
                    status: 429,
                    message: "slow down".into(),
                    body: None,
                    retry_after: Some("2".into()),
                },
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (
                WireError::Status {
                    status: 500,
                    message: "boom".into(),
                },
                StatusCode::BAD_GATEWAY,
            ),
            (
                WireError::Status {
                    status: 401,
                    message: "our key".into(),
                },
                StatusCode::BAD_GATEWAY,
            ),
            (
                WireError::Status {
                    status: 503,
                    message: "busy".into(),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                WireError::Unreachable("connection refused".into()),
                StatusCode::BAD_GATEWAY,
            ),
            (
                WireError::Timeout("no answer".into()),
                StatusCode::GATEWAY_TIMEOUT,
            ),
            (
                WireError::Invalid("not json".into()),
                StatusCode::BAD_GATEWAY,
            ),
        ];
        for (wire, status) in cases {
            let shown = format!("{wire:?}");
            let e = ApiError::from(wire);
            assert_eq!(e.status(), status, "{shown}");
        }
        let e = ApiError::from(WireError::Rejected {
            status: 404,
            message: "no such model".into(),
            body: Some(body.clone()),
            retry_after: None,
        });
        assert_eq!(e.body(), body);
    }
}
