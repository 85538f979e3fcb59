//! Integration tests of the `tutela` binary, run as a newcomer would run it:
//! - `reports`: simulate a month past the CN thresholds (lowered in a copy of the profiles, so
//!   the test stays small), see the warning and the obligation records appear, and check that
//!   the assessment, usage and SB 243 reports show exactly the numbers the simulation produced.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly, with the value that broke it"
)]

mod reports;
mod tiers;
