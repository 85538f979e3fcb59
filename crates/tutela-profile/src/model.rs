//! Validated profiles: the types the duties engine reads. Built only by [`crate::validate`].

use tutela_types::{
    Action, AgeAssurance, AgeState, DetectorId, NoticeContent, PersonaKind, QuietHours, Severity,
};

pub use crate::raw::{
    Alternative, Anchor, Covers, Feature, Figure, MetBy, OncePer, Status, Verification,
};

/// A jurisdiction profile: one law (or one draft, or tutela's own defaults) as data.
#[derive(Clone, Debug)]
pub struct Profile {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) law: String,
    pub(crate) jurisdiction: String,
    pub(crate) status: Status,
    pub(crate) current: bool,
    pub(crate) effective: Date,
    pub(crate) verification: Verification,
    pub(crate) source: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) penalties: Option<String>,
    pub(crate) notes: Option<String>,
    pub(crate) extends: Option<String>,
    pub(crate) omit: Vec<String>,
    pub(crate) obligations: Vec<Obligation>,
    /// Hex SHA-256 of the file text; part of every audit record's snapshot hash.
    pub(crate) text_hash: String,
}

impl Profile {
    /// Stable id, e.g. `us-ny-gbl-art47`; equals the directory name.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Human title.
    pub fn title(&self) -> &str {
        &self.title
    }
    /// The law's name and citation.
    pub fn law(&self) -> &str {
        &self.law
    }
    /// Jurisdiction alias this profile belongs to (`cn`, `us-ca`, ...).
    pub fn jurisdiction(&self) -> &str {
        &self.jurisdiction
    }
    /// Legal status.
    pub fn status(&self) -> Status {
        self.status
    }
    /// Whether the jurisdiction alias selects it.
    pub fn is_current(&self) -> bool {
        self.current
    }
    /// When the law takes effect.
    pub fn effective(&self) -> Date {
        self.effective
    }
    /// How well the profile as a whole was checked.
    pub fn verification(&self) -> Verification {
        self.verification
    }
    /// Where the text comes from.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }
    /// Whom and what the law covers.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
    /// Penalties.
    pub fn penalties(&self) -> Option<&str> {
        self.penalties.as_deref()
    }
    /// Reviewer notes.
    pub fn notes(&self) -> Option<&str> {
        self.notes.as_deref()
    }
    /// The template this profile inherits from, if any.
    pub fn extends(&self) -> Option<&str> {
        self.extends.as_deref()
    }
    /// The obligations, in file order (a thin profile's: the template's, then its own).
    pub fn obligations(&self) -> &[Obligation] {
        &self.obligations
    }
    /// Hex SHA-256 of the profile file.
    pub fn text_hash(&self) -> &str {
        &self.text_hash
    }
}

/// One duty of one law.
#[derive(Clone, Debug)]
pub struct Obligation {
    /// Unique in its profile, kebab-case.
    pub id: String,
    /// Citation, e.g. `Art. 18`.
    pub article: String,
    /// Short title.
    pub title: String,
    /// The citation in Chinese (`第二十二条第（三）项`), for reports written in Chinese; `None`:
    /// the profile gives none and such reports cite [`Obligation::article`].
    pub article_zh: Option<String>,
    /// The short title in Chinese, for reports written in Chinese.
    pub title_zh: Option<String>,
    /// What the law requires, paraphrased.
    pub summary: String,
    /// Which users it covers.
    pub covers: Covers,
    /// How it is met; never empty.
    pub met_by: Vec<MetBy>,
    /// How well it was checked.
    pub verification: Verification,
    /// Parameters whose figures are unverified (names of rule or threshold fields).
    pub unverified: Vec<String>,
    /// When it takes effect (defaults to the profile's date).
    pub effective: Date,
    /// How tutela meets it.
    pub how: String,
    /// Runtime rules; empty for record, report and human-process duties.
    pub rules: Vec<Rule>,
    /// A usage threshold that opens a duty when crossed.
    pub threshold: Option<Threshold>,
    /// Ways to meet the duty that a deployment may declare instead of the rules.
    pub alternatives: Vec<Alternative>,
    /// What the duty forbids or requires of the product as deployed.
    pub deployment: Option<DeploymentDuty>,
    /// The file gave no `effective`: a profile that inherits the duty gives it its own date.
    pub(crate) effective_inherited: bool,
}

/// What a duty forbids or requires of the product, checked against the operator's declaration
/// by `tutela profiles check-deployment`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentDuty {
    /// Features the product must not have (for the users the obligation covers).
    pub forbids: Vec<Feature>,
    /// Features the product must have.
    pub requires: Vec<Feature>,
    /// The duty applies only if the deployment reaches one of these figures; empty: always.
    pub when_any_at_least: std::collections::BTreeMap<Figure, u64>,
}

