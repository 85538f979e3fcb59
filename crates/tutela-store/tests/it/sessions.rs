//! Session clocks, session rows, daily usage and monthly activity.

use tutela_store::{Store, StoreError, StoreOptions, TurnRecord, month_of};
use tutela_types::{LocalDate, SessionState, Timestamp};

use crate::support::{both, t};

fn turn(user: &str, session: &str, jurisdiction: &str, at: Timestamp, secs: u32) -> TurnRecord {
    TurnRecord {
        user_id: user.into(),
        session_id: session.into(),
        jurisdiction: jurisdiction.into(),
        at,
        state: SessionState {
            last_activity: Some(at),
            used_today_secs: secs,
            ..SessionState::default()
        },
        local_day: at.local_date(0),
        usage_secs: secs,
        stamp: None,
    }
}

#[tokio::test]
async fn session_state_round_trips() {
    for ts in both().await {
        let s = ts.store.sessions();
        assert_eq!(s.session_state("u").await.unwrap(), None);
        let mut state = SessionState {
            first_use: Some(t(1)),
            continuous_since: Some(t(1)),
            exit_requested: true,
            ..SessionState::default()
        };
        state
            .last_fired
            .insert("us-ny-gbl-art47/not-human".into(), t(2));
        s.save_session_state("u", &state, t(2)).await.unwrap();
        assert_eq!(s.session_state("u").await.unwrap(), Some(state.clone()));
        state.exit_requested = false;
        s.save_session_state("u", &state, t(3)).await.unwrap();
        assert_eq!(
            s.session_state("u").await.unwrap(),
            Some(state),
            "{}",
            ts.name
        );
    }
}

#[tokio::test]
async fn record_turn_writes_state_session_usage_and_activity() {
    for ts in both().await {
        let s = ts.store.sessions();
        s.record_turn(&turn("u", "s1", "cn", t(0), 0))
            .await
            .unwrap();
        s.record_turn(&turn("u", "s1", "cn", t(60), 60))
            .await
            .unwrap();
        s.record_turn(&turn("u", "s1", "cn", t(90), 30))
            .await
            .unwrap();
        let last = turn("u", "s1", "cn", t(90), 30);
        assert_eq!(s.session_state("u").await.unwrap(), Some(last.state));

        let session = s.get_session("s1").await.unwrap().unwrap();
        assert_eq!(
            (session.started_at, session.last_seen_at, session.turns),
            (t(0), t(90), 3),
            "{}",
            ts.name
        );
        assert_eq!(session.jurisdiction.as_deref(), Some("cn"));
        assert_eq!(session.ended_at, None);

        let day = t(0).local_date(0);
        assert_eq!(
            ts.store.usage().daily_usage_secs("u", day).await.unwrap(),
            90
        );
        let rows = ts.store.usage().usage_between(day, day).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].seconds, rows[0].turns), (90, 3));

        let month = month_of(t(0), 0);
        let mau = ts.store.usage().monthly_active(month).await.unwrap();
        assert_eq!(mau.total, 1);
        assert_eq!(mau.by_jurisdiction, vec![("cn".into(), 1)]);
    }
}

#[tokio::test]
async fn sessions_end_once_and_durations_use_the_end_or_the_last_turn() {
    for ts in both().await {
        let s = ts.store.sessions();
        s.record_turn(&turn("u", "a", "cn", t(0), 0)).await.unwrap();
        s.record_turn(&turn("u", "a", "cn", t(100), 100))
            .await
            .unwrap();
        s.end_session("a", t(130), "exit").await.unwrap();
        // A second end keeps the first.
        s.end_session("a", t(500), "idle").await.unwrap();
        s.record_turn(&turn("v", "b", "eu", t(200), 0))
            .await
            .unwrap();
        s.record_turn(&turn("v", "b", "eu", t(260), 60))
            .await
            .unwrap();
        let a = s.get_session("a").await.unwrap().unwrap();
        assert_eq!(
            (a.ended_at, a.end_reason.as_deref()),
            (Some(t(130)), Some("exit"))
        );
        assert_eq!(
            s.session_durations(t(0), t(1000)).await.unwrap(),
            vec![130, 60],
            "{}",
            ts.name
        );
        assert_eq!(
            s.session_durations(t(150), t(1000)).await.unwrap(),
            vec![60]
        );
        let err = s.end_session("nope", t(1), "exit").await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));
        assert_eq!(s.get_session("nope").await.unwrap(), None);
    }
}

