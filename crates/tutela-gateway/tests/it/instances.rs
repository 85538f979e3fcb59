//! Several gateway instances on one PostgreSQL database behave as one gateway: a user's turns
//! spread round-robin over three instances meet the law's clocks exactly as one instance on
//! SQLite does (one simulated clock for all of them); a crisis case opened through one
//! instance is answered by staff on another and the reply reaches the person, waiting on a
//! third, at once; the hand-back is told once, whichever instance the next turn reaches.
//! Each test has a database of its own on the machine's server (created here, dropped by a
//! watcher when the test process ends); skipped without a server unless `TUTELA_REQUIRE_PG=1`.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tutela_gateway::{Config, ManualClock, Parts};
use tutela_mock_upstream::MockHandle;

use crate::support::{FakeScanner, TOKEN, TestGateway, content, mock, t0};

/// The servers tried, as the store's tests try them.
fn servers() -> Vec<String> {
    match std::env::var("TUTELA_TEST_PG") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://postgres@127.0.0.1:5432/test".into(),
            "postgres://root@127.0.0.1:5432/test".into(),
        ],
    }
}

/// A new database on the machine's server (its URL), dropped by a watcher process once this
/// process exits; `None` without a server, unless `TUTELA_REQUIRE_PG=1`.
fn database(tag: &str) -> Option<String> {
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("tutela_gw_{}_{tag}_{nanos}", std::process::id());
    for server in servers() {
        let made = std::process::Command::new("psql")
            .args([
                server.as_str(),
                "-qc",
                &format!("CREATE DATABASE \"{name}\""),
            ])
            .output();
        if !made.is_ok_and(|o| o.status.success()) {
            continue;
        }
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             psql '{server}' -qc 'DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)'",
            pid = std::process::id()
        );
        let _ = std::process::Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let (base, _) = server.rsplit_once('/').unwrap();
        return Some(format!("{base}/{name}"));
    }
    assert!(
        !std::env::var("TUTELA_REQUIRE_PG").is_ok_and(|v| v == "1"),
        "TUTELA_REQUIRE_PG=1 but no PostgreSQL server answered"
    );
    eprintln!("notice: the multi-instance gateway tests are skipped: no PostgreSQL server");
    None
}

/// One gateway instance on `database`, on a loopback port of its own, with the shared clock.
async fn instance(
    database: &str,
    mock: &MockHandle,
    clock: &Arc<ManualClock>,
    extra: &str,
) -> TestGateway {
    let text = format!(
        "database = \"{database}\"\n{extra}\n[upstream]\nkind = \"openai\"\nbase_url = \"{}\"\n",
        mock.base_url()
    );
    let mut env = HashMap::new();
    env.insert("TUTELA_ADMIN_TOKEN".to_owned(), TOKEN.to_owned());
    let config = Config::from_toml(&text, &env).unwrap();
    let parts = Parts {
        clock: Some(clock.clone()),
        scanner: Some(Arc::new(FakeScanner)),
        ..Parts::default()
    };
    let state = tutela_gateway::build(config, parts).await.unwrap();
    TestGateway::listen(state, mock.clone(), clock.clone()).await
}

/// A plain-text turn or, with `json`, one whose reply is for the app (its notices are then
/// deferred to the next plain-text reply).
fn turn(user: &str, json: bool) -> Value {
    let mut body = json!({
        "model": "mock-1",
        "messages": [{"role": "user", "content": "how was your day"}],
        "safety_identifier": user,
    });
    if json {
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "day", "schema": {"type": "object"}}});
    }
    body
}

