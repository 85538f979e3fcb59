//! Fuzz: scanning any text never panics, spans stay on character boundaries, and streaming
//! the text in two chunks yields the same findings as the whole.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tutela_detect::Detectors;
use tutela_types::Side;

fn det() -> &'static Detectors {
    static D: OnceLock<Detectors> = OnceLock::new();
    D.get_or_init(Detectors::builtin)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let side = if text.len() % 2 == 0 { Side::User } else { Side::Assistant };
    let whole = det().scan(side, text, Some("bye"));
    for f in &whole {
        for s in &f.spans {
            assert!(s.start <= s.end && s.end <= text.len());
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        }
    }
    let mut cut = text.len() / 3;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut st = det().stream(side, Some("bye"));
    let mut split = st.feed(&text[..cut]);
    split.extend(st.feed(&text[cut..]));
    split.extend(st.finish());
    assert_eq!(whole, split);
});
