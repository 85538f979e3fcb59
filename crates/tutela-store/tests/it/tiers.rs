//! Findings and interventions by detection tier, and appeals by the tier of the finding behind
//! the intervention appealed against (transparency report, issue #11).

use tutela_store::{
    AppealTierCount, AuditEntry, AuditKind, AuditPayload, FindingTierCount, Intervention,
    InterventionTierCount, NewAuditRecord, NewComplaint, Store,
};
use tutela_types::{
    Action, DetectorId, Finding, NoticeContent, ReplyTemplate, Severity, Side, Tier,
};

use crate::support::{both, reason, t};

fn finding(d: DetectorId, side: Side, tier: Tier, severity: Severity) -> Finding {
    let mut f = Finding::new(d, side, tier, 0.9, severity);
    // What a learned finding carries besides: none of it may reach a count.
    f.rule = Some("crisis/en/passive-ideation".into());
    f.examples = vec!["corpus-0042".into()];
    f.threshold = Some(0.5);
    f
}

fn turn(kind: AuditKind, secs: i64, findings: Vec<Finding>) -> AuditEntry {
    AuditEntry {
        at: t(secs),
        kind,
        user: Some("u-secret".into()),
        session: Some("s-secret".into()),
        jurisdiction: Some("cn".into()),
        payload: AuditPayload {
            findings,
            ..AuditPayload::default()
        },
        profile_hash: "p".into(),
        content_hash: Some("c".into()),
    }
}

fn intervention(
    action: Action,
    detector: Option<&str>,
    side: Side,
    audit_seq: Option<i64>,
    secs: i64,
) -> Intervention {
    Intervention {
        id: 0,
        at: t(secs),
        user_id: Some("u-secret".into()),
        session_id: Some("s".into()),
        jurisdiction: "cn".into(),
        detector: detector.map(str::to_owned),
        side: Some(side),
        action,
        reasons: vec![reason("crisis-reply")],
        audit_seq,
    }
}

fn appeal(intervention_id: Option<i64>, category: &str, secs: i64) -> NewComplaint {
    NewComplaint {
        user_id: Some("u-secret".into()),
        category: category.into(),
        intervention_id,
        body: Some("the reply was wrong".into()),
        at: t(secs),
        handling_limit_secs: 100,
    }
}

/// Appends and returns the seq.
async fn durable(store: &Store, entry: &AuditEntry) -> i64 {
    store.audit().append_durable(entry).await.unwrap().seq
}

