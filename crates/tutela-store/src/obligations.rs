//! Obligation records and the statistics the reports need beyond the per-concern traits:
//! usage thresholds reached or crossed, declared assessment triggers, registered users by the
//! deployment's definition, age structure, escalation and notification statistics, and a bulk
//! import of users (registrations from the operator, and the simulator).

use async_trait::async_trait;
use serde::Serialize;
use tutela_types::{Tier, Timestamp};

use crate::error::Result;

/// What counts as a registered user (CN Art. 22(3) counts registered users; a gateway sees
/// users when they first talk, an operator may register them through the admin API).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// A user is registered from their first turn.
    #[default]
    FirstSeen,
    /// A user is registered when the operator registers them through the admin API.
    Admin,
}

/// Why an obligation record was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationKind {
    /// A usage figure reached the warning share of a threshold.
    ThresholdWarning,
    /// A usage figure reached a threshold: the duty is open.
    ThresholdCrossed,
    /// The operator declared a trigger (feature launch, major technical change, ...).
    Declared,
}

impl ObligationKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ObligationKind::ThresholdWarning => "threshold_warning",
            ObligationKind::ThresholdCrossed => "threshold_crossed",
            ObligationKind::Declared => "declared",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "threshold_warning" => ObligationKind::ThresholdWarning,
            "threshold_crossed" => ObligationKind::ThresholdCrossed,
            _ => ObligationKind::Declared,
        }
    }
}

/// An obligation record to open.
#[derive(Clone, Debug, PartialEq)]
pub struct NewObligation {
    /// Idempotency key: opening the same key twice returns the first record.
    pub key: String,
    /// Why.
    pub kind: ObligationKind,
    /// `registered_users`, `monthly_active_users`, `feature_launch`, `major_change`, `other`.
    pub trigger: String,
    /// Profile, obligation and article that require it, where a profile does.
    pub profile: Option<String>,
    /// Obligation id.
    pub obligation: Option<String>,
    /// Citation.
    pub article: Option<String>,
    /// The figure that reached the threshold.
    pub value: Option<u64>,
    /// The threshold.
    pub threshold: Option<u64>,
    /// What happened, for people.
    pub description: String,
    /// What must be done now.
    pub due_items: Vec<String>,
    /// When.
    pub at: Timestamp,
}

/// An obligation record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObligationRecord {
    /// Store-assigned id.
    pub id: i64,
    /// Idempotency key.
    pub key: String,
    /// Why.
    pub kind: ObligationKind,
    /// What triggered it.
    pub trigger: String,
    /// Profile.
    pub profile: Option<String>,
    /// Obligation.
    pub obligation: Option<String>,
    /// Citation.
    pub article: Option<String>,
    /// Figure.
    pub value: Option<u64>,
    /// Threshold.
    pub threshold: Option<u64>,
    /// For people.
    pub description: String,
    /// What must be done.
    pub due_items: Vec<String>,
    /// `open` or `closed`.
    pub status: String,
    /// Opened.
    pub opened_at: Timestamp,
    /// Closed.
    pub closed_at: Option<Timestamp>,
    /// Closing note.
    pub note: Option<String>,
}

/// Escalation statistics for a period (CN Art. 23 items).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EscalationStats {
    /// Cases opened.
    pub opened: u64,
    /// Of those, with human takeover.
    pub takeovers: u64,
    /// Claimed by a human.
    pub claimed: u64,
    /// Resolved.
    pub resolved: u64,
    /// Median seconds from opening to claim, over claimed cases (an even count: the mean of
    /// the two middle waits, rounded to the second).
    pub median_secs_to_claim: Option<i64>,
}

/// The median of sorted values: the middle one, or for an even count the mean of the two
/// middle ones; `None` when there are none.
pub fn median_sorted(sorted: &[i64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0),
    }
}

/// Findings recorded in the audit log, per detector and detection tier (transparency report).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FindingTierCount {
    /// The detector (`crisis`) or operator category.
    pub detector: String,
    /// The tier that produced the findings (a record's `semantic` reads as `encoder`).
    pub tier: Tier,
    /// How many findings.
    pub count: u64,
}

/// Interventions per action kind, the detector they name, and the tier of the finding that
/// caused them (transparency report).
///
/// The finding is read from the intervention's audit record: the gravest finding of the named
/// detector on the intervention's side, the last one on a tie, which is the finding the
/// gateway took the detector from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterventionTierCount {
    /// Action kind (`replace_reply`, `notice`, ...).
    pub kind: String,
    /// The detector the intervention names; `None` when its turn had no finding.
    pub detector: Option<String>,
    /// The tier of that detector's finding; `None` when the intervention names no detector,
    /// is not linked to an audit record, or its record holds no finding of the detector.
    pub tier: Option<Tier>,
    /// How many interventions.
    pub count: u64,
}

