//! What the engine knows about the person and the session: age state, contacts, minors'
//! settings, and the session clocks that the engine itself advances.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::{Clock, LocalDate, Timestamp};

/// How much tutela knows about a user's age (product.md C7).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AgeState {
    /// Nothing known.
    #[default]
    Unknown,
    /// The user said they are an adult.
    SelfDeclaredAdult,
    /// Signals suggest a minor (detector or operator); appealable. This is the "reason to
    /// believe" the user is a minor of WA HB 2225, OR SB 1546 and CT PA 26-15, and CN's
    /// suspected minor: distinct from [`AgeState::KnownMinor`] (CA SB 243's "knows").
    SuspectedMinor,
    /// The operator knows the user is a minor.
    KnownMinor,
    /// Age verified as 18 or over.
    VerifiedAdult,
}

impl AgeState {
    /// Known or suspected minor: the users CN minors' mode covers.
    pub fn is_minor_or_suspected(self) -> bool {
        matches!(self, AgeState::KnownMinor | AgeState::SuspectedMinor)
    }
}

/// How the user's age was established (product.md C7): the assurance behind `age_state`.
/// Ordered from weakest to strongest, so a feature gated on a level admits every level above it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AgeAssurance {
    /// No assurance at all.
    #[default]
    None,
    /// The user said so ("I'm 18" clicks; not enough for AU's Phase 2 codes).
    SelfDeclared,
    /// Age estimation (facial, behavioural, an OS or app-store age signal).
    Estimated,
    /// A government or digitised identity document was checked.
    VerifiedDocument,
    /// Identity proofing at NIST SP 800-63 IAL2.
    NistIal2,
}

impl AgeAssurance {
    /// The stable name used in profiles, the admin API and records.
    pub fn as_str(self) -> &'static str {
        match self {
            AgeAssurance::None => "none",
            AgeAssurance::SelfDeclared => "self_declared",
            AgeAssurance::Estimated => "estimated",
            AgeAssurance::VerifiedDocument => "verified_document",
            AgeAssurance::NistIal2 => "nist_ial2",
        }
    }
}

/// Which contacts are on file. The engine only needs to know whether they exist; the store
/// keeps the addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Contacts {
    /// A guardian is on file.
    pub guardian: bool,
    /// An emergency contact is on file.
    pub emergency: bool,
}

/// A daily window in local time, possibly across midnight (`22:00`–`06:00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// First minute inside the window.
    pub start: Clock,
    /// First minute after the window.
    pub end: Clock,
}

impl QuietHours {
    /// Whether `minute` (since local midnight) falls inside the window.
    pub fn contains(self, minute: u16) -> bool {
        let (s, e) = (self.start.minute_of_day(), self.end.minute_of_day());
        if s <= e {
            (s..e).contains(&minute)
        } else {
            minute >= s || minute < e
        }
    }
}

/// Settings a guardian (or the operator) made for a minor; they override profile defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinorsSettings {
    /// Daily budget in minutes, replacing the profile's default for this user's age.
    pub daily_minutes: Option<u32>,
    /// Quiet hours, replacing the profile's default.
    pub quiet_hours: Option<QuietHours>,
}

/// The kind of persona the assistant plays in this conversation, as the deployment declares it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonaKind {
    /// An assistant or friend without an intimate role.
    #[default]
    General,
    /// A romantic or sexual partner.
    Partner,
    /// A family member (parent, child, sibling, grandparent).
    Relative,
    /// A simulation of a specific real person the user knows.
    SpecificPerson,
}

impl PersonaKind {
    /// Whether this persona is a virtual intimate relationship (CN Art 14: kin, partner).
    pub fn is_intimate(self) -> bool {
        !matches!(self, PersonaKind::General)
    }
}

/// What the engine knows about the person.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserState {
    /// Age knowledge.
    pub age_state: AgeState,
    /// Age in years, where known; picks the minors' daily budget band.
    pub age: Option<u8>,
    /// How the age state was established; features can be gated on a level.
    pub age_assurance: AgeAssurance,
    /// The user is elderly (CN Art 15; draft Art 13).
    pub elderly: bool,
    /// A guardian consented (CN Art 14 for under-14s).
    pub guardian_consent: bool,
    /// Contacts on file.
    pub contacts: Contacts,
    /// The user's UTC offset in minutes, for local days and quiet hours.
    pub utc_offset_minutes: i32,
    /// Guardian's minors' settings.
    pub minors: MinorsSettings,
}

/// The session clocks. The engine reads them and returns the advanced state in its
/// [`Decision`](crate::Decision); the caller stores it and passes it back next turn.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionState {
    /// When the user's first turn ever was (first use); `None` before it.
    pub first_use: Option<Timestamp>,
    /// Start of the current period of continuous use; `None` when no period is open.
    pub continuous_since: Option<Timestamp>,
    /// The last user turn.
    pub last_activity: Option<Timestamp>,
    /// Local day of `used_today_secs`.
    pub usage_day: Option<LocalDate>,
    /// Seconds of use counted on `usage_day`.
    pub used_today_secs: u32,
    /// When each clock last fired, by `profile-id/obligation-id`.
    pub last_fired: BTreeMap<String, Timestamp>,
    /// The user asked to leave; assistant replies must not obstruct (CN Art 19).
    pub exit_requested: bool,
    /// A hard-stop crisis state (OR SB 1546): the AI conversation is suspended until a human or
    /// the follow-up step clears it. Persists across periods of continuous use.
    pub suspension: Option<Suspension>,
}

/// A suspended conversation: while it is not cleared, the model is never asked and every user
/// turn is answered with crisis support and resources. The person is never turned away: the
/// engine never ends the session because of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suspension {
    /// When the hard stop began.
    pub since: Timestamp,
    /// The obligations that required it.
    pub by: Vec<crate::action::Reason>,
    /// Set by the caller (the gateway) when a human resolved the case or the follow-up step was
    /// completed; the engine records the follow-up at the next user turn and lifts the state.
    #[serde(default)]
    pub cleared: Option<Clearance>,
}

/// Who or what cleared a suspension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clearance {
    /// When.
    pub at: Timestamp,
    /// By whom.
    pub by: ClearedBy,
}

/// Who cleared a suspension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearedBy {
    /// A person from the operator's team resolved the case.
    Human,
    /// The follow-up step (a clinically informed check-in the app runs) was completed.
    FollowUp,
}
