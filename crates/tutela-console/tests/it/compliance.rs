//! The compliance pages: the four reports in the browser and as downloads, the complaints queue
//! with due times and answers, obligation records closed with a note, audit verify with the
//! head; all refused to agents; each action in the audit log with the staff id.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tutela_store::{ComplaintStatus, StaffRole};

use crate::support::{audit_event, env, get, location, post};

/// The period a report covers by default (the test clock's month, or the year before it), as
/// in its file name.
fn covers(kind: &str) -> String {
    let now = tutela_types::Timestamp::from_unix(crate::support::START);
    let month = tutela_store::month_of(now, 0);
    if ["sb243", "referrals-wa", "referrals-or"].contains(&kind) {
        (month / 100 - 1).to_string()
    } else {
        format!("{:04}-{:02}", month / 100, month % 100)
    }
}

#[tokio::test]
async fn reports_complaints_and_the_audit_chain() {
    let e = env().await;
    e.staff("cleo", StaffRole::Compliance).await;
    e.staff("ann", StaffRole::Agent).await;
    e.crisis("u-c", "I want to die").await;
    let req = Request::post("/v1/tutela/complaints")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            r#"{"user":"u-c","category":"content","text":"the bot was rude"}"#,
        ))
        .unwrap();
    let (status, _, body) = e.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let ann = e.login("ann").await;
    assert_eq!(
        e.send(get("/console/compliance", Some(&ann))).await.0,
        StatusCode::FORBIDDEN
    );

    let s = e.login("cleo").await;
    let (status, _, page) = e.send(get("/console/compliance", Some(&s))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("the bot was rude") && page.contains("due "),
        "{page}"
    );
    for kind in ["usage", "assessment", "transparency", "sb243"] {
        let (status, headers, body) = e
            .send(get(
                &format!("/console/reports/{kind}?format=html"),
                Some(&s),
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(
            body.contains("<html") || body.contains("<!DOCTYPE") || body.contains("<!doctype"),
            "{kind}"
        );
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(!csp.contains("script"), "no script in a report: {csp}");
        let (status, headers, body) = e
            .send(get(
                &format!("/console/reports/{kind}?format=md&download=1"),
                Some(&s),
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers[header::CONTENT_DISPOSITION].to_str().unwrap(),
            format!(
                "attachment; filename=\"tutela-{kind}-{}{}.md\"",
                covers(kind),
                // The CN assessment says its language: Chinese unless asked otherwise.
                if kind == "assessment" { "-zh" } else { "" }
            )
        );
        assert!(body.starts_with('#'), "{kind}: {body}");
        let (_, _, json) = e
            .send(get(
                &format!("/console/reports/{kind}?format=json"),
                Some(&s),
            ))
            .await;
        assert!(
            serde_json::from_str::<serde_json::Value>(&json).is_ok(),
            "{kind}"
        );
    }
    assert_eq!(
        e.send(get("/console/reports/other", Some(&s))).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(audit_event(&e.state, "report_viewed").await.is_some());

    // Answer the complaint.
    let open = e
        .state
        .records
        .backend
        .list_complaints(Some(ComplaintStatus::Open), 10)
        .await
        .unwrap();
    let id = open[0].id;
    let (status, _, _) = e
        .send(post(
            &format!("/console/complaints/{id}/resolve"),
            Some(&s),
            Some(&s.csrf),
            &[("outcome", "nonsense")],
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, headers, _) = e
        .send(post(
            &format!("/console/complaints/{id}/resolve"),
            Some(&s),
            Some(&s.csrf),
            &[("outcome", "answered")],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/console/compliance");
    let c = e
        .state
        .records
        .backend
        .get_complaint(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.status, c.outcome.as_deref()),
        (ComplaintStatus::Resolved, Some("answered"))
    );
    let d = audit_event(&e.state, "complaint_answered").await.unwrap();
    assert_eq!(d["staff"], "cleo");

    // Declare a trigger, then close its record with a note.
    let (status, _, _) = e
        .send(post(
            "/console/obligations",
            Some(&s),
            Some(&s.csrf),
            &[("trigger", "feature_launch"), ("description", " ")],
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = e
        .send(post(
            "/console/obligations",
            Some(&s),
            Some(&s.csrf),
            &[("trigger", "nonsense"), ("description", "x")],
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = e
        .send(post(
            "/console/obligations",
            Some(&s),
            Some(&s.csrf),
            &[
                ("trigger", "feature_launch"),
                ("description", "voice calls"),
            ],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let records = e
        .state
        .records
        .backend
        .list_obligations(true)
        .await
        .unwrap();
    let declared = records
        .iter()
        .find(|o| o.description.contains("voice calls"))
        .expect("declared");
    assert_eq!(declared.article.as_deref(), Some("Art. 22(1)"));
    let (_, _, page) = e.send(get("/console/compliance", Some(&s))).await;
    assert!(page.contains("voice calls"));
    let path = format!("/console/obligations/{}/close", declared.id);
    let (status, _, _) = e
        .send(post(&path, Some(&s), Some(&s.csrf), &[("note", "")]))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = e
        .send(post(
            &path,
            Some(&s),
            Some(&s.csrf),
            &[("note", "assessment filed 2026-12-05")],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        e.state
            .records
            .backend
            .list_obligations(true)
            .await
            .unwrap()
            .iter()
            .all(|o| o.id != declared.id)
    );
    assert!(audit_event(&e.state, "obligation_declared").await.is_some());
    assert!(audit_event(&e.state, "obligation_closed").await.is_some());

    // The audit chain verifies and shows its head.
    let (status, _, page) = e.send(get("/console/audit", Some(&s))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("The chain verifies"), "{page}");
    assert!(page.contains("--head"));
}

/// Issue 14: every report downloads as a PDF (a valid file, its title and figures in it), each
/// download in the audit log with the staff id; agents are refused.
#[tokio::test]
async fn every_report_downloads_as_a_pdf() {
    let e = env().await;
    e.staff("cleo", StaffRole::Compliance).await;
    e.staff("ann", StaffRole::Agent).await;
    e.crisis("u-p", "I want to die").await;
    let ann = e.login("ann").await;
    assert_eq!(
        e.send(get("/console/reports/usage?format=pdf", Some(&ann)))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let s = e.login("cleo").await;
    let (_, _, page) = e.send(get("/console/compliance", Some(&s))).await;
    assert!(page.contains("/console/reports/assessment?format=pdf&amp;download=1&amp;month="));
    for kind in [
        "usage",
        "assessment",
        "transparency",
        "sb243",
        "referrals-wa",
        "referrals-or",
    ] {
        let (status, headers, body) = e
            .send(get(
                &format!("/console/reports/{kind}?format=pdf"),
                Some(&s),
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/pdf");
        assert_eq!(
            headers[header::CONTENT_DISPOSITION].to_str().unwrap(),
            format!(
                "attachment; filename=\"tutela-{kind}-{}{}.pdf\"",
                covers(kind),
                // The CN assessment is in Chinese unless asked otherwise.
                if kind == "assessment" { "-zh" } else { "" }
            )
        );
        assert!(
            body.starts_with("%PDF-1.4\n") && body.ends_with("%%EOF\n"),
            "{kind}"
        );
        let text = tutela_report::pdf::shown_text(body.as_bytes());
        // The same title as the report's HTML.
        let (_, _, html) = e
            .send(get(
                &format!("/console/reports/{kind}?format=html"),
                Some(&s),
            ))
            .await;
        let title = &html[html.find("<h1>").unwrap() + 4..html.find("</h1>").unwrap()];
        assert!(
            text.iter()
                .any(|t| title.starts_with(t.as_str()) && !t.is_empty()),
            "{kind}: {title} in {text:?}"
        );
        if kind == "usage" {
            assert!(text.iter().any(|t| t == "Registered users"), "{text:?}");
        }
    }
    let mut pdfs = 0;
    for _ in 0..200 {
        pdfs = crate::support::audit_events(&e.state, "report_viewed")
            .await
            .into_iter()
            .filter(|d| d["format"] == "pdf" && d["staff"] == "cleo" && d["staff_id"].is_i64())
            .count();
        if pdfs == 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(pdfs, 6);
}

/// The compliance page shows usage against the thresholds (a meter each) with six months of
/// monthly active users; reports cover the month or year chosen (a bad one is refused), and the
/// period is in the file name and the audit record.
#[tokio::test]
async fn usage_against_the_thresholds_and_reports_for_a_chosen_period() {
    let e = crate::support::env_with("jurisdictions = [\"cn\"]\n").await;
    e.staff("cleo", StaffRole::Compliance).await;
    e.crisis("u-t", "I want to die").await;
    let s = e.login("cleo").await;
    let (status, _, page) = e.send(get("/console/compliance", Some(&s))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Usage against the thresholds"), "{page}");
    // CN: 1,000,000 registered users and 100,000 monthly active users.
    assert!(
        page.contains("<meter") && page.contains("max=\"1000000\""),
        "{page}"
    );
    assert!(page.contains("max=\"100000\""), "{page}");
    assert!(page.contains("below the warning level"), "{page}");
    for month in [
        "2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09",
    ] {
        assert!(
            page.contains(&format!("<th scope=\"row\">{month}</th>")),
            "{month}"
        );
    }
    assert!(!page.contains("<th scope=\"row\">2026-03</th>"));
    assert!(page.contains("name=\"month\" value=\"2026-09\""), "{page}");
    assert!(
        page.contains("name=\"year\" min=\"2000\" value=\"2025\""),
        "{page}"
    );

    // A chosen period: the page's links carry it, and the reports cover it.
    let (_, _, page) = e
        .send(get("/console/compliance?month=2026-08&year=2024", Some(&s)))
        .await;
    assert!(page.contains("/console/reports/usage?format=html&amp;month=2026-08"));
    assert!(page.contains("/console/reports/sb243?format=html&amp;year=2024"));
    assert!(
        page.contains("<th scope=\"row\">2026-03</th>"),
        "six months up to August"
    );
    let (status, _, json) = e
        .send(get(
            "/console/reports/usage?format=json&month=2026-08",
            Some(&s),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["meta"]["from"], "2026-08-01", "{v}");
    assert_eq!(v["meta"]["to"], "2026-08-31", "{v}");
    let (_, headers, json) = e
        .send(get(
            "/console/reports/sb243?format=json&year=2024&download=1",
            Some(&s),
        ))
        .await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["meta"]["from"], "2024-01-01", "{v}");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"tutela-sb243-2024.json\""
    );
    for bad in ["month=2026-13", "month=soon", "year=1999", "year=2100"] {
        let (status, _, _) = e
            .send(get(
                &format!("/console/reports/usage?format=html&{bad}"),
                Some(&s),
            ))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let (status, _, _) = e
            .send(get(&format!("/console/compliance?{bad}"), Some(&s)))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let mut periods = Vec::new();
    for _ in 0..200 {
        periods = crate::support::audit_events(&e.state, "report_viewed")
            .await
            .into_iter()
            .map(|d| d["period"].as_str().unwrap_or("").to_owned())
            .collect();
        if periods.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(periods, ["2026-08", "2024"]);
}

/// Issue 14: the CN assessment in the language of its regulator, with an English version; the
/// compliance page offers both, the two carry the same figures, and a language a report is not
/// written in is refused.
#[tokio::test]
async fn the_cn_assessment_downloads_in_chinese_and_in_english() {
    let e = env().await;
    e.staff("cleo", StaffRole::Compliance).await;
    e.crisis("u-p", "I want to die").await;
    let s = e.login("cleo").await;
    let (_, _, page) = e.send(get("/console/compliance", Some(&s))).await;
    for code in ["zh", "en"] {
        for f in ["html", "md", "pdf"] {
            assert!(
                page.contains(&format!(
                    "/console/reports/assessment?format={f}&amp;download=1&amp;month="
                )) && page.contains(&format!("&amp;lang={code}\" download")),
                "{code} {f}: {page}"
            );
        }
    }
    let md = |q: &'static str| {
        let e = &e;
        let s = &s;
        async move {
            let (status, headers, body) = e
                .send(get(
                    &format!("/console/reports/assessment?format=md{q}"),
                    Some(s),
                ))
                .await;
            (status, headers, body)
        }
    };
    let (status, _, zh) = md("").await;
    assert_eq!(status, StatusCode::OK, "{zh}");
    assert!(
        zh.starts_with("# 人工智能拟人化互动服务安全评估报告"),
        "{zh}"
    );
    assert!(zh.contains("## 签字确认 — **需人工填写**"), "{zh}");
    let (_, headers, en) = md("&lang=en&download=1").await;
    assert!(
        en.contains("Identification of users' extreme situations"),
        "{en}"
    );
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .ends_with("-en.md\""),
        "{headers:?}"
    );
    assert_eq!(md("&lang=zh").await.2, zh);
    // The same figures: every table value of one is in the other, in order.
    let values = |md: &str| -> Vec<String> {
        md.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| ---"))
            .filter_map(|l| l.trim_matches('|').split(" | ").nth(1))
            .map(|v| {
                v.chars()
                    .filter(|c| c.is_ascii_digit() || *c == '.')
                    .collect()
            })
            .collect()
    };
    assert!(values(&zh).iter().any(|v| v == "1"), "{:?}", values(&zh));
    assert_eq!(values(&zh), values(&en));
    // A report written in English only refuses Chinese; an unknown language is refused.
    for q in ["usage?format=md&lang=zh", "assessment?format=md&lang=fr"] {
        let (status, _, _) = e
            .send(get(&format!("/console/reports/{q}"), Some(&s)))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
    }
}
