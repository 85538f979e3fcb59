//! `tutela-mock-upstream [--listen ADDR] [--latency-ms N] [--chunk-chars N] [--chunk-delay-ms N] [--reply TEXT]`: the mock model as
//! a process, for the load recipe and manual runs.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tutela_mock_upstream::MockConfig;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("tutela-mock-upstream: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 9090));
    let mut config = MockConfig::default();
    let mut threads: usize = 1;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                listen = v.parse().map_err(|_| format!("`{v}` is not an address"))?;
            }
            "--latency-ms" => {
                let v = value()?;
                let ms: u64 = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
                config.latency = Duration::from_millis(ms);
            }
            "--chunk-chars" => {
                let v = value()?;
                config.chunk_chars = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
            }
            "--chunk-delay-ms" => {
                let v = value()?;
                let ms: u64 = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
                config.chunk_delay = Duration::from_millis(ms);
            }
            "--reply" => config.default_reply = value()?,
            "--replies" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read `{path}`: {e}"))?;
                for (n, line) in text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                {
                    let reply: String = serde_json::from_str(line)
                        .map_err(|e| format!("{path}:{}: not a JSON string: {e}", n + 1))?;
                    config.replies.push(reply);
                }
            }
            "--threads" => {
                let v = value()?;
                threads = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
            }
            "-h" | "--help" => {
                println!(
                    "tutela-mock-upstream [--listen 127.0.0.1:9090] [--latency-ms 0] [--chunk-chars 8] [--chunk-delay-ms 0] [--reply TEXT] [--replies FILE] [--threads 1]\n\
                     --replies: a file of JSON strings, one per line; each unscripted message gets one of them\n\
                     (by a hash of the message).\n\
                     Markers in the last user message inject faults: fault:slow, fault:disconnect,\n\
                     fault:malformed, fault:500, fault:503, fault:429, fault:404, fault:400, fault:hang;\n\
                     and shapes: shape:json, shape:tool (a tool call), shape:human, shape:bye, shape:two (n > 1)."
                );
                return Ok(());
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        eprintln!("tutela-mock-upstream listening on http://{listen}/v1");
        tutela_mock_upstream::serve(listener, config)
            .await
            .map_err(|e| format!("serve: {e}"))
    })
}
