//! Faults: the writer keeps and retries what it cannot write (nothing lost, in order, an
//! outage note that `verify` counts), a queue filled while writes fail loses nothing, and a
//! connection whose commit failed after SQLite rolled back is not handed out again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use tutela_store::{
    AuditLog, AuditQuery, AuditWriter, ChainLink, ComplaintStore, NewAuditRecord, QUEUE_CAPACITY,
    SessionStore, SqliteStore, StoreError, StoreOptions, StoredAuditRecord, UserStore,
};

use crate::support::{TempDir, entry, t};

/// An audit log that fails every append while `broken` is set, like a full disk, and panics
/// instead while `panics` is set, like a driver bug or a log subscriber writing to a full disk;
/// each append first waits for a permit of `open` (an audit commit that takes long while it
/// has none).
struct Faulty {
    inner: Arc<SqliteStore>,
    broken: AtomicBool,
    panics: AtomicBool,
    attempts: AtomicU64,
    open: tokio::sync::Semaphore,
}

impl Faulty {
    /// A log over `inner` that fails while `broken` and never waits.
    fn over(inner: Arc<SqliteStore>, broken: bool) -> Self {
        Faulty {
            inner,
            broken: AtomicBool::new(broken),
            panics: AtomicBool::new(false),
            attempts: AtomicU64::new(0),
            open: tokio::sync::Semaphore::new(tokio::sync::Semaphore::MAX_PERMITS),
        }
    }
}

#[async_trait]
impl AuditLog for Faulty {
    async fn append(&self, records: &[NewAuditRecord]) -> tutela_store::Result<Vec<ChainLink>> {
        let _permit = self.open.acquire().await.expect("never closed");
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.panics.load(Ordering::SeqCst) {
            panic!("the audit backend panicked (test)");
        }
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Database(sqlx::Error::Protocol(
                "database or disk is full".into(),
            )));
        }
        self.inner.append(records).await
    }
    async fn audit_page(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> tutela_store::Result<Vec<StoredAuditRecord>> {
        self.inner.audit_page(after_seq, limit).await
    }
    async fn recorded_head(&self) -> tutela_store::Result<Option<ChainLink>> {
        self.inner.recorded_head().await
    }
    async fn query_audit(&self, q: &AuditQuery) -> tutela_store::Result<Vec<StoredAuditRecord>> {
        self.inner.query_audit(q).await
    }
}

async fn faulty_writer() -> (Arc<Faulty>, AuditWriter, Arc<SqliteStore>) {
    let store = Arc::new(
        SqliteStore::open_in_memory(StoreOptions::default())
            .await
            .unwrap(),
    );
    let faulty = Arc::new(Faulty::over(store.clone(), true));
    let log: Arc<dyn AuditLog> = faulty.clone();
    let turns: Arc<dyn SessionStore> = store.clone();
    let writer = AuditWriter::spawn(log, turns, store.pseudonyms().clone());
    (faulty, writer, store)
}

async fn wait_until(mut ok: impl FnMut() -> bool) {
    for _ in 0..400 {
        if ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("condition not reached in 10 s");
}

#[tokio::test]
async fn failed_writes_are_held_retried_in_order_and_noted() {
    let (faulty, writer, store) = faulty_writer().await;
    // A durable append while the disk is full answers at once: held, not written.
    let err = writer.append_durable(&entry("alice", 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::AuditPending(_)), "{err}");
    for i in 2..=10 {
        writer.record(&entry("bob", i)).await.unwrap();
    }
    let err = writer
        .append_durable(&entry("carol", 11))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AuditPending(_)), "{err}");
    wait_until(|| faulty.attempts.load(Ordering::SeqCst) >= 3).await;
    let h = writer.health();
    assert!(h.failing, "{h:?}");
    assert_eq!(h.pending, 11, "{h:?}");
    assert!(h.last_error.is_some());
    assert!(matches!(
        writer.flush().await,
        Err(StoreError::AuditPending(_))
    ));
    // Space freed: everything is written, in order, after a note of the outage.
    faulty.broken.store(false, Ordering::SeqCst);
    wait_until(|| !writer.health().failing).await;
    writer.flush().await.unwrap();
    let h = writer.health();
    assert_eq!((h.pending, h.outages, h.written_late), (0, 1, 11), "{h:?}");
    let rows = store.audit_page(0, 100).await.unwrap();
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[0].kind, "admin");
    assert!(
        rows[0].payload.contains("audit_write_outage"),
        "{}",
        rows[0].payload
    );
    let ats: Vec<i64> = rows[1..].iter().map(|r| r.at).collect();
    let want: Vec<i64> = (1..=11).map(|i| t(i).unix()).collect();
    assert_eq!(ats, want, "held records keep their order");
    let v = tutela_store::audit::verify(&*store, None).await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!((v.outages.count, v.outages.records_delayed), (1, 11));
    // Later appends are durable again.
    let link = writer.append_durable(&entry("dave", 12)).await.unwrap();
    assert_eq!(link.seq, 13);
}

