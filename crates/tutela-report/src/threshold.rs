//! Usage thresholds from the profiles (CN Art. 22(3): 1,000,000 registered or 100,000 monthly
//! active users) evaluated against counts.

use tutela_profile::ProfileSet;

use crate::model::{Metric, ThresholdState, ThresholdStatus};

/// Evaluates every threshold in `set` against the counts. "Reaching or above" crosses.
pub fn evaluate_thresholds(
    set: &ProfileSet,
    registered_users: u64,
    monthly_active_users: u64,
) -> Vec<ThresholdStatus> {
    let mut out = Vec::new();
    for (p, o, t) in set.thresholds() {
        let pairs = [
            (
                Metric::RegisteredUsers,
                t.registered_users,
                registered_users,
            ),
            (
                Metric::MonthlyActiveUsers,
                t.monthly_active_users,
                monthly_active_users,
            ),
        ];
        for (metric, threshold, value) in pairs {
            let Some(threshold) = threshold.filter(|t| *t > 0) else {
                continue;
            };
            let ratio = value as f64 / threshold as f64;
            let state = if value >= threshold {
                ThresholdState::Crossed
            } else if ratio >= t.warn_ratio {
                ThresholdState::Warning
            } else {
                ThresholdState::Ok
            };
            out.push(ThresholdStatus {
                profile: p.id().to_owned(),
                obligation: o.id.clone(),
                article: o.article.clone(),
                article_zh: o.article_zh.clone(),
                title_zh: o.title_zh.clone(),
                metric,
                value,
                threshold,
                ratio,
                warn_ratio: t.warn_ratio,
                state,
                opens: t.opens.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cn_thresholds_warn_at_90_percent_and_cross_at_the_figure() {
        let reg = tutela_profile::Registry::builtin().unwrap();
        let set = reg.select(&["cn"]).unwrap();
        let at = |r, m| {
            evaluate_thresholds(&set, r, m)
                .into_iter()
                .map(|s| s.state)
                .collect::<Vec<_>>()
        };
        assert_eq!(at(0, 0), [ThresholdState::Ok, ThresholdState::Ok]);
        assert_eq!(
            at(899_999, 89_999),
            [ThresholdState::Ok, ThresholdState::Ok]
        );
        assert_eq!(
            at(900_000, 90_000),
            [ThresholdState::Warning, ThresholdState::Warning]
        );
        assert_eq!(
            at(1_000_000, 99_999),
            [ThresholdState::Crossed, ThresholdState::Warning]
        );
        assert_eq!(
            at(10, 100_000),
            [ThresholdState::Ok, ThresholdState::Crossed]
        );
        let s = &evaluate_thresholds(&set, 1, 1)[0];
        assert_eq!(s.article, "Art. 22(3)");
        assert_eq!(s.opens, "security_assessment");
    }

    #[test]
    fn jurisdictions_without_thresholds_have_none() {
        let reg = tutela_profile::Registry::builtin().unwrap();
        let set = reg.select(&["us-ca", "us-ny", "eu"]).unwrap();
        assert!(evaluate_thresholds(&set, 5_000_000, 5_000_000).is_empty());
    }
}
