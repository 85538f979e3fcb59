//! Integration tests of tutela-store: every trait method against an in-memory and a file
//! SQLite database and PostgreSQL (`support::both`), several instances on one PostgreSQL database, the audit chain's tamper cases, the outbox retry schedule, concurrent appends and
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

/// Users: touch, get, update, contacts, listing, registered counts.
mod users;

/// Session clocks, session rows, daily usage and monthly activity.
mod sessions;

/// Escalation cases and the messages of human takeover.
mod escalations;

/// The notification outbox: claims, leases and the retry schedule.
mod outbox;

/// Interventions and counters for reports.
mod reports;

/// Complaints and appeals with their handling deadline.
mod complaints;

/// Findings, interventions and appeals by detection tier (transparency report).
mod tiers;

/// Obligation records and report statistics (issue: usage accounting and reports).
mod obligations;

/// Data export and deletion (CN Art 16), with the audit chain still verifying.
mod deletion;

/// Faults: failed writes held and retried, a full queue, a failed commit.
mod faults;

/// The report queries use indexes (checked with EXPLAIN QUERY PLAN), so they stay cheap at
/// 1,000,000 users.
mod plans;

/// Staff accounts and console sessions (operator console).
mod staff;

/// Case context kept for the operator console, hand-over and outcomes.
mod cases;

/// An intervening turn's writes in one transaction.
mod effects;

/// Several gateway instances on one PostgreSQL database: one chain, one case per user.
mod instances;
