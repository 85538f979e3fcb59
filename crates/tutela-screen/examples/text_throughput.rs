//! Development helper: per-core throughput, in CPU time (from `/proc/thread-self/schedstat`),
//! of what screening runs on each document's text: the detectors (`Detectors::scan`,
//! assistant side, as a corpus is read) and the PII scanner, over the `text` fields of plain
//! JSONL files; best of three passes each.
//! `cargo run --release -p tutela-screen --example text_throughput -- FILE.jsonl...`

use tutela_detect::Detectors;
use tutela_types::Side;

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// The best CPU time of three passes of `f` over `texts`, and what the last pass counted.
fn best_of_three(texts: &[String], mut f: impl FnMut(&str) -> usize) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut count = 0;
    for _ in 0..3 {
        let t0 = cpu_ns();
        count = texts.iter().map(|t| f(t)).sum();
        best = best.min((cpu_ns() - t0) as f64 / 1e9);
    }
    (best, count)
}

fn main() {
    let det = Detectors::builtin();
    det.prepare();
    let mut hits = Vec::new();
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
        let mb = texts.iter().map(String::len).sum::<usize>() as f64 / 1e6;
        let (scan_s, findings) =
            best_of_three(&texts, |t| det.scan(Side::Assistant, t, None).len());
        let (pii_s, pii) = best_of_three(&texts, |t| {
            hits.clear();
            tutela_screen::pii::scan_into(t, &mut hits);
            hits.len()
        });
        println!(
            "{file}: {} texts, {mb:.0} MB; detectors {:.0} MB/s per core ({findings} findings); \
             PII {:.0} MB/s per core ({pii} hits)",
            texts.len(),
            mb / scan_s,
            mb / pii_s
        );
    }
}