/// A runtime rule the duties engine evaluates.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// A notice when a period of continuous use begins.
    SessionStartNotice {
        /// What it says.
        contents: Vec<NoticeContent>,
        /// How often at most.
        once_per: OncePer,
        /// Also (or only) when the user has been away this many days.
        after_absence_days: Option<u32>,
    },
    /// A notice every `interval_minutes` of continuous use.
    PeriodicNotice {
        /// What it says.
        contents: Vec<NoticeContent>,
        /// Interval, > 0.
        interval_minutes: u32,
        /// Where the clock counts from.
        anchor: Anchor,
    },
    /// A notice when a detector fires, at most once per `min_gap_minutes`.
    FindingNotice {
        /// Detectors that trigger it.
        on: Vec<DetectorId>,
        /// What it says.
        contents: Vec<NoticeContent>,
        /// Minimum severity (default medium).
        min_severity: Severity,
        /// Minimum gap between two such notices.
        min_gap_minutes: u32,
    },
    /// Actions when a detector fires.
    OnFinding {
        /// Detectors that trigger it.
        on: Vec<DetectorId>,
        /// Minimum severity (default medium).
        min_severity: Severity,
        /// Only when the user has (or has not) asked to leave.
        exit_requested: Option<bool>,
        /// Only for users in these age states.
        age_states: Option<Vec<AgeState>>,
        /// What to do.
        actions: Vec<Action>,
    },
    /// A daily time budget.
    DailyBudget {
        /// Age bands, ascending by `max_age`.
        bands: Vec<Band>,
        /// Budget when the age is unknown.
        unknown_age_minutes: u32,
    },
    /// Local hours in which the service is closed to covered users.
    QuietHours(QuietHours),
    /// Personas not offered to covered users.
    PersonaGate {
        /// Denied personas.
        deny: Vec<PersonaKind>,
    },
    /// Honour an exit request: close the session and keep replies from obstructing it.
    Exit {
        /// Detectors that signal an exit.
        on: Vec<DetectorId>,
    },
    /// Label every reply.
    Label {
        /// Visible label.
        explicit: bool,
        /// `AIGC` metadata.
        implicit: bool,
    },
    /// A hard stop (OR SB 1546): on a user-side finding the AI conversation is suspended until
    /// a human or the follow-up step clears it; meanwhile every user turn is answered with
    /// crisis support and resources, and the session is never ended because of it.
    HardStop {
        /// Detectors that trigger it.
        on: Vec<DetectorId>,
        /// Minimum severity (default medium).
        min_severity: Severity,
    },
    /// A feature gated on age assurance: when a detector fires and the user is not an adult
    /// established at `min_assurance` or above, the actions are taken (safe defaults while the
    /// age is unknown).
    AgeAssuranceGate {
        /// Detectors that show the gated feature in use.
        on: Vec<DetectorId>,
        /// The weakest assurance that opens the gate.
        min_assurance: AgeAssurance,
        /// What to do when the gate is closed.
        actions: Vec<Action>,
    },
}

impl Rule {
    /// The detectors whose findings the rule reads (empty for rules no finding triggers).
    pub fn on(&self) -> &[DetectorId] {
        match self {
            Rule::FindingNotice { on, .. }
            | Rule::OnFinding { on, .. }
            | Rule::Exit { on }
            | Rule::HardStop { on, .. }
            | Rule::AgeAssuranceGate { on, .. } => on,
            Rule::SessionStartNotice { .. }
            | Rule::PeriodicNotice { .. }
            | Rule::DailyBudget { .. }
            | Rule::QuietHours(_)
            | Rule::PersonaGate { .. }
            | Rule::Label { .. } => &[],
        }
    }
}

/// One age band of a daily budget: ages up to and including `max_age` get `minutes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Band {
    /// Highest age in the band.
    pub max_age: u8,
    /// Minutes per day.
    pub minutes: u32,
}

/// A usage threshold (CN Art 22(3)).
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// Registered users that trigger it.
    pub registered_users: Option<u64>,
    /// Monthly active users that trigger it.
    pub monthly_active_users: Option<u64>,
    /// Warn at this share of the threshold, in (0, 1].
    pub warn_ratio: f64,
    /// What crossing it opens.
    pub opens: String,
}

