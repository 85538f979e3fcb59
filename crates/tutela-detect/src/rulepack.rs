//! Operator rule packs: categories of keywords and regexes, with side, language and severity,
//! in TOML. The caller reads the file; [`RulePack::parse`] checks everything and reports every
//! error at once, each with the file and line.
//!
//! ```toml
//! [pack]
//! name = "example-safety"
//! description = "What this pack is for."
//!
//! [[category]]
//! name = "pressure_to_spend"     # becomes DetectorId::Custom("pressure_to_spend")
//! side = "assistant"             # user | assistant | both
//! severity = "medium"            # low | medium | high | critical
//! score = 0.8                    # optional, default 0.8
//! lang = "any"                   # en | zh | any (default any)
//! keywords = ["buy me a gift", "充值"]  # normalised like the built-in cues; `*` at an end: no word boundary
//! regexes = ['(?i)\bsend (me )?\$\d+']   # Rust regex syntax, on the sentence, invisible characters removed
//! unless = ["gift card scam"]    # any of these in the sentence silences the category
//! frames = ["negation"]          # optional: negation, hypothetical, fiction, academic, past
//! ```

use std::fmt;

use serde::Deserialize;
use toml::Spanned;
use tutela_types::{DetectorId, Severity, Side};

use crate::Lang;
use crate::engine::{Rule, RuleInput};
use crate::lexicon::{FrameKind, SubjectMode};

/// One error in a rule pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulePackError {
    /// The source name the caller gave (usually the path).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RulePackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Every error found in a rule pack (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RulePackErrors(pub Vec<RulePackError>);

