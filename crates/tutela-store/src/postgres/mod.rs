//! The PostgreSQL backend: the same queries as SQLite (`src/sql/`, compiled a second time over
//! this module's names), migrations embedded from `migrations/postgres/`, runtime-checked
//! queries (no `DATABASE_URL` at build).
//!
//! Connections: a pool for everything except audit appends and the writer's batches
//! (`POOL_MAX` connections, failing fast with `ACQUIRE_TIMEOUT` when the server is away), a
//! small audit pool and a small batch pool. Every commit but a batch's is durable when it
//! returns (`synchronous_commit = on`, set on each connection whatever the server's default),
//! so an intervention's audit record is on the server's disk before the reply leaves, as on
//! SQLite; a batch of normal turns commits with `synchronous_commit = off`, as SQLite commits
//! it with `synchronous = NORMAL` (see [`PgStore::begin_batch`]).
//!
//! Several gateways on one database: every write transaction that reads before it writes
//! takes one transaction-scoped advisory lock (`WRITE_LOCK`) before anything else, so those
//! writes are serialised across instances exactly as SQLite serialises them across processes
//! (`BEGIN IMMEDIATE`): every read-then-write the shared queries do (open a case unless one is
//! active, claim, resolve, lockouts) sees no concurrent writer. Inside one process the write
//! gate orders those writers first (see the SQLite backend). The frequent writes that read and
//! write one user's rows only (an intervening turn's effects, a newcomer's record:
//! [`PgStore::begin_write_for`]) take `WRITE_LOCK` shared and a lock of their own key instead,
//! and no gate: different keys run side by side, none while a read-then-write across users
//! holds `WRITE_LOCK`. (A person's message to their case is one statement holding the case's
//! row lock: `sql/escalations.rs`.) Two kinds of write take neither:
//!
//! - Audit appends take their own lock (`AUDIT_LOCK`) and nothing else, so the chain is one
//!   chain for every instance: the head is read and advanced under it, and `seq` has no gaps.
//!   (Only the writer task appends, so in-process order is the writer's.)
//! - The writer's batch of turns and tallies ([`PgStore::begin_batch`]) is row upserts only:
//!   clocks and session rows keyed by user (last write wins, and one user's turns are never
//!   in two batches at once: a turn's reply waits for its commit), sums (sessions' turns,
//!   usage, counters) that commute, activity inserted once, new intervention rows. Row locks
//!   make it exact under any concurrency; it takes them in one order (each table's rows sorted
//!   by key, the tables in the statement's fixed order, `postgres/batch.rs`), so two batches
//!   never deadlock. An intervening turn's transaction (`record_effects`) runs the same
//!   statement first, so it takes the batch's row locks in the same order too.
//!
//! TLS: the URL's `sslmode` (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) and
//! `sslrootcert`, as libpq reads them (rustls with the webpki roots, or the given CA).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::MutexGuard;

use crate::audit::Pseudonymizer;
use crate::error::{Result, StoreError};
use crate::sqlite::StoreOptions;

// The queries, shared with the SQLite backend (see `src/sqlite/mod.rs`).
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
// A writer's batch in this backend's own statements: arrays, a constant number of statements.
mod batch;

/// The backend the shared query modules are compiled for.
pub(crate) type Store = PgStore;
/// A connection of this backend.
pub(crate) type Conn = sqlx::PgConnection;
/// A pool of this backend.
pub(crate) type Pool = PgPool;
/// Whether the shared modules speak PostgreSQL.
pub(crate) const PG: bool = true;
/// The two-argument maximum.
pub(crate) const GREATEST: &str = "GREATEST";
/// The aggregate that collects values into a JSON array (`::text` is added by the caller).
pub(crate) const JSON_GROUP_ARRAY: &str = "json_agg";

/// Connections per instance for requests and the writer: a gateway's writes are serialised
/// anyway (one writer task, the advisory lock), reads are short; ten keeps a fleet of gateways
/// far below the server's default `max_connections` (100).
const POOL_MAX: u32 = 10;

/// Connections of the writer's batches (one batch at a time; a second for a retry while the
/// first is being closed).
const BATCH_POOL_MAX: u32 = 2;

/// How long a request waits for a connection before failing: a database that is away shows as
/// failed writes (held and retried by the writer) within seconds, never as a hung turn.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A statement running longer than this is cancelled by the server (a stuck lock shows up as
/// an error, which the writer retries).
const STATEMENT_TIMEOUT: &str = "30s";

/// The advisory lock every write transaction takes (`pg_advisory_xact_lock`): writes of every
/// instance, one at a time. The number is arbitrary and fixed ("tutela" in ASCII).
const WRITE_LOCK: i64 = 0x0000_7475_7465_6c61;