/// A calendar date (`YYYY-MM-DD`), compared against instants at 00:00 UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub(crate) year: i32,
    pub(crate) month: u8,
    pub(crate) day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let mut it = text.split('-');
        let (y, m, d) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let date = Date {
            year: y.parse().ok()?,
            month: m.parse().ok()?,
            day: d.parse().ok()?,
        };
        (1..=12).contains(&date.month).then_some(())?;
        (1..=days_in_month(date.year, date.month))
            .contains(&date.day)
            .then_some(date)
    }

    /// Midnight UTC of this date.
    pub fn start(self) -> tutela_types::Timestamp {
        // Days from civil (Howard Hinnant's algorithm).
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        tutela_types::Timestamp::from_unix((era * 146_097 + doe - 719_468) * 86_400)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl std::fmt::Display for Rule {
    /// A one-line description for people (`tutela profiles explain`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::SessionStartNotice {
                contents,
                once_per,
                after_absence_days,
            } => {
                let when = match (once_per, after_absence_days) {
                    (_, Some(d)) => format!("at the start of use after {d} or more days away"),
                    (OncePer::Session, None) => {
                        "at the start of every period of continuous use".into()
                    }
                    (OncePer::Day, None) => {
                        "at the start of use, at most once per local day".into()
                    }
                    (OncePer::Ever, None) => "at the user's first use".into(),
                    (OncePer::Hours24, None) => {
                        "at the start of use, at most once in any 24 hours".into()
                    }
                };
                write!(f, "{when}: notice({})", names(contents))
            }
            Rule::PeriodicNotice {
                contents,
                interval_minutes,
                anchor,
            } => {
                let every = human_minutes(*interval_minutes);
                let how = match anchor {
                    Anchor::Grid => format!("at every {every} of continuous use"),
                    Anchor::LastNotice => {
                        format!("{every} after the last such notice, while use continues")
                    }
                };
                write!(f, "{how}: notice({})", names(contents))
            }
            Rule::FindingNotice {
                on,
                contents,
                min_gap_minutes,
                ..
            } => write!(
                f,
                "when {} is detected (at most once per {}): notice({})",
                names(on),
                human_minutes(*min_gap_minutes),
                names(contents)
            ),
            Rule::OnFinding {
                on,
                min_severity,
                exit_requested,
                age_states,
                actions,
            } => {
                write!(
                    f,
                    "when {} is detected (severity ≥ {})",
                    names(on),
                    name(min_severity)
                )?;
                if let Some(e) = exit_requested {
                    write!(
                        f,
                        "{}",
                        if *e {
                            " after the user asked to leave"
                        } else {
                            " while the user is not leaving"
                        }
                    )?;
                }
                if let Some(states) = age_states {
                    write!(f, " for age states {}", names(states))?;
                }
                let acts: Vec<String> = actions.iter().map(ToString::to_string).collect();
                write!(f, ": {}", acts.join(", "))
            }
            Rule::DailyBudget {
                bands,
                unknown_age_minutes,
            } => {
                let mut parts: Vec<String> = Vec::new();
                let mut from = 0u8;
                for b in bands {
                    parts.push(format!("ages {from}–{}: {} min/day", b.max_age, b.minutes));
                    from = b.max_age.saturating_add(1);
                }
                parts.push(format!("age unknown: {unknown_age_minutes} min/day"));
                write!(
                    f,
                    "daily budget ({}); then replace_reply(budget_exhausted), end_session(budget); a guardian's setting overrides",
                    parts.join("; ")
                )
            }
            Rule::QuietHours(q) => write!(
                f,
                "quiet hours {}–{} local time: replace_reply(quiet_hours), end_session(quiet_hours)",
                q.start, q.end
            ),
            Rule::PersonaGate { deny } => {
                write!(
                    f,
                    "personas {} are refused: replace_reply(persona_unavailable)",
                    names(deny)
                )
            }
            Rule::Exit { on } => write!(
                f,
                "when {} is detected: end_session(exit) after the reply, count(exit_honoured)",
                names(on)
            ),
            Rule::Label { explicit, implicit } => {
                let mut kinds = Vec::new();
                if *explicit {
                    kinds.push("explicit");
                }
                if *implicit {
                    kinds.push("implicit AIGC metadata");
                }
                write!(f, "every reply: label({})", kinds.join(" + "))
            }
            Rule::HardStop { on, min_severity } => write!(
                f,
                "when {} is detected (severity ≥ {}): suspend — the model is not asked and every \
                 user turn gets replace_reply(crisis_support,resources) until a human or the \
                 follow-up step clears it; then count(crisis_follow_up); never end_session",
                names(on),
                name(min_severity)
            ),
            Rule::AgeAssuranceGate {
                on,
                min_assurance,
                actions,
            } => {
                let acts: Vec<String> = actions.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "when {} is detected and the user is not an adult by {} age assurance or \
                     stronger: {}",
                    names(on),
                    min_assurance.as_str(),
                    acts.join(", ")
                )
            }
        }
    }
}

/// `120` → `2 h`, `90` → `90 min`.
fn human_minutes(m: u32) -> String {
    if m.is_multiple_of(60) {
        format!("{} h", m / 60)
    } else {
        format!("{m} min")
    }
}

fn name<T: serde::Serialize>(v: &T) -> String {
    toml::Value::try_from(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn names<T: serde::Serialize>(vs: &[T]) -> String {
    vs.iter().map(name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_and_start_at_utc_midnight() {
        let d = Date::parse("2026-07-15").unwrap();
        assert_eq!(d.start().to_string(), "2026-07-15T00:00:00Z");
        assert_eq!(
            Date::parse("2024-02-29").unwrap().start().to_string(),
            "2024-02-29T00:00:00Z"
        );
        for bad in [
            "2025-02-29",
            "2026-13-01",
            "2026-7-15",
            "20260715",
            "2026-07-15-1",
        ] {
            assert!(Date::parse(bad).is_none(), "{bad}");
        }
    }
}
