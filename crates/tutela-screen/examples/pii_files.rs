//! Development helper: throughput of the PII scanner over the `text` fields of JSONL files,
//! in CPU time (from `/proc/thread-self/schedstat`), best of five passes.
//! `cargo run --release -p tutela-screen --example pii_files -- FILE.jsonl...`

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    for file in std::env::args().skip(1) {
        let Ok(data) = std::fs::read_to_string(&file) else {
            eprintln!("{file}: cannot read (plain JSONL only)");
            continue;
        };
        let texts: Vec<String> = data
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["text"].as_str().map(str::to_owned))
            .collect();
        let bytes: usize = texts.iter().map(String::len).sum();
        let mut hits = Vec::new();
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..5 {
            let t0 = cpu_ns();
            n = 0;
            for t in &texts {
                hits.clear();
                tutela_screen::pii::scan_into(t, &mut hits);
                n += hits.len();
            }
            best = best.min((cpu_ns() - t0) as f64 / 1e9);
        }
        println!(
            "{file}: {:.0} MB, {best:.4} s, {:.0} MB/s per core, {n} hits",
            bytes as f64 / 1e6,
            bytes as f64 / best / 1e6
        );
    }
}
