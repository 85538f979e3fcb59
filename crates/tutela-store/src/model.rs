//! Domain types the store hands out and takes in. They are separate from the `Stored*` rows of
//! each backend (see `sqlite/rows.rs`), which convert to and from them explicitly.

use serde::{Deserialize, Serialize};
use tutela_types::{
    AgeAssurance, AgeState, ContactKind, Contacts, LocalDate, MinorsSettings, Reason, Severity,
    UserState,
};
use tutela_types::{SessionState, Timestamp};

/// An end user of the operator's service, as the store knows them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct User {
    /// The operator's user id (after deletion: the pseudonym `deleted:<hash>`).
    pub id: String,
    /// The first turn tutela saw from this user.
    pub first_seen: Timestamp,
    /// When the operator registered the user through the admin API, if ever.
    pub registered_at: Option<Timestamp>,
    /// Age knowledge.
    pub age_state: AgeState,
    /// Age in years, where known.
    pub age: Option<u8>,
    /// How the age was established (self-declared, estimated, a document, NIST IAL2).
    pub age_assurance: AgeAssurance,
    /// The user is elderly (CN Art 15).
    pub elderly: bool,
    /// A guardian consented (CN Art 14).
    pub guardian_consent: bool,
    /// The user's jurisdiction of record (`cn`, `us-ca`, ...), used when a request names none.
    pub jurisdiction: Option<String>,
    /// The user's UTC offset in minutes, for local days and quiet hours.
    pub utc_offset_minutes: i32,
    /// Minors' settings made by a guardian or the operator.
    pub minors: MinorsSettings,
    /// Guardian and emergency contacts.
    pub contacts: Vec<ContactAddress>,
    /// Last change to the record.
    pub updated_at: Timestamp,
    /// Set once the user's data was deleted (the record is then a tombstone).
    pub deleted_at: Option<Timestamp>,
}

impl User {
    /// A fresh record for a user first seen at `at`.
    pub fn new(id: impl Into<String>, at: Timestamp) -> Self {
        Self {
            id: id.into(),
            first_seen: at,
            registered_at: None,
            age_state: AgeState::Unknown,
            age: None,
            age_assurance: AgeAssurance::None,
            elderly: false,
            guardian_consent: false,
            jurisdiction: None,
            utc_offset_minutes: 0,
            minors: MinorsSettings::default(),
            contacts: Vec::new(),
            updated_at: at,
            deleted_at: None,
        }
    }

    /// The engine's view of this user.
    pub fn state(&self) -> UserState {
        UserState {
            age_state: self.age_state,
            age: self.age,
            age_assurance: self.age_assurance,
            elderly: self.elderly,
            guardian_consent: self.guardian_consent,
            contacts: Contacts {
                guardian: self
                    .contacts
                    .iter()
                    .any(|c| c.kind == ContactKind::Guardian),
                emergency: self
                    .contacts
                    .iter()
                    .any(|c| c.kind == ContactKind::EmergencyContact),
            },
            utc_offset_minutes: self.utc_offset_minutes,
            minors: self.minors.clone(),
        }
    }

    /// The contacts of one kind.
    pub fn contacts_of(&self, kind: ContactKind) -> impl Iterator<Item = &ContactAddress> {
        self.contacts.iter().filter(move |c| c.kind == kind)
    }
}

/// Where to reach a guardian or emergency contact.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactAddress {
    /// Guardian or emergency contact.
    pub kind: ContactKind,
    /// How to reach them: `webhook`, `email`, `sms`, ... (the delivery worker decides which it
    /// supports).
    pub channel: String,
    /// The address on that channel: a URL, an e-mail address, a phone number.
    pub address: String,
}

/// A partial change to a user record; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserUpdate {
    /// Mark as registered at this instant (kept if already registered).
    pub registered_at: Option<Timestamp>,
    /// New age state.
    pub age_state: Option<AgeState>,
    /// New age (`Some(None)` clears it).
    #[serde(with = "double_option")]
    pub age: Option<Option<u8>>,
    /// How the age was established.
    pub age_assurance: Option<AgeAssurance>,
    /// Elderly flag.
    pub elderly: Option<bool>,
    /// Guardian consent.
    pub guardian_consent: Option<bool>,
    /// Jurisdiction of record (`Some(None)` clears it).
    #[serde(with = "double_option")]
    pub jurisdiction: Option<Option<String>>,
    /// UTC offset in minutes.
    pub utc_offset_minutes: Option<i32>,
    /// Minors' settings (replaces them whole).
    pub minors: Option<MinorsSettings>,
    /// Contacts (replaces them all).
    pub contacts: Option<Vec<ContactAddress>>,
}

