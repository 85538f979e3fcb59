//! An intervening turn's writes in one transaction (`EffectsStore::record_effects`): every
//! row the separate calls wrote, on every backend; nothing when it fails.

use tutela_store::{
    ContactAddress, CounterBump, Intervention, NewCaseTurn, NewEscalation, NewNotification,
    TurnEffects, TurnRecord, UserUpdate,
};
use tutela_types::{
    Action, AgeState, ContactKind, Counter, ReplyTemplate, SessionState, Severity, Side,
};

use tutela_store::Database;

use crate::support::{both, count, reason, t};

fn effects(user: &str, session: &str, secs: i64) -> TurnEffects {
    let crisis = Action::ReplaceReply {
        template: ReplyTemplate::CrisisSupport,
        resources: true,
    };
    TurnEffects {
        user_id: user.into(),
        at: t(secs),
        turn: Some(TurnRecord {
            user_id: user.into(),
            session_id: session.into(),
            jurisdiction: "cn".into(),
            at: t(secs),
            state: SessionState::default(),
            local_day: t(secs).local_date(0),
            usage_secs: 0,
            stamp: Some(format!("stamp-{secs}")),
        }),
        user_update: Some(UserUpdate {
            age_state: Some(AgeState::SuspectedMinor),
            ..UserUpdate::default()
        }),
        escalations: vec![NewEscalation {
            user_id: user.into(),
            session_id: Some(session.into()),
            jurisdiction: Some("cn".into()),
            severity: Severity::High,
            takeover: true,
            detector: Some("crisis".into()),
            reasons: vec![reason("crisis-escalation")],
            at: t(secs),
        }],
        counts: vec![CounterBump {
            counter: Counter::CrisisReferral,
            jurisdiction: "cn".into(),
            at: t(secs),
            by: 1,
        }],
        end_session: Some((session.into(), "crisis".into())),
        notifications: vec![NewNotification {
            user_id: Some(user.into()),
            escalation_id: None,
            contact: ContactAddress {
                kind: ContactKind::Guardian,
                channel: "webhook".into(),
                address: "http://127.0.0.1:9/hook".into(),
            },
            payload: serde_json::json!({ "type": "tutela.safety_alert", "escalation": null }),
            at: t(secs),
        }],
        interventions: vec![Intervention {
            id: 0,
            at: t(secs),
            user_id: Some(user.into()),
            session_id: Some(session.into()),
            jurisdiction: "cn".into(),
            detector: Some("crisis".into()),
            side: Some(Side::User),
            action: crisis,
            reasons: vec![reason("crisis-reply")],
            audit_seq: Some(1),
        }],
        case_turns: Some((
            vec![NewCaseTurn {
                role: "assistant".into(),
                body: "before".into(),
                trigger: false,
                findings: Vec::new(),
            }],
            NewCaseTurn {
                role: "user".into(),
                body: "the trigger".into(),
                trigger: true,
                findings: Vec::new(),
            },
        )),
    }
}

#[tokio::test]
async fn an_intervening_turn_writes_everything_in_one_transaction() {
    for ts in both().await {
        let b = ts.store.backend();
        let written = b.record_effects(&effects("u", "s1", 10)).await.unwrap();
        let user = written.user.clone().unwrap();
        assert_eq!(user.age_state, AgeState::SuspectedMinor, "{}", ts.name);
        let (case, opened) = written.escalation.clone().unwrap();
        assert!(opened && case.takeover, "{}", ts.name);
        assert!(!written.session_missing, "{}", ts.name);

        let session = b.get_session("s1").await.unwrap().unwrap();
        assert_eq!(session.turns, 1, "{}", ts.name);
        assert_eq!(session.end_reason.as_deref(), Some("crisis"), "{}", ts.name);
        let stamped = b.stamped_state("u").await.unwrap().unwrap();
        assert_eq!(stamped.stamp.as_deref(), Some("stamp-10"), "{}", ts.name);
        assert_eq!(b.active_escalation("u").await.unwrap().unwrap().id, case.id);
        let rows = b.interventions_between(t(0), t(20), 10).await.unwrap();
        assert_eq!(rows.len(), 1, "{}", ts.name);
        let day = t(10).local_date(0);
        let totals = b.counter_totals(day, day).await.unwrap();
        assert_eq!(totals[0].value, 1, "{}", ts.name);
        let alerts = b.case_notifications(case.id).await.unwrap();
        assert_eq!(alerts.len(), 1, "{}", ts.name);
        assert_eq!(alerts[0].escalation_id, Some(case.id), "{}", ts.name);
        assert_eq!(alerts[0].payload["escalation"], case.id, "{}", ts.name);
        let kept: Vec<String> = b
            .case_turns(case.id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.body)
            .collect();
        assert_eq!(kept, ["before", "the trigger"], "{}", ts.name);

        // A second crisis turn raises the same case, keeps only its trigger, and a session
        // that is not there is said so while the rest is written.
        let mut again = effects("u", "s2", 20);
        again.turn = None;
        again.user_update = None;
        again.escalations[0].severity = Severity::Critical;
        let written = b.record_effects(&again).await.unwrap();
        let (raised, opened) = written.escalation.unwrap();
        assert_eq!((raised.id, opened), (case.id, false), "{}", ts.name);
        assert_eq!(raised.severity, Severity::Critical, "{}", ts.name);
        assert!(written.session_missing, "{}", ts.name);
        assert!(written.user.is_none(), "{}", ts.name);
        assert_eq!(b.case_turns(case.id).await.unwrap().len(), 3, "{}", ts.name);
        assert_eq!(
            b.interventions_between(t(0), t(30), 10)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(b.counter_totals(day, day).await.unwrap()[0].value, 2);
    }
}

#[tokio::test]
async fn nothing_is_written_when_a_part_fails() {
    for ts in both().await {
        let b = ts.store.backend();
        // The last part (the case's context) cannot be written: its table is gone.
        match ts.store.database() {
            Database::Sqlite(s) => {
                sqlx::query("DROP TABLE case_turns")
                    .execute(s.pool())
                    .await
                    .unwrap();
            }
            Database::Postgres(s) => {
                sqlx::query("DROP TABLE case_turns")
                    .execute(s.pool())
                    .await
                    .unwrap();
            }
        }
        assert!(b.record_effects(&effects("v", "s1", 10)).await.is_err());
        assert!(b.get_session("s1").await.unwrap().is_none(), "{}", ts.name);
        assert!(
            b.active_escalation("v").await.unwrap().is_none(),
            "{}",
            ts.name
        );
        assert!(b.get_user("v").await.unwrap().is_none(), "{}", ts.name);
        for table in [
            "interventions",
            "counters",
            "outbox",
            "session_state",
            "escalations",
        ] {
            let n = count(&ts.store, &format!("SELECT COUNT(*) FROM {table}")).await;
            assert_eq!(n, 0, "{}: {table}", ts.name);
        }
    }
}
