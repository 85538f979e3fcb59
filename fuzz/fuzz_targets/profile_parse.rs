//! The profile parser never panics, and whatever it accepts can be explained and composed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match tutela_profile::parse_profile("fuzz/x/profile.toml", text) {
        Ok(profile) => {
            for o in profile.obligations() {
                for r in &o.rules {
                    let _ = r.to_string();
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                let _ = e.to_string();
            }
        }
    }
    let _ = tutela_types::Timestamp::parse(text);
    let _ = tutela_types::Clock::parse(text);
});
