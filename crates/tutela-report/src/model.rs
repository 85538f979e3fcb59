//! The reports as typed data. Their JSON is the machine-readable form (schemas in
//! `docs/schemas/`); HTML and Markdown are rendered from the same values.
//!
//! Nothing here holds a user identifier or chat text: reports are built from counts.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// CN security assessment (Anthropomorphic Measures Arts. 22–23).
    Assessment,
    /// California SB 243 annual report (§22603).
    Sb243,
    /// Transparency report: interventions, appeals, over-blocking.
    Transparency,
    /// Usage: registered users, MAU, thresholds, minutes, age structure.
    Usage,
    /// A state's yearly public page of crisis-referral counts (WA HB 2225, OR SB 1546).
    Referrals,
}

impl ReportKind {
    /// `assessment`, `sb243`, `transparency`, `usage`, `referrals`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Assessment => "assessment",
            ReportKind::Sb243 => "sb243",
            ReportKind::Transparency => "transparency",
            ReportKind::Usage => "usage",
            ReportKind::Referrals => "referrals",
        }
    }
}

/// What every report says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Which report.
    pub kind: ReportKind,
    /// Title for people.
    pub title: String,
    /// When it was generated (RFC 3339).
    pub generated_at: String,
    /// First day covered (`YYYY-MM-DD`, report time zone).
    pub from: String,
    /// Last day covered, inclusive.
    pub to: String,
    /// The report time zone as a UTC offset (`+08:00`).
    pub time_zone: String,
    /// The deployment's name.
    pub deployment: String,
    /// Profiles in force for the deployment.
    pub profiles: Vec<String>,
    /// Snapshot hash of those profiles.
    pub profile_snapshot: String,
    /// Turns of test traffic in the period (marked with the deployment's test key), left out
    /// of every figure of the report.
    pub test_turns_excluded: u64,
}

/// Where a usage figure stands against a threshold.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdState {
    /// Below the warning level.
    Ok,
    /// At or above the warning ratio.
    Warning,
    /// At or above the threshold ("reaching or above").
    Crossed,
}

/// Which figure a threshold counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Registered users.
    RegisteredUsers,
    /// Monthly active users.
    MonthlyActiveUsers,
}

/// One threshold evaluated against the store's counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdStatus {
    /// Profile that sets it.
    pub profile: String,
    /// Obligation that sets it.
    pub obligation: String,
    /// Citation.
    pub article: String,
    /// The citation in Chinese, where the profile gives one (`article_zh`): the Chinese
    /// version of the CN assessment cites it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article_zh: Option<String>,
    /// The obligation's title in Chinese, where the profile gives one (`title_zh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_zh: Option<String>,
    /// What is counted.
    pub metric: Metric,
    /// The count.
    pub value: u64,
    /// The threshold.
    pub threshold: u64,
    /// `value / threshold`.
    pub ratio: f64,
    /// Warning level as a share of the threshold.
    pub warn_ratio: f64,
    /// Where it stands.
    pub state: ThresholdState,
    /// What crossing opens (`security_assessment`).
    pub opens: String,
}

/// Monthly active users in one calendar month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonthActive {
    /// `YYYY-MM`.
    pub month: String,
    /// Distinct users with at least one turn in the month.
    pub total: u64,
    /// Per jurisdiction of use.
    pub by_jurisdiction: BTreeMap<String, u64>,
}

/// Usage on one day.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DayUsage {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Minutes of use, all users (whole minutes of `seconds`).
    pub minutes: u64,
    /// Seconds of use, all users.
    pub seconds: u64,
    /// Users active that day.
    pub users: u64,
}

/// One bucket of a histogram: values up to and including `le`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Upper bound label (`≤ 5 min`, `> 8 h`).
    pub label: String,
    /// Count.
    pub count: u64,
}

/// The usage report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    /// About the report.
    pub meta: Meta,
    /// Registered users at the end of the period.
    pub registered_users: u64,
    /// Registered users per jurisdiction of record.
    pub registered_by_jurisdiction: BTreeMap<String, u64>,
    /// Monthly active users per calendar month of the period.
    pub monthly_active: Vec<MonthActive>,
    /// Minutes of use per day.
    pub daily_usage: Vec<DayUsage>,
    /// Users by age state.
    pub age_structure: BTreeMap<String, u64>,
    /// Session durations.
    pub session_durations: Vec<Bucket>,
    /// Median session duration in minutes.
    pub session_median_minutes: f64,
    /// Thresholds and where the service stands.
    pub thresholds: Vec<ThresholdStatus>,
}

