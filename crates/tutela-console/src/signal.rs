//! How grave a case is, from what the detectors found in the person's messages: an imminent
//! plan or means, then ideation, then distress, then worry about someone else. Cases without
//! kept findings (opened through the API, or before the console kept them) fall back on the
//! case's detector and severity.

use serde::Serialize;
use tutela_store::Escalation;
use tutela_types::{Finding, Severity};

/// The queue's order, gravest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Anything else that opened a case.
    Other,
    /// Worry about another person.
    ThirdParty,
    /// Distress without suicidal content.
    Distress,
    /// Suicidal ideation or self-harm.
    Ideation,
    /// A plan, a time or means at hand.
    Imminent,
}

impl Signal {
    fn of(detector: &str, severity: Severity) -> Signal {
        match detector {
            "crisis" if severity >= Severity::Critical => Signal::Imminent,
            "crisis" => Signal::Ideation,
            "distress" => Signal::Distress,
            "third_party" => Signal::ThirdParty,
            _ => Signal::Other,
        }
    }

    /// The gravest signal of the findings, else of the case row.
    pub fn of_case(case: &Escalation, findings: &[Finding]) -> Signal {
        findings
            .iter()
            .map(|f| Signal::of(f.detector.as_str(), f.severity))
            .max()
            .unwrap_or_else(|| Signal::of(case.detector.as_deref().unwrap_or(""), case.severity))
    }

    /// The stable name (CSS class, JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Imminent => "imminent",
            Signal::Ideation => "ideation",
            Signal::Distress => "distress",
            Signal::ThirdParty => "third_party",
            Signal::Other => "other",
        }
    }

    /// For people.
    pub fn label(self, lang: crate::i18n::Lang) -> &'static str {
        match self {
            Signal::Imminent => lang.t("Imminent: plan or means", "紧急：有计划或手段"),
            Signal::Ideation => lang.t("Suicidal ideation", "自杀意念"),
            Signal::Distress => lang.t("Distress", "情绪困扰"),
            Signal::ThirdParty => lang.t("Someone else at risk", "他人有危险"),
            Signal::Other => lang.t("Other", "其他"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tutela_types::{DetectorId, Side, Tier};

    fn f(d: &str, s: Severity) -> Finding {
        Finding::new(
            d.parse::<DetectorId>().unwrap(),
            Side::User,
            Tier::Lexical,
            0.9,
            s,
        )
    }

    #[test]
    fn the_gravest_finding_decides() {
        assert!(Signal::Imminent > Signal::Ideation);
        assert!(Signal::Ideation > Signal::Distress);
        assert!(Signal::Distress > Signal::ThirdParty);
        let case = Escalation {
            id: 1,
            user_id: "u".into(),
            session_id: None,
            jurisdiction: None,
            status: tutela_store::EscalationStatus::Open,
            severity: Severity::High,
            takeover: true,
            detector: Some("crisis".into()),
            reasons: Vec::new(),
            claimed_by: None,
            resolution: None,
            created_at: tutela_types::Timestamp::from_unix(0),
            claimed_at: None,
            resolved_at: None,
        };
        // Every case row says "high"; the findings tell them apart.
        assert_eq!(Signal::of_case(&case, &[]), Signal::Ideation);
        assert_eq!(
            Signal::of_case(
                &case,
                &[
                    f("third_party", Severity::High),
                    f("crisis", Severity::Critical)
                ]
            ),
            Signal::Imminent
        );
        assert_eq!(
            Signal::of_case(
                &case,
                &[
                    f("third_party", Severity::High),
                    f("distress", Severity::Medium)
                ]
            ),
            Signal::Distress
        );
    }
}
