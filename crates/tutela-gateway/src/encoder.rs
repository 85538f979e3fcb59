//! Where the encoder tier runs: a few slots (one per core) shared by both sides, so encoder
//! work never takes more threads than there are cores, however many requests wait.
//!
//! User side: [`EncoderPool::spawn`] starts the encoder scan of the user's message on the
//! blocking pool as soon as the request is read; the turn asks the upstream meanwhile and
//! [`Pending::wait`]s for the result before anything of the reply leaves. A scan that has not
//! finished `wait` after it was started (queued for a slot, or running) is given up: the turn
//! goes on with the quick tiers' decision, the fallback is counted and noted in the audit
//! record; a scan that fails (a panic in the encoder) is handled the same way.
//!
//! Assistant side, waiting for a slot as long as it takes (a reply is never released on the
//! quick tiers alone because the encoder was busy): a whole reply is scanned on the blocking
//! pool ([`EncoderPool::run_off`]); a stream's feeds that finish a sentence run on the relay's
//! own task through `block_in_place` ([`EncoderPool::run_here`]), since the stream's scanner
//! state borrows the detectors and lives across chunks. Measured on this 2-core machine (a 2 ms
//! step beside light requests at 1,000/s): run inline, a step holds up the worker's other
//! requests (their p99 2.1 ms at 100 steps/s, 21–120 ms at 500/s); `spawn_blocking` keeps them
//! at p99 0.15–0.45 ms up to 250 steps/s for about 0.1 ms more per step; `block_in_place` costs
//! the step about 0.01 ms but leaves the others at p99 about 2 ms (a task waiting in the
//! worker's LIFO slot waits for the step).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tutela_types::{Finding, Side};

use crate::scan::{Scanner, blocking};

/// The encoder's slots and the user side's bound.
#[derive(Debug, Clone)]
pub struct EncoderPool {
    slots: Arc<Semaphore>,
    /// How long the user side waits for the encoder, counted from the start of the scan.
    pub wait: Duration,
    /// Encoder jobs waiting for a slot now.
    waiting: Arc<AtomicUsize>,
    /// Past this many waiting jobs the pool is [`saturated`](EncoderPool::saturated).
    max_waiting: usize,
}

/// Counts a job as waiting for a slot while it is alive (also when the wait is cancelled).
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn new(n: &Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How an encoder scan of the user's message ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It ran: its findings and the windows it embedded.
    Ran(Vec<Finding>, u64),
    /// It had not finished within the bound.
    TimedOut,
    /// It failed (the task panicked or was cancelled).
    Failed,
}

impl Outcome {
    /// `ran`, `timeout`, `failed` (metrics and audit records).
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ran(..) => "ran",
            Outcome::TimedOut => "timeout",
            Outcome::Failed => "failed",
        }
    }
}

/// A user-side encoder scan in flight. Dropping it gives up a scan still waiting for a slot
/// (one already running finishes on its thread, and its result is dropped).
#[derive(Debug)]
pub struct Pending {
    task: JoinHandle<()>,
    result: tokio::sync::oneshot::Receiver<(Vec<Finding>, u64)>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Pending {
    /// The scan's result, or why there is none.
    pub async fn wait(mut self) -> Outcome {
        tokio::select! {
            biased;
            // A scan that panics drops the sender without sending.
            r = &mut self.result => match r {
                Ok((f, windows)) => Outcome::Ran(f, windows),
                Err(_) => Outcome::Failed,
            },
            () = self.deadline.as_mut() => Outcome::TimedOut,
        }
    }
}

impl EncoderPool {
    /// `slots` concurrent encoder scans (at least one); the user side waits at most `wait`;
    /// past `max_waiting` jobs waiting for a slot the pool is saturated.
    pub fn new(slots: usize, wait: Duration, max_waiting: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            wait,
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        }
    }

    /// One slot per core.
    pub fn per_core(wait: Duration, max_waiting: usize) -> Self {
        Self::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            wait,
            max_waiting,
        )
    }

    /// Whether more encoder work waits for a slot than the pool takes on: a new turn that the
    /// quick tiers do not settle is then refused with 503 (the SDKs retry it) instead of
    /// joining a queue that only grows (replies are never released unchecked, so an
    /// unbounded queue would hold every turn for seconds).
    pub fn saturated(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) >= self.max_waiting
    }

    /// Jobs waiting for a slot now (metrics).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    async fn acquire(
        slots: &Arc<Semaphore>,
        waiting: &Arc<AtomicUsize>,
    ) -> Option<OwnedSemaphorePermit> {
        let _waiting = Waiting::new(waiting);
        slots.clone().acquire_owned().await.ok()
    }

    /// Starts the encoder scan of a text on the blocking pool; `None` when the scanner has no
    /// encoder for `side`.
    /// Then, still on that thread and in that slot, the work the assistant side can have done
    /// ahead ([`Scanner::prepare_reply`]), after the result is handed over.
    pub fn spawn(&self, scanner: &Arc<dyn Scanner>, side: Side, text: &str) -> Option<Pending> {
        if !scanner.has_encoder(side) {
            return None;
        }
        let scanner = scanner.clone();
        let slots = self.slots.clone();
        let waiting = self.waiting.clone();
        let text = text.to_owned();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let permit = Self::acquire(&slots, &waiting).await;
            let _ = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let before = crate::scan::windows_here();
                let f = scanner.scan_encoder(side, &text, None);
                let _ = tx.send((f, crate::scan::windows_here().wrapping_sub(before)));
                if side == Side::User {
                    // Embedding the user turn for the reply's scan ahead of time is worth a
                    // slot only when another slot is idle: under load it would double the
                    // encoder's work for replies that mostly never need it.
                    let spare =
                        slots.available_permits() > 0 && waiting.load(Ordering::Relaxed) == 0;
                    scanner.prepare_reply(&text, spare);
                }
            })
            .await;
        });
        Some(Pending {
            task,
            result: rx,
            deadline: Box::pin(tokio::time::sleep(self.wait)),
        })
    }

    /// Runs `f` (a whole scan that may embed) on the blocking pool once a slot is free;
    /// returns its value and the windows it embedded, or `None` if it panicked.
    pub async fn run_off<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<(R, u64)> {
        let permit = Self::acquire(&self.slots, &self.waiting).await;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let before = crate::scan::windows_here();
            let r = f();
            (r, crate::scan::windows_here().wrapping_sub(before))
        })
        .await
        .ok()
    }

    /// Runs `f` (a scan step that may embed) on this task through `block_in_place`, once a
    /// slot is free; returns its value and the windows it embedded.
    pub async fn run_here<R>(&self, f: impl FnOnce() -> R) -> (R, u64) {
        let _permit = Self::acquire(&self.slots, &self.waiting).await;
        blocking(f)
    }
}
