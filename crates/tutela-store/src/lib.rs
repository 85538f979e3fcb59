//! Storage for tutela: users, sessions, usage, interventions, escalations, the notification
//! outbox, report counters, complaints and the tamper-evident audit log.
//!
//! # Shape
//!
//! - Narrow async traits, one per concern: [`UserStore`], [`SessionStore`], [`UsageStore`],
//!   [`InterventionStore`], [`EscalationStore`], [`Outbox`], [`CounterStore`],
//!   [`ComplaintStore`], [`Retention`], [`StaffStore`], [`CaseStore`], [`EffectsStore`] (an intervening turn's writes in one transaction), [`AuditLog`]. They are object-safe (`async-trait`),
//!   so callers can hold `Arc<dyn Backend>` or `&dyn UserStore`. A backend implements them all ([`Backend`]);
//!   today that is [`SqliteStore`] (sqlx, WAL, runtime-checked queries so builds need no
//!   `DATABASE_URL`, migrations embedded from `migrations/sqlite/`). A PostgreSQL backend
//!   implements the same traits with its own `migrations/postgres/`.
//! - [`Store`] is a ready-made handle: it opens the database, hands out the traits
//!   (`store.users()`, `store.sessions()`, ...), owns an [`AuditWriter`], and adds the
//!   audited data-rights operations ([`Store::delete_user`], [`Store::export_user`]).
//!   The [`AuditWriter`] is the only writer of the audit chain and of normal turns' clocks;
//!   a caller that holds a [`SqliteStore`] directly (the gateway) starts one with
//!   [`AuditWriter::spawn`] and writes through it.
//! - Domain types ([`User`], [`Escalation`], [`AuditRecord`], ...) are separate from the
//!   `Stored*` rows of each table; conversions are explicit and report a corrupt value with
//!   its table and column. Rows must stay readable forever: migrations only add.
//!
//! # Time
//!
//! Every method takes the time as a [`Timestamp`] argument; the store never reads the clock.
//! The audit writer forms batches without a timer (group commit: whatever queued while the
//! previous commit ran). Calendar months (monthly active users) and counter days use the
//! fixed UTC offset of the report time zone ([`StoreOptions`]); usage days are the user's
//! local days, computed by the caller.
//!
//! # Writes on the hot path
//!
//! - A normal turn: queue its audit record ([`AuditWriter::record`], returns at once) and its
//!   [`TurnRecord`] ([`AuditWriter::record_turn`]); the writer commits turns in batches with
//!   [`SessionStore::record_turns`] (one transaction for the clocks, session row, daily usage
//!   and monthly activity of many turns).
//! - When writes fail (a full disk), the writer holds what it could not write, in order, and
//!   retries until it is written; see [`AuditWriter`] and [`AuditWriter::health`].
//! - An intervention: [`AuditWriter::append_durable`] returns once the record is committed on a
//!   `synchronous = FULL` connection, so the record is on disk before the reply leaves.
//! - A turn whose reply was for the app and that defers a notice the store does not hold yet,
//!   or a plain-text turn that shows a kept one: [`UserStore::set_deferred_notice`], one
//!   `UPDATE` of the user row. Other turns do not call it.
//!
//! # The audit log
//!
//! Append-only (SQL triggers refuse `UPDATE` and `DELETE`) and hash-chained (see [`audit`] for
//! the canonical encoding). Appends read and advance the head inside one `BEGIN IMMEDIATE`
//! transaction under a process-wide lock, so the chain never forks, even with two processes on
//! one file. [`audit::verify`] (and `tutela audit verify`) walks the chain and names the first
//! record that was edited, deleted, inserted or reordered, and checks the head row; a head
//! saved elsewhere (`--head SEQ:HASH`) also catches a rewrite of the whole chain.
//!
//! Records hold no chat text: users and sessions appear as salted pseudonyms
//! ([`Pseudonymizer`], salt per database), messages as salted content hashes, and the payload
//! holds findings (detector, score, spans, rule), actions and reasons. So deleting a user's data
//! ([`UserStore::delete_user`]: takeover messages, contacts, notifications, complaint texts,
//! session clocks; statistics re-keyed to `deleted:<pseudonym>`) never touches the chain, and
//! the chain still verifies.
//!
//! # SQL conventions
//!
//! A query uses either only `?` or only `?NNN` placeholders: sqlx numbers bare `?` on its own,
//! so a mix binds wrong values. Write transactions begin with `BEGIN IMMEDIATE`.
//!
//! # Example
//!
//! ```ignore
//! let store = Store::open("tutela.db").await?;
//! let user = store.users().touch_user("u-42", now).await?;
//! store.sessions().record_turns(&[turn]).await?;
//! store.audit().record(&entry).await?;            // normal turn: queued
//! store.audit().append_durable(&crisis).await?;   // intervention: committed first
//! assert!(store.verify(None).await?.is_intact());
//! ```

