//! The one retry worker for writes a turn could not make (a full disk) and must not lose: an
//! intervention's side effects (`chat::effects`) and a person's messages to their case
//! (`takeover`). Each is held, in the order it was held, in one queue this module owns; a
//! single task ([`Queue::run`], started with the state like the outbox worker) writes the
//! head again with a bounded backoff until it is written, then the next: nothing is given up
//! while the process lives (the retry count has no cap), and an error is logged about every
//! ten minutes while writes keep failing. `/readyz` answers 503 and `/metrics` counts them
//! ([`Queue::counts`]) while any is held.
//!
//! Memory is bounded as the store's writer bounds it (`PENDING_LIMIT`, then backpressure): at
//! [`HELD_LIMIT`] items or [`HELD_BYTES`] bytes, a turn that must hold one more waits until the
//! worker has written the head ([`Queue::hold`]); nothing is dropped. Except for an urgent
//! item ([`Held::urgent`]: the side effects that open a crisis case, a person's message to
//! their open case): the turn that holds it is answering a person in crisis, and that answer
//! never waits on the disk, so it is held beyond the cap (one small item per such turn), up to
//! [`URGENT_BYTES`] as the last guard of memory. Only a write the store
//! refuses for good (the case or the user is gone: not found, conflict) leaves the queue
//! unwritten, logged at error level and counted, so it cannot block everything behind it.
//!
//! Generic over the context the items are written with (the gateway's state), so this module
//! uses none of the modules whose writes it retries.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::sync::Notify;

/// Items held before a turn that must hold one more waits (backpressure, never loss).
pub(crate) const HELD_LIMIT: usize = 4_096;

/// Bytes held (as the items estimate them: a case message's text counts whole) before a turn
/// that must hold one more waits. A single item larger than this is taken when the queue is
/// empty.
pub(crate) const HELD_BYTES: usize = 64 * 1024 * 1024;

/// Bytes held beyond which even an urgent item waits: the guard of memory against a flood of
/// case messages during a long outage (urgent items are small and few otherwise).
pub(crate) const URGENT_BYTES: usize = 4 * HELD_BYTES;

/// Which bound an item must fit under.
#[derive(Clone, Copy)]
enum Room {
    /// [`HELD_LIMIT`] and [`HELD_BYTES`].
    Cap,
    /// [`URGENT_BYTES`] only.
    Urgent,
    /// None (replayed at start).
    Always,
}

/// Failed attempts in a row between two error lines (about ten minutes at the longest wait).
const ERROR_LOG_EVERY: u64 = 120;

/// What is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An intervention's side effects (case, notifications, intervention rows, counters).
    SideEffects,
    /// A person's message to their case.
    CaseMessage,
}

/// One attempt's outcome.
pub(crate) enum Outcome {
    /// Written (and whatever follows a late write done).
    Written,
    /// Not written; tried again.
    Failed(String),
    /// The store refuses it for good (the case or the user is gone): dropped, said at error.
    Refused(String),
}

/// One attempt, borrowing the item and the context.
pub(crate) type Attempt<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// A write that is held until it is made.
pub(crate) trait Held<C>: Send {
    /// What it is (for the counts).
    fn kind(&self) -> Kind;
    /// About how much memory it holds.
    fn bytes(&self) -> usize;
    /// Held beyond the cap: the turn holding it answers a person in crisis (see the module
    /// docs).
    fn urgent(&self) -> bool {
        false
    }
    /// Tries to write it once.
    fn write<'a>(&'a mut self, ctx: &'a C) -> Attempt<'a>;
}

/// The backoff between attempts: `first` after a failure, doubling to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 250 ms doubling to 5 s.
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(250),
            max: Duration::from_secs(5),
        }
    }
}

/// What `/readyz` and `/metrics` say about the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HeldCounts {
    /// Side effects held (the one being written included).
    pub(crate) side_effects: u64,
    /// Case messages held (the one being written included).
    pub(crate) case_messages: u64,
    /// Failed attempts of the worker since start.
    pub(crate) retries: u64,
    /// Items the store refused for good.
    pub(crate) refused: u64,
    /// Times a turn waited for room at the cap.
    pub(crate) waits: u64,
}

struct State<C> {
    /// Not yet taken by the worker, oldest first.
    items: VecDeque<Box<dyn Held<C>>>,
    /// Held in all (queued and the one being written).
    count: usize,
    bytes: usize,
    counts: HeldCounts,
}

