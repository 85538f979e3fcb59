//! One HTTP client for OpenAI-compatible endpoints: pooled, the API key as a bearer token,
//! a connect timeout and a whole-answer timeout, extra headers, and every failure classified
//! as a [`WireError`]: a client error (4xx) with its status, body and `Retry-After`, a failed
//! or overloaded endpoint (5xx; 401 and 403 of our own key), a refused connection, a timeout,
//! an answer that is not OpenAI's.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::chat::{ChatCompletion, ChatCompletionChunk, ChatCompletionRequest};
use crate::error::WireError;
use crate::sse::{self, Events};

/// How a [`Client`] connects.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// How long a call may take: for a whole answer, the request and its body; for a stream,
    /// until its headers arrive (the events are then timed by [`crate::sse::events`]).
    pub timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(5),
            pool_max_idle_per_host: 256,
        }
    }
}

/// An OpenAI-compatible endpoint (`https://api.openai.com/v1`, a gateway, a local model).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
}

impl Client {
    /// A client for the API base `base_url` (a full `.../chat/completions` URL is accepted
    /// and cut back to its base).
    pub fn new(
        base_url: &str,
        api_key: Option<&str>,
        options: ClientOptions,
    ) -> Result<Self, WireError> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .pool_max_idle_per_host(options.pool_max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| WireError::Unreachable(format!("http client: {e}")))?;
        let base = base_url.trim_end_matches('/');
        let base = base.strip_suffix("/chat/completions").unwrap_or(base);
        Ok(Self {
            http,
            base: base.to_owned(),
            auth: api_key.map(|k| format!("Bearer {k}")),
            headers: Vec::new(),
            timeout: options.timeout,
        })
    }

    /// Sends this header with every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The full URL of `path` (`/chat/completions`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn with_auth(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(a) = &self.auth {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        for (name, value) in &self.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        req
    }

    /// Checks the status of an answer: an error status becomes its [`WireError`], with the
    /// body read within the timeout.
    async fn checked(&self, resp: reqwest::Response) -> Result<reqwest::Response, WireError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = tokio::time::timeout(self.timeout, resp.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        Err(WireError::from_status(status.as_u16(), &body, retry_after))
    }

    /// `GET path`, a whole JSON answer read as a `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, WireError> {
        let req = self.with_auth(self.http.get(self.url(path)));
        let resp = tokio::time::timeout(self.timeout, req.send())
            .await
            .map_err(|_| self.timed_out("no answer"))?
            .map_err(WireError::from_reqwest)?;
        let resp = self.checked(resp).await?;
        self.json_body(resp).await
    }

    /// `POST path` with a JSON body (bytes as they are): the answer once its status is a
    /// success, for the caller to read whole or as a stream.
    pub async fn post(&self, path: &str, body: Bytes) -> Result<reqwest::Response, WireError> {
        let req = self.with_auth(
            self.http
                .post(self.url(path))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body),
        );
        let resp = tokio::time::timeout(self.timeout, req.send())
            .await
            .map_err(|_| self.timed_out("no answer"))?
            .map_err(WireError::from_reqwest)?;
        self.checked(resp).await
    }

    /// `POST path` with a JSON body, a whole JSON answer read as a `T`.
    pub async fn post_json<B, T>(&self, path: &str, body: &B) -> Result<T, WireError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let bytes = serde_json::to_vec(body).map_err(|e| WireError::Invalid(e.to_string()))?;
        let resp = self.post(path, Bytes::from(bytes)).await?;
        self.json_body(resp).await
    }

    /// `POST /chat/completions` without streaming: the whole answer.
    pub async fn chat(&self, req: &ChatCompletionRequest) -> Result<ChatCompletion, WireError> {
        self.post_json("/chat/completions", req).await
    }

    /// Reads a whole JSON body within the timeout, as a `T` (an answer that is not one is
    /// [`WireError::Invalid`]).
    pub async fn json_body<T: DeserializeOwned>(
        &self,
        resp: reqwest::Response,
    ) -> Result<T, WireError> {
        let body = tokio::time::timeout(self.timeout, resp.bytes())
            .await
            .map_err(|_| self.timed_out("the body did not arrive"))?
            .map_err(WireError::from_reqwest)?;
        serde_json::from_slice(&body).map_err(|e| WireError::Invalid(e.to_string()))
    }

    /// The chunks of a streamed chat answer (`resp` from [`Client::post`] of a request with
    /// `stream`), bounded as [`sse::events`] bounds them, each event within the timeout.
    pub fn chunks(&self, resp: reqwest::Response) -> Events<ChatCompletionChunk> {
        let bytes = resp
            .bytes_stream()
            .map(|r| r.map_err(WireError::from_reqwest));
        sse::events(bytes, self.timeout)
    }

    fn timed_out(&self, what: &str) -> WireError {
        WireError::Timeout(format!("{what} within {} ms", self.timeout.as_millis()))
    }
}

#[cfg(test)]
mod tests;
