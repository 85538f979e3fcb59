//! The writer: one background task that owns all appends to the audit log, so the chain never
//! forks, and that also commits the clocks of normal turns ([`TurnRecord`]s) in batches. It
//! is the only writer of both; the gateway has none of its own.
//!
//! Ways in:
//! - [`AuditWriter::append_durable`] awaits the commit; use it for interventions, whose record
//!   must exist before the reply leaves. It never waits for room in a full queue (it passes
//!   it on a lane of its own; otherwise records keep the order of the calls). If
//!   the commit fails, it answers [`StoreError::AuditPending`] at once: the record is kept and
//!   retried, and the caller decides whether to go on (the gateway still sends a crisis reply).
//! - [`AuditWriter::record`] and [`AuditWriter::record_turn`] only queue; they wait only when
//!   the queue is full, which is backpressure, never loss. [`AuditWriter::flush`] waits until
//!   everything queued before it is committed, or fails at once while writes are failing.
//!
//! Faults (a full disk, an I/O error, a lock held past the busy timeout): a batch that fails is
//! kept, in order, and retried with a bounded backoff (50 ms doubling to 1 s) until it is
//! written; nothing is dropped while the process lives. While writes fail the writer keeps
//! accepting records up to [`PENDING_LIMIT`], then stops reading the queue, so callers of
//! `record` wait (backpressure); durable appends are always accepted. The first failure is
//! logged at error level (then once every 30 attempts), [`AuditWriter::health`] says
//! `failing` (the gateway's `/readyz` and metrics read it), and when writes succeed again the
//! writer first appends an outage note (`admin` record, `detail.event = "audit_write_outage"`)
//! naming how many records were written late, which `audit verify` reports.
//!
//! With a spill directory ([`AuditWriter::spawn_with_spill`], `[store] spill_dir`), every audit
//! record held while writes fail is also appended to a spill file there and fsync'd before a
//! durable caller hears that it is held; the next writer over the same database replays what
//! the chain lacks (see [`crate::spill`]).
//!
//! What a crash may lose: records still queued or held in memory when the process dies (at most
//! the queue, in practice the group-commit window: whatever arrived while the previous commit
//! ran or during the linger, about 10 ms of normal turns). Durable appends that were acknowledged `Ok` are on disk; with a spill directory, so are
//! those answered [`StoreError::AuditPending`] (in the spill file).
//!
//! The writer never stops while a handle lives: a failed batch is held and retried, and a panic
//! in a store call or in the writer's own code (a log subscriber that panics when its output
//! fails) is caught and counted as one more failed attempt.
//!
//! The task never reads the clock: records carry the caller's timestamps, and batches form by
//! themselves while the previous commit is running (group commit), helped by a short wait
//! ([`LINGER`]) while only records no caller waits for are held. Its timers are that wait and
//! the retry backoff.
//!
//! Besides the audit chain and the clocks, the writer commits decisions' statistics rows
//! ([`Tally`]: intervention rows and counters of notices and other decisions that change
//! nothing read back at once) with the clocks, in one transaction per batch.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::audit::{AuditEntry, AuditKind, ChainLink, NewAuditRecord, Pseudonymizer};
use crate::error::{Result, StoreError};
use crate::model::{Tally, TurnRecord};
use crate::spill::{SpillDir, SpillWriter};
use crate::traits::{AuditLog, SessionStore};

/// Records queued before `record` waits: about 1 MB of pending records; beyond that the
/// database is not keeping up and callers should feel it.
pub const QUEUE_CAPACITY: usize = 4_096;

/// Most records written in one transaction: bounds the latency of a durable append that
/// arrives behind a burst.
pub const MAX_BATCH: usize = 512;

/// Records (audit and turn) the writer holds in memory while writes fail, before it stops
/// reading the queue: about 4 MB. Durable appends are accepted beyond it.
pub const PENDING_LIMIT: usize = 16_384;

/// The `detail.event` of the note the writer appends after a write outage.
pub const OUTAGE_EVENT: &str = "audit_write_outage";

/// How long the writer waits for more records while it holds only records that no caller
/// waits for (normal turns' records, clocks and tallies), so that one transaction carries many
/// turns: each statement is a round trip to the connection's thread, which costs more than its
/// rows (measured: at 500 turns/s, batches of one or two turns). A durable append, a flush or a
/// full batch ends the wait at once. It is also what a crash may lose beyond the commit in
/// progress.
pub const LINGER: Duration = Duration::from_millis(10);

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Log a continuing outage at error level once per this many failed attempts.
const LOG_EVERY: u64 = 30;

