//! Phase 5 of a turn, the author: tutela's template (the engine replaced the reply), or the
//! model (`upstream`, or the scripted `demo`; asked through `model::ModelCall`, perhaps
//! early), whose answer goes to the assistant side. A human's reply during takeover is
//! `human`'s.

use std::sync::atomic::Ordering;

use axum::response::Response;

use crate::clock::Stopwatch;
use crate::error::ApiError;
use crate::upstream::UpstreamReply;

use super::context::{Author, TurnCtx};
use super::model::ModelCall;
use super::{present, relay, whole};

/// Writes the turn's reply: tutela's `template` when the engine replaced it (the model's
/// answer, if it was asked, dropped unread: not a byte of it reaches the client), else the
/// model's, checked whole or streamed.
pub(crate) async fn answer(
    ctx: TurnCtx,
    template: Option<String>,
    model: ModelCall<'_>,
    sw: Stopwatch,
) -> Result<Response, ApiError> {
    let st = ctx.st.clone();
    let stream = model.stream();
    if let Some(text) = template {
        drop(model);
        st.metrics.added_latency.observe(sw.secs());
        return Ok(present::reply(&ctx, text, Author::Tutela, stream, None).await);
    }
    let (answer, up_secs) = model.answer().await;
    st.metrics.upstream_latency.observe(up_secs);
    match answer? {
        UpstreamReply::Json(v) => {
            let resp = whole::reply(&ctx, v).await?;
            st.metrics
                .added_latency
                .observe((sw.secs() - up_secs).max(0.0));
            Ok(resp)
        }
        UpstreamReply::Stream(events) => {
            st.metrics
                .added_latency
                .observe((sw.secs() - up_secs).max(0.0));
            st.metrics.streams.fetch_add(1, Ordering::Relaxed);
            Ok(relay::start(ctx, events))
        }
    }
}
