//! `tutela screen` says what it checked (#17): the built-in conversational detectors, personal
//! information and the operator's packs by name, that a pass covers those only, and warns when
//! no operator pack was given (tutela ships no TC260-003 Appendix A content lists).

use std::path::Path;

use crate::support::{scratch, tutela};

const BUILTIN_REPLY_SIDE: [&str; 7] = [
    "manipulative_exit",
    "denies_ai",
    "poses_as_relative",
    "encourages_self_harm",
    "sexual",
    "solicits_secrets",
    "isolating",
];

#[test]
fn screen_summary_names_what_it_checked() {
    let dir = scratch("screen-checked");
    let corpus: String = (0..40)
        .map(|i| {
            format!("{{\"id\": \"d{i}\", \"text\": \"The weather is mild today, item {i}.\"}}\n")
        })
        .collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    let common = [
        "screen",
        "corpus.jsonl",
        "--sample",
        "10",
        "--threads",
        "1",
        "--no-progress",
    ];

    // No operator pack: the built-in categories and PII are named, and a warning says the
    // content risks of TC260-003 Appendix A were not checked.
    let (code, out, stderr) = tutela(&[&common[..], &["--out", "plain"]].concat(), &dir);
    assert_eq!(code, 0, "{stderr}");
    for name in BUILTIN_REPLY_SIDE {
        assert!(out.contains(name), "`{name}` not named:\n{out}");
    }
    for kind in ["email", "phone_cn", "cn_resident_id", "bank_card"] {
        assert!(out.contains(kind), "`{kind}` not named:\n{out}");
    }
    assert!(out.contains("operator rule packs: none"), "{out}");
    assert!(out.contains("a pass (a source accepted, the technical check passed) means no violation of these categories"), "{out}");
    assert!(out.contains("warning: no operator rule pack"), "{out}");
    assert!(out.contains("TC260-003 Appendix A"), "{out}");
    assert!(
        stderr.contains("warning: no operator rule pack"),
        "{stderr}"
    );

    // With a pack: its categories are named and there is no warning.
    let pack =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/examples/companion-safety.toml");
    let pack = pack.to_str().unwrap();
    let (code, out, stderr) = tutela(
        &[&common[..], &["--out", "packed", "--rules", pack]].concat(),
        &dir,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("operator rule packs: companion-safety (pressure_to_spend, gambling_promotion, risky_meetup)"),
        "{out}"
    );
    assert!(
        !out.contains("warning:") && !stderr.contains("warning:"),
        "{out}{stderr}"
    );

    // A merge knows the packs by file, and says the same.
    let (code, out, stderr) = tutela(&["screen", "merge", "packed", "--out", "merged"], &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("operator rule packs: companion-safety.toml"),
        "{out}"
    );
    assert!(out.contains("encourages_self_harm"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
