//! The shared vocabulary of tutela.
//!
//! Every other crate speaks in these types: a [`Timestamp`] that the caller supplies (nothing
//! here reads the clock), the [`Finding`]s that detectors produce, the [`UserState`] and
//! [`SessionState`] that the duties engine reads and returns, and the [`Decision`] it makes:
//! a list of [`Action`]s, each with the [`Reason`]s (profile, obligation, article) that require it.
//!
//! Invariant: this crate does no I/O, never reads the clock or the environment, and has no
//! async runtime.

#![deny(missing_docs)]

mod action;
mod finding;
mod time;
mod user;

pub use crate::action::{
    Action, ContactKind, Counter, Decided, Decision, Diagnostic, EndReason, NoticeContent, Reason,
    ReplyTemplate,
};
pub use crate::finding::{DetectorId, Finding, Severity, Side, Span, Tier};
pub use crate::time::{Clock, LocalDate, TimeError, Timestamp};
pub use crate::user::{
    AgeAssurance, AgeState, Clearance, ClearedBy, Contacts, MinorsSettings, PersonaKind,
    QuietHours, SessionState, Suspension, UserState,
};