impl fmt::Display for RulePackErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    pack: PackHeader,
    #[serde(default)]
    category: Vec<CategoryDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackHeader {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryDef {
    name: Spanned<String>,
    side: Spanned<String>,
    severity: Spanned<String>,
    #[serde(default)]
    score: Option<Spanned<f32>>,
    #[serde(default)]
    lang: Option<Spanned<String>>,
    #[serde(default)]
    keywords: Vec<Spanned<String>>,
    #[serde(default)]
    regexes: Vec<Spanned<String>>,
    #[serde(default)]
    unless: Vec<Spanned<String>>,
    #[serde(default)]
    frames: Vec<Spanned<String>>,
}

/// A checked rule pack, ready for [`crate::Detectors::with_rule_packs`].
#[derive(Debug, Clone)]
pub struct RulePack {
    /// The pack's name.
    pub name: String,
    /// The pack's description.
    pub description: String,
    categories: Vec<Category>,
}

#[derive(Debug, Clone)]
struct Category {
    name: String,
    sides: Vec<Side>,
    severity: Severity,
    score: f32,
    lang: Lang,
    keywords: Vec<String>,
    regexes: Vec<String>,
    unless: Vec<String>,
    frames: u8,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |t| t.bytes().filter(|&b| b == b'\n').count() + 1)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl RulePack {
    /// Parses and checks a pack. `source` names it in errors (usually the path).
    pub fn parse(source: &str, text: &str) -> Result<Self, RulePackErrors> {
        let err = |line: usize, message: String| RulePackError {
            file: source.to_owned(),
            line,
            message,
        };
        let file: PackFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            RulePackErrors(vec![err(line, e.message().trim().to_owned())])
        })?;
        let mut errors = Vec::new();
        let at = |s: &std::ops::Range<usize>| line_of(text, s.start);
        if !is_name(file.pack.name.get_ref()) {
            errors.push(err(
                at(&file.pack.name.span()),
                format!(
                    "pack name `{}` must be lowercase letters, digits, `_` or `-`",
                    file.pack.name.get_ref()
                ),
            ));
        }
        let mut categories = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for c in file.category {
            let name = c.name.get_ref().clone();
            let line = at(&c.name.span());
            if !is_name(&name) {
                errors.push(err(
                    line,
                    format!("category name `{name}` must be lowercase letters, digits, `_` or `-`"),
                ));
            } else if name.parse::<DetectorId>().is_ok_and(|d| d.is_builtin())
                || name.starts_with("ctx_")
            {
                errors.push(err(
                    line,
                    format!("category `{name}` clashes with a built-in detector name"),
                ));
            } else if seen.contains(&name) {
                errors.push(err(line, format!("category `{name}` is defined twice")));
            }
            seen.push(name.clone());
            let sides = match c.side.get_ref().as_str() {
                "user" => vec![Side::User],
                "assistant" => vec![Side::Assistant],
                "both" => vec![Side::User, Side::Assistant],
                other => {
                    errors.push(err(
                        at(&c.side.span()),
                        format!("side `{other}` must be user, assistant or both"),
                    ));
                    Vec::new()
                }
            };
            let severity = match c.severity.get_ref().as_str() {
                "low" => Severity::Low,
                "medium" => Severity::Medium,
                "high" => Severity::High,
                "critical" => Severity::Critical,
                other => {
                    errors.push(err(
                        at(&c.severity.span()),
                        format!("severity `{other}` must be low, medium, high or critical"),
                    ));
                    Severity::Medium
                }
            };
            let score = match &c.score {
                Some(s) if !(0.0..=1.0).contains(s.get_ref()) => {
                    errors.push(err(
                        at(&s.span()),
                        format!("score {} must be between 0 and 1", s.get_ref()),
                    ));
                    0.8
                }
                Some(s) => *s.get_ref(),
                None => 0.8,
            };
            let lang = match c
                .lang
                .as_ref()
                .map(|l| (l.get_ref().as_str(), at(&l.span())))
            {
                None | Some(("any", _)) => Lang::Any,
                Some(("en", _)) => Lang::En,
                Some(("zh", _)) => Lang::Zh,
                Some((other, l)) => {
                    errors.push(err(l, format!("lang `{other}` must be en, zh or any")));
                    Lang::Any
                }
            };
            if c.keywords.is_empty() && c.regexes.is_empty() {
                errors.push(err(
                    line,
                    format!("category `{name}` has neither keywords nor regexes"),
                ));
            }
            for k in c.keywords.iter().chain(&c.unless) {
                if crate::normalize::normalize_pattern(k.get_ref().trim_matches('*')).is_empty() {
                    errors.push(err(at(&k.span()), "empty keyword".to_owned()));
                }
            }
            for r in &c.regexes {
                if let Err(e) = regex::Regex::new(r.get_ref()) {
                    let msg = e.to_string().lines().last().unwrap_or("").trim().to_owned();
                    errors.push(err(
                        at(&r.span()),
                        format!("bad regex `{}`: {msg}", r.get_ref()),
                    ));
                }
            }
            let mut frames = 0u8;
            for f in &c.frames {
                let kind = match f.get_ref().as_str() {
                    "negation" => FrameKind::Negation,
                    "hypothetical" => FrameKind::Hypothetical,
                    "fiction" => FrameKind::Fiction,
                    "academic" => FrameKind::Academic,
                    "past" => FrameKind::Past,
                    other => {
                        errors.push(err(
                            at(&f.span()),
                            format!("frame `{other}` must be negation, hypothetical, fiction, academic or past"),
                        ));
                        continue;
                    }
                };
                frames |= kind.bit();
            }
            categories.push(Category {
                name,
                sides,
                severity,
                score,
                lang,
                keywords: c.keywords.into_iter().map(Spanned::into_inner).collect(),
                regexes: c.regexes.into_iter().map(Spanned::into_inner).collect(),
                unless: c.unless.into_iter().map(Spanned::into_inner).collect(),
                frames,
            });
        }
        if !errors.is_empty() {
            return Err(RulePackErrors(errors));
        }
        Ok(Self {
            name: file.pack.name.into_inner(),
            description: file.pack.description,
            categories,
        })
    }

    /// The category names this pack defines.
    pub fn categories(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(|c| c.name.as_str())
    }

    pub(crate) fn into_inputs(self) -> Vec<(Side, RuleInput)> {
        let mut out = Vec::new();
        for c in self.categories {
            for &side in &c.sides {
                out.push((
                    side,
                    RuleInput {
                        rule: Rule {
                            name: format!("{}/{}", self.name, c.name),
                            detector: DetectorId::Custom(c.name.clone()),
                            severity: c.severity,
                            score: c.score,
                            lang: c.lang,
                            frames: c.frames,
                            subject: SubjectMode::Any,
                            need_groups: 0,
                            context: Vec::new(),
                            unless_context: Vec::new(),
                        },
                        cues: c.keywords.clone(),
                        needs: Vec::new(),
                        unless: c.unless.clone(),
                        idioms: Vec::new(),
                        regexes: c.regexes.clone(),
                        templates: false,
                    },
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_error_with_its_line() {
        let text = "[pack]\nname = \"p\"\n\n[[category]]\nname = \"crisis\"\nside = \"left\"\nseverity = \"huge\"\nregexes = [\"(\"]\n";
        let errs = RulePack::parse("p.toml", text).unwrap_err().0;
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [5, 6, 7, 8], "{errs:?}");
        assert!(errs[0].to_string().starts_with("p.toml:5: "));
    }

    #[test]
    fn syntax_errors_have_lines() {
        let errs = RulePack::parse("p.toml", "[pack]\nname = \"p\"\nbogus = 1\n")
            .unwrap_err()
            .0;
        assert_eq!(errs[0].line, 3, "{errs:?}");
    }
}
