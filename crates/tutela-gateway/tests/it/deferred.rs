//! Notices deferred by replies for the app (structured output, tool calls): kept with the user
//! in the store, so a restart or a cache entry dropped after the idle reset does not lose them,
//! and the law's clocks of CA SB 243 and China's anthropomorphic measures met through a run of
//! JSON-only turns (New York's is in `openai.rs`).

#![expect(clippy::unwrap_used, reason = "test helpers fail the test loudly")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tutela_gateway::{Clock, Config, ManualClock, Parts};
use tutela_mock_upstream::Rule;
use tutela_types::Timestamp;

use crate::support::{FakeScanner, TOKEN, TestGateway, content, mock, t0};

const MOOD: &str = r#"{"mood": "calm", "note": "a quiet day"}"#;

/// A chat turn whose reply is for the app: structured output.
fn structured(user: &str) -> Value {
    json!({
        "model": "mock-1",
        "messages": [{"role": "user", "content": "mood"}],
        "safety_identifier": user,
        "response_format": {"type": "json_schema", "json_schema": {"name": "mood", "schema": {"type": "object"}}},
    })
}

/// A plain-text chat turn.
fn plain(user: &str) -> Value {
    json!({"model": "mock-1", "messages": [{"role": "user", "content": "hello"}], "safety_identifier": user})
}

/// Posts a turn under `jurisdiction`; returns the `X-Tutela-Notices` header and the body.
async fn post_in(gw: &TestGateway, jurisdiction: &str, body: &Value) -> (Option<String>, Value) {
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("X-Tutela-Jurisdiction", jurisdiction)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r
        .headers()
        .get("x-tutela-notices")
        .map(|v| v.to_str().unwrap().to_owned());
    (h, r.json().await.unwrap())
}

