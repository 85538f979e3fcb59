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
