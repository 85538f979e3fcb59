//! Keeps what staff need to see of a case (the operator console): the message that opened or
//! raised it, with the user-side findings (spans into that text), and, when the case is new,
//! the last `[console] case_turns` turns of the conversation before it, as the app sent them in
//! `messages`. Stored beside the case (`tutela_store::CaseStore`), never in the audit chain;
//! deleted with the user's data and after the retention period of a resolved case.

use tutela_openai::ChatCompletionRequest;
use tutela_openai::chat::Role;
use tutela_store::NewCaseTurn;
use tutela_types::{Finding, Side};

use crate::state::AppState;

/// The turns before the person's new input: user and assistant messages of the request, up to
/// (not including) the trailing run of user messages, the last `n` of them.
pub(crate) fn prior_turns(req: &ChatCompletionRequest, n: usize) -> Vec<NewCaseTurn> {
    let msgs = &req.messages;
    let end = msgs
        .iter()
        .rposition(|m| m.role == Role::Assistant)
        .map_or(0, |i| i + 1);
    let mut turns: Vec<NewCaseTurn> = msgs[..end]
        .iter()
        .filter_map(|m| {
            if m.role != Role::User && m.role != Role::Assistant {
                return None;
            }
            let body = m.content_text();
            (!body.trim().is_empty()).then(|| NewCaseTurn {
                role: m.role.as_str().to_owned(),
                body,
                trigger: false,
                findings: Vec::new(),
            })
        })
        .collect();
    let skip = turns.len().saturating_sub(n);
    turns.drain(..skip);
    turns
}

/// What to keep beside the case a user turn opens or raises: the triggering message with its
/// user-side findings, and the turns before it (kept only for a new case: the store keeps
/// them only when the case has none yet). Written with the turn's side effects, in their
/// transaction (`chat::effects`).
pub(crate) fn turns(
    st: &AppState,
    body: &ChatCompletionRequest,
    user_text: &str,
    findings: &[Finding],
) -> (Vec<NewCaseTurn>, NewCaseTurn) {
    let prior = prior_turns(body, st.config.console.case_turns);
    let trigger = NewCaseTurn {
        role: "user".into(),
        body: user_text.to_owned(),
        trigger: true,
        findings: findings
            .iter()
            .filter(|f| f.side == Side::User)
            .cloned()
            .collect(),
    };
    (prior, trigger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn request(v: Value) -> ChatCompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn prior_turns_stop_before_the_new_input_and_keep_the_last_n() {
        let req = request(json!({"messages": [
            {"role": "system", "content": "persona"},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": "three"},
            {"role": "assistant", "content": [{"type": "text", "text": "four"}]},
            {"role": "user", "content": "new input"},
        ]}));
        let all: Vec<String> = prior_turns(&req, 10).into_iter().map(|t| t.body).collect();
        assert_eq!(all, ["one", "two", "three", "four"]);
        let last: Vec<String> = prior_turns(&req, 2).into_iter().map(|t| t.body).collect();
        assert_eq!(last, ["three", "four"]);
        assert!(prior_turns(&req, 0).is_empty());
        let first = request(json!({"messages": [{"role": "user", "content": "hi"}]}));
        assert!(prior_turns(&first, 10).is_empty());
    }
}