/// Serde helper: a JSON `null` is `Some(None)`, a missing field is `None`.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// One conversation session, for the duration distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Session {
    /// The session id (chosen by the gateway).
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// Jurisdiction of use.
    pub jurisdiction: Option<String>,
    /// First turn.
    pub started_at: Timestamp,
    /// Latest turn.
    pub last_seen_at: Timestamp,
    /// Number of turns recorded.
    pub turns: u32,
    /// When it ended, if it did explicitly.
    pub ended_at: Option<Timestamp>,
    /// Why it ended (`exit`, `budget`, `quiet_hours`, `idle`, ...).
    pub end_reason: Option<String>,
}

/// Everything one user turn changes outside the audit log, written in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnRecord {
    /// Whose turn.
    pub user_id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// Jurisdiction of use (`cn`, `us-ca`, ...).
    pub jurisdiction: String,
    /// When.
    pub at: Timestamp,
    /// The advanced session clocks from the engine's decision.
    pub state: SessionState,
    /// The user's local day (from the user's UTC offset).
    pub local_day: LocalDate,
    /// Seconds of use to add to that day (0 is fine: the turn still counts as activity).
    pub usage_secs: u32,
    /// The stamp written with the clocks (gateways on PostgreSQL: a fresh one per turn, which
    /// other instances compare with their cached entry's); `None` on one gateway.
    pub stamp: Option<String>,
}

/// A user's clocks as several instances read them: with the stamp of the turn that wrote them
/// and its session id.
#[derive(Clone, Debug, PartialEq)]
pub struct StampedState {
    /// The clocks.
    pub state: SessionState,
    /// The stamp written with them (`None`: written by a single gateway, or before stamps).
    pub stamp: Option<String>,
    /// The session they belong to.
    pub session_id: Option<String>,
}

/// What a user's next turn must do, whichever instance takes it (see `SessionStore::pending`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// A case staff handed back to the AI: the next reply says so first.
    pub handback: Option<i64>,
    /// A suspension's clearance not yet passed to the engine.
    pub clearance: Option<tutela_types::Clearance>,
}

/// The statistics rows of one decision that changes nothing anyone reads back at once (a
/// notice, a label, a replaced reply): its intervention rows and counter bumps. The writer
/// commits them in batches with the turns' clocks; the decision's audit record, written before
/// the reply left, is the evidence, and these rows are the report's counts of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Intervention rows (ids are assigned on insert).
    pub interventions: Vec<Intervention>,
    /// Counter bumps.
    pub counts: Vec<CounterBump>,
}

impl Tally {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.interventions.is_empty() && self.counts.is_empty()
    }
}

/// One bump of a daily counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterBump {
    /// Which counter.
    pub counter: tutela_types::Counter,
    /// Jurisdiction of use.
    pub jurisdiction: String,
    /// When (the day is taken in the report time zone).
    pub at: Timestamp,
    /// By how much.
    pub by: u64,
}

/// One user's usage on one local day in one jurisdiction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DailyUsage {
    /// Whose.
    pub user_id: String,
    /// Local day.
    pub day: LocalDate,
    /// Jurisdiction of use.
    pub jurisdiction: String,
    /// Seconds of use.
    pub seconds: u32,
    /// Turns.
    pub turns: u32,
}

/// Monthly active users in one month, per jurisdiction and in total.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MonthlyActive {
    /// The month as `yyyymm` in the report time zone.
    pub month: u32,
    /// Distinct users active in any jurisdiction.
    pub total: u64,
    /// Distinct users per jurisdiction, sorted by jurisdiction.
    pub by_jurisdiction: Vec<(String, u64)>,
}

