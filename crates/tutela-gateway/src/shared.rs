//! Several instances on one database (PostgreSQL): the events the others publish
//! ([`crate::records::Event`], LISTEN/NOTIFY) wake this instance's waiters and the console's
//! streams. Nothing here keeps the clocks exact: each turn compares its cached entry's stamp
//! with the store's (`chat::identity`), since no notification can be sure to arrive before the
//! person's next request; the events only spare waiters their timeouts.

use std::time::Duration;

use crate::records::Event;
use crate::state::AppState;

/// Listens for as long as the process runs: every event of another instance is handled; a lost
/// connection (events may be missed) wakes every waiter here, which read the store again.
pub(crate) async fn run(st: AppState) {
    let mut events = loop {
        match st.records.listen().await {
            Ok(Some(e)) => break e,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen to the other instances; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    loop {
        match events.next().await {
            Ok(Some(payload)) => handle(&st, &payload),
            Ok(None) => st.wake_all_here(),
            Err(e) => {
                tracing::warn!(error = %e, "lost the other instances' events; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                st.wake_all_here();
            }
        }
    }
}

fn handle(st: &AppState, payload: &str) {
    let Ok(event) = serde_json::from_str::<Event>(payload) else {
        tracing::warn!("an event from another instance could not be read");
        return;
    };
    if event.from == st.instance {
        return;
    }
    st.heard(event.user.as_deref());
}
