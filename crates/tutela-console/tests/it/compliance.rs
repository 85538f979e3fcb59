//! The compliance pages: the four reports in the browser and as downloads, the complaints queue
//! with due times and answers, obligation records closed with a note, audit verify with the
//! head; all refused to agents; each action in the audit log with the staff id.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tutela_store::{ComplaintStatus, StaffRole};

use crate::support::{audit_event, env, get, location, post};

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
            format!("attachment; filename=\"tutela-{kind}.md\"")
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