enum Msg {
    Append {
        record: NewAuditRecord,
        done: Option<oneshot::Sender<Result<ChainLink>>>,
    },
    Turn(Box<TurnRecord>),
    Tally(Box<Tally>),
    Flush(oneshot::Sender<Result<()>>),
    /// A flush of the turn lane only (turns and tallies, not audit records).
    FlushTurns(oneshot::Sender<Result<()>>),
}

/// What the writer is doing, for readiness checks and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterHealth {
    /// Whether the last write attempt failed (records are held and retried).
    pub failing: bool,
    /// Records (audit and turn) held in memory, not yet written.
    pub pending: u64,
    /// Failed write attempts since start.
    pub failed_attempts: u64,
    /// Outages that ended (writes succeeded again after failing).
    pub outages: u64,
    /// Records written after a failed attempt (late, but written).
    pub written_late: u64,
    /// The last error, while failing.
    pub last_error: Option<String>,
    /// Audit records written to a spill file since start (see [`crate::spill`]).
    pub spilled: u64,
    /// Records replayed from spill files left by an earlier process.
    pub replayed: u64,
    /// Why the spill file could not be written, while that is so.
    pub spill_error: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    failing: AtomicBool,
    pending: AtomicU64,
    failed_attempts: AtomicU64,
    outages: AtomicU64,
    written_late: AtomicU64,
    last_error: Mutex<Option<String>>,
    spilled: AtomicU64,
    replayed: AtomicU64,
    spill_error: Mutex<Option<String>>,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Msg>,
    urgent: mpsc::UnboundedSender<Msg>,
    pseudonyms: Pseudonymizer,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("queued", &(QUEUE_CAPACITY - self.tx.capacity()))
            .field("health", &self.health())
            .finish()
    }
}

impl AuditWriter {
    /// Starts the writer task on the current tokio runtime: audit records go to `log`, turn
    /// records to `turns`. The task ends when every handle is dropped, after writing what is
    /// queued (or giving up on it if writes keep failing, which it logs).
    pub fn spawn(
        log: Arc<dyn AuditLog>,
        turns: Arc<dyn SessionStore>,
        pseudonyms: Pseudonymizer,
    ) -> Self {
        Self::spawn_with_spill(log, turns, pseudonyms, None)
    }

