//! Phase 6 for a whole reply (`stream` off): every choice of the model's answer checked, one
//! decision and one record for the turn on all their findings, and the choices the engine
//! blocks replaced by tutela's text; the rest kept, with the inline notice and the label on
//! plain text only.

use axum::response::{IntoResponse, Response};
use serde_json::json;
use tutela_openai::ChatCompletion;
use tutela_openai::chat::AssistantMessage;

use crate::error::ApiError;

use super::context::{Author, TurnCtx};
use super::present;
use super::verdict;

/// Checks a whole model reply, every choice of it, and answers with it or with replacements.
pub(crate) async fn reply(ctx: &TurnCtx, mut v: ChatCompletion) -> Result<Response, ApiError> {
    // An answer without choices is decided as one empty reply.
    let n = v.choices.len().max(1);
    let mut texts = Vec::with_capacity(n);
    let mut per = Vec::with_capacity(n);
    let mut all = Vec::new();
    for i in 0..n {
        let text = v
            .choices
            .get(i)
            .map(|c| checked_text(ctx, &c.message))
            .unwrap_or_default();
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
            for (i, (choice, text)) in v.choices.iter_mut().zip(&texts).enumerate() {
                shown |= if replaced.contains(&i) {
                    replace_choice(ctx, choice, &replacement)
                } else {
                    keep_choice(ctx, &mut choice.message, text)
                };
            }
            (Author::Tutela, extra)
        }
        None => {
            for (choice, text) in v.choices.iter_mut().zip(&texts) {
                shown |= keep_choice(ctx, &mut choice.message, text);
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
    let mut t = present::tutela_object(ctx, author, &extra);
    if n > 1 {
        t["replaced_choices"] = json!(replaced);
    }
    v.extra.insert("tutela".into(), t);
    let mut resp = axum::Json(v).into_response();
    present::add_label_headers(&mut resp, ctx, author);
    Ok(resp)
}

/// The text of a choice the assistant side checks: its content, and the tool-call arguments
/// the app shows to the person.
fn checked_text(ctx: &TurnCtx, message: &AssistantMessage) -> String {
    let mut text = message.content.clone().unwrap_or_default();
    if !ctx.shown.is_empty() {
        let shown = ctx.shown.of_calls(message.calls());
        if !shown.is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&shown);
        }
    }
    text
}

/// A choice replaced by tutela's text: the model's whole message is dropped, tool calls
/// included; a refusal for structured output. Returns whether the person sees text.
fn replace_choice(
    ctx: &TurnCtx,
    choice: &mut tutela_openai::chat::Choice,
    replacement: &str,
) -> bool {
    let mut m = AssistantMessage::default();
    if ctx.structured {
        m.refusal = Some(replacement.to_owned());
    } else {
        m.content = Some(present::decorate(ctx, replacement, Author::Tutela));
    }
    put_in_place(choice, m);
    !ctx.structured
}

/// Puts tutela's message in place of the model's: the model's message goes, and so do its
/// `logprobs`, which spell out the replaced text token by token.
fn put_in_place(choice: &mut tutela_openai::chat::Choice, message: AssistantMessage) {
    choice.message = message;
    choice.finish_reason = Some("stop".into());
    if let Some(l) = choice.extra.get_mut("logprobs") {
        *l = serde_json::Value::Null;
    }
}

/// A choice kept: content for the app (structured output, a tool call, no text) is never
/// altered; plain text gets the inline notice and the label. Returns whether it was decorated.
fn keep_choice(ctx: &TurnCtx, message: &mut AssistantMessage, text: &str) -> bool {
    if ctx.structured || !message.calls().is_empty() || message.content.is_none() {
        return false;
    }
    message.content = Some(present::decorate(ctx, text, Author::Model));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_choice_keeps_nothing_the_model_wrote() {
        let mut choice: tutela_openai::chat::Choice = serde_json::from_value(json!({
            "index": 1,
            "message": {"role": "assistant", "content": "don't go", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            "logprobs": {"content": [{"token": "don't", "logprob": -0.1, "bytes": [], "top_logprobs": []}]},
            "finish_reason": "tool_calls",
        }))
        .unwrap();
        put_in_place(&mut choice, AssistantMessage::text("Take care."));
        assert_eq!(
            serde_json::to_value(&choice).unwrap(),
            json!({"index": 1, "message": {"role": "assistant", "content": "Take care."},
                   "logprobs": null, "finish_reason": "stop"})
        );
    }
}