/// The advisory lock of the audit chain's head: appends of every instance, one at a time.
const AUDIT_LOCK: i64 = WRITE_LOCK + 1;

/// The first half of the two-part advisory locks of keyed writes (`begin_write_for`); the
/// second is the key's `hashtext`. ("tute" in ASCII; two-part keys are a space of their own.)
const KEY_LOCKS: i32 = 0x7475_7465;

/// The embedded migrations.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Whether a `database` setting names a PostgreSQL server (`postgres://` or `postgresql://`).
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// A `database` setting as it may be printed or logged: a PostgreSQL URL without its password.
pub fn shown_database(database: &str) -> String {
    if !is_postgres_url(database) {
        return database.to_owned();
    }
    let Some(scheme) = database.find("://") else {
        return database.to_owned();
    };
    let rest = &database[scheme + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &database[..scheme + 3], &rest[at..]),
            None => database.to_owned(),
        },
        None => database.to_owned(),
    }
}

/// Checks a PostgreSQL URL without connecting (configuration validation): its syntax and its
/// `sslmode`. `Err` says what is wrong.
pub fn check_postgres_url(url: &str) -> std::result::Result<(), String> {
    PgConnectOptions::from_str(url)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The PostgreSQL implementation of every store trait.
#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    /// The pool of audit appends (see the module docs).
    audit_pool: PgPool,
    /// The pool of the writer's batches: `synchronous_commit = off` (see [`PgStore::begin_batch`]).
    batch_pool: PgPool,
    /// The in-process write gate, as in the SQLite backend.
    /// INVARIANT: never taken while this task holds a pool connection, and never twice.
    write_gate: crate::gate::WriteGate,
    pseudonyms: Pseudonymizer,
    options: StoreOptions,
    /// How to connect, for the listener of events between instances (its own connection).
    connect: PgConnectOptions,
}

impl PgStore {
    /// Connects to the database at `url` and applies pending migrations (concurrent starts of
    /// several instances are safe: the migrator holds an advisory lock).
    pub async fn open(url: &str, options: StoreOptions) -> Result<Self> {
        let connect = PgConnectOptions::from_str(url)?
            .application_name("tutela")
            .options([
                ("synchronous_commit", "on"),
                ("statement_timeout", STATEMENT_TIMEOUT),
                ("timezone", "UTC"),
            ]);
        Self::open_with(connect, options).await
    }

