//! The profile file format, exactly as written in `profiles/<id>/profile.toml`.
//!
//! These `Raw*` types are the schema: serde reads them with `deny_unknown_fields` (a typo must
//! never silently switch off a rule), and [`crate::validate`] turns them into the validated
//! [`crate::Profile`]. Nothing outside this crate sees them.

use serde::Deserialize;
use tutela_types::{Action, Clock, DetectorId, NoticeContent, Severity};

/// The header of a profile file: everything except the obligations, which are read one by one
/// so that an error in one does not hide the errors in the others.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeader {
    pub id: String,
    pub title: String,
    pub law: String,
    pub jurisdiction: String,
    pub status: Status,
    pub current: bool,
    pub effective: String,
    pub verification: Verification,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub penalties: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    /// The id of a `template` profile whose obligations this profile inherits; an obligation
    /// here with the same id replaces the template's, a new one is added.
    #[serde(default)]
    pub extends: Option<String>,
    /// Template obligations this profile does not take over.
    #[serde(default)]
    pub omit: Vec<String>,
    /// Read separately; present here only so that `deny_unknown_fields` accepts the key.
    #[serde(default, rename = "obligation")]
    pub _obligation: Option<toml::Value>,
}

/// Legal status of the text a profile encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In force.
    InForce,
    /// Enacted; operative at `effective`.
    Enacted,
    /// A draft; never selected by an alias, only by its id.
    Draft,
    /// tutela's own safe defaults, not a law.
    Policy,
    /// The shared text of several laws (a model act); never selected itself, only inherited
    /// by the profiles that name it in `extends`.
    Template,
}

/// How well a figure or text was checked (regulations.md tags V/S/R/D).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// [V] checked against the official text.
    Verified,
    /// [S] from a secondary source.
    Secondary,
    /// [R] recollection, not re-verified.
    Recollection,
    /// [R] in the 2026-12 update: reported or uncertain (sources conflict, status not found).
    Reported,
    /// [D] draft text only.
    Draft,
    /// tutela's own design choice.
    Design,
}

/// Which users an obligation covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Covers {
    /// Everyone.
    All,
    /// Users the operator knows are minors.
    KnownMinors,
    /// Known and suspected minors.
    Minors,
    /// Elderly users.
    Elderly,
}

/// How an obligation is met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetBy {
    /// By the gateway at run time (the duties engine).
    Runtime,
    /// By labels on every reply.
    Label,
    /// By records in the store.
    Record,
    /// By a report to a regulator or a publication.
    Report,
    /// By a human or organisational process.
    HumanProcess,
    /// By the operator's user interface.
    Ui,
    /// By offline assessment (corpus screening, model assessment).
    Eval,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawObligation {
    pub id: String,
    pub article: String,
    pub title: String,
    /// The citation and the title in Chinese, for reports in Chinese (the CN assessment).
    #[serde(default)]
    pub article_zh: Option<String>,
    #[serde(default)]
    pub title_zh: Option<String>,
    pub summary: String,
    pub covers: Covers,
    pub met_by: Vec<MetBy>,
    pub verification: Verification,
    /// Parameters whose figures are not verified against the primary text.
    #[serde(default)]
    pub unverified: Vec<String>,
    #[serde(default)]
    pub effective: Option<String>,
    /// How tutela meets it, for `tutela profiles explain`.
    pub how: String,
    /// Read one by one (see [`RawRule`]) so each rule's errors are reported.
    #[serde(default)]
    pub rule: Vec<toml::Value>,
    #[serde(default)]
    pub threshold: Option<RawThreshold>,
    /// Other ways the law lets the duty be met; a deployment that declares one of them meets
    /// the duty without the rules (`persistent_ai_disclosure` instead of an interval clock).
    #[serde(default)]
    pub alternatives: Vec<Alternative>,
    /// What the duty means for the product as deployed (`tutela profiles check-deployment`).
    #[serde(default)]
    pub deployment: Option<RawDeployment>,
}

/// A way to meet a duty that the deployment declares, instead of the rules.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Alternative {
    /// The operator's interface shows a continuously visible "this is an AI, not a human"
    /// disclosure (CT PA 26-15 "continuously visible"; the Conversational AI Safety Act's
    /// "persistent visible disclaimer").
    PersistentAiDisclosure,
}

