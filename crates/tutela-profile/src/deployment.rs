//! Deployment-time duties: what the selected profiles forbid or require of the product as the
//! operator declares it (`tutela profiles check-deployment FILE`). These are the duties that
//! are not decided per message: no points systems for minors, parental tools exist, a local
//! representative above a threshold, a persistent AI disclosure in the interface.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::model::{Alternative, Covers, Feature, Figure, Obligation, Profile};
use crate::registry::ProfileSet;

/// The operator's declaration of their product, as written in a deployment file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    /// Profiles or aliases that apply to the deployment (`us-ct`, `kr`, ...).
    pub profiles: Vec<String>,
    /// Whether minors can use the product; assumed unless declared otherwise. Under "reason to
    /// believe" laws a product minors can reach serves minors.
    #[serde(default = "yes")]
    pub serves_minors: bool,
    /// The features the product has.
    #[serde(default)]
    pub features: BTreeSet<Feature>,
    /// Figures about the deployment (users, revenue) that thresholds compare against.
    #[serde(default)]
    pub figures: BTreeMap<Figure, u64>,
}

fn yes() -> bool {
    true
}

/// A deployment file that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct DeclarationError {
    line: Option<usize>,
    message: String,
}

impl Declaration {
    /// Parses a deployment file; unknown keys and features are errors.
    pub fn parse(text: &str) -> Result<Declaration, DeclarationError> {
        toml::from_str(text).map_err(|e| DeclarationError {
            line: e
                .span()
                .map(|s| text.get(..s.start).map_or(0, |t| t.matches('\n').count()) + 1),
            message: e.message().trim().to_owned(),
        })
    }
}

/// What one deployment-time duty says about the declared product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing forbidden is present and everything required is.
    Met,
    /// Met another way the law allows, which the deployment declares.
    MetBy(Alternative),
    /// Forbidden features the product declares.
    Forbidden(Vec<Feature>),
    /// Required features the product does not declare.
    Missing(Vec<Feature>),
    /// The duty does not apply, and why.
    NotApplicable(String),
    /// Cannot be decided from the declaration, and what to declare.
    Undecided(String),
}

impl Verdict {
    /// Whether this verdict needs the operator to act.
    pub fn fails(&self) -> bool {
        matches!(self, Verdict::Forbidden(_) | Verdict::Missing(_))
    }
}

/// One line of the check: a duty of a profile and its verdict.
#[derive(Clone, Debug)]
pub struct Checked<'a> {
    /// The profile.
    pub profile: &'a Profile,
    /// The duty.
    pub obligation: &'a Obligation,
    /// The verdict.
    pub verdict: Verdict,
}

/// Checks a declaration against the deployment-time duties of `set`: every duty with a
/// `[obligation.deployment]` table, and every duty a declared alternative meets.
pub fn check_deployment<'a>(set: &'a ProfileSet, d: &Declaration) -> Vec<Checked<'a>> {
    let mut out = Vec::new();
    for p in set.profiles() {
        for o in p.obligations() {
            let alternative = o.alternatives.iter().copied().find(|a| match a {
                Alternative::PersistentAiDisclosure => {
                    d.features.contains(&Feature::PersistentAiDisclosure)
                }
            });
            let verdict = match (&o.deployment, alternative) {
                (None, Some(a)) => Verdict::MetBy(a),
                (None, None) => continue,
                (Some(duty), _) => {
                    let minors_only = matches!(o.covers, Covers::Minors | Covers::KnownMinors);
                    if minors_only && !d.serves_minors {
                        Verdict::NotApplicable("the deployment declares it serves no minors".into())
                    } else {
                        match applies(&duty.when_any_at_least, &d.figures) {
                            Some(Err(missing)) => Verdict::Undecided(missing),
                            Some(Ok(false)) => Verdict::NotApplicable(
                                "the declared figures are below every threshold".into(),
                            ),
                            None | Some(Ok(true)) => {
                                let forbidden: Vec<Feature> = duty
                                    .forbids
                                    .iter()
                                    .copied()
                                    .filter(|f| d.features.contains(f))
                                    .collect();
                                let missing: Vec<Feature> = duty
                                    .requires
                                    .iter()
                                    .copied()
                                    .filter(|f| !d.features.contains(f))
                                    .collect();
                                if !forbidden.is_empty() {
                                    Verdict::Forbidden(forbidden)
                                } else if !missing.is_empty() {
                                    Verdict::Missing(missing)
                                } else {
                                    Verdict::Met
                                }
                            }
                        }
                    }
                }
            };
            out.push(Checked {
                profile: p,
                obligation: o,
                verdict,
            });
        }
    }
    out
}

