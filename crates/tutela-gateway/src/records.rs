//! Everything the gateway writes to the store, in one place. There is one writer, the store's
//! [`AuditWriter`]: normal turns' audit records and clocks are queued to it (they wait only
//! when its queue is full: backpressure, never loss), an intervention's audit record is
//! appended durably (and awaited) before its reply leaves. When writes fail (a full disk) the
//! writer holds the records and retries them; an intervention's reply still leaves, and
//! `/readyz` and `/metrics` say that writes are failing (see [`Records::health`]).

use std::sync::Arc;

use tutela_store::{
    AuditEntry, AuditLog, AuditWriter, Backend, ChainLink, Database, Pseudonymizer, SessionStore,
    StoreError, Tally, TurnRecord, WriterHealth,
};

/// The store as the gateway uses it.
#[derive(Clone)]
pub struct Records {
    /// The backend, for reads and the low-volume writes (escalations, outbox, admin).
    pub backend: Arc<dyn Backend>,
    /// The database (SQLite or PostgreSQL): opened, closed, its salt.
    database: Database,
    writer: AuditWriter,
    /// Salted hashes for subjects and content.
    pub pseudonyms: Pseudonymizer,
    /// The spill directory (`[store] spill_dir`), where an intervention's side effects that
    /// cannot be written are held too (`chat::effects`).
    pub(crate) spill: Option<tutela_store::SpillDir>,
    /// While broken, an intervention's side effects and a person's messages to their case fail
    /// as on a full disk (fault tests, [`crate::Parts::write_fault`]).
    pub(crate) write_fault: Option<Arc<WriteFault>>,
}

impl Records {
    /// Starts the store's writer on the current runtime; audit appends go to `log` (the store
    /// itself, or a wrapper around it in fault tests).
    pub fn start(database: Database, log: Arc<dyn AuditLog>) -> Self {
        Self::start_with_spill(database, log, None)
    }

    /// [`Records::start`] with a spill directory (`[store] spill_dir`): audit records the
    /// database cannot take go there too, and are replayed when it can, even after a restart.
    pub fn start_with_spill(
        database: Database,
        log: Arc<dyn AuditLog>,
        spill: Option<tutela_store::SpillDir>,
    ) -> Self {
        let pseudonyms = database.pseudonyms().clone();
        let backend = database.backend();
        let turns: Arc<dyn SessionStore> = backend.clone();
        let writer = AuditWriter::spawn_with_spill(log, turns, pseudonyms.clone(), spill.clone());
        Self {
            backend,
            database,
            writer,
            pseudonyms,
            spill,
            write_fault: None,
        }
    }

    /// Queues a normal turn's clocks and usage. Waits only while the writer's queue is full;
    /// on a shared database (PostgreSQL) also until they are committed, so the person's next
    /// turn finds them through any instance (the writer still commits many turns at once; the
    /// wait is for the turn batch only, not for the audit records queued before it).
    pub async fn turn(&self, turn: TurnRecord) {
        if let Err(e) = self.writer.record_turn(turn).await {
            tracing::error!(error = %e, "a turn record could not be queued");
            return;
        }
        if self.shared()
            && let Err(e) = self.writer.flush_turns().await
        {
            // Held and retried: the instance's own entry stays right; other instances see
            // the clocks once they are written.
            tracing::warn!(error = %e, "a turn's clocks are not committed yet");
        }
    }

    /// Whether several instances may share the database (PostgreSQL): each keeps its per-user
    /// cache exact by the clocks' stamps and hears the others' events.
    pub fn shared(&self) -> bool {
        self.database.shared()
    }

    /// Tells the other instances on the database about `event` (in the background: nothing
    /// waits for it; a lost event is made up for by the listeners' timeouts and stamps).
    pub(crate) fn publish(&self, event: &Event) {
        if !self.shared() {
            return;
        }
        let Ok(payload) = serde_json::to_string(event) else {
            return;
        };
        let database = self.database.clone();
        tokio::spawn(async move {
            if let Err(e) = database.publish(&payload).await {
                tracing::warn!(error = %e, "an event to the other instances was not sent");
            }
        });
    }

    /// The other instances' events (PostgreSQL); `None` on SQLite.
    pub(crate) async fn listen(&self) -> Result<Option<tutela_store::Events>, StoreError> {
        self.database.listen().await
    }

