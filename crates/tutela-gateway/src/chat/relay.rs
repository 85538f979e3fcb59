//! Phase 6 for a stream: the relay, as explicit steps with a per-request context:
//!
//! 1. **open**: headers (with `AIGC`), the first chunk with `tutela.notices` and the label,
//!    and the inline notice;
//! 2. **relay**: each upstream content delta is fed to the streaming detectors and held back;
//!    text is released only once the detectors have finished the sentence it belongs to, *and*
//!    the `streaming.lookahead_sentences` sentences after it (0, 1 or 2; 0 by default), *and*
//!    it lies at least `streaming.hold_back_chars` behind the newest text (0 by default): the
//!    stricter rule wins. With both at 0, a sentence leaves as soon as the detectors have
//!    settled its boundary and checked it, and the reply's first sentence may start to leave
//!    before it ends (`streaming.early_release`, below);
//! 3. **finish**: the last sentence is scanned and decided, the rest released, the final
//!    chunk carries `tutela` (interventions, AIGC), then usage and `[DONE]`;
//! 4. **replace** (instead of 2–3 on a violation): the stream stops, nothing more of the
//!    model's text is sent, a safe replacement follows, and the intervention is recorded
//!    durably before the replacement is sent.
//!
//! What each check needs to read before a sentence may leave (its look-ahead), and so what a
//! sentence costs in time to first token at a model's pace (`load/ttft-pace.sh`):
//!
//! - the sentence boundary (`tutela_detect`'s segmenter): one character past the sentence. A
//!   boundary falls before the first character after a run of terminators (`。！？!?；;….`,
//!   a newline) that is not one, and, when the run ends in a full stop, only if that
//!   character is whitespace (`3.5` and `example.com` continue the sentence); a run may grow
//!   (`?!`, `...`). So the boundary is settled when that character arrives: at most one
//!   upstream chunk after the sentence's last character;
//! - the lexical rules: the finished sentence itself (and the user turn's labels, known before
//!   the stream starts); nothing after it;
//! - the n-gram and encoder tiers: the window the sentence ends (it and up to two sentences
//!   before it), decided when the sentence finishes; nothing after it;
//! - tool-call arguments the app shows to the person: the whole call (held to the end);
//! - `streaming.lookahead_sentences`: that many finished sentences more (0 by default; with
//!   2, every window that includes the sentence is decided; a detector feed that finishes
//!   several sentences at once counts as one, which holds more, never less);
//! - `streaming.hold_back_chars`: that many characters more (0 by default).
//!
//! So, with `early_release = false`, the first text leaves when the first sentence and the
//! character after it have arrived (with a look-ahead of N: the first N + 1 sentences and the
//! character after them, or the end of the stream): 150-200 ms at a model's pace for a
//! 35-character first sentence (`load/results/2026-12-05-ttft-pace.md`).
//!
//! **Early release** (`streaming.early_release`, on by default; only with a look-ahead of 0,
//! and only until the reply's first sentence is finished): a prefix of the unfinished first
//! sentence leaves once the detectors allow it (`tutela_detect::Stream::releasable`): it ends
//! after a space (or `，、：`); it holds no letter or ideograph of a lexical cue
//! whatever follows (the skeleton of the sentence so far holds no cue's skeleton, and the
//! prefix stops before the longest suffix of that skeleton that begins a cue's: a cue that
//! straddles the release point stays held whole); and the learned tiers' window over it is
//! quiet (long enough for the model to judge, and every head under half its n-gram threshold
//! and, with the encoder, under half its gate (the encoder would not be asked) or, the window
//! embedded (off the async worker, as a finished sentence's is), every head's fused
//! probability under half its threshold). So every text that leaves,
//! scanned as the whole reply, gives no finding (property tests in `tutela-detect` and in
//! `reply_policy`), and no letter of a cue a lexical rule fires on ever leaves. A learned
//! tier's score of the finished sentence may still rise with the words still to come (its
//! features are summed over the whole sentence; no prefix is provably past it): when the
//! finished first sentence fires, the words that left early stay with the person, as the
//! sentences before a window that fires do (each was clean on its own). That is the price,
//! measured over the corpus in `load/results/2026-12-07-ttft-early.md`, with the time to
//! first text it saves. Later sentences leave whole: their windows carry the sentences
//! before them, where the harm that only a window shows builds up
//! (`load/results/2026-12-06-window-leak.md`), and the first text is what a person waits for.
//!
//! What a stream stops is the text from the first sentence not yet released when a check
//! fires: the sentences released before it stay with the person, where the whole-reply path
//! replaces them too. With the default look-ahead of 0 that includes the sentences of the very
//! window that fires, when only the window shows the harm (a three-sentence goodbye, each
//! sentence clean alone:
//! `reply_policy::a_window_only_finding_stops_the_stream_after_the_sentences_before_it`); with
//! `streaming.lookahead_sentences = 2` none of a window that fires has left
//! (`reply_policy::with_lookahead_the_window_only_reply_sends_nothing_before_the_replacement`).
//! Over the corpus's harmful replies found (`load/results/2026-12-06-window-leak.md`), the
//! share with sentences released before the first finding is 20 % with 0 (lexical + n-gram;
//! 25 % with the encoder), 1.0 % (1.5 %) with 1 and 0.1 % (0.1 %) with 2 (only harm found on a
//! fourth sentence or later, outside every window that fires), for 150 ms (1) or 350 ms (2)
//! more to the first text of the 200-character reply of `load/ttft-pace.sh` at a model's pace.
//!
//! Invariant: text that the engine blocks is never written to the client: every text written
//! is one the checks pass as it stands (finished sentences, or a prefix of the first sentence
//! that, scanned as the whole reply, gives no finding), and what a check fires on is stopped
//! from the first byte not yet written.

