//! `Stored*` rows: each table's columns exactly as stored, and the explicit conversions to and
//! from the domain types. Rows must stay readable forever: add columns, never repurpose them.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tutela_types::{Action, ContactKind, MinorsSettings, QuietHours, Reason, Timestamp};

use crate::error::{Result, StoreError};
use crate::model::{
    Complaint, ContactAddress, DailyUsage, Direction, Escalation, EscalationMessage,
    EscalationStatus, Intervention, Notification, OutboxStatus, Session, User,
};

/// `n` numbered placeholders from `$first` on, comma-separated (`$3, $4, $5`): one query text
/// for both backends (sqlx reads `$N` on SQLite too).
pub(crate) fn marks(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The snake_case name of a unit enum variant, as serde writes it.
pub(crate) fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        // Only unit variants of snake_case enums reach here; anything else is a bug we
        // still store visibly rather than panic on.
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

/// Parses a snake_case enum name.
pub(crate) fn parse_enum<T: DeserializeOwned>(
    table: &'static str,
    column: &'static str,
    name: &str,
) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| StoreError::corrupt(table, column, format!("unknown value `{name}`")))
}

pub(crate) fn parse_json<T: DeserializeOwned>(
    table: &'static str,
    column: &'static str,
    text: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(table, column, e.to_string()))
}

pub(crate) fn to_json<T: Serialize>(what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { what, source })
}

fn narrow<T: TryFrom<i64>>(table: &'static str, column: &'static str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| StoreError::corrupt(table, column, format!("{v} is out of range")))
}

fn ts(v: i64) -> Timestamp {
    Timestamp::from_unix(v)
}

/// A `users` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredUser {
    pub id: String,
    pub first_seen: i64,
    pub registered_at: Option<i64>,
    pub age_state: String,
    pub age: Option<i64>,
    pub elderly: bool,
    pub guardian_consent: bool,
    pub jurisdiction: Option<String>,
    pub utc_offset_minutes: i64,
    pub minors_daily_minutes: Option<i64>,
    pub quiet_start: Option<i64>,
    pub quiet_end: Option<i64>,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub age_assurance: String,
}

/// A `contacts` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredContact {
    pub kind: String,
    pub channel: String,
    pub address: String,
}

impl StoredUser {
    pub(crate) fn from_domain(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            first_seen: u.first_seen.unix(),
            registered_at: u.registered_at.map(Timestamp::unix),
            age_state: enum_name(&u.age_state),
            age: u.age.map(i64::from),
            elderly: u.elderly,
            guardian_consent: u.guardian_consent,
            jurisdiction: u.jurisdiction.clone(),
            utc_offset_minutes: i64::from(u.utc_offset_minutes),
            minors_daily_minutes: u.minors.daily_minutes.map(i64::from),
            quiet_start: u
                .minors
                .quiet_hours
                .map(|q| i64::from(q.start.minute_of_day())),
            quiet_end: u
                .minors
                .quiet_hours
                .map(|q| i64::from(q.end.minute_of_day())),
            updated_at: u.updated_at.unix(),
            deleted_at: u.deleted_at.map(Timestamp::unix),
            age_assurance: enum_name(&u.age_assurance),
        }
    }

    pub(crate) fn into_domain(self, contacts: Vec<StoredContact>) -> Result<User> {
        const T: &str = "users";
        let clock = |column: &'static str, v: i64| -> Result<tutela_types::Clock> {
            let m: u16 = narrow(T, column, v)?;
            tutela_types::Clock::new(m / 60, m % 60).ok_or_else(|| {
                StoreError::corrupt(T, column, format!("{v} is not a minute of the day"))
            })
        };
        let quiet_hours = match (self.quiet_start, self.quiet_end) {
            (Some(s), Some(e)) => Some(QuietHours {
                start: clock("quiet_start", s)?,
                end: clock("quiet_end", e)?,
            }),
            _ => None,
        };
        let contacts = contacts
            .into_iter()
            .map(|c| {
                Ok(ContactAddress {
                    kind: parse_enum::<ContactKind>("contacts", "kind", &c.kind)?,
                    channel: c.channel,
                    address: c.address,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(User {
            id: self.id,
            first_seen: ts(self.first_seen),
            registered_at: self.registered_at.map(ts),
            age_state: parse_enum(T, "age_state", &self.age_state)?,
            age: self.age.map(|a| narrow(T, "age", a)).transpose()?,
            age_assurance: parse_enum(T, "age_assurance", &self.age_assurance)?,
            elderly: self.elderly,
            guardian_consent: self.guardian_consent,
            jurisdiction: self.jurisdiction,
            utc_offset_minutes: narrow(T, "utc_offset_minutes", self.utc_offset_minutes)?,
            minors: MinorsSettings {
                daily_minutes: self
                    .minors_daily_minutes
                    .map(|m| narrow(T, "minors_daily_minutes", m))
                    .transpose()?,
                quiet_hours,
            },
            contacts,
            updated_at: ts(self.updated_at),
            deleted_at: self.deleted_at.map(ts),
        })
    }
}

/// A `sessions` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredSession {
    pub id: String,
    pub user_id: String,
    pub jurisdiction: Option<String>,
    pub started_at: i64,
    pub last_seen_at: i64,
    pub turns: i64,
    pub ended_at: Option<i64>,
    pub end_reason: Option<String>,
}

impl TryFrom<StoredSession> for Session {
    type Error = StoreError;

    fn try_from(r: StoredSession) -> Result<Self> {
        Ok(Session {
            id: r.id,
            user_id: r.user_id,
            jurisdiction: r.jurisdiction,
            started_at: ts(r.started_at),
            last_seen_at: ts(r.last_seen_at),
            turns: narrow("sessions", "turns", r.turns)?,
            ended_at: r.ended_at.map(ts),
            end_reason: r.end_reason,
        })
    }
}

/// A `usage_daily` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredDailyUsage {
    pub user_id: String,
    pub day: i64,
    pub jurisdiction: String,
    pub seconds: i64,
    pub turns: i64,
}