    /// Queues a decision's statistics rows (see [`Tally`]). Waits only while the writer's
    /// queue is full.
    pub async fn tally(&self, tally: Tally) {
        if let Err(e) = self.writer.record_tally(tally).await {
            tracing::error!(error = %e, "an intervention's rows could not be queued");
        }
    }

    /// Queues a turn record without waiting for room (an intervening turn while writes fail:
    /// it must not wait behind a full queue); committed with the next batch that succeeds.
    pub fn turn_now(&self, turn: TurnRecord) {
        if let Err(e) = self.writer.record_turn_now(turn) {
            tracing::error!(error = %e, "a turn record could not be queued");
        }
    }

    /// Queues an audit record. Waits only while the writer's queue is full.
    pub async fn audit(&self, audit: AuditEntry) {
        if let Err(e) = self.writer.record(&audit).await {
            tracing::error!(error = %e, "an audit record could not be queued");
        }
    }

    /// Queues an audit record without waiting, for a caller that cannot wait (a turn that ends
    /// in a destructor).
    pub fn audit_now(&self, audit: AuditEntry) {
        if let Err(e) = self.writer.record_now(&audit) {
            tracing::error!(error = %e, "an audit record could not be queued");
        }
    }

    /// Appends an audit record and waits until it is committed. An error means it is not on
    /// disk yet: [`StoreError::AuditPending`] when it is held and retried.
    pub async fn audit_durable(&self, audit: AuditEntry) -> Result<ChainLink, StoreError> {
        self.writer.append_durable(&audit).await
    }

    /// Waits until everything queued before the call is committed (tests, and reads that must
    /// see the last turns' rows); fails at once while writes are failing.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.writer.flush().await
    }

    /// The store's write gate: writers waiting now, taken and waited since start.
    pub fn write_gate(&self) -> tutela_store::GateStats {
        self.database.write_gate()
    }

    /// Whether writes succeed, and how many records are held.
    pub fn health(&self) -> WriterHealth {
        self.writer.health()
    }

    /// Writes what is queued (waiting up to `wait` for writes that fail to succeed again),
    /// checkpoints the WAL and closes the database. Returns the records it could not write.
    /// Never panics and never claims a flush it did not see.
    pub async fn close(&self, wait: std::time::Duration) -> u64 {
        let flushed = tokio::time::timeout(wait, async {
            loop {
                match self.writer.flush().await {
                    Ok(()) => return true,
                    Err(StoreError::AuditPending(_)) => {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the audit writer could not be flushed");
                        return false;
                    }
                }
            }
        })
        .await;
        let lost = if flushed == Ok(true) {
            0
        } else {
            self.writer.health().pending.max(1)
        };
        self.database.close().await;
        lost
    }
}

/// An event between the instances on one database (PostgreSQL's NOTIFY; no chat content, no
/// personal data but the user id, which the database holds anyway).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Event {
    /// The instance that published it (its own events are not handled twice).
    pub(crate) from: String,
    /// What happened.
    pub(crate) kind: EventKind,
    /// Whose (for `Wake`).
    #[serde(default)]
    pub(crate) user: Option<String>,
}

/// What an [`Event`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EventKind {
    /// Something for the user's waiting turn or the app's channel (a staff reply, a hand-back):
    /// waiters on the user wake and read the store again.
    Wake,
    /// The console's queue or a case changed: its event streams look again.
    Queue,
}

/// Fault tests: while broken, the writes the held queue retries (an intervention's side
/// effects, a person's message to their case) fail as on a full disk; every attempt is noted.
#[derive(Debug, Default)]
pub struct WriteFault {
    broken: std::sync::atomic::AtomicBool,
    attempts: std::sync::Mutex<Vec<String>>,
}

impl WriteFault {
    /// A switch, broken or not.
    pub fn new(broken: bool) -> Self {
        let f = WriteFault::default();
        f.set(broken);
        f
    }

    /// Breaks or mends the writes.
    pub fn set(&self, broken: bool) {
        self.broken
            .store(broken, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every attempt made while the switch was in place, oldest first: the user's id for side
    /// effects, `case N` for a message to case N.
    pub fn attempts(&self) -> Vec<String> {
        self.attempts.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Notes an attempt at `what`; whether it fails.
    pub(crate) fn fails(&self, what: &str) -> bool {
        if let Ok(mut a) = self.attempts.lock() {
            a.push(what.to_owned());
        }
        self.broken.load(std::sync::atomic::Ordering::SeqCst)
    }
}
