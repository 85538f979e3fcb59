//! Human takeover (C4), the replies' side: what staff wrote to a person, delivered in the
//! person's next chat turn (`chat::human`, which takes them) or read by the app's own
//! channel (`/v1/tutela/replies`: reading delivers nothing; the app acknowledges what it
//! showed).

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
    b.mark_delivered(&ids, now).await?;
    Ok(Some(
        msgs.into_iter()
            .map(|m| m.body)
            .collect::<Vec<_>>()
            .join("\n\n"),
    ))
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
