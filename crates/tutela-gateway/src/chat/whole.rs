//! Phase 6 for a whole reply (`stream` off): every choice of the model's answer checked, one
//! decision and one record for the turn on all their findings, and the choices the engine
//! blocks replaced by tutela's text; the rest kept, with the inline notice and the label on
//! plain text only.

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;

use super::context::{Author, TurnCtx};
use super::present;
use super::verdict;

/// Checks a whole model reply, every choice of it, and answers with it or with replacements.
pub(crate) async fn reply(ctx: &TurnCtx, mut v: Value) -> Result<Response, ApiError> {
    let n = v["choices"].as_array().map_or(0, Vec::len).max(1);
    let mut texts = Vec::with_capacity(n);
    let mut per = Vec::with_capacity(n);
    let mut all = Vec::new();
    for i in 0..n {
        let text = checked_text(ctx, &v, i);
        let found = verdict::scan_whole(ctx, &text).await;
        all.extend(found.iter().cloned());
        per.push(found);
        texts.push(text);
    }
    ctx.st.metrics.learned_findings(&all);
    // One decision and one record for the turn, on every choice's findings.
    let verdict = verdict::decide(ctx, &all, &texts.join("\n\n")).await?;
    let mut shown = false;
    let mut replaced = Vec::new();
    let (author, extra) = match verdict {
        Some((replacement, extra)) => {
            // The choices the engine blocks on their own findings; all of them when only the
            // choices together draw the block.
            replaced = (0..n)
                .filter(|&i| !per[i].is_empty() && verdict::blocks(ctx, &per[i]))
                .collect();
            if replaced.is_empty() {
                replaced = (0..n).collect();
            }
            for (i, text) in texts.iter().enumerate() {
                shown |= if replaced.contains(&i) {
                    replace_choice(ctx, &mut v, i, &replacement)
                } else {
                    keep_choice(ctx, &mut v, i, text)
                };
            }
            (Author::Tutela, extra)
        }
        None => {
            for (i, text) in texts.iter().enumerate() {
                shown |= keep_choice(ctx, &mut v, i, text);
            }
            (Author::Model, Vec::new())
        }
    };
    let why = if ctx.structured {
        "structured_output"
    } else {
        "tool_call"
    };
    present::settle_notice(ctx, shown, why).await;
    if let Value::Object(o) = &mut v {
        let mut t = present::tutela_object(ctx, author, &extra);
        if n > 1 {
            t["replaced_choices"] = json!(replaced);
        }
        o.insert("tutela".into(), t);
    }
    let mut resp = axum::Json(v).into_response();
    present::add_label_headers(&mut resp, ctx, author);
    Ok(resp)
}

/// The text of choice `i` the assistant side checks: its content, and the tool-call arguments
/// the app shows to the person.
fn checked_text(ctx: &TurnCtx, v: &Value, i: usize) -> String {
    let message = &v["choices"][i]["message"];
    let mut text = message["content"].as_str().unwrap_or("").to_owned();
    if !ctx.shown.is_empty()
        && let Some(calls) = message["tool_calls"].as_array()
    {
        let shown = ctx.shown.of_calls(calls);
        if !shown.is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&shown);
        }
    }
    text
}

/// Choice `i` replaced by tutela's text: the model's whole message is dropped, tool calls
/// included; a refusal for structured output. Returns whether the person sees text.
fn replace_choice(ctx: &TurnCtx, v: &mut Value, i: usize, replacement: &str) -> bool {
    let mut m = json!({"role": "assistant", "content": Value::Null});
    if ctx.structured {
        m["refusal"] = Value::String(replacement.to_owned());
    } else {
        m["content"] = Value::String(present::decorate(ctx, replacement, Author::Tutela));
    }
    if let Some(slot) = v.pointer_mut(&format!("/choices/{i}/message")) {
        *slot = m;
    }
    if let Some(f) = v.pointer_mut(&format!("/choices/{i}/finish_reason")) {
        *f = json!("stop");
    }
    !ctx.structured
}

/// Choice `i` kept: content for the app (structured output, a tool call, no text) is never
/// altered; plain text gets the inline notice and the label. Returns whether it was decorated.
fn keep_choice(ctx: &TurnCtx, v: &mut Value, i: usize, text: &str) -> bool {
    let message = &v["choices"][i]["message"];
    let tool_call = message["tool_calls"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    let no_content = !message["content"].is_string();
    if ctx.structured || tool_call || no_content {
        return false;
    }
    if let Some(m) = v.pointer_mut(&format!("/choices/{i}/message/content")) {
        *m = Value::String(present::decorate(ctx, text, Author::Model));
    }
    true
}
