//! Complaints and appeals: filing with a deadline, the queue, resolution and the counts for
//! the transparency report (appeals upheld or overturned, overdue answers).

use tutela_store::{ComplaintStatus, NewComplaint, StoreError};

use crate::support::{both, t};

fn complaint(category: &str, secs: i64) -> NewComplaint {
    NewComplaint {
        user_id: Some("u".into()),
        category: category.into(),
        intervention_id: (category == "appeal").then_some(7),
        body: Some("text".into()),
        at: t(secs),
        handling_limit_secs: 100,
    }
}

#[tokio::test]
async fn complaints_have_deadlines_and_are_counted_by_outcome() {
    for ts in both().await {
        let c = ts.store.complaints();
        let a = c.file_complaint(&complaint("appeal", 0)).await.unwrap();
        assert_eq!(
            (a.status, a.due_at),
            (ComplaintStatus::Open, t(100)),
            "{}",
            ts.name
        );
        assert_eq!(a.intervention_id, Some(7));
        let b = c.file_complaint(&complaint("appeal", 10)).await.unwrap();
        let d = c.file_complaint(&complaint("privacy", 20)).await.unwrap();
        assert_eq!(c.get_complaint(a.id).await.unwrap(), Some(a.clone()));
        assert_eq!(c.get_complaint(999).await.unwrap(), None);

        let resolved = c
            .resolve_complaint(a.id, "overturned", t(50))
            .await
            .unwrap();
        assert_eq!(
            (
                resolved.status,
                resolved.outcome.as_deref(),
                resolved.resolved_at
            ),
            (ComplaintStatus::Resolved, Some("overturned"), Some(t(50)))
        );
        let late = c.resolve_complaint(b.id, "upheld", t(500)).await.unwrap();
        assert_eq!(late.resolved_at, Some(t(500)));
        assert!(matches!(
            c.resolve_complaint(a.id, "upheld", t(60))
                .await
                .unwrap_err(),
            StoreError::Conflict { .. }
        ));
        assert!(matches!(
            c.resolve_complaint(999, "upheld", t(60)).await.unwrap_err(),
            StoreError::NotFound { .. }
        ));

        let open = c
            .list_complaints(Some(ComplaintStatus::Open), 10)
            .await
            .unwrap();
        assert_eq!(open.iter().map(|x| x.id).collect::<Vec<_>>(), [d.id]);
        assert_eq!(c.list_complaints(None, 10).await.unwrap().len(), 3);

        let counts = c.complaint_counts(t(0), t(100), t(1000)).await.unwrap();
        let flat: Vec<(&str, Option<&str>, u64, u64)> = counts
            .iter()
            .map(|x| {
                (
                    x.category.as_str(),
                    x.outcome.as_deref(),
                    x.count,
                    x.overdue,
                )
            })
            .collect();
        assert_eq!(
            flat,
            [
                ("appeal", Some("overturned"), 1, 0),
                ("appeal", Some("upheld"), 1, 1),
                ("privacy", None, 1, 1),
            ],
            "{}",
            ts.name
        );
    }
}
