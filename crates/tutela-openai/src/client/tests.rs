//! The client against a loopback server that answers each way an endpoint fails: every
//! failure classified as the gateway maps it (a client error passed through with its status,
//! body and `Retry-After`; a broken, refusing, busy or silent endpoint), and typed answers.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::chat::{Message, Role};
use crate::sse::Event;

/// A server on 127.0.0.1 that answers every connection with `answer` (a whole HTTP/1.1
/// response), or never answers when it is `None`.
async fn server(answer: Option<String>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                // Read the request head and body (small; one read is enough on loopback,
                // but keep reading until the headers are complete).
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                match answer {
                    Some(a) => {
                        let _ = sock.write_all(a.as_bytes()).await;
                        let _ = sock.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    format!("http://{addr}/v1")
}

fn http(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

fn client(url: &str) -> Client {
    Client::new(
        url,
        Some("sk-test"),
        ClientOptions {
            timeout: Duration::from_millis(500),
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

fn question() -> ChatCompletionRequest {
    ChatCompletionRequest::new(Some("m".into()), vec![Message::text(Role::User, "hi")])
}

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
    let e = c.get_json::<Value>("/models").await.unwrap_err();
    assert!(matches!(e, WireError::Unreachable(_)), "{e:?}");
    assert!(e.retryable());
    let e = c.chat(&question()).await.unwrap_err();
    assert!(matches!(e, WireError::Unreachable(_)), "{e:?}");
}

#[tokio::test]
async fn a_client_error_passes_through_with_its_status_body_and_retry_after() {
    let body = json!({"error": {"message": "The model `x` does not exist", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}});
    let url = server(Some(http("404 Not Found", &[], &body.to_string()))).await;
    let e = client(&url).chat(&question()).await.unwrap_err();
    match &e {
        WireError::Rejected {
            status,
            message,
            body: Some(b),
            retry_after: None,
        } => {
            assert_eq!(*status, 404);
            assert!(message.contains("does not exist"));
            assert_eq!(b, &body);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!e.retryable());
    let limited = json!({"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}});
    let url = server(Some(http(
        "429 Too Many Requests",
        &[("retry-after", "2")],
        &limited.to_string(),
    )))
    .await;
    let e = client(&url).chat(&question()).await.unwrap_err();
    assert!(
        matches!(&e, WireError::Rejected { status: 429, retry_after: Some(r), .. } if r == "2"),
        "{e:?}"
    );
    assert!(e.retryable());
}

#[tokio::test]
async fn a_failed_or_busy_endpoint_is_a_status_and_our_refused_key_is_not_the_callers() {
    for (status, code, retryable) in [
        ("500 Internal Server Error", 500, true),
        ("503 Service Unavailable", 503, true),
        ("401 Unauthorized", 401, false),
    ] {
        let url = server(Some(http(
            status,
            &[],
            "{\"error\": {\"message\": \"no\"}}",
        )))
        .await;
        let e = client(&url).chat(&question()).await.unwrap_err();
        assert!(
            matches!(&e, WireError::Status { status, .. } if *status == code),
            "{status}: {e:?}"
        );
        assert_eq!(e.retryable(), retryable, "{status}");
    }
}

#[tokio::test]
async fn a_silent_endpoint_times_out() {
    let url = server(None).await;
    let e = client(&url).chat(&question()).await.unwrap_err();
    assert!(matches!(e, WireError::Timeout(_)), "{e:?}");
    assert!(e.retryable());
}

#[tokio::test]
async fn an_answer_that_is_not_openais_is_invalid() {
    for body in ["<html>hello</html>", "{\"choices\": \"none\"}"] {
        let url = server(Some(http("200 OK", &[], body))).await;
        let e = client(&url).chat(&question()).await.unwrap_err();
        assert!(matches!(e, WireError::Invalid(_)), "{body}: {e:?}");
        assert!(!e.retryable());
    }
}

#[tokio::test]
async fn a_whole_answer_and_a_stream_are_typed() {
    let answer = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}]});
    let url = server(Some(http("200 OK", &[], &answer.to_string()))).await;
    let c = client(&url);
    let got = c.chat(&question()).await.unwrap();
    assert_eq!(got.first_content(), Some("hello"));

    let stream = "data: {\"choices\": [{\"index\": 0, \"delta\": {\"role\": \"assistant\", \"content\": \"\"}}]}\n\n\
        data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"hel\"}}]}\n\n\
        data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": 5}}]}\n\n\
        data: {\"choices\": [{\"index\": 0, \"delta\": {}, \"finish_reason\": \"stop\"}]}\n\n\
        data: [DONE]\n\n";
    let url = server(Some(http(
        "200 OK",
        &[("content-type", "text/event-stream")],
        stream,
    )))
    .await;
    let c = client(&url);
    let mut req = question();
    req.stream = Some(true);
    let resp = c
        .post(
            "/chat/completions",
            Bytes::from(serde_json::to_vec(&req).unwrap()),
        )
        .await
        .unwrap();
    let mut events = c.chunks(resp);
    let mut seen = Vec::new();
    while let Some(ev) = events.next().await {
        seen.push(match ev.unwrap() {
            Event::Chunk(c) => format!(
                "{}|{}",
                c.delta()
                    .and_then(|d| d.content.clone())
                    .unwrap_or_default(),
                c.choices[0].finish_reason.clone().unwrap_or_default()
            ),
            Event::Malformed => "malformed".into(),
            Event::Done => "done".into(),
        });
    }
    assert_eq!(seen, ["|", "hel|", "malformed", "|stop", "done"]);
}
