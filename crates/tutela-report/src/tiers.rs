//! Per-tier figures of the transparency report: findings and interventions by detector and
//! detection tier, and over-blocking (appeals decided for the user) split by the tier of the
//! finding that caused the intervention appealed against.

use std::collections::BTreeMap;

use tutela_store::{AppealTierCount, FindingTierCount, InterventionTierCount};
use tutela_types::Tier;

use crate::model::{DetectionTier, DetectorTierRow, TierAppeals, TierFigures, TierSummary};

/// How an appeal stands, by the report's one definition (also used for [`crate::model::Appeals`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Not yet decided.
    Open,
    /// Decided for the user (`upheld` or `overturned`): the intervention was wrong.
    Upheld,
    /// Decided against the user (any other outcome).
    Rejected,
}

/// The outcome of a complaint's stored outcome.
pub(crate) fn outcome(stored: Option<&str>) -> Outcome {
    match stored {
        None => Outcome::Open,
        Some("upheld" | "overturned") => Outcome::Upheld,
        Some(_) => Outcome::Rejected,
    }
}

impl TierAppeals {
    fn add(&mut self, o: Outcome, n: u64) {
        self.received += n;
        match o {
            Outcome::Open => self.open += n,
            Outcome::Upheld => self.upheld += n,
            Outcome::Rejected => self.rejected += n,
        }
    }

    fn merge(&mut self, other: &TierAppeals) {
        self.received += other.received;
        self.upheld += other.upheld;
        self.rejected += other.rejected;
        self.open += other.open;
    }

    fn finish(&mut self) {
        let decided = self.upheld + self.rejected;
        self.upheld_rate = (decided > 0).then(|| self.upheld as f64 / decided as f64);
    }
}

/// The tier an intervention or appeal is attributed to.
fn attribute(detector: Option<&String>, tier: Option<Tier>) -> DetectionTier {
    match (detector, tier) {
        (None, _) => DetectionTier::NoFinding,
        (Some(_), None) => DetectionTier::NotRecorded,
        (Some(_), Some(t)) => t.into(),
    }
}

fn row(detector: Option<String>, tier: DetectionTier) -> DetectorTierRow {
    DetectorTierRow {
        detector,
        tier,
        findings: 0,
        interventions: 0,
        appeals: TierAppeals::default(),
    }
}

