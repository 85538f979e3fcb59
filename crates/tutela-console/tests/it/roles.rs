//! Every guarded route against every role: the permission table holds on every route, and the
//! cases the issue names (an agent cannot delete users; compliance cannot reply to cases).

use axum::http::StatusCode;
use tutela_console::GUARDED_ROUTES;
use tutela_console::perm::allows;
use tutela_store::StaffRole;

use crate::support::{Env, env, get, post};

async fn setup() -> (Env, i64) {
    let e = env().await;
    for (name, role) in [
        ("agent", StaffRole::Agent),
        ("super", StaffRole::Supervisor),
        ("comply", StaffRole::Compliance),
        ("admin", StaffRole::Admin),
    ] {
        e.staff(name, role).await;
    }
    let case = e.crisis("u-roles", "I want to die").await;
    (e, case)
}

#[tokio::test]
async fn every_route_refuses_the_roles_the_table_refuses() {
    let (e, case) = setup().await;
    for (name, role) in [
        ("agent", StaffRole::Agent),
        ("super", StaffRole::Supervisor),
        ("comply", StaffRole::Compliance),
        ("admin", StaffRole::Admin),
    ] {
        let s = e.login(name).await;
        for (method, path, perm) in GUARDED_ROUTES {
            if *path == "/console/logout" || path.ends_with("/events") {
                continue; // signs out / streams forever; covered below and in `cases`
            }
            let id = if path.contains("/users/") {
                "u-roles".to_owned()
            } else {
                case.to_string()
            };
            let p = path.replace("{id}", &id);
            let req = if *method == "GET" {
                get(&p, Some(&s))
            } else {
                post(&p, Some(&s), Some(&s.csrf), &[])
            };
            let (status, _, _) = e.send(req).await;
            let allowed = perm.is_none_or(|p| allows(role, p));
            if allowed {
                assert_ne!(status, StatusCode::FORBIDDEN, "{name} {method} {path}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{name} {method} {path}");
            }
        }
        // The event stream refuses the same way (its allowed answer never ends, so only the
        // refusal is checked here).
        let (_, _, perm) = GUARDED_ROUTES
            .iter()
            .find(|(_, p, _)| *p == "/console/events")
            .unwrap();
        if !perm.is_none_or(|p| allows(role, p)) {
            assert_eq!(
                e.send(get("/console/events", Some(&s))).await.0,
                StatusCode::FORBIDDEN
            );
        }
    }
}

