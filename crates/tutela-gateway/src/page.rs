//! The page at `/`: plain HTML and JavaScript served from the binary. A newcomer chats with the
//! demo companion through the gateway and sees notices, a crisis reply and the takeover; a
//! minimal staff view shows the escalation queue and links to the operator console (`/console`).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../static/index.html");

/// `GET /`.
pub(crate) async fn index() -> Response {
    let mut r = INDEX.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}
