//! tutela's gateway: an OpenAI-compatible proxy that carries the duties of the engine through
//! every turn (product.md C1, C4, C5, C6).
//!
//! ```text
//! request → identity, jurisdiction → user-side detectors → engine → side effects (escalation,
//!   outbox, counters, durable audit) → template, human, or the model → assistant-side
//!   detectors (hold-back window for streams) → engine → labels, notices → reply
//! ```
//!
//! Entry points: [`app`] builds the router from an [`AppState`]; [`build`] assembles the state
//! from a [`Config`] (store, detectors, profiles, upstream).
//!
//! Invariants: a reply the engine blocks is never written to the client (streams included);
//! an intervention's audit record is committed before its reply leaves; a normal turn never
//! waits for the disk; chat text is never logged at info level.

#![warn(unreachable_pub)]

mod admin;
mod answer;
pub mod auth;
mod case_context;
mod chat;
pub mod clock;
pub mod compliance;
pub mod config;
mod demo;
pub mod duties;
mod encoder;
pub mod engines;
mod error;
mod held;
mod keys;
mod labels;
mod limits;
mod metrics;
mod outbox;
mod page;
pub mod records;
mod responses;
pub mod scan;
mod shared;
pub mod state;
mod takeover;
pub mod test_traffic;
pub mod texts;
mod upstream;

/// The OpenAI request format as the gateway reads it (`tutela_openai::request`).
use tutela_openai::request as openai;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::config::{Config, ConfigError, ConfigErrors, Env, ProcessEnv};
pub use crate::error::{ApiError, ErrorSource};
pub use crate::held::Backoff as HeldBackoff;
pub use crate::records::WriteFault;
pub use crate::state::AppState;

/// The router.
pub fn app(state: AppState) -> Router {
    // The app's own channel: the app key is checked before the request is read.
    let app_channel = Router::new()
        .route("/v1/tutela/replies", get(replies))
        .route("/v1/tutela/replies/ack", post(ack_replies))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_app,
        ));
    // The staff API: the admin token is checked before the request (path, query, body) is read.
    let staff = Router::new()
        .route("/admin/escalations", get(admin::list_escalations))
        .route("/admin/escalations/{id}", get(admin::show_escalation))
        .route("/admin/escalations/{id}/claim", post(admin::claim))
        .route("/admin/escalations/{id}/reply", post(admin::reply))
        .route("/admin/escalations/{id}/resolve", post(admin::resolve))
        .route(
            "/admin/users/{id}",
            get(admin::get_user).patch(admin::update_user),
        )
        .route("/admin/users/{id}/follow-up", post(admin::follow_up))
        .route("/admin/users/{id}/export", get(compliance::export_user))
        .route("/admin/users/{id}/data", delete(compliance::delete_user))
        .route("/admin/usage", get(compliance::usage))
        .route(
            "/admin/obligations",
            get(compliance::list_obligations).post(compliance::declare),
        )
        .route("/admin/obligations/{id}/close", post(compliance::close))
        .route("/admin/reports/{kind}", get(compliance::report))
        .route("/admin/complaints", get(compliance::list_complaints))
        .route(
            "/admin/complaints/{id}/resolve",
            post(compliance::resolve_complaint),
        )
        .route("/admin/audit", get(admin::audit))
        .route("/admin/audit/verify", get(admin::verify))
        .route("/admin/test-key", get(test_traffic::admin_key))
        .route("/admin/app-key", get(auth::admin_app_key))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    Router::new()
        .route("/v1/chat/completions", post(chat::completions))
        .route("/v1/responses", post(responses::create))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .merge(app_channel)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(page::index))
        .merge(staff)
        .route(
            "/v1/tutela/complaints",
            post(compliance::file_complaint).layer(axum::extract::DefaultBodyLimit::max(
                state.config.complaints.max_body_bytes,
            )),
        )
        .fallback(unknown_url)
        .layer(axum::middleware::from_fn(error::openai_errors))
        .with_state(state)
}

async fn models(State(st): State<AppState>) -> Result<Response, ApiError> {
    let v = st.upstream.models().await?;
    Ok(axum::Json(v).into_response())
}

/// `GET /v1/models/{id}` (the SDKs' `models.retrieve`).
async fn model(
    State(st): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let v = st.upstream.model(&id).await?;
    Ok(axum::Json(v).into_response())
}