impl TryFrom<StoredDailyUsage> for DailyUsage {
    type Error = StoreError;

    fn try_from(r: StoredDailyUsage) -> Result<Self> {
        const T: &str = "usage_daily";
        Ok(DailyUsage {
            user_id: r.user_id,
            day: tutela_types::LocalDate(narrow(T, "day", r.day)?),
            jurisdiction: r.jurisdiction,
            seconds: narrow(T, "seconds", r.seconds)?,
            turns: narrow(T, "turns", r.turns)?,
        })
    }
}

/// An `interventions` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredIntervention {
    pub id: i64,
    pub at: i64,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub jurisdiction: String,
    pub kind: String,
    pub detector: Option<String>,
    pub side: Option<String>,
    pub action: String,
    pub reasons: String,
    pub audit_seq: Option<i64>,
}

impl StoredIntervention {
    pub(crate) fn from_domain(i: &Intervention) -> Result<Self> {
        Ok(Self {
            id: i.id,
            at: i.at.unix(),
            user_id: i.user_id.clone(),
            session_id: i.session_id.clone(),
            jurisdiction: i.jurisdiction.clone(),
            kind: i.action.kind().to_owned(),
            detector: i.detector.clone(),
            side: i.side.as_ref().map(enum_name),
            action: to_json("intervention action", &i.action)?,
            reasons: to_json("intervention reasons", &i.reasons)?,
            audit_seq: i.audit_seq,
        })
    }
}

impl TryFrom<StoredIntervention> for Intervention {
    type Error = StoreError;

    fn try_from(r: StoredIntervention) -> Result<Self> {
        const T: &str = "interventions";
        Ok(Intervention {
            id: r.id,
            at: ts(r.at),
            user_id: r.user_id,
            session_id: r.session_id,
            jurisdiction: r.jurisdiction,
            detector: r.detector,
            side: r.side.map(|s| parse_enum(T, "side", &s)).transpose()?,
            action: parse_json::<Action>(T, "action", &r.action)?,
            reasons: parse_json::<Vec<Reason>>(T, "reasons", &r.reasons)?,
            audit_seq: r.audit_seq,
        })
    }
}

/// An `escalations` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredEscalation {
    pub id: i64,
    pub user_id: String,
    pub session_id: Option<String>,
    pub jurisdiction: Option<String>,
    pub status: String,
    pub severity: String,
    pub takeover: bool,
    pub detector: Option<String>,
    pub reasons: String,
    pub claimed_by: Option<String>,
    pub resolution: Option<String>,
    pub created_at: i64,
    pub claimed_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

impl TryFrom<StoredEscalation> for Escalation {
    type Error = StoreError;

