//! Integration tests of tutela-detect: the labelled cases under `tests/cases/` scored with
//! the eval harness against the quality bars, golden findings with spans, chunk invariance
//! of streaming (proptest), and rule packs.

mod cases;
mod golden;
mod quick;
mod rulepacks;
mod streaming;

use std::sync::OnceLock;

use tutela_detect::Detectors;

/// The built-in detectors, compiled once for the whole test binary.
pub fn det() -> &'static Detectors {
    static DET: OnceLock<Detectors> = OnceLock::new();
    DET.get_or_init(Detectors::builtin)
}