/// One action the engine decided (beyond labels and counters), as recorded for the
/// transparency report. No chat text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Intervention {
    /// Store-assigned id (0 before insertion).
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Whose turn (`None` after deletion or for anonymous use).
    pub user_id: Option<String>,
    /// The session.
    pub session_id: Option<String>,
    /// Jurisdiction of use.
    pub jurisdiction: String,
    /// The detector whose finding triggered it, if one did.
    pub detector: Option<String>,
    /// The side whose text triggered it.
    pub side: Option<tutela_types::Side>,
    /// What was done.
    pub action: tutela_types::Action,
    /// Why.
    pub reasons: Vec<Reason>,
    /// The audit record that carries the full decision.
    pub audit_seq: Option<i64>,
}

/// Count of interventions grouped for the transparency report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterventionCount {
    /// Jurisdiction of use.
    pub jurisdiction: String,
    /// Action kind (`notice`, `replace_reply`, ...).
    pub kind: String,
    /// Profile id of the reason.
    pub profile: String,
    /// Obligation id of the reason.
    pub obligation: String,
    /// How many.
    pub count: u64,
}

/// Status of an escalation case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationStatus {
    /// Waiting for a human.
    Open,
    /// A human has it.
    Claimed,
    /// Closed.
    Resolved,
}

impl EscalationStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationStatus::Open => "open",
            EscalationStatus::Claimed => "claimed",
            EscalationStatus::Resolved => "resolved",
        }
    }

    /// Open or claimed.
    pub fn is_active(self) -> bool {
        !matches!(self, EscalationStatus::Resolved)
    }
}

/// A request to open an escalation case.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEscalation {
    /// Whose.
    pub user_id: String,
    /// Which session.
    pub session_id: Option<String>,
    /// Jurisdiction of use.
    pub jurisdiction: Option<String>,
    /// Priority.
    pub severity: Severity,
    /// The human takes over the conversation while the case is active.
    pub takeover: bool,
    /// The detector that triggered it.
    pub detector: Option<String>,
    /// The reasons of the `escalate` action.
    pub reasons: Vec<Reason>,
    /// When.
    pub at: Timestamp,
}

/// A case for a human.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Escalation {
    /// Store-assigned id.
    pub id: i64,
    /// Whose.
    pub user_id: String,
    /// Which session.
    pub session_id: Option<String>,
    /// Jurisdiction of use.
    pub jurisdiction: Option<String>,
    /// Where it stands.
    pub status: EscalationStatus,
    /// Priority.
    pub severity: Severity,
    /// The human takes over the conversation while the case is active.
    pub takeover: bool,
    /// The detector that triggered it.
    pub detector: Option<String>,
    /// The reasons of the `escalate` action.
    pub reasons: Vec<Reason>,
    /// The staff member who claimed it.
    pub claimed_by: Option<String>,
    /// A short resolution note (no chat text expected).
    pub resolution: Option<String>,
    /// Opened.
    pub created_at: Timestamp,
    /// Claimed.
    pub claimed_at: Option<Timestamp>,
    /// Resolved.
    pub resolved_at: Option<Timestamp>,
}

/// Who wrote a message in a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The user, during takeover.
    FromUser,
    /// The human, to be delivered to the user as the assistant's reply.
    ToUser,
}

impl Direction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::FromUser => "from_user",
            Direction::ToUser => "to_user",
        }
    }
}

/// A message in a case. Content: personal data, removed by user deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EscalationMessage {
    /// Store-assigned id, increasing.
    pub id: i64,
    /// The case.
    pub escalation_id: i64,
    /// Who wrote it.
    pub direction: Direction,
    /// The staff member, for replies.
    pub author: Option<String>,
    /// The text.
    pub body: String,
    /// When it was written.
    pub at: Timestamp,
    /// When the gateway handed a reply to the user.
    pub delivered_at: Option<Timestamp>,
}

/// Delivery status of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// Delivered.
    Sent,
    /// Given up after the last attempt.
    Failed,
}

impl OutboxStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
        }
    }
}

/// A notification to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotification {
    /// About whom (for deletion); `None` if not user-specific.
    pub user_id: Option<String>,
    /// The case that caused it.
    pub escalation_id: Option<i64>,
    /// Whom.
    pub contact: ContactAddress,
    /// What to send (the delivery worker's format), without chat text.
    pub payload: serde_json::Value,
    /// When; the first attempt is due at once.
    pub at: Timestamp,
}

