//! An intervening turn's writes beyond its audit record, in one transaction: the turn's clocks
//! and session row, minors' mode, the case for the crisis team, counter bumps, the session's
//! end, safety alerts to contacts, the intervention rows and the case's context. Each was a
//! commit of its own, one after the other under the write lock; the reply waits for all of
//! them either way (they are durable before it leaves), so one commit says the same sooner.
//! Either all of it is written or none of it (the gateway holds and retries the whole).

use async_trait::async_trait;
use tutela_types::Timestamp;

use crate::cases::NewCaseTurn;
use crate::error::Result;
use crate::model::{
    CounterBump, Escalation, Intervention, NewEscalation, NewNotification, TurnRecord, User,
    UserUpdate,
};

/// What [`EffectsStore::record_effects`] writes, all for one user at one time.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnEffects {
    /// Whose.
    pub user_id: String,
    /// When.
    pub at: Timestamp,
    /// The turn's clocks, session row, usage and activity (as the writer's batch writes them);
    /// `None` when written elsewhere.
    pub turn: Option<TurnRecord>,
    /// A change to the user's record (minors' mode), made before the case.
    pub user_update: Option<UserUpdate>,
    /// Cases to open (or raise: one active case per user), in order; the last is the turn's.
    pub escalations: Vec<NewEscalation>,
    /// Counter bumps.
    pub counts: Vec<CounterBump>,
    /// The session to end, and why (after the turn's session row is written).
    pub end_session: Option<(String, String)>,
    /// Alerts to queue, after the case: each names the case (`escalation_id`, and the
    /// payload's `escalation` member when it has one).
    pub notifications: Vec<NewNotification>,
    /// Intervention rows.
    pub interventions: Vec<Intervention>,
    /// The turns kept beside the turn's case, if it has one: those before the trigger (kept
    /// only for a case that has none yet) and the trigger.
    pub case_turns: Option<(Vec<NewCaseTurn>, NewCaseTurn)>,
}

impl TurnEffects {
    /// Nothing yet, for `user_id` at `at`.
    pub fn new(user_id: &str, at: Timestamp) -> Self {
        Self {
            user_id: user_id.to_owned(),
            at,
            turn: None,
            user_update: None,
            escalations: Vec::new(),
            counts: Vec::new(),
            end_session: None,
            notifications: Vec::new(),
            interventions: Vec::new(),
            case_turns: None,
        }
    }
}

/// What [`EffectsStore::record_effects`] wrote that the caller reads back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EffectsWritten {
    /// The user's record after [`TurnEffects::user_update`].
    pub user: Option<User>,
    /// The last case opened or raised, and whether it was opened.
    pub escalation: Option<(Escalation, bool)>,
    /// The session to end was not there (nothing else changes: the rest is written).
    pub session_missing: bool,
}

/// An intervening turn's writes in one transaction.
#[async_trait]
pub trait EffectsStore: Send + Sync {
    /// Writes `effects` in one transaction (see [`TurnEffects`]).
    async fn record_effects(&self, effects: &TurnEffects) -> Result<EffectsWritten>;
}
