//! Integration tests of tutela-screen: known-answer screening of a planted corpus, the 5 %
//! rule, merge == single run, resumption, malformed lines, review scoring, Wilson values, and
//! assessment against the in-repo mock upstream on 127.0.0.1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions fail loudly"
)]

mod assess;
mod sample;
mod screen;
mod stats;