/// The `tutela.notices` entries decided on this turn (those not carried from an earlier one).
fn fresh(v: &Value) -> Vec<Value> {
    v["tutela"]["notices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n.get("deferred").is_none())
        .cloned()
        .collect()
}

/// A user's audit records (written in groups, so this waits until `done` says they are there).
async fn audit_until(gw: &TestGateway, user: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut records = Vec::new();
    for _ in 0..200 {
        let v = gw
            .admin_get(&format!("/admin/audit?user={user}&limit=1000"))
            .await;
        records = v["records"].as_array().unwrap().clone();
        if done(&records) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    records
}

/// The `notice_delivery` details of these records, in order.
fn deliveries(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .filter_map(|r| r.pointer("/payload/detail/notice_delivery").cloned())
        .collect()
}

/// A gateway over the database file `db`, its clock `clock`.
async fn gateway_on_file(db: &std::path::Path, clock: Arc<ManualClock>) -> TestGateway {
    let mock = mock(vec![Rule::reply("mood", MOOD)]).await;
    let text = format!(
        "database = \"{}\"\n[upstream]\nkind = \"openai\"\nbase_url = \"{}\"\n",
        db.display(),
        mock.base_url()
    );
    let mut env = HashMap::new();
    env.insert("TUTELA_ADMIN_TOKEN".to_owned(), TOKEN.to_owned());
    let config = Config::from_toml(&text, &env).unwrap();
    let state = tutela_gateway::build(
        config,
        Parts {
            clock: Some(clock.clone()),
            scanner: Some(Arc::new(FakeScanner)),
            ..Parts::default()
        },
    )
    .await
    .unwrap();
    TestGateway::listen(state, mock, clock).await
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tutela-gw-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Shows the carried notice: the plain-text reply opens with its text, `tutela.notices` has it
/// marked `deferred`, and the store no longer holds it.
async fn assert_carried_shown(gw: &TestGateway, jurisdiction: &str, user: &str, text: &str) {
    let (h, v) = post_in(gw, jurisdiction, &plain(user)).await;
    assert!(content(&v).contains(text), "{v}");
    assert_eq!(content(&v).matches(text).count(), 1, "shown once: {v}");
    assert!(h.is_some(), "{v}");
    let notices = v["tutela"]["notices"].as_array().unwrap();
    assert!(
        notices
            .iter()
            .any(|n| n["deferred"] == true && n["text"] == text),
        "{v}"
    );
    let b = &gw.state.records.backend;
    assert_eq!(
        b.deferred_notice(user).await.unwrap(),
        None,
        "cleared once shown"
    );
}

#[tokio::test]
async fn a_deferred_notice_is_shown_after_a_restart() {
    let dir = TempDir::new("deferred-restart");
    let db = dir.0.join("tutela.db");
    let clock = Arc::new(ManualClock::new(t0()));
    let user = "u-restart";
    let notice = {
        let gw = gateway_on_file(&db, clock.clone()).await;
        // New York: the AI-identity notice is due at the first turn; the reply is for the app.
        let (h, v) = post_in(&gw, "us-ny", &structured(user)).await;
        assert_eq!(content(&v), MOOD);
        assert_eq!(h.as_deref(), Some("ai_identity"));
        let notice = fresh(&v)[0]["text"].as_str().unwrap().to_owned();
        let kept = gw
            .state
            .records
            .backend
            .deferred_notice(user)
            .await
            .unwrap();
        assert_eq!(kept.map(|k| k.text).as_deref(), Some(notice.as_str()));
        // The process stops: what it queued is written, its memory is gone.
        assert_eq!(gw.state.records.close(Duration::from_secs(10)).await, 0);
        notice
    };
    // The next process over the same database: the clocks say no notice is due a minute later,
    // but the person has not seen the one deferred before the restart.
    clock.advance_secs(60);
    let gw = gateway_on_file(&db, clock.clone()).await;
    assert_carried_shown(&gw, "us-ny", user, &notice).await;
    let (h, v) = post_in(&gw, "us-ny", &plain(user)).await;
    assert!(h.is_none(), "{v}");
    assert!(!content(&v).contains(&notice), "{v}");
    let records = audit_until(&gw, user, |r| deliveries(r).len() >= 2).await;
    assert_eq!(
        deliveries(&records),
        [json!("deferred"), json!("shown")],
        "{records:?}"
    );
}

#[tokio::test]
async fn a_deferred_notice_outlives_the_cache_entry_dropped_after_the_idle_reset() {
    let gw = TestGateway::start("", vec![Rule::reply("mood", MOOD)]).await;
    let user = "u-idle";
    adult_in_china(&gw, user).await;
    // Two hours of continuous use through JSON turns: China's usage reminder is deferred.
    let mut notice = None;
    for _ in (0..=120).step_by(20) {
        let (_, v) = post_in(&gw, "cn", &structured(user)).await;
        if let Some(n) = fresh(&v).first() {
            notice = Some(n["text"].as_str().unwrap().to_owned());
        }
        gw.clock.advance_secs(20 * 60);
    }
    let notice = notice.expect("the usage reminder at two hours");
    // The person goes quiet past the idle reset (30 minutes); newcomers make the cache sweep,
    // which drops the idle entry.
    gw.clock.advance_secs(15 * 60);
    for i in 0..1024 {
        gw.state.user_slot(&format!("u-newcomer-{i}"));
    }
    assert!(
        gw.state.user_slot(user).lock().await.is_none(),
        "the idle entry was dropped"
    );
    // Back after the idle reset: a new period of use with no reminder due, and the one they
    // have not seen goes before the reply.
    assert_carried_shown(&gw, "cn", user, &notice).await;
}

/// Makes `user` a verified adult in Beijing (China's minors' mode does not apply).
async fn adult_in_china(gw: &TestGateway, user: &str) {
    gw.admin_send(
        reqwest::Method::PATCH,
        &format!("/admin/users/{user}"),
        json!({"age_state": "verified_adult", "utc_offset_minutes": 480}),
    )
    .await;
}

/// A notice the law requires at `minute`: its contents and the obligations it discharges.
#[derive(Clone, Copy)]
struct Due {
    minute: i64,
    contents: &'static [&'static str],
    reasons: &'static [&'static str],
}

/// Runs JSON-only turns every 20 minutes from minute 0 to 400 (from [`t0`]) under
/// `jurisdiction`; checks that
/// each notice is in `tutela.notices` and the header at the minute the law says and at no
/// other, that the audit log records it with its reasons and its deferral, and that the first
/// plain-text reply shows the last one's text.
#[expect(clippy::panic, reason = "a test helper fails the test loudly")]
async fn clock_through_json_turns(gw: &TestGateway, jurisdiction: &str, user: &str, due: &[Due]) {
    let start = t0();
    let mut seen = Vec::new();
    let mut last = String::new();
    for minute in (0..=400).step_by(20) {
        let (h, v) = post_in(gw, jurisdiction, &structured(user)).await;
        assert_eq!(content(&v), MOOD, "never altered: {v}");
        let fresh = fresh(&v);
        if let Some(n) = fresh.first() {
            assert_eq!(fresh.len(), 1, "{v}");
            seen.push((minute, n["contents"].clone()));
            last = n["text"].as_str().unwrap().to_owned();
        }
        if !last.is_empty() {
            // Until the person sees it, every reply names the notice in the header.
            assert!(h.is_some(), "minute {minute}: {v}");
            let kept = gw
                .state
                .records
                .backend
                .deferred_notice(user)
                .await
                .unwrap();
            assert_eq!(kept.map(|k| k.text), Some(last.clone()), "minute {minute}");
        }
        gw.clock.advance_secs(20 * 60);
    }
    let want: Vec<(i64, Value)> = due.iter().map(|d| (d.minute, json!(d.contents))).collect();
    assert_eq!(seen, want, "notices at the law's times, and only then");
    // Every turn from the first notice on defers it (a newer one replaces it).
    let deferring = (0..=400)
        .step_by(20)
        .filter(|m| *m >= due[0].minute)
        .count();
    let records = audit_until(gw, user, |r| deliveries(r).len() >= deferring).await;
    assert_eq!(deliveries(&records).len(), deferring, "{records:?}");
    for d in due {
        let at = serde_json::to_value(Timestamp::from_unix(start.unix() + d.minute * 60)).unwrap();
        let at_minute: Vec<&Value> = records.iter().filter(|r| r["at"] == at).collect();
        let notice = at_minute
            .iter()
            .flat_map(|r| r["payload"]["actions"].as_array().into_iter().flatten())
            .find(|a| a["action"]["kind"] == "notice")
            .unwrap_or_else(|| panic!("minute {}: no notice recorded: {at_minute:?}", d.minute));
        assert_eq!(notice["action"]["contents"], json!(d.contents), "{notice}");
        let mut reasons: Vec<String> = notice["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["profile"].as_str().unwrap(),
                    r["obligation"].as_str().unwrap()
                )
            })
            .collect();
        reasons.sort();
        assert_eq!(reasons, d.reasons, "minute {}", d.minute);
        assert!(
            at_minute.iter().any(|r| {
                r.pointer("/payload/detail/notice_delivery") == Some(&json!("deferred"))
                    && r.pointer("/payload/detail/contents/0") == Some(&json!(d.contents))
            }),
            "minute {}: the deferral is recorded: {at_minute:?}",
            d.minute
        );
    }
    // The turns that deferred the same unseen notice again wrote nothing: the store still has
    // it from the minute it was decided.
    let last_due = t0().unix() + due[due.len() - 1].minute * 60;
    let export = gw.state.records.backend.export_user(user, gw.clock.now());
    let export = export.await.unwrap().unwrap();
    assert_eq!(
        export.deferred_notice_at,
        Some(Timestamp::from_unix(last_due))
    );
    assert_carried_shown(gw, jurisdiction, user, &last).await;
}