#[tokio::test]
async fn daily_usage_is_per_local_day_and_summed_over_jurisdictions() {
    for ts in both().await {
        let s = ts.store.sessions();
        let mut a = turn("u", "s", "cn", t(0), 600);
        a.local_day = LocalDate(20_000);
        let mut b = turn("u", "s", "us-ca", t(10), 300);
        b.local_day = LocalDate(20_000);
        let mut c = turn("u", "s", "cn", t(20), 60);
        c.local_day = LocalDate(20_001);
        for x in [&a, &b, &c] {
            s.record_turn(x).await.unwrap();
        }
        let usage = ts.store.usage();
        assert_eq!(
            usage
                .daily_usage_secs("u", LocalDate(20_000))
                .await
                .unwrap(),
            900
        );
        assert_eq!(
            usage
                .daily_usage_secs("u", LocalDate(20_001))
                .await
                .unwrap(),
            60
        );
        assert_eq!(
            usage
                .daily_usage_secs("x", LocalDate(20_001))
                .await
                .unwrap(),
            0
        );
        let rows = usage
            .usage_between(LocalDate(20_000), LocalDate(20_000))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "{}", ts.name);
    }
}

#[tokio::test]
async fn monthly_actives_count_distinct_users_in_the_report_time_zone() {
    let store = Store::open_in_memory_with(StoreOptions {
        report_utc_offset_minutes: 480,
    })
    .await
    .unwrap();
    let s = store.sessions();
    // 20:00 UTC on 31 August is already September in UTC+8.
    let late_august = Timestamp::parse("2026-08-31T20:00:00Z").unwrap();
    let mid_august = Timestamp::parse("2026-08-15T08:00:00Z").unwrap();
    s.record_turn(&turn("a", "s1", "cn", late_august, 0))
        .await
        .unwrap();
    s.record_turn(&turn("a", "s2", "us-ca", late_august, 0))
        .await
        .unwrap();
    s.record_turn(&turn("b", "s3", "cn", late_august, 0))
        .await
        .unwrap();
    s.record_turn(&turn("c", "s4", "cn", mid_august, 0))
        .await
        .unwrap();
    let sept = store.usage().monthly_active(202609).await.unwrap();
    assert_eq!(sept.total, 2);
    assert_eq!(
        sept.by_jurisdiction,
        vec![("cn".into(), 2), ("us-ca".into(), 1)]
    );
    let aug = store.usage().monthly_active(202608).await.unwrap();
    assert_eq!((aug.total, aug.month), (1, 202608));
    assert_eq!(store.usage().monthly_active(202607).await.unwrap().total, 0);
}

#[tokio::test]
async fn a_batch_of_turns_applies_in_order_in_one_transaction() {
    for ts in both().await {
        let s = ts.store.sessions();
        let batch = vec![
            turn("u", "s1", "cn", t(0), 0),
            turn("v", "s2", "eu", t(5), 0),
            turn("u", "s1", "cn", t(60), 60),
        ];
        s.record_turns(&batch).await.unwrap();
        s.record_turns(&[]).await.unwrap();
        assert_eq!(
            s.session_state("u").await.unwrap(),
            Some(batch[2].state.clone())
        );
        assert_eq!(
            s.get_session("s1").await.unwrap().unwrap().turns,
            2,
            "{}",
            ts.name
        );
        assert_eq!(
            ts.store
                .usage()
                .daily_usage_secs("u", t(0).local_date(0))
                .await
                .unwrap(),
            60
        );
        let mau = ts
            .store
            .usage()
            .monthly_active(month_of(t(0), 0))
            .await
            .unwrap();
        assert_eq!(mau.total, 2);
    }
}