/// A notification in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Notification {
    /// Store-assigned id.
    pub id: i64,
    /// Enqueued.
    pub created_at: Timestamp,
    /// About whom.
    pub user_id: Option<String>,
    /// The case that caused it.
    pub escalation_id: Option<i64>,
    /// Whom.
    pub contact: ContactAddress,
    /// What to send.
    pub payload: serde_json::Value,
    /// Where it stands.
    pub status: OutboxStatus,
    /// Attempts started so far (claims).
    pub attempts: u32,
    /// When the next attempt is due (for a claimed row: when its lease runs out).
    pub next_attempt_at: Timestamp,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// Delivered.
    pub sent_at: Option<Timestamp>,
}

/// When to try a failed notification again: exponential backoff, capped, with a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure, in seconds.
    pub base_secs: i64,
    /// Longest delay, in seconds.
    pub max_secs: i64,
    /// After this many failed attempts the notification is marked failed.
    pub max_attempts: u32,
    /// How long a claim lasts before an unacknowledged row is due again, in seconds.
    pub lease_secs: i64,
}

impl Default for RetryPolicy {
    /// 30 s, 1 min, 2 min, 4 min, ... capped at 1 h; 10 attempts (about 3 h in all); a
    /// delivery worker that dies mid-attempt releases its claim after 2 min.
    fn default() -> Self {
        Self {
            base_secs: 30,
            max_secs: 3600,
            max_attempts: 10,
            lease_secs: 120,
        }
    }
}

impl RetryPolicy {
    /// The delay after the `attempt`-th failed attempt (1-based): `base * 2^(attempt-1)`,
    /// capped at `max`.
    pub fn delay_after(&self, attempt: u32) -> i64 {
        let shift = attempt.saturating_sub(1).min(40);
        self.base_secs
            .saturating_mul(1_i64 << shift)
            .min(self.max_secs)
    }
}

/// Counters never carry personal data: a name, a jurisdiction and a day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CounterTotal {
    /// The counter (`crisis_referral`, ...).
    pub name: String,
    /// Jurisdiction of use.
    pub jurisdiction: String,
    /// Sum over the period.
    pub value: u64,
}

/// A notice the person has not seen in a reply yet: its turn's reply was for the app
/// (structured output, a tool call), so it was delivered in `tutela.notices` and the
/// `X-Tutela-Notices` header only, and its text goes before the person's next plain-text reply.
/// A rendered template of the law, never chat content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeferredNotice {
    /// The rendered notice text.
    pub text: String,
    /// Its `tutela.notices` entries (marked `deferred`).
    pub notices: Vec<serde_json::Value>,
}

/// Everything the store holds about one user, for a data-export request (CN Art 16).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserExport {
    /// The user record with contacts.
    pub user: User,
    /// The session clocks.
    pub session_state: Option<SessionState>,
    /// Sessions.
    pub sessions: Vec<Session>,
    /// Daily usage.
    pub usage: Vec<DailyUsage>,
    /// Interventions.
    pub interventions: Vec<Intervention>,
    /// Escalation cases.
    pub escalations: Vec<Escalation>,
    /// Messages exchanged with humans in those cases.
    pub messages: Vec<EscalationMessage>,
    /// Complaints and appeals.
    pub complaints: Vec<Complaint>,
    /// The notice the person has not seen in a reply yet, if any.
    pub deferred_notice: Option<DeferredNotice>,
    /// When that notice was stored (the turn that deferred it).
    pub deferred_notice_at: Option<Timestamp>,
}

/// What a deletion removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeletionReport {
    /// The pseudonym that replaces the user id in statistics (sessions, usage, interventions,
    /// escalations) and the audit log.
    pub pseudonym: String,
    /// Contacts removed.
    pub contacts: u64,
    /// Takeover messages and turns kept with cases removed (both directions).
    pub messages: u64,
    /// Pending or past notifications removed (they held contact addresses).
    pub notifications: u64,
    /// Complaint texts removed (the complaints stay, for the statistics).
    pub complaint_texts: u64,
}

/// Where a complaint stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintStatus {
    /// Waiting for an answer.
    Open,
    /// Answered.
    Resolved,
}

