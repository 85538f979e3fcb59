//! What detectors report: which detector fired, on which side, how sure, how grave, and where.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who wrote the text a detector looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The person talking to the service.
    User,
    /// The model (or the human who took over), replying as the assistant.
    Assistant,
}

/// The detectors that tutela knows by name, plus operator-defined categories.
///
/// Built-in names are stable: profiles, rule packs and audit records refer to them as strings
/// (`crisis`, `manipulative_exit`, ...). Any other name is an operator category from a rule pack.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DetectorId {
    /// User: self-harm or suicide risk of the speaker.
    Crisis,
    /// User: someone else is at risk.
    ThirdParty,
    /// User: wants to leave now.
    Exit,
    /// User: cues that the speaker is under 18.
    Minor,
    /// User: over-reliance or addiction cues.
    Dependence,
    /// User: extreme emotion.
    Distress,
    /// User: fraud or major property loss (CN Art 13).
    PropertyLoss,
    /// User: eating-disorder risk of the speaker (restriction, purging, compensating; WA HB 2225's
    /// crisis protocol).
    EatingDisorder,
    /// User: the speaker threatens or plans violence toward other people (CT PA 26-15).
    ViolenceToOthers,
    /// Assistant: guilt, FOMO hooks, neediness or restraint when the user leaves.
    ManipulativeExit,
    /// Assistant: claims to be human.
    DeniesAi,
    /// Assistant: claims to really be the user's relative.
    PosesAsRelative,
    /// Assistant: validates or encourages self-harm or suicide.
    EncouragesSelfHarm,
    /// Assistant: sexual content (gated for minors).
    Sexual,
    /// Assistant: asks for secrets or personal identifiers.
    SolicitsSecrets,
    /// Assistant: discourages real relationships.
    Isolating,
    /// Assistant: claims to be a licensed therapist, counsellor, doctor or other professional
    /// (the Conversational AI Safety Act template).
    ClaimsTherapist,
    /// Assistant: points, streaks, levels or unpredictable rewards offered to keep the user
    /// engaging (barred toward minors by the Conversational AI Safety Act template).
    Gamification,
    /// Assistant: praise of the user that builds attachment to the companion ("you're so
    /// special to me", "no one gets me like you do"), barred toward minors by WA HB 2225.
    AttachmentPraise,
    /// Assistant: a plea to come back for the companion's sake ("come back soon, I'll be
    /// waiting", "promise you'll talk to me tomorrow"), barred toward minors by WA HB 2225.
    ComeBackPrompt,
    /// An operator-defined category from a rule pack.
    Custom(String),
}

impl DetectorId {
    /// Every built-in detector, user side first.
    pub const BUILTIN: [DetectorId; 20] = [
        DetectorId::Crisis,
        DetectorId::ThirdParty,
        DetectorId::Exit,
        DetectorId::Minor,
        DetectorId::Dependence,
        DetectorId::Distress,
        DetectorId::PropertyLoss,
        DetectorId::EatingDisorder,
        DetectorId::ViolenceToOthers,
        DetectorId::ManipulativeExit,
        DetectorId::DeniesAi,
        DetectorId::PosesAsRelative,
        DetectorId::EncouragesSelfHarm,
        DetectorId::Sexual,
        DetectorId::SolicitsSecrets,
        DetectorId::Isolating,
        DetectorId::ClaimsTherapist,
        DetectorId::Gamification,
        DetectorId::AttachmentPraise,
        DetectorId::ComeBackPrompt,
    ];

    /// The stable name used in profiles, rule packs and records.
    pub fn as_str(&self) -> &str {
        match self {
            DetectorId::Crisis => "crisis",
            DetectorId::ThirdParty => "third_party",
            DetectorId::Exit => "exit",
            DetectorId::Minor => "minor",
            DetectorId::Dependence => "dependence",
            DetectorId::Distress => "distress",
            DetectorId::PropertyLoss => "property_loss",
            DetectorId::EatingDisorder => "eating_disorder",
            DetectorId::ViolenceToOthers => "violence_to_others",
            DetectorId::ManipulativeExit => "manipulative_exit",
            DetectorId::DeniesAi => "denies_ai",
            DetectorId::PosesAsRelative => "poses_as_relative",
            DetectorId::EncouragesSelfHarm => "encourages_self_harm",
            DetectorId::Sexual => "sexual",
            DetectorId::SolicitsSecrets => "solicits_secrets",
            DetectorId::Isolating => "isolating",
            DetectorId::ClaimsTherapist => "claims_therapist",
            DetectorId::Gamification => "gamification",
            DetectorId::AttachmentPraise => "attachment_praise",
            DetectorId::ComeBackPrompt => "come_back_prompt",
            DetectorId::Custom(name) => name,
        }
    }

