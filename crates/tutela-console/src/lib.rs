//! The operator console of tutela (issue 14): trust & safety staff take over a crisis, and
//! supervisors and compliance see who holds what. Served by `tutela serve` at `/console`, in
//! the one binary: [`router`] gives the routes, which the CLI merges beside the gateway's.
//!
//! - `auth`: staff sign-in (argon2id, rate-limited), session cookies, the form token on every
//!   state-changing request, idle expiry, sign-out; the guard in front of every route.
//! - `perm`: what each role (agent, supervisor, compliance, admin) may do, one table.
//! - `queue`: the live queue (server-sent events), sorted by what the findings say (imminent plan
//!   or means > ideation > distress > third party) and age, with an SLA clock per case.
//! - `case`: the case view (the triggering message and the turns before it, findings with their
//!   spans marked, age state, jurisdictions, contacts and notifications, help lines) and its
//!   actions: claim, reply (quick templates in the person's language), hand over, put back,
//!   resolve with a note and an outcome; live (server-sent events: the person's messages arrive
//!   without a reload).
//! - `users`: user lookup, export and deletion with a confirmation.
//! - `compliance`: the reports (view, download), obligation records, the complaints queue with
//!   due times, audit verify with the head to keep.
//!
//! Server-rendered HTML (maud: templates are Rust, checked and escaped at compile time, no
//! template files or Node toolchain); one small script and one stylesheet embedded in the binary
//! (`assets/`); a strict Content-Security-Policy with no inline script; English and Chinese.
//!
//! Invariants: every console route but sign-in, the language switch and the assets sits behind
//! the guard; every staff action is in the audit log with the staff id; chat text is never
//! logged and never enters the audit log.

#![allow(
    clippy::result_large_err,
    reason = "handlers' early exits carry the finished refusal page; one per refused request"
)]

pub mod accounts;
mod assets;
pub mod auth;
mod case;
mod compliance;
pub mod i18n;
pub mod layout;
pub mod perm;
mod queue;
mod signal;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use tutela_gateway::AppState;

use crate::perm::Perm;
pub use crate::signal::Signal;

/// The console's state: the gateway's and the sign-in limiter. Staff changing a case ring the
/// gateway's bell (`AppState::queue_changed`, heard by every instance of a shared database),
/// so the queue's event streams look at once instead of at their next tick.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

/// What [`Console`] holds.
pub struct Inner {
    /// The gateway's state (store, clock, configuration).
    pub app: AppState,
    limiter: auth::Limiter,
}

