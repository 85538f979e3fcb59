//! Human takeover (C4), the replies' side: what staff wrote to a person, delivered in the
//! person's next chat turn (`chat::human`, which takes them) or read by the app's own
//! channel (`/v1/tutela/replies`: reading delivers nothing; the app acknowledges what it
//! showed).

use tutela_store::Direction;
use tutela_types::Timestamp;

use crate::error::ApiError;
use crate::state::AppState;

/// Human replies not yet delivered, joined, marked delivered.
pub(crate) async fn take_replies(
    st: &AppState,
    user: &str,
    now: Timestamp,
) -> Result<Option<String>, ApiError> {
    let b = &st.records.backend;
    let msgs = b.undelivered_replies(user).await?;
    if msgs.is_empty() {
        return Ok(None);
    }
    let ids: Vec<i64> = msgs.iter().map(|m| m.id).collect();
    if let Err(e) = b.mark_delivered(&ids, now).await {
        // The person gets the replies all the same; unmarked, they come again next turn
        // (twice rather than never).
        tracing::error!(error = %e, "human replies delivered but not marked delivered");
        st.metrics
            .store_write_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(Some(
        msgs.into_iter()
            .map(|m| m.body)
            .collect::<Vec<_>>()
            .join("\n\n"),
    ))
}

/// Stores a person's message to their open case. When the store cannot write (a full disk),
/// the turn goes on (the holding message repeats the crisis resources: never a 500 for a
/// person in crisis) and the message is stored in the background: for about an hour, backing
/// off to 5 s (as an intervention's side effects are), then it gives up and says so at error
/// level. The text waits in memory only, never in a log.
pub(crate) async fn store_case_message(st: &AppState, case: i64, text: &str, at: Timestamp) {
    let b = &st.records.backend;
    let Err(e) = b
        .add_escalation_message(case, Direction::FromUser, None, text, at)
        .await
    else {
        return;
    };
    tracing::error!(error = %e, case, "a message to a case could not be stored yet; retried");
    st.metrics
        .store_write_errors
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (st, text) = (st.clone(), text.to_owned());
    tokio::spawn(async move {
        let mut delay = std::time::Duration::from_millis(250);
        for _ in 0..720 {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
            let written = st
                .records
                .backend
                .add_escalation_message(case, Direction::FromUser, None, &text, at)
                .await;
            if written.is_ok() {
                tracing::warn!(
                    case,
                    "a message to a case was stored late, after a failed write"
                );
                return;
            }
        }
        tracing::error!(
            case,
            "gave up storing a message to a case after an hour of failed writes"
        );
    });
}

/// Human replies to `user` not yet delivered with an id above `after`, oldest first; reading
/// them delivers nothing.
pub(crate) async fn pending_replies(
    st: &AppState,
    user: &str,
    after: i64,
) -> Result<Vec<tutela_store::EscalationMessage>, ApiError> {
    let mut msgs = st.records.backend.undelivered_replies(user).await?;
    msgs.retain(|m| m.id > after);
    Ok(msgs)
}

/// Marks the user's undelivered replies up to `through` delivered (the app showed them);
/// returns how many.
pub(crate) async fn acknowledge_replies(
    st: &AppState,
    user: &str,
    through: i64,
    now: Timestamp,
) -> Result<usize, ApiError> {
    let ids: Vec<i64> = pending_replies(st, user, 0)
        .await?
        .into_iter()
        .map(|m| m.id)
        .filter(|id| *id <= through)
        .collect();
    st.records.backend.mark_delivered(&ids, now).await?;
    Ok(ids.len())
}
