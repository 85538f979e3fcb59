//! Fuzz: the eval harness's JSONL reader and scorer never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutela_detect::eval::{parse_jsonl, score};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(items) = parse_jsonl(text) {
        let preds: Vec<String> = items.iter().map(|i| i.label.clone()).collect();
        let _ = score(&items, &preds);
    }
});
