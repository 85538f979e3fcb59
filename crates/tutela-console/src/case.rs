//! The case view (`/console/cases/{id}`) and what staff do with a case.
//!
//! Shown: the turns before the message that opened the case, that message with the findings'
//! spans marked, what the person wrote since and what staff answered; the findings (detector,
//! rule, tier, score); the person's age state, jurisdictions, contacts on file and the
//! notifications sent; the help lines the person was shown; who holds the case.
//!
//! Opening a case (the page or its stream) is in the audit log with the staff id: it shows
//! what the person wrote.
//!
//! Done (each a form with the session's token, each in the audit log with the staff id):
//! claim; reply (claims an open case; quick templates in the person's language); hand over to
//! another staff member (the holder, or a supervisor for any case); put back in the queue;
//! resolve with a required note and an outcome category. Only the holder resolves a claimed
//! case, or a supervisor (or admin); a case nobody holds is resolved by whoever claims it.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tutela_gateway::texts::{self, Region};
use tutela_store::{AuditKind, Direction, Escalation, EscalationStatus, StaffRole, StoreError};
use tutela_types::Timestamp;

use crate::Console;
use crate::auth::{Signed, audit_staff, redirect};
use crate::i18n::Lang;
use crate::layout::page as shell;
use crate::layout::{highlight, html, refusal, role_name};
use crate::perm::Perm;
use crate::queue::sla;
use crate::signal::Signal;

/// Outcome categories of a resolved case, as stored.
pub const OUTCOMES: [&str; 6] = [
    "safe_with_support",
    "referred",
    "emergency_services",
    "no_risk_found",
    "no_response",
    "other",
];

fn outcome_label(lang: Lang, o: &str) -> &'static str {
    match o {
        "safe_with_support" => lang.t("Safe, supported", "已安全，已提供支持"),
        "referred" => lang.t(
            "Referred to a crisis line or professional",
            "已转介至热线或专业人士",
        ),
        "emergency_services" => lang.t("Emergency services contacted", "已联系紧急服务"),
        "no_risk_found" => lang.t("No risk found", "未发现风险"),
        "no_response" => lang.t("Person stopped responding", "对方未再回应"),
        _ => lang.t("Other", "其他"),
    }
}

/// Quick replies, in the person's language.
fn templates(lang: texts::Lang) -> [(&'static str, &'static str); 5] {
    match lang {
        texts::Lang::En => [
            (
                "Introduce yourself",
                "Hi, I'm a member of the support team: a real person, not the AI. I've read what you wrote and I'm here with you now. Are you safe right now?",
            ),
            (
                "Listen",
                "Thank you for telling me. You don't have to go through this alone. Can you tell me a little more about what is happening right now?",
            ),
            (
                "Immediate danger",
                "If you are in immediate danger, please call your local emergency number now. I can also give you a crisis line you can call or text at any time.",
            ),
            (
                "Someone near",
                "Is there someone you trust who could be with you right now?",
            ),
            (
                "Hand back",
                "I'm going to hand you back to the AI companion now. If things get hard again, just say so and a person will be here.",
            ),
        ],
        texts::Lang::Zh => [
            (
                "自我介绍",
                "你好，我是支持团队的工作人员，是真人，不是AI。我看到了你写的内容，现在我在这里陪着你。你现在安全吗？",
            ),
            (
                "倾听",
                "谢谢你告诉我。你不必独自面对这些。能和我多说一点现在发生了什么吗？",
            ),
            (
                "紧急危险",
                "如果你现在有危险，请立即拨打当地的紧急电话。我也可以给你一个随时可以拨打的心理援助热线。",
            ),
            ("身边的人", "现在有没有你信任的人可以陪在你身边？"),
            (
                "交还AI",
                "我现在会把对话交还给AI陪伴。如果你再次感到难受，直接告诉我们，会有真人来帮助你。",
            ),
        ],
    }
}

/// An age state by its name, from its stored key (`known_minor`); every state the store
/// records (`tutela_types::AgeState`), in both languages.
pub(crate) fn age_state_label(lang: Lang, s: &str) -> String {
    match s {
        "unknown" => lang.t("unknown", "未知").to_owned(),
        "self_declared_adult" => lang.t("self-declared adult", "自称成年").to_owned(),
        "suspected_minor" => lang.t("suspected minor", "疑似未成年人").to_owned(),
        "known_minor" => lang.t("known minor", "已知未成年人").to_owned(),
        "verified_adult" => lang.t("verified adult", "已核验成年").to_owned(),
        other => other.to_owned(),
    }
}

