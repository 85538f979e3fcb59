//! What the operator console needs of a case beyond the escalation row: the conversation that
//! led to it (the triggering message with its findings and the turns before it), how cases are
//! handed between staff, and the outcome a case was resolved with. The turns are content:
//! deleted with the user's data ([`crate::UserStore::delete_user`]) and by
//! [`CaseStore::purge_case_turns`] once the retention period of a resolved case is over.

use async_trait::async_trait;
use serde::Serialize;
use tutela_types::{Finding, Timestamp};

use crate::error::Result;
use crate::model::{Escalation, Notification};

/// A turn to keep with a case.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCaseTurn {
    /// `user` or `assistant`.
    pub role: String,
    /// The text.
    pub body: String,
    /// The message that opened or raised the case.
    pub trigger: bool,
    /// For a trigger: the user-side findings, spans into `body`.
    pub findings: Vec<Finding>,
}

/// A kept turn.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseTurn {
    /// Store-assigned id, increasing in conversation order.
    pub id: i64,
    /// The case.
    pub escalation_id: i64,
    /// `user` or `assistant`.
    pub role: String,
    /// The text.
    pub body: String,
    /// When the gateway kept it: the time of the triggering turn (earlier turns of the
    /// conversation arrive with it and carry no time of their own).
    pub at: Timestamp,
    /// The message that opened or raised the case.
    pub trigger: bool,
    /// For a trigger: its findings.
    pub findings: Vec<Finding>,
}

/// What the queue shows of a case besides its row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseSummary {
    /// The case.
    pub id: i64,
    /// Findings of every triggering message.
    pub findings: Vec<Finding>,
    /// The person's latest message: a trigger, or a message written during takeover.
    pub last_user_at: Option<Timestamp>,
    /// The outcome category, once resolved from the console.
    pub outcome: Option<String>,
}

/// Case context and hand-over.
#[async_trait]
pub trait CaseStore: Send + Sync {
    /// Keeps the triggering message; `prior` (the turns before it) only if the case has no
    /// turns yet, so a second crisis message in the same case adds just itself.
    async fn keep_case_turns(
        &self,
        case_id: i64,
        prior: &[NewCaseTurn],
        trigger: &NewCaseTurn,
        at: Timestamp,
    ) -> Result<()>;
    /// A case's kept turns in order.
    async fn case_turns(&self, case_id: i64) -> Result<Vec<CaseTurn>>;
    /// Summaries of these cases (those with nothing kept have empty findings).
    async fn case_summaries(&self, case_ids: &[i64]) -> Result<Vec<CaseSummary>>;
    /// Gives an active case to `staff` (claimed by them), whoever held it.
    async fn assign_escalation(&self, id: i64, staff: &str, at: Timestamp) -> Result<Escalation>;
    /// Puts an active case back in the queue, unclaimed.
    async fn release_escalation(&self, id: i64) -> Result<Escalation>;
    /// Resolves an active case with a note and an outcome category.
    async fn resolve_case(
        &self,
        id: i64,
        staff: &str,
        note: &str,
        outcome: &str,
        at: Timestamp,
    ) -> Result<Escalation>;
    /// Notifications to contacts sent (or pending) for this case.
    async fn case_notifications(&self, case_id: i64) -> Result<Vec<Notification>>;
    /// Deletes the kept turns of cases resolved before `before`; returns how many.
    async fn purge_case_turns(&self, before: Timestamp) -> Result<u64>;
}
