//! Integration tests of tutela-store: every trait method against an in-memory and a file
//! database, the audit chain's tamper cases, the outbox retry schedule, concurrent appends and
//! deletion. One binary; one module per concern.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers outside #[test] functions fail the test by panicking too"
)]

/// Opening stores, temporary directories, sample entries.
mod support;

/// The audit log: appends, batching, concurrency, verify and every kind of tampering.
mod audit;
