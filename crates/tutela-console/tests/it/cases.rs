//! Crisis messages in English and Chinese reach the queue, live, ranked by what the findings
//! say; the case view shows the triggering message (spans marked) and the turns before it; an
//! agent claims and replies, the person receives the reply in their conversation; a second
//! agent cannot resolve a case they do not hold, a supervisor can (with a note); resolving hands
//! the person back to the AI; every step is in the audit log with the staff id.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use tower::ServiceExt;
use tutela_store::{Direction, EscalationStatus, StaffRole};

use crate::support::{Env, audit_event, env, get, location, post};

const IMMINENT_EN: &str = "I'm going to kill myself tonight, I already have the pills.";
const IDEATION_EN: &str = "I want to die.";
const IMMINENT_ZH: &str = "我今晚就要自杀，药都准备好了。";

async fn staffed() -> Env {
    let e = env().await;
    e.staff("ann", StaffRole::Agent).await;
    e.staff("bob", StaffRole::Agent).await;
    e.staff("sue", StaffRole::Supervisor).await;
    e
}

#[tokio::test]
async fn the_queue_ranks_by_the_findings_not_by_age() {
    let e = staffed().await;
    let ideation = e.crisis("u-ideation", IDEATION_EN).await;
    e.clock.advance_secs(60);
    let imminent = e.crisis("u-imminent", IMMINENT_EN).await;
    e.clock.advance_secs(60);
    let zh = e.crisis("u-zh", IMMINENT_ZH).await;
    let s = e.login("ann").await;
    let (status, _, body) = e.send(get("/console", Some(&s))).await;
    assert_eq!(status, StatusCode::OK);
    let at = |id: i64| {
        body.find(&format!("data-case=\"{id}\""))
            .unwrap_or_else(|| panic!("case {id} in {body}"))
    };
    // Both imminent cases before the older ideation one; the older imminent one first.
    assert!(at(imminent) < at(zh), "older imminent first");
    assert!(at(zh) < at(ideation), "imminent before ideation");
    assert!(body.contains("data-signal=\"imminent\""));
    assert!(body.contains("data-signal=\"ideation\""));
    // Search by pseudonym and by case id; filters.
    let (_, _, found) = e.send(get("/console?q=u-zh", Some(&s))).await;
    assert!(
        found.contains(&format!("data-case=\"{zh}\""))
            && !found.contains(&format!("data-case=\"{imminent}\""))
    );
    let (_, _, found) = e
        .send(get(&format!("/console?q=%23{ideation}"), Some(&s)))
        .await;
    assert!(
        found.contains(&format!("data-case=\"{ideation}\""))
            && !found.contains(&format!("data-case=\"{zh}\""))
    );
    let (_, _, mine) = e.send(get("/console?assignee=me", Some(&s))).await;
    assert!(mine.contains("No open cases"), "nothing claimed yet");
    // A supervisor filters by who holds a case.
    e.send(post(
        &format!("/console/cases/{zh}/claim"),
        Some(&s),
        Some(&s.csrf),
        &[],
    ))
    .await;
    let sue = e.login("sue").await;
    let (_, _, held) = e.send(get("/console?assignee=ann", Some(&sue))).await;
    assert!(
        held.contains("<option value=\"bob\""),
        "colleagues listed for a supervisor"
    );
    assert!(
        held.contains(&format!("data-case=\"{zh}\""))
            && !held.contains(&format!("data-case=\"{imminent}\""))
    );
    assert!(held.contains("held by <strong>ann</strong>"), "{held}");
    let (_, _, agents) = e.send(get("/console", Some(&s))).await;
    assert!(
        !agents.contains("<option value=\"bob\""),
        "agents do not get the list"
    );
    // The SLA clock: five minutes by default; the first case is past it.
    e.clock.advance_secs(4 * 60);
    let (_, _, later) = e.send(get("/console", Some(&s))).await;
    assert!(later.contains("SLA overdue by"), "{later}");
}

