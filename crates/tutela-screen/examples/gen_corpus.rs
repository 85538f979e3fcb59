//! Writes the synthetic screening corpus (see `tutela_screen::corpus`):
//! `cargo run --release -p tutela-screen --example gen_corpus -- OUT_DIR [SIZE_MB] [SEED]`.
//! The corpus goes to `OUT_DIR/corpus/`, the plan to `OUT_DIR/plan.jsonl` and
//! `OUT_DIR/plan-summary.json`, the matching rule pack to `OUT_DIR/rules.toml`.

use std::path::PathBuf;

use tutela_screen::corpus::{GenConfig, default_sources, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(out) = args.get(1) else {
        return Err("usage: gen_corpus OUT_DIR [SIZE_MB] [SEED]".into());
    };
    let mb: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let seed: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(42);
    let cfg = GenConfig {
        out: PathBuf::from(out),
        bytes: mb << 20,
        seed,
        file_bytes: 64 << 20,
        malformed_every: 100_000,
        sources: default_sources(),
    };
    let s = generate(&cfg)?;
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(())
}
