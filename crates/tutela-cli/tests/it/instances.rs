//! Three `tutela serve` processes on one PostgreSQL database, one killed with SIGKILL while
//! people in crisis and ordinary users talk to all three: the others carry on, the one audit
//! chain verifies (`tutela audit verify --db URL`), and every crisis reply that reached a person
//! has its intervention record and its case in the database. A database of the test's own on
//! the machine's server (dropped by a watcher when the test process ends); skipped without a
//! server unless `TUTELA_REQUIRE_PG=1`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "instances-test-admin-token-0123456789";

/// A new database on the machine's server (its URL), dropped once this process exits.
fn database() -> Option<String> {
    let nanos = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let name = format!("tutela_cli_{}_{nanos}", std::process::id());
    let servers = match std::env::var("TUTELA_TEST_PG") {
        Ok(url) => vec![url],
        Err(_) => vec![
            "postgres://postgres@127.0.0.1:5432/test".to_owned(),
            "postgres://root@127.0.0.1:5432/test".to_owned(),
        ],
    };
    for server in servers {
        let made = Command::new("psql")
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
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let (base, _) = server.rsplit_once('/').unwrap();
        return Some(format!("{base}/{name}"));
    }
    assert!(
        !std::env::var("TUTELA_REQUIRE_PG").is_ok_and(|v| v == "1"),
        "TUTELA_REQUIRE_PG=1 but no PostgreSQL server answered"
    );
    eprintln!("notice: the multi-instance serve test is skipped: no PostgreSQL server");
    None
}

/// One HTTP/1.1 request; `None` when the instance is gone (refused, reset, cut short).
fn request(port: u16, head: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "{head}\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.get(9..12)?.parse().ok()?;
    Some((status, out))
}

fn chat(port: u16, user: &str, text: &str) -> Option<(u16, String)> {
    let body = serde_json::json!({
        "model": "tutela-demo",
        "messages": [{"role": "user", "content": text}],
        "safety_identifier": user,
    })
    .to_string();
    request(
        port,
        "POST /v1/chat/completions HTTP/1.1\r\nX-Tutela-Jurisdiction: us-ny",
        &body,
    )
}

fn admin(port: u16, path: &str) -> serde_json::Value {
    let (status, out) = request(
        port,
        &format!("GET {path} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"),
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{out}");
    let body = out.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap()
}

fn ready(port: u16) -> bool {
    request(port, "GET /readyz HTTP/1.1", "").is_some_and(|(s, _)| s == 200)
}

fn serve(database: &str) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database", database])
        .env("TUTELA_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

#[test]
fn one_instance_killed_mid_load_loses_no_acknowledged_intervention() {
    let Some(db) = database() else {
        return;
    };
    let mut instances: Vec<(Child, u16)> = (0..3).map(|_| serve(&db)).collect();
    // Up to 120 s each, in steps of 100 ms (tests read no clock).
    for (child, port) in &mut instances {
        for step in 0.. {
            if ready(*port) {
                break;
            }
            assert!(child.try_wait().unwrap().is_none(), "serve exited at start");
            assert!(step < 1_200, "not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
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