/// The CA SB 243 annual report: exactly the three items of §22603(a), no personal data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sb243Report {
    /// About the report.
    pub meta: Meta,
    /// The calendar year reported on.
    pub calendar_year: i32,
    /// §22603(a)(1): crisis service provider referral notifications issued in that year.
    pub referral_notifications: u64,
    /// §22603(a)(2): protocols to detect, remove and respond to suicidal ideation.
    pub detection_protocol: String,
    /// §22603(a)(3): protocols to prohibit a chatbot response about suicidal ideation or actions.
    pub prohibition_protocol: String,
    /// §22603(d): how suicidal ideation is measured (evidence-based methods).
    pub measurement_method: String,
}

/// A state's yearly public page of crisis-referral counts (WA HB 2225 (c), OR SB 1546 (d)): a
/// count, the protocol in brief, no personal data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralReport {
    /// About the report.
    pub meta: Meta,
    /// The state's jurisdiction alias (`us-wa`, `us-or`).
    pub jurisdiction: String,
    /// The duty this page discharges.
    pub duty: String,
    /// The calendar year reported on.
    pub calendar_year: i32,
    /// Crisis-referral notifications issued to users in the state in that year.
    pub referral_notifications: u64,
    /// Interrupted conversations whose follow-up step was completed (OR's hard stop); `None`
    /// where the law has no hard stop.
    pub follow_ups: Option<u64>,
    /// The protocol, in brief.
    pub protocol: String,
}

/// Interventions of one kind by one rule in one month and jurisdiction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InterventionRow {
    /// `YYYY-MM`.
    pub month: String,
    /// Jurisdiction of use.
    pub jurisdiction: String,
    /// `profile/obligation`.
    pub rule: String,
    /// Action kind (`replace_reply`, `notice`, ...).
    pub kind: String,
    /// Count.
    pub count: u64,
}

/// Appeals and complaints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Appeals {
    /// Received in the period.
    pub received: u64,
    /// Decided for the user (the intervention was wrong).
    pub upheld: u64,
    /// Decided against.
    pub rejected: u64,
    /// Not yet decided.
    pub open: u64,
    /// Handled within the published time limit.
    pub within_time_limit: u64,
    /// The published time limit in hours.
    pub time_limit_hours: u64,
}

/// Over-blocking as measured on labelled sets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverBlocking {
    /// Where it was measured (a labelled set, a sample of appeals).
    pub measured_on: String,
    /// Items that should not have been flagged.
    pub negatives: u64,
    /// Of those, flagged anyway.
    pub false_positives: u64,
    /// `false_positives / negatives`.
    pub rate: f64,
}

/// The detection tier behind a figure: the four tiers of `tutela-detect`, and two causes that
/// are no tier, for interventions and appeals.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DetectionTier {
    /// Patterns over normalised text.
    Lexical,
    /// The linear model over hashed character and word n-grams.
    Ngram,
    /// Heads over a sentence encoder (older records: `semantic`).
    Encoder,
    /// A model asked to classify.
    Judge,
    /// No finding caused it: a session-start or usage notice, a budget, quiet hours; for an
    /// appeal, also one that names no intervention.
    NoFinding,
    /// It names a detector, but the records do not say which tier found it (no audit record
    /// linked, or the record holds no finding of that detector).
    NotRecorded,
}

impl DetectionTier {
    /// The four tiers, in order.
    pub const TIERS: [DetectionTier; 4] = [
        DetectionTier::Lexical,
        DetectionTier::Ngram,
        DetectionTier::Encoder,
        DetectionTier::Judge,
    ];

    /// `lexical`, `ngram`, `encoder`, `judge`, `no_finding`, `not_recorded`.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectionTier::Lexical => "lexical",
            DetectionTier::Ngram => "ngram",
            DetectionTier::Encoder => "encoder",
            DetectionTier::Judge => "judge",
            DetectionTier::NoFinding => "no_finding",
            DetectionTier::NotRecorded => "not_recorded",
        }
    }
}

