//! The narrow storage traits. Each backend (SQLite now, PostgreSQL later) implements all of
//! them; callers depend on the one they need. Time is always an argument: no method reads the
//! clock.

use async_trait::async_trait;
use tutela_types::{Counter, LocalDate, SessionState, Timestamp};

use crate::audit::{AuditQuery, ChainLink, NewAuditRecord, StoredAuditRecord};
use crate::error::Result;
use crate::model::{
    Complaint, ComplaintCount, ComplaintStatus, CounterTotal, DailyUsage, DeferredNotice,
    DeletionReport, Direction, Escalation, EscalationMessage, EscalationStatus, Intervention,
    InterventionCount, MonthlyActive, NewComplaint, NewEscalation, NewNotification, Notification,
    Pending, PurgeReport, RetryPolicy, Session, StampedState, Tally, TurnRecord, User, UserExport,
    UserUpdate,
};

/// Users, their settings and contacts, export and deletion.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user, creating the record (first seen `at`) if this is their first turn.
    async fn touch_user(&self, id: &str, at: Timestamp) -> Result<User>;
    /// The user, if known (tombstones of deleted users are not found by their old id).
    async fn get_user(&self, id: &str) -> Result<Option<User>>;
    /// Applies a change, creating the record if needed; returns the new record.
    async fn update_user(&self, id: &str, update: &UserUpdate, at: Timestamp) -> Result<User>;
    /// Users ordered by id, after `after`, at most `limit` (admin listing); tombstones excluded.
    async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<Vec<User>>;
    /// Everything held about the user (CN Art 16 copy); the request is recorded at `at`.
    async fn export_user(&self, id: &str, at: Timestamp) -> Result<Option<UserExport>>;
    /// Deletes the user's personal data (CN Art 16): contacts, session clocks, takeover
    /// messages and notifications are removed; statistics rows keep only the user's pseudonym
    /// (`deleted:<subject hash>`, the same subject as in the audit log); the
    /// user row becomes a tombstone. The audit log is untouched (it holds no content).
    async fn delete_user(&self, id: &str, at: Timestamp) -> Result<DeletionReport>;
    /// Registered users (not deleted) at instant `at`, in total and per jurisdiction of record.
    async fn registered_users(&self, at: Timestamp) -> Result<(u64, Vec<(String, u64)>)>;
    /// The notice the user has not seen in a reply yet, if any (read when the gateway builds
    /// the user's cache entry).
    async fn deferred_notice(&self, id: &str) -> Result<Option<DeferredNotice>>;
    /// Keeps the notice the user has not seen yet (deferred `at`), or clears it (`None`, once
    /// shown). Only turns that defer or show one call it. Not found for an unknown or deleted
    /// user.
    async fn set_deferred_notice(
        &self,
        id: &str,
        notice: Option<&DeferredNotice>,
        at: Timestamp,
    ) -> Result<()>;
}

/// Session clocks and session rows.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The engine's clocks for this user.
    async fn session_state(&self, user_id: &str) -> Result<Option<SessionState>>;
    /// Stores the engine's clocks for this user.
    async fn save_session_state(
        &self,
        user_id: &str,
        state: &SessionState,
        at: Timestamp,
    ) -> Result<()>;
    /// Records one turn in one transaction: the clocks, the session row (opened on its first
    /// turn), the day's usage and the month's activity.
    async fn record_turn(&self, turn: &TurnRecord) -> Result<()>;
    /// Records several turns in one transaction (a writer's batch): far cheaper per turn than
    /// [`SessionStore::record_turn`] each. Turns apply in order.
    async fn record_turns(&self, turns: &[TurnRecord]) -> Result<()>;
    /// Records a writer's batch in one transaction: the turns as [`SessionStore::record_turns`],
    /// then the tallies' intervention rows and counter bumps. All or nothing, so a retried
    /// batch never counts twice.
    async fn record_batch(&self, turns: &[TurnRecord], tallies: &[Tally]) -> Result<()>;
    /// Closes a session.
    async fn end_session(&self, session_id: &str, at: Timestamp, reason: &str) -> Result<()>;
    /// A session row.
    async fn get_session(&self, session_id: &str) -> Result<Option<Session>>;
    /// Durations in seconds of sessions started in `[from, to)` (end, or last turn, minus start).
    async fn session_durations(&self, from: Timestamp, to: Timestamp) -> Result<Vec<i64>>;
    /// The clocks with the stamp and the session id written with them (several gateways on one
    /// database: an instance builds a user's entry from this).
    async fn stamped_state(&self, user_id: &str) -> Result<Option<StampedState>>;
    /// The stamp of the user's clocks row alone: one primary-key read, which an instance
    /// compares with the stamp of its cached entry before a turn.
    async fn state_stamp(&self, user_id: &str) -> Result<Option<String>>;
    /// Sets a new stamp on the user's clocks row (a change every instance's cache must see:
    /// an admin change, a hand-back, a shown or deferred notice). No row, nothing to do.
    async fn restamp(&self, user_id: &str, stamp: &str) -> Result<()>;
    /// What the user's next turn must do, whichever instance takes it.
    async fn pending(&self, user_id: &str) -> Result<Pending>;
    /// Notes a hand-back and/or a suspension's clearance for the user's next turn (each given
    /// one replaces the one noted before) and restamps the clocks row, in one transaction.
    async fn note_pending(
        &self,
        user_id: &str,
        note: &Pending,
        stamp: &str,
        at: Timestamp,
    ) -> Result<()>;
    /// Takes the noted hand-back: the case, to this caller only (an atomic update).
    async fn take_handback(&self, user_id: &str) -> Result<Option<i64>>;
    /// Takes the noted clearance: to this caller only (an atomic update).
    async fn take_clearance(&self, user_id: &str) -> Result<Option<tutela_types::Clearance>>;
}

