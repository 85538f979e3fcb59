//! What the tests of the binary share: running `tutela` in a directory, a scratch directory,
//! and for the tests of `tutela serve` on PostgreSQL: a database of the test's own, the serve
//! processes and their HTTP, and a loopback proxy in front of the server that a test can cut.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `tutela ARGS` in `dir`: exit code, standard output, standard error.
pub fn tutela(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tutela");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An empty directory of this test process, named by `tag`.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tutela-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The admin token the serve processes of these tests are started with.
pub const TOKEN: &str = "instances-test-admin-token-0123456789";

/// A new database on the machine's server (its URL), dropped once this process exits; `None`
/// (with a notice naming `test`) without a server, unless `TUTELA_REQUIRE_PG=1`, which fails.
pub fn database(test: &str) -> Option<String> {
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
    eprintln!("notice: the {test} test is skipped: no PostgreSQL server");
    None
}

/// A URL's `host:port` (5432 when it names no port), and the URL with `host:port` replaced.
pub fn server_address(url: &str, replaced_by: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (format!("{user}@"), host),
        None => (String::new(), authority),
    };
    let address = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    (address, format!("{scheme}://{user}{replaced_by}{path}"))
}

/// One HTTP/1.1 request; `None` when the instance is gone (refused, reset, cut short) or no
/// answer came within `wait`.
pub fn request_within(port: u16, head: &str, body: &str, wait: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
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

/// [`request_within`] 30 s.
pub fn request(port: u16, head: &str, body: &str) -> Option<(u16, String)> {
    request_within(port, head, body, Duration::from_secs(30))
}

/// A chat turn of `user` in `jurisdiction`, answered within `wait`.
pub fn chat_in(
    port: u16,
    jurisdiction: &str,
    user: &str,
    text: &str,
    wait: Duration,
) -> Option<(u16, String)> {
    let body = serde_json::json!({
        "model": "tutela-demo",
        "messages": [{"role": "user", "content": text}],
        "safety_identifier": user,
    })
    .to_string();
    request_within(
        port,
        &format!("POST /v1/chat/completions HTTP/1.1\r\nX-Tutela-Jurisdiction: {jurisdiction}"),
        &body,
        wait,
    )
}

/// A chat turn of `user` in New York.
pub fn chat(port: u16, user: &str, text: &str) -> Option<(u16, String)> {
    chat_in(port, "us-ny", user, text, Duration::from_secs(30))
}

/// `GET path` of the admin API, which must answer 200 with JSON.
pub fn admin(port: u16, path: &str) -> serde_json::Value {
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

/// `/readyz`'s status, `None` when it did not answer.
pub fn readyz(port: u16) -> Option<u16> {
    request(port, "GET /readyz HTTP/1.1", "").map(|(s, _)| s)
}

/// Whether `/readyz` answers 200.
pub fn ready(port: u16) -> bool {
    readyz(port) == Some(200)
}

/// `tutela serve` on `database`, on a free port; its log is dropped.
pub fn serve(database: &str) -> (Child, u16) {
    serve_logging(database, Stdio::null())
}

/// `tutela serve` on `database`, on a free port, its log (warnings and errors) to `log`.
pub fn serve_logging(database: &str, log: impl Into<Stdio>) -> (Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
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
        .stderr(log)
        .spawn()
        .unwrap();
    (child, port)
}

/// Waits until the instance is ready: up to 120 s, in steps of 100 ms (tests read no clock).
pub fn wait_ready(child: &mut Child, port: u16) {
    for step in 0.. {
        if ready(port) {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "serve exited at start");
        assert!(step < 1_200, "not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A loopback TCP proxy in front of a database server: while up it relays every connection
/// byte for byte; [`Proxy::cut`] makes the server unreachable as a restart does (the open
/// connections are cut and its port refuses new ones: the listener is closed) for a while.
/// Its thread lives as long as the test process.
pub struct Proxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    inner: Arc<Mutex<Relays>>,
}

/// The proxy's listener (none while cut) and the connections it relays.
struct Relays {
    listener: Option<TcpListener>,
    open: Vec<TcpStream>,
}

impl Proxy {
    /// A proxy to `server` (`host:port`), up.
    pub fn start(server: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Mutex::new(Relays {
            listener: Some(listener),
            open: Vec::new(),
        }));
        let (server, relays) = (server.to_owned(), inner.clone());
        std::thread::spawn(move || {
            loop {
                // Under the lock, so that a cut either sees this connection or came first.
                let mut r = relays.lock().unwrap();
                let accepted = r.listener.as_ref().map(TcpListener::accept);
                match accepted {
                    Some(Ok((client, _))) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(upstream) = TcpStream::connect(&server) {
                            let _ = client.set_nodelay(true);
                            let _ = upstream.set_nodelay(true);
                            relay(&client, &upstream);
                            relay(&upstream, &client);
                            r.open.extend([client, upstream]);
                        }
                    }
                    _ => {
                        drop(r);
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            }
        });
        Proxy { port, inner }
    }

    /// The server is away: every open connection is cut, and new ones are refused.
    pub fn cut(&self) {
        let mut r = self.inner.lock().unwrap();
        r.listener = None;
        for s in r.open.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Connections relayed again (the end of a [`Proxy::cut`]).
    pub fn heal(&self) {
        heal(&self.inner, self.port);
    }

    /// Whether connections are relayed.
    pub fn is_up(&self) -> bool {
        self.inner.lock().unwrap().listener.is_some()
    }
}

/// Listens on `port` again.
fn heal(relays: &Mutex<Relays>, port: u16) {
    let mut r = relays.lock().unwrap();
    if r.listener.is_none() {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        r.listener = Some(listener);
    }
}

/// Copies what `from` reads to `to` on a thread of its own until either side closes.
fn relay(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