    /// [`AuditWriter::spawn`] with a spill directory (checked with [`SpillDir::open`]): audit
    /// records that cannot be written go there too, and spill files an earlier process left
    /// for this database are replayed first (see [`crate::spill`]).
    pub fn spawn_with_spill(
        log: Arc<dyn AuditLog>,
        turns: Arc<dyn SessionStore>,
        pseudonyms: Pseudonymizer,
        spill: Option<SpillDir>,
    ) -> Self {
        let spill = spill.map(|dir| Spill {
            database: pseudonyms.database_tag(),
            dir,
            current: None,
            files: Vec::new(),
            loaded: false,
        });
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (urgent, urgent_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let task = Task {
            log,
            turns,
            rx,
            urgent: urgent_rx,
            shared: Arc::clone(&shared),
            audits: VecDeque::new(),
            turn_queue: VecDeque::new(),
            flushes: Vec::new(),
            audits_received: 0,
            turns_received: 0,
            audits_written: 0,
            turns_written: 0,
            attempts: 0,
            first_error: None,
            noted: false,
            late: 0,
            rx_open: true,
            urgent_open: true,
            spill,
            head: None,
            replayed: 0,
            replay_files: Vec::new(),
            spilled_now: 0,
        };
        tokio::spawn(task.run());
        Self {
            tx,
            urgent,
            pseudonyms,
            shared,
        }
    }

    /// Appends a record and waits until it is committed; returns its place in the chain.
    /// [`StoreError::AuditPending`] means the commit failed and the record is held and retried.
    pub async fn append_durable(&self, entry: &AuditEntry) -> Result<ChainLink> {
        let record = self.pseudonyms.prepare(entry)?;
        let (done, wait) = oneshot::channel();
        self.send_now(Msg::Append {
            record,
            done: Some(done),
        })?;
        wait.await.map_err(|_| StoreError::WriterClosed)?
    }

    /// Through the queue when it has room (so records keep the order of the calls), past it
    /// on the durable lane when it is full (so the caller never waits for room).
    fn send_now(&self, msg: Msg) -> Result<()> {
        if self.shared.failing.load(Ordering::Acquire) {
            // The writer may not read the queue while writes fail (backpressure).
            return self.urgent.send(msg).map_err(|_| StoreError::WriterClosed);
        }
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(msg)) => {
                self.urgent.send(msg).map_err(|_| StoreError::WriterClosed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(StoreError::WriterClosed),
        }
    }

    /// Queues a record for the next batch. Returns at once unless the queue is full.
    pub async fn record(&self, entry: &AuditEntry) -> Result<()> {
        let record = self.pseudonyms.prepare(entry)?;
        self.tx
            .send(Msg::Append { record, done: None })
            .await
            .map_err(|_| StoreError::WriterClosed)
    }

    /// Queues a record without waiting; fails with [`StoreError::QueueFull`] when the queue is
    /// full (the caller then uses [`AuditWriter::record`]).
    pub fn try_record(&self, entry: &AuditEntry) -> Result<()> {
        let record = self.pseudonyms.prepare(entry)?;
        self.tx
            .try_send(Msg::Append { record, done: None })
            .map_err(send_error)
    }

    /// Queues a record on the durable lane without waiting for anything: for a caller that
    /// cannot wait (a turn ending in a destructor). Never refused while the writer runs; use
    /// [`AuditWriter::record`] wherever the caller can wait.
    pub fn record_now(&self, entry: &AuditEntry) -> Result<()> {
        let record = self.pseudonyms.prepare(entry)?;
        self.send_now(Msg::Append { record, done: None })
    }

    /// Queues a turn's clocks, session row and usage for the next batch.
    pub async fn record_turn(&self, turn: TurnRecord) -> Result<()> {
        self.tx
            .send(Msg::Turn(Box::new(turn)))
            .await
            .map_err(|_| StoreError::WriterClosed)
    }

    /// Queues a turn's clocks and session row without waiting for room (the durable lane
    /// when the queue is full or writes fail): for an intervening turn, which never waits.
    pub fn record_turn_now(&self, turn: TurnRecord) -> Result<()> {
        self.send_now(Msg::Turn(Box::new(turn)))
    }

    /// Queues a decision's statistics rows (intervention rows, counter bumps) for the next
    /// batch, committed with the turns' clocks in one transaction.
    pub async fn record_tally(&self, tally: Tally) -> Result<()> {
        self.tx
            .send(Msg::Tally(Box::new(tally)))
            .await
            .map_err(|_| StoreError::WriterClosed)
    }

    /// Waits until every record queued before this call is committed. Fails at once, with the
    /// number of records held, while writes are failing (they are still retried).
    pub async fn flush(&self) -> Result<()> {
        self.wait_for(Msg::Flush).await
    }

    /// Waits until every turn record and tally queued before this call is committed, not the
    /// audit records (a normal turn on a shared database waits for its clocks only, so it
    /// hears as soon as the round's turn batch commits, even while the round's audit batch
    /// is still committing). Fails at once while writes are failing, as [`Self::flush`].
    pub async fn flush_turns(&self) -> Result<()> {
        self.wait_for(Msg::FlushTurns).await
    }

    /// Sends the writer `msg` with a channel for its answer, through the bounded lane (so it
    /// lands behind every record queued before it), and waits for the answer.
    async fn wait_for(&self, msg: fn(oneshot::Sender<Result<()>>) -> Msg) -> Result<()> {
        let health = self.health();
        if health.failing {
            return Err(StoreError::AuditPending(format!(
                "{} records held in memory and retried; {}",
                health.pending,
                health.last_error.unwrap_or_default()
            )));
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(msg(done))
            .await
            .map_err(|_| StoreError::WriterClosed)?;
        wait.await.map_err(|_| StoreError::WriterClosed)?
    }

    /// What the writer is doing now.
    pub fn health(&self) -> WriterHealth {
        let s = &self.shared;
        WriterHealth {
            failing: s.failing.load(Ordering::Acquire),
            pending: s.pending.load(Ordering::Acquire),
            failed_attempts: s.failed_attempts.load(Ordering::Acquire),
            outages: s.outages.load(Ordering::Acquire),
            written_late: s.written_late.load(Ordering::Acquire),
            last_error: s.last_error.lock().ok().and_then(|e| e.clone()),
            spilled: s.spilled.load(Ordering::Acquire),
            replayed: s.replayed.load(Ordering::Acquire),
            spill_error: s.spill_error.lock().ok().and_then(|e| e.clone()),
        }
    }

    /// The pseudonymizer used for subjects and content hashes.
    pub fn pseudonyms(&self) -> &Pseudonymizer {
        &self.pseudonyms
    }
}

fn send_error<T>(e: mpsc::error::TrySendError<T>) -> StoreError {
    match e {
        mpsc::error::TrySendError::Full(_) => StoreError::QueueFull,
        mpsc::error::TrySendError::Closed(_) => StoreError::WriterClosed,
    }
}

/// A record of the turn lane: a turn's clocks, or a decision's statistics rows.
enum Stat {
    Turn(TurnRecord),
    Tally(Tally),
}

/// Counts of audit and turn records received before a flush.
type Marks = (u64, u64);

struct Held {
    record: NewAuditRecord,
    done: Option<oneshot::Sender<Result<ChainLink>>>,
    /// In a spill file (its payload carries the mark).
    spilled: bool,
}

/// The spill directory and the files of this writer.
struct Spill {
    dir: SpillDir,
    /// This database's tag in file names.
    database: String,
    /// The file appended to during the current outage.
    current: Option<SpillWriter>,
    /// Files whose records are not all written yet; deleted once every held audit record is.
    files: Vec<std::path::PathBuf>,
    /// Whether the files left by an earlier process were read.
    loaded: bool,
}

struct Task {
    log: Arc<dyn AuditLog>,
    turns: Arc<dyn SessionStore>,
    rx: mpsc::Receiver<Msg>,
    urgent: mpsc::UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
    audits: VecDeque<Held>,
    /// Turn records and tallies, in the order they came.
    turn_queue: VecDeque<Stat>,
    /// Flush waiters with the counts of audit and turn records received before them.
    flushes: Vec<(Marks, oneshot::Sender<Result<()>>)>,
    /// Audit and turn records received, and written, since start.
    audits_received: u64,
    turns_received: u64,
    audits_written: u64,
    turns_written: u64,
    /// Failed attempts in the current outage (0: writes succeed).
    attempts: u64,
    first_error: Option<String>,
    /// Whether the current outage's note is written (one per outage).
    noted: bool,
    /// Items held when the current outage began or arrived during it.
    late: u64,
    rx_open: bool,
    urgent_open: bool,
    spill: Option<Spill>,
    /// The chain's head seq as last seen (after a successful append).
    head: Option<i64>,
    /// Records replayed from an earlier process's spill files, not yet noted in the chain.
    replayed: u64,
    /// The ids of those files.
    replay_files: Vec<String>,
    /// Records spilled in the current outage.
    spilled_now: u64,
}

impl Task {
    fn held(&self) -> usize {
        self.audits.len() + self.turn_queue.len()
    }

    fn failing(&self) -> bool {
        self.attempts > 0
    }

    fn accept(&mut self, msg: Msg) {
        match msg {
            Msg::Append { record, mut done } => {
                if self.failing()
                    && self.spill.is_none()
                    && let Some(d) = done.take()
                {
                    // Writes are failing: say so now rather than after the next attempt. (With a
                    // spill directory, once the record is in the spill file.)
                    let _ = d.send(Err(self.pending_error()));
                }
                self.audits.push_back(Held {
                    record,
                    done,
                    spilled: false,
                });
                self.audits_received += 1;
            }
            Msg::Turn(turn) => {
                self.turn_queue.push_back(Stat::Turn(*turn));
                self.turns_received += 1;
            }
            Msg::Tally(tally) => {
                self.turn_queue.push_back(Stat::Tally(*tally));
                self.turns_received += 1;
            }
            Msg::Flush(done) => {
                if self.failing() {
                    let _ = done.send(Err(self.pending_error()));
                } else {
                    self.flushes
                        .push(((self.audits_received, self.turns_received), done));
                }
                return;
            }
            Msg::FlushTurns(done) => {
                if self.failing() {
                    let _ = done.send(Err(self.pending_error()));
                } else {
                    // No audit record to wait for: an audit mark every count meets.
                    self.flushes.push(((0, self.turns_received), done));
                }
                return;
            }
        }
        if self.failing() {
            self.late += 1;
        }
        self.publish();
    }

    fn pending_error(&self) -> StoreError {
        StoreError::AuditPending(format!(
            "{} records held in memory and retried; {}",
            self.held(),
            self.first_error.as_deref().unwrap_or("write failed")
        ))
    }

    /// Takes what is waiting without blocking: the durable lane always, the queue (first, as
    /// its messages were most likely sent first) while the records held stay under the limit.
    fn drain(&mut self) {
        self.drain_queue();
        while self.urgent_open {
            match self.urgent.try_recv() {
                Ok(m) => self.accept(m),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.urgent_open = false,
            }
        }
        self.drain_queue();
    }

    fn drain_queue(&mut self) {
        while self.rx_open && self.held() < PENDING_LIMIT && self.batch_room() {
            match self.rx.try_recv() {
                Ok(m) => self.accept(m),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.rx_open = false,
            }
        }
    }

    /// While writes succeed, a batch is at most MAX_BATCH of each kind; gather no more.
    fn batch_room(&self) -> bool {
        self.failing() || (self.audits.len() < MAX_BATCH && self.turn_queue.len() < MAX_BATCH)
    }

    /// Blocks until a message arrives on either lane; false when both are closed.
    async fn wait_for_message(&mut self) -> bool {
        loop {
            let msg = match (self.urgent_open, self.rx_open) {
                (false, false) => return false,
                (true, true) => tokio::select! {
                    biased;
                    m = self.rx.recv() => m.ok_or(false),
                    m = self.urgent.recv() => m.ok_or(true),
                },
                (true, false) => self.urgent.recv().await.ok_or(true),
                (false, true) => self.rx.recv().await.ok_or(false),
            };
            match msg {
                Ok(m) => {
                    self.accept(m);
                    return true;
                }
                Err(true) => self.urgent_open = false,
                Err(false) => self.rx_open = false,
            }
        }
    }

    /// The task: never returns while a handle lives. A panic anywhere in an iteration (in the
    /// writer's own code, such as a log line whose subscriber panics) is caught and counted as
    /// a failed attempt; the records stay held and are retried.
    async fn run(mut self) {
        loop {
            match CatchUnwind(Box::pin(self.step())).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(panic) => {
                    let err = StoreError::Panicked(panic_message(&*panic));
                    // `failed` logs last, after its state is settled; a panic there is caught too.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| self.failed(&err)));
                    if let Err(panic) = CatchUnwind(Box::pin(self.back_off())).await {
                        drop(panic);
                    }
                }
            }
        }
    }

    /// One round: wait for work, take what is waiting, write once, back off if that failed.
    /// False when every handle is gone and nothing more can be done.
    async fn step(&mut self) -> bool {
        if let Err(err) = self.load_leftovers().await {
            // Nothing is written before the chain says what an earlier process's spill files
            // still lack, so their records keep their place in front.
            self.drain();
            self.failed(&err);
            self.spill_held().await;
            self.back_off().await;
            return true;
        }
        self.answer_flushes();
        if self.held() == 0 && !self.wait_for_message().await {
            return false;
        }
        self.drain();
        if self.failing() {
            self.spill_held().await;
        } else {
            self.linger().await;
        }
        if self.write_once().await {
            return true;
        }
        self.spill_held().await;
        if !self.rx_open && !self.urgent_open && self.attempts >= LOG_EVERY {
            // Every handle is gone (the process is closing) and writes keep failing.
            tracing::error!(
                records = self.held(),
                "audit writer stopping with records it could not write"
            );
            return false;
        }
        self.back_off().await;
        true
    }

    /// One attempt at the oldest held records: the audit batch and the turn batch, committed
    /// side by side (on PostgreSQL they are transactions on two connections under different
    /// locks; on SQLite the write gate still takes them one after the other). Neither waits
    /// for the other: an intervention's turn is queued only after its durable record is
    /// committed, and a normal turn's record carries nothing its clocks need. The flushes the
    /// turn batch completes are answered as soon as it commits. True if both wrote (or had
    /// nothing to write); a failure leaves that batch held for the next attempt.
    async fn write_once(&mut self) -> bool {
        let (audit, audit_call) = (!self.audits.is_empty())
            .then(|| {
                let n = self.audits.len().min(MAX_BATCH);
                let mut records: Vec<NewAuditRecord> = Vec::with_capacity(n + 1);
                let note = if self.failing() && !self.noted {
                    Some(self.outage_note())
                } else {
                    (self.replayed > 0).then(|| self.replay_note())
                };
                records.extend(note.clone());
                records.extend(self.audits.iter().take(n).map(|h| h.record.clone()));
                let log = Arc::clone(&self.log);
                (
                    (n, note.is_some()),
                    async move { log.append(&records).await },
                )
            })
            .unzip();
        let (turns, turns_call) = (!self.turn_queue.is_empty())
            .then(|| {
                let n = self.turn_queue.len().min(MAX_BATCH);
                let mut batch = Vec::new();
                let mut tallies = Vec::new();
                for stat in self.turn_queue.iter().take(n) {
                    match stat {
                        Stat::Turn(t) => batch.push(t.clone()),
                        Stat::Tally(t) => tallies.push(t.clone()),
                    }
                }
                let store = Arc::clone(&self.turns);
                (n, async move { store.record_batch(&batch, &tallies).await })
            })
            .unzip();
        let audit_call = isolated_if(audit_call);
        let turns_call = isolated_if(turns_call);
        tokio::pin!(audit_call, turns_call);
        let mut audit_result = None;
        let mut turns_done = false;
        let mut error = None;
        while audit_result.is_none() || !turns_done {
            tokio::select! {
                result = &mut audit_call, if audit_result.is_none() => {
                    audit_result = Some(result);
                }
                result = &mut turns_call, if !turns_done => {
                    turns_done = true;
                    match (turns, result) {
                        (Some(n), Some(Ok(()))) => {
                            self.turn_queue.drain(..n);
                            self.turns_written += n as u64;
                            self.wrote(n as u64);
                            // The turn lane's waiters hear now, not after the audit batch.
                            self.answer_flushes();
                        }
                        (_, Some(Err(err))) => error = Some(err),
                        _ => {}
                    }
                }
            }
        }
        if let (Some((n, noted)), Some(Some(result))) = (audit, audit_result) {
            match result {
                Ok(links) => self.audit_written(n, noted, links),
                Err(err) => {
                    error.get_or_insert(err);
                }
            }
        }
        match error {
            // One failed attempt, whichever batch (or both) failed.
            Some(err) => {
                self.failed(&err);
                false
            }
            None => true,
        }
    }

    /// The first `n` held audit records are committed (after the note, when `noted`).
    fn audit_written(&mut self, n: usize, noted: bool, links: Vec<ChainLink>) {
        if noted {
            if self.failing() {
                self.noted = true;
            } else {
                self.replayed = 0;
                self.replay_files.clear();
            }
        }
        self.head = links.last().map(|l| l.seq).or(self.head);
        let links = links.into_iter().skip(usize::from(noted));
        for (held, link) in self.audits.drain(..n).zip(links) {
            if let Some(done) = held.done {
                // The caller may have given up waiting; the record is written anyway.
                let _ = done.send(Ok(link));
            }
        }
        self.audits_written += n as u64;
        if self.audits.is_empty() {
            self.clear_spill();
        }
        self.wrote(n as u64);
    }

    fn outage_note(&self) -> NewAuditRecord {
        let detail = serde_json::json!({
            "event": OUTAGE_EVENT,
            "failed_attempts": self.attempts,
            "records_delayed": self.late.max(self.held() as u64),
            "records_spilled": self.spilled_now,
            "error": self.first_error,
        });
        NewAuditRecord {
            at: self.audits.front().map_or(0, |h| h.record.at),
            kind: AuditKind::Admin.as_str().to_owned(),
            subject: None,
            session: None,
            jurisdiction: None,
            payload: serde_json::json!({ "detail": detail }).to_string(),
            profile_hash: String::new(),
            content_hash: None,
        }
    }

    /// The note written before the records replayed from an earlier process's spill files.
    fn replay_note(&self) -> NewAuditRecord {
        let detail = serde_json::json!({
            "event": OUTAGE_EVENT,
            "replayed_after_restart": self.replayed,
            "records_delayed": self.replayed,
            "spill_files": self.replay_files,
        });
        NewAuditRecord {
            at: self.audits.front().map_or(0, |h| h.record.at),
            kind: AuditKind::Admin.as_str().to_owned(),
            subject: None,
            session: None,
            jurisdiction: None,
            payload: serde_json::json!({ "detail": detail }).to_string(),
            profile_hash: String::new(),
            content_hash: None,
        }
    }

    fn wrote(&mut self, n: u64) {
        if self.failing() {
            self.shared.written_late.fetch_add(n, Ordering::AcqRel);
            if self.held() == 0 {
                let (attempts, late) = (self.attempts, self.late);
                self.attempts = 0;
                self.late = 0;
                self.spilled_now = 0;
                self.first_error = None;
                self.shared.outages.fetch_add(1, Ordering::AcqRel);
                self.shared.failing.store(false, Ordering::Release);
                if let Ok(mut e) = self.shared.last_error.lock() {
                    *e = None;
                }
                self.publish();
                // Logged once the state is settled: a subscriber that panics changes nothing.
                tracing::warn!(
                    failed_attempts = attempts,
                    records = late,
                    "audit writes succeed again; every held record is written"
                );
                return;
            }
        }
        self.publish();
    }

    fn failed(&mut self, err: &StoreError) {
        let message = err.to_string();
        if self.attempts == 0 {
            self.noted = false;
            self.late = self.held() as u64;
            self.first_error = Some(message.clone());
        }
        self.attempts += 1;
        self.shared.failed_attempts.fetch_add(1, Ordering::AcqRel);
        self.shared.failing.store(true, Ordering::Release);
        if let Ok(mut e) = self.shared.last_error.lock() {
            *e = Some(message.clone());
        }
        // Everyone waiting hears now: durable callers that their record is held, flushes
        // that they cannot complete.
        let pending = self.pending_error();
        if self.spill.is_none() {
            for held in &mut self.audits {
                if let Some(done) = held.done.take() {
                    let _ = done.send(Err(StoreError::AuditPending(pending.to_string())));
                }
            }
        }
        for (_, done) in self.flushes.drain(..) {
            let _ = done.send(Err(StoreError::AuditPending(pending.to_string())));
        }
        self.publish();
        // Logged once the state is settled: a subscriber that panics changes nothing.
        if self.attempts % LOG_EVERY == 1 {
            tracing::error!(
                records = self.held(),
                attempts = self.attempts,
                error = %message,
                "audit write failed; the records are held in memory and retried"
            );
        }
    }

    fn publish(&self) {
        self.shared
            .pending
            .store(self.held() as u64, Ordering::Release);
    }

    /// Answers the flushes whose records are all written.
    /// Whether a caller waits on what is held: a durable append or a flush.
    fn awaited(&self) -> bool {
        !self.flushes.is_empty() || self.audits.iter().any(|h| h.done.is_some())
    }

    /// Waits up to [`LINGER`] for more records while nothing held is awaited and the batch has
    /// room; returns at once when a durable append or a flush arrives, or the queue closes.
    async fn linger(&mut self) {
        if self.awaited() || !self.rx_open {
            return;
        }
        let sleep = tokio::time::sleep(LINGER);
        tokio::pin!(sleep);
        while self.batch_room() && self.held() < PENDING_LIMIT {
            let msg = tokio::select! {
                biased;
                m = self.urgent.recv(), if self.urgent_open => m.ok_or(true),
                m = self.rx.recv(), if self.rx_open => m.ok_or(false),
                () = &mut sleep => return,
            };
            match msg {
                Ok(m) => {
                    let awaited = matches!(
                        m,
                        Msg::Flush(_) | Msg::FlushTurns(_) | Msg::Append { done: Some(_), .. }
                    );
                    self.accept(m);
                    if awaited {
                        self.drain();
                        return;
                    }
                }
                Err(true) => self.urgent_open = false,
                Err(false) => {
                    self.rx_open = false;
                    return;
                }
            }
        }
    }

    fn answer_flushes(&mut self) {
        let (audits, turns) = (self.audits_written, self.turns_written);
        let mut i = 0;
        while i < self.flushes.len() {
            let (a, t) = self.flushes[i].0;
            if a <= audits && t <= turns {
                let (_, done) = self.flushes.swap_remove(i);
                let _ = done.send(Ok(()));
            } else {
                i += 1;
            }
        }
    }

    /// Appends the held audit records not yet in a spill file to it (one write, one fsync),
    /// then tells their durable callers that the record is held. Without a spill directory,
    /// nothing to do; if the spill file cannot be written, the callers hear that their record
    /// is held in memory only, and the next round tries again.
    async fn spill_held(&mut self) {
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        if self.audits.iter().all(|h| h.spilled) {
            return;
        }
        if spill.current.is_none() {
            let after = match self.head {
                Some(seq) => seq,
                None => self
                    .log
                    .recorded_head()
                    .await
                    .ok()
                    .flatten()
                    .map_or(0, |l| l.seq),
            };
            match spill.dir.create(&spill.database, after) {
                Ok(w) => {
                    spill.files.push(w.path().to_owned());
                    spill.current = Some(w);
                }
                Err(e) => return self.spill_failed(&e.to_string()),
            }
        }
        let Some(w) = spill.current.as_mut() else {
            return;
        };
        let mut records: Vec<&mut NewAuditRecord> = self
            .audits
            .iter_mut()
            .filter(|h| !h.spilled)
            .map(|h| &mut h.record)
            .collect();
        let n = records.len() as u64;
        if let Err(e) = w.append(&mut records) {
            return self.spill_failed(&e.to_string());
        }
        let path = w.path().display().to_string();
        for held in self.audits.iter_mut().filter(|h| !h.spilled) {
            held.spilled = true;
            if let Some(done) = held.done.take() {
                let _ = done.send(Err(StoreError::AuditPending(format!(
                    "the database cannot write; the record is in the spill file `{path}` and is written when it can"
                ))));
            }
        }
        self.spilled_now += n;
        self.shared.spilled.fetch_add(n, Ordering::AcqRel);
        if let Ok(mut e) = self.shared.spill_error.lock() {
            *e = None;
        }
    }

    fn spill_failed(&mut self, why: &str) {
        let pending = format!(
            "{}; the spill file cannot be written either: {why}",
            self.pending_error()
        );
        for held in &mut self.audits {
            if let Some(done) = held.done.take() {
                let _ = done.send(Err(StoreError::AuditPending(pending.clone())));
            }
        }
        let first = self
            .shared
            .spill_error
            .lock()
            .map(|mut e| e.replace(why.to_owned()).is_none())
            .unwrap_or(false);
        if first {
            tracing::error!(error = %why, "the spill file cannot be written; held records are in memory only");
        }
    }

    /// Every held audit record is written: the spill files hold nothing the chain lacks.
    fn clear_spill(&mut self) {
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        spill.current = None;
        for path in spill.files.drain(..) {
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %path.display(), error = %e, "a spill file could not be removed");
            }
        }
        if let Ok(d) = std::fs::File::open(spill.dir.path()) {
            let _ = d.sync_all();
        }
    }

    /// Once, before anything is written: reads the spill files an earlier process left for
    /// this database, asks the chain which of their records it holds (by their marks), and
    /// puts the others in front of everything held, in order. A file that cannot be read back
    /// is left where it is, and said so at error level.
    async fn load_leftovers(&mut self) -> Result<()> {
        let Some(spill) = self.spill.as_mut() else {
            return Ok(());
        };
        if spill.loaded {
            return Ok(());
        }
        let files = match spill.dir.leftovers(&spill.database) {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(error = %e, "spill files cannot be read back; left in place for an operator");
                spill.loaded = true;
                return Ok(());
            }
        };
        if files.is_empty() {
            spill.loaded = true;
            return Ok(());
        }
        let ids: std::collections::HashSet<&str> = files.iter().map(|f| f.id.as_str()).collect();
        let mut written: std::collections::HashSet<(String, u64)> = Default::default();
        let mut after = files.iter().map(|f| f.after_seq).min().unwrap_or(0);
        loop {
            let page = self.log.audit_page(after, 1_000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for row in &page {
                if let Some(mark) = crate::spill::mark_of(&row.payload)
                    && ids.contains(mark.file.as_str())
                {
                    written.insert((mark.file, mark.n));
                }
            }
        }
        let mut front = VecDeque::new();
        for file in &files {
            let mut missing = 0;
            for (n, record) in &file.records {
                if !written.contains(&(file.id.clone(), *n)) {
                    front.push_back(Held {
                        record: record.clone(),
                        done: None,
                        spilled: true,
                    });
                    missing += 1;
                }
            }
            if missing > 0 {
                self.replay_files.push(file.id.clone());
            }
            spill.files.push(file.path.clone());
        }
        spill.loaded = true;
        let n = front.len() as u64;
        tracing::warn!(
            files = files.len(),
            records = n,
            "spill files from an earlier process: their records the chain lacks are written first"
        );
        self.replayed = n;
        self.shared.replayed.fetch_add(n, Ordering::AcqRel);
        self.audits_received += n;
        front.append(&mut self.audits);
        self.audits = front;
        if self.audits.is_empty() {
            self.clear_spill();
        }
        self.publish();
        Ok(())
    }

    /// Sleeps the backoff, still taking durable appends (and telling them their record is
    /// held) so they are never kept waiting for the retry.
    async fn back_off(&mut self) {
        let exp = self.attempts.saturating_sub(1).min(5) as u32;
        let delay = BACKOFF_MIN.saturating_mul(1 << exp).min(BACKOFF_MAX);
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return,
                m = self.urgent.recv(), if self.urgent_open => match m {
                    Some(m) => {
                        // What the queue holds was most likely sent first: keep that order.
                        self.drain_queue();
                        self.accept(m);
                        // A durable caller hears once its record is in the spill file.
                        self.spill_held().await;
                    }
                    None => self.urgent_open = false,
                },
                m = self.rx.recv(), if self.rx_open && self.held() < PENDING_LIMIT => match m {
                    Some(m) => self.accept(m),
                    None => self.rx_open = false,
                },
            }
        }
    }
}

/// Runs a store call in a task of its own, so that a panic inside it (a driver bug, a log
/// subscriber that panics when its output fails) is a failed attempt, not the end of the
/// writer.
async fn isolated<T: Send + 'static>(
    call: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    match tokio::spawn(call).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(StoreError::Panicked(panic_message(&*e.into_panic()))),
        Err(e) => Err(StoreError::Panicked(e.to_string())),
    }
}

/// [`isolated`] for a call that may not be there (`None`: nothing to do).
async fn isolated_if<T: Send + 'static>(
    call: Option<impl Future<Output = Result<T>> + Send + 'static>,
) -> Option<Result<T>> {
    match call {
        Some(call) => Some(isolated(call).await),
        None => None,
    }
}

/// The message a panic was raised with, when it is a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Polls a future and turns a panic inside it into an `Err`, so the writer's loop survives
/// it. The writer's state is only ever changed in steps that leave it consistent (records are
/// removed only after their commit), so carrying on after a caught panic is sound.
struct CatchUnwind<'a, T>(Pin<Box<dyn Future<Output = T> + Send + 'a>>);

impl<T> Future for CatchUnwind<'_, T> {
    type Output = std::thread::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
