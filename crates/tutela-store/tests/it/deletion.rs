//! Data export and deletion (CN Art 16): content and contacts go, statistics stay under a
//! pseudonym, and the audit chain still verifies because it never held content.

use tutela_store::{
    AuditQuery, ContactAddress, Direction, NewComplaint, NewEscalation, NewNotification,
    TurnRecord, UserUpdate,
};
use tutela_types::{ContactKind, SessionState, Severity};

use crate::support::{both, count, entry, t};

async fn populate(store: &tutela_store::Store, user: &str) -> i64 {
    store
        .users()
        .update_user(
            user,
            &UserUpdate {
                registered_at: Some(t(0)),
                jurisdiction: Some(Some("cn".into())),
                contacts: Some(vec![ContactAddress {
                    kind: ContactKind::EmergencyContact,
                    channel: "email".into(),
                    address: "sister@example.org".into(),
                }]),
                ..UserUpdate::default()
            },
            t(0),
        )
        .await
        .unwrap();
    store
        .sessions()
        .record_turn(&TurnRecord {
            user_id: user.into(),
            session_id: format!("{user}-session"),
            jurisdiction: "cn".into(),
            at: t(1),
            state: SessionState::default(),
            local_day: t(1).local_date(0),
            usage_secs: 120,
            stamp: None,
        })
        .await
        .unwrap();
    store.audit().append_durable(&entry(user, 1)).await.unwrap();
    let (case, _) = store
        .escalations()
        .open_escalation(&NewEscalation {
            user_id: user.into(),
            session_id: Some(format!("{user}-session")),
            jurisdiction: Some("cn".into()),
            severity: Severity::High,
            takeover: true,
            detector: Some("crisis".into()),
            reasons: Vec::new(),
            at: t(2),
        })
        .await
        .unwrap();
    let e = store.escalations();
    e.add_escalation_message(case.id, Direction::FromUser, None, "I can't go on", t(3))
        .await
        .unwrap();
    e.add_escalation_message(case.id, Direction::ToUser, Some("staff"), "I'm here", t(4))
        .await
        .unwrap();
    store
        .outbox()
        .enqueue(&NewNotification {
            user_id: Some(user.into()),
            escalation_id: Some(case.id),
            contact: ContactAddress {
                kind: ContactKind::EmergencyContact,
                channel: "email".into(),
                address: "sister@example.org".into(),
            },
            payload: serde_json::json!({"event": "crisis"}),
            at: t(4),
        })
        .await
        .unwrap();
    store
        .complaints()
        .file_complaint(&NewComplaint {
            user_id: Some(user.into()),
            category: "appeal".into(),
            intervention_id: None,
            body: Some("my message was not a crisis".into()),
            at: t(5),
            handling_limit_secs: 86_400,
        })
        .await
        .unwrap();
    store.audit().record(&entry(user, 5)).await.unwrap();
    case.id
}

#[tokio::test]
async fn export_returns_everything_held_about_the_user() {
    for ts in both().await {
        let case = populate(&ts.store, "alice").await;
        let x = ts.store.export_user("alice", t(10)).await.unwrap().unwrap();
        assert_eq!(x.user.id, "alice", "{}", ts.name);
        assert_eq!(x.user.contacts.len(), 1);
        assert!(x.session_state.is_some());
        assert_eq!(x.sessions.len(), 1);
        assert_eq!(x.usage[0].seconds, 120);
        assert_eq!(x.escalations[0].id, case);
        assert_eq!(x.messages.len(), 2);
        assert_eq!(x.complaints.len(), 1);
        assert!(x.interventions.is_empty());
        assert_eq!(ts.store.export_user("nobody", t(10)).await.unwrap(), None);
        let json = serde_json::to_string(&x).unwrap();
        assert!(json.contains("I can't go on"));
        let requests = count(
            &ts.store,
            "SELECT COUNT(*) FROM data_requests WHERE kind = 'export'",
        )
        .await;
        assert_eq!(requests, 1);
    }
}

