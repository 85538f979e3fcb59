//! Several gateway instances on one PostgreSQL database (each a store with its own pool and
//! writer): one audit chain that verifies, one case per user, exact counts. Skipped (with the
//! run's notice) without a server, mandatory with `TUTELA_REQUIRE_PG=1`.

use tutela_store::{NewEscalation, StoreOptions};
use tutela_types::Severity;

use crate::support::{entry, postgres_instances, reason, t};

/// Three instances append at once, durable and queued records mixed: every record is in one
/// chain, `seq` 1..=N without a gap, and the chain verifies from any instance.
#[tokio::test]
async fn instances_append_to_one_chain() {
    let Some(stores) = postgres_instances(3, StoreOptions::default()).await else {
        return;
    };
    let per = 60;
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..per {
                let e = entry(&format!("u{i}-{k}"), k);
                if k % 3 == 0 {
                    store.audit().append_durable(&e).await.unwrap();
                } else {
                    store.audit().record(&e).await.unwrap();
                }
            }
            store.audit().flush().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = 3 * per;
    for store in &stores {
        let v = store.verify(None).await.unwrap();
        assert!(v.is_intact(), "{v:?}");
        let head = store.audit_log().recorded_head().await.unwrap().unwrap();
        assert_eq!(head.seq, total);
    }
    let n = crate::support::count(&stores[0], "SELECT COUNT(*) FROM audit_log").await;
    let gaps = crate::support::count(
        &stores[0],
        "SELECT COUNT(*) FROM audit_log WHERE seq < 1 OR seq > (SELECT COUNT(*) FROM audit_log)",
    )
    .await;
    assert_eq!((n, gaps), (total, 0));
}

/// A crisis seen by two instances at once opens one case, which both then find.
#[tokio::test]
async fn instances_open_one_case_per_user() {
    let Some(stores) = postgres_instances(2, StoreOptions::default()).await else {
        return;
    };
    let new = |secs| NewEscalation {
        user_id: "alice".into(),
        session_id: Some("alice-s".into()),
        jurisdiction: Some("cn".into()),
        severity: Severity::High,
        takeover: true,
        detector: Some("crisis".into()),
        reasons: vec![reason("crisis-escalation")],
        at: t(secs),
    };
    let (first, second) = (new(1), new(2));
    let (a, b) = tokio::join!(
        stores[0].escalations().open_escalation(&first),
        stores[1].escalations().open_escalation(&second),
    );
    let (a, a_new) = a.unwrap();
    let (b, b_new) = b.unwrap();
    assert_eq!(a.id, b.id);
    assert!(a_new ^ b_new, "exactly one instance opened it");
    let other = stores[1].escalations().active_escalation("alice").await;
    assert_eq!(other.unwrap().map(|e| e.id), Some(a.id));
    // Claimed through one instance, the other sees the claim at once.
    stores[1]
        .escalations()
        .claim_escalation(a.id, "staff-1", t(3))
        .await
        .unwrap();
    let seen = stores[0].escalations().get_escalation(a.id).await.unwrap();
    assert_eq!(seen.unwrap().claimed_by.as_deref(), Some("staff-1"));
}

/// A turn of `user` at `secs`, one second of use, in the session `user-s`.
fn turn(user: &str, secs: i64) -> tutela_store::TurnRecord {
    let at = t(secs);
    tutela_store::TurnRecord {
        user_id: user.into(),
        session_id: format!("{user}-s"),
        jurisdiction: "cn".into(),
        at,
        state: tutela_types::SessionState {
            last_activity: Some(at),
            ..tutela_types::SessionState::default()
        },
        local_day: at.local_date(0),
        usage_secs: 1,
        stamp: Some(format!("{user}-{secs}")),
    }
}