#[tokio::test]
async fn california_s_clock_is_met_through_structured_turns() {
    // SB 243: the AI notice at the start of use (§22602(a), and (c)(1) for a known minor), and
    // for a known minor a break reminder with the AI notice every 3 hours ((c)(2)).
    let gw = TestGateway::start("", vec![Rule::reply("mood", MOOD)]).await;
    let user = "u-ca-minor";
    gw.admin_send(
        reqwest::Method::PATCH,
        &format!("/admin/users/{user}"),
        json!({"age_state": "known_minor", "age": 15, "utc_offset_minutes": -420}),
    )
    .await;
    let break_reminder = Due {
        minute: 180,
        contents: &["ai_identity", "take_break"],
        reasons: &["us-ca-sb243/minor-break-reminder"],
    };
    clock_through_json_turns(
        &gw,
        "us-ca",
        user,
        &[
            Due {
                minute: 0,
                contents: &["ai_identity"],
                reasons: &[
                    "us-ca-sb243/ai-disclosure",
                    "us-ca-sb243/minor-ai-disclosure",
                ],
            },
            break_reminder,
            Due {
                minute: 360,
                ..break_reminder
            },
        ],
    )
    .await;
}

#[tokio::test]
async fn china_s_clock_is_met_through_structured_turns() {
    // Anthropomorphic measures Art. 18: a usage-time reminder at each 2 hours of continuous use.
    let gw = TestGateway::start("", vec![Rule::reply("mood", MOOD)]).await;
    let user = "u-cn-adult";
    adult_in_china(&gw, user).await;
    let reminder = |minute| Due {
        minute,
        contents: &["usage_time"],
        reasons: &["cn-anthropomorphic-2026/usage-reminder"],
    };
    clock_through_json_turns(
        &gw,
        "cn",
        user,
        &[reminder(120), reminder(240), reminder(360)],
    )
    .await;
}
