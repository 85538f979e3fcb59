//! The model's side of a turn: not asked yet, asked and pending, or answered early. The user
//! side may ask the model while the encoder tier still decides ([`ModelCall::start`],
//! [`ModelCall::race`]); the answer is read only after that decision (`author`), and
//! dropped unread (its connection closed) when the decision is a template.

use std::future::Future;
use std::pin::Pin;

use tutela_types::Timestamp;

use crate::clock::Stopwatch;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::UpstreamReply;

use super::request::Request;

type Call<'a> = Pin<Box<dyn Future<Output = Result<UpstreamReply, ApiError>> + Send + 'a>>;

/// The model's side of a turn: not asked yet, asked and pending, or answered early.
pub(crate) struct ModelCall<'a> {
    st: &'a AppState,
    req: &'a Request,
    now: Timestamp,
    /// The user's turn number (the demo varies its replies by it).
    pub(crate) turn_no: usize,
    call: Option<Call<'a>>,
    early: Option<(Result<UpstreamReply, ApiError>, f64)>,
    since: Stopwatch,
}

impl<'a> ModelCall<'a> {
    /// A model call not yet made.
    pub(crate) fn new(st: &'a AppState, req: &'a Request, now: Timestamp) -> Self {
        Self {
            st,
            req,
            now,
            turn_no: 0,
            call: None,
            early: None,
            since: Stopwatch::start(),
        }
    }

    /// Whether the client asked for a stream.
    pub(crate) fn stream(&self) -> bool {
        self.req.chat.stream
    }

    /// Asks the model now; its answer waits until [`ModelCall::answer`].
    pub(crate) fn start(&mut self) {
        self.since = Stopwatch::start();
        self.call = Some(self.ask());
    }

    fn ask(&self) -> Call<'a> {
        let (st, req) = (self.st, self.req);
        let (turn_no, now) = (self.turn_no, self.now);
        Box::pin(async move {
            st.upstream
                .complete(&req.body, req.raw.clone(), &req.chat, turn_no, now)
                .await
        })
    }

    /// Waits for `other`; an answer of the model that comes first is kept for later. Returns
    /// `other`'s output and how long it was waited for beyond the model's answer.
    pub(crate) async fn race<T>(&mut self, other: impl Future<Output = T>) -> (T, f64) {
        tokio::pin!(other);
        let Some(call) = self.call.as_mut() else {
            let w = Stopwatch::start();
            let o = other.await;
            return (o, w.secs());
        };
        tokio::select! {
            biased;
            o = &mut other => (o, 0.0),
            a = call.as_mut() => {
                self.early = Some((a, self.since.secs()));
                self.call = None;
                let w = Stopwatch::start();
                let o = other.await;
                (o, w.secs())
            }
        }
    }

    /// The model's answer and how long the upstream took: the early one, the pending call's,
    /// or a call made only now (without the encoder, or when the quick tiers chose a template
    /// the full decision did not keep).
    pub(crate) async fn answer(mut self) -> (Result<UpstreamReply, ApiError>, f64) {
        if let Some(a) = self.early.take() {
            return a;
        }
        if self.call.is_none() {
            self.start();
        }
        let Some(call) = self.call.take() else {
            return (Err(ApiError::Internal("no model call".into())), 0.0);
        };
        let a = call.await;
        (a, self.since.secs())
    }
}
