//! Integration tests of the operator console: the console's router beside the gateway's, over
//! `oneshot` (no socket), with the real detectors and an in-memory store.
//!
//! Modules: `support` (a console with a settable clock, staff accounts, signing in, requests),
//! `auth` (sign-in, rate limits, cookies, form tokens, idle expiry, sign-out), `roles` (every
//! guarded route against every role), `cases` (crisis messages in English and Chinese reach the
//! queue with their severity, live; the case view; claim, reply, hand over, resolve).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers outside #[test] functions fail the test by panicking too"
)]

mod auth;
mod cases;
mod compliance;
mod roles;
mod support;
