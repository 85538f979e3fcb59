//! Storage for tutela: users, sessions, usage, interventions, escalations, the notification
//! outbox, report counters and the tamper-evident audit log.
//!
//! # Shape
//!
//! - Narrow async traits, one per concern: [`UserStore`], [`SessionStore`], [`UsageStore`],
//!   [`InterventionStore`], [`EscalationStore`], [`Outbox`], [`CounterStore`],
//!   [`ComplaintStore`], [`AuditLog`].
//!   A backend implements them all ([`Backend`]); today that is [`SqliteStore`] (sqlx, WAL,
//!   migrations embedded from `migrations/sqlite/`); a PostgreSQL backend implements the same
//!   traits with its own `migrations/postgres/`.
//! - [`Store`] is the handle the gateway and the CLI hold: it opens the database, hands out the
//!   traits (`store.users()`, `store.sessions()`, ...), and owns the [`AuditWriter`].
//! - Domain types ([`User`], [`Escalation`], [`AuditRecord`], ...) are separate from the
//!   `Stored*` rows of each table; conversions are explicit and report corrupt values with the
//!   table and column.
//!
//! # Time
//!
//! Every method takes the time as a [`Timestamp`] argument. The store never reads the clock;
//! the audit writer forms batches without a timer.
//!
//! # The audit log
//!
//! Append-only and hash-chained (see [`audit`] for the encoding). All appends go through the
//! one [`AuditWriter`] task per [`Store`], inside one write transaction each, so the chain
//! never forks:
//! - `store.audit().append_durable(&entry).await` returns once the record is committed with
//!   `synchronous = FULL`: use it for interventions, before the reply leaves.
//! - `store.audit().record(&entry).await` only queues (it waits only if 4,096 records are
//!   already queued): use it for normal turns. `flush()` waits for the queue.
//! - [`Store::verify`] (and `tutela audit verify`) walks the chain and names the first record
//!   that was edited, deleted, inserted or reordered.
//!
//! Records hold no chat text: users and sessions appear as salted pseudonyms
//! ([`Pseudonymizer`]), messages as salted content hashes, and the payload holds findings,
//! actions and reasons. So [`Store::delete_user`] removes a user's content (takeover messages,
//! contacts, notifications, session clocks) and the chain still verifies.
//!
//! # Example
//!
//! ```ignore
//! let store = Store::open("tutela.db").await?;
//! let user = store.users().touch_user("u-42", now).await?;
//! store.sessions().record_turn(&turn).await?;
//! store.audit().record(&entry).await?;            // normal turn: queued
//! store.audit().append_durable(&crisis).await?;   // intervention: committed first
//! assert!(store.verify(None).await?.is_intact());
//! ```

pub mod audit;
mod error;
mod model;
mod sqlite;
mod traits;
mod writer;

use std::path::Path;
use std::sync::Arc;

use tutela_types::Timestamp;

pub use crate::audit::{
    AuditEntry, AuditKind, AuditPayload, AuditQuery, AuditRecord, ChainLink, NewAuditRecord,
    Pseudonymizer, StoredAuditRecord, Tamper, TamperKind, Verification,
};
pub use crate::error::{Result, StoreError};
pub use crate::model::{
    Complaint, ComplaintCount, ComplaintStatus, ContactAddress, CounterTotal, DailyUsage,
    DeletionReport, Direction, Escalation, EscalationMessage, EscalationStatus, Intervention,
    InterventionCount, MonthlyActive, NewComplaint, NewEscalation, NewNotification, Notification,
    OutboxStatus, RetryPolicy, Session, TurnRecord, User, UserExport, UserUpdate, month_of,
    year_days, year_month,
};
pub use crate::sqlite::{SqliteStore, StoreOptions};
pub use crate::traits::{
    AuditLog, Backend, ComplaintStore, CounterStore, EscalationStore, InterventionStore, Outbox,
    SessionStore, UsageStore, UserStore,
};
pub use crate::writer::{AuditWriter, MAX_BATCH, QUEUE_CAPACITY};

