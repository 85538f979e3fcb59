//! An intervening turn's writes in one transaction ([`EffectsStore`]).

use async_trait::async_trait;

use super::Store;
use crate::effects::{EffectsStore, EffectsWritten, TurnEffects};
use crate::error::Result;
use crate::model::{CounterBump, Intervention};

#[async_trait]
impl EffectsStore for Store {
    async fn record_effects(&self, e: &TurnEffects) -> Result<EffectsWritten> {
        let offset = self.options.report_utc_offset_minutes;
        let interventions: Vec<&Intervention> = e.interventions.iter().collect();
        let bumps: Vec<&CounterBump> = e.counts.iter().collect();
        let mut out = EffectsWritten::default();
        // Everything here is the user's own (their clocks, record, case, session, case
        // turns, notifications), so it runs beside other users' effects on PostgreSQL.
        let mut tx = self.begin_write_for(&e.user_id).await?;
        // The turn's session row first: ending the session needs it.
        super::batch::write_batch(&mut tx, e.turn.as_slice(), &interventions, &bumps, offset)
            .await?;
        if let Some(update) = &e.user_update {
            out.user = Some(super::users::update_on(&mut tx, &e.user_id, update, e.at).await?);
        }
        for new in &e.escalations {
            out.escalation = Some(super::escalations::open_on(&mut tx, new).await?);
        }
        if let Some((session, reason)) = &e.end_session {
            out.session_missing = !super::sessions::end_on(&mut tx, session, e.at, reason).await?;
        }
        let case = out.escalation.as_ref().map(|(c, _)| c.id);
        for n in &e.notifications {
            let mut n = n.clone();
            if let Some(case) = case {
                n.escalation_id = Some(case);
                if let Some(named) = n.payload.get_mut("escalation") {
                    *named = serde_json::json!(case);
                }
            }
            super::outbox::enqueue_on(&mut tx, &n).await?;
        }
        if let (Some(case), Some((prior, trigger))) = (case, &e.case_turns) {
            super::cases::keep_on(&mut tx, case, prior, trigger, e.at).await?;
        }
        tx.commit().await?;
        Ok(out)
    }
}