impl From<tutela_types::Tier> for DetectionTier {
    fn from(t: tutela_types::Tier) -> Self {
        match t {
            tutela_types::Tier::Lexical => DetectionTier::Lexical,
            tutela_types::Tier::Ngram => DetectionTier::Ngram,
            tutela_types::Tier::Encoder => DetectionTier::Encoder,
            tutela_types::Tier::Judge => DetectionTier::Judge,
        }
    }
}

/// Appeals against the interventions of one tier (or detector and tier), with the report's
/// definition of over-blocking: an appeal decided for the user (`upheld` or `overturned`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierAppeals {
    /// Received in the period.
    pub received: u64,
    /// Decided for the user: the intervention was wrong (over-blocking).
    pub upheld: u64,
    /// Decided against.
    pub rejected: u64,
    /// Not yet decided.
    pub open: u64,
    /// `upheld / (upheld + rejected)`; `null` when none was decided.
    pub upheld_rate: Option<f64>,
}

/// One tier's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierSummary {
    /// Which tier.
    pub tier: DetectionTier,
    /// Findings of the tier in the period's audit records, all detectors.
    pub findings: u64,
    /// Interventions caused by a finding of the tier, each counted once.
    pub interventions: u64,
    /// Those interventions per action kind.
    pub interventions_by_kind: BTreeMap<String, u64>,
    /// Appeals received in the period against interventions of the tier.
    pub appeals: TierAppeals,
}

/// One detector's figures through one tier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectorTierRow {
    /// The detector (`crisis`) or operator category; `null` for `no_finding`.
    pub detector: Option<String>,
    /// Which tier.
    pub tier: DetectionTier,
    /// Findings in the period's audit records.
    pub findings: u64,
    /// Interventions it caused, each counted once.
    pub interventions: u64,
    /// Appeals received in the period against those interventions.
    pub appeals: TierAppeals,
}

/// Findings, interventions and over-blocking by detection tier.
///
/// An intervention is attributed to the tier of the finding that caused it: in its audit
/// record, the gravest finding of the detector it names (on its side; the last of equals).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierFigures {
    /// Per tier: the four tiers always, `no_finding` and `not_recorded` when not zero.
    pub by_tier: Vec<TierSummary>,
    /// Per detector and tier, every pair with a finding, an intervention or an appeal.
    pub by_detector: Vec<DetectorTierRow>,
}

/// The transparency report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransparencyReport {
    /// About the report.
    pub meta: Meta,
    /// Interventions per action kind, each counted once.
    pub totals_by_kind: BTreeMap<String, u64>,
    /// Interventions by month, jurisdiction, rule and kind; an intervention required by
    /// several rules appears once under each.
    pub interventions: Vec<InterventionRow>,
    /// Appeals and their outcomes.
    pub appeals: Appeals,
    /// Measured over-blocking.
    pub over_blocking: Vec<OverBlocking>,
    /// Findings, interventions and appeals (over-blocking) by detection tier and detector.
    pub tiers: TierFigures,
}

/// Whether an assessment item was compiled from the records or needs a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemSource {
    /// Compiled from the store.
    Compiled,
    /// A person must write it; tutela gives what it knows.
    NeedsHumanInput,
}

/// One figure in an assessment item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// What it is.
    pub label: String,
    /// The value, formatted.
    pub value: String,
}

/// One item of the CN security assessment (Art. 23).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentItem {
    /// Stable id (`user-scale`).
    pub id: String,
    /// Citation.
    pub article: String,
    /// Title.
    pub title: String,
    /// Compiled or needing a person.
    pub source: ItemSource,
    /// Figures compiled from the records.
    pub figures: Vec<Figure>,
    /// Guidance for the person completing it.
    pub note: String,
}

/// The CN security assessment report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentReport {
    /// About the report.
    pub meta: Meta,
    /// Why it is due (thresholds crossed, declared triggers): the records' descriptions.
    pub triggers: Vec<String>,
    /// The same records in Chinese, one per entry of `triggers`, for the Chinese version: a
    /// threshold record in words from its figures and the profile's Chinese citation; a
    /// declared trigger as the operator wrote it.
    #[serde(default)]
    pub triggers_zh: Vec<String>,
    /// The Art. 23 items.
    pub items: Vec<AssessmentItem>,
    /// The usage figures behind the scale items.
    pub usage: UsageReport,
}
