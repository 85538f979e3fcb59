//! User lookup (`/console/users?id=`): age state, consents, guardian settings, contacts on file;
//! export (a JSON download, recorded) and deletion of the person's data (CN Art. 16) after
//! typing the id again. Deletion needs the compliance or admin role.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::json;
use tutela_store::{AuditEntry, AuditKind, AuditPayload};

use crate::Console;
use crate::auth::{Signed, audit_staff};
use crate::i18n::Lang;
use crate::layout::{html, page, refusal, secure};
use crate::perm::Perm;

/// `?id=u-42`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    id: Option<String>,
    #[serde(default)]
    deleted: Option<String>,
}

/// `GET /console/users`.
pub async fn lookup(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Query(q): Query<LookupQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(r) = signed.require(lang, Perm::LookUpUsers) {
        return r;
    }
    let id = q.id.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let user = match id {
        Some(id) => match cs.app.records.backend.get_user(id).await {
            Ok(u) => u,
            Err(e) => {
                return refusal(
                    lang,
                    Some(&signed),
                    StatusCode::SERVICE_UNAVAILABLE,
                    &e.to_string(),
                );
            }
        },
        None => None,
    };
    if let Some(u) = &user {
        audit_staff(
            &cs,
            cs.app.clock.now(),
            AuditKind::Admin,
            Some(&u.id),
            Some(&signed.staff),
            json!({"event": "user_viewed"}),
        )
        .await;
    }
    let body = html! {
        section.card {
            h1 { (lang.t("User lookup", "用户查询")) }
            @if let Some(d) = &q.deleted { p.ok role="status" { (lang.t("Deleted the data of ", "已删除以下用户的数据：")) (d) } }
            form.filters method="get" action="/console/users" {
                label.grow { (lang.t("User pseudonym", "用户假名"))
                    input type="search" name="id" value=[id] required; }
                button type="submit" { (lang.t("Look up", "查询")) }
            }
            @if let (Some(id), None) = (id, &user) { p.empty { (lang.t("No user with this id.", "没有此用户。")) " " (id) } }
            @if let Some(u) = &user {
                dl {
                    dt { (lang.t("User pseudonym", "用户假名")) } dd { (u.id) }
                    dt { (lang.t("Age state", "年龄状态")) } dd { (crate::case::age_state_label(lang, json!(u.age_state).as_str().unwrap_or(""))) @if let Some(a) = u.age { " (" (a) ")" } }
                    dt { (lang.t("Age assurance", "年龄核验级别")) } dd { (u.age_assurance.as_str()) }
                    dt { (lang.t("Guardian consent", "监护人同意")) } dd { (if u.guardian_consent { lang.t("yes", "是") } else { lang.t("no", "否") }) }
                    dt { (lang.t("Elderly", "老年用户")) } dd { (if u.elderly { lang.t("yes", "是") } else { lang.t("no", "否") }) }
                    dt { (lang.t("Jurisdiction of record", "登记法域")) } dd { (u.jurisdiction.as_deref().unwrap_or("—")) }
                    dt { (lang.t("Minors' settings", "未成年人设置")) } dd { code { (json!(u.minors)) } }
                    dt { (lang.t("Contacts on file", "登记的联系人")) } dd { (u.contacts.len()) }
                    dt { (lang.t("First seen", "首次出现")) } dd { time { (u.first_seen) } }
                }
                form method="post" action={ "/console/users/" (u.id) "/export" } {
                    input type="hidden" name="csrf" value=(signed.csrf);
                    button.secondary type="submit" { (lang.t("Export the data (JSON, recorded)", "导出数据（JSON，将被记录）")) }
                }
                @if signed.can(Perm::DeleteUserData) {
                    form.danger method="post" action={ "/console/users/" (u.id) "/delete" } {
                        input type="hidden" name="csrf" value=(signed.csrf);
                        p { (lang.t("Deleting removes the person's messages, contacts, notifications and complaint texts; statistics keep a pseudonym; the audit chain stays verifiable. This cannot be undone.", "删除将移除此人的消息、联系人、通知和投诉内容；统计数据保留假名；审计链仍可验证。此操作无法撤销。")) }
                        label { (lang.t("Type the user id to confirm", "输入用户 ID 以确认"))
                            input type="text" name="confirm" required autocomplete="off"; }
                        button.danger type="submit" { (lang.t("Delete this person's data", "删除此人的数据")) }
                    }
                }
            }
        }
    };
    html(
        StatusCode::OK,
        page(lang, lang.t("Users", "用户"), Some(&signed), "users", body),
    )
}