/// Appeals per the detector and tier behind the intervention appealed against, and outcome
/// (transparency report: over-blocking per tier).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppealTierCount {
    /// The detector the appealed intervention names; `None` when the appeal names no
    /// intervention or the intervention names no detector.
    pub detector: Option<String>,
    /// The tier of that detector's finding, as for [`InterventionTierCount::tier`].
    pub tier: Option<Tier>,
    /// Outcome (`None`: still open).
    pub outcome: Option<String>,
    /// How many appeals.
    pub count: u64,
}

/// A user to import in bulk.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportUser {
    /// The operator's id.
    pub id: String,
    /// First seen.
    pub first_seen: Timestamp,
    /// Registered through the operator, if so.
    pub registered_at: Option<Timestamp>,
    /// Age state name (`unknown`, `known_minor`, ...).
    pub age_state: tutela_types::AgeState,
    /// Jurisdiction of record.
    pub jurisdiction: Option<String>,
    /// UTC offset in minutes.
    pub utc_offset_minutes: i32,
}

/// Obligation records and report statistics.
#[async_trait]
pub trait ObligationStore: Send + Sync {
    /// Opens a record, or returns the one with the same key; the flag says whether it is new.
    async fn open_obligation(&self, new: &NewObligation) -> Result<(ObligationRecord, bool)>;
    /// Records, newest first; only open ones if `open_only`.
    async fn list_obligations(&self, open_only: bool) -> Result<Vec<ObligationRecord>>;
    /// Closes a record with a note.
    async fn close_obligation(
        &self,
        id: i64,
        note: &str,
        at: Timestamp,
    ) -> Result<ObligationRecord>;
    /// Registered users at `at` by the deployment's definition, in total and per jurisdiction.
    async fn registered_count(
        &self,
        definition: Registration,
        at: Timestamp,
    ) -> Result<(u64, Vec<(String, u64)>)>;
    /// Users (not deleted) per age state.
    async fn age_structure(&self) -> Result<Vec<(String, u64)>>;
    /// Escalations opened in `[from, to)`.
    async fn escalation_stats(&self, from: Timestamp, to: Timestamp) -> Result<EscalationStats>;
    /// Notifications created in `[from, to)` per contact kind and status.
    async fn notification_stats(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, String, u64)>>;
    /// Interventions in `[from, to)` per action kind, each intervention counted once whatever
    /// its number of reasons.
    async fn intervention_kinds(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, u64)>>;
    /// Per local day in `[from, to]`: seconds of use and distinct users, summed in the store so a
    /// month of 1,000,000 users never leaves it row by row.
    async fn daily_totals(
        &self,
        from: tutela_types::LocalDate,
        to: tutela_types::LocalDate,
    ) -> Result<Vec<(tutela_types::LocalDate, u64, u64)>>;
    /// Findings held by the audit records of turns in `[from, to)`, per detector and tier.
    /// Reads each record of the period once (records without findings are skipped before
    /// their JSON is parsed); no subject, session or content leaves the store.
    async fn finding_tiers(&self, from: Timestamp, to: Timestamp) -> Result<Vec<FindingTierCount>>;
    /// Interventions in `[from, to)` per kind, detector and the tier of the finding that
    /// caused them (see [`InterventionTierCount`]); each intervention counted once.
    async fn intervention_tiers(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<InterventionTierCount>>;
    /// Appeals (complaints of category `appeal`) received in `[from, to)` per detector and
    /// tier of the appealed intervention's finding, and outcome.
    async fn appeal_tiers(&self, from: Timestamp, to: Timestamp) -> Result<Vec<AppealTierCount>>;
    /// Inserts users that do not exist yet, in one transaction; returns how many were new.
    async fn import_users(&self, users: &[ImportUser]) -> Result<u64>;
    /// What the database holds that an import of users whose ids start with `prefix` (a
    /// simulation) did not write: users with other ids (tombstones included), audit records,
    /// complaints and staff accounts, each as (what, how many), only those present.
    async fn foreign_data(&self, prefix: &str) -> Result<Vec<(&'static str, u64)>>;
}

pub(crate) fn parse_kind(s: &str) -> ObligationKind {
    ObligationKind::parse(s)
}

#[cfg(test)]
mod tests {
    use super::median_sorted;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median_sorted(&[]), None);
        assert_eq!(median_sorted(&[7]), Some(7.0));
        assert_eq!(median_sorted(&[30, 60]), Some(45.0));
        assert_eq!(median_sorted(&[1, 2, 10]), Some(2.0));
        assert_eq!(median_sorted(&[1, 2, 3, 10]), Some(2.5));
    }
}
