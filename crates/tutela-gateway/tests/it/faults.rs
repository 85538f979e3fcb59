//! Faults of the store: when audit writes fail (a full disk), a person in crisis still gets the
//! crisis reply, `/readyz` says not ready, `/metrics` says writes fail, and once writes
//! succeed again every held record is written and the chain verifies, noting the outage.
//! Side effects and a person's messages to their case that cannot be written are held and
//! written in order by one worker, never given up, with `/readyz` not ready meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tutela_gateway::WriteFault;
use tutela_store::{
    AuditLog, AuditQuery, ChainLink, NewAuditRecord, StoreError, StoredAuditRecord,
};

use crate::support::{TestGateway, content};

/// Fails every append while `broken` is set, as a full disk does.
pub struct Faulty {
    inner: Arc<dyn AuditLog>,
    pub broken: AtomicBool,
}

#[async_trait]
impl AuditLog for Faulty {
    async fn append(&self, records: &[NewAuditRecord]) -> tutela_store::Result<Vec<ChainLink>> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::AuditPending("database or disk is full".into()));
        }
        self.inner.append(records).await
    }
    async fn audit_page(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> tutela_store::Result<Vec<StoredAuditRecord>> {
        self.inner.audit_page(after_seq, limit).await
    }
    async fn recorded_head(&self) -> tutela_store::Result<Option<ChainLink>> {
        self.inner.recorded_head().await
    }
    async fn query_audit(&self, q: &AuditQuery) -> tutela_store::Result<Vec<StoredAuditRecord>> {
        self.inner.query_audit(q).await
    }
}

/// A gateway whose audit log is broken until the returned switch is cleared.
pub async fn broken_gateway(extra: &str) -> (TestGateway, Arc<std::sync::OnceLock<Arc<Faulty>>>) {
    let cell: Arc<std::sync::OnceLock<Arc<Faulty>>> = Arc::new(std::sync::OnceLock::new());
    let c = cell.clone();
    let wrap: tutela_gateway::AuditLogWrap = Box::new(move |inner| {
        let f = Arc::new(Faulty {
            inner,
            broken: AtomicBool::new(true),
        });
        let _ = c.set(f.clone());
        f
    });
    let gw = TestGateway::start_faulty(extra, wrap).await;
    (gw, cell)
}

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn get(gw: &TestGateway, path: &str) -> (u16, String) {
    let r = gw.http.get(gw.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn crisis_reply_reaches_the_person_while_the_disk_is_full() {
    let (gw, faulty) = broken_gateway("").await;
    let (status, _, body) = gw
        .chat(
            "u-full",
            Some("us-ca"),
            "I want to kill myself tonight",
            false,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(content(&v).contains("988"), "{body}");
    // Streamed too.
    let (status, _, body) = gw
        .chat(
            "u-full-2",
            Some("us-ca"),
            "I want to kill myself tonight",
            true,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("988"), "{body}");
    // Not ready, and the metrics say why.
    let (status, body) = get(&gw, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("writes failing"), "{body}");
    let (_, metrics) = get(&gw, "/metrics").await;
    assert!(
        metrics.contains("tutela_store_writes_failing 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tutela_durable_audit_late_total 2"),
        "{metrics}"
    );
    // Normal turns still work (their records are held).
    let v = gw.say("u-normal", None, "Tell me a story.").await;
    assert_eq!(v["tutela"]["author"], "model");
    // Space freed: everything held is written, and the chain says there was an outage.
    faulty.get().unwrap().broken.store(false, Ordering::SeqCst);
    for _ in 0..200 {
        if get(&gw, "/readyz").await.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(get(&gw, "/readyz").await.0, 200);
    let v = gw.admin_get("/admin/audit/verify").await;
    assert_eq!(v["intact"], true, "{v}");
    let records = gw.admin_get("/admin/audit?limit=100").await;
    let kinds: Vec<&str> = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "admin", "the outage note comes first: {kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "intervention").count(),
        3,
        "both crisis records and the normal turn's notice, written late: {kinds:?}"
    );
    let (_, metrics) = get(&gw, "/metrics").await;
    assert!(
        metrics.contains("tutela_store_writes_failing 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tutela_audit_outages_total 1"),
        "{metrics}"
    );
}

/// A gateway over the database file and spill directory in `dir`, its side effects failing
/// while `fault` is set.
#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn gateway_on_disk(dir: &std::path::Path, fault: Arc<WriteFault>) -> TestGateway {
    let mock = crate::support::mock(vec![]).await;
    let text = format!(
        "database = \"{}\"\n[store]\nspill_dir = \"{}\"\n[upstream]\nkind = \"openai\"\nbase_url = \"{}\"\n",
        dir.join("tutela.db").display(),
        dir.join("spill").display(),
        mock.base_url()
    );
    let mut env = std::collections::HashMap::new();
    env.insert(
        "TUTELA_ADMIN_TOKEN".to_owned(),
        crate::support::TOKEN.to_owned(),
    );
    let config = tutela_gateway::Config::from_toml(&text, &env).unwrap();
    let clock = Arc::new(tutela_gateway::ManualClock::new(crate::support::t0()));
    let state = tutela_gateway::build(
        config,
        tutela_gateway::Parts {
            clock: Some(clock.clone()),
            scanner: Some(Arc::new(crate::support::FakeScanner)),
            write_fault: Some(fault),
            ..tutela_gateway::Parts::default()
        },
    )
    .await
    .unwrap();
    TestGateway::listen(state, mock, clock).await
}

fn held_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir.join("spill"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("effects-spill-"))
                .collect()
        })
        .unwrap_or_default()
}

