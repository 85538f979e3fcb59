//! PostgreSQL unreachable for 10 s under a running `tutela serve` (issue #15 item 6): a loopback
//! proxy between the instance and the server cuts every open connection and refuses new ones
//! (for at least 10 s, and until the turns of the outage are answered),
//! then lets them through again. During the outage a person in crisis gets the crisis reply
//! with help lines within seconds (new to the instance or known to it), `/readyz` answers 503,
//! a known user's normal turn goes on with its cached entry and a new user's answers 500, as
//! docs/deploy.md ("Failures") says; after it the instance is ready again by itself, the
//! crisis turns' intervention records and cases are in the database, and `tutela audit verify
//! --db URL` passes. Skipped without a server unless `TUTELA_REQUIRE_PG=1`.

use std::time::Duration;

use crate::support::{
    Proxy, admin, chat_in, database, readyz, scratch, serve_logging, server_address, wait_ready,
};

const CRISIS: &str = "I want to kill myself tonight.";

#[test]
fn postgres_away_for_ten_seconds_crisis_replies_leave_and_the_instance_recovers() {
    let Some(db) = database("PostgreSQL outage") else {
        return;
    };
    let (server, _) = server_address(&db, "");
    let proxy = Proxy::start(&server);
    let (_, through_proxy) = server_address(&db, &format!("127.0.0.1:{}", proxy.port));
    let log = scratch("pg-outage").join("serve.log");
    let (mut child, port) = serve_logging(&through_proxy, std::fs::File::create(&log).unwrap());
    wait_ready(&mut child, port);
    let show_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // A turn answered within `secs` (a socket timeout: tests read no clock).
    let turn = |user: &str, text: &str, secs: u64| {
        chat_in(port, "us-ca", user, text, Duration::from_secs(secs))
    };
    // Two known users: in the instance's cache, with their clocks in the database.
    for user in ["known", "known-crisis"] {
        let (status, body) = turn(user, "Good morning!", 30).unwrap();
        assert_eq!(status, 200, "{body}");
    }

    // The outage lasts until the turns below are answered, and at least 10 s (a thread that
    // sleeps them; tests read no clock). The bounds are for a hang, not for speed: this test
    // shares two cores with the rest of the suite (run alone, the first crisis reply took one
    // acquire timeout, 3.0 s, and the known users' turns a few milliseconds).
    proxy.cut();
    let ten_seconds = std::thread::spawn(|| std::thread::sleep(Duration::from_secs(10)));
    let during = |user: &str, text: &str| turn(user, text, 20);
    // At once: a person in crisis the instance has never seen.
    let (status, body) = during("crisis-new", CRISIS).expect("a crisis reply during the outage");
    assert_eq!(status, 200, "{body}\n{}", show_log());
    assert!(body.contains("988"), "{body}");
    // The instance knows its writes fail: not ready.
    let (status, body) = readyz_answer(port);
    assert_eq!(status, 503, "{body}");
    // A known user's normal turn goes on with the cached entry.
    let (status, body) = during("known", "How was your day?").expect("known user's turn");
    assert_eq!(status, 200, "{body}\n{}", show_log());
    // A known person in crisis: the help lines (without waiting on the pool).
    let (status, body) = during("known-crisis", CRISIS).expect("a crisis reply during the outage");
    assert_eq!(status, 200, "{body}\n{}", show_log());
    assert!(body.contains("988"), "{body}");
    // A new user's normal turn cannot read their record: 500 after the acquire timeout.
    let (status, body) = during("newcomer", "Hello there").expect("an answer");
    assert_eq!(status, 500, "{body}");
    assert!(!proxy.is_up(), "the turns above ran during the outage");
    ten_seconds.join().unwrap();
    proxy.heal();

    // Healed: ready again by itself (held writes retried with a backoff of at most 5 s).
    let mut polls = 0;
    while readyz(port) != Some(200) {
        polls += 1;
        assert!(
            polls < 300,
            "not ready 30 s after the outage\n{}",
            show_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let cases = admin(
        port,
        "/admin/escalations?status=open,claimed,resolved&limit=100",
    );
    for user in ["crisis-new", "known-crisis"] {
        let case = cases["escalations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["user_id"] == user);
        assert!(case.is_some(), "{user} has no case: {cases}");
        let records = admin(port, &format!("/admin/audit?user={user}"));
        assert!(
            records.to_string().contains("intervention"),
            "{user}: {records}"
        );
    }
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(["audit", "verify", "--db", &db])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{out}");
    assert!(out.contains("write outages: 1"), "{out}");
    let _ = child.kill();
    let _ = child.wait();
}

/// `/readyz`'s status and body.
fn readyz_answer(port: u16) -> (u16, String) {
    crate::support::request(port, "GET /readyz HTTP/1.1", "").expect("readyz answers")
}
