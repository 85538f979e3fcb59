//! Small reports with every field filled, for the schema and rendering tests.

use std::collections::BTreeMap;

use tutela_report::model::{
    Appeals, AssessmentItem, Bucket, DayUsage, DetectionTier, DetectorTierRow, Figure,
    InterventionRow, ItemSource, Meta, MonthActive, OverBlocking, TierAppeals, TierFigures,
    TierSummary,
};
use tutela_report::{
    AssessmentReport, ReferralReport, Report, ReportKind, Sb243Report, TransparencyReport,
    UsageReport, evaluate_thresholds,
};

fn meta(kind: ReportKind) -> Meta {
    Meta {
        kind,
        title: format!("Sample {} report", kind.as_str()),
        generated_at: "2026-11-26T10:00:00Z".into(),
        from: "2026-09-01".into(),
        to: "2026-10-31".into(),
        time_zone: "+08:00".into(),
        deployment: "demo".into(),
        profiles: vec!["cn-anthropomorphic-2026".into()],
        profile_snapshot: "abc123".into(),
        test_turns_excluded: 12,
    }
}

pub fn usage() -> UsageReport {
    let reg = tutela_profile::Registry::builtin().unwrap();
    let set = reg.select(&["cn"]).unwrap();
    UsageReport {
        meta: meta(ReportKind::Usage),
        registered_users: 1_000_123,
        registered_by_jurisdiction: BTreeMap::from([
            ("cn".into(), 1_000_000),
            ("us-ca".into(), 123),
        ]),
        monthly_active: vec![
            MonthActive {
                month: "2026-09".into(),
                total: 91_000,
                by_jurisdiction: BTreeMap::from([("cn".into(), 91_000)]),
            },
            MonthActive {
                month: "2026-10".into(),
                total: 95_500,
                by_jurisdiction: BTreeMap::from([("cn".into(), 95_500)]),
            },
        ],
        daily_usage: vec![DayUsage {
            day: "2026-10-01".into(),
            minutes: 123_456,
            seconds: 7_407_360,
            users: 40_000,
        }],
        age_structure: BTreeMap::from([
            ("unknown".into(), 900_000),
            ("known_minor".into(), 100_123),
        ]),
        session_durations: vec![
            Bucket {
                label: "≤ 5 min".into(),
                count: 10,
            },
            Bucket {
                label: "> 2 h".into(),
                count: 2,
            },
        ],
        session_median_minutes: 12.5,
        thresholds: evaluate_thresholds(&set, 1_000_123, 95_500),
    }
}

/// Per-tier figures with every field filled (an open appeal, a decided one, a tier without
/// decided appeals, an intervention with no finding).
pub fn tiers() -> TierFigures {
    let appeals = |received, upheld, rejected, open, upheld_rate| TierAppeals {
        received,
        upheld,
        rejected,
        open,
        upheld_rate,
    };
    TierFigures {
        by_tier: vec![
            TierSummary {
                tier: DetectionTier::Lexical,
                findings: 12,
                interventions: 5,
                interventions_by_kind: BTreeMap::from([("replace_reply".into(), 5)]),
                appeals: appeals(3, 1, 2, 0, Some(1.0 / 3.0)),
            },
            TierSummary {
                tier: DetectionTier::Ngram,
                findings: 4,
                interventions: 2,
                interventions_by_kind: BTreeMap::from([("replace_reply".into(), 2)]),
                appeals: appeals(1, 0, 0, 1, None),
            },
            TierSummary {
                tier: DetectionTier::Encoder,
                findings: 0,
                interventions: 0,
                interventions_by_kind: BTreeMap::new(),
                appeals: TierAppeals::default(),
            },
            TierSummary {
                tier: DetectionTier::Judge,
                findings: 0,
                interventions: 0,
                interventions_by_kind: BTreeMap::new(),
                appeals: TierAppeals::default(),
            },
            TierSummary {
                tier: DetectionTier::NoFinding,
                findings: 0,
                interventions: 9,
                interventions_by_kind: BTreeMap::from([("notice".into(), 9)]),
                appeals: TierAppeals::default(),
            },
        ],
        by_detector: vec![
            DetectorTierRow {
                detector: None,
                tier: DetectionTier::NoFinding,
                findings: 0,
                interventions: 9,
                appeals: TierAppeals::default(),
            },
            DetectorTierRow {
                detector: Some("crisis".into()),
                tier: DetectionTier::Lexical,
                findings: 12,
                interventions: 5,
                appeals: appeals(3, 1, 2, 0, Some(1.0 / 3.0)),
            },
            DetectorTierRow {
                detector: Some("crisis".into()),
                tier: DetectionTier::Ngram,
                findings: 4,
                interventions: 2,
                appeals: appeals(1, 0, 0, 1, None),
            },
        ],
    }
}

pub fn all() -> Vec<Report> {
    vec![
        Report::Usage(usage()),
        Report::Referrals(ReferralReport {
            meta: meta(ReportKind::Referrals),
            jurisdiction: "us-or".into(),
            duty: "Oregon SB 1546 (d): yearly public report of crisis-referral counts".into(),
            calendar_year: 2027,
            referral_notifications: 17,
            follow_ups: Some(15),
            protocol: "Every user message is checked; a crisis interrupts the conversation.".into(),
        }),
        Report::Sb243(Sb243Report {
            meta: meta(ReportKind::Sb243),
            calendar_year: 2026,
            referral_notifications: 42,
            detection_protocol: "Every user message is checked.".into(),
            prohibition_protocol: "Replies are checked before release.".into(),
            measurement_method: "Labelled sets, recall and precision.".into(),
        }),
        Report::Transparency(TransparencyReport {
            meta: meta(ReportKind::Transparency),
            totals_by_kind: BTreeMap::from([("replace_reply".into(), 7)]),
            interventions: vec![InterventionRow {
                month: "2026-10".into(),
                jurisdiction: "us-ca".into(),
                rule: "us-ca-sb243/crisis-protocol".into(),
                kind: "replace_reply".into(),
                count: 7,
            }],
            appeals: Appeals {
                received: 3,
                upheld: 1,
                rejected: 1,
                open: 1,
                within_time_limit: 2,
                time_limit_hours: 72,
            },
            over_blocking: vec![OverBlocking {
                measured_on: "hard negatives".into(),
                negatives: 100,
                false_positives: 2,
                rate: 0.02,
            }],
            tiers: tiers(),
        }),
        Report::Assessment(Box::new(AssessmentReport {
            meta: meta(ReportKind::Assessment),
            triggers: vec!["registered users crossed 1,000,000".into()],
            triggers_zh: vec!["注册用户数 1,000,000 已达到阈值 1,000,000".into()],
            items: vec![
                AssessmentItem {
                    id: "user-scale".into(),
                    article: "Art. 23".into(),
                    title: "User scale".into(),
                    source: ItemSource::Compiled,
                    figures: vec![Figure {
                        label: "Registered".into(),
                        value: "1,000,123".into(),
                    }],
                    note: "From the store.".into(),
                },
                AssessmentItem {
                    id: "safeguards".into(),
                    article: "Art. 23".into(),
                    title: "Safeguards".into(),
                    source: ItemSource::NeedsHumanInput,
                    figures: vec![],
                    note: "Describe the management systems.".into(),
                },
            ],
            usage: usage(),
        })),
    ]
}