#[tokio::test]
async fn an_agent_cannot_delete_users_and_compliance_can() {
    let (e, _) = setup().await;
    let agent = e.login("agent").await;
    let form = [("confirm", "u-roles")];
    let (status, _, body) = e
        .send(post(
            "/console/users/u-roles/delete",
            Some(&agent),
            Some(&agent.csrf),
            &form,
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        e.state
            .records
            .backend
            .get_user("u-roles")
            .await
            .unwrap()
            .is_some()
    );
    let comply = e.login("comply").await;
    // The id must be typed again.
    let (status, _, _) = e
        .send(post(
            "/console/users/u-roles/delete",
            Some(&comply),
            Some(&comply.csrf),
            &[("confirm", "u-other")],
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = e
        .send(post(
            "/console/users/u-roles/delete",
            Some(&comply),
            Some(&comply.csrf),
            &form,
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        e.state
            .records
            .backend
            .get_user("u-roles")
            .await
            .unwrap()
            .is_none()
    );
    let d = crate::support::audit_event(&e.state, "deleted")
        .await
        .expect("deletion recorded");
    assert_eq!(d["staff"], "comply");
}

#[tokio::test]
async fn compliance_reads_cases_but_cannot_reply_or_claim() {
    let (e, case) = setup().await;
    let comply = e.login("comply").await;
    let (status, _, body) = e
        .send(get(&format!("/console/cases/{case}"), Some(&comply)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("/reply\""), "no reply form for compliance");
    for action in ["reply", "claim", "resolve"] {
        let (status, _, _) = e
            .send(post(
                &format!("/console/cases/{case}/{action}"),
                Some(&comply),
                Some(&comply.csrf),
                &[("text", "hello"), ("note", "n"), ("outcome", "other")],
            ))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}");
    }
    let msgs = e
        .state
        .records
        .backend
        .escalation_messages(case)
        .await
        .unwrap();
    assert!(msgs.is_empty());
}

/// Every `(METHOD, path)` the console's router serves, from the source of `router` in
/// `src/lib.rs`: each `.route("...", get(..).post(..))` call with every method it carries.
fn routes_in_source() -> Vec<(String, String)> {
    let src = include_str!("../../src/lib.rs");
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a closed .route( call");
        let call = &rest[..end];
        let path = call.split('"').nth(1).expect("a path literal").to_owned();
        for (word, method) in [("get(", "GET"), ("post(", "POST")] {
            let called = call
                .match_indices(word)
                .any(|(i, _)| !call[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
            if called {
                out.push((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// The list the role, session and CSRF tests walk is the router's: every route the router
/// serves is in `GUARDED_ROUTES` or is one of the few public ones (sign-in, the language
/// switch, the assets, the bare `/console/`), and every listed route is served.
#[test]
fn the_walked_list_is_every_route_of_the_router() {
    const PUBLIC: &[(&str, &str)] = &[
        ("GET", "/console/"),
        ("GET", "/console/login"),
        ("POST", "/console/login"),
        ("GET", "/console/lang"),
        ("GET", "/console/assets/{file}"),
    ];
    let served = routes_in_source();
    assert!(served.len() >= GUARDED_ROUTES.len(), "{served:?}");
    for (m, p) in &served {
        let listed = GUARDED_ROUTES.iter().any(|(lm, lp, _)| lm == m && lp == p)
            || PUBLIC.iter().any(|(lm, lp)| lm == m && lp == p);
        assert!(
            listed,
            "{m} {p} is served but not in GUARDED_ROUTES: the role tests do not walk it"
        );
    }
    for (m, p, _) in GUARDED_ROUTES {
        assert!(
            served.iter().any(|(sm, sp)| sm == m && sp == p),
            "{m} {p} is listed but not served"
        );
    }
}

/// User lookup (compliance): the age state, consents and guardian settings on file, each view
/// recorded; the export downloads the person's data as JSON and is recorded with the staff id.
#[tokio::test]
async fn compliance_looks_a_user_up_and_exports_their_data_on_the_record() {
    let (e, _) = setup().await;
    let comply = e.login("comply").await;
    let (status, _, page) = e
        .send(get("/console/users?id=u-roles", Some(&comply)))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for want in [
        "Age state",
        "Guardian consent",
        "Minors&#39; settings",
        "Contacts on file",
        "action=\"/console/users/u-roles/export\"",
        "name=\"confirm\"",
    ] {
        assert!(
            page.contains(want) || page.contains(&want.replace("&#39;", "'")),
            "{want} in {page}"
        );
    }
    // The age state by its name, in the console's language.
    let req = axum::http::Request::patch("/admin/users/u-roles")
        .header(
            axum::http::header::AUTHORIZATION,
            format!("Bearer {}", e.state.admin_token),
        )
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(r#"{"age_state": "known_minor"}"#))
        .unwrap();
    assert_eq!(e.send(req).await.0, StatusCode::OK);
    let (_, _, page) = e
        .send(get("/console/users?id=u-roles", Some(&comply)))
        .await;
    assert!(page.contains("<dd>known minor</dd>"), "{page}");
    let req = axum::http::Request::get("/console/users?id=u-roles")
        .header(
            axum::http::header::COOKIE,
            format!("tutela_session={}; tutela_lang=zh", comply.cookie),
        )
        .body(axum::body::Body::empty())
        .unwrap();
    let (_, _, page) = e.send(req).await;
    assert!(page.contains("<dd>已知未成年人</dd>"), "{page}");
    let viewed = crate::support::audit_event(&e.state, "user_viewed")
        .await
        .expect("the lookup recorded");
    assert_eq!(viewed["staff"], "comply");
    let (status, headers, body) = e
        .send(post(
            "/console/users/u-roles/export",
            Some(&comply),
            Some(&comply.csrf),
            &[],
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[axum::http::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
        "{headers:?}"
    );
    let data: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body.contains("u-roles"), "{data}");
    let exported = crate::support::audit_event(&e.state, "exported")
        .await
        .expect("the export recorded");
    assert_eq!(exported["staff"], "comply");
    // An agent can do neither (the walk above checks every route; here the page itself).
    let agent = e.login("agent").await;
    assert_eq!(
        e.send(get("/console/users?id=u-roles", Some(&agent)))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}
