//! Case context: the turns kept with a case (prior turns once, each trigger), summaries for the
//! queue, hand-over, outcomes, retention and deletion with the user's data.

use tutela_store::{Direction, EscalationStatus, NewCaseTurn, NewEscalation, StoreError};
use tutela_types::{DetectorId, Finding, Severity, Side, Span, Tier};

use crate::support::{both, reason, t};

fn turn(role: &str, body: &str, trigger: bool) -> NewCaseTurn {
    let mut findings = Vec::new();
    if trigger {
        let mut f = Finding::new(
            DetectorId::Crisis,
            Side::User,
            Tier::Lexical,
            0.9,
            Severity::Critical,
        );
        f.spans = vec![Span { start: 0, end: 4 }];
        findings.push(f);
    }
    NewCaseTurn {
        role: role.into(),
        body: body.into(),
        trigger,
        findings,
    }
}

fn case(user: &str, secs: i64) -> NewEscalation {
    NewEscalation {
        user_id: user.into(),
        session_id: None,
        jurisdiction: Some("us-ca".into()),
        severity: Severity::High,
        takeover: true,
        detector: Some("crisis".into()),
        reasons: vec![reason("crisis-escalation")],
        at: t(secs),
    }
}

#[tokio::test]
async fn prior_turns_are_kept_once_and_every_trigger_after() {
    for ts in both().await {
        let s = &ts.store;
        s.users().touch_user("u", t(1)).await.unwrap();
        let (c, _) = s
            .escalations()
            .open_escalation(&case("u", 10))
            .await
            .unwrap();
        let prior = [turn("user", "hi", false), turn("assistant", "hello", false)];
        s.cases()
            .keep_case_turns(c.id, &prior, &turn("user", "pain now", true), t(10))
            .await
            .unwrap();
        s.cases()
            .keep_case_turns(c.id, &prior, &turn("user", "still here", true), t(20))
            .await
            .unwrap();
        let kept = s.cases().case_turns(c.id).await.unwrap();
        let bodies: Vec<&str> = kept.iter().map(|k| k.body.as_str()).collect();
        assert_eq!(
            bodies,
            ["hi", "hello", "pain now", "still here"],
            "{}",
            ts.name
        );
        assert_eq!(kept[2].findings[0].spans, vec![Span { start: 0, end: 4 }]);
        assert!(kept[2].trigger && !kept[0].trigger);

        s.escalations()
            .add_escalation_message(c.id, Direction::FromUser, None, "later", t(30))
            .await
            .unwrap();
        let (other, _) = s
            .escalations()
            .open_escalation(&case("v", 15))
            .await
            .unwrap();
        let sums = s.cases().case_summaries(&[c.id, other.id]).await.unwrap();
        let mine = sums.iter().find(|x| x.id == c.id).unwrap();
        assert_eq!(mine.findings.len(), 2);
        assert_eq!(mine.last_user_at, Some(t(30)));
        let bare = sums.iter().find(|x| x.id == other.id).unwrap();
        assert!(bare.findings.is_empty() && bare.last_user_at.is_none());

        // Deleting the user removes the kept turns.
        let report = s.users().delete_user("u", t(40)).await.unwrap();
        assert!(report.messages >= 5, "{report:?}");
        assert!(s.cases().case_turns(c.id).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn hand_over_put_back_resolve_with_outcome_and_retention() {
    for ts in both().await {
        let s = &ts.store;
        let (c, _) = s
            .escalations()
            .open_escalation(&case("u", 10))
            .await
            .unwrap();
        s.cases()
            .keep_case_turns(c.id, &[], &turn("user", "help", true), t(10))
            .await
            .unwrap();
        let a = s
            .cases()
            .assign_escalation(c.id, "bob", t(20))
            .await
            .unwrap();
        assert_eq!(
            (a.status, a.claimed_by.as_deref(), a.claimed_at),
            (EscalationStatus::Claimed, Some("bob"), Some(t(20)))
        );
        let b = s
            .cases()
            .assign_escalation(c.id, "ann", t(30))
            .await
            .unwrap();
        assert_eq!(
            (b.claimed_by.as_deref(), b.claimed_at),
            (Some("ann"), Some(t(20))),
            "first claim time kept"
        );
        let open = s.cases().release_escalation(c.id).await.unwrap();
        assert_eq!(
            (open.status, open.claimed_by),
            (EscalationStatus::Open, None)
        );
        assert!(
            matches!(
                s.cases().release_escalation(c.id).await,
                Err(StoreError::Conflict { .. })
            ),
            "{}",
            ts.name
        );
        let done = s
            .cases()
            .resolve_case(c.id, "sue", "fine now", "referred", t(50))
            .await
            .unwrap();
        assert_eq!(done.status, EscalationStatus::Resolved);
        assert_eq!(done.resolution.as_deref(), Some("fine now"));
        assert_eq!(done.claimed_by.as_deref(), Some("sue"));
        let sums = s.cases().case_summaries(&[c.id]).await.unwrap();
        assert_eq!(sums[0].outcome.as_deref(), Some("referred"));
        assert!(matches!(
            s.cases()
                .resolve_case(c.id, "sue", "x", "other", t(60))
                .await,
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(
            s.cases().assign_escalation(c.id, "bob", t(60)).await,
            Err(StoreError::Conflict { .. })
        ));
        // Retention: only cases resolved before the cut-off lose their turns.
        assert_eq!(s.cases().purge_case_turns(t(50)).await.unwrap(), 0);
        assert_eq!(s.cases().purge_case_turns(t(51)).await.unwrap(), 1);
        assert!(s.cases().case_turns(c.id).await.unwrap().is_empty());
        assert!(s.cases().case_notifications(c.id).await.unwrap().is_empty());
    }
}
