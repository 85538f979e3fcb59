//! The SQLite backend: a WAL-mode database file (or an in-memory one for tests), migrations
//! embedded from `migrations/sqlite/`, and runtime-checked queries (no `DATABASE_URL` at build).
//!
//! Connections: a pool for everything except audit appends, with `synchronous = NORMAL`
//! (a commit survives a crash of the process; WAL keeps readers and the writer apart), and one
//! dedicated audit connection with `synchronous = FULL`, so an audit commit is on disk when
//! `append` returns, together with every commit before it. An in-memory database has a single
//! connection shared by both, since each connection to `:memory:` would be a separate database.
//!
//! Writers in this process queue on one FIFO lock, the write gate ([`SqliteStore::begin_write`],
//! [`SqliteStore::write_gate`]), taken before a connection and held to the commit: SQLite has
//! one writer at a time anyway, and a writer that meets the lock inside SQLite sleeps in its
//! busy handler (1, 2, 5 … 100 ms steps, measured as the gateway's latency tail), while one
//! that waits on the gate wakes the moment the previous commit ends. Other processes (the CLI
//! beside a running `serve`) still meet `BEGIN IMMEDIATE` and the busy timeout.
//!
//! Parameters: a query uses either only `?` or only `?NNN`, never both; sqlx numbers bare `?`
//! on its own, so a mix binds the wrong values.

// The queries, shared with the PostgreSQL backend (`src/sql/`, compiled once per backend over
// the names below; `$N` placeholders, which sqlx reads on SQLite too).
#[path = "../sql/audit.rs"]
mod audit;
#[path = "../sql/cases.rs"]
mod cases;
#[path = "../sql/complaints.rs"]
mod complaints;
#[path = "../sql/effects.rs"]
mod effects;
#[path = "../sql/escalations.rs"]
mod escalations;
#[path = "../sql/obligations.rs"]
mod obligations;
#[path = "../sql/outbox.rs"]
mod outbox;
#[path = "../sql/reports.rs"]
mod reports;
#[path = "../sql/rows.rs"]
mod rows;
#[path = "../sql/sessions.rs"]
mod sessions;
#[path = "../sql/staff.rs"]
mod staff;
#[path = "../sql/tiers.rs"]
mod tiers;
#[path = "../sql/users.rs"]
mod users;
// A writer's batch in this backend's own statements.
mod batch;

/// The backend the shared query modules are compiled for.
pub(crate) type Store = SqliteStore;
/// A connection of this backend.
pub(crate) type Conn = sqlx::SqliteConnection;
/// A pool of this backend.
pub(crate) type Pool = SqlitePool;
/// Whether the shared modules speak PostgreSQL.
pub(crate) const PG: bool = false;
/// The two-argument maximum.
pub(crate) const GREATEST: &str = "MAX";
/// The aggregate that collects values into a JSON array (text).
pub(crate) const JSON_GROUP_ARRAY: &str = "json_group_array";

/// A `BEGIN IMMEDIATE` transaction: it takes the write lock at once, so a read inside it can
/// never be invalidated by another writer (no `SQLITE_BUSY` on upgrade).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::MutexGuard;

use crate::audit::Pseudonymizer;
use crate::error::{Result, StoreError};

/// Pool size for a database file: readers run in parallel under WAL; writers queue on SQLite's
/// lock (see `BUSY_TIMEOUT`). Eight covers a 2–8 core machine without idle waste.
const POOL_SIZE: u32 = 8;

/// How long a writer waits for SQLite's write lock before failing: long enough to ride out a
/// checkpoint or a burst, short enough that a stuck request fails visibly.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page cache of the audit connection (negative: KiB). The default 2 MB spills to the WAL in
/// the middle of a 512-record batch (profiled: `pagerStress`); 16 MB holds a batch with its
/// index pages. Only the one audit connection gets it; it fills only as it is used.
const AUDIT_CACHE_KIB: &str = "-16384";

/// The embedded migrations.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite implementation of every store trait.
#[derive(Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The audit connection (FULL sync); the same pool as `pool` for in-memory databases.
    audit_pool: SqlitePool,
    /// The write gate: every write in this process (audit appends included) holds it from
    /// before its connection is taken to its commit, so writers queue here in order rather
    /// than sleep in SQLite's busy handler. Across processes `BEGIN IMMEDIATE` does the same.
    /// INVARIANT: never taken while this task holds a pool connection, and never twice.
    write_gate: crate::gate::WriteGate,
    /// Salted hashes for subjects and content (salt from the `meta` table).
    pseudonyms: Pseudonymizer,
    options: StoreOptions,
}

