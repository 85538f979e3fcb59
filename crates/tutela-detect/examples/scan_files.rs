//! Development helper: throughput of `Detectors::scan` (assistant side, as screening reads a
//! corpus) over the `text` fields of JSONL files, in CPU time (from
//! `/proc/thread-self/schedstat`), best of three passes.
//! `cargo run --release -p tutela-detect --example scan_files -- FILE.jsonl...`

use tutela_detect::Detectors;
use tutela_types::Side;

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let det = Detectors::builtin();
    det.prepare();
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
        let mut best = f64::MAX;
        let mut findings = 0;
        for _ in 0..3 {
            let t0 = cpu_ns();
            findings = texts
                .iter()
                .map(|t| det.scan(Side::Assistant, t, None).len())
                .sum::<usize>();
            best = best.min((cpu_ns() - t0) as f64 / 1e9);
        }
        println!(
            "{file}: {} texts, {:.0} MB, {best:.3} s, {:.0} MB/s per core, {findings} findings",
            texts.len(),
            bytes as f64 / 1e6,
            bytes as f64 / best / 1e6
        );
    }
}
