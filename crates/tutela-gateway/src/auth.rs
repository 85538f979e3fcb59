//! Who may call what. Staff hold the admin token (`/admin/...`); the app's own server holds
//! the app key (its channel, `/v1/tutela/replies`: what the crisis team wrote to a person);
//! the person's client holds neither and reaches only the chat endpoints. Every token is
//! compared in constant time (`keys::token_matches`).
//!
//! The app key comes from the variable `[app] key_env` names (`TUTELA_APP_KEY` by default);
//! without it, it is derived from the admin token (`keys::app_key_for`) and staff read it at
//! `GET /admin/app-key`, as they read the test key.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::keys::{bearer, token_matches};
use crate::state::AppState;

pub use crate::keys::app_key_for;

/// Checks the admin token in `Authorization: Bearer <token>`, in constant time
/// ([`token_matches`]).
pub(crate) fn authorize(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if token_matches(&st.admin_token, bearer(headers)) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Checks the app key in `Authorization: Bearer`.
pub(crate) fn authorize_app(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if token_matches(&st.app_key, bearer(headers)) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Route layer of the app's channel: the key is checked before anything of the request (query,
/// body) is read.
pub(crate) async fn require_app(State(st): State<AppState>, req: Request, next: Next) -> Response {
    match authorize_app(&st, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Route layer of the staff API: the admin token is checked before anything of the request
/// (path, query, body) is read, so an unauthenticated caller learns nothing about them (401,
/// never 400 or 422). The handlers check it again (a handler moved out of the layer stays shut).
pub(crate) async fn require_admin(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match authorize(&st, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// `GET /admin/app-key`: the deployment's app key, for staff to configure the app's server.
pub(crate) async fn admin_app_key(
    State(st): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
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
