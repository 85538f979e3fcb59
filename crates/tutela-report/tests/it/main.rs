//! Integration tests of the reports: committed schemas are current, every report's JSON
//! validates against its schema, HTML is self-contained, sections needing a person are marked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly, with the value that broke it"
)]

mod samples;

/// Per-tier figures of the transparency report, compiled from a store.
mod tiers;

/// The CN assessment in Chinese and in English: the same figures.
mod languages;

use std::path::PathBuf;

use tutela_report::{Format, Report, ReportKind, schema};

const KINDS: [ReportKind; 5] = [
    ReportKind::Assessment,
    ReportKind::Sb243,
    ReportKind::Transparency,
    ReportKind::Usage,
    ReportKind::Referrals,
];

fn schema_path(kind: ReportKind) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/schemas")
        .join(format!("report-{}.schema.json", kind.as_str()))
}

/// The schemas in `docs/schemas` are generated from the report types; regenerate with
/// `UPDATE_SCHEMAS=1 cargo test -p tutela-report`.
#[test]
fn committed_schemas_are_current() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for kind in KINDS {
        let want = serde_json::to_string_pretty(&schema(kind)).unwrap() + "\n";
        let path = schema_path(kind);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale; run UPDATE_SCHEMAS=1 cargo test -p tutela-report",
            path.display()
        );
    }
}

#[test]
fn every_report_validates_against_its_committed_schema() {
    for report in samples::all() {
        let path = schema_path(report.kind());
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let json: serde_json::Value = serde_json::from_str(&report.render(Format::Json)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{:?}: {errors:?}", report.kind());
        // And a broken document does not validate.
        let mut broken = json.clone();
        broken["meta"]["kind"] = serde_json::json!("nonsense");
        assert!(!validator.is_valid(&broken), "{:?}", report.kind());
    }
}

#[test]
fn html_is_self_contained_and_marks_human_sections() {
    for report in samples::all() {
        let html = report.render(Format::Html);
        assert!(html.starts_with("<!DOCTYPE html>"));
        for banned in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
            assert!(
                !html.contains(banned),
                "{:?} contains {banned}",
                report.kind()
            );
        }
        // The yearly count pages are a figure and prose; every other report has a chart.
        if !matches!(report.kind(), ReportKind::Sb243 | ReportKind::Referrals) {
            assert!(html.contains("<svg"), "{:?} has no chart", report.kind());
        }
        if let Report::Assessment(a) = &report {
            let human = a
                .items
                .iter()
                .filter(|i| i.source == tutela_report::model::ItemSource::NeedsHumanInput)
                .count();
            assert!(human > 0);
            // Plus the signature block, which a person always completes.
            assert_eq!(html.matches("needs human input</span>").count(), human + 1);
            let md = report.render(Format::Markdown);
            assert_eq!(md.matches("NEEDS HUMAN INPUT").count(), human + 1);
            assert!(
                md.contains("## 签字确认 / Attestation — **NEEDS HUMAN INPUT**"),
                "{md}"
            );
            assert!(
                md.contains("| 签字 / Signature | ____________________ |"),
                "{md}"
            );
            let pdf = tutela_report::pdf::shown_text(&report.pdf());
            assert!(pdf.iter().any(|t| t == "签字确认 / Attestation"), "{pdf:?}");
        }
    }
}

#[test]
fn text_is_escaped() {
    let mut r = samples::usage();
    r.meta.deployment = "<b>x</b> & \"y\"".into();
    let html = Report::Usage(r).render(Format::Html);
    assert!(html.contains("&lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;"));
    assert!(!html.contains("<b>x</b>"));
}

#[test]
fn the_usage_report_shows_the_threshold_state() {
    let r = Report::Usage(samples::usage());
    let md = r.render(Format::Markdown);
    assert!(md.contains("CROSSED"), "{md}");
    assert!(md.contains("1,000,123 of 1,000,000"), "{md}");
    assert!(md.contains("Art. 22(3)"), "{md}");
}