#[tokio::test]
async fn a_queue_filled_while_writes_fail_loses_nothing() {
    let (faulty, writer, store) = faulty_writer().await;
    let total = (QUEUE_CAPACITY * 3) as i64;
    // More records than the queue holds: `record` waits (backpressure) instead of dropping.
    let producer = {
        let writer = writer.clone();
        tokio::spawn(async move {
            for i in 1..=total {
                writer.record(&entry("bulk", i)).await.unwrap();
            }
        })
    };
    wait_until(|| writer.health().pending >= QUEUE_CAPACITY as u64).await;
    assert!(writer.health().failing);
    faulty.broken.store(false, Ordering::SeqCst);
    producer.await.unwrap();
    wait_until(|| writer.health().pending == 0 && !writer.health().failing).await;
    writer.flush().await.unwrap();
    let v = tutela_store::audit::verify(&*store, None).await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(
        v.records,
        total as u64 + 1,
        "every record and one outage note"
    );
    assert_eq!(v.outages.count, 1);
}

/// The soak's defect: the writer task died (a panic while writes failed: the log subscriber
/// panics when its own writes to a full disk fail) and every later record was refused with
/// "the audit writer has stopped". A panic in the backend, under sustained load, must be one
/// more failed attempt: the writer keeps every record, keeps taking new ones, and writes them
/// all once the backend works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_backend_never_stops_the_writer() {
    let (faulty, writer, store) = faulty_writer().await;
    faulty.panics.store(true, Ordering::SeqCst);
    let total = (QUEUE_CAPACITY * 2) as i64;
    let producer = {
        let writer = writer.clone();
        tokio::spawn(async move {
            for i in 1..=total {
                writer.record(&entry("load", i)).await.unwrap();
            }
        })
    };
    wait_until(|| faulty.attempts.load(Ordering::SeqCst) >= 3).await;
    // Still taking records, durable ones included: held, not refused.
    let err = writer
        .append_durable(&entry("crisis", total + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AuditPending(_)), "{err}");
    let h = writer.health();
    assert!(h.failing, "{h:?}");
    assert!(
        h.last_error.as_deref().unwrap_or("").contains("panicked"),
        "{h:?}"
    );
    // Now like a full disk (an error, no panic), then space is freed.
    faulty.broken.store(true, Ordering::SeqCst);
    faulty.panics.store(false, Ordering::SeqCst);
    let before = faulty.attempts.load(Ordering::SeqCst);
    wait_until(|| faulty.attempts.load(Ordering::SeqCst) >= before + 2).await;
    faulty.broken.store(false, Ordering::SeqCst);
    producer.await.unwrap();
    wait_until(|| writer.health().pending == 0 && !writer.health().failing).await;
    writer.flush().await.unwrap();
    let v = tutela_store::audit::verify(&*store, None).await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(
        v.records,
        total as u64 + 2,
        "every record, the durable one and one outage note"
    );
    assert_eq!(v.outages.count, 1);
}

/// A turn store that panics must not stop the writer either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_turn_store_never_stops_the_writer() {
    let store = Arc::new(
        SqliteStore::open_in_memory(StoreOptions::default())
            .await
            .unwrap(),
    );
    let turns = Arc::new(PanickyTurns {
        inner: store.clone(),
        panics: AtomicBool::new(true),
        attempts: AtomicU64::new(0),
    });
    let log: Arc<dyn AuditLog> = store.clone();
    let turn_store: Arc<dyn SessionStore> = turns.clone();
    let writer = AuditWriter::spawn(log, turn_store, store.pseudonyms().clone());
    store.touch_user("u1", t(0)).await.unwrap();
    for i in 1..=50 {
        writer.record_turn(turn("u1", i)).await.unwrap();
        writer.record(&entry("u1", i)).await.unwrap();
    }
    wait_until(|| turns.attempts.load(Ordering::SeqCst) >= 3).await;
    assert!(writer.health().failing);
    writer.record_turn(turn("u1", 51)).await.unwrap();
    turns.panics.store(false, Ordering::SeqCst);
    wait_until(|| writer.health().pending == 0 && !writer.health().failing).await;
    writer.flush().await.unwrap();
    let state = store.session_state("u1").await.unwrap().unwrap();
    assert_eq!(state.last_activity, Some(t(51)));
    let v = tutela_store::audit::verify(&*store, None).await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    // Every audit record, and an outage note if one was held when the turns failed.
    let rows = store.audit_page(0, 100).await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.kind != "admin").count(), 50);
}

