//! Development helper: per-core throughput measured in CPU time (from
//! `/proc/thread-self/schedstat`), so a loaded machine does not distort it.
//! `cargo run --release -p tutela-detect --example cpu_throughput`

use tutela_detect::Detectors;
use tutela_types::Side;

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[path = "../benches/common/chat_corpus.rs"]
mod chat_corpus;
use chat_corpus::MESSAGES;

fn main() {
    let det = Detectors::builtin();
    // Build the quick-pass automata outside the timed loops (a server does this at startup).
    det.prepare();
    let mut text = String::new();
    let mut i = 0;
    while text.len() < (4 << 20) {
        text.push_str(MESSAGES[i % MESSAGES.len()]);
        text.push('\n');
        i += 1;
    }
    let t0 = cpu_ns();
    let n = det.scan(Side::User, &text, None).len();
    let t1 = cpu_ns();
    let mbps = text.len() as f64 / ((t1 - t0) as f64 / 1e9) / 1e6;
    println!(
        "user side: {:.1} MB/s per core (CPU time), {} findings over {} bytes",
        mbps,
        n,
        text.len()
    );
    let msg: String = "hey, long day again. 今天加班到很晚，老板还在群里催进度，烦死了。I just want to sleep for a week honestly, but I'll be fine tomorrow. 你今天过得怎么样？"
        .chars().cycle().take(200).collect();
    let reps = 20_000;
    let t0 = cpu_ns();
    for _ in 0..reps {
        std::hint::black_box(det.scan(Side::User, std::hint::black_box(&msg), None));
    }
    let t1 = cpu_ns();
    println!(
        "user side, 200-char message: {:.2} µs (CPU time)",
        (t1 - t0) as f64 / reps as f64 / 1e3
    );
    let reply: String = "That sounds like a really long day. 听起来你今天真的很累。Maybe take a warm shower and get some rest, and tomorrow we can plan the week together. 晚安，好好休息！"
        .chars().cycle().take(200).collect();
    let t0 = cpu_ns();
    for _ in 0..reps {
        std::hint::black_box(det.scan(
            Side::Assistant,
            std::hint::black_box(&reply),
            Some("ugh, long day"),
        ));
    }
    let t1 = cpu_ns();
    println!(
        "assistant side, 200-char reply: {:.2} µs (CPU time)",
        (t1 - t0) as f64 / reps as f64 / 1e3
    );
}
