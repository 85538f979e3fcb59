//! The audit log: durable and queued appends, reading back, concurrency (the chain never
//! forks), and every kind of tampering done directly on the SQLite file through SQL.

use std::path::Path;

use sqlx::Connection;
use tutela_store::{
    AuditKind, AuditQuery, ChainLink, Store, StoredAuditRecord, TamperKind, Verification,
};

use crate::support::{both, count, entry, file_store, t};

/// Appends `n` intervention records durably and closes the store.
async fn chain_of(n: i64) -> (std::path::PathBuf, crate::support::TempDir, ChainLink) {
    let (store, path, dir) = file_store().await;
    let mut last = None;
    for i in 1..=n {
        last = Some(
            store
                .audit()
                .append_durable(&entry(&format!("u{}", i % 3), i))
                .await
                .unwrap(),
        );
    }
    store.close().await.unwrap();
    (path, dir, last.unwrap())
}

/// Runs SQL on the database file through its own connection, as an attacker with file access
/// would, after dropping the append-only triggers.
async fn tamper(path: &Path, statements: &[&str]) {
    let url = format!("sqlite://{}", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("DROP TRIGGER IF EXISTS audit_log_no_update")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER IF EXISTS audit_log_no_delete")
        .execute(&mut conn)
        .await
        .unwrap();
    for s in statements {
        sqlx::query(s).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
}

async fn verify_file(path: &Path, expected: Option<ChainLink>) -> Verification {
    let store = Store::open(path).await.unwrap();
    let v = store.verify(expected).await.unwrap();
    store.close().await.unwrap();
    v
}

async fn read_row(path: &Path, seq: i64) -> StoredAuditRecord {
    let url = format!("sqlite://{}", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let row = sqlx::query_as("SELECT * FROM audit_log WHERE seq = ?")
        .bind(seq)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    row
}

fn problem(v: &Verification) -> (i64, TamperKind) {
    let t = v
        .tamper
        .clone()
        .unwrap_or_else(|| panic!("not detected: {v:?}"));
    (t.seq, t.problem)
}

#[tokio::test]
async fn durable_and_queued_appends_form_one_chain() {
    for ts in both().await {
        let s = &ts.store;
        let first = s.audit().append_durable(&entry("alice", 1)).await.unwrap();
        assert_eq!(first.seq, 1, "{}", ts.name);
        for i in 2..=50 {
            s.audit().record(&entry("bob", i)).await.unwrap();
        }
        s.audit().try_record(&entry("carol", 51)).unwrap();
        let last = s.audit().append_durable(&entry("alice", 52)).await.unwrap();
        assert_eq!(last.seq, 52, "{}", ts.name);
        let v = s.verify(None).await.unwrap();
        assert!(v.is_intact(), "{}: {v:?}", ts.name);
        assert_eq!(v.records, 52);
        assert_eq!(v.head, Some(last.clone()));
        assert_eq!(s.audit_log().recorded_head().await.unwrap(), Some(last));
    }
}

#[tokio::test]
async fn records_hold_pseudonyms_not_ids_and_read_back() {
    for ts in both().await {
        let s = &ts.store;
        s.audit().append_durable(&entry("alice", 1)).await.unwrap();
        s.audit().append_durable(&entry("bob", 2)).await.unwrap();
        s.audit().append_durable(&entry("alice", 3)).await.unwrap();
        let alice = s.pseudonyms().subject("alice");
        let recs = s
            .query_audit(&AuditQuery {
                subject: Some(alice.clone()),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 3]);
        let r = &recs[0];
        assert_eq!(r.kind, AuditKind::Intervention);
        assert_eq!(r.subject.as_deref(), Some(alice.as_str()));
        assert_ne!(r.subject.as_deref(), Some("alice"));
        assert_eq!(r.payload, entry("alice", 1).payload);
        assert_eq!(r.profile_hash, "profile-snapshot-1");
        // The raw id appears nowhere in the stored rows.
        let raw = count(
            s,
            "SELECT COUNT(*) FROM audit_log WHERE subject LIKE '%alice%' \
             OR session LIKE '%alice%' OR payload LIKE '%alice%'",
        )
        .await;
        assert_eq!(raw, 0, "{}", ts.name);

        let window = s
            .query_audit(&AuditQuery {
                from: Some(t(2)),
                to: Some(t(3)),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(window.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
        let paged = s
            .query_audit(&AuditQuery {
                after_seq: Some(1),
                limit: 1,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(paged.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
        let page = s.audit_log().audit_page(1, 10).await.unwrap();
        assert_eq!(page.len(), 2);
        assert!(page.iter().all(|r| r.compute_hash() == r.hash));
    }
}

#[tokio::test]
async fn empty_log_verifies() {
    for ts in both().await {
        let v = ts.store.verify(None).await.unwrap();
        assert!(v.is_intact());
        assert_eq!((v.records, v.head), (0, None));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_never_fork_the_chain() {
    for ts in both().await {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let s = ts.store.clone();
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..25 {
                    let e = entry(&format!("w{w}"), i);
                    if i % 2 == 0 {
                        seqs.push(s.audit().append_durable(&e).await.unwrap().seq);
                    } else {
                        s.audit().record(&e).await.unwrap();
                    }
                }
                seqs
            }));
        }
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.extend(task.await.unwrap());
        }
        seqs.sort_unstable();
        let before = seqs.len();
        seqs.dedup();
        assert_eq!(seqs.len(), before, "{}: two appends got one seq", ts.name);
        let v = ts.store.verify(None).await.unwrap();
        assert!(v.is_intact(), "{}: {v:?}", ts.name);
        assert_eq!(v.records, 200, "{}", ts.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_share_one_chain() {
    let (a, path, _dir) = file_store().await;
    let b = Store::open(&path).await.unwrap();
    let (ra, rb) = tokio::join!(
        async {
            for i in 0..30 {
                a.audit().append_durable(&entry("a", i)).await.unwrap();
            }
        },
        async {
            for i in 0..30 {
                b.audit().append_durable(&entry("b", i)).await.unwrap();
            }
        }
    );
    let ((), ()) = (ra, rb);
    let v = a.verify(None).await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.records, 60);
}

#[tokio::test]
async fn the_database_refuses_ordinary_edits() {
    let (store, _path, _dir) = file_store().await;
    store.audit().append_durable(&entry("u", 1)).await.unwrap();
    let pool = store.sqlite().unwrap().pool();
    let upd = sqlx::query("UPDATE audit_log SET kind = 'turn'")
        .execute(pool)
        .await;
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    let del = sqlx::query("DELETE FROM audit_log").execute(pool).await;
    assert!(del.unwrap_err().to_string().contains("append-only"));
}

#[tokio::test]
async fn an_edited_field_is_detected() {
    let (path, _dir, _) = chain_of(6).await;
    tamper(
        &path,
        &["UPDATE audit_log SET jurisdiction = 'eu' WHERE seq = 3"],
    )
    .await;
    assert_eq!(
        problem(&verify_file(&path, None).await),
        (3, TamperKind::ContentMismatch)
    );
}

#[tokio::test]
async fn an_edited_payload_with_a_recomputed_hash_breaks_the_next_link() {
    let (path, _dir, _) = chain_of(6).await;
    let mut row = read_row(&path, 3).await;
    row.payload = r#"{"actions":[]}"#.into();
    let forged = row.compute_hash();
    let sql = format!(
        "UPDATE audit_log SET payload = '{}', hash = '{forged}' WHERE seq = 3",
        row.payload
    );
    tamper(&path, &[&sql]).await;
    let v = verify_file(&path, None).await;
    assert_eq!(problem(&v), (4, TamperKind::BrokenLink));
    assert_eq!(v.records, 3);
    let text = v.tamper.unwrap().to_string();
    assert!(text.starts_with("record 4: prev_hash"), "{text}");
}

#[tokio::test]
async fn a_deleted_record_is_detected() {
    let (path, _dir, _) = chain_of(6).await;
    tamper(&path, &["DELETE FROM audit_log WHERE seq = 3"]).await;
    let v = verify_file(&path, None).await;
    assert_eq!(problem(&v), (4, TamperKind::Missing { expected: 3 }));
    assert!(
        v.tamper
            .unwrap()
            .to_string()
            .contains("record 3 is missing")
    );
}

#[tokio::test]
async fn deleting_the_newest_records_is_detected() {
    let (path, _dir, _) = chain_of(6).await;
    tamper(&path, &["DELETE FROM audit_log WHERE seq >= 5"]).await;
    assert_eq!(
        problem(&verify_file(&path, None).await),
        (4, TamperKind::Truncated { head: 6 })
    );
}

#[tokio::test]
async fn deleting_the_first_record_is_detected() {
    let (path, _dir, _) = chain_of(3).await;
    tamper(&path, &["DELETE FROM audit_log WHERE seq = 1"]).await;
    assert_eq!(
        problem(&verify_file(&path, None).await),
        (2, TamperKind::Missing { expected: 1 })
    );
}

#[tokio::test]
async fn an_inserted_record_is_detected() {
    let (path, _dir, _) = chain_of(6).await;
    // Make room at seq 3 and put a forged record there, chained properly to record 2.
    let two = read_row(&path, 2).await;
    let mut forged = two.clone();
    forged.seq = 3;
    forged.prev_hash = two.hash.clone();
    forged.jurisdiction = Some("us-ca".into());
    forged.hash = forged.compute_hash();
    let insert = format!(
        "INSERT INTO audit_log SELECT 3, at, kind, subject, session, 'us-ca', payload, \
         profile_hash, content_hash, '{}', '{}' FROM audit_log WHERE seq = 2",
        forged.prev_hash, forged.hash
    );
    tamper(
        &path,
        &[
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3",
            "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000",
            &insert,
        ],
    )
    .await;
    // Record 3 is the forgery and links fine; the record after it was moved from seq 3 to 4.
    assert_eq!(
        problem(&verify_file(&path, None).await),
        (4, TamperKind::ContentMismatch)
    );
}

#[tokio::test]
async fn a_record_appended_outside_the_store_is_detected() {
    let (path, _dir, head) = chain_of(3).await;
    let mut row = read_row(&path, 3).await;
    row.seq = 4;
    row.prev_hash = head.hash.clone();
    row.hash = row.compute_hash();
    let sql = format!(
        "INSERT INTO audit_log SELECT 4, at, kind, subject, session, jurisdiction, payload, \
         profile_hash, content_hash, '{}', '{}' FROM audit_log WHERE seq = 3",
        row.prev_hash, row.hash
    );
    tamper(&path, &[&sql]).await;
    assert_eq!(
        problem(&verify_file(&path, None).await),
        (4, TamperKind::BeyondHead { head: 3 })
    );
}

#[tokio::test]
async fn reordered_records_are_detected() {
    let (path, _dir, _) = chain_of(6).await;
    tamper(
        &path,
        &[
            "UPDATE audit_log SET seq = -1 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = -1",
        ],
    )
    .await;
    assert_eq!(
        problem(&verify_file(&path, None).await),
        (2, TamperKind::ContentMismatch)
    );
}

#[tokio::test]
async fn swapped_timestamps_are_detected() {
    let (path, _dir, _) = chain_of(6).await;
    let (a, b) = (read_row(&path, 2).await.at, read_row(&path, 5).await.at);
    let s1 = format!("UPDATE audit_log SET at = {b} WHERE seq = 2");
    let s2 = format!("UPDATE audit_log SET at = {a} WHERE seq = 5");
    tamper(&path, &[&s1, &s2]).await;
    assert_eq!(
        problem(&verify_file(&path, None).await),
        (2, TamperKind::ContentMismatch)
    );
}

#[tokio::test]
async fn a_rewritten_chain_is_caught_only_against_a_saved_head() {
    let (path, _dir, saved) = chain_of(4).await;
    // Rewrite every record from 2 on, recomputing all hashes and the head row.
    let mut statements = Vec::new();
    let mut prev = read_row(&path, 1).await.hash;
    for seq in 2..=4 {
        let mut row = read_row(&path, seq).await;
        row.jurisdiction = Some("nowhere".into());
        row.prev_hash = prev.clone();
        row.hash = row.compute_hash();
        statements.push(format!(
            "UPDATE audit_log SET jurisdiction = 'nowhere', prev_hash = '{}', hash = '{}' \
             WHERE seq = {seq}",
            row.prev_hash, row.hash
        ));
        prev = row.hash;
    }
    statements.push(format!("UPDATE audit_head SET hash = '{prev}'"));
    let refs: Vec<&str> = statements.iter().map(String::as_str).collect();
    tamper(&path, &refs).await;
    assert!(verify_file(&path, None).await.is_intact());
    assert_eq!(
        problem(&verify_file(&path, Some(saved)).await),
        (4, TamperKind::ExpectedHeadMismatch)
    );
}

#[tokio::test]
async fn a_saved_head_must_still_be_in_the_chain() {
    let (path, _dir, saved) = chain_of(4).await;
    tamper(
        &path,
        &[
            "DELETE FROM audit_log WHERE seq = 4",
            "UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_log WHERE seq = 3)",
        ],
    )
    .await;
    assert!(verify_file(&path, None).await.is_intact());
    assert_eq!(
        problem(&verify_file(&path, Some(saved)).await),
        (4, TamperKind::ExpectedHeadMissing)
    );
}

#[tokio::test]
async fn large_batches_span_several_insert_statements() {
    for ts in both().await {
        // More than MAX_BATCH queued at once: several batches of several multi-row inserts.
        for i in 0..1_100 {
            ts.store.audit().record(&entry("bulk", i)).await.unwrap();
        }
        let link = ts
            .store
            .audit()
            .append_durable(&entry("bulk", 2_000))
            .await
            .unwrap();
        assert_eq!(link.seq, 1_101, "{}", ts.name);
        let v = ts.store.verify(None).await.unwrap();
        assert!(v.is_intact(), "{}: {v:?}", ts.name);
        assert_eq!(v.records, 1_101);
    }
}

#[tokio::test]
async fn the_backend_appends_directly_in_order() {
    for ts in both().await {
        let log = ts.store.audit_log();
        assert!(log.append(&[]).await.unwrap().is_empty());
        let p = ts.store.pseudonyms();
        let batch = vec![
            p.prepare(&entry("x", 1)).unwrap(),
            p.prepare(&entry("y", 2)).unwrap(),
        ];
        let links = log.append(&batch).await.unwrap();
        assert_eq!(links.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(log.recorded_head().await.unwrap(), Some(links[1].clone()));
        let v = tutela_store::audit::verify(ts.store.backend(), Some(links[0].clone()))
            .await
            .unwrap();
        assert!(v.is_intact(), "{}: {v:?}", ts.name);
        assert_eq!(p.content_hash("hello").len(), 64);
        assert_ne!(p.content_hash("hello"), p.content_hash("hello!"));
    }
}
