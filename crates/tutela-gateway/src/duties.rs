//! The seam to the duties engine: the gateway composes the profiles of each distinct
//! combination of jurisdictions once, then asks the composed set for a decision per turn.

use std::sync::Arc;

use tutela_policy::EvalContext;
use tutela_types::{Decision, Finding};

/// The profiles of one combination of jurisdictions.
pub trait PolicySet: Send + Sync + 'static {
    /// The profile ids in the set.
    fn ids(&self) -> Vec<String>;
    /// Hex hash of the profile texts, written into every audit record.
    fn snapshot_hash(&self) -> &str;
    /// The decision for one turn.
    fn evaluate(&self, ctx: &EvalContext<'_>, findings: &[Finding]) -> Decision;
}

/// The engine: composes sets of profiles.
pub trait Policy: Send + Sync + 'static {
    /// The composed set for these ids or aliases; an error names the unknown one.
    fn select(&self, ids: &[String]) -> Result<Arc<dyn PolicySet>, String>;
}
