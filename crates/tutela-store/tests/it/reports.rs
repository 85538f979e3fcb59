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

/// A writer's batch of many tallies and turns gives the rows that one statement per row gave,
/// on every backend (PostgreSQL writes it as one statement of arrays): counter bumps of one
/// counter, jurisdiction and day add up, intervention ids ascend in the order the rows came,
/// every reason is kept once, and the turns' rows are folded as before.
#[tokio::test]
async fn a_batch_of_tallies_writes_the_rows_of_one_statement_each() {
    for ts in both().await {
        let s = ts.store.sessions();
        let replace = Action::ReplaceReply {
            template: ReplyTemplate::CrisisSupport,
            resources: true,
        };
        let notice = Action::Notice {
            contents: vec![NoticeContent::AiIdentity],
            continuous_minutes: 0,
        };
        let bump = |counter, jurisdiction: &str, secs, by| tutela_store::CounterBump {
            counter,
            jurisdiction: jurisdiction.into(),
            at: t(secs),
            by,
        };
        let turn = |user: &str, session: &str, secs: i64| tutela_store::TurnRecord {
            user_id: user.into(),
            session_id: session.into(),
            jurisdiction: "cn".into(),
            at: t(secs),
            state: tutela_types::SessionState::default(),
            local_day: t(secs).local_date(0),
            usage_secs: 10,
            stamp: Some(format!("{user}-{secs}")),
        };
        let mut unnamed = intervention("c", "us-ca", notice.clone(), vec![], 4);
        unnamed.user_id = None;
        unnamed.session_id = None;
        unnamed.detector = None;
        unnamed.side = None;
        unnamed.audit_seq = None;
        let tallies = vec![
            tutela_store::Tally {
                interventions: vec![
                    intervention("a", "cn", replace.clone(), vec![reason("crisis-reply")], 1),
                    intervention(
                        "b",
                        "cn",
                        notice.clone(),
                        vec![reason("ai-notice"), reason("x"), reason("x")],
                        2,
                    ),
                ],
                counts: vec![
                    bump(Counter::RiskDetection, "cn", 1, 1),
                    bump(Counter::CrisisReferral, "cn", 1, 1),
                ],
            },
            tutela_store::Tally::default(),
            tutela_store::Tally {
                interventions: vec![unnamed.clone()],
                counts: vec![
                    bump(Counter::RiskDetection, "cn", 3, 2),
                    bump(Counter::RiskDetection, "cn", 90_000, 5),
                    bump(Counter::RiskDetection, "us-ca", 3, 1),
                ],
            },
        ];
        let turns = vec![turn("a", "s1", 1), turn("b", "s2", 2), turn("a", "s1", 3)];
        s.record_batch(&turns, &tallies).await.unwrap();
        // A second batch: the same keys add up across batches too.
        s.record_batch(&[turn("a", "s1", 5)], &tallies[..1])
            .await
            .unwrap();

        let mut back = ts
            .store
            .interventions()
            .interventions_between(t(0), t(10), 10)
            .await
            .unwrap();
        back.reverse();
        let who: Vec<(Option<String>, i64)> = back
            .iter()
            .map(|i| (i.user_id.clone(), i.at.unix() - t(0).unix()))
            .collect();
        assert_eq!(
            who,
            vec![
                (Some("a".into()), 1),
                (Some("a".into()), 1),
                (Some("b".into()), 2),
                (Some("b".into()), 2),
                (None, 4),
            ],
            "{}",
            ts.name
        );
        let mut ids: Vec<i64> = back.iter().map(|i| i.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 5, "{}", ts.name);
        let last = back.last().unwrap().clone();
        unnamed.id = last.id;
        assert_eq!(last, unnamed, "{}", ts.name);
        // Ids ascend in the order the rows came, batch after batch.
        let mut by_id = back.clone();
        by_id.sort_by_key(|i| i.id);
        let order: Vec<(Option<String>, i64)> = by_id
            .iter()
            .map(|i| (i.user_id.clone(), i.at.unix() - t(0).unix()))
            .collect();
        assert_eq!(
            order,
            vec![
                (Some("a".into()), 1),
                (Some("b".into()), 2),
                (None, 4),
                (Some("a".into()), 1),
                (Some("b".into()), 2),
            ],
            "{}",
            ts.name
        );
        let counts = ts
            .store
            .interventions()
            .intervention_counts(t(0), t(10))
            .await
            .unwrap();
        let mut n: Vec<(String, u64)> = counts
            .iter()
            .map(|c| (c.obligation.clone(), c.count))
            .collect();
        n.sort();
        assert_eq!(
            n,
            vec![
                ("ai-notice".into(), 2),
                ("crisis-reply".into(), 2),
                ("x".into(), 2)
            ],
            "{}: {counts:?}",
            ts.name
        );

        let day = t(0).local_date(0);
        let next = t(90_000).local_date(0);
        let totals = ts.store.counters().counter_totals(day, day).await.unwrap();
        let totals: Vec<(String, String, u64)> = totals
            .into_iter()
            .map(|c| (c.name, c.jurisdiction, c.value))
            .collect();
        assert_eq!(
            totals,
            vec![
                ("crisis_referral".into(), "cn".into(), 2),
                ("risk_detection".into(), "cn".into(), 4),
                ("risk_detection".into(), "us-ca".into(), 1),
            ],
            "{}",
            ts.name
        );
        let later = ts
            .store
            .counters()
            .counter_totals(next, next)
            .await
            .unwrap();
        assert_eq!(later.len(), 1, "{}", ts.name);
        assert_eq!(later[0].value, 5, "{}", ts.name);

        let a = s.get_session("s1").await.unwrap().unwrap();
        assert_eq!((a.turns, a.last_seen_at), (3, t(5)), "{}", ts.name);
        let stamped = s.stamped_state("a").await.unwrap().unwrap();
        assert_eq!(stamped.stamp.as_deref(), Some("a-5"), "{}", ts.name);
        assert_eq!(stamped.session_id.as_deref(), Some("s1"), "{}", ts.name);
        let usage = ts.store.usage().daily_usage_secs("a", day).await.unwrap();
        assert_eq!(usage, 30, "{}", ts.name);

        // Alone, intervention rows come back with their ids in order.
        let items = vec![
            intervention("d", "cn", replace.clone(), vec![reason("crisis-reply")], 6),
            intervention("e", "cn", notice.clone(), vec![], 7),
        ];
        let ids = ts
            .store
            .interventions()
            .record_interventions(&items)
            .await
            .unwrap();
        assert_eq!(ids.len(), 2, "{}", ts.name);
        assert!(ids[0] < ids[1], "{}: {ids:?}", ts.name);
        let rows = ts
            .store
            .interventions()
            .interventions_between(t(6), t(8), 10)
            .await
            .unwrap();
        for row in rows {
            let i = if row.user_id.as_deref() == Some("d") {
                0
            } else {
                1
            };
            assert_eq!(row.id, ids[i], "{}", ts.name);
        }
    }
}