struct PanickyTurns {
    inner: Arc<SqliteStore>,
    panics: AtomicBool,
    attempts: AtomicU64,
}

#[async_trait]
impl SessionStore for PanickyTurns {
    async fn session_state(
        &self,
        user_id: &str,
    ) -> tutela_store::Result<Option<tutela_types::SessionState>> {
        self.inner.session_state(user_id).await
    }
    async fn save_session_state(
        &self,
        user_id: &str,
        state: &tutela_types::SessionState,
        at: tutela_types::Timestamp,
    ) -> tutela_store::Result<()> {
        self.inner.save_session_state(user_id, state, at).await
    }
    async fn record_turn(&self, turn: &tutela_store::TurnRecord) -> tutela_store::Result<()> {
        self.record_turns(std::slice::from_ref(turn)).await
    }
    async fn record_turns(&self, turns: &[tutela_store::TurnRecord]) -> tutela_store::Result<()> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.panics.load(Ordering::SeqCst) {
            panic!("the turn store panicked (test)");
        }
        self.inner.record_turns(turns).await
    }
    async fn record_batch(
        &self,
        turns: &[tutela_store::TurnRecord],
        tallies: &[tutela_store::Tally],
    ) -> tutela_store::Result<()> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.panics.load(Ordering::SeqCst) {
            panic!("the turn store panicked (test)");
        }
        self.inner.record_batch(turns, tallies).await
    }
    async fn end_session(
        &self,
        session_id: &str,
        at: tutela_types::Timestamp,
        reason: &str,
    ) -> tutela_store::Result<()> {
        self.inner.end_session(session_id, at, reason).await
    }
    async fn get_session(
        &self,
        session_id: &str,
    ) -> tutela_store::Result<Option<tutela_store::Session>> {
        self.inner.get_session(session_id).await
    }
    async fn session_durations(
        &self,
        from: tutela_types::Timestamp,
        to: tutela_types::Timestamp,
    ) -> tutela_store::Result<Vec<i64>> {
        self.inner.session_durations(from, to).await
    }
    async fn stamped_state(
        &self,
        user_id: &str,
    ) -> tutela_store::Result<Option<tutela_store::StampedState>> {
        self.inner.stamped_state(user_id).await
    }
    async fn state_stamp(&self, user_id: &str) -> tutela_store::Result<Option<String>> {
        self.inner.state_stamp(user_id).await
    }
    async fn restamp(&self, user_id: &str, stamp: &str) -> tutela_store::Result<()> {
        self.inner.restamp(user_id, stamp).await
    }
    async fn pending(&self, user_id: &str) -> tutela_store::Result<tutela_store::Pending> {
        self.inner.pending(user_id).await
    }
    async fn note_pending(
        &self,
        user_id: &str,
        note: &tutela_store::Pending,
        stamp: &str,
        at: tutela_types::Timestamp,
    ) -> tutela_store::Result<()> {
        self.inner.note_pending(user_id, note, stamp, at).await
    }
    async fn take_handback(&self, user_id: &str) -> tutela_store::Result<Option<i64>> {
        self.inner.take_handback(user_id).await
    }
    async fn take_clearance(
        &self,
        user_id: &str,
    ) -> tutela_store::Result<Option<tutela_types::Clearance>> {
        self.inner.take_clearance(user_id).await
    }
}

fn turn(user: &str, secs: i64) -> tutela_store::TurnRecord {
    tutela_store::TurnRecord {
        user_id: user.into(),
        session_id: format!("{user}-s1"),
        jurisdiction: "cn".into(),
        at: t(secs),
        state: tutela_types::SessionState {
            last_activity: Some(t(secs)),
            ..tutela_types::SessionState::default()
        },
        local_day: t(secs).local_date(0),
        usage_secs: 5,
        stamp: None,
    }
}