#[tokio::test]
async fn deletion_removes_content_keeps_statistics_and_the_chain_verifies() {
    for ts in both().await {
        let store = &ts.store;
        let case = populate(store, "alice").await;
        populate(store, "bob").await;
        let pseudonym = store.pseudonyms().subject("alice");
        let report = store.delete_user("alice", t(20)).await.unwrap();
        assert_eq!(report.pseudonym, pseudonym);
        assert_eq!(
            (
                report.contacts,
                report.messages,
                report.notifications,
                report.complaint_texts
            ),
            (1, 2, 1, 1),
            "{}",
            ts.name
        );

        // Gone: the user, contacts, clocks, messages, notifications.
        assert_eq!(store.users().get_user("alice").await.unwrap(), None);
        assert_eq!(store.sessions().session_state("alice").await.unwrap(), None);
        assert!(
            store
                .escalations()
                .escalation_messages(case)
                .await
                .unwrap()
                .is_empty()
        );
        for (table, column) in [
            ("users", "id"),
            ("contacts", "user_id"),
            ("sessions", "user_id"),
            ("sessions", "id"),
            ("usage_daily", "user_id"),
            ("activity_monthly", "user_id"),
            ("escalations", "user_id"),
            ("escalations", "session_id"),
            ("outbox", "user_id"),
            ("session_state", "user_id"),
            ("complaints", "user_id"),
        ] {
            let n = count(
                store,
                &format!("SELECT COUNT(*) FROM {table} WHERE {column} LIKE '%alice%'"),
            )
            .await;
            assert_eq!(n, 0, "{}: {table}.{column} still names the user", ts.name);
        }
        let content = count(
            store,
            "SELECT COUNT(*) FROM escalation_messages WHERE body = 'I can''t go on'",
        )
        .await;
        assert_eq!(content, 1, "bob's message stays");
        let texts = count(store, "SELECT COUNT(body) FROM complaints").await;
        assert_eq!(texts, 1, "only bob's complaint text stays");
        let complaints = count(store, "SELECT COUNT(*) FROM complaints").await;
        assert_eq!(complaints, 2, "both complaints count in the statistics");

        // Kept under the pseudonym: the case, usage, monthly activity.
        let month = tutela_store::month_of(t(1), 0);
        assert_eq!(store.usage().monthly_active(month).await.unwrap().total, 2);
        let case_row = store
            .escalations()
            .get_escalation(case)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(case_row.user_id, format!("deleted:{pseudonym}"));
        assert!(
            store
                .escalations()
                .active_escalation("alice")
                .await
                .unwrap()
                .is_none()
        );

        // Bob is untouched.
        assert_eq!(
            store
                .users()
                .get_user("bob")
                .await
                .unwrap()
                .unwrap()
                .contacts
                .len(),
            1
        );

        // The chain verifies and records the deletion under the same pseudonym.
        let v = store.verify(None).await.unwrap();
        assert!(v.is_intact(), "{}: {v:?}", ts.name);
        let alice = store
            .query_audit(&AuditQuery {
                subject: Some(pseudonym.clone()),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            alice.iter().map(|r| r.kind).collect::<Vec<_>>(),
            [
                tutela_store::AuditKind::Intervention,
                tutela_store::AuditKind::Intervention,
                tutela_store::AuditKind::DataDeletion
            ]
        );

        // A returning user starts afresh; deleting again keeps one tombstone.
        store.users().touch_user("alice", t(30)).await.unwrap();
        store.delete_user("alice", t(31)).await.unwrap();
        let tombstones = count(
            store,
            "SELECT COUNT(*) FROM users WHERE deleted_at IS NOT NULL",
        )
        .await;
        assert_eq!(tombstones, 1);
        assert!(store.verify(None).await.unwrap().is_intact());
    }
}

#[tokio::test]
async fn retention_purges_old_content_of_closed_cases_only() {
    for ts in both().await {
        let store = &ts.store;
        let old_case = populate(store, "old").await;
        let open_case = populate(store, "current").await;
        // The old case is resolved early; its notification was sent; its complaint answered.
        store
            .escalations()
            .resolve_escalation(old_case, "staff", None, t(10))
            .await
            .unwrap();
        let p = tutela_store::RetryPolicy::default();
        for n in store.outbox().claim_due(t(10), 10, &p).await.unwrap() {
            if n.user_id.as_deref() == Some("old") {
                store.outbox().mark_sent(n.id, t(10)).await.unwrap();
            }
        }
        let complaints = store.complaints().list_complaints(None, 10).await.unwrap();
        let old_complaint = complaints
            .iter()
            .find(|c| c.user_id.as_deref() == Some("old"))
            .unwrap();
        store
            .complaints()
            .resolve_complaint(old_complaint.id, "answered", t(10))
            .await
            .unwrap();

        let purged = store.retention().purge_content(t(100)).await.unwrap();
        assert_eq!(
            (
                purged.messages,
                purged.notifications,
                purged.complaint_texts
            ),
            (2, 1, 1),
            "{}",
            ts.name
        );
        assert!(
            store
                .escalations()
                .escalation_messages(old_case)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .escalations()
                .escalation_messages(open_case)
                .await
                .unwrap()
                .len(),
            2
        );
        // Nothing left to purge; the chain is untouched.
        let again = store.retention().purge_content(t(100)).await.unwrap();
        assert_eq!(again, tutela_store::PurgeReport::default());
        assert!(store.verify(None).await.unwrap().is_intact());
    }
}
