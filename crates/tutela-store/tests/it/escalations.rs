//! Escalation cases: opening (one active case per user), the queue, claiming, resolving, and
//! the messages of human takeover with delivery of the human's replies.

use tutela_store::{Direction, EscalationStatus, NewEscalation, StoreError};
use tutela_types::Severity;

use crate::support::{both, reason, t};

fn crisis(user: &str, severity: Severity, takeover: bool, secs: i64) -> NewEscalation {
    NewEscalation {
        user_id: user.into(),
        session_id: Some(format!("{user}-s")),
        jurisdiction: Some("cn".into()),
        severity,
        takeover,
        detector: Some("crisis".into()),
        reasons: vec![reason("crisis-escalation")],
        at: t(secs),
    }
}

#[tokio::test]
async fn one_active_case_per_user_raised_not_duplicated() {
    for ts in both().await {
        let e = ts.store.escalations();
        let (first, created) = e
            .open_escalation(&crisis("u", Severity::High, false, 1))
            .await
            .unwrap();
        assert!(created, "{}", ts.name);
        assert_eq!(first.status, EscalationStatus::Open);
        assert_eq!(first.reasons, vec![reason("crisis-escalation")]);
        assert_eq!(first.detector.as_deref(), Some("crisis"));
        let (again, created) = e
            .open_escalation(&crisis("u", Severity::Critical, true, 2))
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(again.id, first.id);
        assert_eq!((again.severity, again.takeover), (Severity::Critical, true));
        // Lower severity never lowers the case.
        let (same, _) = e
            .open_escalation(&crisis("u", Severity::Low, false, 3))
            .await
            .unwrap();
        assert_eq!((same.severity, same.takeover), (Severity::Critical, true));
        assert_eq!(
            e.get_escalation(first.id).await.unwrap(),
            Some(same.clone())
        );
        assert_eq!(e.active_escalation("u").await.unwrap(), Some(same));
        assert_eq!(e.active_escalation("other").await.unwrap(), None);
        assert_eq!(e.get_escalation(9999).await.unwrap(), None);
        assert_eq!(e.active_escalation_count().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn claim_and_resolve_follow_the_case_states() {
    for ts in both().await {
        let e = ts.store.escalations();
        let (a, _) = e
            .open_escalation(&crisis("a", Severity::High, true, 1))
            .await
            .unwrap();
        let (b, _) = e
            .open_escalation(&crisis("b", Severity::High, true, 2))
            .await
            .unwrap();
        let (c, _) = e
            .open_escalation(&crisis("c", Severity::High, true, 3))
            .await
            .unwrap();

        let claimed = e.claim_escalation(a.id, "staff-1", t(10)).await.unwrap();
        assert_eq!(claimed.status, EscalationStatus::Claimed);
        assert_eq!(claimed.claimed_by.as_deref(), Some("staff-1"));
        assert_eq!(claimed.claimed_at, Some(t(10)));
        // The holder may claim again; somebody else may not.
        e.claim_escalation(a.id, "staff-1", t(11)).await.unwrap();
        let err = e
            .claim_escalation(a.id, "staff-2", t(12))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert!(err.to_string().contains("claimed by `staff-1`"), "{err}");

        let done = e
            .resolve_escalation(a.id, "staff-1", Some("referred to hotline"), t(20))
            .await
            .unwrap();
        assert_eq!(done.status, EscalationStatus::Resolved);
        assert_eq!(done.resolved_at, Some(t(20)));
        assert_eq!(done.resolution.as_deref(), Some("referred to hotline"));
        assert!(
            e.resolve_escalation(a.id, "staff-1", None, t(21))
                .await
                .is_err()
        );
        assert!(e.claim_escalation(a.id, "staff-1", t(22)).await.is_err());

        // Resolving an unclaimed case records who resolved it.
        let direct = e
            .resolve_escalation(b.id, "staff-2", None, t(30))
            .await
            .unwrap();
        assert_eq!(direct.claimed_by.as_deref(), Some("staff-2"));
        assert_eq!(direct.claimed_at, Some(t(30)));

        let open = e
            .list_escalations(&[EscalationStatus::Open], 10)
            .await
            .unwrap();
        assert_eq!(
            open.iter().map(|x| x.id).collect::<Vec<_>>(),
            [c.id],
            "{}",
            ts.name
        );
        let all = e
            .list_escalations(
                &[
                    EscalationStatus::Open,
                    EscalationStatus::Claimed,
                    EscalationStatus::Resolved,
                ],
                10,
            )
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        assert!(e.list_escalations(&[], 10).await.unwrap().is_empty());
        assert_eq!(e.active_escalation_count().await.unwrap(), 1);
        let err = e.claim_escalation(4242, "s", t(0)).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));

        // After resolution the user can get a new case.
        let (again, created) = e
            .open_escalation(&crisis("a", Severity::Medium, false, 40))
            .await
            .unwrap();
        assert!(created);
        assert_ne!(again.id, a.id);
    }
}

#[tokio::test]
async fn takeover_messages_flow_both_ways_and_replies_are_delivered_once() {
    for ts in both().await {
        let e = ts.store.escalations();
        let (case, _) = e
            .open_escalation(&crisis("u", Severity::High, true, 1))
            .await
            .unwrap();
        e.claim_escalation(case.id, "staff-1", t(2)).await.unwrap();
        let m1 = e
            .add_escalation_message(case.id, Direction::FromUser, None, "are you there?", t(3))
            .await
            .unwrap();
        let r1 = e
            .add_escalation_message(
                case.id,
                Direction::ToUser,
                Some("staff-1"),
                "I am here.",
                t(4),
            )
            .await
            .unwrap();
        let r2 = e
            .add_escalation_message(
                case.id,
                Direction::ToUser,
                Some("staff-1"),
                "Call 12356.",
                t(5),
            )
            .await
            .unwrap();
        assert!(m1.id < r1.id && r1.id < r2.id);
        assert_eq!(m1.direction, Direction::FromUser);
        assert_eq!(r1.author.as_deref(), Some("staff-1"));

        let pending = e.undelivered_replies("u").await.unwrap();
        assert_eq!(
            pending.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
            ["I am here.", "Call 12356."],
            "{}",
            ts.name
        );
        e.mark_delivered(&[r1.id], t(6)).await.unwrap();
        e.mark_delivered(&[], t(6)).await.unwrap();
        let pending = e.undelivered_replies("u").await.unwrap();
        assert_eq!(pending.iter().map(|m| m.id).collect::<Vec<_>>(), [r2.id]);
        e.mark_delivered(&[r1.id, r2.id], t(7)).await.unwrap();
        assert!(e.undelivered_replies("u").await.unwrap().is_empty());

        let all = e.escalation_messages(case.id).await.unwrap();
        assert_eq!(all.len(), 3);
        // Delivery time is the first delivery.
        assert_eq!(all[1].delivered_at, Some(t(6)));
        assert_eq!(all[2].delivered_at, Some(t(7)));
        assert_eq!(all[0].delivered_at, None);

        e.resolve_escalation(case.id, "staff-1", None, t(8))
            .await
            .unwrap();
        let err = e
            .add_escalation_message(case.id, Direction::ToUser, Some("staff-1"), "late", t(9))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    }
}
