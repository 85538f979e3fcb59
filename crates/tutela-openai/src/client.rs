//! One HTTP client for OpenAI-compatible endpoints: pooled, the API key as a bearer token,
//! a connect timeout and a whole-answer timeout, extra headers, and every failure classified
//! as a [`WireError`].

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::error::WireError;

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

    /// `GET path`, a whole JSON answer.
    pub async fn get_json(&self, path: &str) -> Result<Value, WireError> {
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

    /// `POST path` with a JSON body, a whole JSON answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, WireError> {
        let bytes = serde_json::to_vec(body).map_err(|e| WireError::Invalid(e.to_string()))?;
        let resp = self.post(path, Bytes::from(bytes)).await?;
        self.json_body(resp).await
    }

    /// Reads a whole JSON body within the timeout.
    pub async fn json_body(&self, resp: reqwest::Response) -> Result<Value, WireError> {
        let body = tokio::time::timeout(self.timeout, resp.bytes())
            .await
            .map_err(|_| self.timed_out("the body did not arrive"))?
            .map_err(WireError::from_reqwest)?;
        serde_json::from_slice(&body).map_err(|e| WireError::Invalid(e.to_string()))
    }

    fn timed_out(&self, what: &str) -> WireError {
        WireError::Timeout(format!("{what} within {} ms", self.timeout.as_millis()))
    }
}

/// The text of a chat completion's first choice (`choices[0].message.content`).
pub fn first_content(completion: &Value) -> Option<&str> {
    completion
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_completions_url_is_cut_back_to_its_base() {
        let c = Client::new(
            "http://127.0.0.1:1/v1/chat/completions",
            None,
            ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(
            c.url("/chat/completions"),
            "http://127.0.0.1:1/v1/chat/completions"
        );
        let c = Client::new("http://127.0.0.1:1/v1/", None, ClientOptions::default()).unwrap();
        assert_eq!(c.url("/models"), "http://127.0.0.1:1/v1/models");
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable_and_retryable() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", free.local_addr().unwrap());
        drop(free);
        let c = Client::new(&url, None, ClientOptions::default()).unwrap();
        let e = c.get_json("/models").await.unwrap_err();
        assert!(matches!(e, WireError::Unreachable(_)), "{e:?}");
        assert!(e.retryable());
    }
}