    fn try_from(r: StoredEscalation) -> Result<Self> {
        const T: &str = "escalations";
        Ok(Escalation {
            id: r.id,
            user_id: r.user_id,
            session_id: r.session_id,
            jurisdiction: r.jurisdiction,
            status: parse_enum::<EscalationStatus>(T, "status", &r.status)?,
            severity: parse_enum(T, "severity", &r.severity)?,
            takeover: r.takeover,
            detector: r.detector,
            reasons: parse_json(T, "reasons", &r.reasons)?,
            claimed_by: r.claimed_by,
            resolution: r.resolution,
            created_at: ts(r.created_at),
            claimed_at: r.claimed_at.map(ts),
            resolved_at: r.resolved_at.map(ts),
        })
    }
}

/// An `escalation_messages` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredEscalationMessage {
    pub id: i64,
    pub escalation_id: i64,
    pub direction: String,
    pub author: Option<String>,
    pub body: String,
    pub at: i64,
    pub delivered_at: Option<i64>,
}

impl TryFrom<StoredEscalationMessage> for EscalationMessage {
    type Error = StoreError;

    fn try_from(r: StoredEscalationMessage) -> Result<Self> {
        Ok(EscalationMessage {
            id: r.id,
            escalation_id: r.escalation_id,
            direction: parse_enum::<Direction>("escalation_messages", "direction", &r.direction)?,
            author: r.author,
            body: r.body,
            at: ts(r.at),
            delivered_at: r.delivered_at.map(ts),
        })
    }
}

/// An `outbox` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredNotification {
    pub id: i64,
    pub created_at: i64,
    pub user_id: Option<String>,
    pub escalation_id: Option<i64>,
    pub contact_kind: String,
    pub channel: String,
    pub target: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

impl TryFrom<StoredNotification> for Notification {
    type Error = StoreError;

    fn try_from(r: StoredNotification) -> Result<Self> {
        const T: &str = "outbox";
        Ok(Notification {
            id: r.id,
            created_at: ts(r.created_at),
            user_id: r.user_id,
            escalation_id: r.escalation_id,
            contact: ContactAddress {
                kind: parse_enum(T, "contact_kind", &r.contact_kind)?,
                channel: r.channel,
                address: r.target,
            },
            payload: parse_json(T, "payload", &r.payload)?,
            status: parse_enum::<OutboxStatus>(T, "status", &r.status)?,
            attempts: narrow(T, "attempts", r.attempts)?,
            next_attempt_at: ts(r.next_attempt_at),
            last_error: r.last_error,
            sent_at: r.sent_at.map(ts),
        })
    }
}

/// A `complaints` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredComplaint {
    pub id: i64,
    pub user_id: Option<String>,
    pub category: String,
    pub intervention_id: Option<i64>,
    pub body: Option<String>,
    pub status: String,
    pub outcome: Option<String>,
    pub received_at: i64,
    pub due_at: i64,
    pub resolved_at: Option<i64>,
}

impl TryFrom<StoredComplaint> for Complaint {
    type Error = StoreError;

    fn try_from(r: StoredComplaint) -> Result<Self> {
        Ok(Complaint {
            id: r.id,
            user_id: r.user_id,
            category: r.category,
            intervention_id: r.intervention_id,
            body: r.body,
            status: parse_enum("complaints", "status", &r.status)?,
            outcome: r.outcome,
            received_at: ts(r.received_at),
            due_at: ts(r.due_at),
            resolved_at: r.resolved_at.map(ts),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutela_types::{AgeState, Clock};

    #[test]
    fn user_round_trips_through_its_row() {
        let mut u = User::new("u1", Timestamp::from_unix(100));
        u.age_state = AgeState::KnownMinor;
        u.age = Some(15);
        u.utc_offset_minutes = 480;
        u.minors.daily_minutes = Some(45);
        u.minors.quiet_hours = Some(QuietHours {
            start: Clock::new(22, 0).unwrap(),
            end: Clock::new(6, 30).unwrap(),
        });
        let row = StoredUser::from_domain(&u);
        assert_eq!(row.age_state, "known_minor");
        assert_eq!(row.into_domain(Vec::new()).unwrap(), u);
    }

    #[test]
    fn unknown_enum_names_are_reported_with_their_column() {
        let err = parse_enum::<AgeState>("users", "age_state", "toddler").unwrap_err();
        assert_eq!(
            err.to_string(),
            "stored value in `users.age_state` is invalid: unknown value `toddler`"
        );
    }
}
