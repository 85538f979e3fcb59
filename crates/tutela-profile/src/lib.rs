//! Jurisdiction profiles as data.
//!
//! A profile (`profiles/<id>/profile.toml`) encodes one law — or one draft, or tutela's own safe
//! defaults — as a list of obligations, each with its citation, effective date, the users it
//! covers, how it is met, whether its figures are verified, and the runtime rules the duties
//! engine evaluates. Files are read by the caller; this crate parses text
//! ([`Registry::from_sources`]) or the copies embedded at compile time ([`Registry::builtin`]),
//! validates them, and reports every error at once with file, line and key path.
//!
//! Invariant: no I/O, no clock, no environment, no async runtime.

#![deny(missing_docs)]

mod error;
mod model;
mod raw;
mod registry;
mod validate;

pub use crate::error::{ProfileError, ProfileErrors, SelectError};
pub use crate::model::{
    Anchor, Band, Covers, Date, MetBy, Obligation, OncePer, Profile, Rule, Status, Threshold,
    Verification,
};
pub use crate::registry::{ProfileSet, Registry};
pub use crate::validate::parse_profile;
