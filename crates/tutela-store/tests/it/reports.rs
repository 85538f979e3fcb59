//! Interventions (transparency report by rule and jurisdiction) and counters (SB 243 referral
//! count per calendar year).

use tutela_store::{Intervention, Store, StoreOptions, year_days};
use tutela_types::{Action, Counter, NoticeContent, Reason, ReplyTemplate, Side, Timestamp};

use crate::support::{both, reason, t};

fn intervention(
    user: &str,
    jurisdiction: &str,
    action: Action,
    reasons: Vec<Reason>,
    secs: i64,
) -> Intervention {
    Intervention {
        id: 0,
        at: t(secs),
        user_id: Some(user.into()),
        session_id: Some("s".into()),
        jurisdiction: jurisdiction.into(),
        detector: Some("crisis".into()),
        side: Some(Side::User),
        action,
        reasons,
        audit_seq: Some(7),
    }
}

#[tokio::test]
async fn interventions_round_trip_and_count_by_rule() {
    for ts in both().await {
        let i = ts.store.interventions();
        let replace = Action::ReplaceReply {
            template: ReplyTemplate::CrisisSupport,
            resources: true,
        };
        let notice = Action::Notice {
            contents: vec![NoticeContent::AiIdentity],
            continuous_minutes: 0,
        };
        let ny = Reason {
            profile: "us-ny-gbl-art47".into(),
            obligation: "not-human-notice".into(),
            article: "GBL §1702".into(),
        };
        let items = vec![
            intervention("a", "cn", replace.clone(), vec![reason("crisis-reply")], 1),
            intervention("b", "cn", replace.clone(), vec![reason("crisis-reply")], 2),
            intervention(
                "c",
                "us-ny",
                notice.clone(),
                vec![ny.clone(), reason("ai-notice")],
                3,
            ),
        ];
        let ids = i.record_interventions(&items).await.unwrap();
        assert_eq!(ids.len(), 3, "{}", ts.name);
        assert!(i.record_interventions(&[]).await.unwrap().is_empty());

        let back = i.interventions_between(t(0), t(10), 10).await.unwrap();
        assert_eq!(back.len(), 3);
        // Newest first, with ids filled in and everything else as written.
        assert_eq!(back[0].id, ids[2]);
        let mut expected = items[2].clone();
        expected.id = ids[2];
        assert_eq!(back[0], expected);
        assert_eq!(
            i.interventions_between(t(2), t(3), 10).await.unwrap().len(),
            1
        );
        assert_eq!(
            i.interventions_between(t(0), t(10), 1).await.unwrap().len(),
            1
        );

        let counts = i.intervention_counts(t(0), t(10)).await.unwrap();
        let flat: Vec<(&str, &str, &str, u64)> = counts
            .iter()
            .map(|c| {
                (
                    c.jurisdiction.as_str(),
                    c.kind.as_str(),
                    c.obligation.as_str(),
                    c.count,
                )
            })
            .collect();
        assert_eq!(
            flat,
            [
                ("cn", "replace_reply", "crisis-reply", 2),
                ("us-ny", "notice", "ai-notice", 1),
                ("us-ny", "notice", "not-human-notice", 1),
            ]
        );
    }
}

#[tokio::test]
async fn counters_sum_per_calendar_year_without_personal_data() {
    for ts in both().await {
        let c = ts.store.counters();
        let dec_31 = Timestamp::parse("2026-12-31T12:00:00Z").unwrap();
        let jan_1 = Timestamp::parse("2027-01-01T12:00:00Z").unwrap();
        c.bump(Counter::CrisisReferral, "us-ca", dec_31, 1)
            .await
            .unwrap();
        c.bump(Counter::CrisisReferral, "us-ca", dec_31, 2)
            .await
            .unwrap();
        c.bump(Counter::CrisisReferral, "us-ca", jan_1, 1)
            .await
            .unwrap();
        c.bump(Counter::RiskDetection, "cn", dec_31, 5)
            .await
            .unwrap();
        let (from, to) = year_days(2026);
        let totals = c.counter_totals(from, to).await.unwrap();
        let flat: Vec<(&str, &str, u64)> = totals
            .iter()
            .map(|t| (t.name.as_str(), t.jurisdiction.as_str(), t.value))
            .collect();
        assert_eq!(
            flat,
            [("crisis_referral", "us-ca", 3), ("risk_detection", "cn", 5)],
            "{}",
            ts.name
        );
        let (from, to) = year_days(2027);
        assert_eq!(c.counter_totals(from, to).await.unwrap()[0].value, 1);
        let _ = t(0);
    }
}

#[tokio::test]
async fn counter_days_follow_the_report_time_zone() {
    let store = Store::open_in_memory_with(StoreOptions {
        report_utc_offset_minutes: -8 * 60,
    })
    .await
    .unwrap();
    // 03:00 UTC on 1 January is still 31 December in UTC-8.
    let at = Timestamp::parse("2027-01-01T03:00:00Z").unwrap();
    store
        .counters()
        .bump(Counter::CrisisReferral, "us-ca", at, 1)
        .await
        .unwrap();
    let (from, to) = year_days(2026);
    assert_eq!(
        store.counters().counter_totals(from, to).await.unwrap()[0].value,
        1
    );
}

#[tokio::test]
async fn tallies_are_written_by_the_writer_with_the_turns() {
    for ts in both().await {
        let w = ts.store.audit();
        let notice = Action::Notice {
            contents: vec![NoticeContent::AiIdentity],
            continuous_minutes: 0,
        };
        w.record_turn(tutela_store::TurnRecord {
            user_id: "a".into(),
            session_id: "s".into(),
            jurisdiction: "cn".into(),
            at: t(1),
            state: tutela_types::SessionState::default(),
            local_day: t(1).local_date(0),
            usage_secs: 30,
            stamp: None,
        })
        .await
        .unwrap();
        let mut row = intervention("a", "cn", notice, vec![reason("ai-notice"), reason("x")], 1);
        row.side = Some(Side::Assistant);
        w.record_tally(tutela_store::Tally {
            interventions: vec![row.clone()],
            counts: vec![tutela_store::CounterBump {
                counter: Counter::RiskDetection,
                jurisdiction: "cn".into(),
                at: t(1),
                by: 2,
            }],
        })
        .await
        .unwrap();
        // Queued, not awaited: a flush is what makes them visible.
        w.flush().await.unwrap();
        let back = ts
            .store
            .interventions()
            .interventions_between(t(0), t(10), 10)
            .await
            .unwrap();
        assert_eq!(back.len(), 1, "{}", ts.name);
        row.id = back[0].id;
        assert_eq!(back[0], row, "{}", ts.name);
        let counts = ts
            .store
            .interventions()
            .intervention_counts(t(0), t(10))
            .await
            .unwrap();
        assert_eq!(counts.len(), 2, "one per reason: {counts:?}");
        let day = t(1).local_date(0);
        let totals = ts.store.counters().counter_totals(day, day).await.unwrap();
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0].value, 2);
        let usage = ts.store.usage().usage_between(day, day).await.unwrap();
        assert_eq!(usage.len(), 1, "the turn of the same batch: {usage:?}");
    }
}
