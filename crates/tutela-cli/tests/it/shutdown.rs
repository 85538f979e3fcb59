//! `tutela serve` when its log cannot be written (standard error on a full disk, here
//! `/dev/full`): it serves, and SIGTERM ends it cleanly (exit 0, every record written, the WAL
//! checkpointed). An earlier soak filled the disk that held the log: every log line then
//! panicked (`eprintln!`, and `tracing-subscriber`'s fallback to it), which stopped the store's
//! writer task and turned SIGTERM into exit 101.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "shutdown-test-admin-token-0123456789";

fn chat(port: u16, user: &str, text: &str, stream: bool) -> (u16, String) {
    let body = serde_json::json!({
        "model": "tutela-demo",
        "messages": [{"role": "user", "content": text}],
        "safety_identifier": user,
        "stream": stream,
    })
    .to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tutela-Jurisdiction: us-ny\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    (out[9..12].parse().unwrap(), out)
}

fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

#[test]
fn serve_with_an_unwritable_log_serves_and_exits_cleanly_on_sigterm() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full here");
        return;
    }
    let dir = std::env::temp_dir().join(format!("tutela-cli-shutdown-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
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
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("TUTELA_ADMIN_TOKEN", TOKEN)
        // Every log line and every start-up message is written, and fails.
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(full)
        .spawn()
        .unwrap();
    // Up to 120 s, in steps of 100 ms (tests read no clock).
    for step in 0.. {
        if ready(port) {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("tutela serve exited at start with {status} while its log could not be written");
        }
        assert!(step < 1_200, "not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 0..5 {
        let (status, body) = chat(
            port,
            &format!("crisis-{i}"),
            "I want to kill myself tonight.",
            i % 2 == 1,
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("988"), "crisis help lines: {body}");
        let (status, body) = chat(port, &format!("normal-{i}"), "Good morning!", i % 2 == 0);
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "tutela serve died while serving"
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut waited = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        waited += 1;
        if waited > 600 {
            let _ = child.kill();
            panic!("tutela serve did not exit within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "SIGTERM: {status}");
    let wal = dir.join("gw.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "the WAL is checkpointed at exit");
    let verify = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(["audit", "verify", "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{out}");
    // Five interventions and five normal turns (at least), every one written before exit.
    let records: u64 = out
        .split_whitespace()
        .skip_while(|w| *w != "verified:")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(records >= 10, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
