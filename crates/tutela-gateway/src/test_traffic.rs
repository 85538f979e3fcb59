//! Test traffic: turns an operator marks as tests (`tutela assess`, probes, load runs) with
//! the deployment's test key in `X-Tutela-Test-Key`. They run the whole turn (detectors,
//! engine, templates, the model, the reply checks), so a test sees what a person would, but
//! they never open a case, notify a contact, count as a user or toward MAU, add to a report's
//! counters, or enter the staff queue: the audit log records them as `test`, and one counter
//! (`test_turn`) lets every report say how many it left out.
//!
//! The key is derived from the admin token, so only staff can mint it
//! (`GET /admin/test-key`, or `tutela assess`, which derives it from `TUTELA_ADMIN_TOKEN`).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// The request header that marks a turn as a test.
pub const HEADER: &str = "x-tutela-test-key";

pub use crate::keys::test_key_for as key_for;

/// Whether the request is marked as a test; a wrong key is an error (a probe that meant to be
/// a test must not be counted as a person).
pub(crate) fn is_test(st: &AppState, headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(given) = headers.get(HEADER) else {
        return Ok(false);
    };
    let given = given.to_str().unwrap_or("").trim();
    if crate::keys::token_matches(&key_for(&st.admin_token), given) {
        Ok(true)
    } else {
        Err(ApiError::InvalidTestKey)
    }
}

/// `GET /admin/test-key`: the deployment's test key, for staff.
pub(crate) async fn admin_key(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    crate::auth::authorize(&st, &headers)?;
    Ok(Json(json!({
        "key": key_for(&st.admin_token),
        "header": "X-Tutela-Test-Key",
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_depends_on_the_admin_token_only() {
        assert_eq!(key_for("a"), key_for("a"));
        assert_ne!(key_for("a"), key_for("b"));
        assert!(key_for("a").starts_with("tt_"));
        assert_eq!(key_for("a").len(), 43);
    }
}