impl std::ops::Deref for Console {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Console {
    /// Rings the bell: the queue changed (here and on every instance of a shared database).
    fn changed(&self) {
        self.app.queue_changed();
    }
}

/// The console's routes, to merge beside `tutela_gateway::app`. Starts the retention task for
/// the turns kept with resolved cases (must be called inside a tokio runtime).
pub fn router(app: AppState) -> Router {
    let cs = Console(Arc::new(Inner {
        app,
        limiter: auth::Limiter::default(),
    }));
    tokio::spawn(case::retention(cs.clone()));
    let need = |perm: Perm| from_fn(move |req, next| auth::check(perm, req, next));
    let guarded = Router::new()
        .route(
            "/console",
            get(queue::page).route_layer(need(Perm::ViewCases)),
        )
        .route(
            "/console/events",
            get(queue::events).route_layer(need(Perm::ViewCases)),
        )
        .route(
            "/console/cases/{id}",
            get(case::page).route_layer(need(Perm::ViewCases)),
        )
        .route(
            "/console/cases/{id}/events",
            get(case::events).route_layer(need(Perm::ViewCases)),
        )
        .route(
            "/console/cases/{id}/claim",
            post(case::claim).route_layer(need(Perm::ActOnCases)),
        )
        .route(
            "/console/cases/{id}/reply",
            post(case::reply).route_layer(need(Perm::ActOnCases)),
        )
        .route(
            "/console/cases/{id}/assign",
            post(case::assign).route_layer(need(Perm::ActOnCases)),
        )
        .route(
            "/console/cases/{id}/release",
            post(case::release).route_layer(need(Perm::ActOnCases)),
        )
        .route(
            "/console/cases/{id}/resolve",
            post(case::resolve).route_layer(need(Perm::ActOnCases)),
        )
        .route(
            "/console/users",
            get(users::lookup).route_layer(need(Perm::LookUpUsers)),
        )
        .route(
            "/console/users/{id}/export",
            post(users::export).route_layer(need(Perm::LookUpUsers)),
        )
        .route(
            "/console/users/{id}/delete",
            post(users::delete).route_layer(need(Perm::DeleteUserData)),
        )
        .route(
            "/console/compliance",
            get(compliance::overview).route_layer(need(Perm::Compliance)),
        )
        .route(
            "/console/reports/{id}",
            get(compliance::report).route_layer(need(Perm::Compliance)),
        )
        .route(
            "/console/audit",
            get(compliance::audit).route_layer(need(Perm::Compliance)),
        )
        .route(
            "/console/complaints/{id}/resolve",
            post(compliance::resolve_complaint).route_layer(need(Perm::Compliance)),
        )
        .route(
            "/console/obligations",
            post(compliance::declare).route_layer(need(Perm::Compliance)),
        )
        .route(
            "/console/obligations/{id}/close",
            post(compliance::close_obligation).route_layer(need(Perm::Compliance)),
        )
        .route("/console/logout", post(auth::logout))
        .route_layer(from_fn_with_state(cs.clone(), auth::guard));
    Router::new()
        .merge(guarded)
        .route("/console/", get(|| async { auth::redirect("/console") }))
        .route("/console/login", get(auth::login_page).post(auth::login))
        .route("/console/lang", get(auth::switch_lang))
        .route("/console/assets/{file}", get(assets::serve))
        .with_state(cs)
}

/// Every console route that needs a session, as `(method, path, permission)` with `{id}` for a
/// case or user id; `None`: any signed-in staff member. The router checks the permission before
/// it reads a body; the role and CSRF tests walk this list, so a route added to the router and
/// not here goes untested.
pub const GUARDED_ROUTES: &[(&str, &str, Option<Perm>)] = &[
    ("GET", "/console", Some(Perm::ViewCases)),
    ("GET", "/console/events", Some(Perm::ViewCases)),
    ("GET", "/console/cases/{id}", Some(Perm::ViewCases)),
    ("GET", "/console/cases/{id}/events", Some(Perm::ViewCases)),
    ("POST", "/console/cases/{id}/claim", Some(Perm::ActOnCases)),
    ("POST", "/console/cases/{id}/reply", Some(Perm::ActOnCases)),
    ("POST", "/console/cases/{id}/assign", Some(Perm::ActOnCases)),
    (
        "POST",
        "/console/cases/{id}/release",
        Some(Perm::ActOnCases),
    ),
    (
        "POST",
        "/console/cases/{id}/resolve",
        Some(Perm::ActOnCases),
    ),
    ("GET", "/console/users", Some(Perm::LookUpUsers)),
    (
        "POST",
        "/console/users/{id}/export",
        Some(Perm::LookUpUsers),
    ),
    (
        "POST",
        "/console/users/{id}/delete",
        Some(Perm::DeleteUserData),
    ),
    ("GET", "/console/compliance", Some(Perm::Compliance)),
    ("GET", "/console/reports/{id}", Some(Perm::Compliance)),
    ("GET", "/console/audit", Some(Perm::Compliance)),
    (
        "POST",
        "/console/complaints/{id}/resolve",
        Some(Perm::Compliance),
    ),
    ("POST", "/console/obligations", Some(Perm::Compliance)),
    (
        "POST",
        "/console/obligations/{id}/close",
        Some(Perm::Compliance),
    ),
    ("POST", "/console/logout", None),
];