fn store_refusal(lang: Lang, signed: &Signed, e: StoreError) -> Response {
    let status = match e {
        StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        StoreError::Conflict { .. } => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    refusal(lang, Some(signed), status, &e.to_string())
}

/// A case opened for reading (its page or its live stream): the staff member may view cases,
/// and since the view shows what the person wrote (personal data), who read it is recorded
/// (`detail`, never the text).
async fn open(
    cs: &Console,
    lang: Lang,
    signed: &Signed,
    id: i64,
    detail: serde_json::Value,
) -> Result<Escalation, Response> {
    signed.require(lang, Perm::ViewCases)?;
    let case = load(cs, lang, signed, id).await?;
    audit_staff(
        cs,
        cs.app.clock.now(),
        AuditKind::Escalation,
        Some(&case.user_id),
        Some(&signed.staff),
        detail,
    )
    .await;
    Ok(case)
}

async fn load(cs: &Console, lang: Lang, signed: &Signed, id: i64) -> Result<Escalation, Response> {
    match cs.app.records.backend.get_escalation(id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(refusal(
            lang,
            Some(signed),
            StatusCode::NOT_FOUND,
            &format!("#{id}"),
        )),
        Err(e) => Err(store_refusal(lang, signed, e)),
    }
}

fn holds(signed: &Signed, case: &Escalation) -> bool {
    case.status == EscalationStatus::Claimed
        && case.claimed_by.as_deref() == Some(signed.staff.username.as_str())
}

/// Whether `signed` may reply to / resolve / hand over this case.
fn may_act(signed: &Signed, case: &Escalation) -> bool {
    signed.can(Perm::ActOnCases)
        && case.status.is_active()
        && (case.status == EscalationStatus::Open
            || holds(signed, case)
            || signed.can(Perm::Supervise))
}

/// `GET /console/cases/{id}`.
pub async fn page(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<i64>,
) -> Response {
    let lang = Lang::of(&headers);
    let case = match open(
        &cs,
        lang,
        &signed,
        id,
        json!({"event": "case_viewed", "case": id}),
    )
    .await
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    match view(&cs, lang, &signed, &case).await {
        Ok(body) => html(
            StatusCode::OK,
            shell(
                lang,
                &format!("#{}", case.id),
                Some(&signed),
                &format!("/console/cases/{}", case.id),
                body,
            ),
        ),
        Err(e) => store_refusal(lang, &signed, e),
    }
}

async fn view(
    cs: &Console,
    lang: Lang,
    signed: &Signed,
    case: &Escalation,
) -> Result<Markup, StoreError> {
    let b = &cs.app.records.backend;
    let now = cs.app.clock.now();
    let turns = b.case_turns(case.id).await?;
    let messages = b.escalation_messages(case.id).await?;
    let notifications = b.case_notifications(case.id).await?;
    let user = b.get_user(&case.user_id).await?;
    let staff = if signed.can(Perm::ActOnCases) {
        b.list_staff().await?
    } else {
        Vec::new()
    };
    let findings: Vec<tutela_types::Finding> =
        turns.iter().flat_map(|t| t.findings.clone()).collect();
    let signal = Signal::of_case(case, &findings);
    let person_lang = turns
        .iter()
        .rev()
        .find(|t| t.trigger)
        .map_or(texts::Lang::En, |t| texts::Lang::detect(&t.body));
    let mut regions: Vec<Region> = case
        .jurisdiction
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter_map(|j| Region::of_jurisdiction(j.trim()))
        .collect();
    regions.sort();
    regions.dedup();
    let help = texts::resource_lines(&cs.app.config.resources, &regions, person_lang);
    let sla = sla(cs, case);
    let due = Timestamp::from_unix(case.created_at.unix() + i64::from(sla.minutes) * 60);
    let act = may_act(signed, case);
    let resolve_ok = act && (holds(signed, case) || signed.can(Perm::Supervise));
    let last_user = last_from_person(case, &turns, &messages);
    Ok(html! {
        article.case-view {
            header.case-head {
                a.back href="/console" { "← " (lang.t("Queue", "队列")) }
                h1 { (lang.t("Case", "案例")) " #" (case.id) }
                span class={ "badge " (signal.as_str()) } { (signal.label(lang)) }
                span.status id="case-status" { (status_text(lang, case)) }
                // Claiming is the first thing to do with an open case: at the top, where a
                // phone shows it without scrolling past the conversation and the facts.
                @if signed.can(Perm::ActOnCases) && case.status == EscalationStatus::Open {
                    form.claim method="post" action={ "/console/cases/" (case.id) "/claim" } {
                        input type="hidden" name="csrf" value=(signed.csrf);
                        button type="submit" { (lang.t("Claim", "接手")) }
                    }
                }
            }
            div.case-grid {
                section.conversation aria-label=(lang.t("Conversation", "对话")) {
                    h2 { (lang.t("Conversation", "对话")) }
                    p.meta {
                        (lang.t("Last message from the person ", "对方最后一条消息 "))
                        time id="last-from-person" data-since=(last_user.unix()) { (lang.ago(now.secs_since(last_user))) }
                        (lang.t(" ago", "前"))
                    }
                    @if turns.is_empty() && messages.is_empty() {
                        p.empty { (lang.t("No messages were kept for this case (opened through the API, or deleted with the person's data).", "此案例没有保留消息（通过 API 创建，或已随用户数据删除）。")) }
                    }
                    ol.turns id="turns" data-events={ "/console/cases/" (case.id) "/events" } data-state=(state_key(case)) {
                        (conversation(lang, &turns, &messages))
                    }
                    p.stale id="stale" hidden { (lang.t("This case changed (claimed, handed over or resolved). ", "此案例已变更（被接手、转交或结案）。")) a href={ "/console/cases/" (case.id) } { (lang.t("Reload", "刷新")) } }
                    @if act && case.takeover {
                        form.reply method="post" action={ "/console/cases/" (case.id) "/reply" } {
                            input type="hidden" name="csrf" value=(signed.csrf);
                            label for="template" { (lang.t("Quick reply", "快捷回复")) }
                            select id="template" data-fill="reply-text" {
                                option value="" { "—" }
                                @for (name, text) in templates(person_lang) { option value=(text) { (name) } }
                            }
                            label for="reply-text" { (lang.t("Reply to the person", "回复对方")) }
                            textarea id="reply-text" name="text" rows="4" required maxlength="4000" {}
                            button type="submit" { (lang.t("Send reply", "发送回复")) }
                        }
                    } @else if !case.takeover && case.status.is_active() {
                        p.note { (lang.t("This case has no takeover: the AI keeps answering; reach the person through the app's own channels.", "此案例未启用人工接管：AI 继续回答；请通过应用自身的渠道联系对方。")) }
                    } @else if case.status.is_active() && !signed.can(Perm::ActOnCases) {
                        p.note { (lang.t("Your role can read this case but not reply.", "您的角色可以查看但不能回复此案例。")) }
                    } @else if case.status.is_active() {
                        p.note { (lang.t("Held by someone else: ask them or a supervisor to hand it over.", "此案例由他人处理：请让对方或主管转交给您。")) }
                    }
                }
                aside.facts {
                    section {
                        h2 { (lang.t("Case", "案例")) }
                        dl {
                            dt { (lang.t("User pseudonym", "用户假名")) } dd { (case.user_id) }
                            dt { (lang.t("Opened", "创建时间")) } dd { time { (case.created_at) } }
                            dt { (lang.t("Jurisdictions", "法域")) } dd { (case.jurisdiction.as_deref().unwrap_or("—")) }
                            dt { (lang.t("Holder", "处理人")) } dd { (case.claimed_by.as_deref().unwrap_or("—")) }
                            dt { (lang.t("SLA", "时限")) } dd {
                                (sla.minutes) (lang.t(" min · ", " 分钟 · "))
                                @match case.claimed_at {
                                    Some(t) => { (lang.t("taken after ", "接手用时 ")) (lang.ago(t.secs_since(case.created_at))) }
                                    None if now >= due => { span.overdue { (lang.t("overdue", "已超时")) } }
                                    None => { time data-due=(due.unix()) { (lang.ago(due.secs_since(now))) } (lang.t(" left", "剩余")) }
                                }
                                br;
                                small.hint.sla-source { (lang.t("From ", "来源：")) (sla.source(lang)) }
                            }
                            @if let Some(n) = &case.resolution {
                                dt { (lang.t("Resolution note", "处理说明")) } dd { (n) }
                            }
                        }
                    }
                    section {
                        h2 { (lang.t("Findings", "检测结果")) }
                        @if findings.is_empty() { p.empty { "—" } }
                        ul.findings {
                            @for f in &findings {
                                li { strong { (f.detector.as_str()) } " · " (f.rule.as_deref().unwrap_or("")) " · " (format!("{:?}", f.tier).to_lowercase()) " · " (format!("{:.2}", f.score)) }
                            }
                        }
                    }
                    section {
                        h2 { (lang.t("Person", "用户")) }
                        dl {
                            dt { (lang.t("Age state", "年龄状态")) }
                            dd { (user.as_ref().map_or_else(|| "—".to_owned(), |u| age_state_label(lang, &serde_json::to_value(u.age_state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()))) }
                            dt { (lang.t("Contacts on file", "登记的联系人")) }
                            dd { (user.as_ref().map_or(0, |u| u.contacts.len())) }
                            dt { (lang.t("Notifications sent", "已发送通知")) }
                            dd {
                                @if notifications.is_empty() { "—" }
                                @for n in &notifications {
                                    span.pill { (serde_json::to_value(n.contact.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) ": " (n.status.as_str()) } " "
                                }
                            }
                        }
                    }
                    section {
                        h2 { (lang.t("Help lines shown", "已提供的求助热线")) }
                        pre.help { (help) }
                    }
                    @if case.status.is_active() && act && (holds(signed, case) || signed.can(Perm::Supervise)) {
                        section.actions {
                            h2 { (lang.t("Actions", "操作")) }
                            @if act && (holds(signed, case) || signed.can(Perm::Supervise)) {
                                form method="post" action={ "/console/cases/" (case.id) "/assign" } {
                                    input type="hidden" name="csrf" value=(signed.csrf);
                                    label { (lang.t("Hand over to", "转交给"))
                                        select name="to" required {
                                            @for s in staff.iter().filter(|s| s.is_active() && s.role != StaffRole::Compliance && s.username != signed.staff.username) {
                                                option value=(s.username) { (s.display_name) " (" (role_name(lang, s.role)) ")" }
                                            }
                                        }
                                    }
                                    button type="submit" { (lang.t("Hand over", "转交")) }
                                }
                                @if case.status == EscalationStatus::Claimed {
                                    form method="post" action={ "/console/cases/" (case.id) "/release" } {
                                        input type="hidden" name="csrf" value=(signed.csrf);
                                        button.secondary type="submit" { (lang.t("Put back in the queue", "放回队列")) }
                                    }
                                }
                            }
                            @if resolve_ok {
                                form.resolve method="post" action={ "/console/cases/" (case.id) "/resolve" } {
                                    input type="hidden" name="csrf" value=(signed.csrf);
                                    label { (lang.t("Outcome", "结果"))
                                        select name="outcome" required {
                                            option value="" { "—" }
                                            @for o in OUTCOMES { option value=(o) { (outcome_label(lang, o)) } }
                                        }
                                    }
                                    label { (lang.t("Resolution note (required)", "处理说明（必填）"))
                                        textarea name="note" rows="3" required maxlength="2000" {}
                                    }
                                    button type="submit" { (lang.t("Resolve and hand back to the AI", "结案并交还AI")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The turns kept with the case and the messages since, as list items (the page, and each
/// event of the case's stream).
fn conversation(
    lang: Lang,
    turns: &[tutela_store::CaseTurn],
    messages: &[tutela_store::EscalationMessage],
) -> Markup {
    html! {
        @for t in turns {
            @let spans: Vec<(usize, usize)> = t.findings.iter().flat_map(|f| f.spans.iter().map(|s| (s.start, s.end))).collect();
            li class={ "turn " (t.role) @if t.trigger { " trigger" } } {
                span.who {
                    @if t.role == "user" { (lang.t("Person", "用户")) } @else { (lang.t("AI", "AI")) }
                    @if t.trigger { " · " strong { (lang.t("opened the case", "触发案例")) } " · " time { (t.at) } }
                }
                p.body { (highlight(&t.body, &spans)) }
            }
        }
        @for m in messages {
            li class={ "turn " (if m.direction == Direction::FromUser { "user" } else { "staff" }) } {
                span.who {
                    @if m.direction == Direction::FromUser { (lang.t("Person", "用户")) }
                    @else { (lang.t("Staff", "工作人员")) " · " (m.author.as_deref().unwrap_or("")) }
                    " · " time { (m.at) }
                    @if m.direction == Direction::ToUser {
                        " · " @if m.delivered_at.is_some() { (lang.t("delivered", "已送达")) } @else { (lang.t("not yet delivered", "尚未送达")) }
                    }
                }
                p.body { (m.body) }
            }
        }
    }
}

/// What the page's forms depend on: state and holder. When it changes under an open page, the
/// script offers a reload (or reloads, when no reply is being written).
fn state_key(case: &Escalation) -> String {
    format!(
        "{}:{}",
        case.status.as_str(),
        case.claimed_by.as_deref().unwrap_or("")
    )
}

/// When the person last wrote: the message that opened the case or a later one.
fn last_from_person(
    case: &Escalation,
    turns: &[tutela_store::CaseTurn],
    messages: &[tutela_store::EscalationMessage],
) -> Timestamp {
    turns
        .iter()
        .filter(|t| t.trigger)
        .map(|t| t.at)
        .chain(
            messages
                .iter()
                .filter(|m| m.direction == Direction::FromUser)
                .map(|m| m.at),
        )
        .max()
        .unwrap_or(case.created_at)
}

/// `GET /console/cases/{id}/events`: the conversation again whenever it changes (the person
/// wrote, staff replied, a reply was delivered) and the case's state, so an agent sees the
/// person's messages arrive without reloading. Looks every two seconds (the gateway stores
/// the person's messages without knowing the console) and at once after a staff action here;
/// ends with the session.
pub async fn events(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<i64>,
) -> Response {
    use axum::response::IntoResponse;
    use axum::response::sse::{Event, KeepAlive, Sse};
    let lang = Lang::of(&headers);
    let detail = json!({"event": "case_viewed", "case": id, "via": "stream"});
    if let Err(r) = open(&cs, lang, &signed, id, detail).await {
        return r;
    }
    let stream = futures_util::stream::unfold(
        (cs, signed, None::<String>, true),
        move |(cs, signed, last, first)| async move {
            let mut first = first;
            loop {
                if !first {
                    let bell = cs.app.bell().notified();
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), bell).await;
                }
                first = false;
                if !signed.still_live(&cs).await {
                    return None;
                }
                let Some(data) = case_event(&cs, lang, id).await else {
                    continue;
                };
                let key = data.to_string();
                if last.as_deref() == Some(key.as_str()) {
                    continue;
                }
                let event = Event::default().event("case").data(key.clone());
                return Some((
                    Ok::<Event, std::convert::Infallible>(event),
                    (cs, signed, Some(key), false),
                ));
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response()
}

/// One event of a case's stream: the conversation, state and status line, when the person last
/// wrote; `None` when the store cannot be read (the stream tries again).
async fn case_event(cs: &Console, lang: Lang, id: i64) -> Option<serde_json::Value> {
    let b = &cs.app.records.backend;
    let read = async {
        let case = b.get_escalation(id).await?;
        let turns = b.case_turns(id).await?;
        let messages = b.escalation_messages(id).await?;
        Ok::<_, StoreError>((case, turns, messages))
    };
    match read.await {
        Ok((Some(case), turns, messages)) => Some(json!({
            "html": conversation(lang, &turns, &messages).into_string(),
            "state": state_key(&case),
            "status": status_text(lang, &case),
            "from_person": turns.iter().filter(|t| t.role == "user").count()
                + messages.iter().filter(|m| m.direction == Direction::FromUser).count(),
            "last_from_person": last_from_person(&case, &turns, &messages).unix(),
        })),
        Ok((None, _, _)) => None,
        Err(e) => {
            tracing::error!(error = %e, case = id, "console: cannot read a case for its stream");
            None
        }
    }
}

fn status_text(lang: Lang, case: &Escalation) -> String {
    match (case.status, case.claimed_by.as_deref()) {
        (EscalationStatus::Open, _) => lang.t("waiting for a person", "等待人工接手").to_owned(),
        (EscalationStatus::Claimed, Some(by)) => format!("{}{by}", lang.t("held by ", "处理人：")),
        (EscalationStatus::Claimed, None) => lang.t("claimed", "处理中").to_owned(),
        (EscalationStatus::Resolved, _) => lang.t("resolved", "已结案").to_owned(),
    }
}

/// The form token only (claim, put back).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenOnly {
    #[serde(rename = "csrf")]
    _csrf: String,
}

fn back(id: i64) -> Response {
    redirect(&format!("/console/cases/{id}"))
}

/// `POST /console/cases/{id}/claim`.
pub async fn claim(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<i64>,
    Form(_f): Form<TokenOnly>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(r) = signed.require(lang, Perm::ActOnCases) {
        return r;
    }
    let now = cs.app.clock.now();
    match cs
        .app
        .records
        .backend
        .claim_escalation(id, &signed.staff.username, now)
        .await
    {
        Ok(case) => {
            audit_staff(
                &cs,
                now,
                AuditKind::Escalation,
                Some(&case.user_id),
                Some(&signed.staff),
                json!({"event": "claimed", "case": id}),
            )
            .await;
            cs.changed();
            back(id)
        }
        Err(e) => store_refusal(lang, &signed, e),
    }
}

/// The reply form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyForm {
    #[serde(rename = "csrf")]
    _csrf: String,
    text: String,
}

/// `POST /console/cases/{id}/reply`: the text reaches the person in their conversation.
pub async fn reply(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<i64>,
    Form(f): Form<ReplyForm>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(r) = signed.require(lang, Perm::ActOnCases) {
        return r;
    }
    let text = f.text.trim();
    if text.is_empty() || text.chars().count() > 4000 {
        return refusal(
            lang,
            Some(&signed),
            StatusCode::BAD_REQUEST,
            lang.t(
                "Write a reply of at most 4,000 characters.",
                "请填写不超过 4000 字的回复。",
            ),
        );
    }
    let case = match load(&cs, lang, &signed, id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !may_act(&signed, &case) {
        return held_elsewhere(lang, &signed, &case);
    }
    let now = cs.app.clock.now();
    let b = &cs.app.records.backend;
    if case.status == EscalationStatus::Open
        && let Err(e) = b.claim_escalation(id, &signed.staff.username, now).await
    {
        return store_refusal(lang, &signed, e);
    }
    if let Err(e) = b
        .add_escalation_message(
            id,
            Direction::ToUser,
            Some(&signed.staff.username),
            text,
            now,
        )
        .await
    {
        return store_refusal(lang, &signed, e);
    }
    cs.app.wake(&case.user_id);
    audit_staff(
        &cs,
        now,
        AuditKind::Escalation,
        Some(&case.user_id),
        Some(&signed.staff),
        json!({"event": "replied", "case": id}),
    )
    .await;
    cs.changed();
    back(id)
}

fn held_elsewhere(lang: Lang, signed: &Signed, case: &Escalation) -> Response {
    let msg = match (case.status, case.claimed_by.as_deref()) {
        (EscalationStatus::Resolved, _) => lang
            .t("This case is resolved.", "此案例已结案。")
            .to_owned(),
        (_, Some(by)) => format!(
            "{}{by}{}",
            lang.t("This case is held by ", "此案例由 "),
            lang.t(
                ". Only they or a supervisor can do this.",
                " 处理。只有处理人或主管可以执行此操作。"
            )
        ),
        _ => lang
            .t("Claim the case first.", "请先接手此案例。")
            .to_owned(),
    };
    refusal(lang, Some(signed), StatusCode::CONFLICT, &msg)
}

/// The hand-over form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignForm {
    #[serde(rename = "csrf")]
    _csrf: String,
    to: String,
}

/// `POST /console/cases/{id}/assign`: the holder hands over, or a supervisor assigns.
pub async fn assign(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<i64>,
    Form(f): Form<AssignForm>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(r) = signed.require(lang, Perm::ActOnCases) {
        return r;
    }
    let case = match load(&cs, lang, &signed, id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !(holds(&signed, &case) || signed.can(Perm::Supervise)) || !case.status.is_active() {
        return held_elsewhere(lang, &signed, &case);
    }
    let b = &cs.app.records.backend;
    let to = match b.staff_by_username(f.to.trim()).await {
        Ok(Some(s)) if s.is_active() && crate::perm::allows(s.role, Perm::ActOnCases) => s,
        Ok(_) => {
            return refusal(
                lang,
                Some(&signed),
                StatusCode::BAD_REQUEST,
                lang.t(
                    "Choose an active staff member who can take cases.",
                    "请选择可以处理案例的在职工作人员。",
                ),
            );
        }
        Err(e) => return store_refusal(lang, &signed, e),
    };
    let now = cs.app.clock.now();
    match b.assign_escalation(id, &to.username, now).await {
        Ok(case) => {
            audit_staff(
                &cs,
                now,
                AuditKind::Escalation,
                Some(&case.user_id),
                Some(&signed.staff),
                json!({"event": "assigned", "case": id, "to_staff_id": to.id, "to": to.username}),
            )
            .await;
            cs.changed();
            back(id)
        }
        Err(e) => store_refusal(lang, &signed, e),
    }
}

/// `POST /console/cases/{id}/release`: back to the queue, unclaimed.
pub async fn release(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<i64>,
    Form(_f): Form<TokenOnly>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(r) = signed.require(lang, Perm::ActOnCases) {
        return r;
    }
    let case = match load(&cs, lang, &signed, id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !(holds(&signed, &case) || signed.can(Perm::Supervise)) {
        return held_elsewhere(lang, &signed, &case);
    }
    let now = cs.app.clock.now();
    match cs.app.records.backend.release_escalation(id).await {
        Ok(case) => {
            audit_staff(
                &cs,
                now,
                AuditKind::Escalation,
                Some(&case.user_id),
                Some(&signed.staff),
                json!({"event": "released", "case": id}),
            )
            .await;
            cs.changed();
            back(id)
        }
        Err(e) => store_refusal(lang, &signed, e),
    }
}

/// The resolve form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveForm {
    #[serde(rename = "csrf")]
    _csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    outcome: String,
}

/// `POST /console/cases/{id}/resolve`: ends the takeover; the AI answers again.
pub async fn resolve(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<i64>,
    Form(f): Form<ResolveForm>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(r) = signed.require(lang, Perm::ActOnCases) {
        return r;
    }
    let note = f.note.trim();
    if note.is_empty() || !OUTCOMES.contains(&f.outcome.as_str()) {
        return refusal(
            lang,
            Some(&signed),
            StatusCode::BAD_REQUEST,
            lang.t(
                "A resolution note and an outcome are required.",
                "必须填写处理说明并选择结果。",
            ),
        );
    }
    let case = match load(&cs, lang, &signed, id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let supervising = signed.can(Perm::Supervise);
    if !case.status.is_active() || !(holds(&signed, &case) || supervising) {
        return held_elsewhere(lang, &signed, &case);
    }
    let now = cs.app.clock.now();
    match cs
        .app
        .records
        .backend
        .resolve_case(id, &signed.staff.username, note, &f.outcome, now)
        .await
    {
        Ok(done) => {
            if done.takeover {
                // The person's next reply tells them they are talking to the AI again.
                cs.app.hand_back(&done.user_id, id).await;
            } else {
                cs.app.forget_user(&done.user_id).await;
                cs.app.wake(&done.user_id);
            }
            audit_staff(
                &cs,
                now,
                AuditKind::Escalation,
                Some(&done.user_id),
                Some(&signed.staff),
                json!({
                    "event": "resolved",
                    "case": id,
                    "outcome": f.outcome,
                    "held_by": case.claimed_by,
                    "as_supervisor": !holds(&signed, &case),
                    "handed_back": done.takeover,
                }),
            )
            .await;
            cs.changed();
            back(id)
        }
        Err(e) => store_refusal(lang, &signed, e),
    }
}

/// Deletes the turns kept with cases resolved longer ago than `[console] case_retention_days`,
/// at start and then hourly.
pub async fn retention(cs: Console) {
    loop {
        let days = i64::from(cs.app.config.console.case_retention_days);
        let before = Timestamp::from_unix(cs.app.clock.now().unix() - days * 86_400);
        match cs.app.records.backend.purge_case_turns(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                turns = n,
                "console: deleted the kept turns of cases past retention"
            ),
            Err(e) => {
                tracing::error!(error = %e, "console: cannot delete the kept turns past retention")
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_and_template_has_words_in_both_languages() {
        for o in OUTCOMES {
            assert_ne!(outcome_label(Lang::En, o), outcome_label(Lang::Zh, o));
        }
        assert_eq!(
            templates(texts::Lang::En).len(),
            templates(texts::Lang::Zh).len()
        );
    }
}