/// The store handle: cheap to clone, shared by every request.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<SqliteStore>,
    audit: AuditWriter,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`, applies migrations and starts
    /// the audit writer. Must be called inside a tokio runtime.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, StoreOptions::default()).await
    }

    /// [`Store::open`] with options.
    pub async fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        Ok(Self::from_backend(SqliteStore::open(path, options).await?))
    }

    /// A fresh in-memory database (tests, demos).
    pub async fn open_in_memory() -> Result<Self> {
        Self::open_in_memory_with(StoreOptions::default()).await
    }

    /// [`Store::open_in_memory`] with options.
    pub async fn open_in_memory_with(options: StoreOptions) -> Result<Self> {
        Ok(Self::from_backend(
            SqliteStore::open_in_memory(options).await?,
        ))
    }

    fn from_backend(backend: SqliteStore) -> Self {
        let backend = Arc::new(backend);
        let pseudonyms = backend.pseudonyms().clone();
        let log: Arc<dyn AuditLog> = backend.clone();
        Self {
            audit: AuditWriter::spawn(log, pseudonyms),
            backend,
        }
    }

    /// Users.
    pub fn users(&self) -> &dyn UserStore {
        &*self.backend
    }

    /// Session clocks and session rows.
    pub fn sessions(&self) -> &dyn SessionStore {
        &*self.backend
    }

    /// Daily usage and monthly activity.
    pub fn usage(&self) -> &dyn UsageStore {
        &*self.backend
    }

    /// Interventions.
    pub fn interventions(&self) -> &dyn InterventionStore {
        &*self.backend
    }

    /// Escalation cases and takeover messages.
    pub fn escalations(&self) -> &dyn EscalationStore {
        &*self.backend
    }

    /// The notification outbox.
    pub fn outbox(&self) -> &dyn Outbox {
        &*self.backend
    }

    /// Report counters.
    pub fn counters(&self) -> &dyn CounterStore {
        &*self.backend
    }

    /// Complaints and appeals.
    pub fn complaints(&self) -> &dyn ComplaintStore {
        &*self.backend
    }

    /// Read access to the audit log (appends go through [`Store::audit`]).
    pub fn audit_log(&self) -> &dyn AuditLog {
        &*self.backend
    }

    /// The audit writer: `append_durable`, `record`, `flush`.
    pub fn audit(&self) -> &AuditWriter {
        &self.audit
    }

    /// Salted hashes for subjects (audit queries by user) and message content.
    pub fn pseudonyms(&self) -> &Pseudonymizer {
        self.backend.pseudonyms()
    }

    /// The SQLite backend itself (pool access for tools and tests).
    pub fn sqlite(&self) -> &SqliteStore {
        &self.backend
    }

    /// Flushes queued audit records, then walks the chain. `expected` is a head saved
    /// elsewhere earlier; see [`audit`].
    pub async fn verify(&self, expected: Option<ChainLink>) -> Result<Verification> {
        self.audit.flush().await?;
        audit::verify(&*self.backend, expected).await
    }

    /// Audit records, decoded (admin audit query). Use [`Pseudonymizer::subject`] for
    /// `query.subject`.
    pub async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.backend
            .query_audit(query)
            .await?
            .into_iter()
            .map(AuditRecord::try_from)
            .collect()
    }

    /// Deletes a user's personal data (CN Art 16; see [`UserStore::delete_user`]) and records
    /// the deletion in the audit log (durably) under the user's pseudonym.
    pub async fn delete_user(&self, id: &str, at: Timestamp) -> Result<DeletionReport> {
        let report = self.backend.delete_user(id, at).await?;
        self.audit
            .append_durable(&AuditEntry {
                at,
                kind: AuditKind::DataDeletion,
                user: Some(id.to_owned()),
                session: None,
                jurisdiction: None,
                payload: AuditPayload::detail(serde_json::json!({
                    "contacts": report.contacts,
                    "messages": report.messages,
                    "notifications": report.notifications,
                    "complaint_texts": report.complaint_texts,
                })),
                profile_hash: String::new(),
                content_hash: None,
            })
            .await?;
        Ok(report)
    }

    /// Everything held about a user (CN Art 16 copy); records the export in the audit log.
    pub async fn export_user(&self, id: &str, at: Timestamp) -> Result<Option<UserExport>> {
        let export = self.backend.export_user(id, at).await?;
        if export.is_some() {
            self.audit
                .append_durable(&AuditEntry {
                    at,
                    kind: AuditKind::DataExport,
                    user: Some(id.to_owned()),
                    session: None,
                    jurisdiction: None,
                    payload: AuditPayload::default(),
                    profile_hash: String::new(),
                    content_hash: None,
                })
                .await?;
        }
        Ok(export)
    }

    /// Writes what is queued and closes the database.
    pub async fn close(self) -> Result<()> {
        let flushed = self.audit.flush().await;
        self.backend.close().await;
        flushed
    }
}
