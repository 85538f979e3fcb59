//! The public API on the tiny random model that `write_test_model` writes: loading, shapes,
//! determinism, errors that name the file.

use std::path::PathBuf;

use tutela_encoder::{Encoder, EncoderError, write_test_model};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tutela-encoder-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_test_model_embeds_deterministically() {
    let dir = temp_dir("deterministic");
    write_test_model(&dir, 42).unwrap();
    let a = Encoder::load(&dir).unwrap();
    let b = Encoder::load(&dir).unwrap();
    let info = a.info();
    assert_eq!((info.dim, a.dim()), (16, 16));
    assert!(info.vocab_size > 200 && info.weights_bytes > 0, "{info:?}");
    let texts = ["I feel like talking", "我想你了 🙂", "bye", ""];
    let ea = a.embed_batch(&texts);
    let eb = b.embed_batch(&texts);
    assert_eq!(ea, eb);
    assert_eq!(ea.len(), 4);
    assert!(ea.iter().all(|v| v.len() == 16));
    assert_ne!(ea[0], ea[1]);
    assert_eq!(a.tokenize("bye").first(), Some(&1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_model_names_its_manifest() {
    let dir = temp_dir("missing");
    let err = Encoder::load(&dir).unwrap_err();
    assert!(matches!(err, EncoderError::Io { .. }));
    assert!(err.to_string().contains("manifest.json"), "{err}");
}
