//! Obligation records (idempotent threshold records, declared triggers, closing) and the report
//! statistics: registered users by definition, age structure, escalations, notifications, and
//! the bulk import.

use tutela_store::{
    ImportUser, NewEscalation, NewObligation, ObligationKind, Registration, UserUpdate,
};
use tutela_types::{AgeState, Severity};

use crate::support::{both, t};

fn crossing(key: &str, at: i64) -> NewObligation {
    NewObligation {
        key: key.into(),
        kind: ObligationKind::ThresholdCrossed,
        trigger: "registered_users".into(),
        profile: Some("cn-anthropomorphic-2026".into()),
        obligation: Some("security-assessment".into()),
        article: Some("Art. 22(3)".into()),
        value: Some(1_000_001),
        threshold: Some(1_000_000),
        description: "registered users reached 1,000,000".into(),
        due_items: vec![
            "security assessment".into(),
            "report to the provincial CAC".into(),
        ],
        at: t(at),
    }
}

#[tokio::test]
async fn threshold_records_are_idempotent_and_can_be_closed() {
    for ts in both().await {
        let o = ts.store.obligations();
        let (first, new) = o.open_obligation(&crossing("k1", 10)).await.unwrap();
        assert!(new, "{}", ts.name);
        let (again, new) = o.open_obligation(&crossing("k1", 20)).await.unwrap();
        assert!(!new);
        assert_eq!(again, first);
        assert_eq!(first.due_items.len(), 2);
        assert_eq!(first.value, Some(1_000_001));
        let mut declared = crossing("k2", 30);
        declared.kind = ObligationKind::Declared;
        declared.trigger = "feature_launch".into();
        o.open_obligation(&declared).await.unwrap();
        let open = o.list_obligations(true).await.unwrap();
        assert_eq!(
            open.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
            ["k2", "k1"]
        );
        let closed = o
            .close_obligation(first.id, "assessment filed", t(40))
            .await
            .unwrap();
        assert_eq!(
            (closed.status.as_str(), closed.closed_at),
            ("closed", Some(t(40)))
        );
        assert_eq!(o.list_obligations(true).await.unwrap().len(), 1);
        assert_eq!(o.list_obligations(false).await.unwrap().len(), 2);
        assert!(o.close_obligation(999, "x", t(50)).await.is_err());
    }
}

#[tokio::test]
async fn registered_users_follow_the_definition_and_bulk_import_is_idempotent() {
    for ts in both().await {
        let o = ts.store.obligations();
        let users: Vec<ImportUser> = (0..1000)
            .map(|i| ImportUser {
                id: format!("u{i}"),
                first_seen: t(i),
                registered_at: (i % 2 == 0).then(|| t(i)),
                age_state: if i % 10 == 0 {
                    AgeState::KnownMinor
                } else {
                    AgeState::Unknown
                },
                jurisdiction: Some(if i % 4 == 0 { "us-ca" } else { "cn" }.into()),
                utc_offset_minutes: 480,
            })
            .collect();
        assert_eq!(o.import_users(&users).await.unwrap(), 1000, "{}", ts.name);
        assert_eq!(o.import_users(&users[..10]).await.unwrap(), 0);
        let (all, per) = o
            .registered_count(Registration::FirstSeen, t(2000))
            .await
            .unwrap();
        assert_eq!(all, 1000);
        assert_eq!(per, [("cn".to_string(), 750), ("us-ca".to_string(), 250)]);
        let (admin, _) = o
            .registered_count(Registration::Admin, t(2000))
            .await
            .unwrap();
        assert_eq!(admin, 500);
        let (early, _) = o
            .registered_count(Registration::FirstSeen, t(99))
            .await
            .unwrap();
        assert_eq!(early, 100);
        // The age structure follows updates.
        ts.store
            .users()
            .update_user(
                "u1",
                &UserUpdate {
                    age_state: Some(AgeState::VerifiedAdult),
                    ..UserUpdate::default()
                },
                t(3000),
            )
            .await
            .unwrap();
        let ages = o.age_structure().await.unwrap();
        assert_eq!(
            ages,
            [
                ("known_minor".to_string(), 100),
                ("unknown".to_string(), 899),
                ("verified_adult".to_string(), 1)
            ]
        );
    }
}

#[tokio::test]
async fn escalation_stats_count_takeovers_and_time_to_claim() {
    for ts in both().await {
        let e = ts.store.escalations();
        for (i, takeover) in [(0_i64, true), (1, false), (2, true)] {
            let (case, _) = e
                .open_escalation(&NewEscalation {
                    user_id: format!("u{i}"),
                    session_id: None,
                    jurisdiction: Some("cn".into()),
                    severity: Severity::High,
                    takeover,
                    detector: Some("crisis".into()),
                    reasons: Vec::new(),
                    at: t(100 * i),
                })
                .await
                .unwrap();
            if i < 2 {
                e.claim_escalation(case.id, "staff", t(100 * i + 30 + 30 * i))
                    .await
                    .unwrap();
            }
        }
        let s = ts
            .store
            .obligations()
            .escalation_stats(t(0), t(1000))
            .await
            .unwrap();
        assert_eq!(
            (s.opened, s.takeovers, s.claimed, s.resolved),
            (3, 2, 2, 0),
            "{}",
            ts.name
        );
        // Waits of 30 and 60 seconds: the median of an even count is their mean.
        assert_eq!(s.median_secs_to_claim, Some(45));
        let none = ts
            .store
            .obligations()
            .escalation_stats(t(1000), t(2000))
            .await
            .unwrap();
        assert_eq!(none.opened, 0);
    }
}
