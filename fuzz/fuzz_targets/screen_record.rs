//! Fuzz: any corpus line is either read or rejected with a message (never a panic), and the
//! PII scan of any text ends, with spans on character boundaries inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutela_screen::{doc, pii};

fuzz_target!(|data: &[u8]| {
    let _ = doc::extract(data, &doc::Fields::default());
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for h in pii::scan(text) {
        assert!(h.start < h.end && h.end <= text.len());
        assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end));
    }
});