#[tokio::test]
async fn findings_interventions_and_appeals_count_by_tier() {
    use DetectorId::{Crisis, Distress, Exit, ManipulativeExit};
    use Severity::{High, Low, Medium};
    use Tier::{Encoder, Lexical, Ngram};
    let replace = Action::ReplaceReply {
        template: ReplyTemplate::CrisisSupport,
        resources: true,
    };
    let escalate = Action::Escalate {
        takeover: true,
        severity: High,
    };
    let notice = Action::Notice {
        contents: vec![NoticeContent::AiIdentity],
        continuous_minutes: 0,
    };
    for ts in both().await {
        let s = &ts.store;
        // A crisis turn: the lexical and the n-gram tier both found crisis, equally grave; the
        // gateway names the detector of the last gravest finding, the n-gram one.
        let crisis = durable(
            s,
            &turn(
                AuditKind::Intervention,
                10,
                vec![
                    finding(Crisis, Side::User, Lexical, High),
                    finding(Distress, Side::User, Ngram, Medium),
                    finding(Crisis, Side::User, Ngram, High),
                    finding(Crisis, Side::User, Encoder, Low),
                ],
            ),
        )
        .await;
        // A normal turn with findings of both sides.
        durable(
            s,
            &turn(
                AuditKind::Turn,
                20,
                vec![
                    finding(Exit, Side::User, Encoder, Medium),
                    finding(ManipulativeExit, Side::Assistant, Lexical, Medium),
                ],
            ),
        )
        .await;
        // A record written before the tier was renamed: `semantic` is the encoder tier.
        let links = s
            .audit_log()
            .append(&[NewAuditRecord {
                at: t(30).unix(),
                kind: "intervention".into(),
                subject: None,
                session: None,
                jurisdiction: Some("cn".into()),
                payload: r#"{"findings":[{"detector":"crisis","side":"user","tier":"semantic","score":0.8,"severity":"high"}]}"#.into(),
                profile_hash: "p".into(),
                content_hash: None,
            }])
            .await
            .unwrap();
        let semantic = links[0].seq;
        // Outside the period, and an administrative record: neither counts.
        durable(
            s,
            &turn(
                AuditKind::Turn,
                500,
                vec![finding(Crisis, Side::User, Lexical, High)],
            ),
        )
        .await;
        durable(
            s,
            &AuditEntry {
                kind: AuditKind::Escalation,
                payload: AuditPayload::detail(serde_json::json!({"findings": [1, 2]})),
                ..turn(AuditKind::Escalation, 40, Vec::new())
            },
        )
        .await;

        let ids = s
            .interventions()
            .record_interventions(&[
                intervention(
                    replace.clone(),
                    Some("crisis"),
                    Side::User,
                    Some(crisis),
                    10,
                ),
                intervention(
                    escalate.clone(),
                    Some("crisis"),
                    Side::User,
                    Some(crisis),
                    10,
                ),
                intervention(
                    replace.clone(),
                    Some("crisis"),
                    Side::User,
                    Some(semantic),
                    30,
                ),
                // No finding on its turn: a session-start notice.
                intervention(notice.clone(), None, Side::User, None, 35),
                // Not linked to a record (the simulator writes these).
                intervention(replace.clone(), Some("crisis"), Side::User, None, 36),
                // Linked, but the record holds no assistant-side crisis finding.
                intervention(
                    Action::BlockOutput,
                    Some("crisis"),
                    Side::Assistant,
                    Some(crisis),
                    37,
                ),
                // Outside the period.
                intervention(
                    replace.clone(),
                    Some("crisis"),
                    Side::User,
                    Some(crisis),
                    500,
                ),
            ])
            .await
            .unwrap();

        let c = s.complaints();
        let a = c
            .file_complaint(&appeal(Some(ids[0]), "appeal", 50))
            .await
            .unwrap();
        c.resolve_complaint(a.id, "overturned", t(60))
            .await
            .unwrap();
        let b = c
            .file_complaint(&appeal(Some(ids[2]), "appeal", 51))
            .await
            .unwrap();
        c.resolve_complaint(b.id, "rejected", t(60)).await.unwrap();
        c.file_complaint(&appeal(Some(ids[3]), "appeal", 52))
            .await
            .unwrap();
        c.file_complaint(&appeal(None, "appeal", 53)).await.unwrap();
        c.file_complaint(&appeal(Some(ids[1]), "appeal", 54))
            .await
            .unwrap();
        c.file_complaint(&appeal(Some(ids[0]), "content", 55))
            .await
            .unwrap();
        c.file_complaint(&appeal(Some(ids[0]), "appeal", 600))
            .await
            .unwrap();

        let o = s.obligations();
        let (from, to) = (t(0), t(100));
        let findings = o.finding_tiers(from, to).await.unwrap();
        let fc = |d: &str, tier, n| FindingTierCount {
            detector: d.into(),
            tier,
            count: n,
        };
        assert_eq!(
            findings,
            [
                fc("crisis", Lexical, 1),
                fc("crisis", Ngram, 1),
                fc("crisis", Encoder, 2),
                fc("distress", Ngram, 1),
                fc("exit", Encoder, 1),
                fc("manipulative_exit", Lexical, 1),
            ],
            "{}",
            ts.name
        );

        let ic = |kind: &str, d: Option<&str>, tier, n| InterventionTierCount {
            kind: kind.into(),
            detector: d.map(str::to_owned),
            tier,
            count: n,
        };
        assert_eq!(
            o.intervention_tiers(from, to).await.unwrap(),
            [
                ic("block_output", Some("crisis"), None, 1),
                ic("escalate", Some("crisis"), Some(Ngram), 1),
                ic("notice", None, None, 1),
                ic("replace_reply", Some("crisis"), None, 1),
                ic("replace_reply", Some("crisis"), Some(Ngram), 1),
                ic("replace_reply", Some("crisis"), Some(Encoder), 1),
            ],
            "{}",
            ts.name
        );

        let ac = |d: Option<&str>, tier, outcome: Option<&str>, n| AppealTierCount {
            detector: d.map(str::to_owned),
            tier,
            outcome: outcome.map(str::to_owned),
            count: n,
        };
        assert_eq!(
            o.appeal_tiers(from, to).await.unwrap(),
            [
                ac(None, None, None, 2),
                ac(Some("crisis"), Some(Ngram), None, 1),
                ac(Some("crisis"), Some(Ngram), Some("overturned"), 1),
                ac(Some("crisis"), Some(Encoder), Some("rejected"), 1),
            ],
            "{}",
            ts.name
        );

        // An empty period.
        assert!(o.finding_tiers(t(1000), t(2000)).await.unwrap().is_empty());
        assert!(
            o.intervention_tiers(t(1000), t(2000))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(o.appeal_tiers(t(1000), t(2000)).await.unwrap().is_empty());
        // The chain still verifies (the queries only read).
        assert!(s.verify(None).await.unwrap().is_intact());
    }
}
