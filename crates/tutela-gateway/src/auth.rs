//! Who may call what. Staff hold the admin token (`/admin/...`); the app's own server holds
//! the app key (its channel, `/v1/tutela/replies`: what the crisis team wrote to a person);
//! the person's client holds neither and reaches only the chat endpoints. Every token is
//! compared in constant time ([`token_matches`]).
//!
//! The app key comes from the variable `[app] key_env` names (`TUTELA_APP_KEY` by default);
//! without it, it is derived from the admin token ([`app_key_for`]) and staff read it at
//! `GET /admin/app-key`, as they read the test key.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;
use crate::state::AppState;

/// Whether `given` is the token `want`, in time that depends on neither (both are hashed to
/// 32 bytes first, then compared with `subtle`). An empty `want` matches nothing.
pub fn token_matches(want: &str, given: &str) -> bool {
    if want.is_empty() {
        return false;
    }
    let want = Sha256::digest(want.as_bytes());
    let given = Sha256::digest(given.as_bytes());
    bool::from(want.as_slice().ct_eq(given.as_slice()))
}

/// The token of `Authorization: Bearer <token>`, or `""`.
pub fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// The app key of a deployment whose admin token is `admin_token`, when none is configured.
pub fn app_key_for(admin_token: &str) -> String {
    let digest = Sha256::digest(format!("tutela app key\n{admin_token}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("ak_{}", &hex[..40])
}

/// Checks the app key in `Authorization: Bearer`.
pub fn authorize_app(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if token_matches(&st.app_key, bearer(headers)) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Route layer of the app's channel: the key is checked before anything of the request (query,
/// body) is read.
pub async fn require_app(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match authorize_app(&st, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Route layer of the staff API: the admin token is checked before anything of the request
/// (path, query, body) is read, so an unauthenticated caller learns nothing about them (401,
/// never 400 or 422). The handlers check it again (a handler moved out of the layer stays shut).
pub async fn require_admin(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match crate::admin::authorize(&st, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// `GET /admin/app-key`: the deployment's app key, for staff to configure the app's server.
pub async fn admin_app_key(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    crate::admin::authorize(&st, &headers)?;
    Ok(Json(json!({
        "key": st.app_key,
        "header": "Authorization: Bearer",
        "source": match &st.config.app_key {
            Some(_) => format!("the variable {}", st.config.app_key_env),
            None => "derived from the admin token".to_owned(),
        },
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves() {
        assert!(token_matches("0123456789abcdef", "0123456789abcdef"));
        assert!(!token_matches("0123456789abcdef", "0123456789abcdeg"));
        assert!(!token_matches("0123456789abcdef", "0123456789abcde"));
        assert!(!token_matches("0123456789abcdef", ""));
        assert!(!token_matches("", ""));
        for k in [1, 255, 256, 512] {
            let longer = format!("0123456789abcdef{}", "A".repeat(k));
            assert!(!token_matches("0123456789abcdef", &longer), "+{k} bytes");
        }
    }

    #[test]
    fn the_app_key_depends_on_the_admin_token_and_is_not_it() {
        assert_eq!(app_key_for("a"), app_key_for("a"));
        assert_ne!(app_key_for("a"), app_key_for("b"));
        assert_ne!(app_key_for("a"), crate::test_traffic::key_for("a"));
        assert!(app_key_for("a").starts_with("ak_"));
    }
}