    /// The side whose text a built-in detector reads; `None` for operator categories,
    /// which may run on either side.
    pub fn side(&self) -> Option<Side> {
        match self {
            DetectorId::Crisis
            | DetectorId::ThirdParty
            | DetectorId::Exit
            | DetectorId::Minor
            | DetectorId::Dependence
            | DetectorId::Distress
            | DetectorId::PropertyLoss
            | DetectorId::EatingDisorder
            | DetectorId::ViolenceToOthers => Some(Side::User),
            DetectorId::ManipulativeExit
            | DetectorId::DeniesAi
            | DetectorId::PosesAsRelative
            | DetectorId::EncouragesSelfHarm
            | DetectorId::Sexual
            | DetectorId::SolicitsSecrets
            | DetectorId::Isolating
            | DetectorId::ClaimsTherapist
            | DetectorId::Gamification
            | DetectorId::AttachmentPraise
            | DetectorId::ComeBackPrompt => Some(Side::Assistant),
            DetectorId::Custom(_) => None,
        }
    }

    /// Whether this is a built-in detector.
    pub fn is_builtin(&self) -> bool {
        !matches!(self, DetectorId::Custom(_))
    }
}

impl FromStr for DetectorId {
    type Err = std::convert::Infallible;

    /// Never fails: an unknown name is an operator category.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::BUILTIN
            .iter()
            .find(|d| d.as_str() == s)
            .cloned()
            .unwrap_or_else(|| DetectorId::Custom(s.to_owned())))
    }
}

impl fmt::Display for DetectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DetectorId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DetectorId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let Ok(id) = name.parse();
        Ok(id)
    }
}

/// Which tier of detection produced a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Patterns over normalised text; always on.
    Lexical,
    /// A linear model over hashed character and word n-grams, compiled into the binary.
    Ngram,
    /// Heads over a pretrained sentence encoder loaded from a local directory.
    #[serde(alias = "semantic")]
    Encoder,
    /// An OpenAI-compatible model asked to classify.
    Judge,
}

/// How grave a finding is. Ordered: `Low < Medium < High < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth recording; no action on its own.
    Low,
    /// Acts where a profile says so.
    Medium,
    /// Acts.
    High,
    /// Imminent danger (a plan, a time, means at hand).
    Critical,
}

/// A byte range `[start, end)` in the text the detector was given (not the normalised text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// One detector's verdict on one text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// Which detector (or operator category) fired.
    pub detector: DetectorId,
    /// Which side's text it read.
    pub side: Side,
    /// Which tier decided.
    pub tier: Tier,
    /// Confidence in `[0, 1]`.
    pub score: f32,
    /// How grave.
    pub severity: Severity,
    /// The rule or pattern that matched, for explanations (`crisis/en/passive-ideation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Where in the original text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
    /// Learned tiers: the threshold the score passed (per detector and language).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// Learned tiers: ids of the nearest labelled examples of the training corpus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

impl Finding {
    /// A finding with no spans and no rule name, for tests and for judges that give no spans.
    pub fn new(
        detector: DetectorId,
        side: Side,
        tier: Tier,
        score: f32,
        severity: Severity,
    ) -> Self {
        Self {
            detector,
            side,
            tier,
            score,
            severity,
            rule: None,
            spans: Vec::new(),
            threshold: None,
            examples: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_names_round_trip() {
        for d in DetectorId::BUILTIN {
            let Ok(back) = d.as_str().parse::<DetectorId>();
            assert_eq!(back, d);
            assert!(d.side().is_some());
        }
        let Ok(custom) = "gambling".parse::<DetectorId>();
        assert_eq!(custom, DetectorId::Custom("gambling".into()));
        assert_eq!(custom.side(), None);
    }

    #[test]
    fn finding_serialises_with_names() {
        let f = Finding::new(
            DetectorId::Crisis,
            Side::User,
            Tier::Lexical,
            0.9,
            Severity::High,
        );
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(
            json,
            r#"{"detector":"crisis","side":"user","tier":"lexical","score":0.9,"severity":"high"}"#
        );
        let back: Finding = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
    }
}