/// Deployment choices the store needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// The fixed UTC offset, in minutes east, of the report time zone: months of activity
    /// (monthly active users) are calendar months there. `480` for China; default UTC.
    pub report_utc_offset_minutes: i32,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and applies pending migrations.
    pub async fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(1)
            .after_release(|conn, _| Box::pin(release_unless_poisoned(conn)))
            .connect_with(base.clone().synchronous(SqliteSynchronous::Normal))
            .await?;
        MIGRATOR.run(&pool).await?;
        let audit_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .after_release(|conn, _| Box::pin(release_unless_poisoned(conn)))
            .connect_with(
                base.synchronous(SqliteSynchronous::Full)
                    .pragma("cache_size", AUDIT_CACHE_KIB),
            )
            .await?;
        Self::finish(pool, audit_pool, options).await
    }

    /// A fresh in-memory database with the schema applied (tests, demos).
    pub async fn open_in_memory(options: StoreOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection that lives as long as the pool: the database is that connection.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await?;
        MIGRATOR.run(&pool).await?;
        Self::finish(pool.clone(), pool, options).await
    }

    async fn finish(
        pool: SqlitePool,
        audit_pool: SqlitePool,
        options: StoreOptions,
    ) -> Result<Self> {
        let salt = subject_salt(&pool).await?;
        Ok(Self {
            pool,
            audit_pool,
            write_gate: crate::gate::WriteGate::default(),
            pseudonyms: Pseudonymizer::new(salt),
            options,
        })
    }

    /// Salted hashes for subjects and content, with this database's salt.
    pub fn pseudonyms(&self) -> &Pseudonymizer {
        &self.pseudonyms
    }

    /// The options the store was opened with.
    pub fn options(&self) -> StoreOptions {
        self.options
    }

    /// The connection pool, for backend-specific tooling and tests.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Waits for the write gate (see the module docs), for a write outside [`Self::begin_write`].
    /// The write gate's counts (see [`crate::GateStats`]).
    pub fn write_gate_stats(&self) -> crate::GateStats {
        self.write_gate.stats()
    }

    pub(crate) async fn write_gate(&self) -> MutexGuard<'_, ()> {
        self.write_gate.lock().await
    }

    /// A write transaction (`BEGIN IMMEDIATE`) on the pool, holding the write gate until it
    /// ends.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<'_>> {
        self.begin_write_on(&self.pool).await
    }

    /// A write transaction that reads and writes only what belongs to `key` (one user's rows,
    /// one case's messages): on SQLite a write transaction like any other (the file has one
    /// writer at a time); on PostgreSQL one that runs beside other keys' (see
    /// `PgStore::begin_write_for`).
    pub(crate) async fn begin_write_for(&self, _key: &str) -> Result<WriteTx<'_>> {
        self.begin_write().await
    }

    /// The transaction of the writer's batch: on SQLite a write transaction like any other.
    pub(crate) async fn begin_batch(&self) -> Result<WriteTx<'_>> {
        self.begin_write().await
    }

    /// A write transaction on `pool` (the pool or the audit connection), holding the gate.
    pub(crate) async fn begin_write_on<'a>(&'a self, pool: &'a SqlitePool) -> Result<WriteTx<'a>> {
        let gate = self.write_gate.lock().await;
        let tx = pool.begin_with(BEGIN_WRITE).await?;
        Ok(WriteTx { tx, _gate: gate })
    }

    /// Checkpoints the WAL into the database file (truncating it) and closes every
    /// connection. A failed checkpoint is logged; SQLite retries it on the next open.
    pub async fn close(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint at close failed");
        }
        self.audit_pool.close().await;
        self.pool.close().await;
    }
}

/// A write transaction that holds the write gate until it commits or is dropped (rolled back).
pub(crate) struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _gate: MutexGuard<'a, ()>,
}

impl WriteTx<'_> {
    /// Commits, then lets the next writer in.
    pub(crate) async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Whether a connection handed back to the pool may be used again.
///
/// A `COMMIT` that fails after SQLite rolled the transaction back by itself (a full disk, an
/// I/O error) leaves sqlx counting an open transaction on the connection: its own rollback then
/// fails too ("no transaction is active"), and every later `begin_with` on that connection fails
/// with "attempted to call begin_with at non-zero transaction depth", for as long as the
/// process lives. Such a connection is closed instead of returned (the pool opens a fresh one).
/// A connection that looks inside a transaction may only have a rollback queued by a dropped
/// transaction: a ping lets that run first (only then, so a healthy release costs no round trip).
async fn release_unless_poisoned(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<bool> {
    use sqlx::Connection as _;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("closing a database connection left inside a failed transaction");
        return Ok(false);
    }
    Ok(true)
}

/// The per-database salt for pseudonyms (created by the first migration).
async fn subject_salt(pool: &SqlitePool) -> Result<Vec<u8>> {
    let salt: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'subject_salt'")
            .fetch_optional(pool)
            .await?;
    let salt = salt.ok_or_else(|| StoreError::corrupt("meta", "subject_salt", "missing"))?;
    Ok(salt.into_bytes())
}
