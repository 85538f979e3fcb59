//! Integration tests of tutela-encoder: `golden` checks the real model (when
//! `TUTELA_MODEL_DIR` points at one) against token ids and embeddings of the reference
//! implementation; `test_model` exercises the public API on the tiny random model.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod golden;
mod test_model;