/// The queue of held writes; one per process, in the gateway's state.
pub(crate) struct Queue<C> {
    state: Mutex<State<C>>,
    /// Wakes the worker.
    more: Notify,
    /// Wakes turns waiting for room.
    room: Notify,
}

impl<C> Default for Queue<C> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                count: 0,
                bytes: 0,
                counts: HeldCounts::default(),
            }),
            more: Notify::new(),
            room: Notify::new(),
        }
    }
}

fn bump(counts: &mut HeldCounts, kind: Kind, up: bool) {
    let n = match kind {
        Kind::SideEffects => &mut counts.side_effects,
        Kind::CaseMessage => &mut counts.case_messages,
    };
    *n = if up { *n + 1 } else { n.saturating_sub(1) };
}

impl<C> Queue<C> {
    /// The counts.
    pub(crate) fn counts(&self) -> HeldCounts {
        self.state.lock().map(|s| s.counts).unwrap_or_default()
    }

    /// Holds `item` behind every item held before it; waits while the queue is at its cap,
    /// unless the item is urgent.
    pub(crate) async fn hold(&self, item: Box<dyn Held<C>>) {
        let bound = if item.urgent() {
            Room::Urgent
        } else {
            Room::Cap
        };
        let mut item = Some(item);
        let mut waited = false;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if let Some(i) = item.take() {
                match self.push(i, bound) {
                    Ok(()) => return,
                    Err(back) => item = Some(back),
                }
            }
            if !waited {
                waited = true;
                if let Ok(mut s) = self.state.lock() {
                    s.counts.waits += 1;
                }
                tracing::error!(
                    limit = HELD_LIMIT,
                    "held writes are at their cap; a turn waits until the oldest is written"
                );
            }
            room.await;
        }
    }

    /// Holds `item` without waiting, beyond the cap too (urgent items, and side effects
    /// replayed at start, which were counted against the cap in the process that held them).
    pub(crate) fn hold_now(&self, item: Box<dyn Held<C>>) {
        let _ = self.push(item, Room::Always);
    }

    fn push(&self, item: Box<dyn Held<C>>, room: Room) -> Result<(), Box<dyn Held<C>>> {
        let Ok(mut s) = self.state.lock() else {
            return Err(item);
        };
        let size = item.bytes();
        let fits = s.count == 0
            || match room {
                Room::Cap => s.count < HELD_LIMIT && s.bytes + size <= HELD_BYTES,
                Room::Urgent => s.bytes + size <= URGENT_BYTES,
                Room::Always => true,
            };
        if !fits {
            return Err(item);
        }
        s.count += 1;
        s.bytes += size;
        bump(&mut s.counts, item.kind(), true);
        s.items.push_back(item);
        drop(s);
        self.more.notify_one();
        Ok(())
    }

    /// The head, taken to be written (it stays counted until [`Queue::done`]).
    fn next(&self) -> Option<Box<dyn Held<C>>> {
        self.state.lock().ok()?.items.pop_front()
    }

    fn done(&self, kind: Kind, size: usize, refused: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.count = s.count.saturating_sub(1);
            s.bytes = s.bytes.saturating_sub(size);
            bump(&mut s.counts, kind, false);
            if refused {
                s.counts.refused += 1;
            }
        }
        self.room.notify_waiters();
    }

    fn failed_once(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.counts.retries += 1;
        }
    }

    /// The worker: writes the head until it is written, then the next; runs until the process
    /// ends. The first attempt of an item that arrives in an empty queue waits `first` (the
    /// turn's own attempt just failed); after a write the next item is tried at once.
    pub(crate) async fn run(&self, ctx: &C, backoff: Backoff) {
        let mut wait: Option<Duration> = None;
        let mut failing: u64 = 0;
        loop {
            let more = self.more.notified();
            tokio::pin!(more);
            more.as_mut().enable();
            let Some(mut item) = self.next() else {
                more.await;
                wait = Some(backoff.first);
                continue;
            };
            let (kind, size) = (item.kind(), item.bytes());
            let refused = loop {
                if let Some(d) = wait {
                    tokio::time::sleep(d).await;
                }
                // A panic in one attempt is one more failed attempt, never the worker's end.
                let outcome = AssertUnwindSafe(item.write(ctx))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Outcome::Failed("the attempt panicked".into()));
                match outcome {
                    Outcome::Written => break false,
                    Outcome::Refused(why) => {
                        tracing::error!(error = %why, kind = ?kind, "a held write is refused by the store for good; it is dropped");
                        break true;
                    }
                    Outcome::Failed(err) => {
                        self.failed_once();
                        failing += 1;
                        if failing.is_multiple_of(ERROR_LOG_EVERY) {
                            let held = self.counts();
                            tracing::error!(
                                error = %err,
                                attempts = failing,
                                side_effects = held.side_effects,
                                case_messages = held.case_messages,
                                "held writes (side effects, case messages) are still not written; retrying"
                            );
                        }
                        wait = Some(wait.map_or(backoff.first, |d| (d * 2).min(backoff.max)));
                    }
                }
            };
            failing = 0;
            wait = None;
            self.done(kind, size, refused);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Item {
        id: u32,
        kind: Kind,
        log: Arc<Mutex<Vec<(u32, bool)>>>,
        broken: Arc<AtomicBool>,
        urgent: bool,
    }

    impl Held<()> for Item {
        fn kind(&self) -> Kind {
            self.kind
        }
        fn bytes(&self) -> usize {
            1
        }
        fn urgent(&self) -> bool {
            self.urgent
        }
        fn write<'a>(&'a mut self, _: &'a ()) -> Attempt<'a> {
            Box::pin(async move {
                let broken = self.broken.load(Ordering::SeqCst);
                self.log.lock().unwrap().push((self.id, !broken));
                if broken {
                    Outcome::Failed("full".into())
                } else {
                    Outcome::Written
                }
            })
        }
    }

    #[tokio::test]
    async fn only_the_head_is_tried_and_items_are_written_in_order() {
        let q: Arc<Queue<()>> = Arc::new(Queue::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let broken = Arc::new(AtomicBool::new(true));
        for id in 0..5 {
            let kind = if id % 2 == 0 {
                Kind::SideEffects
            } else {
                Kind::CaseMessage
            };
            q.hold(Box::new(Item {
                id,
                kind,
                log: log.clone(),
                broken: broken.clone(),
                urgent: false,
            }))
            .await;
        }
        let held = q.counts();
        assert_eq!((held.side_effects, held.case_messages), (3, 2));
        let worker = q.clone();
        let backoff = Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(1),
        };
        tokio::spawn(async move { worker.run(&(), backoff).await });
        while q.counts().retries < 20 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        broken.store(false, Ordering::SeqCst);
        while q.counts().side_effects + q.counts().case_messages > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let log = log.lock().unwrap().clone();
        let written: Vec<u32> = log
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(written, [0, 1, 2, 3, 4]);
        assert!(
            log.iter().filter(|(_, ok)| !ok).all(|(id, _)| *id == 0),
            "only the head is tried while writes fail: {log:?}"
        );
    }

    /// At the cap, an ordinary item waits for room; an urgent one (a person in crisis is being
    /// answered) is held at once, beyond the cap, and written in its place in the order.
    #[tokio::test]
    async fn at_the_cap_an_urgent_item_is_held_at_once_and_an_ordinary_one_waits() {
        let q: Arc<Queue<()>> = Arc::new(Queue::default());
        let log = Arc::new(Mutex::new(Vec::new()));
        let broken = Arc::new(AtomicBool::new(true));
        let item = |id, urgent| {
            Box::new(Item {
                id,
                kind: Kind::CaseMessage,
                log: log.clone(),
                broken: broken.clone(),
                urgent,
            })
        };
        for id in 0..HELD_LIMIT as u32 {
            q.hold(item(id, false)).await;
        }
        let ordinary =
            tokio::time::timeout(Duration::from_millis(50), q.hold(item(u32::MAX, false))).await;
        assert!(ordinary.is_err(), "an ordinary item waits at the cap");
        let urgent = HELD_LIMIT as u32;
        tokio::time::timeout(Duration::from_secs(5), q.hold(item(urgent, true)))
            .await
            .expect("an urgent item never waits for room");
        assert_eq!(q.counts().case_messages, HELD_LIMIT as u64 + 1);
        assert_eq!(q.counts().waits, 1);
        let worker = q.clone();
        let backoff = Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(1),
        };
        broken.store(false, Ordering::SeqCst);
        tokio::spawn(async move { worker.run(&(), backoff).await });
        while q.counts().case_messages > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let written: Vec<u32> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(written.last(), Some(&urgent), "written in its place: last");
        assert_eq!(written.len(), HELD_LIMIT + 1);
    }
}