    /// [`PgStore::open`] with connection options built by the caller (tests: a schema of
    /// their own through `search_path`).
    pub async fn open_with(connect: PgConnectOptions, options: StoreOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_MAX)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(600))
            .connect_with(connect.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        let audit_pool = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(connect.clone())
            .await?;
        // The writer's batches commit without waiting for the WAL flush (see `begin_batch`).
        let batch_pool = PgPoolOptions::new()
            .max_connections(BATCH_POOL_MAX)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(&mut *conn, "SET synchronous_commit = off").await?;
                    Ok(())
                })
            })
            .connect_with(connect.clone())
            .await?;
        let salt: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'subject_salt'")
                .fetch_optional(&pool)
                .await?;
        let salt = salt.ok_or_else(|| StoreError::corrupt("meta", "subject_salt", "missing"))?;
        Ok(Self {
            pool,
            audit_pool,
            batch_pool,
            write_gate: crate::gate::WriteGate::default(),
            pseudonyms: Pseudonymizer::new(salt.into_bytes()),
            options,
            connect,
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
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Waits for the in-process write gate, for a single-statement write outside
    /// [`Self::begin_write`] (one statement is atomic on its own).
    /// The write gate's counts (see [`crate::GateStats`]).
    pub fn write_gate_stats(&self) -> crate::GateStats {
        self.write_gate.stats()
    }

    pub(crate) async fn write_gate(&self) -> MutexGuard<'_, ()> {
        self.write_gate.lock().await
    }

    /// A write transaction on the pool holding the write gate and the advisory write lock.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx<'_>> {
        self.begin_write_on(&self.pool).await
    }

    /// A write transaction on `pool`: on the pool, under the write gate and the advisory write
    /// lock; on the audit pool, under the audit lock alone (see the module docs).
    pub(crate) async fn begin_write_on<'a>(&'a self, pool: &'a PgPool) -> Result<WriteTx<'a>> {
        if std::ptr::eq(pool, &self.audit_pool) {
            let mut tx = pool.begin().await?;
            advisory_lock(&mut tx, AUDIT_LOCK).await?;
            return Ok(WriteTx { tx, _gate: None });
        }
        let gate = self.write_gate.lock().await;
        let mut tx = pool.begin().await?;
        advisory_lock(&mut tx, WRITE_LOCK).await?;
        Ok(WriteTx {
            tx,
            _gate: Some(gate),
        })
    }

    /// A write transaction that reads and writes only what belongs to `key` (one user's clocks,
    /// record, case, session end and notifications: an intervening turn's effects, a
    /// newcomer's record): neither the write gate nor `WRITE_LOCK`
    /// exclusively, but `WRITE_LOCK` shared and a lock of `key` of its own (`KEY_LOCKS`,
    /// `hashtext(key)`), so transactions of different keys, in this instance and in others,
    /// run side by side, two of one key one after the other, and every transaction under
    /// `WRITE_LOCK` (claims, resolutions, lockouts: reads then writes across keys) still sees
    /// none of them running. The shared lock is taken first (one statement, its subquery
    /// evaluated before the key's lock), so no transaction holds a key while it waits for
    /// `WRITE_LOCK`. Rows such a transaction shares with others (counters, through the batch
    /// statement) are taken in the batch statement's order, as by the writer's batches.
    /// Two keys that hash alike only wait for each other.
    pub(crate) async fn begin_write_for(&self, key: &str) -> Result<WriteTx<'_>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock($2, hashtext($3)) \
             FROM (SELECT pg_advisory_xact_lock_shared($1) OFFSET 0) AS write_lock",
        )
        .bind(WRITE_LOCK)
        .bind(KEY_LOCKS)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        Ok(WriteTx { tx, _gate: None })
    }

    /// The transaction of the writer's batch: row upserts only, so neither the write gate nor
    /// an advisory lock (see the module docs); batches of this and other instances, and other
    /// writes, run beside it. On a connection of the batch pool, whose commits do not wait for
    /// the WAL flush (`synchronous_commit = off`): visible to every instance at once, durable
    /// within the server's WAL writer delay (by default at most 0.6 s later) and with the next
    /// durable commit of any connection (the WAL is one sequence). This is the durability
    /// SQLite gives the same rows (`synchronous = NORMAL`): normal turns' clocks, usage and
    /// statistics rows, lost only if the server itself crashes in that window. What must be on
    /// disk before a reply leaves (an intervention's audit record, an intervening turn's
    /// effects) commits with `synchronous_commit = on`, on the other pools.
    pub(crate) async fn begin_batch(&self) -> Result<WriteTx<'_>> {
        let tx = self.batch_pool.begin().await?;
        Ok(WriteTx { tx, _gate: None })
    }

    /// Sends `payload` to every instance listening on this database ([`PgStore::listen`]), once
    /// this statement commits (at once: it is a transaction of its own).
    pub async fn publish(&self, payload: &str) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(EVENTS_CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Listens to the events of every instance on a connection of its own (never one of the
    /// pool's, which it would hold for good).
    pub async fn listen(&self) -> Result<Events> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(self.connect.clone());
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
        listener.listen(EVENTS_CHANNEL).await?;
        Ok(Events {
            listener,
            _pool: pool,
        })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.batch_pool.close().await;
        self.audit_pool.close().await;
        self.pool.close().await;
    }
}

/// The LISTEN/NOTIFY channel of events between the instances on one database.
const EVENTS_CHANNEL: &str = "tutela_events";

/// The events other instances publish ([`PgStore::publish`]), in the order they committed.
pub struct Events {
    listener: sqlx::postgres::PgListener,
    _pool: PgPool,
}

impl Events {
    /// The next event's payload; `Ok(None)` when the connection was lost and made again:
    /// events published meanwhile are lost, so the caller must look again at what they would
    /// have told it. An error when the server cannot be reached (the caller waits and calls
    /// again: the listener reconnects).
    pub async fn next(&mut self) -> Result<Option<String>> {
        Ok(self
            .listener
            .try_recv()
            .await?
            .map(|n| n.payload().to_owned()))
    }
}

/// Takes a transaction-scoped advisory lock (released at commit or rollback).
async fn advisory_lock(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    key: i64,
) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A write transaction that holds the write gate (if it took it) until it commits or is
/// dropped (rolled back).
pub(crate) struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    _gate: Option<MutexGuard<'a, ()>>,
}

impl WriteTx<'_> {
    /// Commits, then lets the next writer in.
    pub(crate) async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

#[cfg(test)]
mod tests {
    use super::{check_postgres_url, shown_database};

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            shown_database("postgres://tutela:s3cret@db:5432/tutela?sslmode=require"),
            "postgres://tutela:***@db:5432/tutela?sslmode=require"
        );
        assert_eq!(
            shown_database("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(shown_database("./tutela.db"), "./tutela.db");
    }

    #[test]
    fn urls_are_checked_without_connecting() {
        assert!(check_postgres_url("postgres://u@h:5432/d?sslmode=verify-full").is_ok());
        assert!(check_postgres_url("postgres://u@h:5432/d?sslmode=sometimes").is_err());
    }
}