/// `None`: no threshold; `Some(Ok(reached))`; `Some(Err(..))`: a figure is not declared and
/// none of the declared ones reaches its threshold.
fn applies(
    thresholds: &BTreeMap<Figure, u64>,
    figures: &BTreeMap<Figure, u64>,
) -> Option<Result<bool, String>> {
    if thresholds.is_empty() {
        return None;
    }
    let mut undeclared = Vec::new();
    for (figure, at_least) in thresholds {
        match figures.get(figure) {
            Some(v) if v >= at_least => return Some(Ok(true)),
            Some(_) => {}
            None => undeclared.push(name(figure)),
        }
    }
    if undeclared.is_empty() {
        Some(Ok(false))
    } else {
        Some(Err(format!(
            "declare `{}` in `[figures]`",
            undeclared.join("`, `")
        )))
    }
}

/// The stable (snake_case) name of a feature, figure or alternative.
pub fn name<T: serde::Serialize>(v: &T) -> String {
    toml::Value::try_from(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code fails loudly")]

    use super::*;
    use crate::Registry;

    fn declared(text: &str) -> Declaration {
        toml::from_str(text).unwrap()
    }

    fn verdicts(d: &Declaration) -> Vec<(String, Verdict)> {
        let reg = Registry::builtin().unwrap();
        let set = reg.select(&d.profiles).unwrap();
        check_deployment(&set, d)
            .into_iter()
            .map(|c| (format!("{}/{}", c.profile.id(), c.obligation.id), c.verdict))
            .collect()
    }

    #[test]
    fn points_for_minors_are_forbidden_and_parental_tools_required() {
        let d = declared(
            r#"profiles = ["us-ne"]
features = ["points_or_rewards"]"#,
        );
        let v = verdicts(&d);
        assert!(v.contains(&(
            "us-ne-lb525/minor-no-rewards".into(),
            Verdict::Forbidden(vec![Feature::PointsOrRewards])
        )));
        assert!(v.contains(&(
            "us-ne-lb525/parental-tools".into(),
            Verdict::Missing(vec![Feature::ParentalTools])
        )));
        let d = declared(
            r#"profiles = ["us-ne"]
serves_minors = false
features = ["points_or_rewards", "parental_tools", "persistent_ai_disclosure"]"#,
        );
        let v = verdicts(&d);
        assert!(v.iter().all(|(_, v)| !v.fails()), "{v:?}");
        assert!(v.contains(&(
            "us-ne-lb525/minor-ai-disclosure".into(),
            Verdict::MetBy(Alternative::PersistentAiDisclosure)
        )));
    }

    #[test]
    fn thresholds_decide_whether_a_duty_applies() {
        let rep = |figures: &str| {
            verdicts(&declared(&format!(
                "profiles = [\"kr\"]\nfeatures = [\"export_watermark\"]\n[figures]\n{figures}"
            )))
            .into_iter()
            .find(|(k, _)| k == "kr-ai-basic-act/local-representative")
            .unwrap()
            .1
        };
        assert_eq!(
            rep("kr_daily_users = 1000000"),
            Verdict::Missing(vec![Feature::LocalRepresentative])
        );
        assert!(matches!(
            rep("kr_daily_users = 10\nglobal_revenue_krw = 5\nkr_sales_krw = 5"),
            Verdict::NotApplicable(_)
        ));
        assert!(matches!(rep("kr_daily_users = 10"), Verdict::Undecided(_)));
    }

    #[test]
    fn unknown_keys_and_features_are_errors() {
        assert!(Declaration::parse("profiles = []\nfeatures = [\"nope\"]").is_err());
        let err = Declaration::parse("profiles = []\nminors = true").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 2: unknown field `minors`"),
            "{err}"
        );
    }
}