/// Reads the event stream until `needle` shows up (a liveness bound only: the stream looks every
/// two seconds).
async fn read_until(body: &mut axum::body::BodyDataStream, needle: &str, text: &mut String) {
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while !text.contains(needle) {
            let chunk = body.next().await.expect("stream open").expect("chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(found.is_ok(), "`{needle}` never arrived in {text}");
}

#[tokio::test]
async fn a_new_case_arrives_live_on_the_event_stream() {
    let e = staffed().await;
    let s = e.login("ann").await;
    let before = e.crisis("u-first", IDEATION_EN).await;
    let req = Request::get("/console/events")
        .header(header::COOKIE, format!("tutela_session={}", s.cookie))
        .body(Body::empty())
        .unwrap();
    let r = e.app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = r.into_body().into_data_stream();
    let mut text = String::new();
    read_until(&mut body, &format!("data-case=\\\"{before}\\\""), &mut text).await;
    assert!(text.starts_with("event: queue"), "{text}");
    let zh = e.crisis("u-live-zh", IMMINENT_ZH).await;
    read_until(&mut body, &format!("data-case=\\\"{zh}\\\""), &mut text).await;
    assert!(text.contains(&format!("\"imminent\":[{zh}]")), "{text}");
}

#[tokio::test]
async fn the_case_view_shows_the_message_its_spans_and_the_turns_before() {
    let e = staffed().await;
    let case = e.crisis("u-view", IMMINENT_EN).await;
    let s = e.login("ann").await;
    let (status, _, body) = e
        .send(get(&format!("/console/cases/{case}"), Some(&s)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("hi, long day") && body.contains("I&#39;m here. What happened?")
            || body.contains("I'm here. What happened?"),
        "prior turns: {body}"
    );
    assert!(body.contains("<mark>"), "spans marked: {body}");
    assert!(body.contains("opened the case"));
    assert!(body.contains("Imminent: plan or means"));
    assert!(body.contains("988"), "US help lines shown: {body}");
    assert!(body.contains("name=\"text\""), "reply box for an agent");
    assert!(
        body.contains("Introduce yourself"),
        "quick templates in English"
    );
    // Chinese: templates in the person's language.
    let zh = e.crisis("u-view-zh", IMMINENT_ZH).await;
    let (_, _, body) = e.send(get(&format!("/console/cases/{zh}"), Some(&s))).await;
    assert!(body.contains("自我介绍"), "Chinese templates");
    assert!(body.contains("<mark>"));
    // The console in Chinese.
    let req = Request::get(format!("/console/cases/{zh}"))
        .header(
            header::COOKIE,
            format!("tutela_session={}; tutela_lang=zh", s.cookie),
        )
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = e.send(req).await;
    assert!(
        body.contains("触发案例") && body.contains("紧急：有计划或手段"),
        "{body}"
    );
    // Kept turns never reach the audit chain.
    let page = e.state.records.backend.audit_page(0, 1000).await.unwrap();
    let all =
        serde_json::to_string(&page.iter().map(|r| r.payload.clone()).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains("hi, long day") && !all.contains("pills"));
}

#[tokio::test]
async fn claim_reply_hand_over_and_resolve() {
    let e = staffed().await;
    let case = e.crisis("u-flow", IMMINENT_EN).await;
    let ann = e.login("ann").await;
    let bob = e.login("bob").await;
    let sue = e.login("sue").await;
    let path = |a: &str| format!("/console/cases/{case}/{a}");

    // Ann claims and replies.
    let (status, headers, _) = e
        .send(post(&path("claim"), Some(&ann), Some(&ann.csrf), &[]))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), format!("/console/cases/{case}"));
    let (status, _, _) = e
        .send(post(
            &path("reply"),
            Some(&ann),
            Some(&ann.csrf),
            &[("text", "I'm Ann, a real person. Are you safe right now?")],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let msgs = e
        .state
        .records
        .backend
        .escalation_messages(case)
        .await
        .unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        (msgs[0].direction, msgs[0].author.as_deref()),
        (Direction::ToUser, Some("ann"))
    );
    let d = audit_event(&e.state, "replied").await.unwrap();
    assert_eq!(d["staff"], "ann");
    assert!(d.get("text").is_none(), "no chat text in the audit log");

    // The person's next turn carries the reply.
    let reply = e
        .chat(
            "u-flow",
            serde_json::json!([{"role": "user", "content": "ok"}]),
        )
        .await;
    let text = reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("");
    assert!(text.contains("Are you safe right now?"), "{reply}");

    // Bob holds nothing: he can neither reply nor resolve.
    let (status, _, _) = e
        .send(post(
            &path("reply"),
            Some(&bob),
            Some(&bob.csrf),
            &[("text", "hi")],
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, body) = e
        .send(post(
            &path("resolve"),
            Some(&bob),
            Some(&bob.csrf),
            &[("note", "done"), ("outcome", "referred")],
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("held by"), "{body}");

    // Ann hands over to Bob; now Bob holds it.
    let (status, _, _) = e
        .send(post(
            &path("assign"),
            Some(&ann),
            Some(&ann.csrf),
            &[("to", "bob")],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let c = e
        .state
        .records
        .backend
        .get_escalation(case)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.claimed_by.as_deref(), Some("bob"));
    let (status, _, _) = e
        .send(post(
            &path("resolve"),
            Some(&ann),
            Some(&ann.csrf),
            &[("note", "x"), ("outcome", "other")],
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "Ann no longer holds it");

    // Resolving needs a note and an outcome, even for a supervisor.
    let (status, _, _) = e
        .send(post(
            &path("resolve"),
            Some(&sue),
            Some(&sue.csrf),
            &[("note", " "), ("outcome", "referred")],
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = e
        .send(post(
            &path("resolve"),
            Some(&sue),
            Some(&sue.csrf),
            &[("note", "talked it through"), ("outcome", "nonsense")],
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The supervisor resolves Bob's case, with a note.
    let (status, _, _) = e
        .send(post(
            &path("resolve"),
            Some(&sue),
            Some(&sue.csrf),
            &[
                ("note", "Safe with her sister; referred to 988."),
                ("outcome", "referred"),
            ],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let c = e
        .state
        .records
        .backend
        .get_escalation(case)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, EscalationStatus::Resolved);
    assert_eq!(
        c.resolution.as_deref(),
        Some("Safe with her sister; referred to 988.")
    );
    let d = audit_event(&e.state, "resolved").await.unwrap();
    assert_eq!(
        (
            d["staff"].as_str(),
            d["outcome"].as_str(),
            d["held_by"].as_str()
        ),
        (Some("sue"), Some("referred"), Some("bob"))
    );
    assert_eq!(d["as_supervisor"], true);
    assert!(audit_event(&e.state, "assigned").await.is_some());
    assert!(audit_event(&e.state, "claimed").await.is_some());

    // Resolved: nothing more to do; the queue no longer lists it.
    let (status, _, _) = e
        .send(post(&path("claim"), Some(&ann), Some(&ann.csrf), &[]))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, _, q) = e.send(get("/console", Some(&ann))).await;
    assert!(!q.contains(&format!("data-case=\"{case}\"")));
}

#[tokio::test]
async fn an_agent_puts_a_case_back_and_the_turns_go_with_the_user_data() {
    let e = staffed().await;
    let case = e.crisis("u-back", IDEATION_EN).await;
    let ann = e.login("ann").await;
    e.send(post(
        &format!("/console/cases/{case}/claim"),
        Some(&ann),
        Some(&ann.csrf),
        &[],
    ))
    .await;
    let (status, _, _) = e
        .send(post(
            &format!("/console/cases/{case}/release"),
            Some(&ann),
            Some(&ann.csrf),
            &[],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let c = e
        .state
        .records
        .backend
        .get_escalation(case)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.status, c.claimed_by), (EscalationStatus::Open, None));
    assert!(
        !e.state
            .records
            .backend
            .case_turns(case)
            .await
            .unwrap()
            .is_empty()
    );
    e.state
        .records
        .backend
        .delete_user("u-back", e.state.clock.now())
        .await
        .unwrap();
    assert!(
        e.state
            .records
            .backend
            .case_turns(case)
            .await
            .unwrap()
            .is_empty()
    );
    // A case row without kept turns still renders.
    let (status, _, body) = e
        .send(get(&format!("/console/cases/{case}"), Some(&ann)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("No messages were kept"));
}

#[tokio::test]
async fn the_event_stream_ends_with_the_session() {
    let e = staffed().await;
    let s = e.login("ann").await;
    let req = Request::get("/console/events")
        .header(header::COOKIE, format!("tutela_session={}", s.cookie))
        .body(Body::empty())
        .unwrap();
    let r = e.app.clone().oneshot(req).await.unwrap();
    let mut body = r.into_body().into_data_stream();
    let mut text = String::new();
    read_until(&mut body, "event: queue", &mut text).await;
    let (status, _, _) = e
        .send(post("/console/logout", Some(&s), Some(&s.csrf), &[]))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // A new case would be sent to a live session; this one's stream ends instead.
    e.crisis("u-after", IDEATION_EN).await;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.expect("chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream went on: {text}");
    assert!(!text.contains("u-after"), "{text}");
}

#[tokio::test]
async fn the_sla_is_the_smallest_figure_of_the_case_jurisdictions() {
    let e = crate::support::env_with(
        "[console]\nsla_minutes = 9\nsla_minutes_by_jurisdiction = { cn = 2, us-ca = 3 }\n",
    )
    .await;
    e.staff("ann", StaffRole::Agent).await;
    let case = e.crisis("u-sla", IDEATION_EN).await;
    let s = e.login("ann").await;
    let (_, _, body) = e
        .send(get(&format!("/console/cases/{case}"), Some(&s)))
        .await;
    // The deployment serves cn, us-ca, us-ny and eu: cn's two minutes apply.
    assert!(body.contains("<dd>2 min · "), "{body}");
    // The page says where the figure comes from: the deployment's setting, since no profile
    // states a time to a human.
    assert!(
        body.contains("From the deployment&#39;s setting [console] sla_minutes_by_jurisdiction.cn (no profile in force states a time to a human)")
            || body.contains("From the deployment's setting [console] sla_minutes_by_jurisdiction.cn (no profile in force states a time to a human)"),
        "{body}"
    );
    e.clock.advance_secs(150);
    let (_, _, queue) = e.send(get("/console", Some(&s))).await;
    assert!(queue.contains("SLA overdue by 30 s"), "{queue}");
    assert!(
        queue.contains("title=\"2 min to a human: the deployment"),
        "{queue}"
    );
    // Without a figure for any of the case's jurisdictions: the deployment's default, named.
    let e = crate::support::env().await;
    e.staff("ann", StaffRole::Agent).await;
    let case = e.crisis("u-sla", IDEATION_EN).await;
    let s = e.login("ann").await;
    let (_, _, body) = e
        .send(get(&format!("/console/cases/{case}"), Some(&s)))
        .await;
    assert!(body.contains("<dd>5 min · "), "{body}");
    assert!(
        body.contains(
            "[console] sla_minutes (default 5; no profile in force states a time to a human)"
        ),
        "{body}"
    );
}

/// The case view is live: its stream sends the conversation again when the person writes, when
/// staff reply (at once) and when the case changes hands; the page carries the stream's address
/// and the state its forms were drawn for; a case that does not exist is a 404, and the stream
/// ends with the session.
#[tokio::test]
async fn the_case_view_streams_the_conversation_as_it_happens() {
    let e = staffed().await;
    let case = e.crisis("u-live-case", IMMINENT_EN).await;
    let ann = e.login("ann").await;
    let (_, _, page) = e
        .send(get(&format!("/console/cases/{case}"), Some(&ann)))
        .await;
    assert!(
        page.contains(&format!("data-events=\"/console/cases/{case}/events\"")),
        "{page}"
    );
    assert!(page.contains("data-state=\"open:\""), "{page}");
    // Claim sits at the top of an open case, the one action an agent has on it: no empty
    // "Actions" box further down.
    let claim = page.find("<form class=\"claim\"").expect("a claim form");
    assert!(claim < page.find("Conversation").unwrap(), "{page}");
    assert!(!page.contains("<h2>Actions</h2>"), "{page}");
    assert_eq!(
        e.send(get("/console/cases/9999/events", Some(&ann)))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let req = Request::get(format!("/console/cases/{case}/events"))
        .header(header::COOKIE, format!("tutela_session={}", ann.cookie))
        .body(Body::empty())
        .unwrap();
    let r = e.app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = r.into_body().into_data_stream();
    let mut text = String::new();
    read_until(&mut body, "already have the pills", &mut text).await;
    assert!(text.starts_with("event: case"), "{text}");
    assert!(text.contains(r#""state":"open:""#), "{text}");

    // The person writes again: their message arrives without a reload.
    e.chat(
        "u-live-case",
        serde_json::json!([{"role": "user", "content": "is anybody reading this"}]),
    )
    .await;
    read_until(&mut body, "is anybody reading this", &mut text).await;

    // Ann claims and replies: the stream says who holds it, and shows the reply.
    e.send(post(
        &format!("/console/cases/{case}/claim"),
        Some(&ann),
        Some(&ann.csrf),
        &[],
    ))
    .await;
    read_until(&mut body, r#""state":"claimed:ann""#, &mut text).await;
    let (status, _, page) = e
        .send(post(
            &format!("/console/cases/{case}/reply"),
            Some(&ann),
            Some(&ann.csrf),
            &[("text", "I'm reading it, I'm Ann.")],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    read_until(&mut body, "reading it, I", &mut text).await;
    assert!(text.contains("not yet delivered"), "{text}");

    // Who read the case is recorded: the page and the stream, with the staff id, no text.
    let mut viewed: Vec<serde_json::Value> = Vec::new();
    for _ in 0..200 {
        viewed = crate::support::audit_events(&e.state, "case_viewed")
            .await
            .into_iter()
            .filter(|d| d["case"] == case && d["staff"] == "ann" && d["staff_id"].is_i64())
            .collect();
        if viewed.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(viewed.len() >= 2, "{viewed:?}");
    assert!(viewed.iter().any(|d| d["via"] == "stream"), "{viewed:?}");
    assert!(!viewed.iter().any(|d| d.to_string().contains("pills")));

    // Signing out ends the stream.
    e.send(post("/console/logout", Some(&ann), Some(&ann.csrf), &[]))
        .await;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived the session");
}

/// Sets a person's record through the admin API (age state, jurisdiction, contacts).
async fn on_file(e: &Env, user: &str, record: serde_json::Value) {
    let req = Request::patch(format!("/admin/users/{user}"))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", e.state.admin_token),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(record.to_string()))
        .unwrap();
    let (status, _, body) = e.send(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The case view's "Person" box: the age state by its name (every state the store records,
/// in both languages), the contacts on file and the notifications sent to them.
#[tokio::test]
async fn the_case_view_names_the_age_state_and_shows_contacts_and_notifications() {
    let e = staffed().await;
    on_file(
        &e,
        "u-minor",
        serde_json::json!({
            "jurisdiction": "cn",
            "age_state": "known_minor",
            "contacts": [{"kind": "guardian", "channel": "sms", "address": "+86 138 0000 0000"}],
        }),
    )
    .await;
    let case = e.crisis("u-minor", IMMINENT_ZH).await;
    let s = e.login("ann").await;
    let person = |body: &str| {
        let from = body
            .find("<h2>Person</h2>")
            .or_else(|| body.find("<h2>用户</h2>"));
        let from = from.unwrap_or_else(|| panic!("no person box in {body}"));
        let to = body[from..].find("</section>").unwrap() + from;
        body[from..to].to_owned()
    };
    let (_, _, body) = e
        .send(get(&format!("/console/cases/{case}"), Some(&s)))
        .await;
    let p = person(&body);
    assert!(p.contains("<dd>known minor</dd>"), "{p}");
    assert!(p.contains("<dd>1</dd>"), "one contact on file: {p}");
    assert!(
        p.contains("guardian: "),
        "the notification to the guardian: {p}"
    );
    let req = Request::get(format!("/console/cases/{case}"))
        .header(
            header::COOKIE,
            format!("tutela_session={}; tutela_lang=zh", s.cookie),
        )
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = e.send(req).await;
    assert!(person(&body).contains("<dd>已知未成年人</dd>"), "{body}");
    // Every age state the store records has a name of its own, in both languages.
    for (state, en, zh) in [
        ("unknown", "unknown", "未知"),
        ("self_declared_adult", "self-declared adult", "自称成年"),
        ("suspected_minor", "suspected minor", "疑似未成年人"),
        ("verified_adult", "verified adult", "已核验成年"),
    ] {
        on_file(&e, "u-minor", serde_json::json!({ "age_state": state })).await;
        let (_, _, body) = e
            .send(get(&format!("/console/cases/{case}"), Some(&s)))
            .await;
        assert!(person(&body).contains(&format!("<dd>{en}</dd>")), "{state}");
        let req = Request::get(format!("/console/cases/{case}"))
            .header(
                header::COOKIE,
                format!("tutela_session={}; tutela_lang=zh", s.cookie),
            )
            .body(Body::empty())
            .unwrap();
        let (_, _, body) = e.send(req).await;
        assert!(person(&body).contains(&format!("<dd>{zh}</dd>")), "{state}");
    }
}

/// Resolving a takeover case in the console hands the person back: their next reply tells them
/// they are talking to the AI again, once, and both the hand-back and its delivery are in the
/// audit log.
#[tokio::test]
async fn resolving_in_the_console_tells_the_person_the_ai_is_back() {
    let e = staffed().await;
    let case = e.crisis("u-handback", IMMINENT_EN).await;
    let ann = e.login("ann").await;
    let path = |a: &str| format!("/console/cases/{case}/{a}");
    e.send(post(&path("claim"), Some(&ann), Some(&ann.csrf), &[]))
        .await;
    e.send(post(
        &path("reply"),
        Some(&ann),
        Some(&ann.csrf),
        &[("text", "I'm Ann, a real person.")],
    ))
    .await;
    let said = |text: &'static str| {
        let e = &e;
        async move {
            let v = e
                .chat(
                    "u-handback",
                    serde_json::json!([{"role": "user", "content": text}]),
                )
                .await;
            (
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                v["tutela"]["author"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    let (text, _) = said("ok").await;
    assert!(text.contains("real person"), "{text}");
    let (status, _, _) = e
        .send(post(
            &path("resolve"),
            Some(&ann),
            Some(&ann.csrf),
            &[("note", "Safe at home."), ("outcome", "safe_with_support")],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let d = audit_event(&e.state, "resolved").await.unwrap();
    assert_eq!(
        (d["staff"].as_str(), d["handed_back"].as_bool()),
        (Some("ann"), Some(true))
    );
    let (text, author) = said("can we talk about music?").await;
    assert!(text.contains("talking to the AI again"), "{text}");
    assert_eq!(author, "model", "the AI answers again");
    let (text, _) = said("what's your favourite film?").await;
    assert!(!text.contains("talking to the AI again"), "once: {text}");
    // The delivery of the news is recorded (the turn's records are batched).
    let mut found = false;
    for _ in 0..100 {
        let page = e.state.records.backend.audit_page(0, 10_000).await.unwrap();
        if page
            .iter()
            .any(|r| r.payload.to_string().contains("ai_resumed"))
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(found, "the hand-back's delivery is in the audit log");
}

/// The queue's filters: state, jurisdiction, detector (and assignee, with search, above).
#[tokio::test]
async fn the_queue_filters_by_state_jurisdiction_and_detector() {
    let e = staffed().await;
    on_file(&e, "u-f-cn", serde_json::json!({"jurisdiction": "cn"})).await;
    on_file(&e, "u-f-ca", serde_json::json!({"jurisdiction": "us-ca"})).await;
    let cn = e.crisis("u-f-cn", IMMINENT_ZH).await;
    let ca = e.crisis("u-f-ca", IDEATION_EN).await;
    let ann = e.login("ann").await;
    e.send(post(
        &format!("/console/cases/{ca}/claim"),
        Some(&ann),
        Some(&ann.csrf),
        &[],
    ))
    .await;
    let shows = |body: &str, id: i64| body.contains(&format!("data-case=\"{id}\""));
    let (_, _, all) = e.send(get("/console", Some(&ann))).await;
    assert!(shows(&all, cn) && shows(&all, ca), "{all}");
    // Each row says how long ago the person last wrote (the script keeps it ticking).
    assert!(all.contains("last message <time data-since="), "{all}");
    let (_, _, open) = e.send(get("/console?state=open", Some(&ann))).await;
    assert!(shows(&open, cn) && !shows(&open, ca), "{open}");
    let (_, _, claimed) = e.send(get("/console?state=claimed", Some(&ann))).await;
    assert!(!shows(&claimed, cn) && shows(&claimed, ca), "{claimed}");
    let (_, _, in_cn) = e.send(get("/console?jurisdiction=cn", Some(&ann))).await;
    assert!(shows(&in_cn, cn) && !shows(&in_cn, ca), "{in_cn}");
    let (_, _, crisis) = e.send(get("/console?detector=crisis", Some(&ann))).await;
    assert!(shows(&crisis, cn) && shows(&crisis, ca), "{crisis}");
    let (_, _, other) = e
        .send(get("/console?detector=third_party", Some(&ann)))
        .await;
    assert!(!shows(&other, cn) && !shows(&other, ca), "{other}");
}