#[tokio::test]
async fn turn_records_go_through_the_one_writer() {
    let (faulty, writer, store) = faulty_writer().await;
    faulty.broken.store(false, Ordering::SeqCst);
    store.touch_user("u1", t(0)).await.unwrap();
    let turn = tutela_store::TurnRecord {
        user_id: "u1".into(),
        session_id: "s1".into(),
        jurisdiction: "cn".into(),
        at: t(5),
        state: tutela_types::SessionState {
            last_activity: Some(t(5)),
            ..tutela_types::SessionState::default()
        },
        local_day: t(5).local_date(0),
        usage_secs: 5,
        stamp: None,
    };
    writer.record_turn(turn).await.unwrap();
    writer.flush().await.unwrap();
    let state = store.session_state("u1").await.unwrap().unwrap();
    assert_eq!(state.last_activity, Some(t(5)));
}

/// A commit that fails after SQLite rolled the transaction back (what a full disk does)
/// leaves sqlx counting an open transaction; the connection must not be handed out again.
#[tokio::test]
async fn a_failed_commit_does_not_poison_the_pool() {
    let dir = TempDir::new("poison");
    let store = SqliteStore::open(dir.path().join("t.db"), StoreOptions::default())
        .await
        .unwrap();
    {
        let mut tx = store.pool().begin().await.unwrap();
        // SQLite ends the transaction behind sqlx's back, as it does on SQLITE_FULL.
        sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
        assert!(tx.commit().await.is_err(), "the commit fails");
    }
    // Every later write works (each takes a connection from the pool).
    for i in 0..20 {
        store
            .file_complaint(&tutela_store::NewComplaint {
                user_id: Some(format!("after-{i}")),
                category: "other".into(),
                intervention_id: None,
                body: None,
                at: t(i),
                handling_limit_secs: 3600,
            })
            .await
            .unwrap_or_else(|e| panic!("write {i} after the failed commit: {e}"));
    }
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// The spill file: records held while writes fail survive kill -9.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn spill_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("audit-spill-"))
        })
        .collect();
    v.sort();
    v
}

/// A first process whose writes fail: it takes records (durable ones answered "held"), spills
/// them, and is killed (its runtime dropped with the writer's memory). Returns the spill files.
fn outage_then_kill(db: &std::path::Path, spill: &std::path::Path, then_heal: bool) {
    let rt = runtime();
    rt.block_on(async {
        let store = Arc::new(
            SqliteStore::open(db, StoreOptions::default())
                .await
                .unwrap(),
        );
        let faulty = Arc::new(Faulty::over(store.clone(), false));
        let log: Arc<dyn AuditLog> = faulty.clone();
        let turns: Arc<dyn SessionStore> = store.clone();
        let writer = AuditWriter::spawn_with_spill(
            log,
            turns,
            store.pseudonyms().clone(),
            Some(tutela_store::SpillDir::open(spill).unwrap()),
        );
        writer.append_durable(&entry("before", 1)).await.unwrap();
        faulty.broken.store(true, Ordering::SeqCst);
        for i in 2..=6 {
            let err = writer
                .append_durable(&entry(&format!("crisis-{i}"), i))
                .await
                .unwrap_err();
            // Acknowledged as held: by then the record is in the spill file, fsync'd.
            assert!(err.to_string().contains("spill file"), "{err}");
        }
        for i in 7..=9 {
            writer
                .record(&entry(&format!("normal-{i}"), i))
                .await
                .unwrap();
        }
        wait_until(|| writer.health().spilled == 8).await;
        assert_eq!(spill_files(spill).len(), 1);
        if then_heal {
            // Written after all, then "killed" before the spill file is removed: keep a copy.
            let file = spill_files(spill).remove(0);
            let copy = std::fs::read(&file).unwrap();
            faulty.broken.store(false, Ordering::SeqCst);
            wait_until(|| !writer.health().failing).await;
            writer.flush().await.unwrap();
            assert!(spill_files(spill).is_empty(), "removed once written");
            std::fs::write(&file, copy).unwrap();
        }
    });
    // kill -9: the writer's memory is gone.
    rt.shutdown_background();
}