/// Any other path: OpenAI's 404 for an unknown URL (the error middleware words it).
async fn unknown_url() -> StatusCode {
    StatusCode::NOT_FOUND
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store answers, its writes succeed and nothing is held (while writes fail,
/// records, side effects and case messages are held and retried, and a load balancer should
/// send traffic elsewhere). The encoder tier is optional: the body says whether it runs and,
/// if not, why.
async fn readyz(State(st): State<AppState>) -> Response {
    let health = st.records.health();
    let held = st.held.counts();
    if health.failing || held.side_effects + held.case_messages > 0 {
        let mut body = String::from("not ready\n");
        if health.failing {
            body.push_str(&format!(
                "store: writes failing; {} records held in memory and retried: {}\n",
                health.pending,
                health.last_error.unwrap_or_default()
            ));
        }
        if held.side_effects + held.case_messages > 0 {
            body.push_str(&format!(
                "held: {} intervention side effects and {} case messages not written yet, retried until they are\n",
                held.side_effects, held.case_messages
            ));
        }
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    }
    match st.records.backend.active_escalation_count().await {
        Ok(_) => {
            let t = st.scanner.tiers();
            let why = t.encoder_missing.as_deref().unwrap_or("not attached");
            let encoder = match (t.encoder_user, t.encoder_assistant) {
                (true, true) => "on".to_owned(),
                (true, false) => format!("on for the user side only (assistant side: {why})"),
                (false, true) => format!("on for the assistant side only (user side: {why})"),
                (false, false) => format!("off ({why})"),
            };
            let body = format!("ready\ntiers: {}\nencoder: {encoder}\n", t.describe());
            (StatusCode::OK, body).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")).into_response(),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    let open = st
        .records
        .backend
        .active_escalation_count()
        .await
        .unwrap_or(0);
    let (users, waiters) = st.memory_sizes();
    let mut text = st.metrics.render(
        open,
        &st.records.health(),
        &st.records.write_gate(),
        &st.held.counts(),
    );
    let _ = std::fmt::Write::write_fmt(
        &mut text,
        format_args!(
            "# HELP tutela_cached_users Users whose engine inputs are cached (idle ones dropped past the idle reset).\n# TYPE tutela_cached_users gauge\ntutela_cached_users {users}\n# HELP tutela_takeover_waiters Takeover notifiers in memory (dropped when nobody waits).\n# TYPE tutela_takeover_waiters gauge\ntutela_takeover_waiters {waiters}\n"
        ),
    );
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// `?user=ID&after=ID&wait=SECS`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepliesQuery {
    user: String,
    /// Only replies with a larger id (the app's cursor).
    after: Option<i64>,
    wait: Option<u64>,
}

/// `GET /v1/tutela/replies` (app key): the human replies to a user not yet delivered, oldest
/// first, long-polled (`wait`, 25 s by default, at most 60). Reading delivers nothing: the
/// person's next chat turn still brings them, unless the app acknowledges that it showed them
/// (`POST /v1/tutela/replies/ack`).
async fn replies(
    State(st): State<AppState>,
    Query(q): Query<RepliesQuery>,
) -> Result<Response, ApiError> {
    let after = q.after.unwrap_or(0);
    let waiter = st.waiter(&q.user);
    let notified = waiter.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let mut list = takeover::pending_replies(&st, &q.user, after).await?;
    if list.is_empty() {
        // A wake-up that brings no reply (an event about the user from another instance, a
        // resolve) does not end the poll: it waits on until a reply or its time is up.
        let wait = std::time::Duration::from_secs(q.wait.unwrap_or(25).min(60));
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            let woken = tokio::select! {
                () = &mut deadline => false,
                () = &mut notified => true,
            };
            // Armed before the read, so a wake-up between the read and the wait is kept.
            notified.set(waiter.notified());
            notified.as_mut().enable();
            list = takeover::pending_replies(&st, &q.user, after).await?;
            if !woken || !list.is_empty() {
                break;
            }
        }
    }
    let replies: Vec<serde_json::Value> = list
        .iter()
        .map(|m| json!({"id": m.id, "case": m.escalation_id, "text": m.body, "at": m.at}))
        .collect();
    Ok(axum::Json(json!({"replies": replies, "author": "human"})).into_response())
}

/// Body of `POST /v1/tutela/replies/ack`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    user: String,
    /// The id of the last reply the app showed; it and every earlier one count as delivered.
    through: i64,
}

/// `POST /v1/tutela/replies/ack` (app key): the app showed the person these replies, so their
/// next chat turn does not repeat them.
async fn ack_replies(
    State(st): State<AppState>,
    axum::Json(body): axum::Json<AckBody>,
) -> Result<Response, ApiError> {
    let n = takeover::acknowledge_replies(&st, &body.user, body.through, st.clock.now()).await?;
    Ok(axum::Json(json!({"acknowledged": n})).into_response())
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The store could not be opened.
    #[error("cannot open the store at `{path}`: {source}")]
    Store {
        /// The database (a path, or a URL without its password).
        path: String,
        /// Why.
        source: tutela_store::StoreError,
    },
    /// `[store] spill_dir` cannot be used.
    #[error("store.spill_dir: {0}")]
    Spill(#[from] tutela_store::SpillError),
    /// The built-in profiles do not load.
    #[error("profiles: {0}")]
    Profiles(String),
    /// The detectors do not compile.
    #[error("detectors: {0}")]
    Detectors(String),
    /// No admin token is configured and none can be drawn from the OS's secure generator.
    #[error(
        "cannot generate an admin token securely ({0}); set one in the environment (at least 16 characters)"
    )]
    Token(String),
    /// Upstream client or default jurisdictions.
    #[error("{0}")]
    Api(#[from] ApiError),
}

/// Optional replacements for the parts `build` would make itself.
#[derive(Default)]
pub struct Parts {
    /// A clock (tests); the system clock otherwise.
    pub clock: Option<Arc<dyn Clock>>,
    /// Detectors (`tutela serve` passes the built-in detectors with the learned tiers it
    /// loaded; tests pass fakes); the built-in detectors alone otherwise.
    pub scanner: Option<Arc<dyn scan::Scanner>>,
    /// The engine (tests); the built-in profiles otherwise.
    pub policy: Option<Arc<dyn duties::Policy>>,
    /// Wraps the audit log the writer appends to (fault tests: a log that fails like a full
    /// disk); the store itself otherwise.
    pub audit_log: Option<AuditLogWrap>,
    /// While broken, the writes of an intervention's side effects and of a person's messages
    /// to their case fail as on a full disk (fault tests); never set otherwise.
    pub write_fault: Option<Arc<WriteFault>>,
    /// The held writes' retry backoff (tests: a short one, so an outage of many attempts
    /// passes in a moment); 250 ms doubling to 5 s otherwise.
    pub held_backoff: Option<HeldBackoff>,
}

/// See [`Parts::audit_log`].
pub type AuditLogWrap =
    Box<dyn FnOnce(Arc<dyn tutela_store::AuditLog>) -> Arc<dyn tutela_store::AuditLog> + Send>;

/// Assembles the gateway from a configuration: opens the store (`:memory:` for a throwaway
/// one), compiles detectors and profiles, builds the upstream client, starts the writer and the
/// outbox worker and the retry worker of held writes. Returns the state.
pub async fn build(config: Config, parts: Parts) -> Result<AppState, BuildError> {
    let store =
        tutela_store::Database::open(&config.database, tutela_store::StoreOptions::default())
            .await
            .map_err(|source| BuildError::Store {
                path: config.shown_database(),
                source,
            })?;
    let log: Arc<dyn tutela_store::AuditLog> = store.backend();
    let log = match parts.audit_log {
        Some(wrap) => wrap(log),
        None => log,
    };
    let spill = match &config.spill_dir {
        Some(dir) => Some(tutela_store::SpillDir::open(dir)?),
        None => None,
    };
    let mut records = records::Records::start_with_spill(store, log, spill);
    records.write_fault = parts.write_fault;
    let scanner: Arc<dyn scan::Scanner> = match parts.scanner {
        Some(s) => s,
        #[cfg(feature = "detect")]
        None => {
            let detectors = tutela_detect::Detectors::try_builtin()
                .map_err(|e| BuildError::Detectors(e.to_string()))?;
            // Build the user side and the quick-pass automata now, so the first requests do
            // not wait for them.
            detectors.prepare();
            Arc::new(engines::BuiltinScanner::new(detectors, None))
        }
        #[cfg(not(feature = "detect"))]
        None => Arc::new(scan::NoScanner),
    };
    let policy: Arc<dyn duties::Policy> = match parts.policy {
        Some(p) => p,
        None => Arc::new(engines::Engine {
            registry: tutela_profile::Registry::builtin()
                .map_err(|e| BuildError::Profiles(e.to_string()))?,
            options: tutela_policy::EngineOptions {
                idle_reset_minutes: config.idle_reset_minutes,
                persistent_ai_disclosure: config.persistent_ai_disclosure,
            },
        }),
    };
    let clock: Arc<dyn Clock> = parts.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let upstream = upstream::Upstream::new(&config.upstream)?;
    let token = match &config.admin_token {
        Some(t) => t.clone(),
        None => clock::random_token().map_err(|e| BuildError::Token(e.to_string()))?,
    };
    let state = AppState::new(config, upstream, scanner, policy, records, clock, token)?;
    // Side effects an earlier process held in the spill directory are held again, first.
    chat::replay_held_side_effects(&state);
    // The one retry worker of held writes (side effects, case messages).
    let worker = state.clone();
    let backoff = parts.held_backoff.unwrap_or_default();
    tokio::spawn(async move { worker.held.run(&worker, backoff).await });
    tokio::spawn(outbox::run(state.clone()));
    tokio::spawn(compliance::watch_thresholds(state.clone()));
    if state.records.shared() {
        tokio::spawn(shared::run(state.clone()));
    }
    Ok(state)
}
