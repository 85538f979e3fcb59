//! Integration tests of the duties engine, one binary:
//! - `golden`: the data-driven cases in `profiles/<id>/cases/*.toml`;
//! - `props`: property tests for the clocks and for composition;
//! - `shipped`: every shipped profile parses, and the CLI-facing registry behaves.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly, with the value that broke it"
)]

mod golden;
mod props;
mod shipped;
mod support;