/// The form token only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportForm {
    #[serde(rename = "csrf")]
    _csrf: String,
}

/// `POST /console/users/{id}/export`: everything held about the person, as a download.
pub async fn export(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<String>,
    Form(_f): Form<ExportForm>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(r) = signed.require(lang, Perm::LookUpUsers) {
        return r;
    }
    let now = cs.app.clock.now();
    let export = match cs.app.records.backend.export_user(&id, now).await {
        Ok(Some(e)) => e,
        Ok(None) => return refusal(lang, Some(&signed), StatusCode::NOT_FOUND, &id),
        Err(e) => {
            return refusal(
                lang,
                Some(&signed),
                StatusCode::SERVICE_UNAVAILABLE,
                &e.to_string(),
            );
        }
    };
    audit(
        &cs,
        now,
        AuditKind::DataExport,
        &id,
        &signed,
        json!({"event": "exported"}),
    )
    .await;
    let body = serde_json::to_vec_pretty(&json!({"export": export})).unwrap_or_default();
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"tutela-user-export.json\""),
    );
    secure(r)
}

/// The deletion form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteForm {
    #[serde(rename = "csrf")]
    _csrf: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /console/users/{id}/delete`.
pub async fn delete(
    State(cs): State<Console>,
    headers: HeaderMap,
    signed: Signed,
    Path(id): Path<String>,
    Form(f): Form<DeleteForm>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(r) = signed.require(lang, Perm::DeleteUserData) {
        return r;
    }
    if f.confirm.trim() != id {
        return refusal(
            lang,
            Some(&signed),
            StatusCode::BAD_REQUEST,
            lang.t(
                "Type the user id exactly to confirm the deletion.",
                "请准确输入用户 ID 以确认删除。",
            ),
        );
    }
    let now = cs.app.clock.now();
    let report = match cs.app.records.backend.delete_user(&id, now).await {
        Ok(r) => r,
        Err(tutela_store::StoreError::NotFound { .. }) => {
            return refusal(lang, Some(&signed), StatusCode::NOT_FOUND, &id);
        }
        Err(e) => {
            return refusal(
                lang,
                Some(&signed),
                StatusCode::SERVICE_UNAVAILABLE,
                &e.to_string(),
            );
        }
    };
    cs.app.forget_user(&id).await;
    // Nothing of the deleted user stays, not even a pending hand-back.
    cs.app.drop_handback(&id).await;
    audit(
        &cs,
        now,
        AuditKind::DataDeletion,
        &id,
        &signed,
        json!({
            "event": "deleted",
            "contacts": report.contacts,
            "messages": report.messages,
            "notifications": report.notifications,
            "complaint_texts": report.complaint_texts,
        }),
    )
    .await;
    cs.changed();
    crate::auth::redirect(&format!("/console/users?deleted={}", report.pseudonym))
}

/// A data-rights action, durably in the audit log before the answer.
async fn audit(
    cs: &Console,
    at: tutela_types::Timestamp,
    kind: AuditKind,
    user: &str,
    signed: &Signed,
    mut detail: serde_json::Value,
) {
    if let Some(o) = detail.as_object_mut() {
        o.insert("staff_id".into(), json!(signed.staff.id));
        o.insert("staff".into(), json!(signed.staff.username));
        o.insert("role".into(), json!(signed.staff.role.as_str()));
    }
    let entry = AuditEntry {
        at,
        kind,
        user: Some(user.to_owned()),
        session: None,
        jurisdiction: None,
        payload: AuditPayload::detail(detail),
        profile_hash: String::new(),
        content_hash: None,
    };
    if let Err(e) = cs.app.records.audit_durable(entry).await {
        tracing::error!(error = %e, "console: cannot record a data-rights action");
    }
}