#[test]
fn records_held_in_an_outage_survive_a_kill_through_the_spill_file() {
    let dir = TempDir::new("spill-kill");
    let db = dir.path().join("t.db");
    let spill = dir.path().join("spill");
    outage_then_kill(&db, &spill, false);
    // The next process over the same database, with the disk working again.
    runtime().block_on(async {
        let store = Arc::new(
            SqliteStore::open(&db, StoreOptions::default())
                .await
                .unwrap(),
        );
        let log: Arc<dyn AuditLog> = store.clone();
        let turns: Arc<dyn SessionStore> = store.clone();
        let writer = AuditWriter::spawn_with_spill(
            log,
            turns,
            store.pseudonyms().clone(),
            Some(tutela_store::SpillDir::open(&spill).unwrap()),
        );
        let link = writer.append_durable(&entry("after", 10)).await.unwrap();
        writer.flush().await.unwrap();
        let rows = store.audit_page(0, 100).await.unwrap();
        let ats: Vec<i64> = rows.iter().map(|r| r.at).collect();
        let t = |i| t(i).unix();
        // Before the outage; the note; the eight held records in order; then the new one.
        assert_eq!(rows.len(), 11, "{ats:?}");
        assert_eq!(rows[0].at, t(1));
        assert!(
            rows[1].payload.contains("replayed_after_restart"),
            "{}",
            rows[1].payload
        );
        assert_eq!(&ats[2..10], &(2..=9).map(t).collect::<Vec<_>>()[..]);
        assert_eq!(link.seq, 11);
        assert!(spill_files(&spill).is_empty(), "replayed, then removed");
        assert_eq!(writer.health().replayed, 8);
        let v = tutela_store::audit::verify(&*store, None).await.unwrap();
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.outages.spilled, 8);
        assert_eq!(v.outages.replayed_after_restart, 8);
        // The records read back: the spill mark is part of the payload.
        let decoded = tutela_store::AuditRecord::try_from(rows[2].clone()).unwrap();
        assert!(decoded.payload.spill.is_some());
    });
}

#[test]
fn a_replay_never_writes_a_record_twice() {
    let dir = TempDir::new("spill-twice");
    let db = dir.path().join("t.db");
    let spill = dir.path().join("spill");
    // The records were written, but the process died before it removed the spill file.
    outage_then_kill(&db, &spill, true);
    assert_eq!(spill_files(&spill).len(), 1);
    runtime().block_on(async {
        let store = Arc::new(
            SqliteStore::open(&db, StoreOptions::default())
                .await
                .unwrap(),
        );
        let log: Arc<dyn AuditLog> = store.clone();
        let turns: Arc<dyn SessionStore> = store.clone();
        let writer = AuditWriter::spawn_with_spill(
            log,
            turns,
            store.pseudonyms().clone(),
            Some(tutela_store::SpillDir::open(&spill).unwrap()),
        );
        writer.append_durable(&entry("after", 10)).await.unwrap();
        writer.flush().await.unwrap();
        let v = tutela_store::audit::verify(&*store, None).await.unwrap();
        assert!(v.is_intact(), "{v:?}");
        // 1 before, the outage note, 8 held, 1 after: nothing twice.
        assert_eq!(v.records, 11, "{v:?}");
        assert_eq!(v.outages.replayed_after_restart, 0);
        assert_eq!(writer.health().replayed, 0);
        assert!(spill_files(&spill).is_empty());
    });
}

/// A round's audit batch and turn batch are committed side by side, and a turn flush (a
/// normal turn on a shared database) is answered once the turn batch is committed, while the
/// round's audit batch is still on its way; a full flush waits for both.
#[tokio::test]
async fn a_turn_flush_waits_for_the_turns_not_the_audit_batch() {
    let store = Arc::new(
        SqliteStore::open_in_memory(StoreOptions::default())
            .await
            .unwrap(),
    );
    let slow = Arc::new(Faulty {
        open: tokio::sync::Semaphore::new(0),
        ..Faulty::over(store.clone(), false)
    });
    let log: Arc<dyn AuditLog> = slow.clone();
    let turns: Arc<dyn SessionStore> = store.clone();
    let writer = AuditWriter::spawn(log, turns, store.pseudonyms().clone());
    // Queued before the writer runs (one thread): one round carries both.
    writer.record(&entry("alice", 1)).await.unwrap();
    writer.record_turn(turn("u1", 5)).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), writer.flush_turns())
        .await
        .expect("answered before the audit batch commits")
        .unwrap();
    let state = store.session_state("u1").await.unwrap().unwrap();
    assert_eq!(state.last_activity, Some(t(5)));
    assert!(store.audit_page(0, 10).await.unwrap().is_empty());
    let flush = writer.flush();
    tokio::pin!(flush);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(50), &mut flush)
            .await
            .is_err(),
        "a full flush waits for the audit batch"
    );
    slow.open.add_permits(1_000);
    flush.await.unwrap();
    assert_eq!(store.audit_page(0, 10).await.unwrap().len(), 1);
}