use std::collections::VecDeque;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tutela_openai::ChatCompletionChunk;
use tutela_openai::chat::{Delta, ToolCallDelta, Usage, assemble_calls};
use tutela_types::{Finding, Side};

use crate::error::ApiError;
use crate::openai::estimate_tokens;
use crate::scan::{ScanStream, Scanner};
use crate::upstream::{EventStream, StreamEvent};

use super::context::{Author, TurnCtx};
use super::present::{self, chunk, opening_tutela, sse, usage_chunk};
use super::verdict::{self, Replacement};

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Starts relaying; the response streams as the relay task writes.
pub(crate) fn start(ctx: TurnCtx, events: EventStream) -> Response {
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(32);
    let aigc = ctx.aigc.header_value();
    let notices = present::notice_header(&ctx);
    tokio::spawn(async move {
        if let Err(e) = run(ctx, events, &tx).await {
            // A store failure mid-stream: end the stream with an error event rather than
            // releasing anything unchecked.
            let _ = tx.send(Ok(sse(&e.body()))).await;
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&aigc) {
        h.insert("aigc", v);
    }
    if let Some(v) = notices {
        h.insert("x-tutela-notices", v);
    }
    resp
}

/// Sends an event; `false` when the client has gone.
async fn send(tx: &Tx, v: &impl serde::Serialize) -> bool {
    tx.send(Ok(sse(v))).await.is_ok()
}

/// The byte index `n` characters before the end of `s` (0 if `s` is shorter).
fn back_chars(s: &str, n: usize) -> usize {
    if n == 0 {
        return s.len();
    }
    s.char_indices()
        .rev()
        .nth(n - 1)
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// The largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Whether the relay goes on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Go on.
    Go,
    /// The stream is over: the client left, or the reply was replaced.
    Stop,
}

impl Flow {
    fn sent(ok: bool) -> Flow {
        if ok { Flow::Go } else { Flow::Stop }
    }
}

/// A stream's state while it is relayed.
struct Relay<'a> {
    ctx: &'a TurnCtx,
    tx: &'a Tx,
    /// The streaming detectors (taken at the finish).
    scan: Option<Box<dyn ScanStream + 'a>>,
    /// The assistant side has an encoder tier (its windows run off the async worker).
    encoder: bool,
    /// Encoder windows run so far.
    windows: u64,
    /// The inline notice and a prefix label, until they go out.
    opening: String,
    /// Some text of the reply went out (the opening included).
    opened: bool,
    /// Everything the model sent.
    fed: String,
    /// Bytes of `fed` released to the client.
    released: usize,
    /// Ends (bytes of `fed`) of the last finished sentences, at most
    /// `streaming.lookahead_sentences` + 1, oldest first (empty when that is 0).
    finished: VecDeque<usize>,
    findings: Vec<Finding>,
    /// How many findings the last decision saw.
    evaluated: usize,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// Tool-call deltas held until they are whole and checked (the app shows them), as they
    /// came, one entry per upstream chunk.
    held_calls: Vec<Vec<ToolCallDelta>>,
}

async fn run(ctx: TurnCtx, mut events: EventStream, tx: &Tx) -> Result<(), ApiError> {
    let scanner = ctx.st.scanner.clone();
    let mut r = Relay::new(&ctx, tx, scanner.as_ref());
    if r.open().await == Flow::Stop {
        return Ok(());
    }
    let mut upstream_error = None;
    loop {
        // The client leaving ends the relay at once: dropping `events` closes the upstream
        // connection, so the model stops generating for nobody.
        let next = tokio::select! {
            biased;
            _ = tx.closed() => {
                ctx.st
                    .metrics
                    .client_gone
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            n = events.next() => n,
        };
        match next {
            None | Some(Ok(StreamEvent::Done)) => break,
            Some(Err(e)) => {
                upstream_error = Some(e);
                break;
            }
            Some(Ok(StreamEvent::Malformed)) => {
                ctx.st
                    .metrics
                    .malformed_events
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Some(Ok(StreamEvent::Chunk(v))) => {
                if r.event(v).await? == Flow::Stop {
                    return Ok(());
                }
            }
        }
    }
    r.finish(upstream_error).await
}

impl<'a> Relay<'a> {
    fn new(ctx: &'a TurnCtx, tx: &'a Tx, scanner: &'a dyn Scanner) -> Self {
        Relay {
            ctx,
            tx,
            scan: Some(scanner.stream(Side::Assistant, Some(&ctx.user_text))),
            encoder: scanner.has_encoder(Side::Assistant),
            windows: 0,
            opening: String::new(),
            opened: false,
            fed: String::new(),
            released: 0,
            finished: VecDeque::new(),
            findings: Vec::new(),
            evaluated: usize::MAX,
            finish_reason: None,
            usage: None,
            held_calls: Vec::new(),
        }
    }

    /// Step 1: the first chunk with `tutela.notices` and the label; the inline notice and a
    /// prefix label never into structured output; with the first text when the app offered
    /// tools (a reply that turns out to be a tool call gets no text); otherwise at once, so
    /// the person sees the notice while the model is still writing.
    async fn open(&mut self) -> Flow {
        let ctx = self.ctx;
        let mut first = chunk(ctx, Delta::opening(), None);
        let head = present::tutela_object(ctx, Author::Model, &[]);
        first
            .extra
            .insert("tutela".into(), opening_tutela(ctx, &head));
        if !send(self.tx, &first).await {
            return Flow::Stop;
        }
        if !ctx.structured {
            self.opening = present::opening(ctx, Author::Model);
        }
        if !ctx.tools && !self.opening.is_empty() {
            let opening = std::mem::take(&mut self.opening);
            self.opened = true;
            return Flow::sent(send(self.tx, &chunk(ctx, Delta::text(opening), None)).await);
        }
        Flow::Go
    }

    /// Step 2, one upstream event: usage and the finish reason noted, tool calls passed on
    /// or held, text fed to the detectors and released as far as they allow.
    async fn event(&mut self, ev: ChatCompletionChunk) -> Result<Flow, ApiError> {
        if ev.usage.is_some() {
            self.usage = ev.usage;
        }
        let Some(choice) = ev.choices.into_iter().next() else {
            return Ok(Flow::Go);
        };
        if choice.finish_reason.is_some() {
            self.finish_reason = choice.finish_reason;
        }
        let delta = choice.delta;
        if let Some(tools) = delta.tool_calls {
            if self.ctx.shown.is_empty() {
                // Tool-call arguments are for the app, not the person: they pass through.
                let c = chunk(self.ctx, Delta::tool_calls(tools), None);
                if !send(self.tx, &c).await {
                    return Ok(Flow::Stop);
                }
            } else {
                // The app shows some arguments to the person: held until they are whole and
                // checked (see the finish).
                self.held_calls.push(tools);
            }
        }
        match delta.content {
            Some(text) if !text.is_empty() => self.text(&text).await,
            _ => Ok(Flow::Go),
        }
    }

    /// Feeds text to the detectors; decides on new findings (a block replaces the rest of the
    /// stream); releases what lies behind both the detectors and the hold-back window.
    async fn text(&mut self, text: &str) -> Result<Flow, ApiError> {
        self.fed.push_str(text);
        let Some(s) = self.scan.as_mut() else {
            return Ok(Flow::Go);
        };
        let st = &self.ctx.st;
        // A chunk that finishes a sentence may run the encoder (milliseconds): off the async
        // worker, inside the hold-back window (nothing past the sentence is released yet).
        let new = if s.may_block(text) {
            let (f, w) = st.encoder.run_here(|| s.feed(text)).await;
            self.windows += w;
            f
        } else {
            s.feed(text)
        };
        let pending = s.pending();
        let finished = self.fed.len().saturating_sub(pending);
        // Early release (`streaming.early_release`): within the reply's first sentence only,
        // and only without a sentence look-ahead.
        let cfg = &st.config;
        let early = if cfg.early_release && cfg.lookahead_sentences == 0 && finished == 0 {
            // With the encoder, judging the prefix may embed it: off the async worker.
            let r = if s.embeds() {
                let (r, w) = st.encoder.run_here(|| s.releasable()).await;
                self.windows += w;
                r
            } else {
                s.releasable()
            };
            r.map_or(0, |r| r.min(self.fed.len()))
        } else {
            0
        };
        if !new.is_empty() {
            st.metrics.learned_findings(&new);
            self.findings.extend(new);
            self.evaluated = self.findings.len();
            if let Some(r) = verdict::decide(self.ctx, &self.findings, &self.fed).await? {
                self.replace(r).await?;
                return Ok(Flow::Stop);
            }
        }
        let checked = self.checked_up_to(finished.max(early));
        let window = st.config.hold_back_chars;
        let limit = floor_boundary(&self.fed, checked.min(back_chars(&self.fed, window)));
        if limit <= self.released {
            return Ok(Flow::Go);
        }
        let piece = format!(
            "{}{}",
            std::mem::take(&mut self.opening),
            &self.fed[self.released..limit]
        );
        self.opened = true;
        self.released = limit;
        Ok(Flow::sent(
            send(self.tx, &chunk(self.ctx, Delta::text(piece), None)).await,
        ))
    }

    /// How far the sentence look-ahead allows a release, given that the detectors have finished
    /// every sentence up to byte `scanned`: with `streaming.lookahead_sentences` = N, the end of
    /// the finished sentence that has N finished sentences after it (so every window that
    /// includes it is decided when N = 2); `scanned` itself when N = 0. A feed that finishes
    /// several sentences at once counts as one (the detectors report how far they scanned, not
    /// each boundary), which holds more, never less.
    fn checked_up_to(&mut self, scanned: usize) -> usize {
        let n = self.ctx.st.config.lookahead_sentences;
        if n == 0 {
            return scanned;
        }
        if scanned > self.finished.back().copied().unwrap_or(0) {
            self.finished.push_back(scanned);
            if self.finished.len() > n + 1 {
                self.finished.pop_front();
            }
        }
        if self.finished.len() > n {
            self.finished[0]
        } else {
            0
        }
    }

    /// Step 3: the last sentence scanned and decided, with the shown tool-call arguments; the
    /// rest released; the closing label; the last chunk with `tutela`, usage and `[DONE]`.
    async fn finish(mut self, upstream_error: Option<ApiError>) -> Result<(), ApiError> {
        let checked = self.last_findings().await;
        if self.evaluated != self.findings.len()
            && let Some(r) = verdict::decide(self.ctx, &self.findings, &checked).await?
        {
            return self.replace(r).await;
        }
        if self.release_rest().await == Flow::Stop {
            return Ok(());
        }
        let ctx = self.ctx;
        let why = if ctx.structured {
            "structured_output"
        } else {
            "tool_call"
        };
        present::settle_notice(ctx, self.opened && !ctx.structured, why).await;
        if let Some(e) = upstream_error {
            tracing::warn!("upstream stream failed: {e}");
            let _ = send(self.tx, &e.body()).await;
            return Ok(());
        }
        let finish = self.finish_reason.as_deref().unwrap_or("stop");
        let mut last = chunk(ctx, Delta::default(), Some(finish));
        last.extra.insert(
            "tutela".into(),
            present::tutela_object(ctx, Author::Model, &[]),
        );
        if !send(self.tx, &last).await {
            return Ok(());
        }
        if ctx.include_usage {
            let u = usage_chunk(ctx, self.usage.take().unwrap_or_default());
            if !send(self.tx, &u).await {
                return Ok(());
            }
        }
        let _ = self
            .tx
            .send(Ok(Bytes::from_static(b"data: [DONE]\n\n")))
            .await;
        Ok(())
    }

    /// The findings of the stream's last sentence and of the tool-call arguments the app
    /// shows (whole now); returns the text the decision is recorded for.
    async fn last_findings(&mut self) -> String {
        let st = &self.ctx.st;
        if let Some(s) = self.scan.take() {
            let last = if self.encoder {
                let (f, w) = st.encoder.run_here(|| s.finish()).await;
                self.windows += w;
                f
            } else {
                s.finish()
            };
            st.metrics.learned_findings(&last);
            self.findings.extend(last);
        }
        if self.encoder {
            st.metrics.encoder_ran(Side::Assistant, self.windows);
        }
        let shown = self
            .ctx
            .shown
            .of_calls(&assemble_calls(self.held_calls.iter().flatten()));
        let mut checked = self.fed.clone();
        if !shown.is_empty() {
            let found = verdict::scan_whole(self.ctx, &shown).await;
            st.metrics.learned_findings(&found);
            self.findings.extend(found);
            checked.push('\n');
            checked.push_str(&shown);
        }
        checked
    }

    /// The text not yet released, the held tool calls and a suffix label.
    async fn release_rest(&mut self) -> Flow {
        let ctx = self.ctx;
        if self.released < self.fed.len() {
            let piece = format!(
                "{}{}",
                std::mem::take(&mut self.opening),
                &self.fed[self.released..]
            );
            self.opened = true;
            if !send(self.tx, &chunk(ctx, Delta::text(piece), None)).await {
                return Flow::Stop;
            }
        }
        for tools in std::mem::take(&mut self.held_calls) {
            if !send(self.tx, &chunk(ctx, Delta::tool_calls(tools), None)).await {
                return Flow::Stop;
            }
        }
        let closing = present::closing(ctx, Author::Model);
        if self.opened && !ctx.structured && !closing.is_empty() {
            return Flow::sent(send(self.tx, &chunk(ctx, Delta::text(closing), None)).await);
        }
        Flow::Go
    }

    /// Step 4: the model's stream is dropped (closing the upstream connection), and the
    /// replacement goes out. The audit record is already durable (see `verdict::decide`).
    async fn replace(&mut self, (replacement, mut extra): Replacement) -> Result<(), ApiError> {
        let ctx = self.ctx;
        let released = self.released;
        ctx.st
            .metrics
            .streams_replaced
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Structured output: tutela's text is a refusal, as OpenAI streams a model's refusal.
        let delta = if ctx.structured {
            Delta::refusal(replacement)
        } else if released > 0 {
            Delta::text(format!("\n\n{replacement}"))
        } else {
            Delta::text(format!("{}{replacement}", self.opening))
        };
        present::settle_notice(ctx, !ctx.structured, "structured_output").await;
        if !send(self.tx, &chunk(ctx, delta.clone(), None)).await {
            return Ok(());
        }
        for e in &mut extra {
            if let Value::Object(o) = e {
                o.insert("stream_stopped".into(), json!(true));
                o.insert("released_bytes_before_stop".into(), json!(released));
            }
        }
        // The model was asked and generated `fed` before tutela stopped reading: that is what
        // the upstream consumed (its own figure when it came before the stop, else an
        // estimate); what tutela sent is in `tutela.usage` of the last chunk.
        let sent = format!("{}{}", &self.fed[..released], delta.text_added());
        let mut last = chunk(ctx, Delta::default(), Some("stop"));
        let mut tutela = present::tutela_object(ctx, Author::Tutela, &extra);
        tutela["usage"] = json!({
            "upstream_estimated": self.usage.is_none(),
            "sent": {"completion_tokens": estimate_tokens(&sent), "estimated": true},
        });
        last.extra.insert("tutela".into(), tutela);
        if !send(self.tx, &last).await {
            return Ok(());
        }
        if ctx.include_usage {
            let usage = self
                .usage
                .take()
                .unwrap_or_else(|| Usage::new(ctx.prompt_tokens, estimate_tokens(&self.fed)));
            let c = usage_chunk(ctx, usage);
            if !send(self.tx, &c).await {
                return Ok(());
            }
        }
        let _ = self
            .tx
            .send(Ok(Bytes::from_static(b"data: [DONE]\n\n")))
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_arithmetic() {
        assert_eq!(back_chars("hello", 2), 3);
        assert_eq!(back_chars("héllo", 4), 1);
        assert_eq!(back_chars("ab", 5), 0);
        assert_eq!(floor_boundary("é", 1), 0);
    }
}
