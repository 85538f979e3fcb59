//! The real model against `tests/golden.jsonl`: texts written for this test (English, Chinese,
//! mixed, emoji, full-width, odd whitespace) with the reference implementation's token ids,
//! the first 16 floats of its embedding and the embedding's norm.
//!
//! Runs when `TUTELA_MODEL_DIR` names an imported model (`tutela model import WHEEL`);
//! otherwise prints a note and passes, unless `TUTELA_REQUIRE_MODEL=1`, when it fails.

use std::path::PathBuf;

use tutela_encoder::{DIM, Encoder, MODEL_NAME};

/// The largest difference allowed in one float of the embedding (ours agree to ~1e-7).
const TOLERANCE: f32 = 5e-4;

#[derive(serde::Deserialize)]
struct Golden {
    text: String,
    ids: Vec<u32>,
    head: Vec<f32>,
    norm: f32,
}

fn model_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("TUTELA_MODEL_DIR")?);
    dir.join("manifest.json").is_file().then_some(dir)
}

#[test]
fn the_real_model_matches_the_reference() {
    let Some(dir) = model_dir() else {
        if std::env::var("TUTELA_REQUIRE_MODEL").as_deref() == Ok("1") {
            panic!("TUTELA_REQUIRE_MODEL=1 but TUTELA_MODEL_DIR names no imported model");
        }
        eprintln!(
            "skipped: set TUTELA_MODEL_DIR to an imported model (`tutela model import WHEEL`) \
             to check it against tests/golden.jsonl"
        );
        return;
    };
    let enc = Encoder::load(&dir).unwrap();
    assert_eq!(enc.info().name, MODEL_NAME);
    assert_eq!((enc.dim(), enc.info().vocab_size), (DIM, 128_000));
    let golden: Vec<Golden> = include_str!("../golden.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(golden.len() >= 30);
    let texts: Vec<&str> = golden.iter().map(|g| g.text.as_str()).collect();
    let batch = enc.embed_batch(&texts);
    for (g, batched) in golden.iter().zip(&batch) {
        assert_eq!(enc.tokenize(&g.text), g.ids, "token ids of {:?}", g.text);
        let v = enc.embed(&g.text);
        assert_eq!(v.len(), DIM);
        for (k, (&ours, &want)) in v.iter().zip(&g.head).enumerate() {
            assert!(
                (ours - want).abs() < TOLERANCE,
                "{:?}: float {k} is {ours}, the reference {want}",
                g.text
            );
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - g.norm).abs() < 1e-4, "{:?}: norm {norm}", g.text);
        let cos: f32 = v.iter().zip(batched).map(|(a, b)| a * b).sum();
        assert!(cos > 0.99999, "{:?}: batched differs ({cos})", g.text);
    }
}
