//! The CN security assessment in the language of its regulator, Chinese, with an English version
//! (issue 14): compiled once from a store, rendered twice; both versions carry the same numbers,
//! and the Chinese one has no English label left.

use tutela_report::compile;
use tutela_report::render::{Block, Document};
use tutela_report::{Format, Lang, Report};

use crate::tiers::{at, filled_store, october};

async fn assessment() -> Report {
    let store = filled_store().await;
    let reg = tutela_profile::Registry::builtin().unwrap();
    let set = reg.select(&["cn", "us-ca"]).unwrap();
    let (options, period) = october();
    Report::Assessment(Box::new(
        compile::assessment(store.backend(), &set, period, &options)
            .await
            .unwrap(),
    ))
}

/// Every run of digits (with its `,` and `.`) in a text: `1,234 min` → `1,234`.
fn numbers_in(text: &str, out: &mut Vec<String>) {
    let mut cur = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (!cur.is_empty() && (c == ',' || c == '.')) {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(cur.trim_end_matches([',', '.']).to_owned());
            cur.clear();
        }
    }
}

/// The figures of a document, in order: fact values, table cells, bar values, thresholds.
fn figures(doc: &Document) -> Vec<String> {
    let mut out = Vec::new();
    for s in &doc.sections {
        for b in &s.blocks {
            match b {
                Block::Para(_) => {}
                Block::Facts(kv) => kv.iter().for_each(|(_, v)| numbers_in(v, &mut out)),
                Block::Table { rows, .. } => {
                    rows.iter().flatten().for_each(|c| numbers_in(c, &mut out))
                }
                Block::Bars { bars, .. } => bars.iter().for_each(|(_, v)| out.push(v.to_string())),
                Block::Gauge(t) => {
                    out.extend([
                        t.value.to_string(),
                        t.threshold.to_string(),
                        t.ratio.to_string(),
                    ]);
                }
            }
        }
    }
    out
}

