//! Test support: stores over in-memory and file SQLite databases and PostgreSQL (a database of
//! the run's own on the machine's server, a schema per store), temporary directories, samples.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};
use tutela_store::{AuditEntry, AuditKind, AuditPayload, Database, PgStore, Store, StoreOptions};
use tutela_types::{Action, Decided, Reason, Timestamp};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tutela-store-it-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store and what keeps it alive.
pub struct TestStore {
    pub store: Store,
    pub name: &'static str,
    _dir: Option<TempDir>,
}

/// One in-memory and one file-backed store, so every test runs against both; and a
/// PostgreSQL store when the server is there (see [`postgres`]).
pub async fn both() -> Vec<TestStore> {
    let dir = TempDir::new("db");
    let path = dir.path().join("tutela.db");
    let mut stores = vec![
        TestStore {
            store: Store::open_in_memory().await.unwrap(),
            name: "memory",
            _dir: None,
        },
        TestStore {
            store: Store::open(&path).await.unwrap(),
            name: "file",
            _dir: Some(dir),
        },
    ];
    if let Some(store) = postgres(StoreOptions::default()).await {
        stores.push(TestStore {
            store,
            name: "postgres",
            _dir: None,
        });
    }
    stores
}

/// A count on the store's own pool, whichever backend (tests that look at rows).
pub async fn count(store: &Store, sql: &str) -> i64 {
    match store.database() {
        Database::Sqlite(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap(),
        Database::Postgres(s) => sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap(),
    }
}

/// The server the PostgreSQL runs use: `TUTELA_TEST_PG` (a URL of a database that exists),
/// else the machine's server on 127.0.0.1:5432, database `test`, as `postgres`, else as `root`.
fn server_urls() -> Vec<String> {
    match std::env::var("TUTELA_TEST_PG") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://postgres@127.0.0.1:5432/test".into(),
            "postgres://root@127.0.0.1:5432/test".into(),
        ],
    }
}

/// The run's own database: `Some(url)` once created, `None` when there is no server (and it
/// is not required).
static RUN_DB: tokio::sync::OnceCell<Option<String>> = tokio::sync::OnceCell::const_new();

/// Creates this run's database (`tutela_it_<pid>_<nanos>`) on the first call, after dropping
/// those of earlier runs whose process is gone; a watcher process drops it when this process
/// exits (the test harness has no end-of-run hook). Without a server, prints a notice once and
/// returns `None`, unless `TUTELA_REQUIRE_PG=1`: then it fails the test.
async fn run_database() -> Option<String> {
    RUN_DB
        .get_or_init(|| async {
            let required = std::env::var("TUTELA_REQUIRE_PG").is_ok_and(|v| v == "1");
            let mut last_error = String::new();
            for url in server_urls() {
                match PgConnection::connect(&url).await {
                    Ok(mut conn) => return Some(create_run_database(&mut conn, &url).await),
                    Err(e) => last_error = format!("{url}: {e}"),
                }
            }
            assert!(
                !required,
                "TUTELA_REQUIRE_PG=1 but no PostgreSQL server answered ({last_error})"
            );
            // Straight to standard error, past the harness's capture, so the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "notice: the PostgreSQL runs of the store tests are skipped: no server \
                 ({last_error}); TUTELA_REQUIRE_PG=1 makes them mandatory"
            );
            None
        })
        .await
        .clone()
}

async fn create_run_database(conn: &mut PgConnection, server: &str) -> String {
    let stale: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'tutela\\_it\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    for name in stale {
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                .await;
        }
    }
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("tutela_it_{}_{nanos}", std::process::id());
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap();
    // Dropped when this process exits, by a watcher outside it.
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         psql '{server}' -qc 'DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)'",
        pid = std::process::id()
    );
    let _ = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    format!("{base}/{name}")
}

/// A PostgreSQL store in a schema of its own in this run's database, or `None` without a
/// server (see [`run_database`]).
pub async fn postgres(options: StoreOptions) -> Option<Store> {
    Some(postgres_instances(1, options).await?.remove(0))
}

/// `n` stores on one PostgreSQL schema, each with its own pool and writer: `n` gateway
/// instances on one database. `None` without a server.
pub async fn postgres_instances(n: usize, options: StoreOptions) -> Option<Vec<Store>> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let url = run_database().await?;
    let schema = format!("s{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let mut conn = PgConnection::connect(&url).await.unwrap();
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    conn.close().await.unwrap();
    let connect = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let mut stores = Vec::with_capacity(n);
    for _ in 0..n {
        let pg = PgStore::open_with(connect.clone(), options).await.unwrap();
        stores.push(Store::from_db(Database::Postgres(Arc::new(pg))));
    }
    Some(stores)
}

/// A file-backed store in a fresh directory.
pub async fn file_store() -> (Store, PathBuf, TempDir) {
    let dir = TempDir::new("file");
    let path = dir.path().join("tutela.db");
    let store = Store::open(&path).await.unwrap();
    (store, path, dir)
}

pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix(1_790_000_000 + secs)
}

pub fn reason(obligation: &str) -> Reason {
    Reason {
        profile: "cn-anthropomorphic-2026".into(),
        obligation: obligation.into(),
        article: "Art 12".into(),
    }
}

/// An intervention entry for user `user` at `t(secs)`.
pub fn entry(user: &str, secs: i64) -> AuditEntry {
    AuditEntry {
        at: t(secs),
        kind: AuditKind::Intervention,
        user: Some(user.into()),
        session: Some(format!("{user}-s1")),
        jurisdiction: Some("cn".into()),
        payload: AuditPayload {
            actions: vec![Decided {
                action: Action::Escalate {
                    takeover: true,
                    severity: tutela_types::Severity::High,
                },
                reasons: vec![reason("crisis-escalation")],
            }],
            ..AuditPayload::default()
        },
        profile_hash: "profile-snapshot-1".into(),
        content_hash: Some("c0ffee".into()),
    }
}
