//! The seam to the duties engine: the gateway composes the profiles of each distinct
//! combination of jurisdictions once, then asks the composed set for a decision per turn.

use std::sync::Arc;

use tutela_types::{Decision, Finding, PersonaKind, SessionState, Side, Timestamp, UserState};

/// Everything the engine reads for one turn besides the findings.
#[derive(Debug, Clone, Copy)]
pub struct TurnInput<'a> {
    /// The instant of the turn (read once per request).
    pub now: Timestamp,
    /// The person.
    pub user: &'a UserState,
    /// The session clocks.
    pub session: &'a SessionState,
    /// Whose text the findings are about.
    pub side: Side,
    /// The persona the assistant plays.
    pub persona: PersonaKind,
}

/// The profiles of one combination of jurisdictions.
pub trait PolicySet: Send + Sync + 'static {
    /// The profile ids in the set.
    fn ids(&self) -> Vec<String>;
    /// Hex hash of the profile texts, written into every audit record.
    fn snapshot_hash(&self) -> &str;
    /// The decision for one turn.
    fn evaluate(&self, input: &TurnInput<'_>, findings: &[Finding]) -> Decision;
}

/// The engine: composes sets of profiles.
pub trait Policy: Send + Sync + 'static {
    /// The composed set for these ids or aliases; an error names the unknown one.
    fn select(&self, ids: &[String]) -> Result<Arc<dyn PolicySet>, String>;
}