pub mod audit;
mod cases;
mod effects;
mod error;
mod gate;
mod model;
mod obligations;
#[allow(
    clippy::duplicate_mod,
    reason = "the query modules in src/sql/ are compiled once per backend, by design"
)]
mod postgres;
pub mod spill;
#[allow(
    clippy::duplicate_mod,
    reason = "the query modules in src/sql/ are compiled once per backend, by design"
)]
mod sqlite;
mod staff;
mod traits;
mod writer;

use std::path::Path;
use std::sync::Arc;

use tutela_types::Timestamp;

pub use crate::audit::{
    AuditEntry, AuditKind, AuditPayload, AuditQuery, AuditRecord, ChainLink, NewAuditRecord,
    Outages, Pseudonymizer, StoredAuditRecord, Tamper, TamperKind, Verification,
};
pub use crate::cases::{CaseStore, CaseSummary, CaseTurn, NewCaseTurn};
pub use crate::effects::{EffectsStore, EffectsWritten, TurnEffects};
pub use crate::error::{Result, StoreError};
pub use crate::gate::GateStats;
pub use crate::model::{
    Complaint, ComplaintCount, ComplaintStatus, ContactAddress, CounterBump, CounterTotal,
    DailyUsage, DeferredNotice, DeletionReport, Direction, Escalation, EscalationMessage,
    EscalationStatus, Intervention, InterventionCount, MonthlyActive, NewComplaint, NewEscalation,
    NewNotification, Notification, OutboxStatus, Pending, PurgeReport, RetryPolicy, Session,
    StampedState, Tally, TurnRecord, User, UserExport, UserUpdate, month_of, year_days, year_month,
};
pub use crate::obligations::{
    AppealTierCount, EscalationStats, FindingTierCount, ImportUser, InterventionTierCount,
    NewObligation, ObligationKind, ObligationRecord, ObligationStore, Registration, median_sorted,
};
pub use crate::postgres::{Events, PgStore, check_postgres_url, is_postgres_url, shown_database};
pub use crate::spill::{HeldItem, SpillDir, SpillError, SpillMark};
pub use crate::sqlite::{SqliteStore, StoreOptions};
pub use crate::staff::{NewStaff, Staff, StaffRole, StaffSession, StaffStore};
pub use crate::traits::{
    AuditLog, Backend, ComplaintStore, CounterStore, EscalationStore, InterventionStore, Outbox,
    Retention, SessionStore, UsageStore, UserStore,
};
pub use crate::writer::{
    AuditWriter, MAX_BATCH, OUTAGE_EVENT, PENDING_LIMIT, QUEUE_CAPACITY, WriterHealth,
};

/// An open database of either backend: what is not behind the traits (opening, the salt,
/// closing, backend-specific tooling). Everything else goes through `Arc<dyn Backend>`.
///
/// An enum rather than a trait object for this part: it is closed (two backends), its methods
/// differ per backend (a pool of another type), and matching costs nothing; the data access
/// stays a trait object (`dyn Backend`), which every caller already used, so no generic
/// parameter spreads through the gateway and no code is compiled twice outside the store.
#[derive(Clone, Debug)]
pub enum Database {
    /// An embedded SQLite file (or in-memory database).
    Sqlite(Arc<SqliteStore>),
    /// A PostgreSQL server.
    Postgres(Arc<PgStore>),
}

impl Database {
    /// Opens `database`: a `postgres://` (or `postgresql://`) URL selects PostgreSQL, `:memory:`
    /// a throwaway SQLite database, anything else is a SQLite file path. Migrations are applied.
    pub async fn open(database: &str, options: StoreOptions) -> Result<Self> {
        Ok(if is_postgres_url(database) {
            Self::Postgres(Arc::new(PgStore::open(database, options).await?))
        } else if database == ":memory:" {
            Self::Sqlite(Arc::new(SqliteStore::open_in_memory(options).await?))
        } else {
            Self::Sqlite(Arc::new(SqliteStore::open(database, options).await?))
        })
    }

    /// Every store trait.
    pub fn backend(&self) -> Arc<dyn Backend> {
        match self {
            Self::Sqlite(s) => s.clone(),
            Self::Postgres(s) => s.clone(),
        }
    }

    /// Salted hashes for subjects and content, with this database's salt.
    pub fn pseudonyms(&self) -> &Pseudonymizer {
        match self {
            Self::Sqlite(s) => s.pseudonyms(),
            Self::Postgres(s) => s.pseudonyms(),
        }
    }

