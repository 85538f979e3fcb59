//! The duties engine: for one chat turn, which legal duties fall due and what must happen.
//!
//! ```text
//! evaluate(&ProfileSet, &EngineOptions, &EvalContext { now, user, session, turn }, &[Finding])
//!     -> Decision { actions: [Decided { action, reasons: [profile/obligation/article] }],
//!                   session: advanced clocks, next_due, diagnostics }
//! ```
//!
//! The engine is a pure function. Time comes in as `ctx.now`; the session clocks come in as
//! `ctx.session` and go out, advanced, as `decision.session`, which the caller stores and passes
//! back on the next turn. The same inputs always give the same decision, so any past decision
//! can be replayed from the audit log.
//!
//! Composition of several profiles (several jurisdictions at once):
//! - every clock runs on its own; a notice goes out at the first user turn at or after the
//!   instant a clock falls due (the earliest due reminder wins);
//! - all notices due at one turn are combined into one notice that names every obligation it
//!   discharges, and a periodic clock whose contents a delivered notice already carried is reset
//!   by it (so one combined notice can satisfy several laws);
//! - the strictest limit wins (the smallest daily budget, the union of quiet hours);
//! - of several replacement replies the gravest wins; a user at risk is never turned away by a
//!   time limit, and a goodbye that comes with a crisis is not treated as an exit;
//! - a duty the deployment meets another way the law allows (a persistent AI disclosure) runs
//!   no clock, and the decision says why;
//! - a hard stop (OR SB 1546) suspends the AI conversation, not the person: while suspended the
//!   model is never asked and every user turn gets crisis support with resources (and the
//!   baseline's human takeover); the session is never ended because of it, so it composes with
//!   every law that requires answering a person at risk and with CN Art 19 (the user may always
//!   leave); a human or the follow-up step clears it, and the next turn records the follow-up.
//!
//! Invariant: no I/O, no clock, no environment, no async runtime.

#![deny(missing_docs)]

mod engine;

pub use crate::engine::{evaluate, gravity};

use tutela_types::{PersonaKind, SessionState, Side, Timestamp, UserState};

/// Deployment parameters of the engine. Every decision is made under explicit values, which
/// the caller records with the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// A gap between two user turns of at least this many minutes ends a period of continuous
    /// use. No law defines "continuous"; 30 minutes is tutela's default (regulations.md §10).
    pub idle_reset_minutes: u32,
    /// The deployment's interface shows a continuously visible "AI, not human" disclosure.
    /// Duties that list `persistent_ai_disclosure` among their `alternatives` (CT PA 26-15,
    /// the Conversational AI Safety Act) are then met by it, and their notice clocks do not run;
    /// every decision that relies on it says so in a diagnostic.
    pub persistent_ai_disclosure: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            idle_reset_minutes: 30,
            persistent_ai_disclosure: false,
        }
    }
}

impl EngineOptions {
    /// Whether the deployment declared this alternative way of meeting a duty.
    pub fn declares(&self, alternative: tutela_profile::Alternative) -> bool {
        match alternative {
            tutela_profile::Alternative::PersistentAiDisclosure => self.persistent_ai_disclosure,
        }
    }
}

/// The turn being decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Turn {
    /// A user message (before the model is asked) or an assistant reply (before the user sees it).
    pub side: Side,
    /// The persona the deployment plays in this conversation.
    pub persona: PersonaKind,
}

impl Turn {
    /// A user turn with a general persona.
    pub fn user() -> Self {
        Self {
            side: Side::User,
            persona: PersonaKind::General,
        }
    }

    /// An assistant turn with a general persona.
    pub fn assistant() -> Self {
        Self {
            side: Side::Assistant,
            persona: PersonaKind::General,
        }
    }
}

/// Everything the engine knows about the turn, supplied by the caller.
#[derive(Clone, Copy, Debug)]
pub struct EvalContext<'a> {
    /// The instant of the turn.
    pub now: Timestamp,
    /// The person.
    pub user: &'a UserState,
    /// The session clocks as the previous decision left them.
    pub session: &'a SessionState,
    /// The turn.
    pub turn: Turn,
}
