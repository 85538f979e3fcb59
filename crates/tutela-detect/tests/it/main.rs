//! Integration tests of tutela-detect: the labelled cases under `tests/cases/` scored with
//! the eval harness against the quality bars, golden findings with spans, chunk invariance
//! of streaming (proptest) with every tier on, control and format characters (they change no
//! detection), the learned tiers, and rule packs.

mod cases;
mod controls;
mod golden;
mod learned;
mod quick;
mod rulepacks;
mod streaming;

use std::sync::OnceLock;

use tutela_detect::{Detectors, Tiers};

/// The built-in lexical tier alone, compiled once for the whole test binary (the golden
/// cases, the quick pass and the case files test that tier).
pub fn det() -> &'static Detectors {
    static DET: OnceLock<Detectors> = OnceLock::new();
    DET.get_or_init(|| {
        let mut d = Detectors::builtin();
        d.set_tiers(Tiers::LEXICAL);
        d
    })
}

/// The built-in detectors with every embedded tier on (lexical and n-gram), as shipped.
pub fn det_all() -> &'static Detectors {
    static DET: OnceLock<Detectors> = OnceLock::new();
    DET.get_or_init(Detectors::builtin)
}