/// What a turn told the person: the notices decided on it (not the deferred ones carried), the
/// header, and whether a notice's text went into the reply.
async fn notices_of(gw: &TestGateway, body: &Value) -> (Vec<Value>, String, bool) {
    let r = gw
        .http
        .post(gw.url("/v1/chat/completions"))
        .header("X-Tutela-Jurisdiction", "us-ny")
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let header = r
        .headers()
        .get("x-tutela-notices")
        .map(|h| h.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let v: Value = r.json().await.unwrap();
    let notices = v["tutela"]["notices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let inline = notices
        .iter()
        .filter_map(|n| n["text"].as_str())
        .any(|t| content(&v).contains(t));
    let fresh = notices
        .iter()
        .filter(|n| n.get("deferred").is_none())
        .map(|n| n["contents"].clone())
        .collect();
    (fresh, header, inline)
}

/// Seven simulated hours of one user's turns, every 20 minutes, with a pause past the idle
/// reset and a few replies for the app; returns per turn the minute, what it told the person,
/// and the session durations the store recorded.
async fn seven_hours(gws: &[&TestGateway], clock: &ManualClock) -> (Vec<String>, Vec<i64>) {
    let user = "u-clocks";
    let mut told = Vec::new();
    let mut minute = 0;
    for i in 0..24 {
        let gw = gws[i % gws.len()];
        // Replies for the app where a notice falls due (and one where none does): the notice
        // is deferred by one instance and shown by the next.
        let json = matches!(i, 5 | 9 | 22);
        let (fresh, header, inline) = notices_of(gw, &turn(user, json)).await;
        told.push(format!(
            "{minute}: {} [{header}] inline={inline}",
            serde_json::to_string(&fresh).unwrap()
        ));
        let step = if i == 11 { 45 } else { 20 };
        clock.advance_secs(step * 60);
        minute += step;
    }
    let st = &gws[0].state;
    st.records.flush().await.unwrap();
    let from = tutela_types::Timestamp::from_unix(t0().unix() - 60);
    let to = tutela_types::Timestamp::from_unix(t0().unix() + 24 * 3_600);
    let sessions = st
        .records
        .backend
        .session_durations(from, to)
        .await
        .unwrap();
    (told, sessions)
}

/// The golden clocks hold across instances: turn by turn, three instances on PostgreSQL tell
/// the person exactly what one instance on SQLite tells them, and record the same sessions.
#[tokio::test]
async fn three_instances_keep_one_user_s_clocks_exact() {
    let Some(db) = database("clocks") else {
        return;
    };
    let upstream = mock(vec![]).await;
    let alone = TestGateway::start("", vec![]).await;
    let (want, want_sessions) = seven_hours(&[&alone], &alone.clock).await;

    let clock = Arc::new(ManualClock::new(t0()));
    let a = instance(&db, &upstream, &clock, "").await;
    let b = instance(&db, &upstream, &clock, "").await;
    let c = instance(&db, &upstream, &clock, "").await;
    let (got, sessions) = seven_hours(&[&a, &b, &c], &clock).await;
    assert_eq!(got, want);
    assert_eq!(sessions, want_sessions);
    // New York's AI notice: at the first turn and every 3 hours of a period of use; the
    // 45-minute pause after minute 220 (past the 30-minute idle reset) starts a new one.
    let due: Vec<&str> = want
        .iter()
        .filter(|t| t.contains("[[\"ai_identity\"]]"))
        .filter_map(|t| t.split(':').next())
        .collect();
    assert_eq!(due, ["0", "180", "445"], "{want:#?}");
    // Deferred at 180 by a reply for the app, its text shown in the next plain-text reply.
    assert!(
        want[9].ends_with("inline=false") && want[10].ends_with("inline=true"),
        "{want:#?}"
    );
    assert_eq!(want_sessions.len(), 2, "the pause opened a second session");
}

/// A case opened through A, answered by staff through B, reaches the person waiting on C, and
/// a second reply the app's long poll on A (B's events wake them, which would otherwise wait
/// their timeouts); resolved through
/// B, the hand-back is told once, by whichever instance the next turn reaches.
#[tokio::test]
async fn a_case_opened_on_one_is_answered_on_another_and_delivered_on_a_third() {
    let Some(db) = database("takeover") else {
        return;
    };
    let upstream = mock(vec![]).await;
    let clock = Arc::new(ManualClock::new(t0()));
    let extra = "[takeover]\nwait_secs = 20\n";
    let a = instance(&db, &upstream, &clock, extra).await;
    let b = instance(&db, &upstream, &clock, extra).await;
    let c = instance(&db, &upstream, &clock, extra).await;
    let user = "u-crisis";
    // C knows the person from before the crisis (a cached entry A's turn makes stale).
    let v = c.say(user, Some("us-ny"), "hello").await;
    assert_eq!(v["tutela"]["author"], "model", "{v}");
    let v = a.say(user, Some("us-ny"), "I want to end my life").await;
    assert!(content(&v).contains("988"), "{v}");
    let list = b.admin_get("/admin/escalations").await;
    let case = list["escalations"][0]["id"].as_i64().unwrap();

    // The person's next turn, through C, waits for a human; staff answer through B.
    // Woken by B's event, not by C's timeout (20 s): else this gives up first.
    let waiting = tokio::time::timeout(
        Duration::from_secs(10),
        c.say(user, Some("us-ny"), "is anyone there?"),
    );
    let staff = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.admin_send(
            reqwest::Method::POST,
            &format!("/admin/escalations/{case}/claim"),
            json!({"staff": "ana"}),
        )
        .await;
        b.admin_send(
            reqwest::Method::POST,
            &format!("/admin/escalations/{case}/reply"),
            json!({"staff": "ana", "text": "Hi, it's Ana from the team. I'm here with you."}),
        )
        .await
    };
    let (v, _) = tokio::join!(waiting, staff);
    let v = v.expect("the waiting turn on C was woken by B's event");
    assert_eq!(v["tutela"]["author"], "human", "{v}");
    assert!(content(&v).contains("I'm here with you"), "{v}");

    // The app's channel long-polls A while staff write again through B: woken by B's event
    // (its own wait is 20 s). (Apart from the waiting turn above: both would take the same
    // reply, and whichever reads second finds it delivered.)
    let key = tutela_gateway::auth::app_key_for(TOKEN);
    let poll = tokio::time::timeout(
        Duration::from_secs(10),
        a.http
            .get(a.url(&format!("/v1/tutela/replies?user={user}&wait=20")))
            .bearer_auth(&key)
            .send(),
    );
    let staff = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.admin_send(
            reqwest::Method::POST,
            &format!("/admin/escalations/{case}/reply"),
            json!({"staff": "ana", "text": "I'll stay on this chat with you."}),
        )
        .await
    };
    let (polled, _) = tokio::join!(poll, staff);
    let polled: Value = polled
        .expect("the app's long poll on A was woken by B's event")
        .unwrap()
        .json()
        .await
        .unwrap();
    let replies = polled["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 1, "{polled}");
    assert_eq!(
        replies[0]["text"], "I'll stay on this chat with you.",
        "{polled}"
    );
    // The app showed it: acknowledged, so no turn repeats it.
    let ack = a
        .http
        .post(a.url("/v1/tutela/replies/ack"))
        .bearer_auth(&key)
        .json(&json!({"user": user, "through": replies[0]["id"]}))
        .send()
        .await
        .unwrap();
    assert!(ack.status().is_success());
    let shown = b.admin_get(&format!("/admin/escalations/{case}")).await;
    let from_user = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["body"] == "is anyone there?" && m["direction"] == "from_user");
    assert!(from_user, "the person's message reached the case: {shown}");

    // Resolved through B: the next turn, through A (its entry predates the resolution), goes
    // to the model and says once that the AI is back; the one after, through C, does not.
    b.admin_send(
        reqwest::Method::POST,
        &format!("/admin/escalations/{case}/resolve"),
        json!({"staff": "ana", "resolution": "talked, safe"}),
    )
    .await;
    let v = a.say(user, Some("us-ny"), "thanks").await;
    assert_eq!(v["tutela"]["author"], "model", "{v}");
    let resumed = |v: &Value| v.to_string().contains("ai_resumed");
    assert!(resumed(&v), "the hand-back is told: {v}");
    let v = c.say(user, Some("us-ny"), "ok").await;
    assert_eq!(v["tutela"]["author"], "model", "{v}");
    assert!(!resumed(&v), "told once: {v}");
}