fn has_han(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[tokio::test]
async fn the_chinese_and_english_assessments_carry_the_same_numbers() {
    let report = assessment().await;
    assert_eq!(report.languages(), [Lang::Zh, Lang::En]);
    let (zh, en) = (report.document_in(Lang::Zh), report.document_in(Lang::En));
    let (fz, fe) = (figures(&zh), figures(&en));
    assert!(fe.len() > 20, "{fe:?}");
    assert_eq!(fz, fe, "the two versions differ in their figures");
    assert_eq!(zh.sections.len(), en.sections.len());
    // The rendered versions too: every figure of the English Markdown's tables is in the
    // Chinese Markdown, as many times.
    let (md_zh, md_en) = (
        report.render_in(Format::Markdown, Lang::Zh),
        report.render_in(Format::Markdown, Lang::En),
    );
    let table_numbers = |md: &str| {
        let mut out = Vec::new();
        for line in md
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
        {
            // The value column of a fact or bar row; every cell of a wider table.
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            for c in cells.iter().skip(if cells.len() == 2 { 1 } else { 0 }) {
                numbers_in(c, &mut out);
            }
        }
        out
    };
    assert_eq!(table_numbers(&md_zh), table_numbers(&md_en));
    // JSON is the data: one, whatever the language.
    assert_eq!(
        report.render_in(Format::Json, Lang::Zh),
        report.render_in(Format::Json, Lang::En)
    );
}

#[tokio::test]
async fn the_chinese_assessment_is_written_in_chinese_with_its_signature_block() {
    let report = assessment().await;
    let zh = report.document_in(Lang::Zh);
    assert_eq!(zh.title, "人工智能拟人化互动服务安全评估报告");
    for (k, _) in &zh.meta {
        assert!(has_han(k), "meta label left in English: {k}");
    }
    for s in &zh.sections {
        assert!(has_han(&s.title), "section left in English: {}", s.title);
        for b in &s.blocks {
            match b {
                Block::Facts(kv) => {
                    for (k, _) in kv {
                        assert!(has_han(k), "label left in English in {}: {k}", s.title);
                    }
                }
                Block::Para(p) => assert!(has_han(p), "paragraph in English: {p}"),
                Block::Bars { caption, unit, .. } => {
                    assert!(has_han(caption) && has_han(unit), "{caption} ({unit})");
                }
                Block::Table { head, .. } => assert!(head.iter().all(|h| has_han(h)), "{head:?}"),
                Block::Gauge(_) => {}
            }
        }
    }
    let last = zh.sections.last().unwrap();
    assert_eq!(last.title, "签字确认");
    assert!(last.needs_human_input);
    let md = report.render_in(Format::Markdown, Lang::Zh);
    assert!(
        md.starts_with("# 人工智能拟人化互动服务安全评估报告\n"),
        "{md}"
    );
    assert!(
        md.contains("第二十三条；第十三条 — 用户极端情境识别、应急处置与干预情况"),
        "{md}"
    );
    assert!(md.contains("## 签字确认 — **需人工填写**"), "{md}");
    assert!(md.contains("| 签字 | ____________________ |"), "{md}");
    assert!(md.contains("《人工智能拟人化互动服务管理暂行办法》第二十二条、第二十三条"));
    for english in [
        "User scale",
        "NEEDS HUMAN INPUT",
        "Registered users",
        " of ",
        "Median",
    ] {
        assert!(
            !md.contains(english),
            "{english} in the Chinese version:\n{md}"
        );
    }
    let html = report.render_in(Format::Html, Lang::Zh);
    assert!(html.contains("<html lang=\"zh-CN\">"));
    assert!(html.contains("需人工填写</span>"));
    let pdf = tutela_report::pdf::shown_text(&report.pdf_in(Lang::Zh));
    for want in [
        "人工智能拟人化互动服务安全评估报告",
        "签字确认",
        "需人工填写：本节须由人工完成。",
    ] {
        assert!(pdf.iter().any(|t| t == want), "{want} not in {pdf:?}");
    }
    // The English version says which one is signed, and keeps its English wording.
    let en = report.render_in(Format::Markdown, Lang::En);
    assert!(
        en.contains("the Chinese version is the one submitted and signed"),
        "{en}"
    );
    assert!(en.contains("## 签字确认 / Attestation — **NEEDS HUMAN INPUT**"));
    assert_eq!(en, report.render(Format::Markdown));
}

/// Reports with no Chinese version give their one language, whatever is asked.
#[test]
fn other_reports_are_in_english_only() {
    for report in crate::samples::all() {
        if matches!(report, Report::Assessment(_)) {
            continue;
        }
        assert_eq!(report.languages(), [Lang::En]);
        assert_eq!(
            report.render_in(Format::Markdown, Lang::Zh),
            report.render(Format::Markdown)
        );
    }
}

/// Where the profiles give a citation and a title in Chinese (`article_zh`, `title_zh`), the
/// Chinese assessment cites them: the thresholds and the records that opened the assessment
/// are in Chinese, with the same figures; the English version keeps the English citation.
#[tokio::test]
async fn the_chinese_assessment_cites_the_profiles_in_chinese() {
    let store = filled_store().await;
    // The record `obligations check` opens when monthly active users reach the threshold.
    store
        .backend()
        .open_obligation(&tutela_store::NewObligation {
            key: "threshold:cn-anthropomorphic-2026/security-assessment:monthly_active_users:threshold_crossed".into(),
            kind: tutela_store::ObligationKind::ThresholdCrossed,
            trigger: "monthly_active_users".into(),
            profile: Some("cn-anthropomorphic-2026".into()),
            obligation: Some("security-assessment".into()),
            article: Some("Art. 22(3)".into()),
            value: Some(100_000),
            threshold: Some(100_000),
            description: "monthly active users 100,000 reached 100,000 (Art. 22(3): security assessment)".into(),
            due_items: vec![],
            at: at("2026-10-20T00:00:00Z"),
        })
        .await
        .unwrap();
    let reg = tutela_profile::Registry::builtin().unwrap();
    let set = reg.select(&["cn", "us-ca"]).unwrap();
    let (options, period) = october();
    let report = Report::Assessment(Box::new(
        compile::assessment(store.backend(), &set, period, &options)
            .await
            .unwrap(),
    ));
    let md = report.render_in(Format::Markdown, Lang::Zh);
    assert!(
        !md.contains("Art."),
        "an English citation in the Chinese version:\n{md}"
    );
    assert!(
        md.contains("月活跃用户数 100,000 已达到阈值 100,000（第二十二条第（三）项"),
        "the record in Chinese:\n{md}"
    );
    assert!(
        md.contains("第二十二条第（三）项 注册用户达100万或月活跃用户达10万时开展安全评估"),
        "the threshold's citation and title in Chinese:\n{md}"
    );
    let html = report.render_in(Format::Html, Lang::Zh);
    assert!(!html.contains("Art."), "{html}");
    let pdf = tutela_report::pdf::shown_text(&report.pdf_in(Lang::Zh));
    assert!(!pdf.iter().any(|t| t.contains("Art.")), "{pdf:?}");
    // The English version cites as before.
    let en = report.render_in(Format::Markdown, Lang::En);
    assert!(en.contains("Art. 22(3)"), "{en}");
    assert!(
        en.contains("monthly active users 100,000 reached 100,000"),
        "{en}"
    );
}
