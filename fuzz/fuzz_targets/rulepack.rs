//! Fuzz: parsing any rule pack never panics; errors always carry a line inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutela_detect::RulePack;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errs) = RulePack::parse("fuzz.toml", text) {
        let lines = text.lines().count().max(1);
        for e in &errs.0 {
            assert!(e.line >= 1 && e.line <= lines + 1);
        }
    }
});
