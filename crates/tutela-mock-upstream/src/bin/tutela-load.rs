//! `tutela-load --url URL --bodies FILE --rate N --secs S`: an open-loop load generator for
//! the load recipes that sends *varied* requests (oha sends one body): each request's body is
//! the next line of a JSONL file, at a fixed rate. Latency is measured from the moment a
//! request was due, not from when it was sent (a slow server cannot hide its queue by slowing
//! the generator down). Prints one JSON object: requests sent, achieved rate, latency
//! percentiles in milliseconds, statuses, and requests never sent because `--max-in-flight`
//! were waiting. With `--class NAME=TEXT`, the requests whose body contains TEXT also get
//! their own percentiles under `classes.NAME` (and the rest under `classes.other`), so a
//! recipe can tell, say, crisis turns (durable before they answer) from the others.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

struct Args {
    url: String,
    bodies: Vec<String>,
    rate: f64,
    secs: f64,
    headers: Vec<(String, String)>,
    max_in_flight: usize,
    classes: Vec<(String, String)>,
}

fn parse() -> Result<Args, String> {
    let mut url = None;
    let mut bodies_path = None;
    let (mut rate, mut secs, mut max_in_flight) = (100.0, 10.0, 4096usize);
    let mut headers = Vec::new();
    let mut classes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--bodies" => bodies_path = Some(value()?),
            "--rate" => rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--secs" => secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--max-in-flight" => {
                max_in_flight = value()?
                    .parse()
                    .map_err(|e| format!("--max-in-flight: {e}"))?;
            }
            "--header" => {
                let v = value()?;
                let (k, val) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--header `{v}`: want NAME:VALUE"))?;
                headers.push((k.trim().to_owned(), val.trim().to_owned()));
            }
            "--class" => {
                let v = value()?;
                let (k, text) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--class `{v}`: want NAME=TEXT"))?;
                classes.push((k.trim().to_owned(), text.to_owned()));
            }
            "-h" | "--help" => {
                println!(
                    "tutela-load --url URL --bodies FILE.jsonl [--rate 100] [--secs 10] [--header NAME:VALUE]... [--class NAME=TEXT]... [--max-in-flight 4096]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let path = bodies_path.ok_or("--bodies is required")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let bodies: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    if bodies.is_empty() {
        return Err(format!("`{path}` has no request bodies"));
    }
    if !(rate > 0.0 && secs > 0.0) {
        return Err("--rate and --secs must be positive".into());
    }
    Ok(Args {
        url: url.ok_or("--url is required")?,
        bodies,
        rate,
        secs,
        headers,
        max_in_flight,
        classes,
    })
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    statuses: BTreeMap<String, u64>,
    /// Latencies per `--class` (and `other`).
    by_class: BTreeMap<String, Vec<u64>>,
}

/// The `q` quantile (ms) of sorted microseconds.
fn pct(v: &[u64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64 / 1000.0
}

/// Latency percentiles (ms) of sorted microseconds.
fn percentiles(v: &[u64]) -> serde_json::Value {
    let pct = |q: f64| pct(v, q);
    serde_json::json!({
        "requests": v.len(),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": pct(1.0),
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tutela-load: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tutela-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let client = match reqwest::Client::builder()
        .pool_max_idle_per_host(args.max_in_flight)
        .timeout(Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tutela-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tally = Arc::new(Mutex::new(Tally::default()));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(args.max_in_flight));
    let bodies = Arc::new(args.bodies);
    let headers = Arc::new(args.headers);
    let url = Arc::new(args.url);
    let classes = Arc::new(args.classes);
    let total = (args.rate * args.secs).round() as u64;
    #[expect(
        clippy::disallowed_methods,
        reason = "a load generator measures wall time; it is not the core"
    )]
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut sent, mut skipped) = (0u64, 0u64);
    let mut tasks = tokio::task::JoinSet::new();
    while sent + skipped < total {
        tick.tick().await;
        let elapsed = start.elapsed().as_secs_f64();
        let due_now = ((elapsed * args.rate).floor() as u64).min(total);
        while sent + skipped < due_now {
            let n = sent + skipped;
            let due = start + Duration::from_secs_f64(n as f64 / args.rate);
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                skipped += 1;
                continue;
            };
            sent += 1;
            let body = bodies[(n % bodies.len() as u64) as usize].clone();
            let class = (!classes.is_empty()).then(|| {
                classes
                    .iter()
                    .find(|(_, text)| body.contains(text.as_str()))
                    .map_or_else(|| "other".to_owned(), |(name, _)| name.clone())
            });
            let (client, tally, headers, url) =
                (client.clone(), tally.clone(), headers.clone(), url.clone());
            tasks.spawn(async move {
                let mut req = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .body(body);
                for (k, v) in headers.iter() {
                    req = req.header(k, v);
                }
                let status = match req.send().await {
                    Ok(resp) => {
                        let code = resp.status().as_u16().to_string();
                        // Read the whole answer: the request is done when its body is.
                        match resp.bytes().await {
                            Ok(_) => code,
                            Err(_) => "body_error".to_owned(),
                        }
                    }
                    Err(e) if e.is_timeout() => "timeout".to_owned(),
                    Err(_) => "connect_error".to_owned(),
                };
                let us = due.elapsed().as_micros() as u64;
                drop(permit);
                let mut t = tally.lock().await;
                t.latencies_us.push(us);
                if let Some(c) = class {
                    t.by_class.entry(c).or_default().push(us);
                }
                *t.statuses.entry(status).or_default() += 1;
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let wall = start.elapsed().as_secs_f64();
    let mut t = tally.lock().await;
    t.latencies_us.sort_unstable();
    let all = std::mem::take(&mut t.latencies_us);
    let pct = |q: f64| pct(&all, q);
    let out = serde_json::json!({
        "requests": sent,
        "not_sent_in_flight_cap": skipped,
        "rate_asked": args.rate,
        "rate_achieved": (all.len() as f64 / wall * 10.0).round() / 10.0,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": pct(1.0),
        "statuses": t.statuses,
        "classes": t.by_class.iter_mut().map(|(k, v)| {
            v.sort_unstable();
            (k.clone(), percentiles(v))
        }).collect::<serde_json::Map<_, _>>(),
    });
    println!("{out}");
    ExitCode::SUCCESS
}
