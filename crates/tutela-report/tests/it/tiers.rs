//! The transparency report's per-tier figures compiled from a store (issue #11): interventions
//! and findings by detector and tier, over-blocking (appeals decided for the user) by the tier
//! of the finding behind the intervention, in every format, with no identifier or text.

use tutela_report::compile::{self, Options, Period, parse_day};
use tutela_report::model::DetectionTier;
use tutela_report::{Format, Report, ReportKind, schema};
use tutela_store::{
    AuditEntry, AuditKind, AuditPayload, Intervention, NewComplaint, NewEscalation, Registration,
    Store,
};
use tutela_types::{
    Action, DetectorId, Finding, NoticeContent, Reason, ReplyTemplate, Severity, Side, Tier,
    Timestamp,
};

const USER: &str = "user-7731-secret";
const TEXT: &str = "SECRET-CHAT-TEXT i only said i was tired";

pub(crate) fn at(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn finding(tier: Tier) -> Finding {
    let mut f = Finding::new(DetectorId::Crisis, Side::User, tier, 0.91, Severity::High);
    f.rule = Some("crisis/en/passive-ideation".into());
    f.examples = vec!["corpus-example-0042".into()];
    f.threshold = Some(0.42);
    f
}

fn intervention(
    action: Action,
    detector: Option<&str>,
    audit_seq: Option<i64>,
    when: Timestamp,
) -> Intervention {
    Intervention {
        id: 0,
        at: when,
        user_id: Some(USER.into()),
        session_id: Some(format!("{USER}-session")),
        jurisdiction: "cn".into(),
        detector: detector.map(str::to_owned),
        side: Some(Side::User),
        action,
        reasons: vec![Reason {
            profile: "cn-anthropomorphic-2026".into(),
            obligation: "crisis-reply".into(),
            article: "Art. 13".into(),
        }],
        audit_seq,
    }
}

/// The report options and period the tests compile the filled store with: the demo
/// deployment, October 2026, at UTC+8.
pub(crate) fn october() -> (Options, Period) {
    let options = Options {
        utc_offset_minutes: 480,
        deployment: "demo".into(),
        registration: Registration::FirstSeen,
        complaint_time_limit_hours: 72,
        generated_at: at("2026-11-01T00:00:00Z"),
    };
    let period = Period {
        from: parse_day("2026-10-01").unwrap(),
        to: parse_day("2026-10-31").unwrap(),
    };
    (options, period)
}

pub(crate) async fn filled_store() -> Store {
    let store = Store::open_in_memory().await.unwrap();
    let when = at("2026-10-05T12:00:00Z");
    let entry = |findings: Vec<Finding>, kind| AuditEntry {
        at: when,
        kind,
        user: Some(USER.into()),
        session: Some(format!("{USER}-session")),
        jurisdiction: Some("cn".into()),
        payload: AuditPayload {
            findings,
            ..AuditPayload::default()
        },
        profile_hash: "snapshot".into(),
        content_hash: Some(store.pseudonyms().content_hash(TEXT)),
    };
    // The lexical and the n-gram tier found the same crisis; the n-gram finding is the last of
    // the gravest, so the intervention is the n-gram tier's.
    let seq = store
        .audit()
        .append_durable(&entry(
            vec![finding(Tier::Lexical), finding(Tier::Ngram)],
            AuditKind::Intervention,
        ))
        .await
        .unwrap()
        .seq;
    let lexical_seq = store
        .audit()
        .append_durable(&entry(
            vec![finding(Tier::Lexical)],
            AuditKind::Intervention,
        ))
        .await
        .unwrap()
        .seq;
    store
        .audit()
        .append_durable(&entry(vec![finding(Tier::Encoder)], AuditKind::Turn))
        .await
        .unwrap();
    let replace = Action::ReplaceReply {
        template: ReplyTemplate::CrisisSupport,
        resources: true,
    };
    let ids = store
        .interventions()
        .record_interventions(&[
            intervention(replace.clone(), Some("crisis"), Some(seq), when),
            intervention(replace.clone(), Some("crisis"), Some(lexical_seq), when),
            intervention(replace, Some("crisis"), Some(lexical_seq), when),
            intervention(
                Action::Notice {
                    contents: vec![NoticeContent::AiIdentity],
                    continuous_minutes: 0,
                },
                None,
                None,
                when,
            ),
        ])
        .await
        .unwrap();
    appeal(&store, ids[0], Some("overturned"), when).await;
    appeal(&store, ids[1], Some("rejected"), when).await;
    appeal(&store, ids[2], None, when).await;
    store
}

async fn appeal(store: &Store, id: i64, outcome: Option<&str>, when: Timestamp) {
    let c = store.complaints();
    let k = c
        .file_complaint(&NewComplaint {
            user_id: Some(USER.into()),
            category: "appeal".into(),
            intervention_id: Some(id),
            body: Some(TEXT.into()),
            at: when.plus_secs(60),
            handling_limit_secs: 72 * 3600,
        })
        .await
        .unwrap();
    if let Some(o) = outcome {
        c.resolve_complaint(k.id, o, when.plus_secs(3600))
            .await
            .unwrap();
    }
}

async fn compiled() -> (Store, tutela_report::TransparencyReport) {
    let store = filled_store().await;
    let reg = tutela_profile::Registry::builtin().unwrap();
    let set = reg.select(&["cn"]).unwrap();
    let (options, period) = october();
    let r = compile::transparency(store.backend(), &set, period, &options, Vec::new())
        .await
        .unwrap();
    (store, r)
}

#[tokio::test]
async fn the_transparency_report_splits_interventions_and_over_blocking_by_tier() {
    let (_store, r) = compiled().await;
    let t = &r.tiers;
    let tier = |k: DetectionTier| t.by_tier.iter().find(|s| s.tier == k).unwrap();

    // Findings: one lexical finding in each intervention record, one n-gram, one encoder.
    assert_eq!(tier(DetectionTier::Lexical).findings, 2);
    assert_eq!(tier(DetectionTier::Ngram).findings, 1);
    assert_eq!(tier(DetectionTier::Encoder).findings, 1);
    assert_eq!(tier(DetectionTier::Judge).findings, 0);

    // Interventions, each under one tier; the totals agree with the report's own.
    assert_eq!(tier(DetectionTier::Ngram).interventions, 1);
    assert_eq!(tier(DetectionTier::Lexical).interventions, 2);
    assert_eq!(tier(DetectionTier::NoFinding).interventions, 1);
    let by_tier: u64 = t.by_tier.iter().map(|s| s.interventions).sum();
    assert_eq!(by_tier, r.totals_by_kind.values().sum::<u64>());
    assert!(
        !t.by_tier
            .iter()
            .any(|s| s.tier == DetectionTier::NotRecorded)
    );

    // Over-blocking by tier, with the report's definition of a decision for the user.
    let ngram = &tier(DetectionTier::Ngram).appeals;
    assert_eq!(
        (ngram.received, ngram.upheld, ngram.upheld_rate),
        (1, 1, Some(1.0))
    );
    let lexical = &tier(DetectionTier::Lexical).appeals;
    assert_eq!(
        (
            lexical.received,
            lexical.rejected,
            lexical.open,
            lexical.upheld_rate
        ),
        (2, 1, 1, Some(0.0))
    );
    assert_eq!(
        t.by_tier.iter().map(|s| s.appeals.received).sum::<u64>(),
        r.appeals.received
    );
    assert_eq!(
        t.by_tier.iter().map(|s| s.appeals.upheld).sum::<u64>(),
        r.appeals.upheld
    );

    // Per detector and tier.
    let crisis_ngram = t
        .by_detector
        .iter()
        .find(|d| d.detector.as_deref() == Some("crisis") && d.tier == DetectionTier::Ngram)
        .unwrap();
    assert_eq!(
        (
            crisis_ngram.findings,
            crisis_ngram.interventions,
            crisis_ngram.appeals.upheld
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn per_tier_figures_render_everywhere_without_identifiers_or_text() {
    let (store, r) = compiled().await;
    let report = Report::Transparency(r);
    let subject = store.pseudonyms().subject(USER);
    let content = store.pseudonyms().content_hash(TEXT);
    let schema_json = schema(ReportKind::Transparency);
    let validator = jsonschema::validator_for(&schema_json).unwrap();
    for format in [Format::Html, Format::Markdown, Format::Json] {
        let out = report.render(format);
        for secret in [
            USER,
            "SECRET-CHAT-TEXT",
            "passive-ideation",
            "corpus-example-0042",
            subject.as_str(),
            content.as_str(),
        ] {
            assert!(!out.contains(secret), "{format:?} holds `{secret}`");
        }
        match format {
            Format::Json => {
                let v: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert!(validator.is_valid(&v));
                assert_eq!(v["tiers"]["by_tier"][1]["tier"], "ngram");
                assert_eq!(v["tiers"]["by_tier"][1]["appeals"]["upheld"], 1);
            }
            Format::Markdown => {
                assert!(out.contains("## Findings and interventions by detection tier"));
                assert!(out.contains("## Over-blocking by tier (appeals)"));
                assert!(
                    out.contains("| n-gram | 1 | 1 | 1 | 0 | 0 | 100.0 % |"),
                    "{out}"
                );
                assert!(
                    out.contains("| crisis | lexical | 2 | 2 | 2 | 0 |"),
                    "{out}"
                );
            }
            Format::Html => {
                assert!(out.contains("Interventions by tier"));
                assert!(out.contains("<td>encoder</td>"));
            }
        }
    }
}

/// The WA and OR public referral pages count the referrals of users in that state (composed
/// labels included) for the calendar year, and OR's the completed follow-ups; other states have
/// no page.
#[tokio::test]
async fn the_state_referral_pages_count_their_state_for_the_year() {
    use tutela_types::Counter;
    let store = Store::open_in_memory().await.unwrap();
    let b = store.backend();
    let mid = at("2027-06-01T12:00:00Z");
    b.bump(Counter::CrisisReferral, "us-wa", mid, 3)
        .await
        .unwrap();
    b.bump(Counter::CrisisReferral, "us-ca,us-wa", mid, 2)
        .await
        .unwrap();
    b.bump(Counter::CrisisReferral, "us-or", mid, 4)
        .await
        .unwrap();
    b.bump(Counter::CrisisFollowUp, "us-or", mid, 3)
        .await
        .unwrap();
    b.bump(
        Counter::CrisisReferral,
        "us-wa",
        at("2026-12-31T12:00:00Z"),
        9,
    )
    .await
    .unwrap();
    let reg = tutela_profile::Registry::builtin().unwrap();
    let set = reg.select(&["us-wa", "us-or"]).unwrap();
    let options = Options {
        utc_offset_minutes: 0,
        deployment: "demo".into(),
        registration: Registration::FirstSeen,
        complaint_time_limit_hours: 72,
        generated_at: at("2028-01-02T00:00:00Z"),
    };
    let wa = compile::referrals(b, &set, "us-wa", 2027, &options)
        .await
        .unwrap();
    assert_eq!(wa.referral_notifications, 5);
    assert_eq!(wa.follow_ups, None);
    let or = compile::referrals(b, &set, "us-or", 2027, &options)
        .await
        .unwrap();
    assert_eq!((or.referral_notifications, or.follow_ups), (4, Some(3)));
    let err = compile::referrals(b, &set, "us-ny", 2027, &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no public referral page for `us-ny`"), "{err}");
    let r = Report::Referrals(or);
    let md = r.render(Format::Markdown);
    assert!(
        md.contains("Interrupted conversations whose follow-up was completed"),
        "{md}"
    );
    assert_eq!(r.kind(), ReportKind::Referrals);
    let _ = schema(ReportKind::Referrals);
}

/// Issue 14: the CN assessment counts the help lines shown to people at risk in every
/// jurisdiction (here three crisis replies in CN, where no duty bumps the US counter), and the
/// US counter's share on its own line.
#[tokio::test]
async fn the_assessment_counts_crisis_referrals_in_every_jurisdiction() {
    let store = filled_store().await;
    let reg = tutela_profile::Registry::builtin().unwrap();
    let set = reg.select(&["cn"]).unwrap();
    let (options, period) = october();
    let a = compile::assessment(store.backend(), &set, period, &options)
        .await
        .unwrap();
    let figures: Vec<(String, String)> = a
        .items
        .iter()
        .flat_map(|i| i.figures.iter().map(|f| (f.label.clone(), f.value.clone())))
        .collect();
    let value = |prefix: &str| {
        figures
            .iter()
            .find(|(l, _)| l.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{prefix} in {figures:?}"))
    };
    assert_eq!(value("Crisis referrals shown"), "3");
    assert_eq!(value("  of which counted for US"), "0");
    // The usage-time reminders are explained against the sessions long enough for one.
    assert_eq!(value("Sessions longer than 2 hours"), "0");
    let usage = a.items.iter().find(|i| i.id == "usage-duration").unwrap();
    assert!(usage.note.contains("idle reset"), "{}", usage.note);
}

/// Issue 14: the SB 243 report and a state's referral page name that state's profile only,
/// not every law the deployment follows.
#[tokio::test]
async fn state_reports_name_only_their_state_profile() {
    let store = filled_store().await;
    let reg = tutela_profile::Registry::builtin().unwrap();
    let set = reg
        .select(&["cn", "us-ca", "us-wa", "us-or", "eu"])
        .unwrap();
    assert!(set.ids().len() > 3, "{:?}", set.ids());
    let options = Options {
        utc_offset_minutes: 0,
        deployment: "demo".into(),
        registration: Registration::FirstSeen,
        complaint_time_limit_hours: 72,
        generated_at: at("2027-01-02T00:00:00Z"),
    };
    let sb = compile::sb243(store.backend(), &set, 2026, &options)
        .await
        .unwrap();
    assert_eq!(sb.meta.profiles, ["us-ca-sb243"]);
    for (state, profile) in [("us-wa", "us-wa-hb2225"), ("us-or", "us-or-sb1546")] {
        let r = compile::referrals(store.backend(), &set, state, 2026, &options)
            .await
            .unwrap();
        assert_eq!(r.meta.profiles, [profile], "{state}");
    }
}

/// Issue 14: the assessment tells the model replies tutela withheld from the ones it replaced,
/// and gives the median time from a case opening to a person claiming it (claimed cases only).
#[tokio::test]
async fn the_assessment_tells_withheld_from_replaced_and_times_the_human() {
    let store = filled_store().await; // three replaced replies
    let when = at("2026-10-05T12:00:00Z");
    store
        .interventions()
        .record_interventions(&[
            intervention(
                Action::BlockOutput,
                Some("encourages_self_harm"),
                None,
                when,
            ),
            intervention(
                Action::BlockOutput,
                Some("encourages_self_harm"),
                None,
                when,
            ),
        ])
        .await
        .unwrap();
    let cases = store.escalations();
    for (i, wait) in [(0_i64, Some(60)), (1, Some(180)), (2, Some(300)), (3, None)] {
        let opened = when.plus_secs(1000 * i);
        let (case, _) = cases
            .open_escalation(&NewEscalation {
                user_id: format!("u-case-{i}"),
                session_id: None,
                jurisdiction: Some("cn".into()),
                severity: Severity::High,
                takeover: true,
                detector: Some("crisis".into()),
                reasons: Vec::new(),
                at: opened,
            })
            .await
            .unwrap();
        if let Some(w) = wait {
            cases
                .claim_escalation(case.id, "ann", opened.plus_secs(w))
                .await
                .unwrap();
        }
    }
    let reg = tutela_profile::Registry::builtin().unwrap();
    let set = reg.select(&["cn"]).unwrap();
    let (options, period) = october();
    let a = compile::assessment(store.backend(), &set, period, &options)
        .await
        .unwrap();
    let extreme = a
        .items
        .iter()
        .find(|i| i.id == "extreme-situations")
        .unwrap();
    let value = |label: &str| {
        extreme
            .figures
            .iter()
            .find(|f| f.label == label)
            .map(|f| f.value.clone())
            .unwrap_or_else(|| panic!("{label} in {:?}", extreme.figures))
    };
    assert_eq!(value("Replies replaced by tutela"), "3");
    assert_eq!(value("Model replies withheld"), "2");
    assert_eq!(value("Cases opened for a human"), "4");
    assert_eq!(value("Human takeovers"), "4");
    // 1, 3 and 5 minutes; the unclaimed case has no time to a human.
    assert_eq!(value("Median time to a human (claimed cases)"), "3.0 min");
}
