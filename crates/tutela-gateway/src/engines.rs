//! The real engines behind the seams: `tutela-detect` for findings, `tutela-profile` +
//! `tutela-policy` for decisions.

use std::sync::Arc;

use tutela_policy::{EngineOptions, EvalContext};
use tutela_profile::{ProfileSet, Registry};
use tutela_types::{Decision, Finding};

use crate::duties::{Policy, PolicySet};
#[cfg(feature = "detect")]
use crate::scan::{ScanStream, Scanner};
#[cfg(feature = "detect")]
use tutela_types::Side;

/// The built-in detectors.
#[cfg(feature = "detect")]
pub struct BuiltinScanner(pub tutela_detect::Detectors);

#[cfg(feature = "detect")]
struct DetectStream<'a>(tutela_detect::Stream<'a>);

#[cfg(feature = "detect")]
impl ScanStream for DetectStream<'_> {
    fn feed(&mut self, chunk: &str) -> Vec<Finding> {
        self.0.feed(chunk)
    }
    fn finish(self: Box<Self>) -> Vec<Finding> {
        self.0.finish()
    }
    fn pending(&self) -> usize {
        self.0.pending()
    }
}

#[cfg(feature = "detect")]
impl Scanner for BuiltinScanner {
    fn scan(&self, side: Side, text: &str, context: Option<&str>) -> Vec<Finding> {
        self.0.scan(side, text, context)
    }
    fn stream<'a>(&'a self, side: Side, context: Option<&str>) -> Box<dyn ScanStream + 'a> {
        Box::new(DetectStream(self.0.stream(side, context)))
    }
}

/// The profile registry and the engine's options.
pub struct Engine {
    /// All known profiles.
    pub registry: Registry,
    /// Engine parameters (idle reset).
    pub options: EngineOptions,
}

struct Set {
    set: ProfileSet,
    options: EngineOptions,
}

impl PolicySet for Set {
    fn ids(&self) -> Vec<String> {
        self.set.ids().into_iter().map(str::to_owned).collect()
    }
    fn snapshot_hash(&self) -> &str {
        self.set.snapshot_hash()
    }
    fn evaluate(&self, ctx: &EvalContext<'_>, findings: &[Finding]) -> Decision {
        tutela_policy::evaluate(&self.set, &self.options, ctx, findings)
    }
}

impl Policy for Engine {
    fn select(&self, ids: &[String]) -> Result<Arc<dyn PolicySet>, String> {
        let set = self.registry.select(ids).map_err(|e| e.to_string())?;
        Ok(Arc::new(Set {
            set,
            options: self.options,
        }))
    }
}