impl ComplaintStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ComplaintStatus::Open => "open",
            ComplaintStatus::Resolved => "resolved",
        }
    }
}

/// A complaint or appeal to file.
#[derive(Clone, Debug, PartialEq)]
pub struct NewComplaint {
    /// From whom, if known.
    pub user_id: Option<String>,
    /// `appeal`, `content`, `privacy`, `minors`, `other`, ... (the operator's categories).
    pub category: String,
    /// For an appeal: the intervention appealed against.
    pub intervention_id: Option<i64>,
    /// What the user wrote (content: deleted with the user's data).
    pub body: Option<String>,
    /// When it was received.
    pub at: Timestamp,
    /// The published handling time limit, in seconds; sets `due_at`.
    pub handling_limit_secs: i64,
}

/// A complaint or appeal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Complaint {
    /// Store-assigned id.
    pub id: i64,
    /// From whom.
    pub user_id: Option<String>,
    /// Category.
    pub category: String,
    /// For an appeal: the intervention appealed against.
    pub intervention_id: Option<i64>,
    /// What the user wrote.
    pub body: Option<String>,
    /// Where it stands.
    pub status: ComplaintStatus,
    /// How it ended (`upheld`, `overturned`, `answered`, ...).
    pub outcome: Option<String>,
    /// Received.
    pub received_at: Timestamp,
    /// Deadline under the published handling time limit.
    pub due_at: Timestamp,
    /// Answered.
    pub resolved_at: Option<Timestamp>,
}

/// Complaints received in a period, by category and outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ComplaintCount {
    /// Category.
    pub category: String,
    /// Outcome (`None`: still open).
    pub outcome: Option<String>,
    /// How many.
    pub count: u64,
    /// Of those, how many were (or, still open, are) past their deadline.
    pub overdue: u64,
}

/// What a retention purge removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Takeover messages of cases resolved before the cutoff.
    pub messages: u64,
    /// Delivered or abandoned notifications created before the cutoff.
    pub notifications: u64,
    /// Texts of complaints resolved before the cutoff (the complaints stay for statistics).
    pub complaint_texts: u64,
}

/// The calendar month (`yyyymm`) of an instant at a fixed UTC offset (minutes east).
pub fn month_of(at: Timestamp, utc_offset_minutes: i32) -> u32 {
    let (year, month) = year_month(at.local_date(utc_offset_minutes));
    year * 100 + month
}

/// The year and month (1–12) of a local day.
pub fn year_month(day: LocalDate) -> (u32, u32) {
    /// Julian day number of 1970-01-01.
    const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;
    match time::Date::from_julian_day(day.0.saturating_add(UNIX_EPOCH_JULIAN_DAY)) {
        Ok(d) => (
            u32::try_from(d.year()).unwrap_or(0),
            u32::from(u8::from(d.month())),
        ),
        // Outside ±9999 years: not a date anyone reports on.
        Err(_) => (0, 0),
    }
}

/// The first and last day of a calendar year, as local days (for counter totals).
pub fn year_days(year: i32) -> (LocalDate, LocalDate) {
    /// Julian day number of 1970-01-01.
    const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;
    let day = |y: i32, m: time::Month, d: u8| {
        time::Date::from_calendar_date(y, m, d)
            .map(|d| LocalDate(d.to_julian_day() - UNIX_EPOCH_JULIAN_DAY))
            .unwrap_or(LocalDate(0))
    };
    (
        day(year, time::Month::January, 1),
        day(year, time::Month::December, 31),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_follow_the_report_time_zone() {
        let t = Timestamp::parse("2026-08-31T20:00:00Z").unwrap();
        assert_eq!(month_of(t, 0), 202608);
        assert_eq!(month_of(t, 480), 202609);
        assert_eq!(month_of(Timestamp::from_unix(0), 0), 197001);
        let (first, last) = year_days(1970);
        assert_eq!((first.0, last.0), (0, 364));
        assert_eq!(year_days(2024).1.0 - year_days(2024).0.0, 365);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        let d: Vec<i64> = (1..=9).map(|a| p.delay_after(a)).collect();
        assert_eq!(d, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(p.delay_after(u32::MAX), 3600);
    }
}