/// A product feature an operator declares (or not) for `tutela profiles check-deployment`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// A continuously visible AI disclosure in the interface.
    PersistentAiDisclosure,
    /// Points, streaks, badges or unpredictable (variable-ratio) rewards.
    PointsOrRewards,
    /// Engagement optimisation (ranking or prompting to prolong use).
    EngagementOptimisation,
    /// Sexual or romantic interaction is possible.
    SexualOrRomanticContent,
    /// The companion can produce self-harm, suicide or disordered-eating content.
    SelfHarmCapable,
    /// Presents as a licensed therapist or offers mental-health treatment.
    MentalHealthServices,
    /// Tools for parents (supervision, account settings).
    ParentalTools,
    /// Screen-time tools for minors.
    ScreenTimeTools,
    /// Age assurance above self-declaration before gated features.
    AgeAssurance,
    /// A published crisis protocol.
    PublishedCrisisProtocol,
    /// A yearly public page of crisis-referral counts.
    PublicReferralReport,
    /// A visible or audible watermark on content exported out of the service.
    ExportWatermark,
    /// A domestic (local) representative appointed.
    LocalRepresentative,
    /// A risk assessment and compliance report for a regulator.
    RegulatorReportPack,
}

/// A figure an operator declares about its deployment (users, revenue).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    /// Daily users in Korea.
    KrDailyUsers,
    /// Global yearly revenue, KRW.
    GlobalRevenueKrw,
    /// Yearly sales in Korea, KRW.
    KrSalesKrw,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDeployment {
    #[serde(default)]
    pub forbids: Vec<Feature>,
    #[serde(default)]
    pub requires: Vec<Feature>,
    /// Only if the deployment reaches any of these figures.
    #[serde(default)]
    pub when_any_at_least: std::collections::BTreeMap<Figure, u64>,
}

/// A runtime rule. The `kind` tag selects the variant.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum RawRule {
    SessionStartNotice {
        contents: Vec<NoticeContent>,
        once_per: OncePer,
        #[serde(default)]
        after_absence_days: Option<u32>,
    },
    PeriodicNotice {
        contents: Vec<NoticeContent>,
        interval_minutes: u32,
        anchor: Anchor,
    },
    FindingNotice {
        on: Vec<DetectorId>,
        contents: Vec<NoticeContent>,
        #[serde(default)]
        min_severity: Option<Severity>,
        min_gap_minutes: u32,
    },
    OnFinding {
        on: Vec<DetectorId>,
        #[serde(default)]
        min_severity: Option<Severity>,
        #[serde(default)]
        exit_requested: Option<bool>,
        #[serde(default)]
        age_states: Option<Vec<tutela_types::AgeState>>,
        actions: Vec<Action>,
    },
    DailyBudget {
        bands: Vec<RawBand>,
        unknown_age_minutes: u32,
    },
    QuietHours {
        start: Clock,
        end: Clock,
    },
    PersonaGate {
        deny: Vec<tutela_types::PersonaKind>,
    },
    Exit {
        on: Vec<DetectorId>,
    },
    Label {
        explicit: bool,
        implicit: bool,
    },
    HardStop {
        on: Vec<DetectorId>,
        #[serde(default)]
        min_severity: Option<Severity>,
    },
    AgeAssuranceGate {
        on: Vec<DetectorId>,
        min_assurance: tutela_types::AgeAssurance,
        actions: Vec<Action>,
    },
}

/// How often a session-start notice may repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OncePer {
    /// At the start of every period of continuous use.
    Session,
    /// At most once per local calendar day.
    Day,
    /// Only at the user's first use.
    Ever,
    /// At most once in any 24 hours (a rolling window, not the local day: CT PA 26-15).
    #[serde(rename = "24_hours")]
    Hours24,
}

/// Where a periodic clock counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// Fixed multiples of the interval since continuous use began ("each further 2 hours").
    Grid,
    /// The interval since the last notice with these contents ("at least every 3 hours").
    LastNotice,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBand {
    pub max_age: u8,
    pub minutes: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThreshold {
    #[serde(default)]
    pub registered_users: Option<u64>,
    #[serde(default)]
    pub monthly_active_users: Option<u64>,
    pub warn_ratio: f64,
    /// What crossing it opens, e.g. `security_assessment`.
    pub opens: String,
}