/// Daily usage and monthly activity.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// A user's usage on one local day, summed over jurisdictions.
    async fn daily_usage_secs(&self, user_id: &str, day: LocalDate) -> Result<u32>;
    /// All users' usage rows for local days in `[from, to]`.
    async fn usage_between(&self, from: LocalDate, to: LocalDate) -> Result<Vec<DailyUsage>>;
    /// Monthly active users in `month` (`yyyymm`, report time zone).
    async fn monthly_active(&self, month: u32) -> Result<MonthlyActive>;
}

/// Interventions for the transparency report.
#[async_trait]
pub trait InterventionStore: Send + Sync {
    /// Records interventions (one per decided action); returns their ids.
    async fn record_interventions(&self, items: &[Intervention]) -> Result<Vec<i64>>;
    /// Interventions in `[from, to)`, newest first, at most `limit`.
    async fn interventions_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<Intervention>>;
    /// Counts in `[from, to)` by jurisdiction, kind and rule (profile + obligation).
    async fn intervention_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<InterventionCount>>;
}

/// Escalation cases and the messages of human takeover.
#[async_trait]
pub trait EscalationStore: Send + Sync {
    /// Opens a case, or returns the user's active case (raising its severity and takeover
    /// flag to the new request's); the flag says whether a new case was created.
    async fn open_escalation(&self, new: &NewEscalation) -> Result<(Escalation, bool)>;
    /// A case.
    async fn get_escalation(&self, id: i64) -> Result<Option<Escalation>>;
    /// The user's open or claimed case, if any.
    async fn active_escalation(&self, user_id: &str) -> Result<Option<Escalation>>;
    /// Cases with one of these statuses, oldest first, at most `limit`.
    async fn list_escalations(
        &self,
        statuses: &[EscalationStatus],
        limit: u32,
    ) -> Result<Vec<Escalation>>;
    /// A human claims an open case (or re-claims one they hold).
    async fn claim_escalation(&self, id: i64, staff: &str, at: Timestamp) -> Result<Escalation>;
    /// Closes a case.
    async fn resolve_escalation(
        &self,
        id: i64,
        staff: &str,
        resolution: Option<&str>,
        at: Timestamp,
    ) -> Result<Escalation>;
    /// Adds a message to an active case.
    async fn add_escalation_message(
        &self,
        escalation_id: i64,
        direction: Direction,
        author: Option<&str>,
        body: &str,
        at: Timestamp,
    ) -> Result<EscalationMessage>;
    /// A case's messages in order.
    async fn escalation_messages(&self, escalation_id: i64) -> Result<Vec<EscalationMessage>>;
    /// Human replies to this user not yet delivered, oldest first.
    async fn undelivered_replies(&self, user_id: &str) -> Result<Vec<EscalationMessage>>;
    /// Marks replies as handed to the user.
    async fn mark_delivered(&self, message_ids: &[i64], at: Timestamp) -> Result<()>;
    /// Number of open and claimed cases (metrics).
    async fn active_escalation_count(&self) -> Result<u64>;
}