#[tokio::test]
async fn batches_longer_than_one_statement_add_up() {
    for ts in both().await {
        let batch: Vec<TurnRecord> = (0..250)
            .map(|i| {
                turn(
                    &format!("u{}", i % 10),
                    &format!("s{}", i % 10),
                    "cn",
                    t(i),
                    6,
                )
            })
            .collect();
        ts.store.sessions().record_turns(&batch).await.unwrap();
        for u in 0..10 {
            let secs = ts
                .store
                .usage()
                .daily_usage_secs(&format!("u{u}"), t(0).local_date(0))
                .await
                .unwrap();
            assert_eq!(secs, 25 * 6, "{}", ts.name);
            let s = ts
                .store
                .sessions()
                .get_session(&format!("s{u}"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(s.turns, 25);
            assert_eq!(s.last_seen_at, t(240 + u));
        }
    }
}

/// What several gateways on one database share: the stamp and session written with the
/// clocks, a new stamp for an admin change, and a pending hand-back and clearance that one
/// caller only takes; a deleted user's are gone.
#[tokio::test]
async fn stamps_and_pending_hand_backs_are_shared() {
    for ts in both().await {
        let s = ts.store.sessions();
        ts.store.users().touch_user("u", t(0)).await.unwrap();
        assert_eq!(s.state_stamp("u").await.unwrap(), None, "{}", ts.name);
        let mut first = turn("u", "s1", "cn", t(10), 5);
        first.stamp = Some("a".into());
        let mut second = turn("u", "s1", "cn", t(20), 10);
        second.stamp = Some("b".into());
        s.record_turns(&[first, second]).await.unwrap();
        assert_eq!(s.state_stamp("u").await.unwrap().as_deref(), Some("b"));
        let stamped = s.stamped_state("u").await.unwrap().unwrap();
        assert_eq!(stamped.stamp.as_deref(), Some("b"));
        assert_eq!(stamped.session_id.as_deref(), Some("s1"));
        assert_eq!(stamped.state.used_today_secs, 10);
        s.restamp("u", "c").await.unwrap();
        assert_eq!(s.state_stamp("u").await.unwrap().as_deref(), Some("c"));

        assert_eq!(
            s.pending("u").await.unwrap(),
            tutela_store::Pending::default()
        );
        let clearance = tutela_types::Clearance {
            at: t(30),
            by: tutela_types::ClearedBy::Human,
        };
        let note = tutela_store::Pending {
            handback: Some(7),
            clearance: Some(clearance),
        };
        s.note_pending("u", &note, "d", t(30)).await.unwrap();
        assert_eq!(s.state_stamp("u").await.unwrap().as_deref(), Some("d"));
        assert_eq!(s.pending("u").await.unwrap(), note, "{}", ts.name);
        // A clearance alone keeps the hand-back noted before.
        let only = tutela_store::Pending {
            handback: None,
            clearance: Some(clearance),
        };
        s.note_pending("u", &only, "e", t(31)).await.unwrap();
        assert_eq!(s.pending("u").await.unwrap().handback, Some(7));
        assert_eq!(s.take_handback("u").await.unwrap(), Some(7));
        assert_eq!(s.take_handback("u").await.unwrap(), None, "taken once");
        assert_eq!(s.take_clearance("u").await.unwrap(), Some(clearance));
        assert_eq!(s.take_clearance("u").await.unwrap(), None, "taken once");

        s.note_pending("u", &note, "f", t(40)).await.unwrap();
        ts.store.delete_user("u", t(50)).await.unwrap();
        assert_eq!(
            s.pending("u").await.unwrap(),
            tutela_store::Pending::default()
        );
        assert_eq!(s.stamped_state("u").await.unwrap(), None);
    }
}
