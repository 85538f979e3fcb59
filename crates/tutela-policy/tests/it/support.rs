//! Helpers shared by the test modules: the shipped registry and a turn-by-turn simulator.

use tutela_policy::{EngineOptions, EvalContext, Turn, evaluate};
use tutela_profile::{ProfileSet, Registry};
use tutela_types::{Decision, Finding, SessionState, Timestamp, UserState};

pub fn registry() -> Registry {
    Registry::builtin().unwrap()
}

/// Runs one turn and returns the decision; the caller threads `decision.session` onwards.
pub fn step(
    set: &ProfileSet,
    options: &EngineOptions,
    user: &UserState,
    session: &SessionState,
    now: Timestamp,
    turn: Turn,
    findings: &[Finding],
) -> Decision {
    let ctx = EvalContext {
        now,
        user,
        session,
        turn,
    };
    evaluate(set, options, &ctx, findings)
}