/// The per-tier figures from the store's counts. No figure holds anything but detector names,
/// tier names, action kinds and counts.
pub(crate) fn figures(
    findings: &[FindingTierCount],
    interventions: &[InterventionTierCount],
    appeals: &[AppealTierCount],
) -> TierFigures {
    let mut rows: BTreeMap<(Option<String>, DetectionTier), DetectorTierRow> = BTreeMap::new();
    let mut by_kind: BTreeMap<DetectionTier, BTreeMap<String, u64>> = BTreeMap::new();
    for f in findings {
        let tier = DetectionTier::from(f.tier);
        let key = (Some(f.detector.clone()), tier);
        rows.entry(key.clone())
            .or_insert_with(|| row(key.0, tier))
            .findings += f.count;
    }
    for i in interventions {
        let tier = attribute(i.detector.as_ref(), i.tier);
        let key = (i.detector.clone(), tier);
        rows.entry(key.clone())
            .or_insert_with(|| row(key.0, tier))
            .interventions += i.count;
        *by_kind
            .entry(tier)
            .or_default()
            .entry(i.kind.clone())
            .or_default() += i.count;
    }
    for a in appeals {
        let tier = attribute(a.detector.as_ref(), a.tier);
        let key = (a.detector.clone(), tier);
        rows.entry(key.clone())
            .or_insert_with(|| row(key.0, tier))
            .appeals
            .add(outcome(a.outcome.as_deref()), a.count);
    }

    let mut tiers: BTreeMap<DetectionTier, TierSummary> = DetectionTier::TIERS
        .iter()
        .map(|t| {
            (
                *t,
                TierSummary {
                    tier: *t,
                    findings: 0,
                    interventions: 0,
                    interventions_by_kind: BTreeMap::new(),
                    appeals: TierAppeals::default(),
                },
            )
        })
        .collect();
    for r in rows.values_mut() {
        r.appeals.finish();
        let s = tiers.entry(r.tier).or_insert_with(|| TierSummary {
            tier: r.tier,
            findings: 0,
            interventions: 0,
            interventions_by_kind: BTreeMap::new(),
            appeals: TierAppeals::default(),
        });
        s.findings += r.findings;
        s.interventions += r.interventions;
        s.appeals.merge(&r.appeals);
    }
    for s in tiers.values_mut() {
        s.interventions_by_kind = by_kind.remove(&s.tier).unwrap_or_default();
        s.appeals.finish();
    }
    TierFigures {
        by_tier: tiers.into_values().collect(),
        by_detector: rows.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(detector: &str, tier: Tier, count: u64) -> FindingTierCount {
        FindingTierCount {
            detector: detector.into(),
            tier,
            count,
        }
    }

    fn i(
        kind: &str,
        detector: Option<&str>,
        tier: Option<Tier>,
        count: u64,
    ) -> InterventionTierCount {
        InterventionTierCount {
            kind: kind.into(),
            detector: detector.map(str::to_owned),
            tier,
            count,
        }
    }

    fn a(
        detector: Option<&str>,
        tier: Option<Tier>,
        outcome: Option<&str>,
        count: u64,
    ) -> AppealTierCount {
        AppealTierCount {
            detector: detector.map(str::to_owned),
            tier,
            outcome: outcome.map(str::to_owned),
            count,
        }
    }

    #[test]
    fn outcomes_follow_the_report_definition() {
        assert_eq!(outcome(None), Outcome::Open);
        assert_eq!(outcome(Some("upheld")), Outcome::Upheld);
        assert_eq!(outcome(Some("overturned")), Outcome::Upheld);
        assert_eq!(outcome(Some("rejected")), Outcome::Rejected);
        assert_eq!(outcome(Some("answered")), Outcome::Rejected);
    }

    #[test]
    fn figures_split_interventions_and_over_blocking_by_tier() {
        let findings = [
            f("crisis", Tier::Lexical, 10),
            f("crisis", Tier::Ngram, 4),
            f("sexual", Tier::Encoder, 2),
        ];
        let interventions = [
            i("replace_reply", Some("crisis"), Some(Tier::Lexical), 6),
            i("escalate", Some("crisis"), Some(Tier::Lexical), 6),
            i("replace_reply", Some("crisis"), Some(Tier::Ngram), 3),
            i("block_output", Some("sexual"), Some(Tier::Encoder), 1),
            i("notice", None, None, 40),
            i("replace_reply", Some("crisis"), None, 2),
        ];
        let appeals = [
            a(Some("crisis"), Some(Tier::Lexical), Some("rejected"), 3),
            a(Some("crisis"), Some(Tier::Lexical), Some("upheld"), 1),
            a(Some("crisis"), Some(Tier::Ngram), Some("overturned"), 2),
            a(Some("crisis"), Some(Tier::Ngram), None, 1),
            a(None, None, Some("answered"), 1),
        ];
        let t = figures(&findings, &interventions, &appeals);
        let tiers: Vec<DetectionTier> = t.by_tier.iter().map(|s| s.tier).collect();
        assert_eq!(
            tiers,
            [
                DetectionTier::Lexical,
                DetectionTier::Ngram,
                DetectionTier::Encoder,
                DetectionTier::Judge,
                DetectionTier::NoFinding,
                DetectionTier::NotRecorded,
            ]
        );
        let lex = &t.by_tier[0];
        assert_eq!((lex.findings, lex.interventions), (10, 12));
        assert_eq!(
            lex.interventions_by_kind,
            BTreeMap::from([("escalate".into(), 6), ("replace_reply".into(), 6)])
        );
        assert_eq!(
            lex.appeals,
            TierAppeals {
                received: 4,
                upheld: 1,
                rejected: 3,
                open: 0,
                upheld_rate: Some(0.25),
            }
        );
        let ngram = &t.by_tier[1];
        assert_eq!(
            (
                ngram.appeals.upheld,
                ngram.appeals.open,
                ngram.appeals.upheld_rate
            ),
            (2, 1, Some(1.0))
        );
        // No appeal decided: no rate.
        assert_eq!(t.by_tier[2].appeals.upheld_rate, None);
        assert_eq!(t.by_tier[3].interventions, 0);
        assert_eq!(t.by_tier[4].interventions, 40);
        assert_eq!(t.by_tier[4].appeals.rejected, 1);
        assert_eq!(t.by_tier[5].interventions, 2);

        // Every intervention and appeal is attributed to exactly one tier.
        let total: u64 = interventions.iter().map(|x| x.count).sum();
        assert_eq!(
            t.by_tier.iter().map(|s| s.interventions).sum::<u64>(),
            total
        );
        assert_eq!(
            t.by_detector.iter().map(|r| r.interventions).sum::<u64>(),
            total
        );
        assert_eq!(t.by_tier.iter().map(|s| s.appeals.received).sum::<u64>(), 8);
        assert_eq!(t.by_tier.iter().map(|s| s.findings).sum::<u64>(), 16);

        let keys: Vec<(Option<&str>, DetectionTier)> = t
            .by_detector
            .iter()
            .map(|r| (r.detector.as_deref(), r.tier))
            .collect();
        assert_eq!(
            keys,
            [
                (None, DetectionTier::NoFinding),
                (Some("crisis"), DetectionTier::Lexical),
                (Some("crisis"), DetectionTier::Ngram),
                (Some("crisis"), DetectionTier::NotRecorded),
                (Some("sexual"), DetectionTier::Encoder),
            ]
        );
    }

    #[test]
    fn an_empty_period_lists_the_four_tiers_at_zero() {
        let t = figures(&[], &[], &[]);
        assert_eq!(t.by_tier.len(), 4);
        assert!(t.by_detector.is_empty());
        assert!(
            t.by_tier.iter().all(|s| s.findings == 0
                && s.interventions == 0
                && s.appeals.upheld_rate.is_none())
        );
    }
}
