//! The pattern data files (`data/*.toml`): their schema, the `{a|b}` template expansion, and
//! compilation of every file of one side into one [`Engine`](crate::engine::Engine).
//!
//! A data file holds the frames of one language (negation, hypothetical, fiction, academic,
//! past, subjects) and its rules. A rule fires when one of its `cues` matches, every group of
//! `needs` has a match in the same sentence, none of `unless` does, no `idioms` entry overlaps
//! the cue, and none of the frames it listens to applies. See `data/README.md`.

use serde::Deserialize;
use tutela_types::{DetectorId, Severity};

use crate::Lang;

/// One data file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LexFile {
    /// `en` or `zh`.
    pub lang: LangTag,
    /// Frames of this language; they apply to rules of every language (mixed text).
    #[serde(default)]
    pub frames: FramesDef,
    /// Idioms that silence any cue they overlap, whatever the rule.
    #[serde(default)]
    pub idioms: Vec<String>,
    /// The rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleDef>,
}

/// Language of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LangTag {
    /// English.
    En,
    /// Chinese.
    Zh,
}

impl LangTag {
    /// The rule language.
    pub fn lang(self) -> Lang {
        match self {
            LangTag::En => Lang::En,
            LangTag::Zh => Lang::Zh,
        }
    }
}

/// Words that change what a cue means.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramesDef {
    /// Negators; a cue right after one (same clause, at most three words between) is negated.
    #[serde(default)]
    pub negation: Vec<String>,
    /// "what if", "hypothetically": apply to the sentence and the next.
    #[serde(default)]
    pub hypothetical: Vec<String>,
    /// Fiction, role-play, lyrics, quotation: apply to the sentence and the next.
    #[serde(default)]
    pub fiction: Vec<String>,
    /// Research, news, statistics, medical information: apply to the sentence and the next.
    #[serde(default)]
    pub academic: Vec<String>,
    /// Past and resolved ("years ago", "used to"): apply to the sentence only.
    #[serde(default)]
    pub past: Vec<String>,
    /// First-person subjects.
    #[serde(default, rename = "self")]
    pub self_subject: Vec<String>,
    /// Third-person subjects (friend, mother, he, she, ...).
    #[serde(default)]
    pub third: Vec<String>,
    /// Words that contain a negator but do not negate what follows (`can't stop`, `受不了`).
    #[serde(default)]
    pub not_negation: Vec<String>,
}

/// Which frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// See [`FramesDef::negation`].
    Negation,
    /// See [`FramesDef::hypothetical`].
    Hypothetical,
    /// See [`FramesDef::fiction`].
    Fiction,
    /// See [`FramesDef::academic`].
    Academic,
    /// See [`FramesDef::past`].
    Past,
    /// See [`FramesDef::not_negation`].
    NotNegation,
}

impl FrameKind {
    /// Bit in a frame mask.
    pub fn bit(self) -> u8 {
        match self {
            FrameKind::Negation => 1,
            FrameKind::Hypothetical => 2,
            FrameKind::Fiction => 4,
            FrameKind::Academic => 8,
            FrameKind::Past => 16,
            FrameKind::NotNegation => 32,
        }
    }
}

/// Frames that carry from a sentence into the next one.
pub const CARRIED_FRAMES: u8 = 2 | 4 | 8;

/// Whose risk a cue speaks of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectMode {
    /// Not resolved: the rule's detector.
    #[default]
    Any,
    /// Resolved from the nearest subject: first person → the rule's detector,
    /// third person → `third_party`.
    Resolve,
    /// Fires only when the nearest subject is not third person (a parent speaking of a
    /// child's school is not a minor).
    SelfOnly,
}

/// One rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Short id, unique in its file; the finding's rule is `detector/lang/id`.
    pub id: String,
    /// Detector name (built-in, or `ctx_*` for context rules).
    pub detector: String,
    /// Severity of a finding from this rule.
    pub severity: Severity,
    /// Confidence of a finding from this rule.
    pub score: f32,
    /// Cue templates; any one matching fires the rule.
    pub cues: Vec<String>,
    /// Each inner list is a group; every group needs a match in the same sentence.
    #[serde(default)]
    pub needs: Vec<Vec<String>>,
    /// Any match in the sentence silences the rule.
    #[serde(default)]
    pub unless: Vec<String>,
    /// Idioms that silence a cue they overlap.
    #[serde(default)]
    pub idioms: Vec<String>,
    /// Frames that silence the rule (default: all of them).
    #[serde(default = "all_frames")]
    pub frames: Vec<FrameKind>,
    /// Subject resolution.
    #[serde(default)]
    pub subject: SubjectMode,
    /// Assistant side: the preceding user turn must have one of these labels.
    #[serde(default)]
    pub context: Vec<String>,
    /// Assistant side: the preceding user turn must have none of these labels.
    #[serde(default)]
    pub unless_context: Vec<String>,
}

fn all_frames() -> Vec<FrameKind> {
    vec![
        FrameKind::Negation,
        FrameKind::Hypothetical,
        FrameKind::Fiction,
        FrameKind::Academic,
        FrameKind::Past,
    ]
}

/// Errors in a pattern template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// `{` without `}` or the reverse.
    #[error("unbalanced braces in `{0}`")]
    Unbalanced(String),
    /// Too many expansions.
    #[error("`{0}` expands to more than {MAX_EXPANSIONS} literals")]
    TooMany(String),
}

/// Upper bound on the literals one template may expand to.
pub const MAX_EXPANSIONS: usize = 16_384;

/// Expands `{a|b|}` alternatives into literals (an empty alternative is allowed).
pub fn expand(template: &str) -> Result<Vec<String>, TemplateError> {
    let mut out = vec![String::new()];
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                for o in &mut out {
                    o.push_str(rest);
                }
                rest = "";
            }
            Some(i) if rest.as_bytes()[i] == b'}' => {
                return Err(TemplateError::Unbalanced(template.to_owned()));
            }
            Some(i) => {
                let lit = &rest[..i];
                let after = &rest[i + 1..];
                let Some(close) = after.find('}') else {
                    return Err(TemplateError::Unbalanced(template.to_owned()));
                };
                let group = &after[..close];
                if group.contains('{') {
                    return Err(TemplateError::Unbalanced(template.to_owned()));
                }
                let alts: Vec<&str> = group.split('|').collect();
                if out.len() * alts.len() > MAX_EXPANSIONS {
                    return Err(TemplateError::TooMany(template.to_owned()));
                }
                let mut next = Vec::with_capacity(out.len() * alts.len());
                for o in &out {
                    for a in &alts {
                        let mut s = o.clone();
                        s.push_str(lit);
                        s.push_str(a);
                        next.push(s);
                    }
                }
                out = next;
                rest = &after[close + 1..];
            }
        }
    }
    Ok(out
        .into_iter()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect())
}

/// Parses a detector name from a data file.
pub fn detector(name: &str) -> DetectorId {
    let Ok(id) = name.parse();
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_alternatives() {
        let mut v = expand("{i|i'm} going {to|} die").unwrap();
        v.sort();
        assert_eq!(
            v,
            [
                "i going die",
                "i going to die",
                "i'm going die",
                "i'm going to die"
            ]
        );
        assert!(expand("a {b").is_err());
        assert!(expand("a }b").is_err());
    }
}
