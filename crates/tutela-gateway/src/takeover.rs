//! Human takeover (C4), the replies' side: what staff wrote to a person, delivered in the
//! person's next chat turn (`chat::human`, which takes them) or read by the app's own
//! channel (`/v1/tutela/replies`: reading delivers nothing; the app acknowledges what it
//! showed).

use tutela_store::Direction;
use tutela_types::Timestamp;

use crate::error::ApiError;
use crate::held::{Attempt, Held, Kind, Outcome};
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
/// person in crisis) and the message is held in the gateway's one queue of held writes
/// (`held.rs`), whose worker stores it, in order with the side effects held before it, with
/// the same bounded backoff (250 ms to 5 s) for as long as the process lives: it never gives
/// up. At the queue's cap this waits for room (backpressure). The text is held in memory
/// only, never in a log or the spill directory (it is personal data that a deletion must
/// reach), so kill -9 or a stop during the outage loses it; `tutela_case_messages_held` counts
/// what is held and `/readyz` answers 503 until it is stored. A message the store refuses for
/// good (the case was resolved or deleted meanwhile) is said at error level and not held.
pub(crate) async fn store_case_message(st: &AppState, case: i64, text: &str, at: Timestamp) {
    let Err(e) = write_case_message(st, case, text, at).await else {
        // The case's page shows it at once, on every instance.
        st.queue_changed();
        return;
    };
    st.metrics
        .store_write_errors
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if refused(&e) {
        tracing::error!(error = %e, case, "a message to a case cannot be stored: the case refuses it");
        return;
    }
    tracing::error!(error = %e, case, "a message to a case could not be stored yet; held and retried");
    let held = HeldCaseMessage {
        case,
        text: text.to_owned(),
        at,
    };
    st.held.hold(Box::new(held)).await;
}

/// One attempt to store a person's message to their case.
async fn write_case_message(
    st: &AppState,
    case: i64,
    text: &str,
    at: Timestamp,
) -> Result<(), ApiError> {
    if let Some(fault) = &st.records.write_fault
        && fault.fails(&format!("case {case}"))
    {
        return Err(ApiError::Internal(
            "database or disk is full (fault test)".into(),
        ));
    }
    st.records
        .backend
        .add_escalation_message(case, Direction::FromUser, None, text, at)
        .await?;
    Ok(())
}

/// Whether the store refuses a write for good (the case is gone or no longer open).
fn refused(e: &ApiError) -> bool {
    matches!(e, ApiError::NotFound(_) | ApiError::Conflict(_))
}

/// A person's message to their case, held until it is stored.
struct HeldCaseMessage {
    case: i64,
    text: String,
    at: Timestamp,
}

impl Held<AppState> for HeldCaseMessage {
    fn kind(&self) -> Kind {
        Kind::CaseMessage
    }

    fn bytes(&self) -> usize {
        self.text.len() + 128
    }

    /// The person's turn is answering someone with an open crisis case: it never waits.
    fn urgent(&self) -> bool {
        true
    }

    fn write<'a>(&'a mut self, st: &'a AppState) -> Attempt<'a> {
        Box::pin(async move {
            match write_case_message(st, self.case, &self.text, self.at).await {
                Ok(()) => {
                    tracing::warn!(
                        case = self.case,
                        "a message to a case was stored late, after a failed write"
                    );
                    Outcome::Written
                }
                Err(e) if refused(&e) => Outcome::Refused(e.to_string()),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    }
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
