//! Three `tutela serve` processes on one PostgreSQL database, one killed with SIGKILL while
//! people in crisis and ordinary users talk to all three: the others carry on, the one audit
//! chain verifies (`tutela audit verify --db URL`), and every crisis reply that reached a person
//! has its intervention record and its case in the database. A database of the test's own on
//! the machine's server (dropped by a watcher when the test process ends); skipped without a
//! server unless `TUTELA_REQUIRE_PG=1`.

use std::process::{Child, Command};
use std::time::Duration;

use crate::support::{admin, chat, database, serve, wait_ready};

#[test]
fn one_instance_killed_mid_load_loses_no_acknowledged_intervention() {
    let Some(db) = database("multi-instance serve") else {
        return;
    };
    let mut instances: Vec<(Child, u16)> = (0..3).map(|_| serve(&db)).collect();
    for (child, port) in &mut instances {
        wait_ready(child, *port);
    }
    let ports: Vec<u16> = instances.iter().map(|(_, p)| *p).collect();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Four clients, each a run of people in crisis and ordinary turns over the three
    // instances; the first instance is killed while they run.
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let ports = ports.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut helped = Vec::new();
                for k in 0..30 {
                    let port = ports[(c + k) % 3];
                    let user = format!("crisis-{c}-{k}");
                    if let Some((200, body)) = chat(port, &user, "I want to kill myself tonight.") {
                        assert!(body.contains("988"), "{body}");
                        helped.push(user);
                    }
                    let _ = chat(port, &format!("normal-{c}"), "Good morning!");
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                helped
            })
        })
        .collect();
    // Killed once a sixth of the 120 rounds are done: mid-load.
    while done.load(std::sync::atomic::Ordering::SeqCst) < 20 {
        std::thread::sleep(Duration::from_millis(10));
    }
    instances[0].0.kill().unwrap();
    let _ = instances[0].0.wait();
    let helped: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        (60..120).contains(&helped.len()),
        "the other instances carried on, the killed one refused the rest: {}",
        helped.len()
    );

    // Every person helped has their case, whichever instance helped them.
    let survivor = ports[1];
    let cases = admin(
        survivor,
        "/admin/escalations?status=open,claimed,resolved&limit=1000",
    );
    let with_case: std::collections::HashSet<&str> = cases["escalations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["user_id"].as_str())
        .collect();
    let missing: Vec<&String> = helped
        .iter()
        .filter(|u| !with_case.contains(u.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged crises without a case: {missing:?}"
    );
    // And their intervention record, in the one chain, which verifies.
    for user in helped.iter().step_by(7) {
        let records = admin(survivor, &format!("/admin/audit?user={user}"));
        assert!(
            records.to_string().contains("intervention"),
            "{user}: {records}"
        );
    }
    let verify = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(["audit", "verify", "--db", &db])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{out}");
    for (child, _) in &mut instances[1..] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