    /// `sqlite` or `postgres` (logs, metrics, health).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// The migrations applied to this database: how many, and the latest version (migrations
    /// are applied on open; `tutela migrate` reports this).
    pub async fn migrations(&self) -> Result<(u64, i64)> {
        const SQL: &str =
            "SELECT COUNT(*), COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        let (n, latest): (i64, i64) = match self {
            Self::Sqlite(s) => sqlx::query_as(SQL).fetch_one(s.pool()).await?,
            Self::Postgres(s) => sqlx::query_as(SQL).fetch_one(s.pool()).await?,
        };
        Ok((u64::try_from(n).unwrap_or(0), latest))
    }

    /// The counts of the in-process write gate (`/metrics`): writers waiting now, and since
    /// start how many took it and how many of those had to wait.
    pub fn write_gate(&self) -> GateStats {
        match self {
            Self::Sqlite(s) => s.write_gate_stats(),
            Self::Postgres(s) => s.write_gate_stats(),
        }
    }

    /// Whether several gateways may share this database (PostgreSQL): then each keeps its cache
    /// exact by the clocks' stamps and hears the others' events ([`Database::publish`]).
    pub fn shared(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Sends an event to every instance listening on this database (PostgreSQL's NOTIFY);
    /// nothing on SQLite, where the one gateway is every listener.
    pub async fn publish(&self, payload: &str) -> Result<()> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Postgres(s) => s.publish(payload).await,
        }
    }

    /// The events of the other instances (PostgreSQL's LISTEN); `None` on SQLite.
    pub async fn listen(&self) -> Result<Option<Events>> {
        match self {
            Self::Sqlite(_) => Ok(None),
            Self::Postgres(s) => s.listen().await.map(Some),
        }
    }

    /// Closes the database (SQLite: checkpoints the WAL first).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }
}

/// The store handle: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Store {
    db: Database,
    backend: Arc<dyn Backend>,
    audit: AuditWriter,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.db)
            .field("audit", &self.audit)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`, applies migrations and starts
    /// the audit writer. Must be called inside a tokio runtime.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, StoreOptions::default()).await
    }

    /// [`Store::open`] with options.
    pub async fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        Ok(Self::from_db(Database::Sqlite(Arc::new(
            SqliteStore::open(path, options).await?,
        ))))
    }

    /// Opens a `database` setting of either backend (see [`Database::open`]): a
    /// `postgres://` URL, `:memory:`, or a SQLite file path.
    pub async fn connect(database: &str, options: StoreOptions) -> Result<Self> {
        Ok(Self::from_db(Database::open(database, options).await?))
    }

    /// A store over a database opened by the caller.
    pub fn from_db(db: Database) -> Self {
        let backend = db.backend();
        let pseudonyms = db.pseudonyms().clone();
        let log: Arc<dyn AuditLog> = backend.clone();
        let turns: Arc<dyn SessionStore> = backend.clone();
        Self {
            audit: AuditWriter::spawn(log, turns, pseudonyms),
            backend,
            db,
        }
    }

    /// A fresh in-memory database (tests, demos).
    pub async fn open_in_memory() -> Result<Self> {
        Self::open_in_memory_with(StoreOptions::default()).await
    }

    /// [`Store::open_in_memory`] with options.
    pub async fn open_in_memory_with(options: StoreOptions) -> Result<Self> {
        Ok(Self::from_db(Database::Sqlite(Arc::new(
            SqliteStore::open_in_memory(options).await?,
        ))))
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

    /// Obligation records (thresholds, declared triggers) and report statistics.
    pub fn obligations(&self) -> &dyn ObligationStore {
        &*self.backend
    }

    /// Case context (kept turns, findings) and hand-over.
    pub fn cases(&self) -> &dyn CaseStore {
        &*self.backend
    }

    /// Staff accounts and console sessions.
    pub fn staff(&self) -> &dyn StaffStore {
        &*self.backend
    }

    /// Retention purges.
    pub fn retention(&self) -> &dyn Retention {
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
        self.db.pseudonyms()
    }

    /// Every store trait at once (report compilation, tools).
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// The database (backend-specific tooling and tests).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The SQLite backend, if this store is on SQLite (pool access for tools and tests).
    pub fn sqlite(&self) -> Option<&SqliteStore> {
        match &self.db {
            Database::Sqlite(s) => Some(s),
            Database::Postgres(_) => None,
        }
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

    /// Writes what is queued, checkpoints the WAL into the database file and closes it.
    /// Fails (after closing) if queued records could not be written.
    pub async fn close(self) -> Result<()> {
        let flushed = self.audit.flush().await;
        self.db.close().await;
        flushed
    }

    /// What the writer is doing (failing writes, records held): for readiness and metrics.
    pub fn health(&self) -> WriterHealth {
        self.audit.health()
    }
}
