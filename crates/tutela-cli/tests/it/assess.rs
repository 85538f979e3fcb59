//! `tutela assess --upstream <gateway>` is test traffic: run against a real `tutela serve`, it
//! leaves the staff queue, the user counts, MAU, the SB 243 referrals and the assessment
//! figures as they were (compared through `tutela report` before and after), and every report
//! says how many test turns it left out.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const TOKEN: &str = "assess-test-admin-token-0123456789";

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection; returns status and body.
fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nX-Tutela-Jurisdiction: us-ca\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_owned();
    (status, body)
}

fn start(dir: &Path) -> (Serve, u16, PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = dir.join("gw.db");
    let config = dir.join("gw.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase = \"{}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("TUTELA_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serve = Serve(child);
    for _ in 0..600 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/readyz", None).0 == 200
        {
            return (serve, port, db);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("tutela serve did not become ready");
}

/// The reports' figures, without what may change (generation time, the test count).
fn figures(db: &Path) -> Value {
    let d = db.to_str().unwrap();
    let mut out = serde_json::Map::new();
    for kind in ["usage", "assessment", "sb243", "transparency"] {
        let o = Command::new(env!("CARGO_BIN_EXE_tutela"))
            .args([
                "report",
                kind,
                "--from",
                "2000-01-01",
                "--to",
                "2099-12-31",
                "--format",
                "json",
                "--db",
                d,
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut v: Value = serde_json::from_slice(&o.stdout).unwrap();
        for meta in ["/meta", "/usage/meta"] {
            if let Some(m) = v.pointer_mut(meta).and_then(Value::as_object_mut) {
                m.remove("generated_at");
                m.remove("test_turns_excluded");
            }
        }
        out.insert(kind.into(), v);
    }
    Value::Object(out)
}

fn excluded(db: &Path) -> u64 {
    let o = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args([
            "report",
            "usage",
            "--from",
            "2000-01-01",
            "--to",
            "2099-12-31",
            "--format",
            "json",
            "--db",
            db.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["meta"]["test_turns_excluded"].as_u64().unwrap()
}

#[test]
fn an_assessment_through_the_gateway_changes_no_figure() {
    let dir = std::env::temp_dir().join(format!("tutela-cli-assess-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (serve, port, db) = start(&dir);
    // A real person in crisis first, so the figures are not all zero.
    let (status, body) = http(
        port,
        "POST",
        "/v1/chat/completions",
        Some(
            r#"{"model": "tutela-demo", "messages": [{"role": "user", "content": "I want to kill myself tonight."}], "safety_identifier": "person-1"}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("988"), "{body}");
    std::thread::sleep(Duration::from_millis(500));
    let before = figures(&db);
    let queue = http(port, "GET", "/admin/escalations?status=open,claimed", None).1;

    let bank = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../banks/should_refuse.jsonl");
    let items = std::fs::read_to_string(&bank)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let out = dir.join("assessed");
    let o = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args([
            "assess",
            "--bank",
            bank.to_str().unwrap(),
            "--upstream",
            &format!("http://127.0.0.1:{port}/v1"),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
        .env("TUTELA_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_ne!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report.is_object());
    std::thread::sleep(Duration::from_millis(500));

    assert_eq!(
        figures(&db),
        before,
        "an assessment run changed the figures"
    );
    assert_eq!(
        http(port, "GET", "/admin/escalations?status=open,claimed", None).1,
        queue,
        "an assessment run changed the staff queue"
    );
    assert_eq!(excluded(&db), items as u64);
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}