/// The writer's batch of turns takes no advisory lock (row upserts only): it commits while
/// another instance holds the write lock and the audit lock. Batches of two instances at once,
/// with a user and counters in common given in opposite orders, all commit (their row locks
/// are taken in one order: no deadlock) and every sum adds up.
#[tokio::test]
async fn batches_commit_beside_the_locks_and_each_other() {
    use tutela_store::{CounterBump, Tally};
    use tutela_types::Counter;
    let Some(stores) = postgres_instances(2, StoreOptions::default()).await else {
        return;
    };
    let tutela_store::Database::Postgres(pg) = stores[0].database() else {
        panic!("a PostgreSQL store");
    };
    // Another instance's transaction holding the write lock and the audit lock.
    let mut other = pg.pool().begin().await.unwrap();
    for key in [0x0000_7475_7465_6c61_i64, 0x0000_7475_7465_6c62] {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *other)
            .await
            .unwrap();
    }
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stores[1].sessions().record_batch(&[turn("held", 1)], &[]),
    )
    .await
    .expect("not queued behind the advisory locks")
    .unwrap();
    other.rollback().await.unwrap();

    let rounds = 25_i64;
    let counters = [
        Counter::CrisisReferral,
        Counter::RiskDetection,
        Counter::ExitHonoured,
    ];
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..rounds {
                let mut turns = vec![
                    turn("both", 10 + k),
                    turn(&format!("a{i}-{k}"), 10 + k),
                    turn(&format!("z{i}-{k}"), 10 + k),
                ];
                let mut counts: Vec<CounterBump> = counters
                    .iter()
                    .map(|c| CounterBump {
                        counter: *c,
                        jurisdiction: "cn".into(),
                        at: t(10 + k),
                        by: 1,
                    })
                    .collect();
                if i == 1 {
                    turns.reverse();
                    counts.reverse();
                }
                let tally = Tally {
                    interventions: Vec::new(),
                    counts,
                };
                store
                    .sessions()
                    .record_batch(&turns, &[tally])
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let day = t(10).local_date(0);
    let totals = stores[0].counters().counter_totals(day, day).await.unwrap();
    for c in &counters {
        let name = serde_json::to_value(c).unwrap();
        let total = totals
            .iter()
            .find(|x| serde_json::Value::String(x.name.clone()) == name)
            .map(|x| x.value);
        assert_eq!(total, Some(2 * rounds as u64), "{name}");
    }
    let both = stores[1]
        .usage()
        .daily_usage_secs("both", day)
        .await
        .unwrap();
    assert_eq!(i64::from(both), 2 * rounds);
    let session = stores[0].sessions().get_session("both-s").await.unwrap();
    assert_eq!(session.map(|s| s.turns), Some(2 * rounds as u32));
    let users = crate::support::count(&stores[0], "SELECT COUNT(*) FROM session_state").await;
    assert_eq!(users, 1 + 1 + 2 * 2 * rounds);
}

/// Asserts that `write` does not finish while `other` (another instance's transaction holding
/// a lock) is open, then that it finishes once `other` rolls back.
async fn waits_for<T>(
    other: sqlx::Transaction<'static, sqlx::Postgres>,
    write: impl std::future::Future<Output = tutela_store::Result<T>>,
    why: &str,
) {
    tokio::pin!(write);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), &mut write)
            .await
            .is_err(),
        "{why}"
    );
    other.rollback().await.unwrap();
    write.await.unwrap();
}

/// Users' own writes (an intervening turn's effects, a newcomer's record) lock their user, not
/// the deployment: with another instance holding one user's key, another user's effects and
/// a newcomer commit at once and that user's effects wait; with another instance holding the
/// write lock exclusively (a claim, a resolution), every user's effects wait for it.
#[tokio::test]
async fn users_writes_lock_their_user_and_wait_for_the_write_lock() {
    use std::time::Duration;
    use tutela_store::{TurnEffects, UserUpdate};
    use tutela_types::AgeState;
    let Some(stores) = postgres_instances(2, StoreOptions::default()).await else {
        return;
    };
    let tutela_store::Database::Postgres(pg) = stores[0].database() else {
        panic!("a PostgreSQL store");
    };
    let effects = |user: &str, secs: i64| {
        let mut e = TurnEffects::new(user, t(secs));
        e.turn = Some(turn(user, secs));
        e.user_update = Some(UserUpdate {
            age_state: Some(AgeState::SuspectedMinor),
            ..UserUpdate::default()
        });
        e
    };
    let b = stores[1].backend();
    // Another instance's transaction holding alice's key (as its own effects of alice would).
    let mut other = pg.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(1953854565, hashtext('alice'))")
        .execute(&mut *other)
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        b.record_effects(&effects("bob", 1)),
    )
    .await
    .expect("bob's effects do not wait for alice's")
    .unwrap();
    tokio::time::timeout(Duration::from_secs(10), b.touch_user("carol", t(1)))
        .await
        .expect("a newcomer does not wait for alice's effects")
        .unwrap();
    let alice = effects("alice", 2);
    waits_for(
        other,
        b.record_effects(&alice),
        "alice's effects wait for her key",
    )
    .await;

    // The write lock held exclusively: users' effects wait for it.
    let mut other = pg.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(0x0000_7475_7465_6c61_i64)
        .execute(&mut *other)
        .await
        .unwrap();
    let dave = effects("dave", 3);
    waits_for(
        other,
        b.record_effects(&dave),
        "users' effects wait for the exclusive write lock",
    )
    .await;
    let minor = stores[0].users().get_user("dave").await.unwrap().unwrap();
    assert_eq!(minor.age_state, AgeState::SuspectedMinor);
}