/// The notification outbox.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Enqueues a notification, due at once; returns its id.
    async fn enqueue(&self, n: &NewNotification) -> Result<i64>;
    /// Claims up to `limit` due notifications: each claim counts an attempt and leases the row
    /// until `now + policy.lease_secs`, so a second worker does not take it meanwhile.
    async fn claim_due(
        &self,
        now: Timestamp,
        limit: u32,
        policy: &RetryPolicy,
    ) -> Result<Vec<Notification>>;
    /// Delivered.
    async fn mark_sent(&self, id: i64, at: Timestamp) -> Result<()>;
    /// Failed: due again after the policy's backoff, or marked failed after the last attempt.
    /// Returns the new row.
    async fn mark_failed(
        &self,
        id: i64,
        at: Timestamp,
        error: &str,
        policy: &RetryPolicy,
    ) -> Result<Notification>;
    /// A notification.
    async fn get_notification(&self, id: i64) -> Result<Option<Notification>>;
}

/// Counters for reports.
#[async_trait]
pub trait CounterStore: Send + Sync {
    /// Adds `by` to a counter for the day of `at` (in the report time zone) and jurisdiction.
    async fn bump(
        &self,
        counter: Counter,
        jurisdiction: &str,
        at: Timestamp,
        by: u64,
    ) -> Result<()>;
    /// Sums over days `[from, to]` of the report time zone, per counter and jurisdiction
    /// (see [`crate::year_days`] for a calendar year).
    async fn counter_totals(&self, from: LocalDate, to: LocalDate) -> Result<Vec<CounterTotal>>;
}

/// Complaints and appeals, with the published handling deadline.
#[async_trait]
pub trait ComplaintStore: Send + Sync {
    /// Files a complaint; its deadline is `at + handling_limit_secs`.
    async fn file_complaint(&self, new: &NewComplaint) -> Result<Complaint>;
    /// A complaint.
    async fn get_complaint(&self, id: i64) -> Result<Option<Complaint>>;
    /// Complaints with this status (all if `None`), by deadline, at most `limit`.
    async fn list_complaints(
        &self,
        status: Option<ComplaintStatus>,
        limit: u32,
    ) -> Result<Vec<Complaint>>;
    /// Answers a complaint.
    async fn resolve_complaint(&self, id: i64, outcome: &str, at: Timestamp) -> Result<Complaint>;
    /// Complaints received in `[from, to)` by category and outcome; open ones count as
    /// overdue when their deadline is before `now`.
    async fn complaint_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<ComplaintCount>>;
}

/// Retention: content that is no longer needed is removed on a schedule the deployment sets.
#[async_trait]
pub trait Retention: Send + Sync {
    /// Removes content older than `before`: takeover messages of cases resolved before it,
    /// notifications sent or failed before it (they hold contact addresses), and the texts of
    /// complaints resolved before it. Statistics and the audit log are untouched.
    async fn purge_content(&self, before: Timestamp) -> Result<PurgeReport>;
}

/// The append-only, hash-chained audit log. Appends must be serialised by the implementation so
/// the chain never forks; use [`crate::AuditWriter`] rather than calling `append` directly.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends records in one transaction, in order, and returns their links once committed.
    async fn append(&self, records: &[NewAuditRecord]) -> Result<Vec<ChainLink>>;
    /// Rows with seq greater than `after_seq`, in seq order, at most `limit` (for the verifier).
    async fn audit_page(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredAuditRecord>>;
    /// The head row: the last seq and hash as recorded at append time.
    async fn recorded_head(&self) -> Result<Option<ChainLink>>;
    /// Records matching a query, in seq order.
    async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<StoredAuditRecord>>;
}

/// Everything a backend implements.
pub trait Backend:
    UserStore
    + SessionStore
    + UsageStore
    + InterventionStore
    + EscalationStore
    + Outbox
    + CounterStore
    + ComplaintStore
    + Retention
    + crate::obligations::ObligationStore
    + crate::staff::StaffStore
    + crate::cases::CaseStore
    + crate::effects::EffectsStore
    + AuditLog
{
}

impl<T> Backend for T where
    T: UserStore
        + SessionStore
        + UsageStore
        + InterventionStore
        + EscalationStore
        + Outbox
        + CounterStore
        + ComplaintStore
        + Retention
        + crate::obligations::ObligationStore
        + crate::staff::StaffStore
        + crate::cases::CaseStore
        + crate::effects::EffectsStore
        + AuditLog
{
}
