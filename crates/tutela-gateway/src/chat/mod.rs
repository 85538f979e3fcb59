//! One chat turn, end to end, as named phases that read top to bottom in [`turn`]:
//!
//! 1. parse and validate (`request`): the body as OpenAI validates it, the headers;
//! 2. identity and jurisdiction (`identity`): the user's entry under their lock, the profiles;
//!    a case a human has taken over goes to `human` instead;
//! 3. user side (`user_side`): detectors → engine, the encoder tier while the model may
//!    already be asked (`model::ModelCall`);
//! 4. side effects (`effects`): an intervention's durable record, escalation, notifications,
//!    counters, intervention rows; a normal turn's clocks queued;
//! 5. author (`author`): tutela's template, a human (`human`), or the model;
//! 6. assistant side (`verdict`, with `whole` for a whole reply and `relay` for a stream);
//! 7. labels and notices (`present`, on the turn's `context::TurnCtx`);
//! 8. records: an intervention's before its reply leaves (4, 6), a normal turn's one record
//!    once the assistant side is decided (`verdict`), or when the turn ends early
//!    (`context::TurnCtx`'s drop).
//!
//! The modules form no cycle: each phase uses only the ones below it (checked by
//! `tutela-tidy`). Invariant: a reply that the engine blocks never reaches the client, and an
//! intervention's audit record is committed before its reply leaves.

mod author;
mod context;
mod effects;
mod human;
mod identity;
mod model;
mod present;
mod relay;
mod request;
mod user_side;
mod verdict;
mod whole;

pub(crate) use effects::replay_held_side_effects;

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::clock::Stopwatch;
use crate::error::{ApiError, ErrorSource};
use crate::state::AppState;

/// `POST /v1/chat/completions`.
pub(crate) async fn completions(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sw = Stopwatch::start();
    let result = turn(&st, &headers, &body, sw).await;
    let m = &st.metrics;
    match result {
        Ok(resp) => {
            m.requests_ok.fetch_add(1, Ordering::Relaxed);
            resp
        }
        Err(e) => {
            let c = match e.source_kind() {
                ErrorSource::Client => &m.requests_client_err,
                ErrorSource::Upstream => &m.requests_upstream_err,
                ErrorSource::Internal => &m.requests_internal_err,
            };
            c.fetch_add(1, Ordering::Relaxed);
            // Shed turns are counted (`tutela_encoder_shed_total`), not logged one by one.
            if e.source_kind() != ErrorSource::Client && !matches!(e, ApiError::Overloaded(_)) {
                tracing::warn!(
                    source = e.source_kind().as_str(),
                    "chat request failed: {e}"
                );
            }
            e.into_response()
        }
    }
}

/// The turn, phase by phase.
async fn turn(
    st: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    sw: Stopwatch,
) -> Result<Response, ApiError> {
    let now = st.clock.now();
    // 1. Parse and validate; the encoder starts on the message at once.
    let req = request::parse(st, headers, body)?;
    user_side::admit(st, &req)?;
    let encoder = user_side::start_encoder(st, &req);
    // 2. Identity and jurisdiction; a person whose case a human took over talks to them.
    let mut who = identity::resolve(st, &req, now).await?;
    if let Some(active) = identity::takeover_case(st, &mut who).await? {
        return human::turn(st, &req, who, active, now).await;
    }
    let compiled = who.compiled.clone();
    let unread = who.unread.take();
    // 3. User side (the model may be asked while the encoder finishes).
    let mut model = model::ModelCall::new(st, &req, now);
    let mut side = user_side::decide(st, &req, who, encoder, &mut model, now).await?;
    if let Some(e) = unread {
        // The store could not be read for this person: only crisis help goes on (its side
        // effects are held until the store is back); any other turn answers the error.
        if !side.decision.replacement().is_some_and(|(_, help)| help) {
            return Err(e);
        }
        side.unread = true;
    }
    let template = side
        .decision
        .replacement()
        .map(|(t, resources)| present::render_template(st, &compiled, t, resources, req.lang));
    // 4. Side effects and the user side's records.
    let done = effects::user_side(st, &req, &compiled, &mut side, now).await?;
    // 7. Labels and notices, carried into 5 and 6.
    let ctx = present::context(st, &req, &compiled, &side, done, now);
    // 5. Author, 6. assistant side (whole or streamed), 8. the turn's records.
    author::answer(ctx, template, model, sw).await
}
