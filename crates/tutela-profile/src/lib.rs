//! Jurisdiction profiles as data.
//!
//! A profile (`profiles/<id>/profile.toml`) encodes one law — or one draft, or tutela's own safe
//! defaults — as a list of obligations, each with its citation, effective date, the users it
//! covers, how it is met, whether its figures are verified, and the runtime rules the duties
//! engine evaluates. Files are read by the caller; this crate parses text
//! ([`Registry::from_sources`]) or the copies embedded at compile time ([`Registry::builtin`]),
//! validates them, and reports every error at once with file, line and key path. A profile may
//! `extends` a template (a model act several states share) and replace what differs; duties that
//! concern the product rather than a message are checked against the operator's declaration by
//! [`check_deployment`].
//!
//! Invariant: no I/O, no clock, no environment, no async runtime.

#![deny(missing_docs)]

mod deployment;
mod error;
mod model;
mod raw;
mod registry;
mod validate;

pub use crate::deployment::{
    Checked, Declaration, DeclarationError, Verdict, check_deployment, name as stable_name,
};
pub use crate::error::{ProfileError, ProfileErrors, SelectError};
pub use crate::model::{
    Alternative, Anchor, Band, Covers, Date, DeploymentDuty, Feature, Figure, MetBy, Obligation,
    OncePer, Profile, Rule, Status, Threshold, Verification,
};
pub use crate::registry::{ProfileSet, Registry};
pub use crate::validate::parse_profile;
