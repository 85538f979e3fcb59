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