/// #12 item 4: the crisis team's case, the intervention rows and the counters of a crisis
/// turn served while the store cannot write them are held in the spill directory; a process
/// killed before it could write them leaves them there, and the next one writes them.
#[test]
fn side_effects_held_in_an_outage_survive_a_kill_through_the_spill_directory() {
    let dir = std::env::temp_dir().join(format!("tutela-held-effects-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The first process: every side effect fails; the person still gets the crisis reply.
    let first = dir.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let gw = gateway_on_disk(&first, Arc::new(WriteFault::new(true))).await;
            let (status, _, body) = gw
                .chat(
                    "u-held",
                    Some("us-ca"),
                    "I want to kill myself tonight",
                    false,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("988"), "{body}");
            let (_, metrics) = get(&gw, "/metrics").await;
            assert!(metrics.contains("tutela_side_effects_held 1"), "{metrics}");
            assert!(
                metrics.contains("tutela_side_effects_spilled_total 1"),
                "{metrics}"
            );
            assert_eq!(held_files(&first).len(), 1, "{:?}", held_files(&first));
            let open = gw.state.records.backend.active_escalation("u-held").await;
            assert!(open.unwrap().is_none(), "the case is not written yet");
        });
        // kill -9: the runtime goes, and the retries in memory with it.
        drop(rt);
    })
    .join()
    .unwrap();
    assert_eq!(held_files(&dir).len(), 1);
    // The next process over the same database and spill directory writes them.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let gw = gateway_on_disk(&dir, Arc::new(WriteFault::new(false))).await;
        let b = &gw.state.records.backend;
        let mut case = None;
        for _ in 0..400 {
            case = b.active_escalation("u-held").await.unwrap();
            if case.is_some() && held_files(&dir).is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let case = case.expect("the crisis team's case is written after the restart");
        assert_eq!(case.jurisdiction.as_deref(), Some("us-ca"));
        assert!(held_files(&dir).is_empty(), "{:?}", held_files(&dir));
        let t = crate::support::t0();
        let rows = crate::support::interventions_near_t0(&gw.state).await;
        assert!(
            rows.iter().any(|r| r.user_id.as_deref() == Some("u-held")),
            "intervention rows: {rows:?}"
        );
        let day = t.local_date(0);
        let counters = b.counter_totals(day, day).await.unwrap();
        assert!(
            counters.iter().any(|c| c.value > 0),
            "counters: {counters:?}"
        );
        let (_, metrics) = get(&gw, "/metrics").await;
        assert!(
            metrics.contains("tutela_side_effects_replayed_total 1"),
            "{metrics}"
        );
        assert!(metrics.contains("tutela_side_effects_held 0"), "{metrics}");
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A gateway whose side effects and case messages fail while `fault` is broken, the held
/// writes retried with a backoff of a few milliseconds (so hundreds of attempts pass in a
/// moment), a takeover turn waiting one second for a human.
async fn held_gateway(fault: Arc<WriteFault>) -> TestGateway {
    let backoff = tutela_gateway::HeldBackoff {
        first: std::time::Duration::from_millis(1),
        max: std::time::Duration::from_millis(2),
    };
    TestGateway::start_parts(
        "[takeover]\nwait_secs = 1\n",
        vec![],
        tutela_gateway::Parts {
            write_fault: Some(fault),
            held_backoff: Some(backoff),
            ..tutela_gateway::Parts::default()
        },
    )
    .await
}

/// Waits (bounded) until `/readyz` answers 200.
#[expect(clippy::panic, reason = "a test helper fails the test loudly")]
async fn until_ready(gw: &TestGateway) {
    for _ in 0..800 {
        if get(gw, "/readyz").await.0 == 200 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (status, body) = get(gw, "/readyz").await;
    panic!("never ready again: {status} {body}");
}

/// Waits (bounded) until `fault` saw more than `n` attempts at `what`.
#[expect(clippy::panic, reason = "a test helper fails the test loudly")]
async fn until_attempts(fault: &WriteFault, what: &str, n: usize) {
    for _ in 0..20_000 {
        if fault.attempts().iter().filter(|a| *a == what).count() > n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    panic!("fewer than {n} attempts at {what}");
}

/// #12 item 4: the side effects of several crisis turns served while the store cannot write
/// them are held, `/readyz` says so (503, how many), and once writes succeed they are written
/// in the order of the turns, `/readyz` is ready again, and the takeover the cases open
/// reaches the users' next turns.
#[tokio::test]
async fn side_effects_held_in_an_outage_are_written_in_order_and_readyz_recovers() {
    let fault = Arc::new(WriteFault::new(true));
    let gw = held_gateway(fault.clone()).await;
    let users = ["u-order-a", "u-order-b", "u-order-c"];
    for u in users {
        let v = gw.say(u, Some("us-ny"), "I want to end my life").await;
        assert!(content(&v).contains("988"), "{v}");
    }
    let (status, body) = get(&gw, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("held: 3 intervention side effects and 0 case messages"),
        "{body}"
    );
    let (_, metrics) = get(&gw, "/metrics").await;
    assert!(metrics.contains("tutela_side_effects_held 3"), "{metrics}");
    let open = gw.admin_get("/admin/escalations").await;
    assert_eq!(open["escalations"].as_array().unwrap().len(), 0, "{open}");
    fault.set(false);
    until_ready(&gw).await;
    let open = gw.admin_get("/admin/escalations").await;
    let mut cases: Vec<(i64, String)> = open["escalations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let id = c["id"].as_i64().unwrap();
            (id, c["user_id"].as_str().unwrap().to_owned())
        })
        .collect();
    cases.sort_unstable();
    let order: Vec<&str> = cases.iter().map(|(_, u)| u.as_str()).collect();
    assert_eq!(order, users, "written in the order they were held");
    let (_, metrics) = get(&gw, "/metrics").await;
    assert!(metrics.contains("tutela_side_effects_held 0"), "{metrics}");
    assert!(
        metrics.contains("tutela_side_effects_late_total 3"),
        "{metrics}"
    );
    // The takeover opened late: the person's next message goes to the case, not the model.
    let v = gw.say("u-order-a", Some("us-ny"), "is anyone there?").await;
    assert_eq!(v["tutela"]["author"], "tutela", "{v}");
    assert_eq!(gw.mock.calls(), 0);
}

/// #12 item 4: a person's message to their case, held while the store cannot write it, is
/// retried for longer than the old give-up (720 attempts, about an hour at the real backoff)
/// and stored once writes succeed; `/readyz` says it is held meanwhile.
#[tokio::test]
async fn a_case_message_held_past_the_old_give_up_is_still_stored() {
    let fault = Arc::new(WriteFault::new(false));
    let gw = held_gateway(fault.clone()).await;
    gw.say("u-msg", Some("us-ny"), "I want to end my life")
        .await;
    let case = gw.admin_get("/admin/escalations").await["escalations"][0]["id"]
        .as_i64()
        .unwrap();
    fault.set(true);
    let v = gw.say("u-msg", Some("us-ny"), "is anyone there?").await;
    assert_eq!(v["tutela"]["author"], "tutela", "{v}");
    assert!(content(&v).contains("988"), "{v}");
    let (status, body) = get(&gw, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("held: 0 intervention side effects and 1 case messages"),
        "{body}"
    );
    let what = format!("case {case}");
    until_attempts(&fault, &what, 800).await;
    let (_, metrics) = get(&gw, "/metrics").await;
    assert!(metrics.contains("tutela_case_messages_held 1"), "{metrics}");
    let shown = gw.admin_get(&format!("/admin/escalations/{case}")).await;
    let stored = |shown: &serde_json::Value| {
        shown["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["body"] == "is anyone there?" && m["direction"] == "from_user")
    };
    assert!(!stored(&shown), "{shown}");
    fault.set(false);
    until_ready(&gw).await;
    let shown = gw.admin_get(&format!("/admin/escalations/{case}")).await;
    assert!(stored(&shown), "{shown}");
    let (_, metrics) = get(&gw, "/metrics").await;
    assert!(metrics.contains("tutela_case_messages_held 0"), "{metrics}");
}

/// #12 item 4: the side effects of many failed turns are retried by one worker, head first:
/// while the oldest cannot be written, no other is tried again (one task per turn would try
/// each), and the queue's length is on `/metrics`.
#[tokio::test]
async fn many_failed_turns_are_retried_by_one_worker_head_first() {
    let fault = Arc::new(WriteFault::new(true));
    let gw = held_gateway(fault.clone()).await;
    let users: Vec<String> = (0..8).map(|i| format!("u-many-{i}")).collect();
    for u in &users {
        gw.say(u, Some("us-ny"), "I want to end my life").await;
    }
    let tried = |u: &str| fault.attempts().iter().filter(|a| *a == u).count();
    let before: Vec<usize> = users.iter().map(|u| tried(u)).collect();
    until_attempts(&fault, &users[0], before[0] + 50).await;
    let after: Vec<usize> = users.iter().map(|u| tried(u)).collect();
    assert_eq!(
        after[1..],
        before[1..],
        "only the head is retried while it fails"
    );
    let (_, metrics) = get(&gw, "/metrics").await;
    assert!(metrics.contains("tutela_side_effects_held 8"), "{metrics}");
    let retries: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tutela_held_write_retries_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(retries >= 50, "{metrics}");
    fault.set(false);
    until_ready(&gw).await;
    let (_, metrics) = get(&gw, "/metrics").await;
    assert!(metrics.contains("tutela_side_effects_held 0"), "{metrics}");
    let open = gw.admin_get("/admin/escalations").await;
    assert_eq!(open["escalations"].as_array().unwrap().len(), 8, "{open}");
}

/// A record that only fills the writer's queue.
fn filler(at: tutela_types::Timestamp) -> tutela_store::AuditEntry {
    tutela_store::AuditEntry {
        at,
        kind: tutela_store::AuditKind::Turn,
        user: Some("u-filler".into()),
        session: None,
        jurisdiction: None,
        payload: tutela_store::AuditPayload::detail(serde_json::json!({"event": "filler"})),
        profile_hash: String::new(),
        content_hash: None,
    }
}

/// A person with an open case is answered while the writer's queue of records is full (writes
/// failing long enough for the queue to fill, as in a long outage under load): the takeover
/// turn's record goes on the writer's durable lane and never waits for room, as a crisis
/// turn's does. Found by the full fault suite: in a 60 s outage such turns timed out.
#[tokio::test]
async fn a_person_with_an_open_case_is_answered_while_the_record_queue_is_full() {
    use std::time::Duration;
    let (gw, faulty) = broken_gateway("[takeover]\nwait_secs = 0\n").await;
    let v = gw
        .say("u-open", Some("us-ny"), "I want to end my life")
        .await;
    assert!(content(&v).contains("988"), "{v}");
    let now = tutela_gateway::Clock::now(gw.clock.as_ref());
    let st = gw.state.clone();
    let fill = tokio::spawn(async move {
        for _ in 0..(tutela_store::PENDING_LIMIT + tutela_store::QUEUE_CAPACITY + 64) {
            st.records.audit(filler(now)).await;
        }
    });
    // Full: one more ordinary record waits for room.
    loop {
        let more = gw.state.records.audit(filler(now));
        if tokio::time::timeout(Duration::from_millis(200), more)
            .await
            .is_err()
        {
            break;
        }
    }
    let turn = gw.say("u-open", Some("us-ny"), "please, is anyone there");
    let v = tokio::time::timeout(Duration::from_secs(20), turn)
        .await
        .expect("the takeover turn is answered while the record queue is full");
    assert_eq!(v["tutela"]["author"], "tutela", "{v}");
    assert!(content(&v).contains("988"), "{v}");
    // A new person in crisis too.
    let turn = gw.say("u-new", Some("us-ny"), "I want to kill myself tonight");
    let v = tokio::time::timeout(Duration::from_secs(20), turn)
        .await
        .expect("a crisis turn is answered while the record queue is full");
    assert!(content(&v).contains("988"), "{v}");
    // Space freed: the queue drains and nothing is lost.
    faulty.get().unwrap().broken.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(120), fill)
        .await
        .expect("the queue drains once writes succeed")
        .unwrap();
    until_ready(&gw).await;
    let v = gw.admin_get("/admin/audit/verify").await;
    assert_eq!(v["intact"], true, "{v}");
}
