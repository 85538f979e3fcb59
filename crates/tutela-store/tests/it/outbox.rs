//! The notification outbox: claiming due rows with a lease, delivery, and the exponential
//! retry schedule up to the last attempt.

use tutela_store::{ContactAddress, NewNotification, OutboxStatus, RetryPolicy, StoreError};
use tutela_types::ContactKind;

use crate::support::{both, t};

fn note(user: &str, secs: i64) -> NewNotification {
    NewNotification {
        user_id: Some(user.into()),
        escalation_id: Some(1),
        contact: ContactAddress {
            kind: ContactKind::Guardian,
            channel: "webhook".into(),
            address: "https://guardian.example/hook".into(),
        },
        payload: serde_json::json!({"event": "crisis_escalation", "escalation_id": 1}),
        at: t(secs),
    }
}

#[tokio::test]
async fn due_rows_are_claimed_once_under_a_lease() {
    for ts in both().await {
        let o = ts.store.outbox();
        let p = RetryPolicy::default();
        let a = o.enqueue(&note("u", 0)).await.unwrap();
        let b = o.enqueue(&note("v", 5)).await.unwrap();
        // Only what is due.
        let first = o.claim_due(t(1), 10, &p).await.unwrap();
        assert_eq!(
            first.iter().map(|n| n.id).collect::<Vec<_>>(),
            [a],
            "{}",
            ts.name
        );
        assert_eq!(first[0].attempts, 1);
        assert_eq!(first[0].next_attempt_at, t(1 + p.lease_secs));
        assert_eq!(first[0].payload["event"], "crisis_escalation");
        assert_eq!(first[0].contact.kind, ContactKind::Guardian);
        // A second worker does not get the leased row.
        let second = o.claim_due(t(6), 10, &p).await.unwrap();
        assert_eq!(second.iter().map(|n| n.id).collect::<Vec<_>>(), [b]);
        // The limit holds.
        let c = o.enqueue(&note("w", 6)).await.unwrap();
        let d = o.enqueue(&note("x", 6)).await.unwrap();
        let limited = o.claim_due(t(7), 1, &p).await.unwrap();
        assert_eq!(limited.iter().map(|n| n.id).collect::<Vec<_>>(), [c]);
        // An unacknowledged claim comes back after the lease.
        let back = o.claim_due(t(1 + p.lease_secs), 10, &p).await.unwrap();
        let ids: Vec<i64> = back.iter().map(|n| n.id).collect();
        assert_eq!(ids, [a, d]);
        assert_eq!(back[0].attempts, 2);

        o.mark_sent(a, t(200)).await.unwrap();
        let sent = o.get_notification(a).await.unwrap().unwrap();
        assert_eq!(
            (sent.status, sent.sent_at),
            (OutboxStatus::Sent, Some(t(200)))
        );
        assert!(
            o.claim_due(t(100_000), 10, &p)
                .await
                .unwrap()
                .iter()
                .all(|n| n.id != a)
        );
        assert!(matches!(
            o.mark_sent(999, t(0)).await.unwrap_err(),
            StoreError::NotFound { .. }
        ));
        assert_eq!(o.get_notification(999).await.unwrap(), None);
    }
}

#[tokio::test]
async fn failures_back_off_exponentially_then_give_up() {
    for ts in both().await {
        let o = ts.store.outbox();
        let p = RetryPolicy {
            base_secs: 30,
            max_secs: 300,
            max_attempts: 6,
            lease_secs: 60,
        };
        let id = o.enqueue(&note("u", 0)).await.unwrap();
        let mut now = t(0);
        let mut delays = Vec::new();
        loop {
            let claimed = o.claim_due(now, 10, &p).await.unwrap();
            assert_eq!(claimed.len(), 1, "{}: nothing due at {now}", ts.name);
            let after = o
                .mark_failed(id, now, "connection refused", &p)
                .await
                .unwrap();
            assert_eq!(after.last_error.as_deref(), Some("connection refused"));
            if after.status == OutboxStatus::Failed {
                assert_eq!(after.attempts, 6);
                break;
            }
            assert_eq!(after.status, OutboxStatus::Pending);
            let delay = after.next_attempt_at.secs_since(now);
            // Not due a second early.
            assert!(
                o.claim_due(now.plus_secs(delay - 1), 10, &p)
                    .await
                    .unwrap()
                    .is_empty()
            );
            delays.push(delay);
            now = after.next_attempt_at;
        }
        assert_eq!(delays, [30, 60, 120, 240, 300], "{}", ts.name);
        // A failed notification is never claimed again.
        assert!(o.claim_due(t(1_000_000), 10, &p).await.unwrap().is_empty());
        let err = o.mark_failed(999, now, "x", &p).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));
    }
}

#[tokio::test]
async fn success_after_a_failure_clears_the_error() {
    for ts in both().await {
        let o = ts.store.outbox();
        let p = RetryPolicy::default();
        let id = o.enqueue(&note("u", 0)).await.unwrap();
        o.claim_due(t(0), 1, &p).await.unwrap();
        let failed = o.mark_failed(id, t(1), "HTTP 503", &p).await.unwrap();
        o.claim_due(failed.next_attempt_at, 1, &p).await.unwrap();
        o.mark_sent(id, failed.next_attempt_at).await.unwrap();
        let n = o.get_notification(id).await.unwrap().unwrap();
        assert_eq!(
            (n.status, n.attempts, n.last_error),
            (OutboxStatus::Sent, 2, None)
        );
    }
}
